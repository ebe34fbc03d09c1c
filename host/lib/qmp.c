// SPDX-License-Identifier: LGPL-2.1-or-later
/* QMP client: greeting, capabilities negotiation, commands, events. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "husk-common/cleanup.h"
#include "qmp.h"
#include "util.h"

enum qmp_line_kind {
	QMP_LINE_GREETING,
	QMP_LINE_EVENT,
	QMP_LINE_REPLY,
};

/* Wait up to the deadline for input and append it to the line buffer. */
static int qmp_fill(struct qmp *q, int64_t deadline, struct husk_error *err)
{
	struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
	ssize_t n;
	int r;

	if (q->len == QMP_LINE_MAX)
		return husk_error_set(err, E2BIG, "QMP: a line exceeds %d bytes",
				      QMP_LINE_MAX);
	r = poll(&pfd, 1, deadline_remaining_ms(deadline));
	if (r < 0)
		return husk_error_seterrno(err, errno, "QMP: poll");
	if (r == 0)
		return -ETIMEDOUT;
	n = recv(q->fd, q->buf + q->len, QMP_LINE_MAX - q->len, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno == ECONNRESET)
			return husk_error_set(err, EPIPE, "QMP: connection reset");
		return husk_error_seterrno(err, errno, "QMP: recv");
	}
	if (n == 0)
		return husk_error_set(err, EPIPE, "QMP: QEMU closed the monitor");
	q->len += n;
	return 0;
}

/*
 * Parse the first complete line, if any, into q->doc and classify it.
 * Returns 1 with *kind set, 0 when no complete line is buffered.
 */
static int qmp_take_line(struct qmp *q, enum qmp_line_kind *kind,
			 struct husk_error *err)
{
	const struct json_node *root;
	char *nl = memchr(q->buf, '\n', q->len);
	size_t line_len, errpos;
	int r;

	if (!nl)
		return 0;
	line_len = nl - q->buf;
	r = json_parse(q->doc, q->buf, line_len, &errpos);
	memmove(q->buf, nl + 1, q->len - line_len - 1);
	q->len -= line_len + 1;
	if (r < 0)
		return husk_error_set(err, EPROTO,
				      "QMP: malformed JSON at byte %zu of a %zu-byte line",
				      errpos, line_len);
	root = json_root(q->doc);
	if (root->type != JSON_OBJECT)
		return husk_error_set(err, EPROTO, "QMP: a line is not a JSON object");
	if (json_get(q->doc, root, "QMP"))
		*kind = QMP_LINE_GREETING;
	else if (json_string(json_get(q->doc, root, "event")))
		*kind = QMP_LINE_EVENT;
	else if (json_get(q->doc, root, "return") || json_get(q->doc, root, "error"))
		*kind = QMP_LINE_REPLY;
	else
		return husk_error_set(err, EPROTO, "QMP: unknown message");
	return 1;
}

static void qmp_dispatch_event(struct qmp *q)
{
	const struct json_node *root = json_root(q->doc);

	if (q->on_event)
		q->on_event(q->event_data,
			    json_string(json_get(q->doc, root, "event")), q->doc,
			    json_get(q->doc, root, "data"));
}

/*
 * Read lines until one of `want` arrives (events are dispatched on the
 * way).  With want_id != 0 a reply must carry that id.
 */
static int qmp_wait_for(struct qmp *q, enum qmp_line_kind want, uint64_t want_id,
			int64_t deadline, struct husk_error *err)
{
	for (;;) {
		enum qmp_line_kind kind;
		int r = qmp_take_line(q, &kind, err);

		if (r < 0)
			return r;
		if (r == 0) {
			r = qmp_fill(q, deadline, err);
			if (r == -ETIMEDOUT)
				return husk_error_set(err, ETIMEDOUT,
						      "QMP: no answer in time");
			if (r < 0)
				return r;
			continue;
		}
		if (kind == QMP_LINE_EVENT) {
			qmp_dispatch_event(q);
			continue;
		}
		if (kind != want)
			return husk_error_set(err, EPROTO, "QMP: unexpected %s",
					      kind == QMP_LINE_GREETING ? "greeting" : "reply");
		if (want == QMP_LINE_REPLY) {
			const struct json_node *id =
				json_get(q->doc, json_root(q->doc), "id");

			if (!id || !id->is_integer || (uint64_t)id->integer != want_id)
				continue;	/* a reply to a command we did not wait for */
		}
		return 0;
	}
}

