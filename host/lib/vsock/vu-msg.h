/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vhost-user wire format (QEMU docs/interop/vhost-user.rst): a 12-byte
 * header {request, flags, size} in host byte order, then size bytes of
 * payload; fds ride along as SCM_RIGHTS.  The reader assembles messages
 * from a non-blocking socket; vu_msg_check() validates a payload's size
 * and fd count for its request before anyone reads a field.
 */
#ifndef HUSK_VU_MSG_H
#define HUSK_VU_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vu-mem.h"

enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
};

#define VU_VERSION		0x1u
#define VU_VERSION_MASK		0x3u
#define VU_FLAG_REPLY		0x4u
#define VU_FLAG_NEED_REPLY	0x8u

#define VU_HDR_SIZE		12
/* SET_MEM_TABLE with 8 regions is the largest message a vsock device gets. */
#define VU_PAYLOAD_MAX		(8 + VU_MAX_REGIONS * 32)
#define VU_MAX_FDS		8
#define VU_VRING_FD_INDEX_MASK	0xffu
#define VU_VRING_FD_NOFD	0x100u
#define VU_CONFIG_MAX		(VU_PAYLOAD_MAX - 12)

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_uaddr;
	uint64_t used_uaddr;	/* sic: used before avail on the wire */
	uint64_t avail_uaddr;
	uint64_t log_gpa;
};

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region_desc region[VU_MAX_REGIONS];
};

struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[VU_CONFIG_MAX];
};

struct vu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct vu_vring_state state;
		struct vu_vring_addr addr;
		struct vu_mem_table mem;
		struct vu_config config;
		uint8_t raw[VU_PAYLOAD_MAX];
	} payload;
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

/* Assembles one message at a time from a byte stream plus fds. */
struct vu_reader {
	uint8_t buf[VU_HDR_SIZE + VU_PAYLOAD_MAX];
	size_t have;
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

void vu_reader_init(struct vu_reader *rd);
/* Close any fds held by a half-read message. */
void vu_reader_reset(struct vu_reader *rd);

/*
 * Read from fd without blocking.  Returns 1 with *msg complete (the fds
 * move into msg), 0 when more bytes are needed, -EPIPE at EOF, another
 * -errno on a socket or framing error.
 */
int vu_reader_recv(struct vu_reader *rd, int fd, struct vu_msg *msg);

/*
 * Feed bytes (no fds); the same framing as vu_reader_recv.  *used tells how
 * many were consumed.  Used by the fuzzer and tests.
 */
int vu_reader_feed(struct vu_reader *rd, const uint8_t *data, size_t len,
		   size_t *used, struct vu_msg *msg);

/* Size and fd checks for msg->request; -EINVAL/-EBADF with *why. */
int vu_msg_check(const struct vu_msg *msg, const char **why);

/* Close the fds a message carries (those nobody took). */
void vu_msg_close_fds(struct vu_msg *msg);

/* Does this request have a reply of its own? */
bool vu_request_has_reply(uint32_t request);

const char *vu_request_name(uint32_t request);

/* Send a reply (header + size bytes of payload). */
int vu_msg_send_reply(int fd, const struct vu_msg *reply);

#endif
