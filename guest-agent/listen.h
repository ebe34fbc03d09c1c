/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The agent's listening socket: AF_UNIX for host tests, AF_VSOCK in the guest. */
#ifndef HUSK_AGENT_LISTEN_H
#define HUSK_AGENT_LISTEN_H

#include <husk-common/error.h>

#include "config.h"

/* Returns a non-blocking, close-on-exec listening fd or -errno. */
int agent_listen_open(const struct agent_endpoint *ep, struct husk_error *err);

/* Accept one connection as a non-blocking, close-on-exec fd; -EAGAIN when none. */
int agent_listen_accept(int lfd);

#endif
