// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay.h"

/* Bytes moved per wakeup before the loop serves others. */
#define RELAY_BUDGET (4u << 20)
/* One splice(2) asks for this much; a pipe caps it at its contents or room. */
#define RELAY_SPLICE_LEN (1u << 20)
/* Copy mode (no pipe on either side): one terminal read. */
#define RELAY_BUF_SIZE (64u << 10)

struct relay {
	struct agent_loop *loop;
	int in_fd, out_fd;
	unsigned int flags;
	bool use_splice;
	struct loop_source *in_src, *out_src;
	uint8_t *buf;			/* copy mode */
	size_t buf_len, buf_off;
	uint64_t bytes;
	relay_done_fn done;
	void *data;
};

static bool fd_is_pipe(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

static void relay_stop(struct relay *r)
{
	loop_remove(r->loop, r->in_src);
	loop_remove(r->loop, r->out_src);
	r->in_src = r->out_src = NULL;
}

/* The last thing a relay does: done may free it. */
static void relay_finish(struct relay *r, int error)
{
	if (error == 0 && (r->flags & RELAY_SHUT_WR) && shutdown(r->out_fd, SHUT_WR) < 0 &&
	    errno != ENOTCONN)
		error = -errno;
	relay_stop(r);
	r->done(r->data, r->bytes, error);
}

/* Copy mode: a read drains into buf, writes empty it.  -EAGAIN: wait. */
static ssize_t relay_copy(struct relay *r)
{
	ssize_t n;

	if (r->buf_off == r->buf_len) {
		n = read(r->in_fd, r->buf, RELAY_BUF_SIZE);
		/* A pty master reads EIO once the last slave fd is gone: EOF. */
		if (n < 0 && errno == EIO)
			return 0;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		r->buf_off = 0;
		r->buf_len = (size_t)n;
	}
	n = write(r->out_fd, r->buf + r->buf_off, r->buf_len - r->buf_off);
	if (n < 0)
		return -errno;
	r->buf_off += (size_t)n;
	return n;
}

/* Bytes moved (> 0), 0 at EOF on in_fd, or -errno (-EAGAIN: wait). */
static ssize_t relay_move(struct relay *r)
{
	ssize_t n;

	if (!r->use_splice)
		return relay_copy(r);
	n = splice(r->in_fd, NULL, r->out_fd, NULL, RELAY_SPLICE_LEN,
		   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	return n < 0 ? -errno : n;
}

static void on_relay_in(struct agent_loop *loop, struct loop_source *src, uint32_t events,
			void *data);

/*
 * Watch the input (want_out false) or the output.  A hung-up input is
 * reported by epoll whatever its mask, so it leaves the loop while the
 * output is full.  The output is always watched, at least with an empty
 * mask, so that its hang-up or error ends the relay.
 */
static int relay_watch(struct relay *r, bool want_out)
{
	int ret = loop_modify(r->loop, r->out_src, want_out ? EPOLLOUT : 0);

	if (ret < 0)
		return ret;
	if (want_out) {
		loop_remove(r->loop, r->in_src);
		r->in_src = NULL;
		return 0;
	}
	if (r->in_src)
		return 0;
	return loop_add(r->loop, r->in_fd, EPOLLIN, on_relay_in, r, &r->in_src, NULL);
}

/* After EAGAIN: the input when it has nothing, else the output blocked. */
static int relay_wait(struct relay *r)
{
	bool want_out;

	if (r->use_splice) {
		struct pollfd p = { .fd = r->in_fd, .events = POLLIN };

		want_out = poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP | POLLERR));
	} else {
		want_out = r->buf_off < r->buf_len;
	}
	return relay_watch(r, want_out);
}

static void relay_pump(struct relay *r)
{
	uint64_t moved = 0;
	ssize_t n;

	while (moved < RELAY_BUDGET) {
		n = relay_move(r);

		if (n > 0) {
			r->bytes += (uint64_t)n;
			moved += (uint64_t)n;
		} else if (n == 0) {
			relay_finish(r, 0);
			return;
		} else if (n == -EAGAIN) {
			n = relay_wait(r);
			if (n < 0)
				relay_finish(r, (int)n);
			return;
		} else if (n != -EINTR) {
			relay_finish(r, (int)n);
			return;
		}
	}
	/* Budget spent: level-triggered epoll brings us back with the rest. */
	n = relay_watch(r, false);
	if (n < 0)
		relay_finish(r, (int)n);
}

static void on_relay_in(struct agent_loop *loop, struct loop_source *src, uint32_t events,
			void *data)
{
	relay_pump(data);
}

static void on_relay_out(struct agent_loop *loop, struct loop_source *src, uint32_t events,
			 void *data)
{
	struct relay *r = data;

	/* Nobody reads the output any more: a pipe's writer would get EPIPE. */
	if (events & (EPOLLERR | EPOLLHUP)) {
		relay_finish(r, -EPIPE);
		return;
	}
	relay_pump(r);
}

int relay_start(struct agent_loop *loop, int in_fd, int out_fd, unsigned int flags,
		relay_done_fn done, void *data, struct relay **out, struct husk_error *err)
{
	struct relay *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return husk_error_set(err, ENOMEM, "relay: out of memory");
	r->loop = loop;
	r->in_fd = in_fd;
	r->out_fd = out_fd;
	r->flags = flags;
	r->done = done;
	r->data = data;
	r->use_splice = fd_is_pipe(in_fd) || fd_is_pipe(out_fd);
	if (!r->use_splice) {
		r->buf = malloc(RELAY_BUF_SIZE);
		if (!r->buf) {
			ret = husk_error_set(err, ENOMEM, "relay: out of memory");
			goto fail;
		}
	}
	ret = loop_add(loop, in_fd, EPOLLIN, on_relay_in, r, &r->in_src, err);
	if (ret < 0)
		goto fail;
	ret = loop_add(loop, out_fd, 0, on_relay_out, r, &r->out_src, err);
	if (ret < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	relay_free(r);
	return ret;
}

void relay_free(struct relay *r)
{
	if (!r)
		return;
	relay_stop(r);
	free(r->buf);
	free(r);
}
