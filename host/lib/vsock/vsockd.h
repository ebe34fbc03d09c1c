/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * husk-vsockd's engine: a vhost-user-vsock device served on one unix
 * socket and the hybrid-vsock host side on another, driven by one
 * non-blocking epoll loop.  The caller polls vsockd_fd() (with
 * vsockd_timeout_ms()) and calls vsockd_dispatch(); nothing here prints,
 * exits or installs signal handlers.
 */
#ifndef HUSK_VSOCKD_H
#define HUSK_VSOCKD_H

#include <stdbool.h>
#include <stdint.h>

#include "husk-common/error.h"

struct vsockd;
struct vu_dev;

enum vsockd_log_level {
	VSOCKD_LOG_INFO,
	VSOCKD_LOG_DEBUG,
};

struct vsockd_config {
	const char *vhost_user_path;	/* QEMU connects here */
	const char *uds_path;		/* hybrid vsock base path */
	uint64_t guest_cid;
	/* Optional sink for one-line events; level DEBUG is chatty. */
	void (*log)(void *opaque, enum vsockd_log_level level, const char *msg);
	void *log_opaque;
	/* 0 selects the default. */
	unsigned max_conns;		/* 1023 */
	uint32_t buf_alloc;		/* per-connection guest->host buffer, 64 KiB */
	unsigned request_timeout_ms;	/* guest answer to a host REQUEST or SHUTDOWN, 2000 */
	unsigned line_timeout_ms;	/* CONNECT line from a host client, 5000 */
};

/* Create both listening sockets; fails if either path exists. */
int vsockd_new(const struct vsockd_config *cfg, struct vsockd **out,
	       struct husk_error *err);

/* Close everything and remove the sockets vsockd_new created. */
void vsockd_free(struct vsockd *d);

/* Readable when vsockd_dispatch() has work. */
int vsockd_fd(const struct vsockd *d);

/* Milliseconds until the next internal deadline, -1 for none. */
int vsockd_timeout_ms(const struct vsockd *d);

/*
 * Handle ready events, waiting up to timeout_ms (0: do not wait).
 * Returns the number of events handled, or -EPIPE once QEMU's vhost-user
 * connection has closed (the device is finished), or another -errno.
 */
int vsockd_dispatch(struct vsockd *d, int timeout_ms);

/* Introspection for tests and logs. */
bool vsockd_device_broken(const struct vsockd *d);
unsigned vsockd_conn_count(const struct vsockd *d);

#endif
