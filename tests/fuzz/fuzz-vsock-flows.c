// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Both sides of the vsock engine at once, one op per input byte: a hostile
 * guest (any packet on a few flows, any credit values, rx buffers of any
 * size over one or two descriptors, pause/resume) and host clients (hybrid
 * CONNECTs, accepts, writes, reads, half-closes, hang-ups).  The guest
 * learns the host ports of the REQUESTs it reads, so it can answer them:
 * host->guest flows, credit stalls and the backlog are all in reach, which
 * fuzz-vsock-tx (guest packets only, host side idle) does not get to.
 * Each input starts a new driver session, which drops the last one's flows.
 */
#include <endian.h>
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

#define CID		3
#define NSLOTS		8		/* host-side sockets the input juggles */
#define NLEARNED	4		/* host ports seen in REQUESTs */
#define RX_PAIRS	(FG_QSIZE / 2)	/* rx chains use descriptors 2k, 2k+1 */
#define MAX_OPS		256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_guest g;
static int listener = -1;
static char dir[] = "/tmp/fuzz-vsock-flows.XXXXXX";
static char vu_path[64], uds_path[64], port_path[80];
static int slot_fd[NSLOTS];
static uint32_t learned[NLEARNED];
static unsigned n_learned;
static uint8_t junk[65536];

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

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
	for (unsigned i = 0; i < NSLOTS; i++)
		slot_fd[i] = -1;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7);
}

/* ---- guest ---- */

static const uint32_t credit_values[] = {
	0, 1, 44, 4096, 65536, 262144, 0x7fffffff, 0xffffffff,
};

static uint32_t pick_host_port(uint8_t sel)
{
	if ((sel & 0x0c) == 0x04 && n_learned)
		return learned[(sel >> 4) % n_learned];
	return (sel & 0x0c) == 0x08 ? 1235 : 1234;	/* 1235 has no listener */
}

/* [op][sel][flags][credit][len lo][len hi] */
static void guest_packet(struct input *in)
{
	uint8_t op = take(in), sel = take(in), flags = take(in), credit = take(in);
	uint32_t len = take(in);
	struct fg_queue *tx = &g.q[1];
	struct vsock_hdr h;

	len |= (uint32_t)take(in) << 8;
	/* fg_send reuses descriptor pairs: keep in-flight entries intact. */
	if ((uint16_t)(tx->avail_idx - fg_tx_used(&g)) >= FG_QSIZE / 2 - 1)
		return;
	h = fg_hdr(&g, op % 8, 5000 + (sel & 3), pick_host_port(sel), 0);
	if (flags & 0x80)
		h.type = flags & 3;
	h.flags = flags & 7;
	h.buf_alloc = credit_values[credit & 7];
	h.fwd_cnt = credit_values[(credit >> 3) & 7];
	if (credit & 0x40)
		h.fwd_cnt = 0;
	len = (op % 8 == VSOCK_OP_RW || (flags & 0x40)) ? len % 8192 : 0;
	h.len = (flags & 0x20) ? len + 1 : len;
	fg_send(&g, &h, junk, len);
}

static void learn(uint32_t hport)
{
	for (unsigned i = 0; i < n_learned; i++)
		if (learned[i] == hport)
			return;
	if (n_learned < NLEARNED)
		learned[n_learned++] = hport;
	else
		learned[hport % NLEARNED] = hport;
}

/* Gather the first 44 bytes of rx chain head (our own descriptors). */
static int rx_header(uint16_t head, struct vsock_hdr *h)
{
	uint8_t raw[VSOCK_HDR_SIZE];
	size_t have = 0;
	uint16_t i = head % FG_QSIZE;

	for (int n = 0; n < 2 && have < sizeof(raw); n++) {
		const uint8_t *d = fg_ptr(&g, g.q[0].desc_gpa + 16u * i);
		uint64_t addr = vsock_get64(d);
		uint32_t len = vsock_get32(d + 8);
		size_t take_n = sizeof(raw) - have < len ? sizeof(raw) - have : len;

		if (addr > FG_MEM_SIZE || take_n > FG_MEM_SIZE - addr)
			return -1;
		memcpy(raw + have, fg_ptr(&g, addr), take_n);
		have += take_n;
		if (!(vsock_get16(d + 12) & VIRTQ_DESC_F_NEXT))
			break;
		i = vsock_get16(d + 14) % FG_QSIZE;
	}
	if (have < sizeof(raw))
		return -1;
	vsock_hdr_decode(raw, h);
	return 0;
}

static void guest_read_rx(void)
{
	struct fg_queue *q = &g.q[0];
	uint16_t used = le16toh(__atomic_load_n((uint16_t *)fg_ptr(&g, q->used_gpa + 2),
						__ATOMIC_ACQUIRE));

	while (q->used_seen != used) {
		const uint8_t *e = fg_ptr(&g, q->used_gpa + 4 + 8u * (q->used_seen % FG_QSIZE));
		struct vsock_hdr h;

		q->used_seen++;
		if (rx_header((uint16_t)vsock_get32(e), &h) == 0 && h.op == VSOCK_OP_REQUEST)
			learn(h.src_port);
	}
}

