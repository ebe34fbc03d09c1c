/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host end of the stdio channel (guest vsock port 1027, docs/stdio.md):
 * one connection per stream of a container process, opened with a
 * one-line handshake.  After "OK" the connection carries the stream's
 * bytes: the guest's stdout/stderr until EOF, or stdin until the host shuts
 * its write side.
 */
#ifndef HUSK_LIB_STDIO_CHANNEL_H
#define HUSK_LIB_STDIO_CHANNEL_H

#include <stdbool.h>

#include "husk-common/error.h"
#include "husk/husk.h"

#define STDIO_CHANNEL_PORT 1027

enum stdio_channel_stream {
	STDIO_CHANNEL_STDIN,
	STDIO_CHANNEL_STDOUT,
	STDIO_CHANNEL_STDERR,
};

/* How libhusk carries stdio: HUSK_STDIO=rpc|relay in the environment, else CHANNEL. */
enum stdio_channel_mode {
	STDIO_MODE_CHANNEL,		/* the agent's choice of forwarder */
	STDIO_MODE_CHANNEL_RELAY,	/* the channel, asking for the user-space relay */
	STDIO_MODE_RPC,			/* ReadStdout/ReadStderr/WriteStdin */
};

enum stdio_channel_mode stdio_channel_mode_from_env(void);

/*
 * Connect and attach to one stream (relay: ask for the user-space relay).  Returns a connected, blocking,
 * O_CLOEXEC fd, or -errno: what husk_vm_vsock_connect() returns when the
 * port is closed (-ECONNREFUSED: an agent without the channel), else the
 * agent's refusal as -EINVAL (invalid), -ENOENT (not-found), -EBUSY (busy),
 * -ENODEV (no-stream) or -EPROTO, with its text in err.
 */
int stdio_channel_attach(struct husk_vm *vm, const char *container_id, const char *exec_id,
			 enum stdio_channel_stream stream, bool relay, int timeout_ms,
			 struct husk_error *err);

#endif
