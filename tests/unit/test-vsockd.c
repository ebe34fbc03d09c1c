// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk-vsockd's engine driven end to end without QEMU: the fake guest
 * (host/lib/vsock/fake-guest.c) plays QEMU and the guest driver over a
 * real vhost-user socket and shared memfd; the test plays the host side
 * with plain unix sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk-common/cleanup.h"
#include "fake-guest.h"
#include "virtq.h"
#include "vsockd.h"
#include "vu-dev.h"

#define CID		3
#define BUF_ALLOC	4096
#define MAX_CONNS	8
#define RX		0
#define TX		1

struct env {
	char dir[64];
	char vu[80];
	char uds[80];
	struct vsockd *d;
	struct fake_guest g;
	int listeners[4];
	unsigned nlisteners;
	unsigned info_lines;
};

static void count_log(void *opaque, enum vsockd_log_level level, const char *msg)
{
	struct env *e = opaque;

	e->info_lines += level == VSOCKD_LOG_INFO;
	if (getenv("VSOCKD_TEST_LOG"))
		fprintf(stderr, "vsockd: %s\n", msg);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct vsockd_config cfg = {
		.guest_cid = CID, .max_conns = MAX_CONNS, .buf_alloc = BUF_ALLOC,
		.request_timeout_ms = 100, .line_timeout_ms = 100,
	};

	assert_non_null(e);
	strcpy(e->dir, "/tmp/test-vsockd.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->vu, sizeof(e->vu), "%s/vu.sock", e->dir);
	snprintf(e->uds, sizeof(e->uds), "%s/vsock", e->dir);
	cfg.vhost_user_path = e->vu;
	cfg.uds_path = e->uds;
	cfg.log = count_log;
	cfg.log_opaque = e;
	assert_int_equal(vsockd_new(&cfg, &e->d, NULL), 0);
	assert_int_equal(fg_open(&e->g, e->d, e->vu, CID), 0);
	assert_int_equal(fg_start(&e->g, VU_VSOCK_FEATURES), 0);
	fg_post_rx(&e->g, 32, 4096);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char path[160];

	fg_close(&e->g);
	vsockd_free(e->d);
	for (unsigned i = 0; i < e->nlisteners; i++)
		close(e->listeners[i]);
	/* vsockd_free removed its own sockets; ours are the _PORT ones. */
	for (unsigned port = 1234; port <= 1235; port++) {
		snprintf(path, sizeof(path), "%s_%u", e->uds, port);
		unlink(path);
	}
	assert_int_equal(rmdir(e->dir), 0);
	free(e);
	return 0;
}

static int host_listen(struct env *e, unsigned port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", e->uds, port);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	e->listeners[e->nlisteners++] = fd;
	return fd;
}

static struct vsock_hdr expect_pkt(struct env *e, uint16_t op, void *payload, size_t cap)
{
	struct vsock_hdr h;

	assert_int_equal(fg_recv(&e->g, &h, payload, cap, NULL), 1);
	assert_int_equal(h.op, op);
	assert_int_equal(h.src_cid, VSOCK_HOST_CID);
	assert_int_equal(h.dst_cid, CID);
	return h;
}

/* Keep 32 rx buffers posted, as a guest driver refills what it read. */
static void refill_rx(struct env *e)
{
	struct fg_queue *q = &e->g.q[RX];
	uint16_t outstanding = q->avail_idx - q->used_seen;

	if (outstanding < 32)
		fg_post_rx(&e->g, 32 - outstanding, 4096);
}

static void expect_no_pkt(struct env *e)
{
	struct vsock_hdr h;

	assert_int_equal(fg_recv(&e->g, &h, NULL, 0, NULL), 0);
}

static void send_op(struct env *e, uint16_t op, uint32_t gport, uint32_t hport)
{
	struct vsock_hdr h = fg_hdr(&e->g, op, gport, hport, 0);

	fg_send(&e->g, &h, NULL, 0);
}

static void send_data(struct env *e, uint32_t gport, uint32_t hport, const void *p, uint32_t n)
{
	struct vsock_hdr h = fg_hdr(&e->g, VSOCK_OP_RW, gport, hport, n);

	fg_send(&e->g, &h, p, n);
}

/* Guest connects to host port hport; returns the host's accepted socket. */
static int guest_connect(struct env *e, int lfd, uint32_t gport, uint32_t hport)
{
	struct vsock_hdr h;
	int fd;

	send_op(e, VSOCK_OP_REQUEST, gport, hport);
	h = expect_pkt(e, VSOCK_OP_RESPONSE, NULL, 0);
	assert_int_equal(h.src_port, hport);
	assert_int_equal(h.dst_port, gport);
	assert_int_equal(h.buf_alloc, BUF_ALLOC);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static int host_client(struct env *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, e->uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static ssize_t host_read(int fd, void *buf, size_t n)
{
	return recv(fd, buf, n, MSG_DONTWAIT);
}

/* Host client connects to guest port gport; *hport gets the host port. */
static int host_connect(struct env *e, uint32_t gport, const char *extra, uint32_t *hport)
{
	char line[64], expect[64];
	struct vsock_hdr h;
	int fd = host_client(e);
	ssize_t n;

	n = snprintf(line, sizeof(line), "connect %u\n%s", gport, extra);
	assert_int_equal(write(fd, line, n), n);
	fg_pump(&e->g);
	h = expect_pkt(e, VSOCK_OP_REQUEST, NULL, 0);
	assert_int_equal(h.dst_port, gport);
	assert_true(h.src_port >= 1u << 30);
	assert_int_equal(host_read(fd, line, sizeof(line)), -1);	/* no OK yet */
	send_op(e, VSOCK_OP_RESPONSE, gport, h.src_port);
	snprintf(expect, sizeof(expect), "OK %u\n", h.src_port);
	n = host_read(fd, line, strlen(expect));
	assert_int_equal(n, strlen(expect));
	assert_memory_equal(line, expect, n);
	*hport = h.src_port;
	return fd;
}

/* ---- connections and data ---- */

static void test_guest_to_host(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	char buf[64];
	struct vsock_hdr h;

	send_data(e, 5000, 1234, "hello", 5);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);

	assert_int_equal(write(fd, "world!", 6), 6);
	fg_pump(&e->g);
	h = expect_pkt(e, VSOCK_OP_RW, buf, sizeof(buf));
	assert_int_equal(h.len, 6);
	assert_int_equal(h.dst_port, 5000);
	assert_int_equal(h.fwd_cnt, 5);
	assert_memory_equal(buf, "world!", 6);
	assert_int_equal(vsockd_conn_count(e->d), 1);
	close(fd);
}

static void test_host_to_guest(void **state)
{
	struct env *e = *state;
	uint32_t hport;
	int fd = host_connect(e, 5000, "early", &hport);
	char buf[64];
	struct vsock_hdr h;

	/* Bytes sent with the CONNECT line were not swallowed. */
	fg_pump(&e->g);
	h = expect_pkt(e, VSOCK_OP_RW, buf, sizeof(buf));
	assert_int_equal(h.len, 5);
	assert_int_equal(h.src_port, hport);
	assert_memory_equal(buf, "early", 5);

	send_data(e, 5000, hport, "pong", 4);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "pong", 4);
	close(fd);
}

static void test_host_connect_refused(void **state)
{
	struct env *e = *state;
	int fd = host_client(e);
	struct vsock_hdr h;
	char buf[16];

	assert_int_equal(write(fd, "CONNECT 7\n", 10), 10);
	fg_pump(&e->g);
	h = expect_pkt(e, VSOCK_OP_REQUEST, NULL, 0);
	send_op(e, VSOCK_OP_RST, 7, h.src_port);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);	/* EOF, no OK */
	assert_int_equal(vsockd_conn_count(e->d), 0);
	close(fd);
}

