// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "husk-common/fd-util.h"

static int output_all(int fd, const char *buf, size_t len, bool use_send)
{
	while (len) {
		ssize_t n = use_send ? send(fd, buf, len, MSG_NOSIGNAL) : write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int husk_write_all(int fd, const void *buf, size_t len)
{
	return output_all(fd, buf, len, false);
}

int husk_send_all(int fd, const void *buf, size_t len)
{
	return output_all(fd, buf, len, true);
}
