/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef HUSK_COMMON_FD_UTIL_H
#define HUSK_COMMON_FD_UTIL_H

#include <stddef.h>

/* Write all of buf to a blocking fd, retrying on EINTR; 0 or -errno. */
int husk_write_all(int fd, const void *buf, size_t len);

/* The same with send(MSG_NOSIGNAL): a closed peer is -EPIPE, not SIGPIPE. */
int husk_send_all(int fd, const void *buf, size_t len);

#endif
