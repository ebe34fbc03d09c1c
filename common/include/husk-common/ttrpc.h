/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ttRPC (containerd/ttrpc wire protocol) over any stream fd: unix sockets,
 * AF_VSOCK, hybrid vsock.  Three layers:
 *
 *  - framing: the 10-byte header, an incremental frame reader for
 *    non-blocking fds and a frame writer that survives short writes;
 *  - server: a method table and per-fd connection objects driven by the
 *    caller's epoll loop (the agent owns the loop; nothing here blocks),
 *    with deferred replies so one slow call never holds up the others;
 *  - client: one connection shared by many calls and threads, with odd
 *    increasing stream ids and a deadline per call.
 *
 * Every function returns 0 (or a documented positive value) or -errno and
 * fills the optional struct husk_error.  Wire details: docs/protocol.md.
 */
#ifndef HUSK_COMMON_TTRPC_H
#define HUSK_COMMON_TTRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "husk-common/error.h"

/* ------------------------------------------------------------------ */
/* Framing                                                             */
/* ------------------------------------------------------------------ */

#define HUSK_TTRPC_HEADER_SIZE	10
#define HUSK_TTRPC_MAX_FRAME	(4u << 20)	/* body bytes, as containerd/ttrpc */

enum husk_ttrpc_type {
	HUSK_TTRPC_TYPE_REQUEST = 1,
	HUSK_TTRPC_TYPE_RESPONSE = 2,
	HUSK_TTRPC_TYPE_DATA = 3,
};

/* Header flags (streaming; husk never sets them and ignores them on input). */
#define HUSK_TTRPC_FLAG_REMOTE_CLOSED	0x1
#define HUSK_TTRPC_FLAG_REMOTE_OPEN	0x2
#define HUSK_TTRPC_FLAG_NO_DATA		0x4

/* gRPC status codes carried in ttrpc.Status.code. */
enum husk_ttrpc_code {
	HUSK_TTRPC_OK = 0,
	HUSK_TTRPC_CANCELLED = 1,
	HUSK_TTRPC_UNKNOWN = 2,
	HUSK_TTRPC_INVALID_ARGUMENT = 3,
	HUSK_TTRPC_DEADLINE_EXCEEDED = 4,
	HUSK_TTRPC_NOT_FOUND = 5,
	HUSK_TTRPC_ALREADY_EXISTS = 6,
	HUSK_TTRPC_PERMISSION_DENIED = 7,
	HUSK_TTRPC_RESOURCE_EXHAUSTED = 8,
	HUSK_TTRPC_FAILED_PRECONDITION = 9,
	HUSK_TTRPC_ABORTED = 10,
	HUSK_TTRPC_OUT_OF_RANGE = 11,
	HUSK_TTRPC_UNIMPLEMENTED = 12,
	HUSK_TTRPC_INTERNAL = 13,
	HUSK_TTRPC_UNAVAILABLE = 14,
	HUSK_TTRPC_DATA_LOSS = 15,
	HUSK_TTRPC_UNAUTHENTICATED = 16,
};

/* "NOT_FOUND" etc.; "UNKNOWN_CODE" outside the table. */
const char *husk_ttrpc_code_name(int code);
/* errno -> status code (ENOENT -> NOT_FOUND, EINVAL -> INVALID_ARGUMENT...,
 * anything unlisted -> INTERNAL) and back (unlisted -> EPROTO). */
int husk_ttrpc_code_from_errno(int errnum);
int husk_ttrpc_errno_from_code(int code);

struct husk_ttrpc_header {
	uint32_t length;	/* body bytes that follow the header */
	uint32_t stream_id;
	uint8_t type;		/* enum husk_ttrpc_type */
	uint8_t flags;
};

void husk_ttrpc_header_encode(const struct husk_ttrpc_header *hdr,
			      uint8_t out[HUSK_TTRPC_HEADER_SIZE]);

