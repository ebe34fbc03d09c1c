// SPDX-License-Identifier: GPL-2.0
/*
 * vsockfwd data paths.  Both directions work on the pipe's ring directly
 * and never sleep waiting for data or space: the socket is driven with
 * MSG_DONTWAIT under the pipe mutex, and -EAGAIN sends the worker back to
 * its wait queues.  Blocking for socket credit under the pipe mutex would
 * stall the pipe's other user (see docs/vsockfwd.md).
 */
#include <linux/fs.h>
#include <linux/fcntl.h>
#include <linux/gfp.h>
#include <linux/minmax.h>
#include <linux/pipe_fs_i.h>
#include <linux/poll.h>
#include <linux/socket.h>
#include <linux/uio.h>

#include "vsockfwd.h"

/*
 * get_pipe_info() is not exported: a pipe or FIFO file is the one whose
 * private data is its inode's pipe.  Watch-queue pipes carry
 * notifications, not a byte stream.
 */
struct pipe_inode_info *vsockfwd_pipe_of(struct file *file)
{
	struct inode *inode = file_inode(file);
	struct pipe_inode_info *pipe = file->private_data;

	if (!S_ISFIFO(inode->i_mode) || !pipe || pipe != inode->i_pipe)
		return NULL;
	if (pipe_has_watch_queue(pipe))
		return NULL;
	return pipe;
}

struct socket *vsockfwd_stream_sock_of(struct file *file)
{
	struct socket *sock = sock_from_file(file);

	if (!sock || sock->type != SOCK_STREAM)
		return NULL;
	return sock;
}

static void vsockfwd_wake_pipe_writers(struct pipe_inode_info *pipe)
{
	wake_up_interruptible_sync_poll(&pipe->wr_wait, EPOLLOUT | EPOLLWRNORM);
	kill_fasync(&pipe->fasync_writers, SIGIO, POLL_OUT);
}

static void vsockfwd_wake_pipe_readers(struct pipe_inode_info *pipe)
{
	wake_up_interruptible_sync_poll(&pipe->rd_wait, EPOLLIN | EPOLLRDNORM);
	kill_fasync(&pipe->fasync_readers, SIGIO, POLL_IN);
}

/* Drop @sent bytes from the tail of the ring; the caller holds the mutex. */
static bool vsockfwd_pipe_consume(struct pipe_inode_info *pipe, size_t sent)
{
	unsigned int mask = pipe->ring_size - 1;
	unsigned int tail = pipe->tail;
	bool released = false;

	while (tail != pipe->head) {
		struct pipe_buffer *buf = &pipe->bufs[tail & mask];

		if (sent < buf->len) {
			buf->offset += sent;
			buf->len -= sent;
			break;
		}
		sent -= buf->len;
		pipe_buf_release(pipe, buf);
		tail++;
		released = true;
	}
	pipe->tail = tail;
	return released;
}

/*
 * pipe -> socket: the queued pipe pages go to the socket in one sendmsg,
 * which for vsock means one packet of up to 64 KiB and a single copy.
 */
static ssize_t vsockfwd_pipe_to_sock(struct vsockfwd *fwd)
{
	struct pipe_inode_info *pipe = fwd->pipe;
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	unsigned int mask, tail, nr = 0;
	bool released;
	size_t len = 0;
	ssize_t ret = 0;

	pipe_lock(pipe);
	mask = pipe->ring_size - 1;
	for (tail = pipe->tail; tail != pipe->head && nr < VSOCKFWD_MAX_SEGS;
	     tail++) {
		struct pipe_buffer *buf = &pipe->bufs[tail & mask];

		ret = pipe_buf_confirm(pipe, buf);
		if (ret)
			break;
		bvec_set_page(&fwd->bvec[nr++], buf->page, buf->len,
			      buf->offset);
		len += buf->len;
	}
	if (!nr) {
		if (!ret && pipe->writers)
			ret = -EAGAIN;
		fwd->eof = !ret;
		goto unlock;
	}
	ret = 0;
	if (len) {
		iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, fwd->bvec, nr, len);
		ret = sock_sendmsg(fwd->sock, &msg);
		if (ret < 0)
			goto unlock;
	}
	released = vsockfwd_pipe_consume(pipe, ret);
	pipe_unlock(pipe);
	if (released)
		vsockfwd_wake_pipe_writers(pipe);
	return ret;

