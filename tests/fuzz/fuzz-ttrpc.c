// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Bytes from the network -> ttRPC server connection: frame reader, Request
 * decode, method lookup, payload decode, handlers that answer at once,
 * defer, or outlive the connection.  Every byte the server writes back is
 * checked to be a well-formed Response frame with a Status.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health.pb-c.h"
#include "husk-common/ttrpc.h"
#include "ttrpc.pb-c.h"

#define FUZZ_MAX_INPUT	(64 * 1024)	/* fits a socketpair buffer */
#define MAX_PARKED	64

static struct husk_ttrpc_call *parked[MAX_PARKED];
static size_t n_parked;

static void check_handler(struct husk_ttrpc_call *call, const ProtobufCMessage *request,
			  void *userdata)
{
	Grpc__HealthCheckResponse resp = GRPC__HEALTH_CHECK_RESPONSE__INIT;

	resp.status = GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	husk_ttrpc_call_metadata(call, "trace");
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}

static void version_handler(struct husk_ttrpc_call *call, const ProtobufCMessage *request,
			    void *userdata)
{
	if (n_parked < MAX_PARKED)
		parked[n_parked++] = call;
	else
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_UNAVAILABLE, "busy");
}

static const struct husk_ttrpc_method methods[] = {
	{ "grpc.Health", "Check", &grpc__check_request__descriptor, check_handler },
	{ "grpc.Health", "Version", &grpc__check_request__descriptor, version_handler },
};

/* Every reply must parse: the server never emits a malformed frame. */
static void check_replies(struct husk_ttrpc_reader *r, int fd)
{
	for (;;) {
		struct husk_ttrpc_frame frame;
		Ttrpc__Response *resp;
		int rc = husk_ttrpc_reader_read(r, fd, &frame, NULL);

		if (rc == 0 || rc == -ECONNRESET)
			break;
		assert(rc == 1);
		assert(frame.hdr.type == HUSK_TTRPC_TYPE_RESPONSE);
		assert(frame.hdr.stream_id % 2 == 1);
		resp = ttrpc__response__unpack(NULL, frame.hdr.length, frame.data);
		assert(resp && resp->status);
		ttrpc__response__free_unpacked(resp, NULL);
		husk_ttrpc_frame_release(&frame);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct husk_ttrpc_server *srv;
	struct husk_ttrpc_reader replies;
	struct husk_ttrpc_conn *conn;
	int sv[2];

	if (size > FUZZ_MAX_INPUT)
		return -1;
	if (!srv && husk_ttrpc_server_new(methods, 2, NULL, &srv, NULL) < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	if (husk_ttrpc_conn_new(srv, sv[0], &conn, NULL) < 0)
		abort();
	if (size && write(sv[1], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[1], SHUT_WR);
	husk_ttrpc_reader_init(&replies);

	/* As an epoll loop would: process until the connection ends. */
	for (int i = 0; i < 10000; i++) {
		if (husk_ttrpc_conn_process(conn, EPOLLIN | EPOLLOUT, NULL) < 0)
			break;
		/* Answer half the parked calls while connected. */
		while (n_parked > MAX_PARKED / 2)
			husk_ttrpc_call_reply_status(parked[--n_parked], HUSK_TTRPC_OK, "late");
		check_replies(&replies, sv[1]);
	}
	check_replies(&replies, sv[1]);
	husk_ttrpc_reader_release(&replies);
	husk_ttrpc_conn_free(conn);

	/* The rest outlive the connection: replying must be harmless. */
	while (n_parked) {
		struct husk_ttrpc_call *call = parked[--n_parked];

		if (n_parked % 2)
			husk_ttrpc_call_drop(call);
		else
			assert(husk_ttrpc_call_reply_status(call, 0, "gone") == -ENOTCONN);
	}
	close(sv[1]);
	return 0;
}
