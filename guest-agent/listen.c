// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include <husk-common/cleanup.h>

#include "listen.h"

#define LISTEN_BACKLOG 16

static int listen_unix(const char *path, struct husk_error *err)
{
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (fd < 0)
		return husk_error_seterrno(err, errno, "listen %s: socket", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* Only a stale socket is replaced, never some other file. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return husk_error_seterrno(err, errno, "listen %s: bind", path);
	if (listen(fd, LISTEN_BACKLOG) < 0)
		return husk_error_seterrno(err, errno, "listen %s", path);
	return TAKE_FD(fd);
}

static int listen_vsock(unsigned int port, struct husk_error *err)
{
	_cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_ANY,
		.svm_port = port,
	};

	if (fd < 0)
		return husk_error_seterrno(err, errno, "listen vsock:%u: socket", port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return husk_error_seterrno(err, errno, "listen vsock:%u: bind", port);
	if (listen(fd, LISTEN_BACKLOG) < 0)
		return husk_error_seterrno(err, errno, "listen vsock:%u", port);
	return TAKE_FD(fd);
}

int agent_listen_open(const struct agent_endpoint *ep, struct husk_error *err)
{
	switch (ep->kind) {
	case AGENT_LISTEN_UNIX:
		return listen_unix(ep->unix_path, err);
	case AGENT_LISTEN_VSOCK:
		return listen_vsock(ep->vsock_port, err);
	default:
		return husk_error_set(err, EINVAL, "no endpoint to listen on");
	}
}

int agent_listen_accept(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	return fd < 0 ? -errno : fd;
}
