// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * ttRPC client: against a scripted raw peer (exact bytes, hostile replies,
 * silence, hang-ups) and against husk's own server in a thread with several
 * client threads sharing one connection.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <time.h>

#include "health.pb-c.h"
#include "test-ttrpc-helpers.h"

struct fixture {
	struct husk_ttrpc_client *client;
	int peer;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	test_socketpair(sv);
	assert_int_equal(husk_ttrpc_client_new(sv[0], &f->client, NULL), 0);
	f->peer = sv[1];
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	husk_ttrpc_client_free(f->client);
	if (f->peer >= 0)
		close(f->peer);
	free(f);
	return 0;
}

static int start_check(struct fixture *f, const char *arg, int timeout_ms,
		       struct husk_ttrpc_pending **p)
{
	Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;

	req.service = (char *)arg;
	return husk_ttrpc_client_start(f->client, "grpc.Health", "Check", &req.base,
				       &grpc__health_check_response__descriptor,
				       timeout_ms, p, NULL);
}

/* Peer side: read one request frame and return its envelope. */
static Ttrpc__Request *peer_read_request(struct fixture *f, uint32_t *id)
{
	struct husk_ttrpc_frame frame;
	Ttrpc__Request *req;

	assert_int_equal(test_read_frame(f->peer, &frame, 2000), 1);
	assert_int_equal(frame.hdr.type, HUSK_TTRPC_TYPE_REQUEST);
	*id = frame.hdr.stream_id;
	req = ttrpc__request__unpack(NULL, frame.hdr.length, frame.data);
	assert_non_null(req);
	husk_ttrpc_frame_release(&frame);
	return req;
}

/* Peer side: answer stream id with a status and a HealthCheckResponse. */
static void peer_reply(struct fixture *f, uint32_t id, int code, const char *msg,
		       int serving)
{
	Grpc__HealthCheckResponse hc = GRPC__HEALTH_CHECK_RESPONSE__INIT;
	Ttrpc__Status st = TTRPC__STATUS__INIT;
	uint8_t payload[16];
	size_t plen, len;
	uint8_t *body;

	hc.status = serving;
	plen = grpc__health_check_response__pack(&hc, payload);
	st.code = code;
	st.message = (char *)msg;
	body = test_response_bytes(&st, payload, plen, &len);
	test_send_frame(f->peer, id, HUSK_TTRPC_TYPE_RESPONSE, body, len);
	free(body);
}

static int wait_serving(struct fixture *f, struct husk_ttrpc_pending *p,
			struct husk_ttrpc_status *st, struct husk_error *err)
{
	ProtobufCMessage *out = NULL;
	int rc = husk_ttrpc_client_wait(f->client, p, &out, st, err);

	if (rc == 0) {
		Grpc__HealthCheckResponse *hc = (Grpc__HealthCheckResponse *)out;

		assert_non_null(out);
		rc = hc->status;
		protobuf_c_message_free_unpacked(out, NULL);
	} else {
		assert_null(out);
	}
	return rc;
}

/* The request on the wire is exactly the hand-encoded vector. */
static void test_request_wire_exact(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_pending *p;
	struct husk_ttrpc_status st;
	uint8_t got[sizeof(check_request_wire)];

	assert_int_equal(start_check(f, "x", 1000, &p), 0);
	assert_int_equal(read(f->peer, got, sizeof(got)), sizeof(got));
	assert_memory_equal(got, check_request_wire, sizeof(got));
	test_write_all(f->peer, check_response_wire, sizeof(check_response_wire));
	assert_int_equal(wait_serving(f, p, &st, NULL),
			 GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	assert_int_equal(st.code, HUSK_TTRPC_OK);
}

/* One thread, two calls in flight; the second is answered first. */
static void test_two_in_flight_second_answered_first(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_pending *a, *b;
	Ttrpc__Request *ra, *rb;
	uint32_t ida, idb;

	assert_int_equal(start_check(f, "a", 5000, &a), 0);
	assert_int_equal(start_check(f, "b", 5000, &b), 0);
	ra = peer_read_request(f, &ida);
	rb = peer_read_request(f, &idb);
	assert_int_equal(ida, 1);
	assert_int_equal(idb, 3);		/* odd, increasing */
	assert_int_equal(ra->timeout_nano, 5000000000LL);
	ttrpc__request__free_unpacked(ra, NULL);
	ttrpc__request__free_unpacked(rb, NULL);

	peer_reply(f, idb, 0, NULL, 2);
	peer_reply(f, ida, 0, NULL, 1);
	/* Waiting for a reads b's reply first and keeps it for b. */
	assert_int_equal(wait_serving(f, a, NULL, NULL), 1);
	assert_int_equal(wait_serving(f, b, NULL, NULL), 2);
}

static void test_error_status_returned(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_pending *p;
	struct husk_ttrpc_status st;
	struct husk_error err = {};
	uint32_t id;

	assert_int_equal(start_check(f, "", 5000, &p), 0);
	ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
	peer_reply(f, id, HUSK_TTRPC_UNIMPLEMENTED, "grpc.Health/Check is not implemented", 0);
	assert_int_equal(wait_serving(f, p, &st, &err), -EOPNOTSUPP);
	assert_int_equal(st.code, HUSK_TTRPC_UNIMPLEMENTED);
	assert_string_equal(st.message, "grpc.Health/Check is not implemented");
	assert_int_equal(err.code, EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "UNIMPLEMENTED"));
	assert_true(strncmp(err.msg, "grpc.Health/Check: ", 19) == 0);
}