/*
 * Parse and check a header.  *hdr is always filled, so a caller can still
 * skip the body or answer on that stream.  Returns 0, -EBADMSG for a type
 * outside 1..3, -EMSGSIZE for a length above HUSK_TTRPC_MAX_FRAME.
 */
int husk_ttrpc_header_decode(const uint8_t in[HUSK_TTRPC_HEADER_SIZE],
			     struct husk_ttrpc_header *hdr,
			     struct husk_error *err);

/* One received frame; data is malloc'd (NULL when length is 0). */
struct husk_ttrpc_frame {
	struct husk_ttrpc_header hdr;
	uint8_t *data;
};

void husk_ttrpc_frame_release(struct husk_ttrpc_frame *frame);

/*
 * Incremental frame reader: keeps a partial header/body across calls, so it
 * works on non-blocking fds that deliver one byte at a time.  Embed it and
 * call husk_ttrpc_reader_init() first; the fields are private.
 */
struct husk_ttrpc_reader {
	uint8_t hbuf[HUSK_TTRPC_HEADER_SIZE];
	size_t have;			/* bytes of header or body so far */
	bool in_body;
	int hdr_status;			/* 0 or -EMSGSIZE (body being skipped) */
	struct husk_ttrpc_header hdr;
	uint8_t *body;
};

void husk_ttrpc_reader_init(struct husk_ttrpc_reader *r);
void husk_ttrpc_reader_release(struct husk_ttrpc_reader *r);

/*
 * Read from fd until one frame is complete or the fd would block.
 * Returns:
 *   1          a frame is in *frame (caller releases it)
 *   0          need more bytes (EAGAIN); EINTR is retried inside
 *   -EMSGSIZE  an oversize frame's body was read and discarded; frame->hdr
 *              says which stream; the reader is ready for the next frame
 *   -EBADMSG   bad header type; the stream cannot be resynchronised
 *   -ECONNRESET the peer closed (EOF), also mid-frame
 *   -errno     read() failed
 */
int husk_ttrpc_reader_read(struct husk_ttrpc_reader *r, int fd,
			   struct husk_ttrpc_frame *frame,
			   struct husk_error *err);

/*
 * Same state machine fed from memory (fuzzing, tests): consumes up to len
 * bytes, sets *used, returns as husk_ttrpc_reader_read() (0 = all consumed,
 * frame not complete yet; never -ECONNRESET).
 */
int husk_ttrpc_reader_feed(struct husk_ttrpc_reader *r, const void *data,
			   size_t len, size_t *used,
			   struct husk_ttrpc_frame *frame,
			   struct husk_error *err);

/*
 * Write one whole frame (header + body) to fd, retrying short writes and
 * EINTR; on a non-blocking fd it polls for POLLOUT.  timeout_ms < 0 waits
 * forever; -ETIMEDOUT if the deadline passes (the stream is then unusable,
 * a partial frame may have gone out).  Length > HUSK_TTRPC_MAX_FRAME gives
 * -EMSGSIZE without writing.
 */
int husk_ttrpc_write_frame(int fd, const struct husk_ttrpc_header *hdr,
			   const void *body, int timeout_ms,
			   struct husk_error *err);

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

struct husk_ttrpc_server;
struct husk_ttrpc_conn;
struct husk_ttrpc_call;

/*
 * A handler owns call until it answers it with exactly one of the
 * husk_ttrpc_call_reply*() functions or husk_ttrpc_call_drop(), either
 * before returning or later from the caller's loop (deferred reply: other
 * requests on the same connection keep being served meanwhile).  request
 * is the decoded input, owned by call and valid until the call is
 * answered.  userdata is the server's.
 */
typedef void (*husk_ttrpc_handler_fn)(struct husk_ttrpc_call *call,
				      const ProtobufCMessage *request,
				      void *userdata);

