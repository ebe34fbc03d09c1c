// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Process stdio and exit for the caller, over the stdio channel (one vsock
 * connection per stream, stdio-channel.h) or, for an agent without it or
 * with HUSK_STDIO=rpc, the agent's stream RPCs (docs/stdio.md).
 *
 * The caller gets one end of a socketpair per stream (sockets rather than
 * pipes so a relay writing to a stream the caller closed gets EPIPE, not
 * SIGPIPE).  One thread per stream moves bytes; a waiter thread asks
 * WaitProcess, which the agent answers only after the output streams
 * ended, joins the output relays and then makes exit_efd readable.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "husk-common/fd-util.h"
#include "husk-common/cleanup.h"
#include "sandbox-internal.h"
#include "stdio-channel.h"
#include "util.h"

/* Per ReadStdout/WriteStdin call; the agent caps reads at 1 MiB. */
#define RELAY_CHUNK (256 * 1024)
/* Connecting and attaching one stdio channel stream. */
#define CHANNEL_ATTACH_MS 5000
/*
 * After the exit is known, the output relays get this long to reach EOF:
 * the agent reports an exit while a descendant holds a pipe open once its
 * own grace (2 s) passed, and that stream's end may never come.
 */
#define OUTPUT_DRAIN_MS 3000

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int new_stream(int *lib_end, int *caller_end, struct husk_error *err)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return husk_error_seterrno(err, errno, "socketpair");
	*lib_end = sv[0];
	*caller_end = sv[1];
	return 0;
}

static void stdio_close(struct husk_stdio *s)
{
	close_fd(&s->stdin_fd);
	close_fd(&s->stdout_fd);
	close_fd(&s->stderr_fd);
}

int process_new(struct husk_container *ctr, const char *exec_id, bool terminal,
		const struct husk_process_options *opts, struct husk_stdio *stdio,
		struct husk_process **proc_out, struct husk_error *err)
{
	struct husk_process *p = calloc(1, sizeof(*p));
	struct husk_stdio mine = { -1, -1, -1 };
	int r = 0;

	if (!p)
		return husk_error_set(err, ENOMEM, "out of memory");
	p->ctr = ctr;
	p->terminal = terminal;
	p->stdin_src = p->stdout_sink = p->stderr_sink = -1;
	p->stdin_chan = p->stdout_chan = p->stderr_chan = -1;
	p->stop_efd = p->exit_efd = -1;
	pthread_mutex_init(&p->lock, NULL);
	p->exec_id = strdup(exec_id);
	if (!p->exec_id)
		r = husk_error_set(err, ENOMEM, "out of memory");
	if (r == 0) {
		p->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		p->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p->stop_efd < 0 || p->exit_efd < 0)
			r = husk_error_seterrno(err, errno, "eventfd");
	}
	if (r == 0 && opts && opts->open_stdin)
		r = new_stream(&p->stdin_src, &mine.stdin_fd, err);
	if (r == 0)
		r = new_stream(&p->stdout_sink, &mine.stdout_fd, err);
	/* A terminal merges both outputs into the pty. */
	if (r == 0 && !terminal)
		r = new_stream(&p->stderr_sink, &mine.stderr_fd, err);
	if (r < 0) {
		stdio_close(&mine);
		process_free(p);
		return r;
	}
	*stdio = mine;
	*proc_out = p;
	return 0;
}

static struct agent_client *process_agent(struct husk_process *p)
{
	return &p->ctr->sb->agent;
}