static void test_host_connect_timeout(void **state)
{
	struct env *e = *state;
	int fd = host_client(e);
	struct vsock_hdr h;
	char buf[16];

	assert_int_equal(write(fd, "CONNECT 8\n", 10), 10);
	fg_pump(&e->g);
	h = expect_pkt(e, VSOCK_OP_REQUEST, NULL, 0);
	usleep(150 * 1000);
	fg_pump(&e->g);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	h = expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	assert_int_equal(h.dst_port, 8);
	close(fd);
}

static void test_bad_connect_line(void **state)
{
	struct env *e = *state;
	static const char *const lines[] = { "CONNECT\n", "CONNECT -1\n", "CONNECT 4294967296\n",
					     "HELLO 5\n", "CONNECT 5 6\n" };

	for (unsigned i = 0; i < ARRAY_SIZE(lines); i++) {
		int fd = host_client(e);
		char buf[8];

		assert_int_equal(write(fd, lines[i], strlen(lines[i])), strlen(lines[i]));
		fg_pump(&e->g);
		assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
		close(fd);
	}
	/* A client that never finishes its line is dropped after the timeout. */
	int fd = host_client(e);
	char buf[8];

	assert_int_equal(write(fd, "CONN", 4), 4);
	fg_pump(&e->g);
	assert_int_equal(vsockd_conn_count(e->d), 1);
	usleep(150 * 1000);
	fg_pump(&e->g);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	expect_no_pkt(e);
	close(fd);
}

