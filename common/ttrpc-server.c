// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * ttRPC server for a caller-owned epoll loop.  A connection reads requests
 * without blocking, hands each to its handler as a call object, and queues
 * the replies in an output buffer that drains when the socket is writable,
 * so a peer that stops reading never stalls the loop.  Calls a handler keeps
 * (deferred replies) are linked to their connection; freeing the connection
 * detaches them so a late reply is dropped instead of touching freed memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "husk-common/ttrpc.h"
#include "ttrpc-internal.h"
#include "ttrpc.pb-c.h"

/* Requests read per process() call, so one chatty peer cannot starve others. */
#define CONN_READ_BUDGET	32
/* Calls a connection may have waiting for a deferred reply. */
#define CONN_MAX_CALLS		1024
/* Stop reading requests while this much output waits for a slow reader. */
#define CONN_OUT_HIGH		(2 * (HUSK_TTRPC_MAX_FRAME + HUSK_TTRPC_HEADER_SIZE))

struct husk_ttrpc_server {
	const struct husk_ttrpc_method *methods;
	size_t n_methods;
	void *userdata;
};

struct husk_ttrpc_conn {
	struct husk_ttrpc_server *srv;
	int fd;
	struct husk_ttrpc_reader reader;

	uint8_t *out;			/* queued reply bytes: out[out_off..out_len) */
	size_t out_off, out_len, out_cap;

	struct husk_ttrpc_call *calls;	/* handed to handlers, not yet answered */
	size_t n_calls;

	int dead;			/* -errno once a write failed */
	struct husk_error dead_err;

	husk_ttrpc_conn_notify_fn notify;
	void *notify_data;
	uint32_t notified_events;
};

struct husk_ttrpc_call {
	struct husk_ttrpc_conn *conn;	/* NULL once the connection is gone */
	struct husk_ttrpc_call *prev, *next;
	uint32_t stream_id;
	Ttrpc__Request *req;
	ProtobufCMessage *input;
};

/* ---- server ---- */

int husk_ttrpc_server_new(const struct husk_ttrpc_method *methods,
			  size_t n_methods, void *userdata,
			  struct husk_ttrpc_server **ret,
			  struct husk_error *err)
{
	struct husk_ttrpc_server *srv;

	for (size_t i = 0; i < n_methods; i++)
		if (!methods[i].service || !methods[i].method ||
		    !methods[i].input || !methods[i].handler)
			return husk_error_set(err, EINVAL, "ttRPC method table entry %zu is incomplete", i);
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return husk_error_set(err, ENOMEM, "ttRPC: cannot allocate a server");
	srv->methods = methods;
	srv->n_methods = n_methods;
	srv->userdata = userdata;
	*ret = srv;
	return 0;
}

void husk_ttrpc_server_free(struct husk_ttrpc_server *srv)
{
	free(srv);
}

const struct husk_ttrpc_method *
husk_ttrpc_server_lookup(const struct husk_ttrpc_server *srv,
			 const char *service, const char *method)
{
	for (size_t i = 0; i < srv->n_methods; i++) {
		const struct husk_ttrpc_method *m = &srv->methods[i];

		if (!strcmp(m->service, service) && !strcmp(m->method, method))
			return m;
	}
	return NULL;
}

/* ---- output queue ---- */

static size_t conn_out_pending(const struct husk_ttrpc_conn *conn)
{
	return conn->out_len - conn->out_off;
}

/* Make room for n more bytes at out + out_len. */
static int conn_out_reserve(struct husk_ttrpc_conn *conn, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (conn->out_off && conn->out_off == conn->out_len)
		conn->out_off = conn->out_len = 0;
	if (conn->out_cap - conn->out_len >= n)
		return 0;
	if (conn->out_off) {
		memmove(conn->out, conn->out + conn->out_off, conn_out_pending(conn));
		conn->out_len -= conn->out_off;
		conn->out_off = 0;
		if (conn->out_cap - conn->out_len >= n)
			return 0;
	}
	need = conn->out_len + n;
	cap = conn->out_cap ? conn->out_cap : 4096;
	while (cap < need)
		cap *= 2;
	p = realloc(conn->out, cap);
	if (!p)
		return -ENOMEM;
	conn->out = p;
	conn->out_cap = cap;
	return 0;
}