static const uint32_t rx_first[] = { 44, 45, 100, 3776, 4096, 16384, 20, 1 };
static const uint32_t rx_second[] = { 0, 0, 1, 43, 100, 3000, 4096, 16384 };

/* count rx chains of one or two writable descriptors, sized by shape. */
static void post_rx_chains(unsigned count, uint8_t shape)
{
	struct fg_queue *q = &g.q[0];
	uint32_t a = rx_first[shape & 7], b = rx_second[(shape >> 3) & 7];

	guest_read_rx();
	for (unsigned i = 0; i < count; i++) {
		uint16_t head = (uint16_t)((q->avail_idx % RX_PAIRS) * 2);
		uint64_t gpa = q->buf_gpa + (uint64_t)head * q->buf_size;

		if ((uint16_t)(q->avail_idx - q->used_seen) >= RX_PAIRS)
			break;
		if (b) {
			fg_set_desc(&g, 0, head, gpa, a, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
				    head + 1);
			fg_set_desc(&g, 0, head + 1, gpa + q->buf_size, b, VIRTQ_DESC_F_WRITE, 0);
		} else {
			fg_set_desc(&g, 0, head, gpa, a, VIRTQ_DESC_F_WRITE, 0);
		}
		fg_publish(&g, 0, head);
	}
	fg_kick(&g, 0);
}

/* [count][shape] */
static void guest_post_rx(struct input *in)
{
	unsigned count = take(in) % 8 + 1;

	post_rx_chains(count, take(in));
}

static void pause_resume(void)
{
	guest_read_rx();
	if (fg_stop(&g) < 0 || fg_resume(&g, VU_VSOCK_FEATURES) < 0)
		abort();	/* vhost-user is not the guest's to break */
}

/* ---- host ---- */

static int *free_slot(void)
{
	for (unsigned i = 0; i < NSLOTS; i++)
		if (slot_fd[i] < 0)
			return &slot_fd[i];
	return NULL;
}

static void host_accept(void)
{
	int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int *slot = free_slot();

	if (fd >= 0 && slot)
		*slot = fd;
	else if (fd >= 0)
		close(fd);
}

/* [sel]: CONNECT to a guest port, or (top bit) a line of input bytes. */
static void host_connect(struct input *in)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t sel = take(in);
	int *slot = free_slot();
	char line[80];
	size_t n;
	int fd;

	if (!slot)
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, uds_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (sel & 0x80) {
		n = sel & 0x3f;
		for (size_t i = 0; i < n; i++)
			line[i] = (char)take(in);
	} else {
		n = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", 5000 + (sel & 3));
	}
	if (send(fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* the engine may have closed it already */
	}
	*slot = fd;
}

static const size_t write_sizes[] = { 1, 7, 100, 1000, 4096, 5000, 16384, 65536 };

/* [slot][what] */
static void host_io(struct input *in)
{
	uint8_t s = take(in) % NSLOTS, what = take(in);
	int fd = slot_fd[s];
	uint8_t buf[16384];

	if (fd < 0)
		return;
	switch (what & 3) {
	case 0:
		if (send(fd, junk, write_sizes[(what >> 2) & 7], MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			/* full or gone: both are fine */
		}
		break;
	case 1:
		for (int i = 0; i < 16 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
			;
		break;
	case 2:
		shutdown(fd, (what & 4) ? SHUT_RD : SHUT_WR);
		break;
	default:
		close(fd);
		slot_fd[s] = -1;
		break;
	}
}

static void end_session(void)
{
	int fd;

	for (unsigned i = 0; i < NSLOTS; i++)
		if (slot_fd[i] >= 0) {
			close(slot_fd[i]);
			slot_fd[i] = -1;
		}
	while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	fg_pump(&g);
	guest_read_rx();
	if (fg_stop(&g) < 0)
		abort();
	n_learned = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	if (listener < 0)
		init_once();
	if (fg_start(&g, VU_VSOCK_FEATURES) < 0 || vsockd_conn_count(g.d) != 0)
		abort();
	post_rx_chains(8, 4);		/* 4096-byte single buffers */
	for (unsigned ops = 0; in.left && ops < MAX_OPS; ops++) {
		switch (take(&in) % 10) {
		case 0:
		case 1:
			guest_packet(&in);
			break;
		case 2:
			guest_read_rx();
			break;
		case 3:
			guest_post_rx(&in);
			break;
		case 4:
			host_accept();
			break;
		case 5:
		case 6:
			host_io(&in);
			break;
		case 7:
			host_connect(&in);
			break;
		case 8:
			pause_resume();
			break;
		default:
			fg_pump(&g);
			break;
		}
		fg_pump(&g);
	}
	end_session();
	return 0;
}
