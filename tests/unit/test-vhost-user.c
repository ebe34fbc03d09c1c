// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user framing and device handling, guest memory translation and
 * the split ring, each on its own (no sockets, no event loop).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "virtq.h"
#include "vsock-pkt.h"
#include "vu-dev.h"
#include "vu-mem.h"
#include "vu-msg.h"

static size_t frame(uint8_t *buf, uint32_t request, uint32_t flags,
		    const void *payload, uint32_t size)
{
	memcpy(buf, &request, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (size)
		memcpy(buf + 12, payload, size);
	return 12 + size;
}

static void test_reader_framing(void **state)
{
	uint8_t buf[64];
	uint64_t v = 0x160000000ull;
	struct vu_reader rd;
	struct vu_msg msg;
	size_t n = frame(buf, VU_SET_FEATURES, VU_VERSION, &v, 8), used;

	vu_reader_init(&rd);
	/* Byte by byte: complete only on the last byte. */
	for (size_t i = 0; i + 1 < n; i++) {
		assert_int_equal(vu_reader_feed(&rd, buf + i, 1, &used, &msg), 0);
		assert_int_equal(used, 1);
	}
	assert_int_equal(vu_reader_feed(&rd, buf + n - 1, 1, &used, &msg), 1);
	assert_int_equal(msg.request, VU_SET_FEATURES);
	assert_int_equal(msg.size, 8);
	assert_int_equal(msg.payload.u64, v);

	/* Two messages in one buffer come out one at a time. */
	n = frame(buf, VU_GET_FEATURES, VU_VERSION, NULL, 0);
	n += frame(buf + n, VU_SET_OWNER, VU_VERSION, NULL, 0);
	assert_int_equal(vu_reader_feed(&rd, buf, n, &used, &msg), 1);
	assert_int_equal(msg.request, VU_GET_FEATURES);
	assert_int_equal(vu_reader_feed(&rd, buf + used, n - used, &used, &msg), 1);
	assert_int_equal(msg.request, VU_SET_OWNER);
}

static void test_reader_rejects(void **state)
{
	uint8_t buf[16];
	struct vu_reader rd;
	struct vu_msg msg;
	size_t used;

	vu_reader_init(&rd);
	frame(buf, VU_GET_FEATURES, 2, NULL, 0);		/* bad version */
	assert_int_equal(vu_reader_feed(&rd, buf, 12, &used, &msg), -EPROTO);
	vu_reader_init(&rd);
	frame(buf, VU_SET_MEM_TABLE, VU_VERSION, NULL, 0);
	memcpy(buf + 8, &(uint32_t){ VU_PAYLOAD_MAX + 1 }, 4);	/* oversize */
	assert_int_equal(vu_reader_feed(&rd, buf, 12, &used, &msg), -EPROTO);
}

static struct vu_msg make_msg(uint32_t request, uint32_t flags, const void *p, uint32_t size)
{
	struct vu_msg m = { .request = request, .flags = flags, .size = size };

	if (size)
		memcpy(m.payload.raw, p, size);
	return m;
}

static void test_msg_sizes(void **state)
{
	const char *why;
	uint64_t v = 0;
	struct vu_msg m;

	m = make_msg(VU_SET_FEATURES, VU_VERSION, &v, 4);
	assert_int_equal(vu_msg_check(&m, &why), -EINVAL);
	m = make_msg(VU_SET_VRING_NUM, VU_VERSION, &v, 8);
	assert_int_equal(vu_msg_check(&m, &why), 0);
	m = make_msg(VU_SET_VRING_ADDR, VU_VERSION, &v, 8);
	assert_int_equal(vu_msg_check(&m, &why), -EINVAL);
	/* A mem table needs one fd per region. */
	struct vu_mem_table mt = { .nregions = 2 };

	m = make_msg(VU_SET_MEM_TABLE, VU_VERSION, &mt, 8 + 64);
	m.nfds = 1;
	m.fds[0] = -1;
	assert_int_equal(vu_msg_check(&m, &why), -EBADF);
	mt.nregions = 9;
	m = make_msg(VU_SET_MEM_TABLE, VU_VERSION, &mt, 8 + 64);
	assert_int_equal(vu_msg_check(&m, &why), -EINVAL);
	/* KICK without the no-fd flag needs exactly one fd. */
	m = make_msg(VU_SET_VRING_KICK, VU_VERSION, &v, 8);
	assert_int_equal(vu_msg_check(&m, &why), -EBADF);
}

static void test_dev_features_and_config(void **state)
{
	struct vu_dev dev;
	struct vu_msg m, reply;
	struct vu_config cfg = { .offset = 0, .size = 8 };
	bool has_reply;
	const char *why;
	uint64_t v;

	vu_dev_init(&dev, 42);
	m = make_msg(VU_GET_FEATURES, VU_VERSION, NULL, 0);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), 0);
	assert_true(has_reply);
	assert_int_equal(reply.flags, VU_VERSION | VU_FLAG_REPLY);
	assert_int_equal(reply.payload.u64 & 0x140000000ull, 0x140000000ull);

	m = make_msg(VU_GET_PROTOCOL_FEATURES, VU_VERSION, NULL, 0);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), 0);
	assert_true(reply.payload.u64 & (1ull << VU_PROTOCOL_F_CONFIG));

	m = make_msg(VU_GET_CONFIG, VU_VERSION, &cfg, 12 + 8);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), 0);
	assert_int_equal(reply.size, 20);
	assert_int_equal(vsock_get64(reply.payload.config.data), 42);
	/* Past the 8-byte config space: a reply of size 0 signals failure. */
	cfg.offset = 4;
	m = make_msg(VU_GET_CONFIG, VU_VERSION, &cfg, 12 + 8);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), -EINVAL);
	assert_true(has_reply);
	assert_int_equal(reply.payload.config.size, 0);

	/* NEED_REPLY on a request without a reply of its own: u64 0 or 1. */
	v = 1ull << VIRTIO_F_VERSION_1;
	m = make_msg(VU_SET_FEATURES, VU_VERSION | VU_FLAG_NEED_REPLY, &v, 8);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), 0);
	assert_true(has_reply);
	assert_int_equal(reply.payload.u64, 0);
	v = 1ull << 33;		/* never offered */
	m = make_msg(VU_SET_FEATURES, VU_VERSION | VU_FLAG_NEED_REPLY, &v, 8);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), -EINVAL);
	assert_int_equal(reply.payload.u64, 1);
	/* Without NEED_REPLY nothing is sent back. */
	m = make_msg(VU_SET_OWNER, VU_VERSION, NULL, 0);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), 0);
	assert_false(has_reply);
	/* Unknown requests are refused, and answered when asked. */
	m = make_msg(77, VU_VERSION | VU_FLAG_NEED_REPLY, NULL, 0);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), -ENOTSUP);
	assert_true(has_reply);
	vu_dev_release(&dev);
}