static void test_guest_connect_refused(void **state)
{
	struct env *e = *state;
	struct vsock_hdr h;

	send_op(e, VSOCK_OP_REQUEST, 5000, 4444);	/* nobody listens on _4444 */
	h = expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	assert_int_equal(h.src_port, 4444);
	assert_int_equal(h.dst_port, 5000);
	assert_int_equal(vsockd_conn_count(e->d), 0);
}

/* ---- credit ---- */

static void test_guest_credit_overrun(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	static char big[BUF_ALLOC + 1];
	char buf[8];

	/* Two packets in one batch: the second goes past the advertised credit. */
	send_data(e, 5000, 1234, big, 3000);
	expect_no_pkt(e);
	send_data(e, 5000, 1234, big, 3000);
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	assert_int_equal(vsockd_conn_count(e->d), 0);
	while (host_read(fd, buf, sizeof(buf)) > 0)
		;
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	close(fd);

	/* One packet larger than the whole buffer. */
	fd = guest_connect(e, lfd, 5001, 1234);
	send_data(e, 5001, 1234, big, sizeof(big));
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	close(fd);
}

static void test_guest_credit_update(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	static char big[BUF_ALLOC];
	struct vsock_hdr h;

	/* Filling the advertised window makes the backend hand credit back. */
	send_data(e, 5000, 1234, big, BUF_ALLOC);
	h = expect_pkt(e, VSOCK_OP_CREDIT_UPDATE, NULL, 0);
	assert_int_equal(h.fwd_cnt, BUF_ALLOC);
	send_data(e, 5000, 1234, big, BUF_ALLOC);
	h = expect_pkt(e, VSOCK_OP_CREDIT_UPDATE, NULL, 0);
	assert_int_equal(h.fwd_cnt, 2 * BUF_ALLOC);

	/* CREDIT_REQUEST is always answered. */
	send_op(e, VSOCK_OP_CREDIT_REQUEST, 5000, 1234);
	h = expect_pkt(e, VSOCK_OP_CREDIT_UPDATE, NULL, 0);
	assert_int_equal(h.buf_alloc, BUF_ALLOC);
	close(fd);
}

static void test_host_respects_guest_credit(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	struct vsock_hdr h = fg_hdr(&e->g, VSOCK_OP_REQUEST, 5000, 1234, 0);
	static char data[1000];
	uint32_t total = 0;
	int fd;

	h.buf_alloc = 100;	/* a tiny guest receive buffer */
	fg_send(&e->g, &h, NULL, 0);
	expect_pkt(e, VSOCK_OP_RESPONSE, NULL, 0);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	memset(data, 'x', sizeof(data));
	assert_int_equal(write(fd, data, sizeof(data)), sizeof(data));
	fg_pump(&e->g);
	while (fg_recv(&e->g, &h, NULL, 0, NULL) == 1) {
		assert_int_equal(h.op, VSOCK_OP_RW);
		total += h.len;
	}
	assert_int_equal(total, 100);	/* never past the guest's buf_alloc */

	/* The guest consumed 60 bytes: exactly 60 more may come. */
	h = fg_hdr(&e->g, VSOCK_OP_CREDIT_UPDATE, 5000, 1234, 0);
	h.buf_alloc = 100;
	h.fwd_cnt = 60;
	fg_send(&e->g, &h, NULL, 0);
	h = expect_pkt(e, VSOCK_OP_RW, NULL, 0);
	assert_int_equal(h.len, 60);
	expect_no_pkt(e);

	/* A bogus fwd_cnt far ahead never buys more than buf_alloc in flight. */
	h = fg_hdr(&e->g, VSOCK_OP_CREDIT_UPDATE, 5000, 1234, 0);
	h.buf_alloc = 100;
	h.fwd_cnt = 0x80000000u;
	fg_send(&e->g, &h, NULL, 0);
	expect_no_pkt(e);
	close(fd);
}