static void conn_fail(struct husk_ttrpc_conn *conn, int rc,
		      const struct husk_error *why)
{
	if (conn->dead)
		return;
	conn->dead = rc;
	conn->dead_err = *why;
}

/* Write what the socket takes now; never blocks. */
static int conn_out_flush(struct husk_ttrpc_conn *conn, struct husk_error *err)
{
	while (conn_out_pending(conn)) {
		struct iovec iov = {
			.iov_base = conn->out + conn->out_off,
			.iov_len = conn_out_pending(conn),
		};
		ssize_t n = ttrpc_writev(conn->fd, &iov, 1);

		if (n < 0) {
			struct husk_error e = {};
			int rc;

			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -EAGAIN;
			rc = husk_error_seterrno(&e, errno, "ttRPC: writing replies failed");
			conn_fail(conn, rc, &e);
			return husk_error_set(err, -rc, "%s", e.msg);
		}
		conn->out_off += n;
	}
	conn->out_off = conn->out_len = 0;
	return 0;
}

uint32_t husk_ttrpc_conn_epoll_events(const struct husk_ttrpc_conn *conn)
{
	uint32_t events = 0;

	/* A dead connection asks for everything so the loop gets to see it. */
	if (conn->dead)
		return EPOLLIN | EPOLLOUT;
	if (conn_out_pending(conn) < CONN_OUT_HIGH)
		events |= EPOLLIN;
	if (conn_out_pending(conn))
		events |= EPOLLOUT;
	return events;
}

bool husk_ttrpc_conn_wants_out(const struct husk_ttrpc_conn *conn)
{
	return husk_ttrpc_conn_epoll_events(conn) & EPOLLOUT;
}

static void conn_update_events(struct husk_ttrpc_conn *conn)
{
	uint32_t events = husk_ttrpc_conn_epoll_events(conn);

	if (events == conn->notified_events)
		return;
	conn->notified_events = events;
	if (conn->notify)
		conn->notify(conn, events, conn->notify_data);
}

void husk_ttrpc_conn_set_notify(struct husk_ttrpc_conn *conn,
				husk_ttrpc_conn_notify_fn fn, void *userdata)
{
	conn->notify = fn;
	conn->notify_data = userdata;
	conn->notified_events = husk_ttrpc_conn_epoll_events(conn);
}

int husk_ttrpc_conn_flush(struct husk_ttrpc_conn *conn, struct husk_error *err)
{
	int rc;

	if (conn->dead)
		return husk_error_set(err, -conn->dead, "%s", conn->dead_err.msg);
	rc = conn_out_flush(conn, err);
	conn_update_events(conn);
	return rc;
}

/*
 * Queue a Response frame.  The status is always present (code 0 on
 * success), as Kata's and containerd's clients expect.
 */
static int conn_send_response(struct husk_ttrpc_conn *conn, uint32_t stream_id,
			      int code, const char *message,
			      const uint8_t *payload, size_t payload_len,
			      struct husk_error *err)
{
	Ttrpc__Status status = TTRPC__STATUS__INIT;
	Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
	struct husk_ttrpc_header hdr = {
		.stream_id = stream_id,
		.type = HUSK_TTRPC_TYPE_RESPONSE,
	};
	size_t len;

	if (conn->dead)
		return -ENOTCONN;
	status.code = code;
	status.message = (char *)(message ? message : "");
	resp.status = &status;
	resp.payload.data = (uint8_t *)payload;
	resp.payload.len = payload_len;

