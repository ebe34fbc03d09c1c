// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vu-msg.h"

void vu_reader_init(struct vu_reader *rd)
{
	rd->have = 0;
	rd->nfds = 0;
}

void vu_reader_reset(struct vu_reader *rd)
{
	for (unsigned i = 0; i < rd->nfds; i++)
		safe_close(rd->fds[i]);
	vu_reader_init(rd);
}

static uint32_t hdr_u32(const struct vu_reader *rd, size_t off)
{
	uint32_t v;

	memcpy(&v, rd->buf + off, sizeof(v));
	return v;
}

/* Bytes still missing for the current message, or -EPROTO for bad framing. */
static int bytes_wanted(const struct vu_reader *rd, size_t *want)
{
	uint32_t flags, size;

	if (rd->have < VU_HDR_SIZE) {
		*want = VU_HDR_SIZE - rd->have;
		return 0;
	}
	flags = hdr_u32(rd, 4);
	size = hdr_u32(rd, 8);
	if ((flags & VU_VERSION_MASK) != VU_VERSION || size > VU_PAYLOAD_MAX)
		return -EPROTO;
	*want = VU_HDR_SIZE + size - rd->have;
	return 0;
}

static void take_message(struct vu_reader *rd, struct vu_msg *msg)
{
	memset(msg, 0, offsetof(struct vu_msg, fds));
	msg->request = hdr_u32(rd, 0);
	msg->flags = hdr_u32(rd, 4);
	msg->size = hdr_u32(rd, 8);
	memcpy(msg->payload.raw, rd->buf + VU_HDR_SIZE, msg->size);
	memcpy(msg->fds, rd->fds, rd->nfds * sizeof(int));
	msg->nfds = rd->nfds;
	vu_reader_init(rd);
}