/* containerd/ttrpc peers may leave the status out on success. */
static void test_absent_status_is_ok(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_pending *p;
	struct husk_ttrpc_status st;
	const uint8_t payload[] = { 0x08, 0x02 };
	size_t len;
	uint8_t *body;
	uint32_t id;

	assert_int_equal(start_check(f, "", 5000, &p), 0);
	ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
	body = test_response_bytes(NULL, payload, sizeof(payload), &len);
	test_send_frame(f->peer, id, HUSK_TTRPC_TYPE_RESPONSE, body, len);
	free(body);
	assert_int_equal(wait_serving(f, p, &st, NULL), 2);
	assert_int_equal(st.code, 0);
}

static void test_peer_close_mid_call(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_pending *p, *q;
	struct husk_error err = {};
	uint32_t id;

	assert_int_equal(start_check(f, "", 5000, &p), 0);
	ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
	test_write_all(f->peer, check_response_wire, 7);	/* part of a reply */
	close(f->peer);
	f->peer = -1;
	assert_int_equal(wait_serving(f, p, NULL, &err), -ECONNRESET);
	assert_non_null(strstr(err.msg, "closed"));
	/* The connection stays dead for later calls. */
	assert_int_equal(start_check(f, "", 5000, &q), -ECONNRESET);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* No reply: the deadline ends the call; a late reply is dropped harmlessly. */
static void test_timeout(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_pending *p;
	struct husk_ttrpc_status st;
	struct husk_error err = {};
	Ttrpc__Request *req;
	int64_t t0 = mono_ms(), elapsed;
	uint32_t id;

	assert_int_equal(start_check(f, "", 150, &p), 0);
	req = peer_read_request(f, &id);
	assert_int_equal(req->timeout_nano, 150 * 1000000LL);
	ttrpc__request__free_unpacked(req, NULL);
	assert_int_equal(wait_serving(f, p, &st, &err), -ETIMEDOUT);
	elapsed = mono_ms() - t0;
	assert_true(elapsed >= 150);
	assert_true(elapsed < 2000);
	assert_int_equal(st.code, -1);
	assert_non_null(strstr(err.msg, "grpc.Health/Check"));

	peer_reply(f, id, 0, NULL, 1);		/* too late */
	assert_int_equal(start_check(f, "", 2000, &p), 0);
	ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
	assert_int_equal(id, 3);
	peer_reply(f, id, 0, NULL, 2);
	assert_int_equal(wait_serving(f, p, NULL, NULL), 2);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_pending *p, *q;
	Ttrpc__Request *req;
	uint32_t id;

	assert_int_equal(start_check(f, "", 0, &p), 0);
	husk_ttrpc_client_cancel(f->client, p);
	assert_int_equal(start_check(f, "", 5000, &q), 0);
	req = peer_read_request(f, &id);
	assert_int_equal(req->timeout_nano, 0);		/* no deadline, none sent */
	ttrpc__request__free_unpacked(req, NULL);
	peer_reply(f, id, 0, NULL, 1);		/* the cancelled call's */
	ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
	peer_reply(f, id, 0, NULL, 2);
	assert_int_equal(wait_serving(f, q, NULL, NULL), 2);
}

/* Replies from a hostile peer; each case on a fresh connection. */
static void test_malformed_replies(void **state)
{
	const uint8_t junk[] = { 0xff, 0xff, 0xff };
	const uint8_t bad_payload[] = { 0x0a, 0x00, 0x12, 0x02, 0x08 };	/* payload cut short */
	const uint8_t bad_payload2[] = { 0x12, 0x02, 0x0a, 0x09 };	/* payload: bad field */
	const struct {
		uint8_t type;
		const void *body;
		uint32_t len;
		int rc;
		bool conn_survives;
	} cases[] = {
		{ 9, "", 0, -EPROTO, false },
		{ 0, "", 0, -EPROTO, false },
		{ HUSK_TTRPC_TYPE_REQUEST, "", 0, -EPROTO, false },
		{ HUSK_TTRPC_TYPE_RESPONSE, junk, sizeof(junk), -EBADMSG, true },
		{ HUSK_TTRPC_TYPE_RESPONSE, bad_payload, sizeof(bad_payload), -EBADMSG, true },
		{ HUSK_TTRPC_TYPE_RESPONSE, bad_payload2, sizeof(bad_payload2), -EBADMSG, true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture *f;
		struct husk_ttrpc_pending *p;
		uint32_t id;

		if (i) {
			teardown(state);
			setup(state);
		}
		f = *state;
		assert_int_equal(start_check(f, "", 2000, &p), 0);
		ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
		test_send_frame(f->peer, id, cases[i].type, cases[i].body, cases[i].len);
		assert_int_equal(wait_serving(f, p, NULL, NULL), cases[i].rc);

		assert_int_equal(start_check(f, "", 2000, &p) == 0, cases[i].conn_survives);
		if (cases[i].conn_survives) {
			ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
			peer_reply(f, id, 0, NULL, 1);
			assert_int_equal(wait_serving(f, p, NULL, NULL), 1);
		}
	}
}

/* Data frames and replies for streams nobody asked about are skipped. */
static void test_stray_frames_ignored(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_pending *p;
	uint32_t id;

	assert_int_equal(start_check(f, "", 2000, &p), 0);
	ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
	peer_reply(f, 77, 0, NULL, 2);
	peer_reply(f, 2, 0, NULL, 2);
	test_send_frame(f->peer, id, HUSK_TTRPC_TYPE_DATA, "zz", 2);
	peer_reply(f, id, 0, NULL, 1);
	peer_reply(f, id, 0, NULL, 2);		/* duplicate: dropped */
	assert_int_equal(wait_serving(f, p, NULL, NULL), 1);
}

struct feeder {
	int fd;
	const uint8_t *buf;
	size_t len;
	size_t chunk;
};

static void *feeder_main(void *arg)
{
	struct feeder *fd = arg;

	for (size_t off = 0; off < fd->len; off += fd->chunk) {
		size_t n = fd->len - off < fd->chunk ? fd->len - off : fd->chunk;

		test_write_all(fd->fd, fd->buf + off, n);
		if (fd->chunk == 1)
			usleep(200);
	}
	return NULL;
}

static void feed_in_thread(struct fixture *f, const void *buf, size_t len, size_t chunk,
			   pthread_t *th, struct feeder *fd)
{
	fd->fd = f->peer;
	fd->buf = buf;
	fd->len = len;
	fd->chunk = chunk;
	assert_int_equal(pthread_create(th, NULL, feeder_main, fd), 0);
}

static void test_reply_one_byte_at_a_time(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_pending *p;
	struct feeder fd;
	pthread_t th;
	uint32_t id;

	assert_int_equal(start_check(f, "x", 5000, &p), 0);
	ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
	feed_in_thread(f, check_response_wire, sizeof(check_response_wire), 1, &th, &fd);
	assert_int_equal(wait_serving(f, p, NULL, NULL), 1);
	pthread_join(th, NULL);
}

/* An oversize reply fails its call only; the connection carries on. */
static void test_oversize_reply(void **state)
{
	struct fixture *f = *state;
	const uint32_t big = HUSK_TTRPC_MAX_FRAME + 1;
	struct husk_ttrpc_header hdr = { big, 0, HUSK_TTRPC_TYPE_RESPONSE, 0 };
	struct husk_ttrpc_pending *p;
	struct husk_error err = {};
	struct feeder fd;
	pthread_t th;
	uint32_t id;
	uint8_t *buf;

	assert_int_equal(start_check(f, "", 5000, &p), 0);
	ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
	buf = calloc(1, HUSK_TTRPC_HEADER_SIZE + big);
	assert_non_null(buf);
	hdr.stream_id = id;
	husk_ttrpc_header_encode(&hdr, buf);
	feed_in_thread(f, buf, HUSK_TTRPC_HEADER_SIZE + big, 65536, &th, &fd);
	assert_int_equal(wait_serving(f, p, NULL, &err), -EMSGSIZE);
	pthread_join(th, NULL);
	free(buf);
	assert_non_null(strstr(err.msg, "exceeds"));

	assert_int_equal(start_check(f, "", 2000, &p), 0);
	ttrpc__request__free_unpacked(peer_read_request(f, &id), NULL);
	peer_reply(f, id, 0, NULL, 1);
	assert_int_equal(wait_serving(f, p, NULL, NULL), 1);
}

static void test_request_too_big(void **state)
{
	struct fixture *f = *state;
	struct husk_ttrpc_pending *p;
	struct husk_error err = {};
	Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
	char *big = malloc(HUSK_TTRPC_MAX_FRAME + 1);

	assert_non_null(big);
	memset(big, 'a', HUSK_TTRPC_MAX_FRAME);
	big[HUSK_TTRPC_MAX_FRAME] = '\0';
	req.service = big;
	assert_int_equal(husk_ttrpc_client_call(f->client, "grpc.Health", "Check", &req.base,
						&grpc__health_check_response__descriptor,
						1000, NULL, NULL, &err), -EMSGSIZE);
	free(big);
	test_assert_silent(f->peer, 0);
	/* Nothing went out, so the connection is still good. */
	assert_int_equal(start_check(f, "", 2000, &p), 0);
	husk_ttrpc_client_cancel(f->client, p);
}

/* ---- many threads against husk's own server ---- */

#define THREADS		4
#define CALLS		40

struct parked {
	struct husk_ttrpc_call *call;
	char echo[32];
};

static struct parked parked[THREADS * 2];
static size_t n_parked;

/* Parks every call; the loop answers them newest first, out of order. */
static void echo_handler(struct husk_ttrpc_call *call, const ProtobufCMessage *request,
			 void *userdata)
{
	const Grpc__CheckRequest *req = (const Grpc__CheckRequest *)request;

	assert_true(n_parked < THREADS * 2);
	parked[n_parked].call = call;
	snprintf(parked[n_parked].echo, sizeof(parked[0].echo), "%s", req->service);
	n_parked++;
}

static const struct husk_ttrpc_method echo_methods[] = {
	{ "grpc.Health", "Version", &grpc__check_request__descriptor, echo_handler },
};

static void *server_main(void *arg)
{
	int fd = *(int *)arg;
	struct husk_ttrpc_server *srv;
	struct husk_ttrpc_conn *conn;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };

	assert_int_equal(husk_ttrpc_server_new(echo_methods, 1, NULL, &srv, NULL), 0);
	assert_int_equal(husk_ttrpc_conn_new(srv, fd, &conn, NULL), 0);
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	for (;;) {
		struct epoll_event got;
		int n = epoll_wait(ep, &got, 1, 2);

		if (n == 1 && husk_ttrpc_conn_process(conn, got.events, NULL) < 0)
			break;
		while (n_parked) {
			Grpc__VersionCheckResponse vr = GRPC__VERSION_CHECK_RESPONSE__INIT;
			struct parked *pk = &parked[--n_parked];

			vr.agent_version = pk->echo;
			husk_ttrpc_call_reply(pk->call, &vr.base, NULL);
		}
		ev.events = husk_ttrpc_conn_epoll_events(conn);
		epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
	}
	husk_ttrpc_conn_free(conn);
	husk_ttrpc_server_free(srv);
	close(ep);
	return NULL;
}

struct worker {
	struct husk_ttrpc_client *client;
	int index;
	int ok;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < CALLS; i++) {
		Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
		ProtobufCMessage *out = NULL;
		char tag[32];
		int rc;

		snprintf(tag, sizeof(tag), "t%d-%d", w->index, i);
		req.service = tag;
		rc = husk_ttrpc_client_call(w->client, "grpc.Health", "Version", &req.base,
					    &grpc__version_check_response__descriptor,
					    5000, &out, NULL, NULL);
		if (rc == 0 &&
		    !strcmp(((Grpc__VersionCheckResponse *)out)->agent_version, tag))
			w->ok++;
		if (out)
			protobuf_c_message_free_unpacked(out, NULL);
	}
	return NULL;
}

static void test_threads_share_connection(void **state)
{
	struct husk_ttrpc_client *client;
	struct worker w[THREADS];
	pthread_t srv_th, th[THREADS];
	int sv[2];

	test_socketpair(sv);
	assert_int_equal(pthread_create(&srv_th, NULL, server_main, &sv[1]), 0);
	assert_int_equal(husk_ttrpc_client_new(sv[0], &client, NULL), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .client = client, .index = i };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ok, CALLS);
	}
	husk_ttrpc_client_free(client);		/* closes: the server loop ends */
	pthread_join(srv_th, NULL);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_request_wire_exact),
		T(test_two_in_flight_second_answered_first),
		T(test_error_status_returned),
		T(test_absent_status_is_ok),
		T(test_peer_close_mid_call),
		T(test_timeout),
		T(test_cancel),
		T(test_malformed_replies),
		T(test_stray_frames_ignored),
		T(test_reply_one_byte_at_a_time),
		T(test_oversize_reply),
		T(test_request_too_big),
		cmocka_unit_test(test_threads_share_connection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
