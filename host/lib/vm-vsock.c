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
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vm-internal.h"

#define HYBRID_LINE_MAX 64

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
	_cleanup_close_ int fd = unix_connect(husk_vm_vsock_path(vm), err);
	char cmd[32];
	int n, r;

	if (fd < 0)
		return fd;
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
	struct husk_vm_exit ex;

	husk_vm_process(vm, NULL);
	husk_vm_get_exit(vm, &ex);
	if (ex.exited || ex.vsockd_died)
		return husk_error_set(err, ENOTCONN, "VM %s: vsock port %u: %s",
				      husk_vm_name(vm), port,
				      ex.exited ? "QEMU has exited" : "husk-vsockd has exited");
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
	char path[4096];

	snprintf(path, sizeof(path), "%s_%u", husk_vm_vsock_path(vm), port);
	return unix_listen(path, 128, err);
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
