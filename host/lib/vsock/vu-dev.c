// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vu-dev.h"
#include "vsock-pkt.h"

void vu_dev_init(struct vu_dev *dev, uint64_t guest_cid)
{
	memset(dev, 0, sizeof(*dev));
	dev->guest_cid = guest_cid;
	vu_mem_init(&dev->mem);
	for (unsigned i = 0; i < VU_VSOCK_NQUEUES; i++) {
		dev->vring[i].kick_fd = -1;
		dev->vring[i].call_fd = -1;
		dev->vring[i].err_fd = -1;
	}
}

/* Stop processing; remember the position so a restart can resume. */
static void vring_halt(struct vu_vring *vr)
{
	if (!vr->started)
		return;
	vr->base = vr->stopped_base = vr->vq.last_avail;
	vr->stopped_addr = vr->addr;
	vr->resumable = true;
	vr->started = false;
}

static void vring_stop(struct vu_vring *vr)
{
	vring_halt(vr);
	if (vr->kick_fd >= 0) {
		vr->kick_fd = safe_close(vr->kick_fd);
		vr->kick_gen++;
	}
}

void vu_dev_release(struct vu_dev *dev)
{
	for (unsigned i = 0; i < VU_VSOCK_NQUEUES; i++) {
		struct vu_vring *vr = &dev->vring[i];

		vring_stop(vr);
		vr->call_fd = safe_close(vr->call_fd);
		vr->err_fd = safe_close(vr->err_fd);
	}
	vu_mem_clear(&dev->mem);
}

bool vu_dev_ring_running(const struct vu_dev *dev, unsigned idx)
{
	const struct vu_vring *vr = &dev->vring[idx];

	return !dev->broken && vr->started && vr->enabled;
}

static bool any_started(const struct vu_dev *dev)
{
	for (unsigned i = 0; i < VU_VSOCK_NQUEUES; i++)
		if (dev->vring[i].started)
			return true;
	return false;
}

void vu_dev_set_broken(struct vu_dev *dev)
{
	static const uint64_t one = 1;

	if (dev->broken)
		return;
	dev->broken = true;
	for (unsigned i = 0; i < VU_VSOCK_NQUEUES; i++)
		if (dev->vring[i].err_fd >= 0 &&
		    write(dev->vring[i].err_fd, &one, sizeof(one)) < 0) {
			/* QEMU only logs it; nothing more to do. */
		}
}

void vu_dev_notify(struct vu_dev *dev, unsigned idx)
{
	static const uint64_t one = 1;
	struct vu_vring *vr = &dev->vring[idx];

	if (vr->call_fd >= 0 && virtq_need_notify(&vr->vq) &&
	    write(vr->call_fd, &one, sizeof(one)) < 0) {
		/* eventfd counter saturated or gone: the guest gets it anyway. */
	}
}

/* Translate the rings; a guest-supplied bad address breaks the device. */
static int vring_start(struct vu_dev *dev, struct vu_vring *vr, const char **why)
{
	bool event_idx = dev->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	int r;

	if (!vr->addr_set || vr->num == 0 || dev->mem.nregions == 0) {
		*why = "ring started before its size, addresses or memory";
		return -EINVAL;
	}
	/* A fresh start wipes an old verdict: this is a new driver session. */
	if (!any_started(dev))
		dev->broken = false;
	r = virtq_init(&vr->vq, &dev->mem, vr->num, vr->addr.desc_uaddr,
		       vr->addr.avail_uaddr, vr->addr.used_uaddr, vr->base,
		       event_idx, why);
	if (r < 0) {
		vu_dev_set_broken(dev);
		return r;
	}
	vr->resumed = vr->resumable && vr->base == vr->stopped_base &&
		      vr->addr.desc_uaddr == vr->stopped_addr.desc_uaddr &&
		      vr->addr.avail_uaddr == vr->stopped_addr.avail_uaddr &&
		      vr->addr.used_uaddr == vr->stopped_addr.used_uaddr;
	vr->resumable = false;
	vr->started = true;
	return 0;
}

static struct vu_vring *vring_of(struct vu_dev *dev, uint32_t index,
				 const char **why)
{
	if (index >= VU_VSOCK_NQUEUES) {
		*why = "ring index out of range";
		return NULL;
	}
	return &dev->vring[index];
}

/* SET_VRING_KICK / CALL / ERR: swap in the new fd (or none). */
static int set_vring_fd(struct vu_dev *dev, struct vu_msg *msg, const char **why)
{
	struct vu_vring *vr = vring_of(dev, msg->payload.u64 & VU_VRING_FD_INDEX_MASK, why);
	int fd = msg->nfds ? msg->fds[0] : -1;
	int *slot;

	if (!vr)
		return -EINVAL;
	if (msg->request == VU_SET_VRING_KICK) {
		if (fd < 0) {
			*why = "polling mode (no kick fd) is not supported";
			return -ENOTSUP;
		}
		slot = &vr->kick_fd;
	} else if (msg->request == VU_SET_VRING_CALL) {
		slot = &vr->call_fd;
	} else {
		slot = &vr->err_fd;
	}
	safe_close(*slot);
	*slot = fd;
	msg->nfds = 0;
	if (msg->request != VU_SET_VRING_KICK)
		return 0;
	vr->kick_gen++;
	vring_halt(vr);
	return vring_start(dev, vr, why);
}

