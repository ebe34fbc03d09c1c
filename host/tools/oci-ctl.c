// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Messages between husk commands and a container's monitor (SOCK_SEQPACKET,
 * fds as SCM_RIGHTS), and the console socket: a pty master sent the way
 * runc sends it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "oci.h"

#define CTL_MAX_FDS 4

/* Unix socket paths are short: reach long ones through the directory's fd. */
static int ctl_address(int dir_fd, const char *name, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", dir_fd,
		     name) >= (int)sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int oci_ctl_listen(int dir_fd)
{
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa;
	int r;

	if (fd < 0)
		return -errno;
	r = ctl_address(dir_fd, OCI_CTL_SOCKET, &sa);
	if (r < 0)
		return r;
	unlinkat(dir_fd, OCI_CTL_SOCKET, 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		return -errno;
	return TAKE_FD(fd);
}

int oci_ctl_connect(const char *root, const char *id)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int dir_fd = -1, fd = -1;
	struct sockaddr_un sa;
	int r;

	if (asprintf(&dir, "%s/%s", root, id) < 0)
		return -ENOMEM;
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return -errno;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = ctl_address(dir_fd, OCI_CTL_SOCKET, &sa);
	if (r < 0)
		return r;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return TAKE_FD(fd);
}

int oci_ctl_send(int fd, const void *msg, size_t len, const int *fds, size_t n_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n_fds > CTL_MAX_FDS)
		return -EINVAL;
	if (n_fds) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	while (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

void oci_ctl_send_stdio(int fd, const struct husk_stdio *stdio)
{
	int fds[3], n = 0;

	fds[n++] = stdio->stdin_fd;
	fds[n++] = stdio->stdout_fd;
	if (stdio->stderr_fd >= 0)
		fds[n++] = stdio->stderr_fd;
	(void)oci_ctl_send(fd, n == 3 ? "ok 3" : "ok 2", 4, fds, (size_t)n);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

ssize_t oci_ctl_recv(int fd, char *buf, size_t size, int *fds, size_t max_fds,
		     size_t *n_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = size - 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	ssize_t n;

	if (n_fds)
		*n_fds = 0;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t got, i;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < got; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (n_fds && *n_fds < max_fds)
				fds[(*n_fds)++] = f;
			else
				close(f);
		}
	}
	if (mh.msg_flags & MSG_TRUNC)
		return -EMSGSIZE;
	return n;
}

/* "err ERRNO MESSAGE" -> -ERRNO with the message reported; "ok ..." -> 0. */
static int ctl_reply_status(const char *reply)
{
	int code = 0, off = 0;

	if (!strncmp(reply, "ok", 2))
		return 0;
	if (sscanf(reply, "err %d %n", &code, &off) < 1 || code <= 0) {
		oci_error("monitor: unexpected reply '%s'", reply);
		return -EPROTO;
	}
	oci_error("%s", reply + off);
	return -code;
}

/*
 * Each way of not getting an answer says which it was (runc's "container
 * not running" leads, as tools match it): no monitor listening, a monitor
 * that hung up, or an answer longer than the caller's buffer.
 */
int oci_ctl_call_msg(const char *id, const void *request, size_t len, char *reply,
		     size_t size)
{
	_cleanup_close_ int fd = oci_ctl_connect(oci_globals.root, id);
	_cleanup_free_ char *answer = malloc(OCI_CTL_MSG_MAX);
	ssize_t n;
	int r;

	if (fd < 0) {
		/* The monitor went away between reading the state and now. */
		oci_error("container not running (no monitor answers: %s)", strerror(-fd));
		return fd;
	}
	if (!answer) {
		oci_error("out of memory");
		return -ENOMEM;
	}
	r = oci_ctl_send(fd, request, len, NULL, 0);
	if (r < 0) {
		oci_error("container %s: monitor: %s", id, strerror(-r));
		return r;
	}
	n = oci_ctl_recv(fd, answer, OCI_CTL_MSG_MAX, NULL, 0, NULL);
	if (n <= 0) {
		oci_error("container not running (its monitor hung up: %s)",
			  n < 0 ? strerror((int)-n) : "no answer");
		return n < 0 ? (int)n : -ESRCH;
	}
	r = ctl_reply_status(answer);
	if (r == 0 && (size_t)n >= size) {
		oci_error("container %s: monitor: an answer of %zd bytes", id, n);
		return -EMSGSIZE;
	}
	if (r == 0)
		memcpy(reply, answer, (size_t)n + 1);
	return r;
}

int oci_ctl_call(const char *id, const char *request, char *reply, size_t size)
{
	return oci_ctl_call_msg(id, request, strlen(request), reply, size);
}

void oci_ctl_reply_error(int conn, const struct husk_error *err, int r)
{
	char buf[HUSK_ERROR_MSG_MAX + 32];
	int code = r < 0 ? -r : EIO;

	snprintf(buf, sizeof(buf), "err %d %s", code, err && err->msg[0] ? err->msg :
		 strerror(code));
	(void)oci_ctl_send(conn, buf, strlen(buf), NULL, 0);
}

static int console_connect(const char *path)
{
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (fd < 0)
		return -errno;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return TAKE_FD(fd);
}

int oci_console_setup(const char *socket_path, int *slave_fd)
{
	_cleanup_close_ int master = -1, slave = -1, sock = -1;
	struct termios t;
	char name[64];
	int r;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, name, sizeof(name)) != 0)
		return -errno;
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return -errno;
	/* The guest's pty does the line discipline: ours only carries bytes. */
	if (tcgetattr(slave, &t) < 0)
		return -errno;
	cfmakeraw(&t);
	if (tcsetattr(slave, TCSANOW, &t) < 0)
		return -errno;
	sock = console_connect(socket_path);
	if (sock < 0)
		return sock;
	r = oci_ctl_send(sock, name, strlen(name), &master, 1);
	if (r < 0)
		return r;
	*slave_fd = TAKE_FD(slave);
	return 0;
}
