/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The user-space stdio relay: moves bytes from in_fd to out_fd on the
 * agent's loop until EOF or an error, never blocking it.  When one side
 * is a pipe the bytes go through splice(2) and never enter user space;
 * otherwise (a terminal's pty master) through a small buffer.
 *
 * It has the semantics of a vsockfwd.ko forwarder: with RELAY_SHUT_WR the
 * output socket's write side is shut at EOF; an output that goes away
 * (host reader closed, pipe reader exited) ends it with -EPIPE.  The fds
 * stay the caller's.
 */
#ifndef HUSK_AGENT_RELAY_H
#define HUSK_AGENT_RELAY_H

#include <stdint.h>

#include "loop.h"

#define RELAY_SHUT_WR 0x1u

struct relay;

/* Called once from the loop: error is 0 after EOF on in_fd, else -errno. */
typedef void (*relay_done_fn)(void *data, uint64_t bytes, int error);

int relay_start(struct agent_loop *loop, int in_fd, int out_fd, unsigned int flags,
		relay_done_fn done, void *data, struct relay **out, struct husk_error *err);

/* Stop (if still running, without calling done) and free; NULL is a no-op. */
void relay_free(struct relay *r);

#endif