static void test_dev_vring_checks(void **state)
{
	struct vu_vring_state st;
	struct vu_dev dev;
	struct vu_msg m, reply;
	bool has_reply;
	const char *why;

	vu_dev_init(&dev, 3);
	st = (struct vu_vring_state){ 2, 128 };	/* the event queue is QEMU's */
	m = make_msg(VU_SET_VRING_NUM, VU_VERSION, &st, 8);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), -EINVAL);
	st = (struct vu_vring_state){ 0, 100 };	/* not a power of two */
	m = make_msg(VU_SET_VRING_NUM, VU_VERSION, &st, 8);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), -EINVAL);
	st = (struct vu_vring_state){ 0, 65536 };
	m = make_msg(VU_SET_VRING_NUM, VU_VERSION, &st, 8);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), -EINVAL);
	/* GET_VRING_BASE always answers, with the ring index and its base. */
	st = (struct vu_vring_state){ 1, 0 };
	m = make_msg(VU_SET_VRING_BASE, VU_VERSION, &(struct vu_vring_state){ 1, 7 }, 8);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), 0);
	m = make_msg(VU_GET_VRING_BASE, VU_VERSION, &st, 8);
	assert_int_equal(vu_dev_handle(&dev, &m, &reply, &has_reply, &why), 0);
	assert_true(has_reply);
	assert_int_equal(reply.payload.state.index, 1);
	assert_int_equal(reply.payload.state.num, 7);
	vu_dev_release(&dev);
}

static void test_mem_translation(void **state)
{
	static uint8_t ram[4096];
	struct vu_mem mem;

	vu_mem_init(&mem);
	assert_int_equal(vu_mem_add_borrowed(&mem, 0x10000, 0x7000000, ram, sizeof(ram)), 0);
	assert_ptr_equal(vu_mem_gpa(&mem, 0x10000, 4096), ram);
	assert_ptr_equal(vu_mem_gpa(&mem, 0x10ff0, 16), ram + 0xff0);
	assert_null(vu_mem_gpa(&mem, 0x10ff0, 17));	/* straddles the end */
	assert_null(vu_mem_gpa(&mem, 0xffff, 2));		/* starts before */
	assert_null(vu_mem_gpa(&mem, UINT64_MAX, 2));
	assert_null(vu_mem_gpa(&mem, 0x10001, UINT64_MAX));	/* no overflow */
	assert_ptr_equal(vu_mem_uva(&mem, 0x7000010, 8), ram + 16);
	assert_null(vu_mem_uva(&mem, 0x10000, 8));		/* gpa is not uva */
	assert_int_equal(vu_mem_add_borrowed(&mem, UINT64_MAX - 5, 0, ram, 10), -EINVAL);
	vu_mem_clear(&mem);
}

