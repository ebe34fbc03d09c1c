/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the ttRPC frame, server and client code (not installed). */
#ifndef HUSK_TTRPC_INTERNAL_H
#define HUSK_TTRPC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <protobuf-c/protobuf-c.h>

#include "husk-common/error.h"

/* Monotonic clock in milliseconds. */
int64_t ttrpc_now_ms(void);

/* Deadline timeout_ms from now; 0 for "no deadline" when timeout_ms <= 0. */
int64_t ttrpc_deadline_ms(int timeout_ms);

/* poll() timeout left until deadline: -1 without one, 0 once passed. */
int ttrpc_remaining_ms(int64_t deadline);

/*
 * writev() that never raises SIGPIPE on sockets (a vanished peer must be an
 * error, not a dead process); plain fds fall back to writev().
 */
ssize_t ttrpc_writev(int fd, const struct iovec *iov, int iovcnt);

/* Pack msg into a fresh malloc'd buffer (NULL for an empty message). */
int ttrpc_pack(const ProtobufCMessage *msg, uint8_t **ret, size_t *ret_len,
	       struct husk_error *err);

#endif
