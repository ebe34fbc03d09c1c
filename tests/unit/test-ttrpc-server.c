// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * ttRPC server: a connection driven by hand (as an epoll loop would) with a
 * raw peer on the other end of a socketpair writing hand-made frames.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <sys/epoll.h>

#include "health.pb-c.h"
#include "test-ttrpc-helpers.h"

#define BIG_REPLY	(3u << 20)
#define MAX_DEFERRED	1100

/* What the handlers saw; the handlers run on this thread. */
static struct {
	int check_calls;
	int64_t timeout_nano;
	char trace[64];
	struct husk_ttrpc_call *deferred[MAX_DEFERRED];
	size_t n_deferred;
	uint32_t notified;
	int notify_count;
} seen;

static void check_handler(struct husk_ttrpc_call *call, const ProtobufCMessage *request,
			  void *userdata)
{
	Grpc__HealthCheckResponse resp = GRPC__HEALTH_CHECK_RESPONSE__INIT;
	const char *trace = husk_ttrpc_call_metadata(call, "trace");

	seen.check_calls++;
	seen.timeout_nano = husk_ttrpc_call_timeout_nano(call);
	snprintf(seen.trace, sizeof(seen.trace), "%s", trace ? trace : "");
	resp.status = GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	assert_int_equal(husk_ttrpc_call_reply(call, &resp.base, NULL), 0);
}

/* CheckRequest.service picks the behaviour: defer, big, error, or plain. */
static void version_handler(struct husk_ttrpc_call *call, const ProtobufCMessage *request,
			    void *userdata)
{
	const Grpc__CheckRequest *req = (const Grpc__CheckRequest *)request;
	Grpc__VersionCheckResponse resp = GRPC__VERSION_CHECK_RESPONSE__INIT;
	char *big = NULL;

	if (!strcmp(req->service, "defer")) {
		assert_true(seen.n_deferred < MAX_DEFERRED);
		seen.deferred[seen.n_deferred++] = call;
		return;
	}
	if (!strcmp(req->service, "error")) {
		struct husk_error e = {};

		husk_error_set(&e, ENOENT, "container %s: not found", "c1");
		assert_int_equal(husk_ttrpc_call_reply_error(call, &e), 0);
		return;
	}
	if (!strcmp(req->service, "big") || !strcmp(req->service, "huge")) {
		size_t size = req->service[0] == 'b' ? BIG_REPLY : HUSK_TTRPC_MAX_FRAME;

		big = malloc(size + 1);
		assert_non_null(big);
		memset(big, 'v', size);
		big[size] = '\0';
	}
	resp.grpc_version = (char *)"ttrpc";
	resp.agent_version = big ? big : (char *)"1.0";
	assert_int_equal(husk_ttrpc_call_reply(call, &resp.base, NULL),
			 !strcmp(req->service, "huge") ? -EMSGSIZE : 0);
	free(big);
}

static const struct husk_ttrpc_method methods[] = {
	{ "grpc.Health", "Check", &grpc__check_request__descriptor, check_handler },
	{ "grpc.Health", "Version", &grpc__check_request__descriptor, version_handler },
};

struct fixture {
	struct husk_ttrpc_server *srv;
	struct husk_ttrpc_conn *conn;
	int peer;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	memset(&seen, 0, sizeof(seen));
	test_socketpair(sv);
	assert_int_equal(husk_ttrpc_server_new(methods, 2, NULL, &f->srv, NULL), 0);
	assert_int_equal(husk_ttrpc_conn_new(f->srv, sv[0], &f->conn, NULL), 0);
	f->peer = sv[1];
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < seen.n_deferred; i++)
		husk_ttrpc_call_drop(seen.deferred[i]);
	husk_ttrpc_conn_free(f->conn);
	husk_ttrpc_server_free(f->srv);
	if (f->peer >= 0)
		close(f->peer);
	free(f);
	return 0;
}

static int pump(struct fixture *f, struct husk_error *err)
{
	return husk_ttrpc_conn_process(f->conn, EPOLLIN | EPOLLOUT, err);
}

static void send_check_version(struct fixture *f, uint32_t id, const char *method,
			       const char *arg)
{
	Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;

	req.service = (char *)arg;
	test_send_request(f->peer, id, "grpc.Health", method, &req.base);
}

/* Read a response and check its status; returns it for more checks. */
static Ttrpc__Response *expect_response(struct fixture *f, uint32_t id, int code)
{
	uint32_t got_id;
	Ttrpc__Response *resp = test_read_response(f->peer, &got_id);

	assert_int_equal(got_id, id);
	assert_non_null(resp->status);	/* always present, also on success */
	assert_int_equal(resp->status->code, code);
	return resp;
}

