/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test-side ttRPC peer helpers shared by the test-ttrpc-* programs: a raw
 * socketpair end that writes hand-made frames and reads whole frames back,
 * so each side of the library is checked against bytes, not against itself.
 */
#ifndef TEST_TTRPC_HELPERS_H
#define TEST_TTRPC_HELPERS_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "husk-common/ttrpc.h"
#include "ttrpc.pb-c.h"

/*
 * grpc.Health/Check, CheckRequest{service: "x"}, timeout 1 s, stream 1,
 * encoded by hand from the protobuf wire rules (not by protobuf-c).
 */
static const uint8_t check_request_wire[] = {
	0x00, 0x00, 0x00, 0x1f,			/* length 31 */
	0x00, 0x00, 0x00, 0x01,			/* stream 1 */
	0x01, 0x00,				/* request, no flags */
	0x0a, 0x0b, 'g', 'r', 'p', 'c', '.', 'H', 'e', 'a', 'l', 't', 'h',
	0x12, 0x05, 'C', 'h', 'e', 'c', 'k',
	0x1a, 0x03, 0x0a, 0x01, 'x',		/* payload: CheckRequest */
	0x20, 0x80, 0x94, 0xeb, 0xdc, 0x03,	/* timeout_nano 1e9 */
};

/* The reply husk's server must give it: status present (code 0, encoded as
 * an empty submessage), payload HealthCheckResponse{status: SERVING}. */
static const uint8_t check_response_wire[] = {
	0x00, 0x00, 0x00, 0x06,			/* length 6 */
	0x00, 0x00, 0x00, 0x01,			/* stream 1 */
	0x02, 0x00,				/* response, no flags */
	0x0a, 0x00,				/* status {} */
	0x12, 0x02, 0x08, 0x01,			/* payload: status SERVING */
};

/* A stream socketpair; both ends blocking, close-on-exec. */
static inline void test_socketpair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static inline void test_set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	assert_true(flags >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
}

static inline void test_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			poll(&pfd, 1, 1000);
			continue;
		}
		assert_true(n > 0);
		p += n;
		len -= n;
	}
}

/* Header + body as one buffer (caller frees). */
static inline uint8_t *test_frame_bytes(uint32_t stream_id, uint8_t type,
					const void *body, uint32_t len,
					size_t *out_len)
{
	struct husk_ttrpc_header hdr = {
		.length = len, .stream_id = stream_id, .type = type,
	};
	uint8_t *buf = malloc(HUSK_TTRPC_HEADER_SIZE + len + 1);

	assert_non_null(buf);
	husk_ttrpc_header_encode(&hdr, buf);
	if (len)
		memcpy(buf + HUSK_TTRPC_HEADER_SIZE, body, len);
	*out_len = HUSK_TTRPC_HEADER_SIZE + len;
	return buf;
}

static inline void test_send_frame(int fd, uint32_t stream_id, uint8_t type,
				   const void *body, uint32_t len)
{
	size_t n;
	uint8_t *buf = test_frame_bytes(stream_id, type, body, len, &n);

	test_write_all(fd, buf, n);
	free(buf);
}

/* Encode a ttrpc.Request envelope around an already-packed payload. */
static inline uint8_t *test_request_bytes(const char *service, const char *method,
					  const void *payload, size_t payload_len,
					  int64_t timeout_nano, size_t *len)
{
	Ttrpc__Request req = TTRPC__REQUEST__INIT;
	uint8_t *buf;

	req.service = (char *)service;
	req.method = (char *)method;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = payload_len;
	req.timeout_nano = timeout_nano;
	*len = ttrpc__request__get_packed_size(&req);
	buf = malloc(*len + 1);
	assert_non_null(buf);
	ttrpc__request__pack(&req, buf);
	return buf;
}

static inline void test_send_request(int fd, uint32_t stream_id, const char *service,
				     const char *method, const ProtobufCMessage *msg)
{
	uint8_t payload[4096];
	size_t plen = msg ? protobuf_c_message_get_packed_size(msg) : 0;
	size_t len;
	uint8_t *body;

	assert_true(plen <= sizeof(payload));
	if (msg)
		protobuf_c_message_pack(msg, payload);
	body = test_request_bytes(service, method, payload, plen, 0, &len);
	test_send_frame(fd, stream_id, HUSK_TTRPC_TYPE_REQUEST, body, len);
	free(body);
}

/* Encode a ttrpc.Response; status NULL leaves it out. */
static inline uint8_t *test_response_bytes(const Ttrpc__Status *status,
					   const void *payload, size_t payload_len,
					   size_t *len)
{
	Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
	uint8_t *buf;

	resp.status = (Ttrpc__Status *)status;
	resp.payload.data = (uint8_t *)payload;
	resp.payload.len = payload_len;
	*len = ttrpc__response__get_packed_size(&resp);
	buf = malloc(*len + 1);
	assert_non_null(buf);
	ttrpc__response__pack(&resp, buf);
	return buf;
}

/*
 * Read one frame within timeout_ms from fd (any blocking mode).  Returns
 * the reader's result, or 0 on timeout.
 */
static inline int test_read_frame(int fd, struct husk_ttrpc_frame *frame, int timeout_ms)
{
	struct husk_ttrpc_reader r;
	int flags = fcntl(fd, F_GETFL);
	int rc = 0;

	husk_ttrpc_reader_init(&r);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		rc = husk_ttrpc_reader_read(&r, fd, frame, NULL);
		if (rc != 0)
			break;
		if (poll(&pfd, 1, timeout_ms) <= 0)
			break;
	}
	fcntl(fd, F_SETFL, flags);
	husk_ttrpc_reader_release(&r);
	return rc;
}

/* Read a Response frame for stream_id and decode its envelope. */
static inline Ttrpc__Response *test_read_response(int fd, uint32_t *stream_id)
{
	struct husk_ttrpc_frame frame;
	Ttrpc__Response *resp;

	assert_int_equal(test_read_frame(fd, &frame, 2000), 1);
	assert_int_equal(frame.hdr.type, HUSK_TTRPC_TYPE_RESPONSE);
	assert_int_equal(frame.hdr.flags, 0);
	*stream_id = frame.hdr.stream_id;
	resp = ttrpc__response__unpack(NULL, frame.hdr.length, frame.data);
	assert_non_null(resp);
	husk_ttrpc_frame_release(&frame);
	return resp;
}

/* Nothing readable on fd within timeout_ms. */
static inline void test_assert_silent(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	assert_int_equal(poll(&pfd, 1, timeout_ms), 0);
}

#endif
