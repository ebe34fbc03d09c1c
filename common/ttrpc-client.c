// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * ttRPC client: many calls share one connection.  Requests go out whole
 * under a write lock.  Replies are read by whichever waiting thread holds
 * the reader role; it files every reply under its stream id and wakes the
 * owner, then hands the role on when its own call completes.  The peer (a
 * guest) is untrusted: every reply is bounds-checked before it is believed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "husk-common/cleanup.h"
#include "husk-common/ttrpc.h"
#include "ttrpc-internal.h"
#include "ttrpc.pb-c.h"

struct husk_ttrpc_pending {
	struct husk_ttrpc_pending *prev, *next;
	uint32_t stream_id;
	const ProtobufCMessageDescriptor *output;
	int64_t deadline;		/* monotonic ms, 0 = none */
	char label[160];		/* "service/method" for messages */

	bool done;
	int result;			/* 0 or -errno once done */
	struct husk_error err;
	struct husk_ttrpc_status status;
	ProtobufCMessage *response;
};

struct husk_ttrpc_client {
	int fd;
	pthread_mutex_t write_lock;	/* one frame at a time on the wire */

	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t cond;		/* a call completed or the reader left */
	uint32_t next_id;
	bool reading;			/* some thread owns reader and reads fd */
	int dead;			/* -errno once the connection is unusable */
	struct husk_error dead_err;
	struct husk_ttrpc_pending *pending;
	struct husk_ttrpc_reader reader;
};

int husk_ttrpc_client_new(int fd, struct husk_ttrpc_client **ret,
			  struct husk_error *err)
{
	_cleanup_close_ int owned = fd;
	struct husk_ttrpc_client *c;
	pthread_condattr_t attr;
	int flags;

	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return husk_error_seterrno(err, errno, "ttRPC: cannot make fd %d non-blocking", fd);
	c = calloc(1, sizeof(*c));
	if (!c)
		return husk_error_set(err, ENOMEM, "ttRPC: cannot allocate a client");
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->write_lock, NULL);
	husk_ttrpc_reader_init(&c->reader);
	c->next_id = 1;
	c->fd = TAKE_FD(owned);
	*ret = c;
	return 0;
}

static void pending_free(struct husk_ttrpc_pending *p)
{
	if (p->response)
		protobuf_c_message_free_unpacked(p->response, NULL);
	free(p);
}

/* Caller holds c->lock. */
static void pending_unlink(struct husk_ttrpc_client *c, struct husk_ttrpc_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else if (c->pending == p)
		c->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
}

void husk_ttrpc_client_free(struct husk_ttrpc_client *c)
{
	if (!c)
		return;
	while (c->pending) {
		struct husk_ttrpc_pending *p = c->pending;

		pending_unlink(c, p);
		pending_free(p);
	}
	safe_close(c->fd);
	husk_ttrpc_reader_release(&c->reader);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->write_lock);
	free(c);
}

/* Caller holds c->lock. */
static void pending_complete(struct husk_ttrpc_client *c, struct husk_ttrpc_pending *p,
			     int result, const struct husk_error *why)
{
	if (p->done)
		return;
	p->done = true;
	p->result = result;
	if (why)
		p->err = *why;
	pthread_cond_broadcast(&c->cond);
}

/* The connection is unusable: every call still waiting fails.  Holds c->lock. */
static void client_fail(struct husk_ttrpc_client *c, int rc, const struct husk_error *why)
{
	if (!c->dead) {
		c->dead = rc;
		c->dead_err = *why;
	}
	for (struct husk_ttrpc_pending *p = c->pending; p; p = p->next)
		pending_complete(c, p, c->dead, &c->dead_err);
}

static struct husk_ttrpc_pending *pending_find(struct husk_ttrpc_client *c, uint32_t id)
{
	for (struct husk_ttrpc_pending *p = c->pending; p; p = p->next)
		if (p->stream_id == id)
			return p;
	return NULL;
}

/* Decode a Response envelope into p.  Holds c->lock. */
static void pending_take_response(struct husk_ttrpc_client *c, struct husk_ttrpc_pending *p,
				  const struct husk_ttrpc_frame *frame)
{
	struct husk_error e = {};
	Ttrpc__Response *resp;
	int code = HUSK_TTRPC_OK;
	int rc = 0;

	resp = ttrpc__response__unpack(NULL, frame->hdr.length, frame->data);
	if (!resp) {
		rc = husk_error_set(&e, EBADMSG, "%s: reply envelope does not decode", p->label);
		goto out;
	}
	/* An absent status means OK, as containerd/ttrpc reads it. */
	if (resp->status)
		code = resp->status->code;
	p->status.code = code;
	snprintf(p->status.message, sizeof(p->status.message), "%s",
		 resp->status && resp->status->message ? resp->status->message : "");
	if (code != HUSK_TTRPC_OK) {
		rc = husk_error_set(&e, husk_ttrpc_errno_from_code(code), "%s: %s: %s",
				    p->label, husk_ttrpc_code_name(code), p->status.message);
		goto out;
	}
	p->response = protobuf_c_message_unpack(p->output, NULL, resp->payload.len,
						resp->payload.data);
	if (!p->response)
		rc = husk_error_set(&e, EBADMSG, "%s: reply payload does not decode as %s",
				    p->label, p->output->name);
out:
	if (resp)
		ttrpc__response__free_unpacked(resp, NULL);
	pending_complete(c, p, rc, &e);
}