/* Keep the fds of one SCM_RIGHTS message; anything beyond the cap is closed. */
static int stash_fds(struct vu_reader *rd, struct msghdr *mh)
{
	int r = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		unsigned n;
		int *fds;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(c);
		for (unsigned i = 0; i < n; i++) {
			if (rd->nfds < VU_MAX_FDS)
				rd->fds[rd->nfds++] = fds[i];
			else {
				safe_close(fds[i]);
				r = -EPROTO;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		r = -EPROTO;
	return r;
}

int vu_reader_recv(struct vu_reader *rd, int fd, struct vu_msg *msg)
{
	for (;;) {
		union {
			char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		size_t want;
		ssize_t n;
		int r;

		r = bytes_wanted(rd, &want);
		if (r < 0)
			return r;
		if (want == 0) {
			take_message(rd, msg);
			return 1;
		}
		iov.iov_base = rd->buf + rd->have;
		iov.iov_len = want;
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		r = stash_fds(rd, &mh);
		if (r < 0)
			return r;
		if (n == 0)
			return -EPIPE;
		rd->have += n;
	}
}

int vu_reader_feed(struct vu_reader *rd, const uint8_t *data, size_t len,
		   size_t *used, struct vu_msg *msg)
{
	*used = 0;
	for (;;) {
		size_t want;
		int r;

		r = bytes_wanted(rd, &want);
		if (r < 0)
			return r;
		if (want == 0) {
			take_message(rd, msg);
			return 1;
		}
		if (*used == len)
			return 0;
		if (want > len - *used)
			want = len - *used;
		memcpy(rd->buf + rd->have, data + *used, want);
		rd->have += want;
		*used += want;
	}
}

void vu_msg_close_fds(struct vu_msg *msg)
{
	for (unsigned i = 0; i < msg->nfds; i++)
		msg->fds[i] = safe_close(msg->fds[i]);
	msg->nfds = 0;
}

bool vu_request_has_reply(uint32_t request)
{
	switch (request) {
	case VU_GET_FEATURES:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_GET_VRING_BASE:
	case VU_GET_QUEUE_NUM:
	case VU_GET_CONFIG:
		return true;
	default:
		return false;
	}
}

const char *vu_request_name(uint32_t request)
{
	static const char *const names[] = {
		[VU_GET_FEATURES] = "GET_FEATURES",
		[VU_SET_FEATURES] = "SET_FEATURES",
		[VU_SET_OWNER] = "SET_OWNER",
		[VU_RESET_OWNER] = "RESET_OWNER",
		[VU_SET_MEM_TABLE] = "SET_MEM_TABLE",
		[VU_SET_LOG_BASE] = "SET_LOG_BASE",
		[VU_SET_LOG_FD] = "SET_LOG_FD",
		[VU_SET_VRING_NUM] = "SET_VRING_NUM",
		[VU_SET_VRING_ADDR] = "SET_VRING_ADDR",
		[VU_SET_VRING_BASE] = "SET_VRING_BASE",
		[VU_GET_VRING_BASE] = "GET_VRING_BASE",
		[VU_SET_VRING_KICK] = "SET_VRING_KICK",
		[VU_SET_VRING_CALL] = "SET_VRING_CALL",
		[VU_SET_VRING_ERR] = "SET_VRING_ERR",
		[VU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
		[VU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
		[VU_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
		[VU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
		[VU_GET_CONFIG] = "GET_CONFIG",
		[VU_SET_CONFIG] = "SET_CONFIG",
	};

	if (request < ARRAY_SIZE(names) && names[request])
		return names[request];
	return "unknown";
}

static int check_size(const struct vu_msg *msg, size_t expect, const char **why)
{
	if (msg->size != expect) {
		*why = "payload size does not match the request";
		return -EINVAL;
	}
	return 0;
}

int vu_msg_check(const struct vu_msg *msg, const char **why)
{
	unsigned fds_wanted = 0;
	int r = 0;

	switch (msg->request) {
	case VU_GET_FEATURES:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_GET_QUEUE_NUM:
	case VU_SET_OWNER:
	case VU_RESET_OWNER:
		r = check_size(msg, 0, why);
		break;
	case VU_SET_FEATURES:
	case VU_SET_PROTOCOL_FEATURES:
		r = check_size(msg, sizeof(uint64_t), why);
		break;
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		r = check_size(msg, sizeof(uint64_t), why);
		if (r == 0 && !(msg->payload.u64 & VU_VRING_FD_NOFD))
			fds_wanted = 1;
		break;
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		r = check_size(msg, sizeof(struct vu_vring_state), why);
		break;
	case VU_SET_VRING_ADDR:
		r = check_size(msg, sizeof(struct vu_vring_addr), why);
		break;
	case VU_SET_MEM_TABLE:
		if (msg->size < 8) {
			*why = "memory table too short";
			return -EINVAL;
		}
		if (msg->payload.mem.nregions == 0 ||
		    msg->payload.mem.nregions > VU_MAX_REGIONS) {
			*why = "memory table: bad region count";
			return -EINVAL;
		}
		r = check_size(msg, 8 + 32 * msg->payload.mem.nregions, why);
		fds_wanted = msg->payload.mem.nregions;
		break;
	case VU_GET_CONFIG:
	case VU_SET_CONFIG:
		if (msg->size < 12 || msg->payload.config.size > VU_CONFIG_MAX) {
			*why = "config message malformed";
			return -EINVAL;
		}
		r = check_size(msg, 12 + msg->payload.config.size, why);
		break;
	default:
		break;		/* unknown requests are answered, not parsed */
	}
	if (r < 0)
		return r;
	if (msg->nfds != fds_wanted) {
		*why = "wrong number of fds for the request";
		return -EBADF;
	}
	return 0;
}

int vu_msg_send_reply(int fd, const struct vu_msg *reply)
{
	uint8_t buf[VU_HDR_SIZE + VU_PAYLOAD_MAX];
	size_t len = VU_HDR_SIZE + reply->size;
	ssize_t n;

	if (reply->size > VU_PAYLOAD_MAX)
		return -EINVAL;
	memcpy(buf, &reply->request, 4);
	memcpy(buf + 4, &reply->flags, 4);
	memcpy(buf + 8, &reply->size, 4);
	memcpy(buf + VU_HDR_SIZE, reply->payload.raw, reply->size);
	n = send(fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}
