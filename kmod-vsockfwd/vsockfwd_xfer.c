// SPDX-License-Identifier: GPL-2.0
/*
 * vsockfwd data paths.  Both directions work on the pipe's ring directly
 * and never sleep waiting for data or space: the socket is driven with
 * MSG_DONTWAIT, and -EAGAIN sends the worker back to its wait queues.  The
 * socket copy runs without the pipe mutex, on pages the forwarder holds
 * references to, so the process at the pipe's other end is never stalled
 * behind it (see docs/vsockfwd.md).
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

/* Forget the first @len held bytes; fully used pages are put if @put. */
static void vsockfwd_held_advance(struct vsockfwd *fwd, size_t len, bool put)
{
	fwd->held_len -= len;
	while (len) {
		struct bio_vec *bv = &fwd->bvec[fwd->held_first];

		if (len < bv->bv_len) {
			bv->bv_offset += len;
			bv->bv_len -= len;
			return;
		}
		len -= bv->bv_len;
		if (put)
			put_page(bv->bv_page);
		fwd->held_first++;
		fwd->held_nr--;
	}
	if (!fwd->held_nr)
		fwd->held_first = 0;
}

static void vsockfwd_held_add(struct vsockfwd *fwd, struct page *page,
			      unsigned int len, unsigned int offset)
{
	bvec_set_page(&fwd->bvec[fwd->held_first + fwd->held_nr++], page, len,
		      offset);
	fwd->held_len += len;
}

/*
 * Take the queued pipe buffers off the ring as plain page references, so
 * the producer can refill the pipe while they are being sent.  Returns 0
 * with something held, -EAGAIN when the pipe is empty, 0 with @fwd->eof
 * set when it is empty for good, or a negative errno.
 */
static int vsockfwd_pipe_detach(struct vsockfwd *fwd)
{
	struct pipe_inode_info *pipe = fwd->pipe;
	unsigned int mask, tail;
	bool taken;
	int ret = 0;

	pipe_lock(pipe);
	mask = pipe->ring_size - 1;
	for (tail = pipe->tail; tail != pipe->head &&
	     fwd->held_nr < VSOCKFWD_MAX_SEGS; tail++) {
		struct pipe_buffer *buf = &pipe->bufs[tail & mask];

		ret = pipe_buf_confirm(pipe, buf);
		if (ret)
			break;
		if (buf->len) {
			if (!pipe_buf_get(pipe, buf)) {
				ret = -EOVERFLOW;
				break;
			}
			vsockfwd_held_add(fwd, buf->page, buf->len,
					  buf->offset);
		}
		pipe_buf_release(pipe, buf);
	}
	taken = tail != pipe->tail;
	pipe->tail = tail;
	/* An error behind held data shows up on the next call. */
	if (fwd->held_nr)
		ret = 0;
	else if (!ret && pipe->writers)
		ret = -EAGAIN;
	fwd->eof = !fwd->held_nr && !ret;
	pipe_unlock(pipe);
	if (taken)
		vsockfwd_wake_pipe_writers(pipe);
	return ret;
}

/*
 * pipe -> socket: the held pages go to the socket in one sendmsg, which for
 * vsock means one packet of up to 64 KiB and a single copy.
 */
static ssize_t vsockfwd_pipe_to_sock(struct vsockfwd *fwd)
{
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	ssize_t ret;

	if (!fwd->held_nr) {
		ret = vsockfwd_pipe_detach(fwd);
		if (ret || fwd->eof)
			return ret;
	}
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, &fwd->bvec[fwd->held_first],
		      fwd->held_nr, fwd->held_len);
	ret = sock_sendmsg(fwd->sock, &msg);
	if (ret > 0)
		vsockfwd_held_advance(fwd, ret, true);
	/* Nothing accepted and no error: wait for room, do not spin. */
	return ret ? ret : -EAGAIN;
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

/* Receive into spare pages, which become held; 0 with @fwd->eof at EOF. */
static ssize_t vsockfwd_sock_receive(struct vsockfwd *fwd)
{
	struct msghdr msg = {};
	size_t left;
	ssize_t ret;
	int i, pages;

	pages = vsockfwd_fill_spares(fwd, VSOCKFWD_MAX_SEGS);
	if (pages < 0)
		return pages;
	for (i = 0; i < pages; i++)
		bvec_set_page(&fwd->bvec[i], fwd->spare[i], PAGE_SIZE, 0);
	iov_iter_bvec(&msg.msg_iter, ITER_DEST, fwd->bvec, pages,
		      pages * PAGE_SIZE);
	ret = sock_recvmsg(fwd->sock, &msg, MSG_DONTWAIT);
	fwd->eof = !ret;
	if (ret <= 0)
		return ret;
	fwd->held_first = 0;
	for (i = 0, left = ret; left; i++) {
		unsigned int len = min_t(size_t, left, PAGE_SIZE);

		vsockfwd_held_add(fwd, fwd->spare[i], len, 0);
		fwd->spare[i] = NULL;
		left -= len;
	}
	return ret;
}

/*
 * Queue held pages to the pipe as far as it has room.  The buffers use the
 * core kernel's nosteal ops, never ours: a pipe may outlive the module.
 */
static ssize_t vsockfwd_pipe_publish(struct vsockfwd *fwd)
{
	struct pipe_inode_info *pipe = fwd->pipe;
	unsigned int mask, head;
	size_t moved = 0;

	pipe_lock(pipe);
	if (!pipe->readers) {
		pipe_unlock(pipe);
		return -EPIPE;
	}
	mask = pipe->ring_size - 1;
	head = pipe->head;
	while (fwd->held_nr && !pipe_full(head, pipe->tail, pipe->max_usage)) {
		struct bio_vec *bv = &fwd->bvec[fwd->held_first];

		pipe->bufs[head++ & mask] = (struct pipe_buffer) {
			.page = bv->bv_page,
			.offset = bv->bv_offset,
			.len = bv->bv_len,
			.ops = &nosteal_pipe_buf_ops,
		};
		moved += bv->bv_len;
		vsockfwd_held_advance(fwd, bv->bv_len, false);
	}
	pipe->head = head;
	pipe_unlock(pipe);
	if (!moved)
		return -EAGAIN;
	vsockfwd_wake_pipe_readers(pipe);
	return moved;
}

/*
 * socket -> pipe: receive straight into pages without the pipe mutex (the
 * reader keeps draining meanwhile), then queue them.
 */
static ssize_t vsockfwd_sock_to_pipe(struct vsockfwd *fwd)
{
	ssize_t ret;

	/* The reader left (the container exited): end now, not at input. */
	if (!READ_ONCE(fwd->pipe->readers))
		return -EPIPE;
	if (!fwd->held_nr) {
		ret = vsockfwd_sock_receive(fwd);
		if (ret <= 0)
			return ret;
	}
	return vsockfwd_pipe_publish(fwd);
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

/* Drop what the forwarder holds; it no longer runs. */
void vsockfwd_xfer_release(struct vsockfwd *fwd)
{
	unsigned int i;

	vsockfwd_held_advance(fwd, fwd->held_len, true);

	for (i = 0; i < VSOCKFWD_MAX_SEGS; i++) {
		if (fwd->spare[i])
			__free_page(fwd->spare[i]);
		fwd->spare[i] = NULL;
	}
}