/*
 * File one reader result: rc 1 = frame, -EMSGSIZE = oversize reply skipped,
 * other < 0 = connection finished.  Holds c->lock.
 */
static void client_deliver(struct husk_ttrpc_client *c, int rc,
			   const struct husk_ttrpc_frame *frame,
			   const struct husk_error *why)
{
	struct husk_ttrpc_pending *p;
	struct husk_error e = {};

	if (rc < 0 && rc != -EMSGSIZE) {
		client_fail(c, rc == -EBADMSG ? -EPROTO : rc, why);
		return;
	}
	switch (frame->hdr.type) {
	case HUSK_TTRPC_TYPE_RESPONSE:
		break;
	case HUSK_TTRPC_TYPE_DATA:
		return;		/* no streaming calls are made */
	default:
		husk_error_set(&e, EPROTO, "ttRPC: peer sent a frame of type %u on stream %u",
			       frame->hdr.type, frame->hdr.stream_id);
		client_fail(c, -EPROTO, &e);
		return;
	}
	/* Unknown ids: calls abandoned after a timeout, or a confused peer. */
	p = pending_find(c, frame->hdr.stream_id);
	if (!p || p->done)
		return;
	if (rc == -EMSGSIZE) {
		husk_error_set(&e, EMSGSIZE, "%s: reply of %u bytes exceeds the ttRPC limit",
			       p->label, frame->hdr.length);
		pending_complete(c, p, -EMSGSIZE, &e);
		return;
	}
	pending_take_response(c, p, frame);
}

/*
 * Reader role: wait up to timeout_ms for input, then read and file frames
 * until the socket is drained or own (the reader's call) completes or
 * expires, so a flood of replies for others cannot hold it past its
 * deadline.  Called without c->lock.
 */
static void client_read(struct husk_ttrpc_client *c, struct husk_ttrpc_pending *own,
			int timeout_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	int n;

	n = poll(&pfd, 1, timeout_ms);
	if (n <= 0) {
		if (n < 0 && errno != EINTR) {
			struct husk_error e = {};
			int rc = husk_error_seterrno(&e, errno, "ttRPC: poll failed");

			pthread_mutex_lock(&c->lock);
			client_fail(c, rc, &e);
			pthread_mutex_unlock(&c->lock);
		}
		return;
	}
	for (;;) {
		struct husk_ttrpc_frame frame = {};
		struct husk_error e = {};
		int rc = husk_ttrpc_reader_read(&c->reader, c->fd, &frame, &e);
		bool own_done;

		if (rc == 0)
			return;

		pthread_mutex_lock(&c->lock);
		client_deliver(c, rc, &frame, &e);
		own_done = own->done || ttrpc_remaining_ms(own->deadline) == 0;
		pthread_mutex_unlock(&c->lock);
		husk_ttrpc_frame_release(&frame);
		if (own_done || (rc < 0 && rc != -EMSGSIZE))
			return;
	}
}

static void deadline_timespec(int64_t deadline, struct timespec *ts)
{
	ts->tv_sec = deadline / 1000;
	ts->tv_nsec = (deadline % 1000) * 1000000;
}

static int request_encode(const char *service, const char *method,
			  const ProtobufCMessage *request, int timeout_ms,
			  uint8_t **ret, size_t *ret_len, struct husk_error *err)
{
	Ttrpc__Request req = TTRPC__REQUEST__INIT;
	_cleanup_free_ uint8_t *payload = NULL;
	size_t len;
	int rc;

	rc = ttrpc_pack(request, &payload, &len, err);
	if (rc < 0)
		return rc;
	req.service = (char *)service;
	req.method = (char *)method;
	req.payload.data = payload;
	req.payload.len = len;
	if (timeout_ms > 0)
		req.timeout_nano = (int64_t)timeout_ms * 1000000;
	if (ttrpc__request__get_packed_size(&req) > HUSK_TTRPC_MAX_FRAME)
		return husk_error_set(err, EMSGSIZE, "%s/%s: request exceeds the ttRPC frame limit",
				      service, method);
	return ttrpc_pack(&req.base, ret, ret_len, err);
}

