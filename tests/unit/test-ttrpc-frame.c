// SPDX-License-Identifier: LGPL-2.1-or-later
/* ttRPC framing: header codec, incremental reader, writer, pinned bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>

#include "health.pb-c.h"
#include "test-ttrpc-helpers.h"

static void test_header_round_trip(void **state)
{
	const struct husk_ttrpc_header cases[] = {
		{ 0, 1, HUSK_TTRPC_TYPE_REQUEST, 0 },
		{ 31, 3, HUSK_TTRPC_TYPE_RESPONSE, 0 },
		{ HUSK_TTRPC_MAX_FRAME, UINT32_MAX, HUSK_TTRPC_TYPE_DATA, 0xff },
		{ 0x00320304, 0x0a0b0c0d, HUSK_TTRPC_TYPE_DATA, HUSK_TTRPC_FLAG_REMOTE_CLOSED },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[HUSK_TTRPC_HEADER_SIZE];
		struct husk_ttrpc_header out;

		husk_ttrpc_header_encode(&cases[i], buf);
		assert_int_equal(husk_ttrpc_header_decode(buf, &out, NULL), 0);
		assert_int_equal(out.length, cases[i].length);
		assert_int_equal(out.stream_id, cases[i].stream_id);
		assert_int_equal(out.type, cases[i].type);
		assert_int_equal(out.flags, cases[i].flags);
	}
}

static void test_header_big_endian(void **state)
{
	const struct husk_ttrpc_header hdr = { 0x00010203, 0x04050607, 2, 9 };
	const uint8_t want[] = { 0, 1, 2, 3, 4, 5, 6, 7, 2, 9 };
	uint8_t buf[HUSK_TTRPC_HEADER_SIZE];

	husk_ttrpc_header_encode(&hdr, buf);
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_header_malformed(void **state)
{
	static const struct {
		uint8_t bytes[HUSK_TTRPC_HEADER_SIZE];
		int rc;
	} cases[] = {
		{ { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0 }, -EBADMSG },		/* type 0 */
		{ { 0, 0, 0, 0, 0, 0, 0, 1, 4, 0 }, -EBADMSG },		/* type 4 */
		{ { 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0 }, -EBADMSG },	/* type 255 */
		{ { 0, 0x40, 0, 1, 0, 0, 0, 1, 1, 0 }, -EMSGSIZE },	/* limit + 1 */
		{ { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1, 0 }, -EMSGSIZE },
		{ { 0x01, 0, 0, 0, 0, 0, 0, 1, 2, 0 }, -EMSGSIZE },	/* reserved byte set */
		{ { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 9, 0 }, -EBADMSG },	/* type checked first */
		{ { 0, 0x40, 0, 0, 0, 0, 0, 1, 3, 0xff }, 0 },		/* exactly the limit */
		{ { 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 }, 0 },		/* ids are the server's business */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct husk_ttrpc_header hdr;
		struct husk_error err = {};

		assert_int_equal(husk_ttrpc_header_decode(cases[i].bytes, &hdr, &err), cases[i].rc);
		if (cases[i].rc) {
			assert_int_equal(err.code, -cases[i].rc);
			assert_non_null(strstr(err.msg, "stream 1"));
		}
		/* The header is filled even when refused. */
		assert_int_equal(hdr.type, cases[i].bytes[8]);
	}
}

static void test_feed_several_frames(void **state)
{
	uint8_t stream[256];
	size_t len = 0, off = 0, n;
	uint8_t *f;
	struct husk_ttrpc_reader r;
	struct husk_ttrpc_frame frame;
	const char *bodies[] = { "hello", "", "third frame" };

	for (int i = 0; i < 3; i++) {
		f = test_frame_bytes(2 * i + 1, HUSK_TTRPC_TYPE_REQUEST, bodies[i],
				     strlen(bodies[i]), &n);
		memcpy(stream + len, f, n);
		len += n;
		free(f);
	}
	husk_ttrpc_reader_init(&r);
	for (int i = 0; i < 3; i++) {
		size_t used;

		assert_int_equal(husk_ttrpc_reader_feed(&r, stream + off, len - off, &used, &frame, NULL), 1);
		off += used;
		assert_int_equal(frame.hdr.stream_id, 2 * i + 1);
		assert_int_equal(frame.hdr.length, strlen(bodies[i]));
		if (frame.hdr.length)
			assert_memory_equal(frame.data, bodies[i], frame.hdr.length);
		else
			assert_null(frame.data);
		husk_ttrpc_frame_release(&frame);
	}
	assert_int_equal(off, len);
	husk_ttrpc_reader_release(&r);
}