static int set_mem_table(struct vu_dev *dev, struct vu_msg *msg, const char **why)
{
	int r;

	r = vu_mem_map(&dev->mem, msg->payload.mem.region,
		       msg->payload.mem.nregions, msg->fds, NULL);
	if (r < 0) {
		*why = "cannot map the memory table";
		return r;
	}
	/* Rings already running must be re-translated into the new maps. */
	for (unsigned i = 0; i < VU_VSOCK_NQUEUES; i++) {
		struct vu_vring *vr = &dev->vring[i];

		if (vr->started) {
			vring_halt(vr);
			r = vring_start(dev, vr, why);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int get_config(struct vu_dev *dev, const struct vu_msg *msg,
		      struct vu_msg *reply)
{
	const struct vu_config *in = &msg->payload.config;
	uint8_t space[8];

	vsock_put64(space, dev->guest_cid);
	reply->payload.config = (struct vu_config){ .offset = in->offset,
						    .flags = in->flags };
	if (in->offset > sizeof(space) || in->size > sizeof(space) - in->offset) {
		reply->size = 12;	/* size 0 tells QEMU it failed */
		return -EINVAL;
	}
	reply->payload.config.size = in->size;
	memcpy(reply->payload.config.data, space + in->offset, in->size);
	reply->size = 12 + in->size;
	return 0;
}

static int handle_vring_state(struct vu_dev *dev, const struct vu_msg *msg,
			      struct vu_msg *reply, const char **why)
{
	const struct vu_vring_state *st = &msg->payload.state;
	struct vu_vring *vr = vring_of(dev, st->index, why);

	if (!vr)
		return -EINVAL;
	switch (msg->request) {
	case VU_SET_VRING_NUM:
		if (st->num == 0 || st->num > VIRTQ_MAX_NUM || (st->num & (st->num - 1))) {
			*why = "ring size is not a power of two <= 32768";
			return -EINVAL;
		}
		vr->num = st->num;
		return 0;
	case VU_SET_VRING_BASE:
		if (st->num > UINT16_MAX) {
			*why = "ring base out of range";
			return -EINVAL;
		}
		vr->base = st->num;
		return 0;
	case VU_SET_VRING_ENABLE:
		vr->enabled = st->num != 0;
		return 0;
	case VU_GET_VRING_BASE:
		vring_stop(vr);
		reply->payload.state = (struct vu_vring_state){ st->index, vr->base };
		reply->size = sizeof(reply->payload.state);
		return 0;
	}
	return -EINVAL;
}

static int dispatch(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply,
		    const char **why)
{
	switch (msg->request) {
	case VU_GET_FEATURES:
		reply->payload.u64 = VU_VSOCK_FEATURES;
		reply->size = sizeof(uint64_t);
		return 0;
	case VU_SET_FEATURES:
		if (msg->payload.u64 & ~VU_VSOCK_FEATURES) {
			*why = "features we did not offer";
			return -EINVAL;
		}
		dev->features = msg->payload.u64;
		return 0;
	case VU_GET_PROTOCOL_FEATURES:
		reply->payload.u64 = VU_VSOCK_PROTOCOL_FEATURES;
		reply->size = sizeof(uint64_t);
		return 0;
	case VU_SET_PROTOCOL_FEATURES:
		if (msg->payload.u64 & ~VU_VSOCK_PROTOCOL_FEATURES) {
			*why = "protocol features we did not offer";
			return -EINVAL;
		}
		dev->protocol_features = msg->payload.u64;
		return 0;
	case VU_GET_QUEUE_NUM:
		reply->payload.u64 = VU_VSOCK_NQUEUES;
		reply->size = sizeof(uint64_t);
		return 0;
	case VU_SET_OWNER:
		return 0;
	case VU_RESET_OWNER:
		for (unsigned i = 0; i < VU_VSOCK_NQUEUES; i++)
			vring_stop(&dev->vring[i]);
		return 0;
	case VU_SET_MEM_TABLE:
		return set_mem_table(dev, msg, why);
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		return handle_vring_state(dev, msg, reply, why);
	case VU_SET_VRING_ADDR: {
		struct vu_vring *vr = vring_of(dev, msg->payload.addr.index, why);

		bool was_started;

		if (!vr)
			return -EINVAL;
		was_started = vr->started;
		vring_halt(vr);
		vr->addr = msg->payload.addr;
		vr->addr_set = true;
		return was_started ? vring_start(dev, vr, why) : 0;
	}
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		return set_vring_fd(dev, msg, why);
	case VU_GET_CONFIG:
		if (get_config(dev, msg, reply) < 0) {
			*why = "config read outside the 8-byte config space";
			return -EINVAL;
		}
		return 0;
	case VU_SET_CONFIG:
		*why = "vsock config space is read-only";
		return -EPERM;
	default:
		*why = "request not supported";
		return -ENOTSUP;
	}
}

int vu_dev_handle(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply,
		  bool *has_reply, const char **why)
{
	int r;

	memset(reply, 0, offsetof(struct vu_msg, fds));
	reply->request = msg->request;
	reply->flags = VU_VERSION | VU_FLAG_REPLY;
	reply->nfds = 0;
	r = vu_msg_check(msg, why);
	if (r == 0)
		r = dispatch(dev, msg, reply, why);
	vu_msg_close_fds(msg);

	*has_reply = vu_request_has_reply(msg->request);
	if (!*has_reply && (msg->flags & VU_FLAG_NEED_REPLY)) {
		reply->payload.u64 = r < 0;
		reply->size = sizeof(uint64_t);
		*has_reply = true;
	}
	if (*has_reply && r < 0 && msg->request != VU_GET_CONFIG &&
	    vu_request_has_reply(msg->request) && reply->size == 0) {
		/* A reply of the expected shape keeps QEMU from waiting forever. */
		reply->size = msg->request == VU_GET_VRING_BASE ?
			      sizeof(struct vu_vring_state) : sizeof(uint64_t);
	}
	return r;
}