	len = ttrpc__response__get_packed_size(&resp);
	if (len > HUSK_TTRPC_MAX_FRAME) {
		/* Tell the client rather than leave it waiting. */
		conn_send_response(conn, stream_id, HUSK_TTRPC_RESOURCE_EXHAUSTED,
				   "reply exceeds the ttRPC frame limit", NULL, 0, NULL);
		return husk_error_set(err, EMSGSIZE,
				      "ttRPC: a %zu byte reply on stream %u exceeds the frame limit",
				      len, stream_id);
	}
	if (conn_out_reserve(conn, HUSK_TTRPC_HEADER_SIZE + len) < 0)
		return husk_error_set(err, ENOMEM, "ttRPC: cannot queue a %zu byte reply", len);
	hdr.length = len;
	husk_ttrpc_header_encode(&hdr, conn->out + conn->out_len);
	ttrpc__response__pack(&resp, conn->out + conn->out_len + HUSK_TTRPC_HEADER_SIZE);
	conn->out_len += HUSK_TTRPC_HEADER_SIZE + len;

	/* Most replies fit the socket buffer: send now, no EPOLLOUT round trip. */
	if (conn_out_flush(conn, NULL) < 0 && conn->dead)
		return -ENOTCONN;
	conn_update_events(conn);
	return 0;
}