/* The peer delivers one byte per write; the reader sees EAGAIN in between. */
static void test_read_one_byte_at_a_time(void **state)
{
	int sv[2];
	struct husk_ttrpc_reader r;
	struct husk_ttrpc_frame frame;
	size_t i;

	test_socketpair(sv);
	test_set_nonblock(sv[0]);
	husk_ttrpc_reader_init(&r);
	for (i = 0; i < sizeof(check_request_wire); i++) {
		int rc;

		test_write_all(sv[1], &check_request_wire[i], 1);
		rc = husk_ttrpc_reader_read(&r, sv[0], &frame, NULL);
		if (i + 1 < sizeof(check_request_wire))
			assert_int_equal(rc, 0);
		else
			assert_int_equal(rc, 1);
	}
	assert_int_equal(frame.hdr.length, 31);
	assert_memory_equal(frame.data, check_request_wire + HUSK_TTRPC_HEADER_SIZE, 31);
	/* Nothing left: would block again. */
	husk_ttrpc_frame_release(&frame);
	assert_int_equal(husk_ttrpc_reader_read(&r, sv[0], &frame, NULL), 0);
	husk_ttrpc_reader_release(&r);
	close(sv[0]);
	close(sv[1]);
}

static void test_read_eof(void **state)
{
	int sv[2];
	struct husk_ttrpc_reader r;
	struct husk_ttrpc_frame frame;
	struct husk_error err = {};

	/* EOF at a frame boundary. */
	test_socketpair(sv);
	close(sv[1]);
	husk_ttrpc_reader_init(&r);
	assert_int_equal(husk_ttrpc_reader_read(&r, sv[0], &frame, NULL), -ECONNRESET);
	close(sv[0]);

	/* EOF in the middle of a body. */
	test_socketpair(sv);
	test_write_all(sv[1], check_request_wire, 20);
	close(sv[1]);
	assert_int_equal(husk_ttrpc_reader_read(&r, sv[0], &frame, &err), -ECONNRESET);
	assert_non_null(strstr(err.msg, "middle of a frame"));
	husk_ttrpc_reader_release(&r);
	close(sv[0]);
}

/* An oversize frame is skipped whole; the next one parses. */
static void test_reader_skips_oversize(void **state)
{
	const uint32_t big = HUSK_TTRPC_MAX_FRAME + 1;
	struct husk_ttrpc_header hdr = { big, 5, HUSK_TTRPC_TYPE_REQUEST, 0 };
	uint8_t hbuf[HUSK_TTRPC_HEADER_SIZE];
	struct husk_ttrpc_reader r;
	struct husk_ttrpc_frame frame;
	struct husk_error err = {};
	uint8_t *junk = calloc(1, big);
	size_t used, total = 0;
	int rc;

	assert_non_null(junk);
	husk_ttrpc_header_encode(&hdr, hbuf);
	husk_ttrpc_reader_init(&r);
	assert_int_equal(husk_ttrpc_reader_feed(&r, hbuf, sizeof(hbuf), &used, &frame, NULL), 0);
	/* Body arrives in pieces; nothing is reported until all of it is gone. */
	while (total + 65536 < big) {
		assert_int_equal(husk_ttrpc_reader_feed(&r, junk, 65536, &used, &frame, NULL), 0);
		total += used;
	}
	rc = husk_ttrpc_reader_feed(&r, junk, big - total, &used, &frame, &err);
	assert_int_equal(rc, -EMSGSIZE);
	assert_int_equal(used, big - total);
	assert_int_equal(frame.hdr.stream_id, 5);
	assert_int_equal(frame.hdr.length, big);
	assert_null(frame.data);
	assert_int_equal(err.code, EMSGSIZE);
	free(junk);

	assert_int_equal(husk_ttrpc_reader_feed(&r, check_request_wire, sizeof(check_request_wire),
						&used, &frame, NULL), 1);
	assert_int_equal(frame.hdr.stream_id, 1);
	husk_ttrpc_frame_release(&frame);
	husk_ttrpc_reader_release(&r);
}

