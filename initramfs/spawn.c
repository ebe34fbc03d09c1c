// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "spawn.h"

int spawn_filter(char *const argv[], int in_fd, int out_fd, int err_fd,
		 pid_t *pid, struct husk_error *err)
{
	pid_t child = fork();

	if (child < 0)
		return husk_error_seterrno(err, errno, "fork for %s", argv[0]);
	if (child == 0) {
		/* only async-signal-safe calls until exec */
		struct sigaction dfl = { .sa_handler = SIG_DFL };

		sigaction(SIGPIPE, &dfl, NULL);
		if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
			_exit(127);
		if (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	*pid = child;
	return 0;
}

int spawn_wait(pid_t pid, const char *what, struct husk_error *err)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return husk_error_seterrno(err, errno, "waiting for %s", what);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return husk_error_set(err, EIO, "%s: could not be run (not installed?)", what);
	if (WIFEXITED(status))
		return husk_error_set(err, EIO, "%s failed with exit status %d", what,
				      WEXITSTATUS(status));
	return husk_error_set(err, EIO, "%s killed by signal %d", what, WTERMSIG(status));
}

int read_all_fd(int fd, char **out, size_t *out_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	for (;;) {
		ssize_t n;

		if (cap - len < 65536) {
			char *nb;

			cap = cap ? cap * 2 : 262144;
			nb = realloc(buf, cap);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = TAKE_PTR(buf);
	*out_len = len;
	return 0;
}

int spawn_capture(char *const argv[], int in_fd, char **out, size_t *out_len,
		  struct husk_error *err)
{
	_cleanup_close_ int rd = -1;
	_cleanup_free_ char *buf = NULL;
	int pipefd[2];
	size_t len = 0;
	pid_t pid;
	int r, rw;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return husk_error_seterrno(err, errno, "pipe for %s", argv[0]);
	rd = pipefd[0];
	r = spawn_filter(argv, in_fd, pipefd[1], -1, &pid, err);
	safe_close(pipefd[1]);
	if (r < 0)
		return r;
	rw = read_all_fd(rd, &buf, &len);
	r = spawn_wait(pid, argv[0], err);
	if (r < 0)
		return r;
	if (rw < 0)
		return husk_error_seterrno(err, -rw, "reading the output of %s", argv[0]);
	*out = TAKE_PTR(buf);
	*out_len = len;
	return 0;
}