static void test_mem_map_checks(void **state)
{
	struct vu_mem_region_desc d = { .guest_phys_addr = 0, .memory_size = 8192,
					.userspace_addr = 0x1000, .mmap_offset = 0 };
	struct husk_error err = {};
	struct vu_mem mem;
	int fd = memfd_create("t", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	vu_mem_init(&mem);
	/* The fd is shorter than the region: refused instead of a later SIGBUS. */
	assert_int_equal(vu_mem_map(&mem, &d, 1, &fd, &err), -EINVAL);
	assert_int_equal(ftruncate(fd, 8192), 0);
	assert_int_equal(vu_mem_map(&mem, &d, 1, &fd, NULL), 0);
	assert_non_null(vu_mem_gpa(&mem, 4096, 4096));
	d.mmap_offset = UINT64_MAX - 100;
	assert_int_equal(vu_mem_map(&mem, &d, 1, &fd, NULL), -EINVAL);
	d.mmap_offset = 0;
	d.memory_size = 0;
	assert_int_equal(vu_mem_map(&mem, &d, 1, &fd, NULL), -EINVAL);
	vu_mem_clear(&mem);
	close(fd);
}

/* A ring in borrowed memory, driven by hand. */
struct ring {
	uint8_t ram[0x10000];
	struct vu_mem mem;
	struct virtq vq;
};

static void ring_setup(struct ring *r, bool event_idx)
{
	const char *why;

	memset(r, 0, sizeof(*r));
	vu_mem_init(&r->mem);
	assert_int_equal(vu_mem_add_borrowed(&r->mem, 0, 0, r->ram, sizeof(r->ram)), 0);
	assert_int_equal(virtq_init(&r->vq, &r->mem, 8, 0, 0x100, 0x200, 0, event_idx, &why), 0);
}

static void ring_desc(struct ring *r, uint16_t i, uint64_t addr, uint32_t len,
		      uint16_t flags, uint16_t next)
{
	vsock_put64(r->ram + 16 * i, addr);
	vsock_put32(r->ram + 16 * i + 8, len);
	vsock_put16(r->ram + 16 * i + 12, flags);
	vsock_put16(r->ram + 16 * i + 14, next);
}

static void ring_avail(struct ring *r, uint16_t pos, uint16_t head)
{
	vsock_put16(r->ram + 0x100 + 4 + 2 * (pos % 8), head);
	vsock_put16(r->ram + 0x100 + 2, pos + 1);
}

static void test_virtq_scatter(void **state)
{
	struct ring *r = malloc(sizeof(*r));
	struct virtq_chain c;
	const char *why;
	char out[12];

	ring_setup(r, false);
	memcpy(r->ram + 0x1000, "hello ", 6);
	memcpy(r->ram + 0x2000, "world!", 6);
	ring_desc(r, 3, 0x1000, 6, VIRTQ_DESC_F_NEXT, 5);
	ring_desc(r, 5, 0x2000, 0, VIRTQ_DESC_F_NEXT, 6);	/* empty piece */
	ring_desc(r, 6, 0x2000, 6, 0, 0);
	ring_avail(r, 0, 3);
	assert_int_equal(virtq_pop(&r->vq, &r->mem, false, 100, &c, &why), 1);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.total, 12);
	assert_int_equal(virtq_chain_read(&c, 0, out, 12), 12);
	assert_memory_equal(out, "hello world!", 12);
	assert_int_equal(virtq_chain_read(&c, 4, out, 4), 4);
	assert_memory_equal(out, "o wo", 4);
	assert_int_equal(virtq_pop(&r->vq, &r->mem, false, 100, &c, &why), 0);
	virtq_push(&r->vq, 3, 0);
	assert_int_equal(vsock_get16(r->ram + 0x202), 1);
	assert_int_equal(vsock_get32(r->ram + 0x204), 3);
	/* The guest asked for no interrupts. */
	vsock_put16(r->ram + 0x100, 1);
	assert_false(virtq_need_notify(&r->vq));
	free(r);
}

static void test_virtq_event_idx(void **state)
{
	struct ring *r = malloc(sizeof(*r));
	struct virtq_chain c;
	const char *why;

	ring_setup(r, true);
	ring_desc(r, 0, 0x1000, 8, 0, 0);
	ring_avail(r, 0, 0);
	assert_int_equal(virtq_pop(&r->vq, &r->mem, false, 100, &c, &why), 1);
	assert_int_equal(virtq_pop(&r->vq, &r->mem, false, 100, &c, &why), 0);
	/* Empty ring: avail_event tells the guest to kick at entry 1. */
	assert_int_equal(vsock_get16(r->ram + 0x200 + 4 + 8 * 8), 1);
	virtq_push(&r->vq, 0, 0);
	assert_true(virtq_need_notify(&r->vq));	/* first completion */
	/* used_event = 5: completions 2..5 stay quiet, 6 interrupts. */
	vsock_put16(r->ram + 0x100 + 4 + 2 * 8, 5);
	for (int i = 0; i < 4; i++) {
		virtq_push(&r->vq, 0, 0);
		assert_false(virtq_need_notify(&r->vq));
	}
	virtq_push(&r->vq, 0, 0);
	assert_true(virtq_need_notify(&r->vq));
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_framing),
		cmocka_unit_test(test_reader_rejects),
		cmocka_unit_test(test_msg_sizes),
		cmocka_unit_test(test_dev_features_and_config),
		cmocka_unit_test(test_dev_vring_checks),
		cmocka_unit_test(test_mem_translation),
		cmocka_unit_test(test_mem_map_checks),
		cmocka_unit_test(test_virtq_scatter),
		cmocka_unit_test(test_virtq_event_idx),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
