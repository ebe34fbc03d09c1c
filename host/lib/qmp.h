/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A blocking-with-deadline QMP client over one connected unix socket.
 * Replies are matched by "id"; events seen on the way are handed to a
 * callback.  Every line is bounded (QMP_LINE_MAX) and parsed strictly.
 */
#ifndef HUSK_LIB_QMP_H
#define HUSK_LIB_QMP_H

#include <stddef.h>
#include <stdint.h>

#include "husk-common/error.h"
#include "json.h"

#define QMP_LINE_MAX (64 * 1024)

typedef void (*qmp_event_fn)(void *data, const char *event,
			     const struct json_doc *doc,
			     const struct json_node *event_data);

struct qmp {
	int fd;
	uint64_t next_id;
	char *buf;		/* QMP_LINE_MAX bytes of unparsed input */
	size_t len;
	struct json_doc *doc;	/* the last parsed line */
	qmp_event_fn on_event;
	void *event_data;
};

/*
 * Take ownership of a connected socket fd, read the greeting and enter
 * command mode (qmp_capabilities).  On failure fd is closed.
 */
int qmp_open(struct qmp *q, int fd, qmp_event_fn on_event, void *event_data,
	     int timeout_ms, struct husk_error *err);
void qmp_close(struct qmp *q);

/*
 * Run `command` (a QMP command name; args_json is "" or a JSON object text)
 * and wait for its reply.  On success *ret points at the "return" member
 * inside q->doc (valid until the next qmp call).  A QMP "error" reply is
 * -EREMOTEIO with its description in err.
 */
int qmp_execute(struct qmp *q, const char *command, const char *args_json,
		int timeout_ms, const struct json_node **ret,
		struct husk_error *err);

/* Send a command without waiting for the reply (quit, powerdown at exit). */
int qmp_send(struct qmp *q, const char *command, struct husk_error *err);

/*
 * Read what is available without blocking and dispatch events.
 * -EPIPE when QEMU closed the connection.
 */
int qmp_poll_events(struct qmp *q, struct husk_error *err);

#endif
