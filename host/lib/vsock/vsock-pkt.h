/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The virtio-vsock packet header (virtio spec "Socket Device"): 44 bytes,
 * packed, little-endian.  Guest headers are decoded once into a host-order
 * struct; nothing re-reads the guest's copy afterwards.
 */
#ifndef HUSK_VSOCK_PKT_H
#define HUSK_VSOCK_PKT_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

#define VSOCK_HDR_SIZE		44
#define VSOCK_HOST_CID		2
#define VSOCK_MAX_PAYLOAD	(64 * 1024)

#define VSOCK_TYPE_STREAM	1

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_SHUTDOWN_RCV	1u	/* sender will receive no more */
#define VSOCK_SHUTDOWN_SEND	2u	/* sender will send no more */
#define VSOCK_SHUTDOWN_BOTH	3u

struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
};

static inline uint64_t vsock_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline uint32_t vsock_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint16_t vsock_get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline void vsock_put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static inline void vsock_put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void vsock_put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_SIZE],
				    struct vsock_hdr *h)
{
	h->src_cid = vsock_get64(raw + 0);
	h->dst_cid = vsock_get64(raw + 8);
	h->src_port = vsock_get32(raw + 16);
	h->dst_port = vsock_get32(raw + 20);
	h->len = vsock_get32(raw + 24);
	h->type = vsock_get16(raw + 28);
	h->op = vsock_get16(raw + 30);
	h->flags = vsock_get32(raw + 32);
	h->buf_alloc = vsock_get32(raw + 36);
	h->fwd_cnt = vsock_get32(raw + 40);
}

static inline void vsock_hdr_encode(const struct vsock_hdr *h,
				    uint8_t raw[VSOCK_HDR_SIZE])
{
	vsock_put64(raw + 0, h->src_cid);
	vsock_put64(raw + 8, h->dst_cid);
	vsock_put32(raw + 16, h->src_port);
	vsock_put32(raw + 20, h->dst_port);
	vsock_put32(raw + 24, h->len);
	vsock_put16(raw + 28, h->type);
	vsock_put16(raw + 30, h->op);
	vsock_put32(raw + 32, h->flags);
	vsock_put32(raw + 36, h->buf_alloc);
	vsock_put32(raw + 40, h->fwd_cnt);
}

#endif