/* A host reader that never reads stalls only its own connection. */
static void test_slow_reader_isolated(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int slow = guest_connect(e, lfd, 5000, 1234);
	int fast = guest_connect(e, lfd, 5001, 1234);
	static char chunk[BUF_ALLOC];
	uint32_t sent = 0, acked = 0;
	struct vsock_hdr h;
	char buf[64];

	/* Push data at the slow reader within credit until credit stops coming. */
	for (int round = 0; round < 400; round++) {
		uint32_t room = BUF_ALLOC - (sent - acked);

		if (room == 0)
			break;
		send_data(e, 5000, 1234, chunk, room);
		sent += room;
		while (fg_recv(&e->g, &h, NULL, 0, NULL) == 1)
			if (h.op == VSOCK_OP_CREDIT_UPDATE && h.dst_port == 5000)
				acked = h.fwd_cnt;
		refill_rx(e);
	}
	assert_int_equal(sent - acked, BUF_ALLOC);	/* window closed */

	/* The other connection still moves data both ways. */
	send_data(e, 5001, 1234, "ping", 4);
	assert_int_equal(host_read(fast, buf, sizeof(buf)), 4);
	assert_int_equal(write(fast, "pong", 4), 4);
	fg_pump(&e->g);
	h = expect_pkt(e, VSOCK_OP_RW, buf, sizeof(buf));
	assert_int_equal(h.dst_port, 5001);

	/* Once the slow reader drains, credit flows again. */
	while (host_read(slow, chunk, sizeof(chunk)) > 0)
		fg_pump(&e->g);
	while (fg_recv(&e->g, &h, NULL, 0, NULL) == 1)
		if (h.op == VSOCK_OP_CREDIT_UPDATE && h.dst_port == 5000)
			acked = h.fwd_cnt;
	assert_int_equal(acked, sent);
	close(slow);
	close(fast);
}

/* An rx buffer with room for a header only takes control packets, never
 * spins on data. */
static void test_rx_header_only_buffer(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	struct fake_guest *g = &e->g;
	struct vsock_hdr h;
	char buf[8];

	while (fg_recv(g, &h, NULL, 0, NULL) == 1)
		;
	fg_set_desc(g, RX, g->q[RX].used_seen % FG_QSIZE, g->q[RX].buf_gpa,
		    VSOCK_HDR_SIZE, VIRTQ_DESC_F_WRITE, 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	fg_pump(g);
	expect_no_pkt(e);
	send_op(e, VSOCK_OP_CREDIT_REQUEST, 5000, 1234);
	expect_pkt(e, VSOCK_OP_CREDIT_UPDATE, NULL, 0);
	h = expect_pkt(e, VSOCK_OP_RW, buf, sizeof(buf));
	assert_int_equal(h.len, 3);
	assert_false(vsockd_device_broken(e->d));
	close(fd);
}

/* ---- shutdown and reset ---- */

static void test_guest_close(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	char buf[8];
	struct vsock_hdr h = fg_hdr(&e->g, VSOCK_OP_SHUTDOWN, 5000, 1234, 0);

	h.flags = VSOCK_SHUTDOWN_BOTH;
	fg_send(&e->g, &h, NULL, 0);
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	assert_int_equal(vsockd_conn_count(e->d), 0);
	/* The guest's second RST for the flow gets no answer. */
	send_op(e, VSOCK_OP_RST, 5000, 1234);
	expect_no_pkt(e);
	close(fd);
}

static void test_host_close(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	char buf[8];
	struct vsock_hdr h;

	assert_int_equal(write(fd, "bye", 3), 3);
	close(fd);
	fg_pump(&e->g);
	h = expect_pkt(e, VSOCK_OP_RW, buf, sizeof(buf));	/* data before the close */
	assert_int_equal(h.len, 3);
	h = expect_pkt(e, VSOCK_OP_SHUTDOWN, NULL, 0);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_BOTH);
	send_op(e, VSOCK_OP_RST, 5000, 1234);
	assert_int_equal(vsockd_conn_count(e->d), 0);
	expect_no_pkt(e);
}

static void test_host_close_unanswered(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	struct vsock_hdr h;

	close(fd);
	fg_pump(&e->g);
	h = expect_pkt(e, VSOCK_OP_SHUTDOWN, NULL, 0);
	usleep(150 * 1000);	/* the guest never answers with RST */
	fg_pump(&e->g);
	h = expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	assert_int_equal(h.dst_port, 5000);
	assert_int_equal(vsockd_conn_count(e->d), 0);
}

