/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test double for QEMU and a guest driver, in one process with no QEMU:
 * speaks vhost-user to a struct vsockd over a real unix socket, shares a
 * memfd as guest RAM, lays out split rings in it, posts rx buffers, writes
 * tx packets, kicks eventfds and reads what the backend put in the rx ring.
 * Tests and the tx fuzzer can also scribble on the rings directly.
 */
#ifndef HUSK_VSOCK_FAKE_GUEST_H
#define HUSK_VSOCK_FAKE_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsock-pkt.h"
#include "vsockd.h"
#include "vu-msg.h"

#define FG_MEM_SIZE	(8u << 20)
#define FG_QSIZE	64u
#define FG_RX_BUF	0x4000u		/* rx slot size */
#define FG_TX_BUF	0x11000u	/* tx slot size: 44 + 64 KiB fits */

struct fg_queue {
	uint64_t desc_gpa, avail_gpa, used_gpa, buf_gpa, buf_size;
	uint16_t avail_idx;	/* next avail index we publish */
	uint16_t used_seen;	/* used entries already consumed */
	uint16_t stopped_base;	/* GET_VRING_BASE answer at the last stop */
	int kick_fd, call_fd;
};

struct fake_guest {
	struct vsockd *d;
	int vu_fd;
	int memfd;
	uint8_t *mem;
	uint64_t cid;
	struct fg_queue q[2];	/* 0 rx, 1 tx */
};

int fg_open(struct fake_guest *g, struct vsockd *d, const char *vu_path, uint64_t cid);
void fg_close(struct fake_guest *g);

/* Run the backend until it has nothing left to do right now. */
void fg_pump(struct fake_guest *g);

/* One vhost-user request; *reply (if non-NULL) gets the answer. 0 or -errno. */
int fg_vu_call(struct fake_guest *g, uint32_t request, uint32_t flags,
	       const void *payload, uint32_t size, const int *fds, unsigned nfds,
	       struct vu_msg *reply);

/* Device start as QEMU does it (sequence B in the brief); 0 or -errno. */
int fg_start(struct fake_guest *g, uint64_t features);
/* Device stop: ENABLE 0 and GET_VRING_BASE on both rings. */
int fg_stop(struct fake_guest *g);
/* Start again where fg_stop left off, as QEMU does after a VM pause. */
int fg_resume(struct fake_guest *g, uint64_t features);

/* Guest-physical address to our pointer (no checks: test code). */
uint8_t *fg_ptr(struct fake_guest *g, uint64_t gpa);

/* Raw ring access for hostile tests. */
void fg_set_desc(struct fake_guest *g, unsigned q, uint16_t i, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next);
void fg_publish(struct fake_guest *g, unsigned q, uint16_t head);
void fg_set_avail_idx(struct fake_guest *g, unsigned q, uint16_t idx);
void fg_kick(struct fake_guest *g, unsigned q);

/* Post count rx buffers of size bytes each, kick, pump. */
void fg_post_rx(struct fake_guest *g, unsigned count, uint32_t size);

/* Send one tx packet [hdr][payload] (2 descriptors if len > 0), kick, pump. */
void fg_send(struct fake_guest *g, const struct vsock_hdr *h, const void *payload,
	     uint32_t len);
/* Build a header from the guest (src = cid:gport, dst = 2:hport). */
struct vsock_hdr fg_hdr(struct fake_guest *g, uint16_t op, uint32_t gport,
			uint32_t hport, uint32_t len);

/* Take the next rx packet the backend produced: 1, or 0 if none. */
int fg_recv(struct fake_guest *g, struct vsock_hdr *h, void *payload, size_t cap,
	    uint32_t *used_len);

/* tx entries the backend completed so far. */
uint16_t fg_tx_used(struct fake_guest *g);

#endif
