/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The stdio channel (vsock port 1027): one connection per stream of a
 * container process.  After the handshake (stdio-handshake.h) the socket
 * and the process's pipe go to a forwarder: vsockfwd.ko when /dev/vsockfwd
 * exists and husk.stdio=kernel (the default), else the agent's relay
 * (relay.h).  Both shut the socket's write side at an output's EOF and
 * close the pipe at stdin's EOF.  docs/stdio.md has the protocol.
 */
#ifndef HUSK_AGENT_STDIO_CHANNEL_H
#define HUSK_AGENT_STDIO_CHANNEL_H

#include "agent.h"

struct stdio_forward;

/* Listen on cfg.stdio_listen (nothing when NONE) and pick the forwarder. */
int agent_stdio_start(struct agent *agent, struct husk_error *err);
/* Cancel every forwarder, close every connection. */
void agent_stdio_stop(struct agent *agent);

/* The process is forgotten: fwd keeps forwarding but reports to nobody. */
void stdio_forward_detach(struct stdio_forward *fwd);

#endif