static void expect_status(struct fixture *f, uint32_t id, int code, const char *needle)
{
	Ttrpc__Response *resp = expect_response(f, id, code);

	if (needle)
		assert_non_null(strstr(resp->status->message, needle));
	ttrpc__response__free_unpacked(resp, NULL);
}

/* The server's reply to the pinned request is pinned too. */
static void test_check_wire_exact(void **state)
{
	struct fixture *f = *state;
	uint8_t got[sizeof(check_response_wire)];

	test_write_all(f->peer, check_request_wire, sizeof(check_request_wire));
	assert_int_equal(pump(f, NULL), 0);
	assert_int_equal(seen.check_calls, 1);
	assert_int_equal(seen.timeout_nano, 1000000000);
	assert_int_equal(read(f->peer, got, sizeof(got)), sizeof(got));
	assert_memory_equal(got, check_response_wire, sizeof(got));
	test_assert_silent(f->peer, 0);
	assert_false(husk_ttrpc_conn_wants_out(f->conn));
	assert_int_equal(husk_ttrpc_conn_epoll_events(f->conn), EPOLLIN);
}

static void test_unknown_method(void **state)
{
	struct fixture *f = *state;

	send_check_version(f, 1, "Nope", "");
	test_send_request(f->peer, 3, "grpc.AgentService", "Check", NULL);
	assert_int_equal(pump(f, NULL), 0);
	expect_status(f, 1, HUSK_TTRPC_UNIMPLEMENTED, "grpc.Health/Nope");
	expect_status(f, 3, HUSK_TTRPC_UNIMPLEMENTED, "grpc.AgentService/Check");
	assert_int_equal(seen.check_calls, 0);
}

static void test_bad_payload(void **state)
{
	struct fixture *f = *state;
	const uint8_t truncated[] = { 0x0a, 0x05, 'a' };	/* string says 5, has 1 */
	size_t len;
	uint8_t *body = test_request_bytes("grpc.Health", "Check", truncated,
					   sizeof(truncated), 0, &len);

	test_send_frame(f->peer, 1, HUSK_TTRPC_TYPE_REQUEST, body, len);
	free(body);
	assert_int_equal(pump(f, NULL), 0);
	expect_status(f, 1, HUSK_TTRPC_INVALID_ARGUMENT, "grpc.Health/Check");
	assert_int_equal(seen.check_calls, 0);
}

/* A request envelope that is not protobuf; the connection survives. */
static void test_bad_envelope(void **state)
{
	struct fixture *f = *state;
	const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0xff };

	test_send_frame(f->peer, 1, HUSK_TTRPC_TYPE_REQUEST, junk, sizeof(junk));
	test_send_frame(f->peer, 3, HUSK_TTRPC_TYPE_REQUEST, NULL, 0);	/* empty: no method */
	send_check_version(f, 5, "Check", "");
	assert_int_equal(pump(f, NULL), 0);
	expect_status(f, 1, HUSK_TTRPC_INVALID_ARGUMENT, "envelope");
	expect_status(f, 3, HUSK_TTRPC_UNIMPLEMENTED, NULL);
	expect_status(f, 5, HUSK_TTRPC_OK, NULL);
}

/* Oversize: body discarded, INVALID_ARGUMENT on that stream, connection kept. */
static void test_oversize_frame(void **state)
{
	struct fixture *f = *state;
	const uint32_t big = HUSK_TTRPC_MAX_FRAME + 100;
	struct husk_ttrpc_header hdr = { big, 7, HUSK_TTRPC_TYPE_REQUEST, 0 };
	uint8_t hbuf[HUSK_TTRPC_HEADER_SIZE];
	uint8_t *body = malloc(big);
	size_t off = 0;

	assert_non_null(body);
	memset(body, 0x0a, big);
	husk_ttrpc_header_encode(&hdr, hbuf);
	test_write_all(f->peer, hbuf, sizeof(hbuf));
	test_set_nonblock(f->peer);
	while (off < big) {
		ssize_t n = write(f->peer, body + off, big - off);

		if (n > 0)
			off += n;
		assert_int_equal(pump(f, NULL), 0);
	}
	free(body);
	send_check_version(f, 9, "Check", "");
	assert_int_equal(pump(f, NULL), 0);
	expect_status(f, 7, HUSK_TTRPC_INVALID_ARGUMENT, "exceeds");
	expect_status(f, 9, HUSK_TTRPC_OK, NULL);
}

