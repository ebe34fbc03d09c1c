// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A monitor's stdio relay: its own stdin to the process, the process's
 * stdout/stderr to its own.  Writes block: the reader is containerd's shim
 * (or a terminal), which keeps up.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "oci.h"

#define RELAY_CHUNK 65536

void oci_relay_init(struct oci_relay *r, const struct oci_stdio *io,
		    const struct husk_stdio *proc)
{
	r->from[0] = proc->stdin_fd >= 0 ? io->in : -1;
	r->to[0] = proc->stdin_fd;
	r->from[1] = proc->stdout_fd;
	r->to[1] = io->out;
	r->from[2] = proc->stderr_fd;
	r->to[2] = io->err;
	for (int i = 0; i < 3; i++)
		r->broken[i] = false;
}

void oci_relay_pollfds(const struct oci_relay *r, struct pollfd *pfd)
{
	for (int i = 0; i < 3; i++) {
		pfd[i].fd = r->from[i];
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
}

static bool write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

static void stream_end(struct oci_relay *r, int i)
{
	close(r->from[i]);
	r->from[i] = -1;
	/* The process's stdin ends with ours: closing it is its EOF. */
	if (i == 0 && r->to[0] >= 0) {
		close(r->to[0]);
		r->to[0] = -1;
	}
}

void oci_relay_handle(struct oci_relay *r, const struct pollfd *pfd)
{
	char buf[RELAY_CHUNK];

	for (int i = 0; i < 3; i++) {
		ssize_t n;

		if (!pfd[i].revents || r->from[i] < 0)
			continue;
		n = read(r->from[i], buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		/* EIO: a pty whose other side closed, which is its EOF. */
		if (n <= 0) {
			stream_end(r, i);
			continue;
		}
		if (!r->broken[i] && r->to[i] >= 0 && !write_all(r->to[i], buf, (size_t)n)) {
			r->broken[i] = true;
			if (i == 0)
				stream_end(r, 0);
		}
	}
}

bool oci_relay_output_open(const struct oci_relay *r)
{
	return r->from[1] >= 0 || r->from[2] >= 0;
}

void oci_relay_close(struct oci_relay *r)
{
	for (int i = 0; i < 3; i++)
		if (r->from[i] >= 0) {
			close(r->from[i]);
			r->from[i] = -1;
		}
	if (r->to[0] >= 0) {
		close(r->to[0]);
		r->to[0] = -1;
	}
}

int oci_monitor_signalfd(void)
{
	sigset_t mask;

	sigfillset(&mask);
	sigdelset(&mask, SIGCHLD);
	sigdelset(&mask, SIGPIPE);
	sigdelset(&mask, SIGKILL);
	sigdelset(&mask, SIGSTOP);
	/* Faults must stay fatal rather than queue up in a signalfd. */
	sigdelset(&mask, SIGSEGV);
	sigdelset(&mask, SIGBUS);
	sigdelset(&mask, SIGILL);
	sigdelset(&mask, SIGFPE);
	sigdelset(&mask, SIGABRT);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}