struct husk_ttrpc_method {
	const char *service;	/* "grpc.AgentService" */
	const char *method;	/* "CreateContainer" */
	const ProtobufCMessageDescriptor *input;
	husk_ttrpc_handler_fn handler;
};

/* methods[] must outlive the server (a static table). */
int husk_ttrpc_server_new(const struct husk_ttrpc_method *methods,
			  size_t n_methods, void *userdata,
			  struct husk_ttrpc_server **ret,
			  struct husk_error *err);
/* Connections must be freed first. */
void husk_ttrpc_server_free(struct husk_ttrpc_server *srv);

/* NULL when no entry matches. */
const struct husk_ttrpc_method *
husk_ttrpc_server_lookup(const struct husk_ttrpc_server *srv,
			 const char *service, const char *method);

/*
 * Wrap an accepted stream fd (ownership passes to the connection, also on
 * failure); it is switched to O_NONBLOCK.  Register it in epoll
 * level-triggered with husk_ttrpc_conn_epoll_events().
 */
int husk_ttrpc_conn_new(struct husk_ttrpc_server *srv, int fd,
			struct husk_ttrpc_conn **ret, struct husk_error *err);

/*
 * Closes the fd.  Calls still owned by handlers are detached: answering
 * them later is safe and discards the reply.  Never call this from inside
 * a handler running on the same connection.
 */
void husk_ttrpc_conn_free(struct husk_ttrpc_conn *conn);

int husk_ttrpc_conn_fd(const struct husk_ttrpc_conn *conn);

/*
 * Handle the epoll events reported for the fd: flush queued replies, read
 * and dispatch a bounded number of requests (fairness with other fds).
 * Returns 0 to keep going, or -errno when the connection is finished (peer
 * closed: -ECONNRESET; protocol violation: -EPROTO; I/O error): the caller
 * then removes the fd from epoll and frees the connection.  Never blocks.
 */
int husk_ttrpc_conn_process(struct husk_ttrpc_conn *conn, uint32_t events,
			    struct husk_error *err);

/* Replies are queued and not fully written: the fd needs EPOLLOUT. */
bool husk_ttrpc_conn_wants_out(const struct husk_ttrpc_conn *conn);

/*
 * The epoll mask to register now: EPOLLIN (dropped while too much output
 * is queued for a peer that does not read), plus EPOLLOUT when wanted.
 */
uint32_t husk_ttrpc_conn_epoll_events(const struct husk_ttrpc_conn *conn);

/*
 * Called whenever husk_ttrpc_conn_epoll_events() changes, including from a
 * deferred reply made outside husk_ttrpc_conn_process(), so the loop can
 * epoll_ctl(EPOLL_CTL_MOD).  Optional: a loop may instead re-query after
 * every event it handles.
 */
typedef void (*husk_ttrpc_conn_notify_fn)(struct husk_ttrpc_conn *conn,
					  uint32_t events, void *userdata);
void husk_ttrpc_conn_set_notify(struct husk_ttrpc_conn *conn,
				husk_ttrpc_conn_notify_fn fn, void *userdata);

/* Try to write queued replies now; 0 when all went out, -EAGAIN if not. */
int husk_ttrpc_conn_flush(struct husk_ttrpc_conn *conn,
			  struct husk_error *err);

/*
 * Answer a call; each consumes (frees) call whatever it returns.
 * Returns 0 when the reply was queued, -ENOTCONN when the connection had
 * already gone (reply discarded, not an error to report), -EMSGSIZE when
 * the encoded reply exceeds HUSK_TTRPC_MAX_FRAME (the client is answered
 * RESOURCE_EXHAUSTED instead), -ENOMEM.
 */
int husk_ttrpc_call_reply(struct husk_ttrpc_call *call,
			  const ProtobufCMessage *response,
			  struct husk_error *err);