static void test_half_close(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	char buf[8];
	struct vsock_hdr h;

	/* Host stops sending: the guest hears SEND, but may keep writing. */
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	fg_pump(&e->g);
	h = expect_pkt(e, VSOCK_OP_SHUTDOWN, NULL, 0);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_SEND);
	send_data(e, 5000, 1234, "late", 4);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 4);
	/* Then the guest is done too: the flow ends with RST. */
	h = fg_hdr(&e->g, VSOCK_OP_SHUTDOWN, 5000, 1234, 0);
	h.flags = VSOCK_SHUTDOWN_SEND;
	fg_send(&e->g, &h, NULL, 0);
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	assert_int_equal(vsockd_conn_count(e->d), 0);
	close(fd);
}

static void test_guest_rst(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	char buf[8];

	send_op(e, VSOCK_OP_RST, 5000, 1234);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	assert_int_equal(vsockd_conn_count(e->d), 0);
	expect_no_pkt(e);
	close(fd);
}

static void test_unknown_flow(void **state)
{
	struct env *e = *state;
	struct vsock_hdr h;

	send_data(e, 9, 9, "x", 1);
	h = expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	assert_int_equal(h.src_port, 9);
	send_op(e, VSOCK_OP_RST, 9, 9);		/* never RST an RST */
	send_op(e, VSOCK_OP_CREDIT_UPDATE, 9, 9);
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	expect_no_pkt(e);
}

static void test_duplicate_request(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	char buf[8];

	send_op(e, VSOCK_OP_REQUEST, 5000, 1234);
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	close(fd);
}

/* ---- hostile header fields ---- */

static void test_bad_header_fields(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	struct vsock_hdr h;
	int fd;

	/* Wrong addresses are dropped silently. */
	h = fg_hdr(&e->g, VSOCK_OP_REQUEST, 5000, 1234, 0);
	h.src_cid = 99;
	fg_send(&e->g, &h, NULL, 0);
	h = fg_hdr(&e->g, VSOCK_OP_REQUEST, 5000, 1234, 0);
	h.dst_cid = 7;
	fg_send(&e->g, &h, NULL, 0);
	h = fg_hdr(&e->g, VSOCK_OP_REQUEST, 5000, 1234, 0);
	h.src_cid |= 1ull << 32;
	fg_send(&e->g, &h, NULL, 0);
	expect_no_pkt(e);
	assert_int_equal(vsockd_conn_count(e->d), 0);

	/* Bad type and op are answered with RST. */
	h = fg_hdr(&e->g, VSOCK_OP_REQUEST, 5000, 1234, 0);
	h.type = 2;
	fg_send(&e->g, &h, NULL, 0);
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	send_op(e, 0, 5000, 1234);
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	send_op(e, 99, 5000, 1234);
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	assert_int_equal(vsockd_conn_count(e->d), 0);

	/* hdr.len larger than the bytes present resets the flow. */
	fd = guest_connect(e, lfd, 5000, 1234);
	h = fg_hdr(&e->g, VSOCK_OP_RW, 5000, 1234, 100);
	fg_send(&e->g, &h, "abc", 3);
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	assert_int_equal(vsockd_conn_count(e->d), 0);
	close(fd);

	/* SHUTDOWN flags outside 0b11 reset the flow. */
	fd = guest_connect(e, lfd, 5001, 1234);
	h = fg_hdr(&e->g, VSOCK_OP_SHUTDOWN, 5001, 1234, 0);
	h.flags = 4;
	fg_send(&e->g, &h, NULL, 0);
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
	close(fd);

	/* A packet shorter than a header is dropped and the ring moves on. */
	{
		uint16_t before = fg_tx_used(&e->g);

		fg_set_desc(&e->g, TX, 0, 0x100000, 20, 0, 0);
		fg_publish(&e->g, TX, 0);
		fg_kick(&e->g, TX);
		assert_int_equal(fg_tx_used(&e->g), before + 1);
		assert_false(vsockd_device_broken(e->d));
		expect_no_pkt(e);
	}
}