/* Some bytes of an output stream from its channel connection or ReadStdout/ReadStderr. */
static ssize_t output_read(struct husk_process *p, enum agent_stream which, int chan,
			   char *buf, size_t size)
{
	ssize_t n;

	if (chan < 0)
		return agent_read_stream(process_agent(p), p->ctr->id, p->exec_id, which, buf,
					 size, NULL);
	do
		n = read(chan, buf, size);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Guest stream -> caller, until the stream ends. */
static void output_relay(struct husk_process *p, enum agent_stream which)
{
	const int *sink = which == AGENT_STDOUT ? &p->stdout_sink : &p->stderr_sink;
	int chan = which == AGENT_STDOUT ? p->stdout_chan : p->stderr_chan;
	_cleanup_free_ char *buf = malloc(RELAY_CHUNK);
	bool caller_gone = false;

	while (buf) {
		ssize_t n = output_read(p, which, chan, buf, RELAY_CHUNK);

		if (n <= 0)
			break;
		if (caller_gone || husk_send_all(*sink, buf, n) == 0)
			continue;
		caller_gone = true;
		/*
		 * The caller closed its end.  A channel passes that on, so the
		 * process's next write fails as on a pipe whose reader left; the
		 * RPCs keep draining, since WaitProcess waits for that.
		 */
		if (chan >= 0) {
			(void)shutdown(chan, SHUT_RDWR);
			break;
		}
	}
	/* EOF for the caller; the fd itself stays until process_free() joined us. */
	shutdown(*sink, SHUT_WR);
}

static void *stdout_thread_main(void *arg)
{
	output_relay(arg, AGENT_STDOUT);
	return NULL;
}

static void *stderr_thread_main(void *arg)
{
	output_relay(arg, AGENT_STDERR);
	return NULL;
}

static int write_stdin_all(struct husk_process *p, const char *buf, size_t len)
{
	if (p->stdin_chan >= 0)
		return husk_send_all(p->stdin_chan, buf, len);
	while (len) {
		ssize_t n = agent_write_stdin(process_agent(p), p->ctr->id, p->exec_id, buf, len,
					      NULL);

		if (n < 0)
			return (int)n;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Caller -> guest stdin; the caller closing its end closes the process's stdin. */
static void *stdin_thread_main(void *arg)
{
	struct husk_process *p = arg;
	_cleanup_free_ char *buf = malloc(RELAY_CHUNK);

	while (buf) {
		struct pollfd pfd[2] = {
			{ .fd = p->stdin_src, .events = POLLIN },
			{ .fd = p->stop_efd, .events = POLLIN },
		};
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		n = read(p->stdin_src, buf, RELAY_CHUNK);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			/* The channel's EOF is the agent's cue to close the process's stdin. */
			if (p->stdin_chan >= 0)
				(void)shutdown(p->stdin_chan, SHUT_WR);
			else
				(void)agent_close_stdin(process_agent(p), p->ctr->id, p->exec_id,
							NULL);
			break;
		}
		if (write_stdin_all(p, buf, n) < 0)
			break;
	}
	/* The caller's further writes fail with EPIPE instead of filling a buffer. */
	shutdown(p->stdin_src, SHUT_RD);
	return NULL;
}

/*
 * The exit is known: give the output relays OUTPUT_DRAIN_MS to reach EOF,
 * then cut the channel connections a lingering descendant keeps open.
 */
static void drain_output_relays(struct husk_process *p)
{
	struct timespec until;
	pthread_t *threads[2] = { &p->stdout_thread, &p->stderr_thread };
	bool *started[2] = { &p->stdout_started, &p->stderr_started };
	int chans[2] = { p->stdout_chan, p->stderr_chan };

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += OUTPUT_DRAIN_MS / 1000;
	for (int i = 0; i < 2; i++) {
		if (!*started[i] || chans[i] < 0)
			continue;
		if (pthread_timedjoin_np(*threads[i], NULL, &until) == 0) {
			*started[i] = false;
			continue;
		}
		(void)shutdown(chans[i], SHUT_RD);
	}
}

static void join_output_relays(struct husk_process *p)
{
	if (p->stdout_started)
		pthread_join(p->stdout_thread, NULL);
	if (p->stderr_started)
		pthread_join(p->stderr_thread, NULL);
	p->stdout_started = p->stderr_started = false;
}

static void signal_efd(int efd)
{
	uint64_t one = 1;

	(void)!write(efd, &one, sizeof(one));
}

static void *wait_thread_main(void *arg)
{
	struct husk_process *p = arg;
	struct husk_error err = { 0 };
	int status = -1, r;

	r = agent_wait_process(process_agent(p), p->ctr->id, p->exec_id, &status, &err);
	/* The agent answers after the streams ended; let the last bytes reach the caller. */
	drain_output_relays(p);
	join_output_relays(p);
	pthread_mutex_lock(&p->lock);
	if (r < 0) {
		p->wait_err = err;
		p->wait_err.code = -r;
	}
	else
		p->status = status;
	p->exited = true;
	pthread_mutex_unlock(&p->lock);
	signal_efd(p->stop_efd);
	signal_efd(p->exit_efd);
	return NULL;
}

static int start_thread(pthread_t *t, bool *started, void *(*fn)(void *), void *arg,
			const char *what, struct husk_error *err)
{
	int r = pthread_create(t, NULL, fn, arg);

	if (r)
		return husk_error_seterrno(err, r, "starting the %s thread", what);
	*started = true;
	return 0;
}

/*
 * One channel connection per stream the caller has; any failure leaves
 * that stream to the RPCs (an agent without the channel refuses the port).
 */
static void attach_channels(struct husk_process *p)
{
	enum stdio_channel_mode mode = stdio_channel_mode_from_env();
	bool relay = mode == STDIO_MODE_CHANNEL_RELAY;
	struct husk_vm *vm = p->ctr->sb->vm;
	const char *cid = p->ctr->id;

	if (mode == STDIO_MODE_RPC)
		return;
	if (p->stdout_sink >= 0)
		p->stdout_chan = stdio_channel_attach(vm, cid, p->exec_id, STDIO_CHANNEL_STDOUT,
						      relay, CHANNEL_ATTACH_MS, NULL);
	if (p->stdout_chan < 0)
		return;
	if (p->stderr_sink >= 0)
		p->stderr_chan = stdio_channel_attach(vm, cid, p->exec_id, STDIO_CHANNEL_STDERR,
						      relay, CHANNEL_ATTACH_MS, NULL);
	if (p->stdin_src >= 0)
		p->stdin_chan = stdio_channel_attach(vm, cid, p->exec_id, STDIO_CHANNEL_STDIN,
						     relay, CHANNEL_ATTACH_MS, NULL);
}

int process_start_relays(struct husk_process *p, struct husk_error *err)
{
	int r;

	attach_channels(p);
	r = start_thread(&p->stdout_thread, &p->stdout_started, stdout_thread_main, p,
			 "stdout", err);

	if (r == 0 && p->stderr_sink >= 0)
		r = start_thread(&p->stderr_thread, &p->stderr_started, stderr_thread_main, p,
				 "stderr", err);
	if (r == 0 && p->stdin_src >= 0)
		r = start_thread(&p->stdin_thread, &p->stdin_started, stdin_thread_main, p,
				 "stdin", err);
	/* No stdin asked for: the process reads EOF at once, as with docker run without -i. */
	if (r == 0 && p->stdin_src < 0 && !p->terminal)
		r = agent_close_stdin(process_agent(p), p->ctr->id, p->exec_id, err);
	return r;
}

int process_start_waiter(struct husk_process *p, struct husk_error *err)
{
	return start_thread(&p->wait_thread, &p->wait_started, wait_thread_main, p, "wait",
			    err);
}

void process_free(struct husk_process *p)
{
	if (!p)
		return;
	if (p->stop_efd >= 0)
		signal_efd(p->stop_efd);
	/* A caller that stopped reading must not keep a relay blocked in send();
	 * the fds stay open (threads may use them) until the joins below. */
	if (p->stdout_sink >= 0)
		shutdown(p->stdout_sink, SHUT_RDWR);
	if (p->stderr_sink >= 0)
		shutdown(p->stderr_sink, SHUT_RDWR);
	/* Nor a relay blocked on a channel connection (a guest pipe nobody drains). */
	if (p->stdin_chan >= 0)
		shutdown(p->stdin_chan, SHUT_RDWR);
	if (p->stdout_chan >= 0)
		shutdown(p->stdout_chan, SHUT_RDWR);
	if (p->stderr_chan >= 0)
		shutdown(p->stderr_chan, SHUT_RDWR);
	if (p->wait_started)
		pthread_join(p->wait_thread, NULL);
	join_output_relays(p);
	if (p->stdin_started)
		pthread_join(p->stdin_thread, NULL);
	close_fd(&p->stdin_src);
	close_fd(&p->stdout_sink);
	close_fd(&p->stderr_sink);
	close_fd(&p->stdin_chan);
	close_fd(&p->stdout_chan);
	close_fd(&p->stderr_chan);
	close_fd(&p->stop_efd);
	close_fd(&p->exit_efd);
	pthread_mutex_destroy(&p->lock);
	free(p->exec_id);
	free(p);
}

HUSK_EXPORT int husk_process_exit_fd(const struct husk_process *proc)
{
	return proc->exit_efd;
}

HUSK_EXPORT int husk_process_wait(struct husk_process *proc, int timeout_ms, int *status,
				  struct husk_error *err)
{
	struct pollfd pfd = { .fd = proc->exit_efd, .events = POLLIN };
	int64_t deadline = deadline_after_ms(timeout_ms);
	int r;

	for (;;) {
		r = poll(&pfd, 1, deadline_remaining_ms(deadline));
		if (r > 0)
			break;
		if (r == 0)
			return husk_error_set(err, ETIMEDOUT, "process %s: still running",
					      proc->exec_id);
		if (errno != EINTR)
			return husk_error_seterrno(err, errno, "poll");
	}
	pthread_mutex_lock(&proc->lock);
	if (proc->wait_err.code) {
		r = husk_error_set(err, EPIPE, "process %s: lost the agent while waiting: %s",
				   proc->exec_id, proc->wait_err.msg);
	} else {
		*status = proc->status;
		r = 0;
	}
	pthread_mutex_unlock(&proc->lock);
	return r;
}

HUSK_EXPORT int husk_process_signal(struct husk_process *proc, int signal,
				    struct husk_error *err)
{
	return agent_signal_process(process_agent(proc), proc->ctr->id, proc->exec_id, signal,
				    err);
}

HUSK_EXPORT int husk_process_resize(struct husk_process *proc, unsigned short rows,
				    unsigned short cols, struct husk_error *err)
{
	if (!proc->terminal)
		return husk_error_set(err, ENOTTY, "process %s: has no terminal", proc->exec_id);
	return agent_tty_resize(process_agent(proc), proc->ctr->id, proc->exec_id, rows, cols,
				err);
}