static int conn_send_status(struct husk_ttrpc_conn *conn, uint32_t stream_id,
			    int code, struct husk_error *err,
			    const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int conn_send_status(struct husk_ttrpc_conn *conn, uint32_t stream_id,
			    int code, struct husk_error *err,
			    const char *fmt, ...)
{
	char msg[HUSK_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return conn_send_response(conn, stream_id, code, msg, NULL, 0, err);
}

/* ---- calls ---- */

static void call_unlink(struct husk_ttrpc_call *call)
{
	struct husk_ttrpc_conn *conn = call->conn;

	if (!conn)
		return;
	if (call->prev)
		call->prev->next = call->next;
	else
		conn->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	conn->n_calls--;
	call->conn = NULL;
	call->prev = call->next = NULL;
}

static void call_free(struct husk_ttrpc_call *call)
{
	call_unlink(call);
	if (call->input)
		protobuf_c_message_free_unpacked(call->input, NULL);
	if (call->req)
		ttrpc__request__free_unpacked(call->req, NULL);
	free(call);
}

void husk_ttrpc_call_drop(struct husk_ttrpc_call *call)
{
	if (call)
		call_free(call);
}

/* Detach the call, then answer on its stream if the connection remains. */
static int call_finish(struct husk_ttrpc_call *call, int code, const char *message,
		       const uint8_t *payload, size_t len, struct husk_error *err)
{
	struct husk_ttrpc_conn *conn = call->conn;
	uint32_t stream_id = call->stream_id;

	call_free(call);
	if (!conn)
		return -ENOTCONN;
	return conn_send_response(conn, stream_id, code, message, payload, len, err);
}

int husk_ttrpc_call_reply(struct husk_ttrpc_call *call,
			  const ProtobufCMessage *response,
			  struct husk_error *err)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	int rc;

	rc = ttrpc_pack(response, &buf, &len, err);
	if (rc < 0) {
		call_finish(call, HUSK_TTRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0, NULL);
		return rc;
	}
	return call_finish(call, HUSK_TTRPC_OK, NULL, buf, len, err);
}

int husk_ttrpc_call_reply_status(struct husk_ttrpc_call *call, int code,
				 const char *fmt, ...)
{
	char msg[HUSK_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return call_finish(call, code, msg, NULL, 0, NULL);
}

int husk_ttrpc_call_reply_error(struct husk_ttrpc_call *call,
				const struct husk_error *e)
{
	int errnum = e && e->code ? e->code : EIO;

	return call_finish(call, husk_ttrpc_code_from_errno(errnum),
			   e && e->msg[0] ? e->msg : strerror(errnum), NULL, 0, NULL);
}

const char *husk_ttrpc_call_service(const struct husk_ttrpc_call *call)
{
	return call->req->service;
}

const char *husk_ttrpc_call_method(const struct husk_ttrpc_call *call)
{
	return call->req->method;
}

uint32_t husk_ttrpc_call_stream_id(const struct husk_ttrpc_call *call)
{
	return call->stream_id;
}

int64_t husk_ttrpc_call_timeout_nano(const struct husk_ttrpc_call *call)
{
	return call->req->timeout_nano;
}

const char *husk_ttrpc_call_metadata(const struct husk_ttrpc_call *call,
				     const char *key)
{
	for (size_t i = 0; i < call->req->n_metadata; i++) {
		const Ttrpc__KeyValue *kv = call->req->metadata[i];

		if (kv->key && !strcmp(kv->key, key))
			return kv->value;
	}
	return NULL;
}

bool husk_ttrpc_call_connected(const struct husk_ttrpc_call *call)
{
	return call->conn && !call->conn->dead;
}

/* ---- connection ---- */

int husk_ttrpc_conn_new(struct husk_ttrpc_server *srv, int fd,
			struct husk_ttrpc_conn **ret, struct husk_error *err)
{
	_cleanup_close_ int owned = fd;
	struct husk_ttrpc_conn *conn;
	int flags;

	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return husk_error_seterrno(err, errno, "ttRPC: cannot make fd %d non-blocking", fd);
	conn = calloc(1, sizeof(*conn));
	if (!conn)
		return husk_error_set(err, ENOMEM, "ttRPC: cannot allocate a connection");
	conn->srv = srv;
	conn->fd = TAKE_FD(owned);
	husk_ttrpc_reader_init(&conn->reader);
	conn->notified_events = husk_ttrpc_conn_epoll_events(conn);
	*ret = conn;
	return 0;
}

void husk_ttrpc_conn_free(struct husk_ttrpc_conn *conn)
{
	if (!conn)
		return;
	while (conn->calls)
		call_unlink(conn->calls);
	safe_close(conn->fd);
	husk_ttrpc_reader_release(&conn->reader);
	free(conn->out);
	free(conn);
}

int husk_ttrpc_conn_fd(const struct husk_ttrpc_conn *conn)
{
	return conn->fd;
}

static bool conn_stream_in_flight(const struct husk_ttrpc_conn *conn,
				  uint32_t stream_id)
{
	for (const struct husk_ttrpc_call *c = conn->calls; c; c = c->next)
		if (c->stream_id == stream_id)
			return true;
	return false;
}

/* Streams are client-initiated, hence odd; a reused live id would make
 * two replies indistinguishable. */
static int conn_check_stream(struct husk_ttrpc_conn *conn, uint32_t stream_id,
			     struct husk_error *err)
{
	if (stream_id % 2 == 0)
		return husk_error_set(err, EPROTO,
				      "ttRPC: client used even stream id %u", stream_id);
	if (conn_stream_in_flight(conn, stream_id))
		return husk_error_set(err, EPROTO,
				      "ttRPC: client reused stream %u while its call is in flight",
				      stream_id);
	return 0;
}

/* Names from the wire are untrusted: keep them short in messages. */
#define NAME_FMT "%.128s/%.128s"

static int conn_dispatch_request(struct husk_ttrpc_conn *conn,
				 const struct husk_ttrpc_frame *frame,
				 struct husk_error *err)
{
	uint32_t id = frame->hdr.stream_id;
	const struct husk_ttrpc_method *m;
	struct husk_ttrpc_call *call;
	Ttrpc__Request *req;
	ProtobufCMessage *input;

	if (conn->n_calls >= CONN_MAX_CALLS)
		return conn_send_status(conn, id, HUSK_TTRPC_RESOURCE_EXHAUSTED, err,
					"too many calls in flight on this connection (%d)",
					CONN_MAX_CALLS);
	req = ttrpc__request__unpack(NULL, frame->hdr.length, frame->data);
	if (!req)
		return conn_send_status(conn, id, HUSK_TTRPC_INVALID_ARGUMENT, err,
					"ttRPC request envelope does not decode");
	m = husk_ttrpc_server_lookup(conn->srv, req->service, req->method);
	if (!m) {
		int rc = conn_send_status(conn, id, HUSK_TTRPC_UNIMPLEMENTED, err,
					  NAME_FMT " is not implemented",
					  req->service, req->method);

		ttrpc__request__free_unpacked(req, NULL);
		return rc;
	}
	input = protobuf_c_message_unpack(m->input, NULL, req->payload.len, req->payload.data);
	if (!input) {
		int rc = conn_send_status(conn, id, HUSK_TTRPC_INVALID_ARGUMENT, err,
					  NAME_FMT ": payload does not decode as %s",
					  req->service, req->method, m->input->name);

		ttrpc__request__free_unpacked(req, NULL);
		return rc;
	}
	call = calloc(1, sizeof(*call));
	if (!call) {
		protobuf_c_message_free_unpacked(input, NULL);
		ttrpc__request__free_unpacked(req, NULL);
		return conn_send_status(conn, id, HUSK_TTRPC_RESOURCE_EXHAUSTED, err,
					"out of memory");
	}
	call->stream_id = id;
	call->req = req;
	call->input = input;
	call->conn = conn;
	call->next = conn->calls;
	if (conn->calls)
		conn->calls->prev = call;
	conn->calls = call;
	conn->n_calls++;

	m->handler(call, input, conn->srv->userdata);
	return 0;
}

/*
 * One frame from the reader.  rc is the reader's result: 1 for a frame,
 * -EMSGSIZE for an oversize one whose body was skipped.  Returns < 0 when
 * the connection must close.
 */
static int conn_handle_frame(struct husk_ttrpc_conn *conn, int rc,
			     const struct husk_ttrpc_frame *frame,
			     struct husk_error *err)
{
	uint32_t id = frame->hdr.stream_id;

	switch (frame->hdr.type) {
	case HUSK_TTRPC_TYPE_REQUEST:
		break;
	case HUSK_TTRPC_TYPE_DATA:
		/* No streaming methods are served: nothing can own this data. */
		return 0;
	default:
		return husk_error_set(err, EPROTO,
				      "ttRPC: client sent a frame of type %u on stream %u",
				      frame->hdr.type, id);
	}
	if (conn_check_stream(conn, id, err) < 0)
		return -EPROTO;
	if (rc == -EMSGSIZE)
		/* As Kata's agent: drop the body, answer the stream, keep serving. */
		return conn_send_status(conn, id, HUSK_TTRPC_INVALID_ARGUMENT, err,
					"request of %u bytes exceeds the %u byte ttRPC limit",
					frame->hdr.length, HUSK_TTRPC_MAX_FRAME);
	return conn_dispatch_request(conn, frame, err);
}

static int conn_read_requests(struct husk_ttrpc_conn *conn, struct husk_error *err)
{
	for (int i = 0; i < CONN_READ_BUDGET; i++) {
		struct husk_ttrpc_frame frame = {};
		struct husk_error ferr = {};
		int rc;

		if (conn->dead || conn_out_pending(conn) >= CONN_OUT_HIGH)
			return 0;
		rc = husk_ttrpc_reader_read(&conn->reader, conn->fd, &frame, &ferr);
		if (rc == 0)
			return 0;
		if (rc < 0 && rc != -EMSGSIZE) {
			if (rc == -EBADMSG)
				rc = -EPROTO;
			return husk_error_set(err, -rc, "%s", ferr.msg);
		}
		rc = conn_handle_frame(conn, rc, &frame, err);
		husk_ttrpc_frame_release(&frame);
		if (rc < 0 && rc != -ENOTCONN)
			return rc;
	}
	return 0;
}

int husk_ttrpc_conn_process(struct husk_ttrpc_conn *conn, uint32_t events,
			    struct husk_error *err)
{
	int rc = 0;

	if (!conn->dead && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		conn_out_flush(conn, NULL);
	if (!conn->dead && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		rc = conn_read_requests(conn, err);
	if (!conn->dead && rc >= 0)
		conn_out_flush(conn, NULL);
	if (rc >= 0 && conn->dead)
		rc = husk_error_set(err, -conn->dead, "%s", conn->dead_err.msg);
	conn_update_events(conn);
	return rc < 0 ? rc : 0;
}
