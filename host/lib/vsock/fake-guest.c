// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "fake-guest.h"
#include "virtq.h"
#include "vu-dev.h"

/* Ring placement in the fake RAM (gpa == offset). */
static const uint64_t ring_base[2] = { 0x1000, 0x4000 };
static const uint64_t buf_base[2] = { 0x600000, 0x100000 };
static const uint64_t buf_size[2] = { FG_RX_BUF, FG_TX_BUF };

uint8_t *fg_ptr(struct fake_guest *g, uint64_t gpa)
{
	return g->mem + gpa;
}

void fg_pump(struct fake_guest *g)
{
	for (int i = 0; i < 1000; i++)
		if (vsockd_dispatch(g->d, 0) <= 0)
			break;
}

int fg_open(struct fake_guest *g, struct vsockd *d, const char *vu_path, uint64_t cid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(g, 0, sizeof(*g));
	g->d = d;
	g->cid = cid;
	g->vu_fd = g->memfd = -1;
	for (unsigned q = 0; q < 2; q++) {
		g->q[q].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		g->q[q].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		g->q[q].desc_gpa = ring_base[q];
		g->q[q].avail_gpa = ring_base[q] + 16 * FG_QSIZE;
		g->q[q].used_gpa = ring_base[q] + 0x800;
		g->q[q].buf_gpa = buf_base[q];
		g->q[q].buf_size = buf_size[q];
		if (g->q[q].kick_fd < 0 || g->q[q].call_fd < 0)
			return -errno;
	}
	g->memfd = memfd_create("fake-guest-ram", MFD_CLOEXEC);
	if (g->memfd < 0 || ftruncate(g->memfd, FG_MEM_SIZE) < 0)
		return -errno;
	g->mem = mmap(NULL, FG_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	if (g->mem == MAP_FAILED) {
		g->mem = NULL;
		return -errno;
	}
	strncpy(sa.sun_path, vu_path, sizeof(sa.sun_path) - 1);
	g->vu_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g->vu_fd < 0 || connect(g->vu_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	fg_pump(g);
	return 0;
}

void fg_close(struct fake_guest *g)
{
	for (unsigned q = 0; q < 2; q++) {
		safe_close(g->q[q].kick_fd);
		safe_close(g->q[q].call_fd);
	}
	safe_close(g->vu_fd);
	safe_close(g->memfd);
	if (g->mem)
		munmap(g->mem, FG_MEM_SIZE);
	g->vu_fd = g->memfd = -1;
	g->mem = NULL;
}

static int send_msg(struct fake_guest *g, uint32_t request, uint32_t flags,
		    const void *payload, uint32_t size, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	uint8_t buf[VU_HDR_SIZE + VU_PAYLOAD_MAX];
	struct iovec iov = { buf, VU_HDR_SIZE + size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (size > VU_PAYLOAD_MAX || nfds > VU_MAX_FDS)
		return -EINVAL;
	memcpy(buf, &request, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (size)
		memcpy(buf + VU_HDR_SIZE, payload, size);
	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	return sendmsg(g->vu_fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int recv_reply(struct fake_guest *g, struct vu_msg *reply)
{
	uint8_t buf[VU_HDR_SIZE + VU_PAYLOAD_MAX];
	ssize_t n = recv(g->vu_fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < VU_HDR_SIZE)
		return -EIO;
	memset(reply, 0, sizeof(*reply));
	memcpy(&reply->request, buf, 4);
	memcpy(&reply->flags, buf + 4, 4);
	memcpy(&reply->size, buf + 8, 4);
	if (reply->size != (size_t)n - VU_HDR_SIZE)
		return -EIO;
	memcpy(reply->payload.raw, buf + VU_HDR_SIZE, reply->size);
	return 0;
}

int fg_vu_call(struct fake_guest *g, uint32_t request, uint32_t flags,
	       const void *payload, uint32_t size, const int *fds, unsigned nfds,
	       struct vu_msg *reply)
{
	struct vu_msg scratch;
	int r;

	r = send_msg(g, request, flags, payload, size, fds, nfds);
	if (r < 0)
		return r;
	fg_pump(g);
	if (!vu_request_has_reply(request) && !(flags & VU_FLAG_NEED_REPLY))
		return 0;
	return recv_reply(g, reply ? reply : &scratch);
}

static int call_u64(struct fake_guest *g, uint32_t request, uint64_t v)
{
	return fg_vu_call(g, request, VU_VERSION, &v, sizeof(v), NULL, 0, NULL);
}

static int call_state(struct fake_guest *g, uint32_t request, uint32_t index, uint32_t num)
{
	struct vu_vring_state st = { index, num };

	return fg_vu_call(g, request, VU_VERSION, &st, sizeof(st), NULL, 0, NULL);
}

static int call_fd(struct fake_guest *g, uint32_t request, uint32_t index, int fd)
{
	uint64_t v = index;

	return fg_vu_call(g, request, VU_VERSION, &v, sizeof(v), &fd, 1, NULL);
}

static int start(struct fake_guest *g, uint64_t features, bool resume)
{
	struct vu_mem_table mt = { .nregions = 1 };
	struct vu_msg reply;
	int r = 0;

	r |= fg_vu_call(g, VU_GET_FEATURES, VU_VERSION, NULL, 0, NULL, 0, &reply);
	r |= call_u64(g, VU_SET_PROTOCOL_FEATURES, VU_VSOCK_PROTOCOL_FEATURES);
	r |= fg_vu_call(g, VU_SET_OWNER, VU_VERSION, NULL, 0, NULL, 0, NULL);
	r |= call_u64(g, VU_SET_FEATURES, features);
	mt.region[0] = (struct vu_mem_region_desc){
		.guest_phys_addr = 0, .memory_size = FG_MEM_SIZE,
		.userspace_addr = (uintptr_t)g->mem, .mmap_offset = 0,
	};
	r |= fg_vu_call(g, VU_SET_MEM_TABLE, VU_VERSION | VU_FLAG_NEED_REPLY, &mt,
			8 + 32, &g->memfd, 1, &reply);
	if (r || reply.payload.u64 != 0)
		return -EIO;
	if (!resume)
		memset(g->mem, 0, 0x8000);	/* fresh rings, as a new driver would */
	for (unsigned q = 0; q < 2; q++) {
		struct fg_queue *fq = &g->q[q];
		struct vu_vring_addr a = {
			.index = q,
			.desc_uaddr = (uintptr_t)fg_ptr(g, fq->desc_gpa),
			.used_uaddr = (uintptr_t)fg_ptr(g, fq->used_gpa),
			.avail_uaddr = (uintptr_t)fg_ptr(g, fq->avail_gpa),
			.log_gpa = fq->used_gpa,
		};

		if (!resume)
			fq->avail_idx = fq->used_seen = 0;
		r |= call_state(g, VU_SET_VRING_NUM, q, FG_QSIZE);
		r |= call_state(g, VU_SET_VRING_BASE, q, resume ? fq->stopped_base : 0);
		r |= fg_vu_call(g, VU_SET_VRING_ADDR, VU_VERSION, &a, sizeof(a), NULL, 0, NULL);
		r |= call_fd(g, VU_SET_VRING_KICK, q, fq->kick_fd);
	}
	for (unsigned q = 0; q < 2; q++) {
		r |= call_state(g, VU_SET_VRING_ENABLE, q, 1);
		r |= call_fd(g, VU_SET_VRING_CALL, q, g->q[q].call_fd);
	}
	return r ? -EIO : 0;
}

int fg_start(struct fake_guest *g, uint64_t features)
{
	return start(g, features, false);
}

int fg_resume(struct fake_guest *g, uint64_t features)
{
	return start(g, features, true);
}

int fg_stop(struct fake_guest *g)
{
	struct vu_vring_state st;
	struct vu_msg reply;
	int r = 0;

	for (unsigned q = 0; q < 2; q++)
		r |= call_state(g, VU_SET_VRING_ENABLE, q, 0);
	for (unsigned q = 0; q < 2; q++) {
		st = (struct vu_vring_state){ q, 0 };
		r |= fg_vu_call(g, VU_GET_VRING_BASE, VU_VERSION, &st, sizeof(st),
				NULL, 0, &reply);
		g->q[q].stopped_base = reply.payload.state.num;
	}
	return r ? -EIO : 0;
}

void fg_set_desc(struct fake_guest *g, unsigned q, uint16_t i, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = fg_ptr(g, g->q[q].desc_gpa + 16u * i);

	vsock_put64(d, addr);
	vsock_put32(d + 8, len);
	vsock_put16(d + 12, flags);
	vsock_put16(d + 14, next);
}

void fg_set_avail_idx(struct fake_guest *g, unsigned q, uint16_t idx)
{
	__atomic_store_n((uint16_t *)fg_ptr(g, g->q[q].avail_gpa + 2), htole16(idx),
			 __ATOMIC_RELEASE);
}

void fg_publish(struct fake_guest *g, unsigned q, uint16_t head)
{
	struct fg_queue *fq = &g->q[q];

	vsock_put16(fg_ptr(g, fq->avail_gpa + 4 + 2u * (fq->avail_idx % FG_QSIZE)), head);
	fg_set_avail_idx(g, q, ++fq->avail_idx);
}

void fg_kick(struct fake_guest *g, unsigned q)
{
	uint64_t one = 1;

	if (write(g->q[q].kick_fd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow in a test */
	}
	fg_pump(g);
}

void fg_post_rx(struct fake_guest *g, unsigned count, uint32_t size)
{
	struct fg_queue *fq = &g->q[0];

	for (unsigned i = 0; i < count; i++) {
		uint16_t slot = fq->avail_idx % FG_QSIZE;

		fg_set_desc(g, 0, slot, fq->buf_gpa + slot * fq->buf_size, size,
			    VIRTQ_DESC_F_WRITE, 0);
		fg_publish(g, 0, slot);
	}
	fg_kick(g, 0);
}

struct vsock_hdr fg_hdr(struct fake_guest *g, uint16_t op, uint32_t gport,
			uint32_t hport, uint32_t len)
{
	return (struct vsock_hdr){
		.src_cid = g->cid, .dst_cid = VSOCK_HOST_CID,
		.src_port = gport, .dst_port = hport, .len = len,
		.type = VSOCK_TYPE_STREAM, .op = op, .buf_alloc = 262144,
	};
}

void fg_send(struct fake_guest *g, const struct vsock_hdr *h, const void *payload,
	     uint32_t len)
{
	struct fg_queue *fq = &g->q[1];
	/* Two descriptors per packet: pairs (2k, 2k+1) follow the ring slot. */
	uint16_t head = (uint16_t)((fq->avail_idx % (FG_QSIZE / 2)) * 2);
	uint64_t hdr_gpa = fq->buf_gpa + head * fq->buf_size;
	uint64_t pay_gpa = fq->buf_gpa + (head + 1) * fq->buf_size;

	vsock_hdr_encode(h, fg_ptr(g, hdr_gpa));
	if (len) {
		memcpy(fg_ptr(g, pay_gpa), payload, len);
		fg_set_desc(g, 1, head, hdr_gpa, VSOCK_HDR_SIZE, VIRTQ_DESC_F_NEXT, head + 1);
		fg_set_desc(g, 1, head + 1, pay_gpa, len, 0, 0);
	} else {
		fg_set_desc(g, 1, head, hdr_gpa, VSOCK_HDR_SIZE, 0, 0);
	}
	fg_publish(g, 1, head);
	fg_kick(g, 1);
}

int fg_recv(struct fake_guest *g, struct vsock_hdr *h, void *payload, size_t cap,
	    uint32_t *used_len)
{
	struct fg_queue *fq = &g->q[0];
	uint16_t used = le16toh(__atomic_load_n((uint16_t *)fg_ptr(g, fq->used_gpa + 2),
						__ATOMIC_ACQUIRE));
	uint8_t *e, *buf;
	uint32_t id, len, n;

	if (used == fq->used_seen)
		return 0;
	e = fg_ptr(g, fq->used_gpa + 4 + 8u * (fq->used_seen % FG_QSIZE));
	fq->used_seen++;
	id = vsock_get32(e);
	len = vsock_get32(e + 4);
	if (used_len)
		*used_len = len;
	buf = fg_ptr(g, vsock_get64(fg_ptr(g, fq->desc_gpa + 16u * (id % FG_QSIZE))));
	vsock_hdr_decode(buf, h);
	n = len > VSOCK_HDR_SIZE ? len - VSOCK_HDR_SIZE : 0;
	if (payload)
		memcpy(payload, buf + VSOCK_HDR_SIZE, n < cap ? n : cap);
	return 1;
}

uint16_t fg_tx_used(struct fake_guest *g)
{
	return le16toh(__atomic_load_n((uint16_t *)fg_ptr(g, g->q[1].used_gpa + 2),
				       __ATOMIC_ACQUIRE));
}
