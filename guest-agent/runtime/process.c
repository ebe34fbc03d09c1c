// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Container processes as the agent sees them: their stdio (pipes or a
 * pty whose master the agent keeps) and their exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "internal.h"

static void stdio_pair_init(struct process_stdio_pair *p)
{
	p->agent = (struct runtime_stdio){ .in = -1, .out = -1, .err = -1,
					   .pty_master = -1 };
	p->child[0] = p->child[1] = p->child[2] = -1;
}

static int set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int open_pipes(struct process_stdio_pair *p, struct husk_error *err)
{
	int fds[2];

	/* stdin: the child reads fds[0], the agent writes fds[1] */
	if (pipe2(fds, O_CLOEXEC) < 0)
		return husk_error_seterrno(err, errno, "stdin pipe");
	p->child[0] = fds[0];
	p->agent.in = fds[1];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return husk_error_seterrno(err, errno, "stdout pipe");
	p->agent.out = fds[0];
	p->child[1] = fds[1];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return husk_error_seterrno(err, errno, "stderr pipe");
	p->agent.err = fds[0];
	p->child[2] = fds[1];
	return 0;
}

int process_adopt_pty(struct runtime_process *proc, int master,
		      struct husk_error *err)
{
	struct runtime_stdio *s = &proc->stdio;

	process_stdio_close_agent(s);
	s->pty_master = master;
	/* One O_NONBLOCK file status covers every dup of the master;
	 * separate descriptors so closing stdin leaves stdout readable. */
	if (set_nonblock(master) < 0)
		return husk_error_seterrno(err, errno, "O_NONBLOCK on the pty");
	s->in = fcntl(master, F_DUPFD_CLOEXEC, 3);
	s->out = fcntl(master, F_DUPFD_CLOEXEC, 3);
	if (s->in < 0 || s->out < 0)
		return husk_error_seterrno(err, errno, "dup the pty master");
	return 0;
}

int process_stdio_open(const struct process_config *pc,
		       struct process_stdio_pair *p, struct husk_error *err)
{
	int r;

	stdio_pair_init(p);
	if (pc->terminal)
		return 0;
	r = open_pipes(p, err);
	if (r == 0) {
		int agent_fds[] = { p->agent.in, p->agent.out, p->agent.err };

		for (size_t i = 0; i < ARRAY_SIZE(agent_fds) && r == 0; i++)
			if (set_nonblock(agent_fds[i]) < 0)
				r = husk_error_seterrno(err, errno, "O_NONBLOCK on stdio");
	}
	if (r < 0) {
		process_stdio_close_child(p);
		process_stdio_close_agent(&p->agent);
	}
	return r;
}

void process_stdio_close_child(struct process_stdio_pair *p)
{
	for (int i = 0; i < 3; i++)
		p->child[i] = safe_close(p->child[i]);
}

void process_stdio_close_agent(struct runtime_stdio *s)
{
	s->in = safe_close(s->in);
	s->out = safe_close(s->out);
	s->err = safe_close(s->err);
	s->pty_master = safe_close(s->pty_master);
}

struct runtime_process *process_new(struct runtime_container *ctr,
				    const char *exec_id)
{
	struct runtime_process *proc = calloc(1, sizeof(*proc));

	if (!proc)
		return NULL;
	snprintf(proc->exec_id, sizeof(proc->exec_id), "%s", exec_id);
	proc->container = ctr;
	proc->stdio = (struct runtime_stdio){ .in = -1, .out = -1, .err = -1,
					      .pty_master = -1 };
	return proc;
}

void process_free(struct runtime_process *proc)
{
	if (!proc)
		return;
	process_stdio_close_agent(&proc->stdio);
	free(proc);
}

int process_exit_code(int wait_status)
{
	if (WIFEXITED(wait_status))
		return WEXITSTATUS(wait_status);
	if (WIFSIGNALED(wait_status))
		return 128 + WTERMSIG(wait_status);
	return 255;
}

int runtime_process_take_fd(struct runtime_process *proc, enum runtime_stream s)
{
	switch (s) {
	case RUNTIME_STDIN:
		return TAKE_FD(proc->stdio.in);
	case RUNTIME_STDOUT:
		return TAKE_FD(proc->stdio.out);
	case RUNTIME_STDERR:
		return TAKE_FD(proc->stdio.err);
	}
	return -1;
}

void runtime_process_close_stdin(struct runtime_process *proc)
{
	/* Closing one descriptor of a pty master tells the reader nothing:
	 * the terminal's end-of-file character does (at a line start). */
	if (proc->terminal && proc->stdio.in >= 0)
		(void)!write(proc->stdio.in, "\x04", 1);
	proc->stdio.in = safe_close(proc->stdio.in);
}

int runtime_process_resize_tty(struct runtime_process *proc, uint16_t rows,
			       uint16_t cols, struct husk_error *err)
{
	struct winsize ws = { .ws_row = rows, .ws_col = cols };

	if (proc->stdio.pty_master < 0)
		return husk_error_set(err, ENOTTY, "process %s has no terminal",
				      proc->exec_id);
	if (ioctl(proc->stdio.pty_master, TIOCSWINSZ, &ws) < 0)
		return husk_error_seterrno(err, errno, "process %s: TIOCSWINSZ",
					   proc->exec_id);
	return 0;
}