/* A bad type leaves no way to find the next frame: the reader stays broken. */
static void test_reader_bad_type_is_sticky(void **state)
{
	const uint8_t bad[] = { 0, 0, 0, 0, 0, 0, 0, 1, 7, 0 };
	struct husk_ttrpc_reader r;
	struct husk_ttrpc_frame frame;
	size_t used;

	husk_ttrpc_reader_init(&r);
	assert_int_equal(husk_ttrpc_reader_feed(&r, bad, sizeof(bad), &used, &frame, NULL), -EBADMSG);
	assert_int_equal(frame.hdr.type, 7);
	assert_int_equal(husk_ttrpc_reader_feed(&r, check_request_wire, sizeof(check_request_wire),
						&used, &frame, NULL), -EBADMSG);
	assert_int_equal(used, 0);
	husk_ttrpc_reader_release(&r);
}

/* The hand-made bytes decode to the request they claim to be. */
static void test_pinned_check_request_decodes(void **state)
{
	struct husk_ttrpc_reader r;
	struct husk_ttrpc_frame frame;
	Ttrpc__Request *req;
	Grpc__CheckRequest *check;
	size_t used;

	husk_ttrpc_reader_init(&r);
	assert_int_equal(husk_ttrpc_reader_feed(&r, check_request_wire, sizeof(check_request_wire),
						&used, &frame, NULL), 1);
	assert_int_equal(frame.hdr.type, HUSK_TTRPC_TYPE_REQUEST);
	req = ttrpc__request__unpack(NULL, frame.hdr.length, frame.data);
	assert_non_null(req);
	assert_string_equal(req->service, "grpc.Health");
	assert_string_equal(req->method, "Check");
	assert_int_equal(req->timeout_nano, 1000000000);
	assert_int_equal(req->n_metadata, 0);
	check = grpc__check_request__unpack(NULL, req->payload.len, req->payload.data);
	assert_non_null(check);
	assert_string_equal(check->service, "x");
	grpc__check_request__free_unpacked(check, NULL);
	ttrpc__request__free_unpacked(req, NULL);
	husk_ttrpc_frame_release(&frame);
	husk_ttrpc_reader_release(&r);
}

struct slow_reader {
	int fd;
	size_t total;
	uint8_t *buf;
};

static void *slow_reader_main(void *arg)
{
	struct slow_reader *s = arg;
	size_t got = 0;

	while (got < s->total) {
		ssize_t n = read(s->fd, s->buf + got, s->total - got > 777 ? 777 : s->total - got);

		if (n <= 0)
			break;
		got += n;
	}
	s->total = got;
	return NULL;
}

/* Short writes and EAGAIN on a small non-blocking socket buffer. */
static void test_write_frame_short_writes(void **state)
{
	const uint32_t len = 1 << 20;
	struct husk_ttrpc_header hdr = { len, 9, HUSK_TTRPC_TYPE_DATA, 0 };
	uint8_t *body = malloc(len);
	struct slow_reader s;
	pthread_t th;
	int sv[2], small = 4096;

	assert_non_null(body);
	for (uint32_t i = 0; i < len; i++)
		body[i] = i * 7 + 3;
	test_socketpair(sv);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	test_set_nonblock(sv[0]);
	s.fd = sv[1];
	s.total = HUSK_TTRPC_HEADER_SIZE + len;
	s.buf = malloc(s.total);
	assert_non_null(s.buf);
	assert_int_equal(pthread_create(&th, NULL, slow_reader_main, &s), 0);
	assert_int_equal(husk_ttrpc_write_frame(sv[0], &hdr, body, 10000, NULL), 0);
	pthread_join(th, NULL);
	assert_int_equal(s.total, HUSK_TTRPC_HEADER_SIZE + len);
	assert_memory_equal(s.buf, "\x00\x10\x00\x00\x00\x00\x00\x09\x03\x00", 10);
	assert_memory_equal(s.buf + HUSK_TTRPC_HEADER_SIZE, body, len);
	free(s.buf);
	free(body);
	close(sv[0]);
	close(sv[1]);
}

