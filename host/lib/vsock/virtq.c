// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <string.h>

#include "virtq.h"
#include "vsock-pkt.h"

#define AVAIL_F_NO_INTERRUPT 1

/* Ring layout offsets (virtio 1.x split ring). */
static inline uint8_t *avail_ring(const struct virtq *vq, uint16_t i)
{
	return vq->avail + 4 + 2u * i;
}

static inline uint8_t *used_event(const struct virtq *vq)
{
	return vq->avail + 4 + 2u * vq->num;
}

static inline uint8_t *used_ring(const struct virtq *vq, uint16_t i)
{
	return vq->used + 4 + 8u * i;
}

static inline uint8_t *avail_event(const struct virtq *vq)
{
	return vq->used + 4 + 8u * vq->num;
}

static inline uint16_t load_acquire16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE));
}

static inline void store_release16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELEASE);
}

static int bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EBADMSG;
}

int virtq_init(struct virtq *vq, const struct vu_mem *mem, uint16_t num,
	       uint64_t desc_uva, uint64_t avail_uva, uint64_t used_uva,
	       uint16_t base, bool event_idx, const char **why)
{
	uint64_t desc_len = 16ull * num;
	uint64_t avail_len = 6 + 2ull * num;
	uint64_t used_len = 6 + 8ull * num;

	memset(vq, 0, sizeof(*vq));
	if (num == 0 || num > VIRTQ_MAX_NUM || (num & (num - 1)))
		return bad(why, "ring size is not a power of two <= 32768");
	if ((desc_uva & 15) || (avail_uva & 1) || (used_uva & 3))
		return bad(why, "ring address misaligned");
	vq->desc = vu_mem_uva(mem, desc_uva, desc_len);
	vq->avail = vu_mem_uva(mem, avail_uva, avail_len);
	vq->used = vu_mem_uva(mem, used_uva, used_len);
	if (!vq->desc || !vq->avail || !vq->used)
		return bad(why, "ring outside guest memory");
	vq->num = num;
	vq->last_avail = base;
	/* The used index is the guest's to reset; resume from what it shows. */
	vq->used_idx = load_acquire16(vq->used + 2);
	vq->event_idx = event_idx;
	if (!event_idx)
		store_release16(vq->used, 0);
	return 0;
}

/* How many entries the guest has made available; > num is a lie. */
static int avail_pending(struct virtq *vq, uint16_t *pending, const char **why)
{
	uint16_t idx = load_acquire16(vq->avail + 2);

	*pending = (uint16_t)(idx - vq->last_avail);
	if (*pending > vq->num)
		return bad(why, "avail index moved by more than the ring size");
	return 0;
}

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static void desc_fetch(const struct virtq *vq, uint16_t i, struct desc *d)
{
	uint8_t raw[16];

	memcpy(raw, vq->desc + 16u * i, sizeof(raw));	/* one copy, then decode */
	d->addr = vsock_get64(raw);
	d->len = vsock_get32(raw + 8);
	d->flags = vsock_get16(raw + 12);
	d->next = vsock_get16(raw + 14);
}

static int walk_chain(struct virtq *vq, const struct vu_mem *mem,
		      uint16_t head, bool writable, uint64_t max_total,
		      struct virtq_chain *c, const char **why)
{
	uint16_t i = head;
	unsigned count = 0;
	struct desc d;

	c->head = head;
	c->nsegs = 0;
	c->total = 0;
	for (;;) {
		void *p;

		if (++count > vq->num || count > VIRTQ_MAX_SEGS)
			return bad(why, "descriptor chain loops or is too long");
		desc_fetch(vq, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return bad(why, "indirect descriptor (not negotiated)");
		if (!!(d.flags & VIRTQ_DESC_F_WRITE) != writable)
			return bad(why, writable ? "read-only descriptor in rx chain"
						 : "writable descriptor in tx chain");
		c->total += d.len;
		if (c->total > max_total)
			return bad(why, "descriptor chain longer than allowed");
		if (d.len) {
			p = vu_mem_gpa(mem, d.addr, d.len);
			if (!p)
				return bad(why, "descriptor outside guest memory");
			c->seg[c->nsegs].iov_base = p;
			c->seg[c->nsegs].iov_len = d.len;
			c->nsegs++;
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= vq->num)
			return bad(why, "descriptor next index out of range");
		i = d.next;
	}
}

int virtq_pop(struct virtq *vq, const struct vu_mem *mem, bool writable,
	      uint64_t max_total, struct virtq_chain *c, const char **why)
{
	uint16_t pending, head;
	int r;

	r = avail_pending(vq, &pending, why);
	if (r < 0)
		return r;
	if (pending == 0 && vq->event_idx) {
		/* Ask for a kick on the next entry, then look once more so an
		 * entry added meanwhile is not left waiting for that kick. */
		store_release16(avail_event(vq), vq->last_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		r = avail_pending(vq, &pending, why);
		if (r < 0)
			return r;
	}
	if (pending == 0)
		return 0;
	head = le16toh(__atomic_load_n((uint16_t *)avail_ring(vq, vq->last_avail % vq->num),
				       __ATOMIC_RELAXED));
	if (head >= vq->num)
		return bad(why, "avail ring entry out of range");
	r = walk_chain(vq, mem, head, writable, max_total, c, why);
	if (r < 0)
		return r;
	vq->last_avail++;
	return 1;
}

void virtq_unpop(struct virtq *vq)
{
	vq->last_avail--;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	uint8_t *e = used_ring(vq, vq->used_idx % vq->num);

	vsock_put32(e, head);
	vsock_put32(e + 4, len);
	store_release16(vq->used + 2, ++vq->used_idx);
}

bool virtq_need_notify(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_idx, event;
	bool valid = vq->signalled_valid;

	/* Our used->idx store must be visible before we read the guest's hint. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load_acquire16(vq->avail) & AVAIL_F_NO_INTERRUPT);
	vq->signalled_used = now;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	event = load_acquire16(used_event(vq));
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

/* Copy len bytes between buf and the chain starting at byte off. */
static size_t chain_copy(const struct virtq_chain *c, uint64_t off, void *buf,
			 size_t len, bool to_chain)
{
	struct iovec iov[VIRTQ_MAX_SEGS];
	unsigned n = virtq_chain_iov(c, off, len, iov, VIRTQ_MAX_SEGS);
	size_t done = 0;

	for (unsigned i = 0; i < n; i++) {
		if (to_chain)
			memcpy(iov[i].iov_base, (uint8_t *)buf + done, iov[i].iov_len);
		else
			memcpy((uint8_t *)buf + done, iov[i].iov_base, iov[i].iov_len);
		done += iov[i].iov_len;
	}
	return done;
}

size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off,
			void *buf, size_t len)
{
	return chain_copy(c, off, buf, len, false);
}

size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off,
			 const void *buf, size_t len)
{
	return chain_copy(c, off, (void *)buf, len, true);
}

unsigned virtq_chain_iov(const struct virtq_chain *c, uint64_t off, size_t len,
			 struct iovec *iov, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->nsegs && len && n < max; i++) {
		size_t seglen = c->seg[i].iov_len, take;

		if (off >= seglen) {
			off -= seglen;
			continue;
		}
		take = seglen - off;
		if (take > len)
			take = len;
		iov[n].iov_base = (uint8_t *)c->seg[i].iov_base + off;
		iov[n].iov_len = take;
		n++;
		len -= take;
		off = 0;
	}
	return n;
}