unlock:
	pipe_unlock(pipe);
	return ret;
}

/* Returns how many of the first @nr spare pages are allocated, or -ENOMEM. */
static int vsockfwd_fill_spares(struct vsockfwd *fwd, unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		if (fwd->spare[i])
			continue;
		fwd->spare[i] = alloc_page(GFP_KERNEL);
		if (!fwd->spare[i])
			return i ? i : -ENOMEM;
	}
	return nr;
}

/*
 * Hand the first pages of @fwd->spare holding @len bytes to the pipe.  The
 * buffers use the core kernel's nosteal ops, never ours: a pipe may outlive
 * the module.
 */
static void vsockfwd_pipe_publish(struct vsockfwd *fwd, size_t len)
{
	struct pipe_inode_info *pipe = fwd->pipe;
	unsigned int mask = pipe->ring_size - 1;
	unsigned int head = pipe->head;
	unsigned int i;

	for (i = 0; len; i++) {
		struct pipe_buffer *buf = &pipe->bufs[head++ & mask];
		size_t chunk = min_t(size_t, len, PAGE_SIZE);

		*buf = (struct pipe_buffer) {
			.page = fwd->spare[i],
			.len = chunk,
			.ops = &nosteal_pipe_buf_ops,
		};
		fwd->spare[i] = NULL;
		len -= chunk;
	}
	pipe->head = head;
}

/* socket -> pipe: receive straight into fresh pages, then queue them. */
static ssize_t vsockfwd_sock_to_pipe(struct vsockfwd *fwd)
{
	struct pipe_inode_info *pipe = fwd->pipe;
	struct msghdr msg = {};
	unsigned int i, nr;
	ssize_t ret;
	int pages;

	pipe_lock(pipe);
	if (!pipe->readers) {
		ret = -EPIPE;
		goto unlock;
	}
	if (pipe_full(pipe->head, pipe->tail, pipe->max_usage)) {
		ret = -EAGAIN;
		goto unlock;
	}
	nr = pipe->max_usage - pipe_occupancy(pipe->head, pipe->tail);
	pages = vsockfwd_fill_spares(fwd, min_t(unsigned int, nr,
						VSOCKFWD_MAX_SEGS));
	if (pages < 0) {
		ret = pages;
		goto unlock;
	}
	for (i = 0; i < pages; i++)
		bvec_set_page(&fwd->bvec[i], fwd->spare[i], PAGE_SIZE, 0);
	iov_iter_bvec(&msg.msg_iter, ITER_DEST, fwd->bvec, pages,
		      pages * PAGE_SIZE);
	ret = sock_recvmsg(fwd->sock, &msg, MSG_DONTWAIT);
	if (ret > 0)
		vsockfwd_pipe_publish(fwd, ret);
	fwd->eof = !ret;
	pipe_unlock(pipe);
	if (ret > 0)
		vsockfwd_wake_pipe_readers(pipe);
	return ret;

unlock:
	pipe_unlock(pipe);
	return ret;
}

/**
 * vsockfwd_xfer - move what can be moved without blocking
 * @fwd: the forwarder; the caller holds @fwd->lock
 *
 * Return: bytes moved (0 with @fwd->eof set at end of input), -EAGAIN when
 * the input is empty or the output full, or another negative errno.
 */
ssize_t vsockfwd_xfer(struct vsockfwd *fwd)
{
	if (fwd->to_sock)
		return vsockfwd_pipe_to_sock(fwd);
	return vsockfwd_sock_to_pipe(fwd);
}

void vsockfwd_xfer_release(struct vsockfwd *fwd)
{
	unsigned int i;

	for (i = 0; i < VSOCKFWD_MAX_SEGS; i++) {
		if (fwd->spare[i])
			__free_page(fwd->spare[i]);
		fwd->spare[i] = NULL;
	}
}