int husk_ttrpc_client_start(struct husk_ttrpc_client *c,
			    const char *service, const char *method,
			    const ProtobufCMessage *request,
			    const ProtobufCMessageDescriptor *output,
			    int timeout_ms, struct husk_ttrpc_pending **ret,
			    struct husk_error *err)
{
	_cleanup_free_ uint8_t *body = NULL;
	struct husk_ttrpc_header hdr = { .type = HUSK_TTRPC_TYPE_REQUEST };
	struct husk_ttrpc_pending *p;
	struct husk_error werr = {};
	size_t len;
	int rc;

	p = calloc(1, sizeof(*p));
	if (!p)
		return husk_error_set(err, ENOMEM, "ttRPC: cannot allocate a call");
	snprintf(p->label, sizeof(p->label), "%s/%s", service, method);
	p->output = output;
	p->deadline = ttrpc_deadline_ms(timeout_ms);
	p->status.code = -1;

	rc = request_encode(service, method, request, timeout_ms, &body, &len, err);
	if (rc < 0) {
		free(p);
		return rc;
	}

	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		rc = husk_error_set(err, -c->dead, "%s: %s", p->label, c->dead_err.msg);
		pthread_mutex_unlock(&c->lock);
		free(p);
		return rc;
	}
	if (c->next_id > UINT32_MAX - 2) {
		pthread_mutex_unlock(&c->lock);
		free(p);
		return husk_error_set(err, EOVERFLOW, "ttRPC: stream ids exhausted on this connection");
	}
	p->stream_id = c->next_id;
	c->next_id += 2;
	p->next = c->pending;
	if (c->pending)
		c->pending->prev = p;
	c->pending = p;
	pthread_mutex_unlock(&c->lock);

	hdr.length = len;
	hdr.stream_id = p->stream_id;
	pthread_mutex_lock(&c->write_lock);
	rc = husk_ttrpc_write_frame(c->fd, &hdr, body, ttrpc_remaining_ms(p->deadline), &werr);
	pthread_mutex_unlock(&c->write_lock);
	if (rc < 0) {
		/* Part of a frame may be on the wire: nothing after it can parse. */
		pthread_mutex_lock(&c->lock);
		client_fail(c, rc, &werr);
		pending_unlink(c, p);
		pthread_mutex_unlock(&c->lock);
		rc = husk_error_set(err, -rc, "%s: %s", p->label, werr.msg);
		free(p);
		return rc;
	}
	*ret = p;
	return 0;
}

int husk_ttrpc_client_wait(struct husk_ttrpc_client *c,
			   struct husk_ttrpc_pending *p,
			   ProtobufCMessage **response,
			   struct husk_ttrpc_status *status,
			   struct husk_error *err)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	while (!p->done) {
		int left = ttrpc_remaining_ms(p->deadline);

		if (left == 0) {
			struct husk_error e = {};

			husk_error_set(&e, ETIMEDOUT, "%s: no reply within the deadline", p->label);
			pending_complete(c, p, -ETIMEDOUT, &e);
			break;
		}
		if (!c->reading) {
			c->reading = true;
			pthread_mutex_unlock(&c->lock);
			client_read(c, p, left);
			pthread_mutex_lock(&c->lock);
			c->reading = false;
			/* Whoever still waits may take over reading. */
			pthread_cond_broadcast(&c->cond);
		} else if (p->deadline) {
			struct timespec ts;

			deadline_timespec(p->deadline, &ts);
			pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		} else {
			pthread_cond_wait(&c->cond, &c->lock);
		}
	}
	pending_unlink(c, p);
	pthread_mutex_unlock(&c->lock);

	if (status)
		*status = p->status;
	rc = p->result;
	if (rc < 0)
		husk_error_set(err, -rc, "%s", p->err.msg);
	else if (response)
		*response = TAKE_PTR(p->response);
	pending_free(p);
	return rc;
}

void husk_ttrpc_client_cancel(struct husk_ttrpc_client *c,
			      struct husk_ttrpc_pending *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&c->lock);
	pending_unlink(c, p);
	pthread_mutex_unlock(&c->lock);
	pending_free(p);
}

int husk_ttrpc_client_call(struct husk_ttrpc_client *c,
			   const char *service, const char *method,
			   const ProtobufCMessage *request,
			   const ProtobufCMessageDescriptor *output,
			   int timeout_ms, ProtobufCMessage **response,
			   struct husk_ttrpc_status *status,
			   struct husk_error *err)
{
	struct husk_ttrpc_pending *p;
	int rc;

	rc = husk_ttrpc_client_start(c, service, method, request, output,
				     timeout_ms, &p, err);
	if (rc < 0) {
		if (status)
			status->code = -1, status->message[0] = '\0';
		return rc;
	}
	return husk_ttrpc_client_wait(c, p, response, status, err);
}
