/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The vhost-user device state of a vsock backend: negotiated features,
 * guest memory, and the rx (0) and tx (1) rings with their eventfds.  QEMU
 * keeps the event queue (2) for itself.  vu_dev_handle() applies one
 * validated message; the caller owns the socket and the event loop.
 */
#ifndef HUSK_VU_DEV_H
#define HUSK_VU_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "virtq.h"
#include "vu-mem.h"
#include "vu-msg.h"

#define VU_VSOCK_RX	0
#define VU_VSOCK_TX	1
#define VU_VSOCK_NQUEUES 2

#define VIRTIO_RING_F_EVENT_IDX		29
#define VHOST_USER_F_PROTOCOL_FEATURES	30
#define VIRTIO_F_VERSION_1		32

#define VU_PROTOCOL_F_MQ		0
#define VU_PROTOCOL_F_REPLY_ACK		3
#define VU_PROTOCOL_F_CONFIG		9

#define VU_VSOCK_FEATURES ((1ull << VIRTIO_F_VERSION_1) | \
			   (1ull << VHOST_USER_F_PROTOCOL_FEATURES) | \
			   (1ull << VIRTIO_RING_F_EVENT_IDX))
#define VU_VSOCK_PROTOCOL_FEATURES ((1ull << VU_PROTOCOL_F_CONFIG) | \
				    (1ull << VU_PROTOCOL_F_REPLY_ACK))

struct vu_vring {
	struct virtq vq;
	uint16_t num;
	uint16_t base;
	struct vu_vring_addr addr;
	bool addr_set;
	bool started;		/* kick fd received and rings translated */
	bool enabled;		/* SET_VRING_ENABLE */
	int kick_fd;
	int call_fd;
	int err_fd;
	unsigned kick_gen;	/* bumped whenever kick_fd changes */
	/* Where the ring was when it last stopped, to tell a resume (VM
	 * pause/cont: same base, same rings) from a new driver session. */
	uint16_t stopped_base;
	struct vu_vring_addr stopped_addr;
	bool resumable;
	bool resumed;		/* the last start continued where it stopped */
};

struct vu_dev {
	uint64_t guest_cid;
	uint64_t features;
	uint64_t protocol_features;
	struct vu_mem mem;
	struct vu_vring vring[VU_VSOCK_NQUEUES];
	bool broken;		/* guest broke a rule; cleared at the next start */
};

void vu_dev_init(struct vu_dev *dev, uint64_t guest_cid);

/* Close every fd and unmap guest memory (QEMU went away). */
void vu_dev_release(struct vu_dev *dev);

/*
 * Apply msg (its fds are taken or closed).  *reply is filled when a reply
 * is due (own reply or NEED_REPLY ack) and *has_reply set.  Returns 0 or
 * -errno with *why on a rejected request; a reply is still produced.
 */
int vu_dev_handle(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply,
		  bool *has_reply, const char **why);

/* The ring is processed only while this holds. */
bool vu_dev_ring_running(const struct vu_dev *dev, unsigned idx);

/* Mark the device broken: stop both rings and tell QEMU via the err fd. */
void vu_dev_set_broken(struct vu_dev *dev);

/* Interrupt the guest for ring idx if it asked for one. */
void vu_dev_notify(struct vu_dev *dev, unsigned idx);

#endif
