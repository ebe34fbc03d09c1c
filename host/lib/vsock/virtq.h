/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Split virtqueue, device side.  The rings live in guest memory and the
 * guest may scribble on them at any time, so every index is checked, every
 * descriptor is copied before it is looked at, and a violation returns
 * -EBADMSG with a reason instead of touching memory it should not.
 */
#ifndef HUSK_VIRTQ_H
#define HUSK_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vu-mem.h"

#define VIRTQ_MAX_NUM		32768
/* Longer chains are treated as hostile; Linux uses one or two descriptors. */
#define VIRTQ_MAX_SEGS		64

#define VIRTQ_DESC_F_NEXT	1
#define VIRTQ_DESC_F_WRITE	2
#define VIRTQ_DESC_F_INDIRECT	4

struct virtq_chain {
	uint16_t head;
	unsigned nsegs;
	uint64_t total;		/* sum of the segment lengths */
	struct iovec seg[VIRTQ_MAX_SEGS];
};

struct virtq {
	uint16_t num;
	uint8_t *desc;		/* host pointers into guest memory */
	uint8_t *avail;
	uint8_t *used;
	uint16_t last_avail;	/* next avail entry to consume */
	uint16_t used_idx;	/* our copy of used->idx */
	uint16_t signalled_used;
	bool signalled_valid;
	bool event_idx;
};

/*
 * Point vq at rings given as QEMU virtual addresses; checks size, alignment
 * and that each ring lies in mapped memory.  base is the next avail index.
 */
int virtq_init(struct virtq *vq, const struct vu_mem *mem, uint16_t num,
	       uint64_t desc_uva, uint64_t avail_uva, uint64_t used_uva,
	       uint16_t base, bool event_idx, const char **why);

/*
 * Take the next available chain.  writable selects the direction every
 * descriptor must have; max_total caps the chain's byte count.  Returns 1
 * with *c filled, 0 when the ring is empty, -EBADMSG (with *why) when the
 * guest broke a rule.
 */
int virtq_pop(struct virtq *vq, const struct vu_mem *mem, bool writable,
	      uint64_t max_total, struct virtq_chain *c, const char **why);

/* Give back the chain taken by the last virtq_pop (it was not used). */
void virtq_unpop(struct virtq *vq);

/* Mark a chain used with len bytes written into it. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);

/* After a batch of pushes: does the guest want an interrupt? */
bool virtq_need_notify(struct virtq *vq);

/* Copy between a chain (from byte offset off) and a flat buffer. */
size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off,
			void *buf, size_t len);
size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off,
			 const void *buf, size_t len);

/* Describe up to len bytes of the chain from off as an iovec array. */
unsigned virtq_chain_iov(const struct virtq_chain *c, uint64_t off, size_t len,
			 struct iovec *iov, unsigned max);

#endif