static void test_connection_flood(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	struct vsock_hdr h;
	unsigned ok = 0, rst = 0;

	for (unsigned i = 0; i < MAX_CONNS + 4; i++)
		send_op(e, VSOCK_OP_REQUEST, 6000 + i, 1234);
	while (fg_recv(&e->g, &h, NULL, 0, NULL) == 1) {
		ok += h.op == VSOCK_OP_RESPONSE;
		rst += h.op == VSOCK_OP_RST;
	}
	assert_int_equal(ok, MAX_CONNS);
	assert_int_equal(rst, 4);
	assert_int_equal(vsockd_conn_count(e->d), MAX_CONNS);

	/* Host clients beyond the cap are closed at once. */
	int fd = host_client(e);
	char buf[4];

	fg_pump(&e->g);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	close(fd);
	(void)lfd;
}

/* Each refused REQUEST logs a line, but a flood cannot flood the log. */
static void test_log_flood_capped(void **state)
{
	struct env *e = *state;
	struct vsock_hdr h;
	unsigned before = e->info_lines;

	for (unsigned i = 0; i < 200; i++) {
		send_op(e, VSOCK_OP_REQUEST, 7000 + i, 4444);
		while (fg_recv(&e->g, &h, NULL, 0, NULL) == 1)
			assert_int_equal(h.op, VSOCK_OP_RST);
		refill_rx(e);
	}
	assert_true(e->info_lines - before >= 10);
	assert_true(e->info_lines - before <= 50);
}

/* Replies wait for rx buffers; tx stops being consumed before they pile up. */
static void test_reply_queue_bounded(void **state)
{
	struct env *e = *state;
	struct fake_guest *g = &e->g;
	unsigned consumed, got = 0;
	struct vsock_hdr h;

	/* Use up the rx buffers first. */
	while (fg_recv(g, &h, NULL, 0, NULL) == 1)
		;
	for (unsigned i = 0; i < 32; i++)
		send_data(e, 100 + i, 9, "x", 1);
	while (fg_recv(g, &h, NULL, 0, NULL) == 1)
		got++;
	assert_int_equal(got, 32);	/* the 32 posted buffers */
	/* rx is now empty: keep sending to unknown flows. */
	uint16_t before = fg_tx_used(g);

	for (unsigned i = 0; i < 60; i++)
		send_data(e, 200 + i, 9, "x", 1);
	consumed = (uint16_t)(fg_tx_used(g) - before);
	assert_true(consumed < 60);	/* paused with replies pending */
	fg_post_rx(g, 60, 4096);
	fg_kick(g, TX);
	fg_post_rx(g, 4, 4096);
	assert_int_equal((uint16_t)(fg_tx_used(g) - before), 60);
}

/* ---- hostile rings: each breaks the device, never the process ---- */

enum hostile {
	AVAIL_JUMP, HEAD_RANGE, NEXT_RANGE, LOOP, OUTSIDE, OVERFLOW,
	WRITABLE_TX, READONLY_RX, OVERSIZE, TOO_LONG, INDIRECT, RX_TINY,
};

static void make_hostile(struct env *e, enum hostile kind)
{
	struct fake_guest *g = &e->g;
	uint64_t buf = g->q[TX].buf_gpa;

	switch (kind) {
	case AVAIL_JUMP:
		fg_set_avail_idx(g, TX, g->q[TX].avail_idx + FG_QSIZE + 1);
		break;
	case HEAD_RANGE:
		fg_publish(g, TX, FG_QSIZE);
		break;
	case NEXT_RANGE:
		fg_set_desc(g, TX, 0, buf, 44, VIRTQ_DESC_F_NEXT, FG_QSIZE + 5);
		fg_publish(g, TX, 0);
		break;
	case LOOP:
		fg_set_desc(g, TX, 0, buf, 44, VIRTQ_DESC_F_NEXT, 1);
		fg_set_desc(g, TX, 1, buf, 4, VIRTQ_DESC_F_NEXT, 0);
		fg_publish(g, TX, 0);
		break;
	case OUTSIDE:
		fg_set_desc(g, TX, 0, FG_MEM_SIZE - 10, 44, 0, 0);
		fg_publish(g, TX, 0);
		break;
	case OVERFLOW:
		fg_set_desc(g, TX, 0, UINT64_MAX - 10, 44, 0, 0);
		fg_publish(g, TX, 0);
		break;
	case WRITABLE_TX:
		fg_set_desc(g, TX, 0, buf, 44, VIRTQ_DESC_F_WRITE, 0);
		fg_publish(g, TX, 0);
		break;
	case READONLY_RX:
		/* Rewrite the buffer the backend takes next; an RST reply walks it. */
		fg_set_desc(g, RX, g->q[RX].used_seen % FG_QSIZE, g->q[RX].buf_gpa, 4096, 0, 0);
		send_data(e, 1, 1, "x", 1);
		return;
	case OVERSIZE:
		fg_set_desc(g, TX, 0, buf, 44 + 65536 + 1, 0, 0);
		fg_publish(g, TX, 0);
		break;
	case TOO_LONG:
		/* Each piece is fine; together they pass 44 + 64 KiB. */
		fg_set_desc(g, TX, 0, buf, 30000, VIRTQ_DESC_F_NEXT, 1);
		fg_set_desc(g, TX, 1, buf + 30000, 30000, VIRTQ_DESC_F_NEXT, 2);
		fg_set_desc(g, TX, 2, buf + 60000, 30000, 0, 0);
		fg_publish(g, TX, 0);
		break;
	case INDIRECT:
		fg_set_desc(g, TX, 0, buf, 32, VIRTQ_DESC_F_INDIRECT, 0);
		fg_publish(g, TX, 0);
		break;
	case RX_TINY:
		fg_set_desc(g, RX, g->q[RX].used_seen % FG_QSIZE, g->q[RX].buf_gpa, 20,
			    VIRTQ_DESC_F_WRITE, 0);
		send_data(e, 1, 1, "x", 1);
		return;
	}
	fg_kick(g, TX);
}

