// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The guest -> backend path with fake guest memory: the whole engine runs
 * (vhost-user socket, rings, connections, host sockets), the input plays
 * a hostile guest.  First byte selects the mode:
 *   even: raw rings: the input becomes the tx descriptor table, the avail
 *         ring and the avail index, plus bytes in the buffer area;
 *   odd:  a packet stream: [44-byte header][u16 len][len bytes]... sent as
 *         well-formed chains, exercising the connection state machine
 *         (host port 1234 has a listener).
 * The top bits of the first byte pick the rx buffer size (44 to 4076 bytes).
 * Each input runs in a fresh driver session (stop, then a new start), which
 * drops all flows, so inputs do not leak into each other.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake-guest.h"
#include "virtq.h"
#include "vu-dev.h"

#define CID 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_guest g;
static int listener = -1;
static char dir[] = "/tmp/fuzz-vsock-tx.XXXXXX";
static char vu_path[64], uds_path[64], port_path[80];

static void cleanup(void)
{
	unlink(port_path);
	unlink(vu_path);
	unlink(uds_path);
	rmdir(dir);
}

static void init_once(void)
{
	struct vsockd_config cfg = { .guest_cid = CID, .max_conns = 16, .buf_alloc = 4096 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vsockd *d;

	if (!mkdtemp(dir))
		abort();
	snprintf(vu_path, sizeof(vu_path), "%s/vu", dir);
	snprintf(uds_path, sizeof(uds_path), "%s/v", dir);
	snprintf(port_path, sizeof(port_path), "%s/v_1234", dir);
	cfg.vhost_user_path = vu_path;
	cfg.uds_path = uds_path;
	if (vsockd_new(&cfg, &d, NULL) < 0 || fg_open(&g, d, vu_path, CID) < 0)
		abort();
	atexit(cleanup);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, port_path);
	if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(listener, 64) < 0)
		abort();
}

static void raw_rings(const uint8_t *data, size_t size)
{
	size_t table = 16 * FG_QSIZE, ring = 2 * FG_QSIZE, n;
	uint16_t idx;

	n = size < table ? size : table;
	memcpy(fg_ptr(&g, g.q[1].desc_gpa), data, n);
	data += n;
	size -= n;
	n = size < ring ? size : ring;
	memcpy(fg_ptr(&g, g.q[1].avail_gpa + 4), data, n);
	data += n;
	size -= n;
	idx = size >= 2 ? (uint16_t)(data[0] | data[1] << 8) : 1;
	if (size >= 2) {
		data += 2;
		size -= 2;
	}
	n = size < FG_TX_BUF ? size : FG_TX_BUF;
	memcpy(fg_ptr(&g, g.q[1].buf_gpa), data, n);
	fg_set_avail_idx(&g, 1, idx);
	fg_kick(&g, 1);
}

static void packet_stream(const uint8_t *data, size_t size)
{
	while (size >= VSOCK_HDR_SIZE + 2) {
		struct vsock_hdr h;
		uint32_t len;

		vsock_hdr_decode(data, &h);
		/* Keep the addressing mostly right so packets get past it. */
		if (!(h.flags & 0x80000000u)) {
			h.src_cid = CID;
			h.dst_cid = VSOCK_HOST_CID;
		}
		len = data[VSOCK_HDR_SIZE] | data[VSOCK_HDR_SIZE + 1] << 8;
		data += VSOCK_HDR_SIZE + 2;
		size -= VSOCK_HDR_SIZE + 2;
		if (len > size)
			len = size;
		fg_send(&g, &h, data, len);
		data += len;
		size -= len;
		/* The guest reads its rx ring now and then, the host accepts. */
		while (fg_recv(&g, &h, NULL, 0, NULL) == 1)
			;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vsock_hdr h;
	int fd;

	if (listener < 0)
		init_once();
	/* A fresh driver session starts with no flows from the last input. */
	if (fg_start(&g, VU_VSOCK_FEATURES) < 0 || vsockd_conn_count(g.d) != 0)
		abort();
	fg_post_rx(&g, 16, size ? VSOCK_HDR_SIZE + (data[0] >> 1) * 32 : 4096);
	if (size) {
		if (data[0] & 1)
			packet_stream(data + 1, size - 1);
		else
			raw_rings(data + 1, size - 1);
	}
	while (fg_recv(&g, &h, NULL, 0, NULL) == 1)
		;
	while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	fg_pump(&g);
	if (fg_stop(&g) < 0)
		abort();
	return 0;
}