static void test_write_frame_limits(void **state)
{
	struct husk_ttrpc_header hdr = { HUSK_TTRPC_MAX_FRAME + 1, 1, HUSK_TTRPC_TYPE_REQUEST, 0 };
	struct husk_error err = {};
	uint8_t *body;
	int sv[2];

	test_socketpair(sv);
	assert_int_equal(husk_ttrpc_write_frame(sv[0], &hdr, "", -1, &err), -EMSGSIZE);
	test_assert_silent(sv[1], 0);

	/* Nobody reads: the deadline ends the write. */
	body = calloc(1, HUSK_TTRPC_MAX_FRAME);
	assert_non_null(body);
	hdr.length = HUSK_TTRPC_MAX_FRAME;
	test_set_nonblock(sv[0]);
	husk_error_clear(&err);
	assert_int_equal(husk_ttrpc_write_frame(sv[0], &hdr, body, 50, &err), -ETIMEDOUT);
	assert_int_equal(err.code, ETIMEDOUT);
	free(body);

	/* The peer is gone: an error, not SIGPIPE. */
	close(sv[1]);
	hdr.length = 3;
	husk_error_clear(&err);
	assert_int_equal(husk_ttrpc_write_frame(sv[0], &hdr, "abc", 100, &err), -EPIPE);
	close(sv[0]);
}

static void test_status_codes(void **state)
{
	assert_string_equal(husk_ttrpc_code_name(HUSK_TTRPC_UNIMPLEMENTED), "UNIMPLEMENTED");
	assert_string_equal(husk_ttrpc_code_name(99), "UNKNOWN_CODE");
	assert_string_equal(husk_ttrpc_code_name(-1), "UNKNOWN_CODE");
	assert_int_equal(husk_ttrpc_code_from_errno(ENOENT), HUSK_TTRPC_NOT_FOUND);
	assert_int_equal(husk_ttrpc_code_from_errno(-EINVAL), HUSK_TTRPC_INVALID_ARGUMENT);
	assert_int_equal(husk_ttrpc_code_from_errno(EXDEV), HUSK_TTRPC_INTERNAL);
	assert_int_equal(husk_ttrpc_errno_from_code(HUSK_TTRPC_NOT_FOUND), ENOENT);
	assert_int_equal(husk_ttrpc_errno_from_code(HUSK_TTRPC_UNIMPLEMENTED), EOPNOTSUPP);
	assert_int_equal(husk_ttrpc_errno_from_code(HUSK_TTRPC_UNKNOWN), EPROTO);
	assert_int_equal(husk_ttrpc_errno_from_code(1234), EPROTO);
	/* Every known code maps to some errno and back to a code. */
	for (int code = 1; code <= HUSK_TTRPC_UNAUTHENTICATED; code++)
		assert_true(husk_ttrpc_errno_from_code(code) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_header_big_endian),
		cmocka_unit_test(test_header_malformed),
		cmocka_unit_test(test_feed_several_frames),
		cmocka_unit_test(test_read_one_byte_at_a_time),
		cmocka_unit_test(test_read_eof),
		cmocka_unit_test(test_reader_skips_oversize),
		cmocka_unit_test(test_reader_bad_type_is_sticky),
		cmocka_unit_test(test_pinned_check_request_decodes),
		cmocka_unit_test(test_write_frame_short_writes),
		cmocka_unit_test(test_write_frame_limits),
		cmocka_unit_test(test_status_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
