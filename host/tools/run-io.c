// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk run: the stdio relay loop, signal forwarding and the terminal. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "husk-common/fd-util.h"

#include "run.h"

#define IO_CHUNK 65536
#define CONSOLE_POLL_MS 100

static struct termios saved_termios;
static bool termios_saved;

int64_t run_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void run_tty_raw(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
		return;
	termios_saved = true;
	t = saved_termios;
	cfmakeraw(&t);
	tcsetattr(STDIN_FILENO, TCSANOW, &t);
}

void run_tty_restore(void)
{
	if (termios_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
	termios_saved = false;
}

bool run_tty_size(unsigned short *rows, unsigned short *cols)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0)
		return false;
	if (!ws.ws_row || !ws.ws_col)
		return false;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return true;
}

/*
 * Move one chunk from *from to to.  At EOF *from is closed and set to -1;
 * a destination that went away (EPIPE) only stops the copying.
 */
static void relay_chunk(int *from, int to, bool *to_broken)
{
	char buf[IO_CHUNK];
	ssize_t n = read(*from, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(*from);
		*from = -1;
		return;
	}
	if (!*to_broken && husk_write_all(to, buf, n) < 0)
		*to_broken = true;
}

void run_io_console_follow(struct run_io *io)
{
	char buf[IO_CHUNK];
	ssize_t n;

	if (io->console_fd < 0)
		return;
	while ((n = read(io->console_fd, buf, sizeof(buf))) > 0)
		(void)husk_write_all(STDERR_FILENO, buf, n);
}

bool run_report_vm_exit(struct husk_sandbox *sb)
{
	struct husk_vm *vm = husk_sandbox_vm(sb);
	struct husk_vm_exit ex;

	/* A lost agent connection usually means QEMU is dying: give it a moment. */
	(void)husk_vm_wait(vm, 1000, NULL);
	husk_vm_get_exit(vm, &ex);
	if (!ex.exited)
		return false;
	if (ex.signal)
		fprintf(stderr, "husk run: the VM died: QEMU was killed by signal %d (%s)\n",
			ex.signal, strsignal(ex.signal));
	else if (ex.guest_panicked)
		fprintf(stderr, "husk run: the VM died: the guest kernel panicked\n");
	else
		fprintf(stderr, "husk run: the VM died: QEMU exited with code %d%s%s\n",
			ex.exit_code, ex.shutdown_reason[0] ? ", " : "", ex.shutdown_reason);
	return true;
}

static void forward_signal(struct run_io *io)
{
	struct signalfd_siginfo si;
	struct husk_error err = { 0 };
	unsigned short rows, cols;

	if (read(io->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGWINCH) {
		if (io->tty && run_tty_size(&rows, &cols))
			(void)husk_process_resize(io->proc, rows, cols, NULL);
		return;
	}
	/* The process may be gone already: nothing to report then. */
	if (husk_process_signal(io->proc, (int)si.ssi_signo, &err) < 0 && err.code != ENOENT)
		fprintf(stderr, "husk run: forwarding signal %u: %s\n", si.ssi_signo, err.msg);
}

enum { P_OUT, P_ERR, P_IN, P_SIG, P_VM, P_EXIT, P_COUNT };

static int exit_known(struct run_io *io, int *status)
{
	struct husk_error err = { 0 };
	int r = husk_process_wait(io->proc, 0, status, &err);

	if (r == 0)
		return 0;
	if (!run_report_vm_exit(io->sb))
		fprintf(stderr, "husk run: %s\n", err.msg);
	return r;
}

int run_io_loop(struct run_io *io, int *status)
{
	bool out_broken = false, err_broken = false, in_broken = false, exited = false;
	int our_stdin = io->stdio.stdin_fd >= 0 ? STDIN_FILENO : -1;
	int r = 0;

	while (!exited || io->stdio.stdout_fd >= 0 || io->stdio.stderr_fd >= 0) {
		struct pollfd pfd[P_COUNT] = {
			[P_OUT] = { .fd = io->stdio.stdout_fd, .events = POLLIN },
			[P_ERR] = { .fd = io->stdio.stderr_fd, .events = POLLIN },
			[P_IN] = { .fd = io->stdio.stdin_fd >= 0 ? our_stdin : -1, .events = POLLIN },
			[P_SIG] = { .fd = io->signal_fd, .events = POLLIN },
			[P_VM] = { .fd = husk_vm_fd(husk_sandbox_vm(io->sb)), .events = POLLIN },
			[P_EXIT] = { .fd = exited ? -1 : husk_process_exit_fd(io->proc),
				     .events = POLLIN },
		};

		if (poll(pfd, P_COUNT, io->debug ? CONSOLE_POLL_MS : -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			perror("husk run: poll");
			break;
		}
		if (io->debug)
			run_io_console_follow(io);
		if (pfd[P_OUT].revents)
			relay_chunk(&io->stdio.stdout_fd, STDOUT_FILENO, &out_broken);
		if (pfd[P_ERR].revents)
			relay_chunk(&io->stdio.stderr_fd, STDERR_FILENO, &err_broken);
		if (pfd[P_IN].revents) {
			/* Our stdin at EOF closes the process's stdin. */
			relay_chunk(&our_stdin, io->stdio.stdin_fd, &in_broken);
			if (our_stdin < 0 || in_broken) {
				close(io->stdio.stdin_fd);
				io->stdio.stdin_fd = -1;
			}
		}
		if (pfd[P_SIG].revents)
			forward_signal(io);
		if (pfd[P_VM].revents &&
		    husk_vm_process(husk_sandbox_vm(io->sb), NULL) == 1 && !exited) {
			run_report_vm_exit(io->sb);
			r = -EPIPE;
			break;
		}
		if (pfd[P_EXIT].revents) {
			r = exit_known(io, status);
			if (r < 0)
				break;
			exited = true;
			io->exited_ms = run_now_ms();
		}
	}
	return r;
}
