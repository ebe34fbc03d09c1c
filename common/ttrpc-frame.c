// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * ttRPC framing: the 10-byte header, an incremental reader for non-blocking
 * fds and a whole-frame writer.  Also the status-code tables, since both
 * sides of the protocol need them.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "husk-common/ttrpc.h"
#include "ttrpc-internal.h"

/* ---- status codes ---- */

static const char *const code_names[] = {
	[HUSK_TTRPC_OK] = "OK",
	[HUSK_TTRPC_CANCELLED] = "CANCELLED",
	[HUSK_TTRPC_UNKNOWN] = "UNKNOWN",
	[HUSK_TTRPC_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
	[HUSK_TTRPC_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
	[HUSK_TTRPC_NOT_FOUND] = "NOT_FOUND",
	[HUSK_TTRPC_ALREADY_EXISTS] = "ALREADY_EXISTS",
	[HUSK_TTRPC_PERMISSION_DENIED] = "PERMISSION_DENIED",
	[HUSK_TTRPC_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
	[HUSK_TTRPC_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
	[HUSK_TTRPC_ABORTED] = "ABORTED",
	[HUSK_TTRPC_OUT_OF_RANGE] = "OUT_OF_RANGE",
	[HUSK_TTRPC_UNIMPLEMENTED] = "UNIMPLEMENTED",
	[HUSK_TTRPC_INTERNAL] = "INTERNAL",
	[HUSK_TTRPC_UNAVAILABLE] = "UNAVAILABLE",
	[HUSK_TTRPC_DATA_LOSS] = "DATA_LOSS",
	[HUSK_TTRPC_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

const char *husk_ttrpc_code_name(int code)
{
	if (code < 0 || (size_t)code >= ARRAY_SIZE(code_names))
		return "UNKNOWN_CODE";
	return code_names[code];
}

/* One table serves both directions; the first row for a code wins. */
static const struct {
	int code;
	int errnum;
} code_errno[] = {
	{ HUSK_TTRPC_OK, 0 },
	{ HUSK_TTRPC_CANCELLED, ECANCELED },
	{ HUSK_TTRPC_INVALID_ARGUMENT, EINVAL },
	{ HUSK_TTRPC_DEADLINE_EXCEEDED, ETIMEDOUT },
	{ HUSK_TTRPC_NOT_FOUND, ENOENT },
	{ HUSK_TTRPC_NOT_FOUND, ESRCH },
	{ HUSK_TTRPC_NOT_FOUND, ENODEV },
	{ HUSK_TTRPC_ALREADY_EXISTS, EEXIST },
	{ HUSK_TTRPC_PERMISSION_DENIED, EPERM },
	{ HUSK_TTRPC_PERMISSION_DENIED, EACCES },
	{ HUSK_TTRPC_RESOURCE_EXHAUSTED, ENOSPC },
	{ HUSK_TTRPC_RESOURCE_EXHAUSTED, ENOMEM },
	{ HUSK_TTRPC_RESOURCE_EXHAUSTED, EMFILE },
	{ HUSK_TTRPC_FAILED_PRECONDITION, EBUSY },
	{ HUSK_TTRPC_ABORTED, ECONNABORTED },
	{ HUSK_TTRPC_OUT_OF_RANGE, ERANGE },
	{ HUSK_TTRPC_UNIMPLEMENTED, EOPNOTSUPP },
	{ HUSK_TTRPC_UNIMPLEMENTED, ENOSYS },
	{ HUSK_TTRPC_INTERNAL, EPROTO },
	{ HUSK_TTRPC_UNAVAILABLE, EAGAIN },
	{ HUSK_TTRPC_DATA_LOSS, EIO },
	{ HUSK_TTRPC_UNAUTHENTICATED, EKEYREJECTED },
	{ HUSK_TTRPC_UNKNOWN, EPROTO },
};

int husk_ttrpc_code_from_errno(int errnum)
{
	if (errnum < 0)
		errnum = -errnum;
	for (size_t i = 0; i < ARRAY_SIZE(code_errno); i++)
		if (code_errno[i].errnum == errnum)
			return code_errno[i].code;
	return HUSK_TTRPC_INTERNAL;
}

int husk_ttrpc_errno_from_code(int code)
{
	for (size_t i = 0; i < ARRAY_SIZE(code_errno); i++)
		if (code_errno[i].code == code)
			return code_errno[i].errnum;
	return EPROTO;
}

/* ---- small shared helpers ---- */

int64_t ttrpc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ttrpc_deadline_ms(int timeout_ms)
{
	return timeout_ms > 0 ? ttrpc_now_ms() + timeout_ms : 0;
}

int ttrpc_remaining_ms(int64_t deadline)
{
	int64_t left;

	if (!deadline)
		return -1;
	left = deadline - ttrpc_now_ms();
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

ssize_t ttrpc_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr mh = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = iovcnt,
	};
	ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

	if (n < 0 && errno == ENOTSOCK)
		n = writev(fd, iov, iovcnt);
	return n;
}

int ttrpc_pack(const ProtobufCMessage *msg, uint8_t **ret, size_t *ret_len,
	       struct husk_error *err)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = NULL;

	if (len) {
		buf = malloc(len);
		if (!buf)
			return husk_error_set(err, ENOMEM, "ttRPC: cannot allocate %zu bytes for %s",
					      len, msg->descriptor->name);
		protobuf_c_message_pack(msg, buf);
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* ---- header ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

void husk_ttrpc_header_encode(const struct husk_ttrpc_header *hdr,
			      uint8_t out[HUSK_TTRPC_HEADER_SIZE])
{
	put_be32(out, hdr->length);
	put_be32(out + 4, hdr->stream_id);
	out[8] = hdr->type;
	out[9] = hdr->flags;
}

int husk_ttrpc_header_decode(const uint8_t in[HUSK_TTRPC_HEADER_SIZE],
			     struct husk_ttrpc_header *hdr,
			     struct husk_error *err)
{
	hdr->length = get_be32(in);
	hdr->stream_id = get_be32(in + 4);
	hdr->type = in[8];
	hdr->flags = in[9];

	if (hdr->type < HUSK_TTRPC_TYPE_REQUEST || hdr->type > HUSK_TTRPC_TYPE_DATA)
		return husk_error_set(err, EBADMSG,
				      "ttRPC frame on stream %u has invalid type %u",
				      hdr->stream_id, hdr->type);
	if (hdr->length > HUSK_TTRPC_MAX_FRAME)
		return husk_error_set(err, EMSGSIZE,
				      "ttRPC frame on stream %u is %u bytes, over the %u byte limit",
				      hdr->stream_id, hdr->length, HUSK_TTRPC_MAX_FRAME);
	return 0;
}

void husk_ttrpc_frame_release(struct husk_ttrpc_frame *frame)
{
	free(frame->data);
	frame->data = NULL;
}

/* ---- reader ---- */

void husk_ttrpc_reader_init(struct husk_ttrpc_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void husk_ttrpc_reader_release(struct husk_ttrpc_reader *r)
{
	free(r->body);
	husk_ttrpc_reader_init(r);
}

/*
 * Where the next bytes go and how many are wanted.  *dst is NULL while an
 * oversize body is being skipped: those bytes are read and dropped.
 */
static size_t reader_want(struct husk_ttrpc_reader *r, uint8_t **dst)
{
	if (!r->in_body) {
		*dst = r->hbuf + r->have;
		return HUSK_TTRPC_HEADER_SIZE - r->have;
	}
	*dst = r->hdr_status ? NULL : r->body + r->have;
	return r->hdr.length - r->have;
}

static int reader_finish(struct husk_ttrpc_reader *r,
			 struct husk_ttrpc_frame *frame, struct husk_error *err)
{
	int status = r->hdr_status;

	frame->hdr = r->hdr;
	frame->data = TAKE_PTR(r->body);
	r->in_body = false;
	r->have = 0;
	r->hdr_status = 0;
	if (status)
		return husk_ttrpc_header_decode(r->hbuf, &frame->hdr, err);
	return 1;
}

/* Account for n bytes stored where reader_want() said. */
static int reader_advance(struct husk_ttrpc_reader *r, size_t n,
			  struct husk_ttrpc_frame *frame,
			  struct husk_error *err)
{
	int rc;

	r->have += n;
	if (!r->in_body) {
		if (r->have < HUSK_TTRPC_HEADER_SIZE)
			return 0;
		rc = husk_ttrpc_header_decode(r->hbuf, &r->hdr, NULL);
		if (rc == -EBADMSG) {
			/* No way to find the next frame boundary: stay broken. */
			r->hdr_status = rc;
			return husk_ttrpc_header_decode(r->hbuf, &frame->hdr, err);
		}
		r->hdr_status = rc;
		r->in_body = true;
		r->have = 0;
		if (!rc && r->hdr.length) {
			r->body = malloc(r->hdr.length);
			if (!r->body)
				return husk_error_set(err, ENOMEM,
						      "ttRPC: cannot allocate a %u byte frame",
						      r->hdr.length);
		}
	}
	if (r->have < r->hdr.length)
		return 0;
	return reader_finish(r, frame, err);
}

static bool reader_broken(const struct husk_ttrpc_reader *r)
{
	return !r->in_body && r->hdr_status == -EBADMSG;
}

int husk_ttrpc_reader_read(struct husk_ttrpc_reader *r, int fd,
			   struct husk_ttrpc_frame *frame,
			   struct husk_error *err)
{
	uint8_t scratch[4096];

	frame->data = NULL;
	if (reader_broken(r))
		return husk_error_set(err, EBADMSG, "ttRPC stream is out of sync after a bad header");
	for (;;) {
		uint8_t *dst;
		size_t want = reader_want(r, &dst);
		ssize_t n;
		int rc;

		if (!dst) {
			dst = scratch;
			if (want > sizeof(scratch))
				want = sizeof(scratch);
		}
		n = read(fd, dst, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return husk_error_seterrno(err, errno, "ttRPC: read failed");
		}
		if (n == 0)
			return husk_error_set(err, ECONNRESET, "ttRPC: peer closed the connection%s",
					      r->in_body || r->have ? " in the middle of a frame" : "");
		rc = reader_advance(r, n, frame, err);
		if (rc)
			return rc;
	}
}

int husk_ttrpc_reader_feed(struct husk_ttrpc_reader *r, const void *data,
			   size_t len, size_t *used,
			   struct husk_ttrpc_frame *frame,
			   struct husk_error *err)
{
	const uint8_t *src = data;

	*used = 0;
	frame->data = NULL;
	if (reader_broken(r))
		return husk_error_set(err, EBADMSG, "ttRPC stream is out of sync after a bad header");
	while (*used < len) {
		uint8_t *dst;
		size_t want = reader_want(r, &dst);
		int rc;

		if (want > len - *used)
			want = len - *used;
		if (dst)
			memcpy(dst, src + *used, want);
		*used += want;
		rc = reader_advance(r, want, frame, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- writer ---- */

static int wait_writable(int fd, int64_t deadline, struct husk_error *err)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int left = ttrpc_remaining_ms(deadline);
	int n;

	if (left == 0)
		return husk_error_set(err, ETIMEDOUT, "ttRPC: timed out writing a frame");
	n = poll(&pfd, 1, left);
	if (n < 0 && errno != EINTR)
		return husk_error_seterrno(err, errno, "ttRPC: poll failed");
	return 0;
}

int husk_ttrpc_write_frame(int fd, const struct husk_ttrpc_header *hdr,
			   const void *body, int timeout_ms,
			   struct husk_error *err)
{
	uint8_t hbuf[HUSK_TTRPC_HEADER_SIZE];
	struct iovec iov[2] = {
		{ .iov_base = hbuf, .iov_len = sizeof(hbuf) },
		{ .iov_base = (void *)body, .iov_len = hdr->length },
	};
	struct iovec *cur = iov;
	int left = hdr->length ? 2 : 1;
	int64_t deadline = timeout_ms >= 0 ? ttrpc_now_ms() + timeout_ms : 0;

	if (hdr->length > HUSK_TTRPC_MAX_FRAME)
		return husk_error_set(err, EMSGSIZE,
				      "ttRPC: a %u byte frame exceeds the %u byte limit",
				      hdr->length, HUSK_TTRPC_MAX_FRAME);
	husk_ttrpc_header_encode(hdr, hbuf);

	while (left) {
		ssize_t n = ttrpc_writev(fd, cur, left);

		if (n < 0) {
			int rc;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return husk_error_seterrno(err, errno, "ttRPC: write failed");
			rc = wait_writable(fd, deadline, err);
			if (rc < 0)
				return rc;
			continue;
		}
		while (left && (size_t)n >= cur->iov_len) {
			n -= cur->iov_len;
			cur++;
			left--;
		}
		if (left) {
			cur->iov_base = (uint8_t *)cur->iov_base + n;
			cur->iov_len -= n;
		}
	}
	return 0;
}
