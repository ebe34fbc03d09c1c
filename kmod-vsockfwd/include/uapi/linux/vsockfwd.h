/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vsockfwd: forward bytes between a pipe and a stream socket in the kernel.
 *
 *	dev = open("/dev/vsockfwd", O_RDWR | O_CLOEXEC);
 *	h = ioctl(dev, VSOCKFWD_SPLICE, &(struct vsockfwd_splice){ ... });
 *	poll(h) -> POLLIN once forwarding ended
 *	read(h, &(struct vsockfwd_result){}, sizeof(struct vsockfwd_result))
 *
 * The handle is close-on-exec.  Closing it before forwarding ended cancels
 * the forwarder; the module keeps its own references to in_fd and out_fd,
 * so the caller may close those right after the ioctl.
 */
#ifndef _UAPI_LINUX_VSOCKFWD_H
#define _UAPI_LINUX_VSOCKFWD_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* At EOF on in_fd, shutdown(SHUT_WR) the output socket. */
#define VSOCKFWD_F_SHUT_WR	0x1U
/*
 * At EOF on in_fd, drop the module's reference to out_fd before the handle
 * becomes readable (a pipe's reader then sees EOF once the caller's own
 * write ends are closed).  Without it the reference lives until the handle
 * is closed.
 */
#define VSOCKFWD_F_CLOSE_OUT	0x2U
#define VSOCKFWD_F_ALL		(VSOCKFWD_F_SHUT_WR | VSOCKFWD_F_CLOSE_OUT)

/**
 * struct vsockfwd_splice - VSOCKFWD_SPLICE argument
 * @size: sizeof(struct vsockfwd_splice) as the caller knows it; later
 *	versions append fields, older callers pass a smaller size
 * @flags: VSOCKFWD_F_*
 * @in_fd: pipe read end or connected stream socket to read from
 * @out_fd: stream socket or pipe write end to write to; one of the two
 *	must be a pipe and the other a socket
 * @reserved: must be zero
 */
struct vsockfwd_splice {
	__u32 size;
	__u32 flags;
	__s32 in_fd;
	__s32 out_fd;
	__u64 reserved[2];
};

#define VSOCKFWD_SPLICE_SIZE_VER0	32

/**
 * struct vsockfwd_result - what read() on a finished handle returns
 * @bytes: bytes moved from in_fd to out_fd
 * @error: 0 after EOF on in_fd, else a negative errno (-ECANCELED never
 *	shows here: a cancelled handle is gone)
 * @reserved: zero
 */
struct vsockfwd_result {
	__u64 bytes;
	__s32 error;
	__u32 reserved;
};

#define VSOCKFWD_IOC_MAGIC	0xB8
/*
 * Returns a new handle fd (O_CLOEXEC) or -1 with errno set.  The module
 * ignores the command's size bits and reads struct vsockfwd_splice.size.
 */
#define VSOCKFWD_SPLICE		_IOW(VSOCKFWD_IOC_MAGIC, 1, struct vsockfwd_splice)

#endif /* _UAPI_LINUX_VSOCKFWD_H */