static void check_hostile(struct env *e, enum hostile kind)
{
	struct fake_guest *g = &e->g;
	int lfd = host_listen(e, 1234 + (kind % 2));
	int fd = guest_connect(e, lfd, 5000, 1234 + (kind % 2));
	struct vsock_hdr h;
	char buf[8];
	int victim;

	/* Every rx entry handed back so far is seen; the next pop is used_seen. */
	while (fg_recv(g, &h, NULL, 0, NULL) == 1)
		;
	make_hostile(e, kind);
	assert_true(vsockd_device_broken(e->d));
	/* Its connections are dropped; the host side sees them close. */
	assert_int_equal(vsockd_conn_count(e->d), 0);
	while (host_read(fd, buf, sizeof(buf)) > 0)
		;
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	close(fd);
	/* A broken device accepts no new work. */
	victim = host_client(e);
	assert_int_equal(write(victim, "CONNECT 1\n", 10), 10);
	fg_pump(g);
	expect_no_pkt(e);
	close(victim);
	fg_pump(g);

	/* The next driver start clears the verdict; traffic flows again. */
	assert_int_equal(fg_stop(g), 0);
	assert_int_equal(fg_start(g, VU_VSOCK_FEATURES), 0);
	assert_false(vsockd_device_broken(e->d));
	fg_post_rx(g, 8, 4096);
	fd = guest_connect(e, lfd, 5002, 1234 + (kind % 2));
	send_data(e, 5002, 1234 + (kind % 2), "ok", 2);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 2);
	close(fd);
}

#define HOSTILE_TEST(kind) \
	static void test_hostile_##kind(void **state) { check_hostile(*state, kind); }
HOSTILE_TEST(AVAIL_JUMP)
HOSTILE_TEST(HEAD_RANGE)
HOSTILE_TEST(NEXT_RANGE)
HOSTILE_TEST(LOOP)
HOSTILE_TEST(OUTSIDE)
HOSTILE_TEST(OVERFLOW)
HOSTILE_TEST(WRITABLE_TX)
HOSTILE_TEST(READONLY_RX)
HOSTILE_TEST(OVERSIZE)
HOSTILE_TEST(TOO_LONG)
HOSTILE_TEST(INDIRECT)
HOSTILE_TEST(RX_TINY)

/* ---- device lifecycle ---- */

