// SPDX-License-Identifier: LGPL-2.1-or-later
/* Child processes: spawn with a pidfd, wait with a timeout, terminate. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vm-internal.h"

#define SPAWN_MAX_FDS 8

/* Runs in the forked child: only async-signal-safe calls until exec. */
static void __attribute__((noreturn))
spawn_child(char *const argv[], const int *fds, unsigned int n_fds,
	    int devnull, int log_fd)
{
	int high[SPAWN_MAX_FDS];
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t all;

	/* The caller may block or ignore signals; QEMU must not inherit that. */
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);

	/* Move the fds above their targets first so none is clobbered. */
	for (unsigned int i = 0; i < n_fds; i++) {
		high[i] = fcntl(fds[i], F_DUPFD, 3 + SPAWN_MAX_FDS + 3);
		if (high[i] < 0)
			_exit(127);
	}
	if (dup2(devnull, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
		_exit(127);
	for (unsigned int i = 0; i < n_fds; i++)
		if (dup2(high[i], 3 + i) < 0)
			_exit(127);
	if (syscall(SYS_close_range, 3 + n_fds, ~0U, 0) < 0) {
		for (int fd = 3 + n_fds; fd < 65536; fd++)
			close(fd);
	}
	execv(argv[0], argv);
	_exit(127);
}

int vm_spawn(char *const argv[], const int *fds, unsigned int n_fds,
	     int log_fd, pid_t *pid_out, int *pidfd_out,
	     struct husk_error *err)
{
	_cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int pidfd;
	pid_t pid;

	if (n_fds > SPAWN_MAX_FDS)
		return husk_error_set(err, EINVAL, "spawn %s: too many fds", argv[0]);
	if (devnull < 0)
		return husk_error_seterrno(err, errno, "/dev/null");
	if (log_fd < 0)
		log_fd = devnull;
	pid = fork();
	if (pid < 0)
		return husk_error_seterrno(err, errno, "fork for %s", argv[0]);
	if (pid == 0)
		spawn_child(argv, fds, n_fds, devnull, log_fd);

	/* Race-free: an unreaped child's pid cannot be reused. */
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		int e = errno;

		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return husk_error_seterrno(err, e, "pidfd_open for %s", argv[0]);
	}
	*pid_out = pid;
	*pidfd_out = pidfd;
	return 0;
}

int vm_child_wait(int pidfd, int timeout_ms, int *status)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int64_t deadline = deadline_after_ms(timeout_ms);
	siginfo_t si;

	for (;;) {
		int r = poll(&pfd, 1, deadline_remaining_ms(deadline));

		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			break;
		if (r == 0)
			return -ETIMEDOUT;
	}
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, pidfd, &si, WEXITED | WNOHANG) < 0)
		return -errno;
	if (si.si_pid == 0)
		return -ETIMEDOUT;
	if (status)
		*status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0) :
						     si.si_status;	/* signal number */
	return 0;
}

void vm_process_terminate(int pidfd, int grace_ms, bool reap)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

	if (pidfd < 0)
		return;
	if (grace_ms > 0 && pidfd_send_signal(pidfd, SIGTERM, NULL, 0) == 0) {
		if (reap ? vm_child_wait(pidfd, grace_ms, NULL) == 0 :
			   poll(&pfd, 1, grace_ms) > 0)
			return;
	}
	pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
	if (reap)
		vm_child_wait(pidfd, -1, NULL);
	else
		poll(&pfd, 1, 5000);
}

#define RELEASE_MAX_MAPPINGS 16

int vm_child_release_file(pid_t pid, int pidfd, const char *path)
{
	_cleanup_fclose_ FILE *maps = NULL;
	struct iovec iov[RELEASE_MAX_MAPPINGS];
	char real[PATH_MAX], proc[64], line[PATH_MAX + 128];
	size_t n = 0;

	if (!realpath(path, real))
		return -errno;
	snprintf(proc, sizeof(proc), "/proc/%d/maps", (int)pid);
	maps = fopen(proc, "re");
	if (!maps)
		return -errno;
	/* "start-end perms offset dev inode   path" */
	while (n < RELEASE_MAX_MAPPINGS && fgets(line, sizeof(line), maps)) {
		unsigned long start, end;
		int name = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &name) != 2 ||
		    !name)
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line + name, real))
			continue;
		iov[n].iov_base = (void *)start;
		iov[n].iov_len = end - start;
		n++;
	}
	if (n && syscall(SYS_process_madvise, pidfd, iov, n, MADV_PAGEOUT, 0U) < 0)
		return -errno;
	return (int)n;
}
