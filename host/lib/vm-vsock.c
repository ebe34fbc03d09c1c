// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Host ends of a VM's vsock: one API over both transports.  Hybrid vsock
 * (husk-vsockd): "CONNECT <port>\n" on the VM's unix socket, answered
 * "OK <hostport>\n"; guest connections to host port P arrive on the unix
 * socket "<path>_P".  Kernel vhost-vsock: plain AF_VSOCK.
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vm-internal.h"

#define HYBRID_LINE_MAX 64

static int unix_socket_at(const char *path, struct sockaddr_un *sa,
			  struct husk_error *err)
{
	int fd;

	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa->sun_path))
		return husk_error_set(err, ENAMETOOLONG,
				      "socket path %s is too long for AF_UNIX", path);
	strcpy(sa->sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "socket");
	return fd;
}

/* Read the backend's answer one byte at a time: the stream follows it. */
static int hybrid_read_reply(int fd, uint32_t port, int64_t deadline,
			     struct husk_error *err)
{
	char line[HYBRID_LINE_MAX];
	size_t len = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, deadline_remaining_ms(deadline));
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return husk_error_seterrno(err, errno, "vsock port %u: poll", port);
		if (r == 0)
			return husk_error_set(err, ETIMEDOUT,
					      "vsock port %u: no answer from the guest in time", port);
		n = read(fd, line + len, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != ECONNRESET)
			return husk_error_seterrno(err, errno, "vsock port %u: read", port);
		if (n <= 0)
			return husk_error_set(err, ECONNREFUSED,
					      "vsock port %u: refused (nothing listens in the guest)",
					      port);
		if (line[len] == '\n')
			break;
		if (++len == sizeof(line))
			return husk_error_set(err, EPROTO,
					      "vsock port %u: answer line too long", port);
	}
	line[len] = '\0';
	if (strncmp(line, "OK ", 3) != 0)
		return husk_error_set(err, EPROTO, "vsock port %u: unexpected answer '%s'",
				      port, line);
	return 0;
}

static int hybrid_connect(struct husk_vm *vm, uint32_t port, int timeout_ms,
			  struct husk_error *err)
{
	int64_t deadline = deadline_after_ms(timeout_ms);
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sa;
	char cmd[32];
	int n, r;

	fd = unix_socket_at(husk_vm_vsock_path(vm), &sa, err);
	if (fd < 0)
		return fd;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return husk_error_seterrno(err, errno, "connect %s", sa.sun_path);
	n = snprintf(cmd, sizeof(cmd), "CONNECT %u\n", port);
	if (send(fd, cmd, n, MSG_NOSIGNAL) != n)
		return husk_error_seterrno(err, errno, "vsock port %u: send", port);
	r = hybrid_read_reply(fd, port, deadline, err);
	if (r < 0)
		return r;
	return TAKE_FD(fd);
}

static int kernel_vsock_connect(struct husk_vm *vm, uint32_t port, int timeout_ms,
				struct husk_error *err)
{
	_cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = husk_vm_guest_cid(vm),
		.svm_port = port,
	};

	if (fd < 0)
		return husk_error_seterrno(err, errno, "AF_VSOCK socket");
	if (timeout_ms >= 0) {
		struct timeval tv = { .tv_sec = timeout_ms / 1000,
				      .tv_usec = (timeout_ms % 1000) * 1000 };

		setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW, &tv, sizeof(tv));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return husk_error_seterrno(err, errno, "vsock %u:%u: connect",
					   sa.svm_cid, port);
	return TAKE_FD(fd);
}

HUSK_EXPORT int husk_vm_vsock_connect(struct husk_vm *vm, uint32_t port,
				      int timeout_ms, struct husk_error *err)
{
	switch (vm_vsock_mode(vm)) {
	case HUSK_VM_VSOCK_VHOST_USER:
		return hybrid_connect(vm, port, timeout_ms, err);
	case HUSK_VM_VSOCK_KERNEL:
		return kernel_vsock_connect(vm, port, timeout_ms, err);
	default:
		return husk_error_set(err, ENOTCONN, "VM %s has no vsock device",
				      husk_vm_name(vm));
	}
}

static int hybrid_listen(struct husk_vm *vm, uint32_t port, struct husk_error *err)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sa;
	char path[sizeof(sa.sun_path) + 16];

	snprintf(path, sizeof(path), "%s_%u", husk_vm_vsock_path(vm), port);
	fd = unix_socket_at(path, &sa, err);
	if (fd < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return husk_error_seterrno(err, errno, "bind %s", path);
	if (listen(fd, 128) < 0)
		return husk_error_seterrno(err, errno, "listen %s", path);
	return TAKE_FD(fd);
}

static int kernel_vsock_listen(uint32_t port, struct husk_error *err)
{
	_cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_ANY,
		.svm_port = port,
	};

	if (fd < 0)
		return husk_error_seterrno(err, errno, "AF_VSOCK socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return husk_error_seterrno(err, errno, "bind vsock port %u", port);
	if (listen(fd, 128) < 0)
		return husk_error_seterrno(err, errno, "listen vsock port %u", port);
	return TAKE_FD(fd);
}

HUSK_EXPORT int husk_vm_vsock_listen(struct husk_vm *vm, uint32_t port,
				     struct husk_error *err)
{
	switch (vm_vsock_mode(vm)) {
	case HUSK_VM_VSOCK_VHOST_USER:
		return hybrid_listen(vm, port, err);
	case HUSK_VM_VSOCK_KERNEL:
		return kernel_vsock_listen(port, err);
	default:
		return husk_error_set(err, ENOTCONN, "VM %s has no vsock device",
				      husk_vm_name(vm));
	}
}