static unsigned open_fds(void)
{
	unsigned n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static void test_restart_cycles(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	unsigned fds_before = 0;

	for (unsigned cycle = 0; cycle < 5; cycle++) {
		/* Every start hands over new fds; the old ones must be closed. */
		if (cycle == 1)
			fds_before = open_fds();
		else if (cycle > 1)
			assert_int_equal(open_fds(), fds_before);
		int fd = guest_connect(e, lfd, 5000 + cycle, 1234);
		char buf[8];

		/* A stop alone keeps connections (it may be a VM pause)... */
		assert_int_equal(fg_stop(&e->g), 0);
		assert_int_equal(vsockd_conn_count(e->d), 1);
		/* ...a new driver session drops them: the guest forgot its sockets. */
		assert_int_equal(fg_start(&e->g, VU_VSOCK_FEATURES), 0);
		assert_int_equal(vsockd_conn_count(e->d), 0);
		assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
		close(fd);
		fg_post_rx(&e->g, 8, 4096);
	}
}

/* QEMU stops and resumes the rings around a VM pause: flows survive. */
static void test_pause_resume(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	struct vsock_hdr h;
	char buf[16];

	assert_int_equal(fg_stop(&e->g), 0);
	assert_int_equal(write(fd, "while-paused", 12), 12);
	fg_pump(&e->g);
	expect_no_pkt(e);			/* nothing moves while stopped */
	assert_int_equal(host_read(fd, buf, sizeof(buf)), -1);	/* still open */

	assert_int_equal(fg_resume(&e->g, VU_VSOCK_FEATURES), 0);
	fg_kick(&e->g, RX);
	assert_int_equal(vsockd_conn_count(e->d), 1);
	h = expect_pkt(e, VSOCK_OP_RW, buf, sizeof(buf));
	assert_int_equal(h.len, 12);
	assert_memory_equal(buf, "while-paused", 12);
	send_data(e, 5000, 1234, "back", 4);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 4);
	close(fd);
}

static void test_connect_before_start(void **state)
{
	struct env *e = *state;
	int fd;
	char buf[8];

	assert_int_equal(fg_stop(&e->g), 0);
	fd = host_client(e);
	assert_int_equal(write(fd, "CONNECT 1024\n", 13), 13);
	fg_pump(&e->g);
	/* Refused at once (no 2 s wait) while no driver runs the device. */
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	assert_int_equal(vsockd_conn_count(e->d), 0);
	close(fd);
}

static void test_notifications(void **state)
{
	struct env *e = *state;
	uint64_t v;

	/* Without EVENT_IDX every completed batch interrupts the guest. */
	assert_int_equal(fg_stop(&e->g), 0);
	assert_int_equal(fg_start(&e->g, VU_VSOCK_FEATURES & ~(1ull << VIRTIO_RING_F_EVENT_IDX)), 0);
	fg_post_rx(&e->g, 4, 4096);
	while (read(e->g.q[TX].call_fd, &v, sizeof(v)) > 0)
		;
	send_op(e, VSOCK_OP_REQUEST, 5000, 4444);
	assert_int_equal(read(e->g.q[TX].call_fd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(read(e->g.q[RX].call_fd, &v, sizeof(v)), sizeof(v));
	expect_pkt(e, VSOCK_OP_RST, NULL, 0);
}

static void test_qemu_gone(void **state)
{
	struct env *e = *state;
	int lfd = host_listen(e, 1234);
	int fd = guest_connect(e, lfd, 5000, 1234);
	char buf[4];

	close(e->g.vu_fd);
	e->g.vu_fd = -1;
	assert_int_equal(vsockd_dispatch(e->d, 100), -EPIPE);
	assert_int_equal(host_read(fd, buf, sizeof(buf)), 0);
	assert_int_equal(vsockd_dispatch(e->d, 0), -EPIPE);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_guest_to_host),
		T(test_host_to_guest),
		T(test_host_connect_refused),
		T(test_host_connect_timeout),
		T(test_bad_connect_line),
		T(test_guest_connect_refused),
		T(test_guest_credit_overrun),
		T(test_guest_credit_update),
		T(test_host_respects_guest_credit),
		T(test_slow_reader_isolated),
		T(test_rx_header_only_buffer),
		T(test_guest_close),
		T(test_host_close),
		T(test_host_close_unanswered),
		T(test_half_close),
		T(test_guest_rst),
		T(test_unknown_flow),
		T(test_duplicate_request),
		T(test_bad_header_fields),
		T(test_connection_flood),
		T(test_reply_queue_bounded),
		T(test_log_flood_capped),
		T(test_hostile_AVAIL_JUMP),
		T(test_hostile_HEAD_RANGE),
		T(test_hostile_NEXT_RANGE),
		T(test_hostile_LOOP),
		T(test_hostile_OUTSIDE),
		T(test_hostile_OVERFLOW),
		T(test_hostile_WRITABLE_TX),
		T(test_hostile_READONLY_RX),
		T(test_hostile_OVERSIZE),
		T(test_hostile_TOO_LONG),
		T(test_hostile_INDIRECT),
		T(test_hostile_RX_TINY),
		T(test_restart_cycles),
		T(test_pause_resume),
		T(test_connect_before_start),
		T(test_notifications),
		T(test_qemu_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