static int qmp_write(struct qmp *q, const char *text, size_t len,
		     struct husk_error *err)
{
	while (len) {
		ssize_t n = send(q->fd, text, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };

				if (poll(&pfd, 1, 1000) <= 0)
					return husk_error_set(err, ETIMEDOUT,
							      "QMP: monitor does not take input");
				continue;
			}
			if (errno == ECONNRESET)
				errno = EPIPE;
			return husk_error_seterrno(err, errno, "QMP: send");
		}
		text += n;
		len -= n;
	}
	return 0;
}

static int qmp_send_command(struct qmp *q, const char *command,
			    const char *args_json, uint64_t *id,
			    struct husk_error *err)
{
	_cleanup_free_ char *line = NULL;
	int n;

	*id = ++q->next_id;
	if (args_json && *args_json)
		n = asprintf(&line, "{\"execute\":\"%s\",\"arguments\":%s,\"id\":%" PRIu64 "}\n",
			     command, args_json, *id);
	else
		n = asprintf(&line, "{\"execute\":\"%s\",\"id\":%" PRIu64 "}\n",
			     command, *id);
	if (n < 0) {
		line = NULL;
		return husk_error_set(err, ENOMEM, "QMP: out of memory");
	}
	return qmp_write(q, line, n, err);
}

int qmp_send(struct qmp *q, const char *command, struct husk_error *err)
{
	uint64_t id;

	return qmp_send_command(q, command, NULL, &id, err);
}

int qmp_execute(struct qmp *q, const char *command, const char *args_json,
		int timeout_ms, const struct json_node **ret,
		struct husk_error *err)
{
	int64_t deadline = deadline_after_ms(timeout_ms);
	const struct json_node *root, *error;
	uint64_t id;
	int r;

	r = qmp_send_command(q, command, args_json, &id, err);
	if (r < 0)
		return r;
	r = qmp_wait_for(q, QMP_LINE_REPLY, id, deadline, err);
	if (r < 0)
		return husk_error_prefix(err, "%s: ", command);
	root = json_root(q->doc);
	error = json_get(q->doc, root, "error");
	if (error) {
		const char *desc = json_string(json_get(q->doc, error, "desc"));

		return husk_error_set(err, EREMOTEIO, "QMP %s: %s", command,
				      desc ? desc : "error without description");
	}
	if (ret)
		*ret = json_get(q->doc, root, "return");
	return 0;
}

int qmp_poll_events(struct qmp *q, struct husk_error *err)
{
	for (;;) {
		enum qmp_line_kind kind;
		int r = qmp_take_line(q, &kind, err);

		if (r < 0)
			return r;
		if (r == 1) {
			if (kind == QMP_LINE_EVENT)
				qmp_dispatch_event(q);
			continue;	/* a late reply nobody waits for */
		}
		r = qmp_fill(q, deadline_after_ms(0), err);
		if (r == -ETIMEDOUT)
			return 0;
		if (r < 0)
			return r;
	}
}

int qmp_open(struct qmp *q, int fd, qmp_event_fn on_event, void *event_data,
	     int timeout_ms, struct husk_error *err)
{
	int64_t deadline = deadline_after_ms(timeout_ms);
	int r;

	*q = (struct qmp){ .fd = fd, .on_event = on_event,
			   .event_data = event_data };
	q->buf = malloc(QMP_LINE_MAX);
	q->doc = calloc(1, sizeof(*q->doc));
	if (!q->buf || !q->doc) {
		qmp_close(q);
		return husk_error_set(err, ENOMEM, "QMP: out of memory");
	}
	r = qmp_wait_for(q, QMP_LINE_GREETING, 0, deadline, err);
	if (r < 0)
		goto fail;
	r = qmp_execute(q, "qmp_capabilities", NULL,
			deadline_remaining_ms(deadline), NULL, err);
	if (r < 0)
		goto fail;
	return 0;
fail:
	qmp_close(q);
	return husk_error_prefix(err, "QMP handshake: ");
}

void qmp_close(struct qmp *q)
{
	q->fd = safe_close(q->fd);
	free(q->buf);
	q->buf = NULL;
	if (q->doc) {
		json_doc_release(q->doc);
		free(q->doc);
		q->doc = NULL;
	}
	q->len = 0;
}