/* Frames the server cannot make sense of close the connection. */
static void test_protocol_violations_close(void **state)
{
	struct fixture *f = *state;
	struct {
		uint32_t id;
		uint8_t type;
		const char *needle;
	} cases[] = {
		{ 1, 7, "type 7" },
		{ 1, 0, "type 0" },
		{ 1, HUSK_TTRPC_TYPE_RESPONSE, "type 2" },
		{ 2, HUSK_TTRPC_TYPE_REQUEST, "even stream id 2" },
		{ 0, HUSK_TTRPC_TYPE_REQUEST, "even stream id 0" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct husk_error err = {};

		if (i) {
			teardown(state);
			setup(state);
			f = *state;
		}
		test_send_frame(f->peer, cases[i].id, cases[i].type, "", 0);
		assert_int_equal(pump(f, &err), -EPROTO);
		assert_non_null(strstr(err.msg, cases[i].needle));
		test_assert_silent(f->peer, 0);
	}
}

static void test_stream_reuse_closes(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = {};

	send_check_version(f, 11, "Version", "defer");
	assert_int_equal(pump(f, NULL), 0);
	send_check_version(f, 11, "Check", "");
	assert_int_equal(pump(f, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "reused stream 11"));
	assert_int_equal(seen.check_calls, 0);
}

/* Data frames have no stream to join: ignored, the connection carries on. */
static void test_data_frame_ignored(void **state)
{
	struct fixture *f = *state;

	test_send_frame(f->peer, 1, HUSK_TTRPC_TYPE_DATA, "xyz", 3);
	send_check_version(f, 3, "Check", "");
	assert_int_equal(pump(f, NULL), 0);
	expect_status(f, 3, HUSK_TTRPC_OK, NULL);
	test_assert_silent(f->peer, 0);
}

/* A deferred call does not hold up the next one; its reply comes later. */
static void test_deferred_reply_out_of_order(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_call *call;
	Grpc__VersionCheckResponse vr = GRPC__VERSION_CHECK_RESPONSE__INIT;
	Grpc__VersionCheckResponse *got;
	Ttrpc__Response *resp;

	send_check_version(f, 1, "Version", "defer");
	send_check_version(f, 3, "Check", "");
	assert_int_equal(pump(f, NULL), 0);
	assert_int_equal(seen.n_deferred, 1);
	expect_status(f, 3, HUSK_TTRPC_OK, NULL);
	test_assert_silent(f->peer, 0);

	call = seen.deferred[0];
	seen.n_deferred = 0;
	assert_true(husk_ttrpc_call_connected(call));
	assert_string_equal(husk_ttrpc_call_service(call), "grpc.Health");
	assert_string_equal(husk_ttrpc_call_method(call), "Version");
	assert_int_equal(husk_ttrpc_call_stream_id(call), 1);
	assert_null(husk_ttrpc_call_metadata(call, "trace"));
	/* Answered from "the loop", outside process(). */
	vr.agent_version = (char *)"late";
	assert_int_equal(husk_ttrpc_call_reply(call, &vr.base, NULL), 0);
	resp = expect_response(f, 1, HUSK_TTRPC_OK);
	got = grpc__version_check_response__unpack(NULL, resp->payload.len, resp->payload.data);
	assert_non_null(got);
	assert_string_equal(got->agent_version, "late");
	grpc__version_check_response__free_unpacked(got, NULL);
	ttrpc__response__free_unpacked(resp, NULL);
}

/* The connection goes away first: the late reply is dropped, nothing breaks. */
static void test_deferred_reply_after_close(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_call *a, *b;

	send_check_version(f, 1, "Version", "defer");
	send_check_version(f, 3, "Version", "defer");
	assert_int_equal(pump(f, NULL), 0);
	assert_int_equal(seen.n_deferred, 2);
	a = seen.deferred[0];
	b = seen.deferred[1];
	seen.n_deferred = 0;
	husk_ttrpc_conn_free(f->conn);
	f->conn = NULL;
	assert_false(husk_ttrpc_call_connected(a));
	assert_string_equal(husk_ttrpc_call_method(a), "Version");
	assert_int_equal(husk_ttrpc_call_reply_status(a, HUSK_TTRPC_OK, "done"), -ENOTCONN);
	husk_ttrpc_call_drop(b);
}

static void test_request_one_byte_at_a_time(void **state)
{
	struct fixture *f = *state;
	uint8_t got[sizeof(check_response_wire)];

	for (size_t i = 0; i < sizeof(check_request_wire); i++) {
		test_write_all(f->peer, &check_request_wire[i], 1);
		assert_int_equal(pump(f, NULL), 0);
		assert_int_equal(seen.check_calls, i + 1 == sizeof(check_request_wire));
	}
	assert_int_equal(read(f->peer, got, sizeof(got)), sizeof(got));
	assert_memory_equal(got, check_response_wire, sizeof(got));
}

static void test_peer_close(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = {};

	send_check_version(f, 1, "Version", "defer");
	test_write_all(f->peer, check_request_wire, 12);	/* half a frame */
	close(f->peer);
	f->peer = -1;
	assert_int_equal(pump(f, &err), -ECONNRESET);
	assert_int_equal(err.code, ECONNRESET);
	/* The deferred call outlives the connection's usefulness, safely. */
	assert_int_equal(husk_ttrpc_call_reply_status(seen.deferred[0], 0, "x"), -ENOTCONN);
	seen.n_deferred = 0;
}

static void notify_cb(struct husk_ttrpc_conn *conn, uint32_t events, void *userdata)
{
	seen.notified = events;
	seen.notify_count++;
}

/*
 * A peer that does not read: replies queue up, EPOLLOUT is wanted, and past
 * the high-water mark the server stops reading requests.  Draining brings
 * everything back in order.
 */
static void test_slow_reader_backpressure(void **state)
{
	struct fixture *f = *state;
	int small = 16384;
	size_t got = 0;
	uint32_t expect_id = 1;
	struct husk_ttrpc_reader r;

	setsockopt(husk_ttrpc_conn_fd(f->conn), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	husk_ttrpc_conn_set_notify(f->conn, notify_cb, NULL);
	for (uint32_t id = 1; id <= 9; id += 2)
		send_check_version(f, id, "Version", "big");
	assert_int_equal(pump(f, NULL), 0);
	assert_true(husk_ttrpc_conn_wants_out(f->conn));
	assert_true(seen.notify_count > 0);
	assert_true(seen.notified & EPOLLOUT);
	/* Three 3 MiB replies pass the 8 MiB mark: input is paused. */
	assert_int_equal(husk_ttrpc_conn_epoll_events(f->conn), EPOLLOUT);
	assert_int_equal(seen.notified, EPOLLOUT);

	husk_ttrpc_reader_init(&r);
	test_set_nonblock(f->peer);
	while (got < 5) {
		struct husk_ttrpc_frame frame;
		int rc;

		assert_int_equal(husk_ttrpc_conn_process(f->conn, EPOLLOUT, NULL), 0);
		rc = husk_ttrpc_reader_read(&r, f->peer, &frame, NULL);
		if (rc == 0) {
			/* Input resumes once output drains below the mark. */
			assert_int_equal(pump(f, NULL), 0);
			continue;
		}
		assert_int_equal(rc, 1);
		assert_int_equal(frame.hdr.stream_id, expect_id);
		assert_true(frame.hdr.length > BIG_REPLY);
		husk_ttrpc_frame_release(&frame);
		expect_id += 2;
		got++;
	}
	husk_ttrpc_reader_release(&r);
	assert_int_equal(pump(f, NULL), 0);
	assert_false(husk_ttrpc_conn_wants_out(f->conn));
	assert_int_equal(seen.notified, EPOLLIN);
}

/* A reply too big to frame becomes RESOURCE_EXHAUSTED for the client. */
static void test_reply_too_big(void **state)
{
	struct fixture *f = *state;

	send_check_version(f, 1, "Version", "huge");
	send_check_version(f, 3, "Check", "");
	assert_int_equal(pump(f, NULL), 0);
	expect_status(f, 1, HUSK_TTRPC_RESOURCE_EXHAUSTED, "frame limit");
	expect_status(f, 3, HUSK_TTRPC_OK, NULL);
}

/* A deferred reply that does not fit the socket tells the loop to wait for EPOLLOUT. */
static void test_notify_on_deferred_reply(void **state)
{
	struct fixture *f = *state;
	Grpc__VersionCheckResponse vr = GRPC__VERSION_CHECK_RESPONSE__INIT;
	struct husk_ttrpc_reader r;
	struct husk_ttrpc_frame frame;
	int small = 16384, rc;
	char *big = malloc(BIG_REPLY + 1);

	assert_non_null(big);
	memset(big, 'w', BIG_REPLY);
	big[BIG_REPLY] = '\0';
	setsockopt(husk_ttrpc_conn_fd(f->conn), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	husk_ttrpc_conn_set_notify(f->conn, notify_cb, NULL);
	send_check_version(f, 1, "Version", "defer");
	assert_int_equal(pump(f, NULL), 0);
	assert_int_equal(seen.notify_count, 0);

	vr.agent_version = big;
	assert_int_equal(husk_ttrpc_call_reply(seen.deferred[--seen.n_deferred], &vr.base, NULL), 0);
	free(big);
	assert_int_equal(seen.notify_count, 1);
	assert_int_equal(seen.notified, EPOLLIN | EPOLLOUT);

	husk_ttrpc_reader_init(&r);
	test_set_nonblock(f->peer);
	while ((rc = husk_ttrpc_reader_read(&r, f->peer, &frame, NULL)) == 0)
		assert_int_equal(husk_ttrpc_conn_process(f->conn, EPOLLOUT, NULL), 0);
	assert_int_equal(rc, 1);
	assert_int_equal(frame.hdr.stream_id, 1);
	husk_ttrpc_frame_release(&frame);
	husk_ttrpc_reader_release(&r);
	assert_int_equal(seen.notified, EPOLLIN);
	assert_int_equal(seen.notify_count, 2);
}

static void test_reply_error_maps_errno(void **state)
{
	struct fixture *f = *state;

	send_check_version(f, 1, "Version", "error");
	assert_int_equal(pump(f, NULL), 0);
	expect_status(f, 1, HUSK_TTRPC_NOT_FOUND, "container c1: not found");
}

static void test_metadata_and_timeout(void **state)
{
	struct fixture *f = *state;
	Ttrpc__Request req = TTRPC__REQUEST__INIT;
	Ttrpc__KeyValue kv[2] = { TTRPC__KEY_VALUE__INIT, TTRPC__KEY_VALUE__INIT };
	Ttrpc__KeyValue *kvs[2] = { &kv[0], &kv[1] };
	uint8_t buf[256];
	size_t len;

	kv[0].key = (char *)"other";
	kv[0].value = (char *)"1";
	kv[1].key = (char *)"trace";
	kv[1].value = (char *)"abc";
	req.service = (char *)"grpc.Health";
	req.method = (char *)"Check";
	req.timeout_nano = 42;
	req.n_metadata = 2;
	req.metadata = kvs;
	len = ttrpc__request__pack(&req, buf);
	test_send_frame(f->peer, 1, HUSK_TTRPC_TYPE_REQUEST, buf, len);
	assert_int_equal(pump(f, NULL), 0);
	expect_status(f, 1, HUSK_TTRPC_OK, NULL);
	assert_string_equal(seen.trace, "abc");
	assert_int_equal(seen.timeout_nano, 42);
}

/* A client may not park unbounded calls on the agent. */
static void test_too_many_calls_in_flight(void **state)
{
	struct fixture *f = *state;
	uint32_t id = 1;
	int sndbuf = 4 << 20;

	setsockopt(f->peer, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (int i = 0; i < 1025; i++, id += 2) {
		send_check_version(f, id, "Version", "defer");
		assert_int_equal(pump(f, NULL), 0);
	}
	assert_int_equal(seen.n_deferred, 1024);
	expect_status(f, id - 2, HUSK_TTRPC_RESOURCE_EXHAUSTED, "too many calls");
	/* Answering one makes room again. */
	husk_ttrpc_call_reply_status(seen.deferred[--seen.n_deferred], 0, "ok");
	expect_status(f, 2047, HUSK_TTRPC_OK, NULL);
	send_check_version(f, id, "Check", "");
	assert_int_equal(pump(f, NULL), 0);
	expect_status(f, id, HUSK_TTRPC_OK, NULL);
}

static void test_method_table_checked(void **state)
{
	const struct husk_ttrpc_method bad[] = {
		{ "grpc.Health", "Check", NULL, check_handler },
	};
	struct husk_ttrpc_server *srv = NULL;
	struct husk_error err = {};

	assert_int_equal(husk_ttrpc_server_new(bad, 1, NULL, &srv, &err), -EINVAL);
	assert_null(srv);
	assert_non_null(husk_ttrpc_server_lookup(((struct fixture *)*state)->srv,
						 "grpc.Health", "Version"));
	assert_null(husk_ttrpc_server_lookup(((struct fixture *)*state)->srv,
					     "grpc.health", "Version"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_check_wire_exact),
		T(test_unknown_method),
		T(test_bad_payload),
		T(test_bad_envelope),
		T(test_oversize_frame),
		T(test_protocol_violations_close),
		T(test_stream_reuse_closes),
		T(test_data_frame_ignored),
		T(test_deferred_reply_out_of_order),
		T(test_deferred_reply_after_close),
		T(test_request_one_byte_at_a_time),
		T(test_peer_close),
		T(test_slow_reader_backpressure),
		T(test_reply_too_big),
		T(test_notify_on_deferred_reply),
		T(test_reply_error_maps_errno),
		T(test_metadata_and_timeout),
		T(test_too_many_calls_in_flight),
		T(test_method_table_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