int husk_ttrpc_call_reply_status(struct husk_ttrpc_call *call, int code,
				 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Status from an error record: code mapped from e->code, message e->msg. */
int husk_ttrpc_call_reply_error(struct husk_ttrpc_call *call,
				const struct husk_error *e);
/* Forget a call without answering (agent shutting down). */
void husk_ttrpc_call_drop(struct husk_ttrpc_call *call);

/* What the request carried. */
const char *husk_ttrpc_call_service(const struct husk_ttrpc_call *call);
const char *husk_ttrpc_call_method(const struct husk_ttrpc_call *call);
uint32_t husk_ttrpc_call_stream_id(const struct husk_ttrpc_call *call);
int64_t husk_ttrpc_call_timeout_nano(const struct husk_ttrpc_call *call);	/* 0: none */
/* First metadata value for key, NULL if absent. */
const char *husk_ttrpc_call_metadata(const struct husk_ttrpc_call *call,
				     const char *key);
/* The connection still exists (a deferred reply would be delivered). */
bool husk_ttrpc_call_connected(const struct husk_ttrpc_call *call);

/* ------------------------------------------------------------------ */
/* Client                                                              */
/* ------------------------------------------------------------------ */

struct husk_ttrpc_client;
struct husk_ttrpc_pending;

/* The status the peer answered with; message is truncated to fit. */
struct husk_ttrpc_status {
	int code;				/* enum husk_ttrpc_code */
	char message[HUSK_ERROR_MSG_MAX];
};

/*
 * Take ownership of a connected stream fd (also on failure); it is switched
 * to O_NONBLOCK.  The client is safe to use from several threads.
 */
int husk_ttrpc_client_new(int fd, struct husk_ttrpc_client **ret,
			  struct husk_error *err);
/* No call may be in progress; pending calls not yet waited are freed. */
void husk_ttrpc_client_free(struct husk_ttrpc_client *client);

/*
 * One call: send the request, wait for its reply.  timeout_ms > 0 bounds
 * the whole call and is sent as timeout_nano; 0 waits forever.
 *
 * Returns 0 with *response decoded as output (free with
 * protobuf_c_message_free_unpacked(resp, NULL)).  When the peer answers a
 * non-OK status: returns husk_ttrpc_errno_from_code(code) negated, err says
 * "service/method: message", and *status (optional) holds the code and
 * message.  Transport failures: -ETIMEDOUT, -ECONNRESET (peer closed; every
 * later call fails too), -EPROTO (malformed frame: the connection is
 * unusable), -EBADMSG (reply payload does not decode), -EMSGSIZE.  status,
 * when given, has code -1 unless the peer answered.
 */
int husk_ttrpc_client_call(struct husk_ttrpc_client *client,
			   const char *service, const char *method,
			   const ProtobufCMessage *request,
			   const ProtobufCMessageDescriptor *output,
			   int timeout_ms, ProtobufCMessage **response,
			   struct husk_ttrpc_status *status,
			   struct husk_error *err);

/*
 * The same in two steps, so one thread can keep several calls in flight:
 * start sends the request and returns a pending call; wait blocks until its
 * reply (or its deadline, counted from start) and frees it.  Replies to
 * other calls read meanwhile are kept for their own wait.
 */
int husk_ttrpc_client_start(struct husk_ttrpc_client *client,
			    const char *service, const char *method,
			    const ProtobufCMessage *request,
			    const ProtobufCMessageDescriptor *output,
			    int timeout_ms, struct husk_ttrpc_pending **ret,
			    struct husk_error *err);
int husk_ttrpc_client_wait(struct husk_ttrpc_client *client,
			   struct husk_ttrpc_pending *pending,
			   ProtobufCMessage **response,
			   struct husk_ttrpc_status *status,
			   struct husk_error *err);
/* Abandon a started call; its reply, if it ever comes, is discarded. */
void husk_ttrpc_client_cancel(struct husk_ttrpc_client *client,
			      struct husk_ttrpc_pending *pending);

#endif
