/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vsockfwd internals shared by the device code and the data paths.
 */
#ifndef _VSOCKFWD_H
#define _VSOCKFWD_H

#include <linux/bvec.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/net.h>
#include <linux/pipe_fs_i.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

/* Pipe buffers handed to one sendmsg, or pages filled by one recvmsg. */
#define VSOCKFWD_MAX_SEGS	16
/* Wait queues a forwarder sleeps on: one per file in practice. */
#define VSOCKFWD_MAX_WATCH	4

struct vsockfwd;

struct vsockfwd_watch {
	wait_queue_entry_t wait;
	wait_queue_head_t *head;
	struct vsockfwd *fwd;
	__poll_t events;
};

/**
 * struct vsockfwd - one forwarder, owned by its handle file
 * @lock: serializes the worker against cancellation
 * @work: moves bytes until the files would block; queued by wakeups
 * @in: file read from (reference held until the end)
 * @out: file written to (reference held until the end or handle close)
 * @pipe: the pipe end among @in and @out
 * @sock: the socket end among @in and @out
 * @to_sock: true for pipe -> socket, false for socket -> pipe
 * @flags: VSOCKFWD_F_*
 * @eof: the data path saw end of input
 * @cancelled: the handle is being closed
 * @done: forwarding ended; @bytes and @error are final (release/acquire)
 * @bytes: bytes moved so far
 * @error: 0 or -errno once @done
 * @done_wait: poll()/read() on the handle wait here
 * @watch: our entries on the files' wait queues
 * @nr_watch: used entries of @watch
 * @bvec: bytes the forwarder holds between the files, as page references:
 *	taken off the pipe and not yet sent, or received and not yet queued
 *	to the pipe; the live entries are [@held_first, @held_first + @held_nr)
 * @held_first: first live entry of @bvec
 * @held_nr: live entries of @bvec
 * @held_len: bytes in the live entries
 * @spare: empty pages to receive into (socket -> pipe)
 *
 * At most VSOCKFWD_MAX_SEGS pages are held and as many spared, so memory
 * per forwarder is bounded.
 */
struct vsockfwd {
	struct mutex lock;	/* worker vs. cancellation */
	struct work_struct work;
	struct file *in;
	struct file *out;
	struct pipe_inode_info *pipe;
	struct socket *sock;
	bool to_sock;
	u32 flags;
	bool eof;
	bool cancelled;
	bool done;
	u64 bytes;
	int error;
	wait_queue_head_t done_wait;
	struct vsockfwd_watch watch[VSOCKFWD_MAX_WATCH];
	unsigned int nr_watch;
	struct bio_vec bvec[VSOCKFWD_MAX_SEGS];
	unsigned int held_first;
	unsigned int held_nr;
	size_t held_len;
	struct page *spare[VSOCKFWD_MAX_SEGS];
};

struct pipe_inode_info *vsockfwd_pipe_of(struct file *file);
struct socket *vsockfwd_stream_sock_of(struct file *file);
ssize_t vsockfwd_xfer(struct vsockfwd *fwd);
void vsockfwd_xfer_release(struct vsockfwd *fwd);

#endif /* _VSOCKFWD_H */
