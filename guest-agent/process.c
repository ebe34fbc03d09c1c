// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "agent.pb-c.h"
#include "log.h"
#include "process.h"
#include "stdio-channel.h"
#include "stdio-handshake.h"

/* One ReadStdout cannot answer more than this (well under the 4 MiB frame). */
#define READ_MAX (1u << 20)
/*
 * How long after the exit a forwarded output stream may hold WaitProcess
 * back: a descendant that keeps the pipe open must not hide the exit.
 */
#define FORWARD_GRACE_MS 2000

/* A call parked on a stream or a process. */
struct parked {
	struct husk_ttrpc_call *call;
	size_t len;			/* read: maximum bytes */
	const uint8_t *data;		/* write: bytes, owned by the call's request */
	struct parked *next;
};

struct agent_stream {
	struct agent_process *ap;
	enum runtime_stream which;
	int fd;				/* -1 once closed */
	bool borrowed;			/* stdin: the runtime owns and closes the fd */
	bool eof;
	bool touched;			/* a client has read or written it */
	bool handed_off;		/* the stdio channel forwards it */
	bool forward_done;		/* ... and its forwarder reached the end */
	struct stdio_forward *fwd;	/* that forwarder while it runs */
	struct loop_source *src;	/* watched while calls are parked */
	struct parked *parked, **tail;
};

struct agent_process {
	struct agent *agent;
	struct runtime_process *proc;
	struct runtime_container *ctr;
	struct agent_stream streams[3];	/* indexed by enum runtime_stream */
	struct parked *waits;
	struct timespec exited_at;	/* CLOCK_MONOTONIC */
	int grace_fd;			/* timerfd: FORWARD_GRACE_MS after exit */
	struct loop_source *grace_src;
	bool grace_over;
	struct agent_process *next;
};

static void park(struct parked ***tail, struct husk_ttrpc_call *call, size_t len,
		 const uint8_t *data)
{
	struct parked *p = calloc(1, sizeof(*p));

	if (!p) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INTERNAL, "out of memory");
		return;
	}
	p->call = call;
	p->len = len;
	p->data = data;
	**tail = p;
	*tail = &p->next;
}

static struct parked *unpark(struct agent_stream *s)
{
	struct parked *p = s->parked;

	if (p) {
		s->parked = p->next;
		if (!s->parked)
			s->tail = &s->parked;
	}
	return p;
}

static void reply_read(struct husk_ttrpc_call *call, const uint8_t *data, size_t n)
{
	Grpc__ReadStreamResponse resp = GRPC__READ_STREAM_RESPONSE__INIT;

	resp.data.data = (uint8_t *)data;
	resp.data.len = n;
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}

static void reply_write(struct husk_ttrpc_call *call, size_t n)
{
	Grpc__WriteStreamResponse resp = GRPC__WRITE_STREAM_RESPONSE__INIT;

	resp.len = (uint32_t)n;
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}

static void reply_wait(struct husk_ttrpc_call *call, int status)
{
	Grpc__WaitProcessResponse resp = GRPC__WAIT_PROCESS_RESPONSE__INIT;

	resp.status = status;
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */

static void stream_stop_watch(struct agent_stream *s)
{
	loop_remove(s->ap->agent->loop, s->src);
	s->src = NULL;
}

static void stream_close(struct agent_stream *s)
{
	stream_stop_watch(s);
	s->fd = s->borrowed ? -1 : safe_close(s->fd);
}

/* Answer every parked call: reads see end of stream, writes a closed pipe. */
static void stream_release(struct agent_stream *s)
{
	struct parked *p;

	while ((p = unpark(s))) {
		if (s->which == RUNTIME_STDIN)
			husk_ttrpc_call_reply_status(p->call, HUSK_TTRPC_FAILED_PRECONDITION,
						     "exec %s: stdin closed", s->ap->proc->exec_id);
		else
			reply_read(p->call, NULL, 0);
		free(p);
	}
	stream_close(s);
}

/*
 * One read attempt for a parked or new call.  Returns true when the call
 * was answered (data or end of stream), false when it must wait.
 */
static bool stream_try_read(struct agent_stream *s, struct husk_ttrpc_call *call, size_t len)
{
	_cleanup_free_ uint8_t *buf = NULL;
	ssize_t n;

	if (s->eof || s->fd < 0) {
		reply_read(call, NULL, 0);
		return true;
	}
	buf = malloc(len);
	if (!buf) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INTERNAL, "out of memory");
		return true;
	}
	n = read(s->fd, buf, len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (n <= 0) {
		/* A pty master reads EIO once the last slave fd is gone: that is EOF too. */
		if (n < 0 && errno != EIO)
			log_warn("exec %s: reading stream %d: %m", s->ap->proc->exec_id, s->which);
		s->eof = true;
		reply_read(call, NULL, 0);
		return true;
	}
	reply_read(call, buf, (size_t)n);
	return true;
}

static bool stream_try_write(struct agent_stream *s, struct husk_ttrpc_call *call,
			     const uint8_t *data, size_t len)
{
	ssize_t n;

	if (s->fd < 0) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_FAILED_PRECONDITION,
					     "exec %s: stdin closed", s->ap->proc->exec_id);
		return true;
	}
	if (len == 0) {
		reply_write(call, 0);
		return true;
	}
	n = write(s->fd, data, len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (n < 0) {
		husk_ttrpc_call_reply_status(call, errno == EPIPE ?
					     HUSK_TTRPC_FAILED_PRECONDITION : HUSK_TTRPC_INTERNAL,
					     "exec %s: writing stdin: %s", s->ap->proc->exec_id,
					     strerror(errno));
		return true;
	}
	reply_write(call, (size_t)n);
	return true;
}

static bool stream_try(struct agent_stream *s, struct parked *p)
{
	if (s->which == RUNTIME_STDIN)
		return stream_try_write(s, p->call, p->data, p->len);
	return stream_try_read(s, p->call, p->len);
}

static void process_try_finish(struct agent_process *ap);

static void on_stream(struct agent_loop *loop, struct loop_source *src, uint32_t events,
		      void *data)
{
	struct agent_stream *s = data;
	struct agent_process *ap = s->ap;

	while (s->parked) {
		struct parked *p = s->parked;

		/* A client that went away must not consume bytes meant for the next one. */
		if (!husk_ttrpc_call_connected(p->call))
			husk_ttrpc_call_drop(p->call);
		else if (!stream_try(s, p))
			break;
		free(unpark(s));
	}
	if (!s->parked)
		stream_stop_watch(s);
	process_try_finish(ap);
}

static void stream_submit(struct agent_stream *s, struct husk_ttrpc_call *call, size_t len,
			  const uint8_t *data)
{
	struct husk_error err = {};
	struct parked p = { .call = call, .len = len, .data = data };
	uint32_t mask = s->which == RUNTIME_STDIN ? EPOLLOUT : EPOLLIN;

	s->touched = true;
	/* Calls are answered in arrival order: a new one waits behind parked ones. */
	if (!s->parked && stream_try(s, &p))
		return;
	park(&s->tail, call, len, data);
	if (s->src) {
		/* It may be a hang-up watch with an empty mask. */
		(void)loop_modify(s->ap->agent->loop, s->src, mask);
		return;
	}
	if (loop_add(s->ap->agent->loop, s->fd, mask, on_stream, s, &s->src, &err) < 0) {
		log_error("exec %s: %s", s->ap->proc->exec_id, err.msg);
		stream_release(s);
	}
}

/* Every writer has gone and no byte is left unread. */
static bool stream_drained(const struct agent_stream *s)
{
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	int avail = 0;

	if (poll(&p, 1, 0) < 0 || !(p.revents & POLLHUP))
		return false;
	return ioctl(s->fd, FIONREAD, &avail) == 0 && avail == 0;
}

/*
 * A stream a client reads holds WaitProcess back until nothing is left for
 * that client: the exit status must not overtake the last bytes.  A stream
 * nobody reads never holds it back.
 */
static bool stream_settled(const struct agent_stream *s)
{
	/* A forwarded stream: its forwarder's end, bounded by the grace time. */
	if (s->handed_off)
		return s->forward_done || s->ap->grace_over;
	if (s->fd < 0 || s->eof || !s->touched)
		return true;
	return !s->parked && stream_drained(s);
}

/*
 * An exited process whose stream is still open (a background child holds
 * the pipe) is re-checked when that pipe hangs up: epoll always reports
 * EPOLLHUP, so an empty mask watches for exactly that.
 */
static void stream_watch_hangup(struct agent_stream *s)
{
	struct pollfd p = { .fd = s->fd };
	struct husk_error err = {};

	/* Already hung up: only unread bytes are left, and reads re-check. */
	if (s->src || s->fd < 0 || (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP)))
		return;
	if (loop_add(s->ap->agent->loop, s->fd, 0, on_stream, s, &s->src, &err) < 0)
		log_warn("exec %s: %s", s->ap->proc->exec_id, err.msg);
}

/* ------------------------------------------------------------------------ */
/* Processes                                                                 */

struct agent_process *agent_process_of(struct runtime_process *proc)
{
	return proc ? proc->user : NULL;
}

int agent_process_track(struct agent *agent, struct runtime_process *proc,
			struct husk_error *err)
{
	struct agent_process *ap = calloc(1, sizeof(*ap));

	if (!ap)
		return husk_error_set(err, ENOMEM, "exec %s: out of memory", proc->exec_id);
	ap->agent = agent;
	ap->proc = proc;
	ap->ctr = proc->container;
	ap->grace_fd = -1;
	for (int i = 0; i < 3; i++) {
		struct agent_stream *s = &ap->streams[i];

		s->ap = ap;
		s->which = (enum runtime_stream)i;
		/*
		 * Output fds are taken: they are read here until a forwarder takes
		 * them over.  Stdin stays the runtime's, whose CloseStdin knows how
		 * to end a terminal's input.
		 */
		s->borrowed = s->which == RUNTIME_STDIN;
		s->fd = s->borrowed ? proc->stdio.in : runtime_process_take_fd(proc, s->which);
		s->tail = &s->parked;
	}
	proc->user = ap;
	ap->next = agent->procs;
	agent->procs = ap;
	return 0;
}

static void process_unlink(struct agent_process *ap)
{
	for (struct agent_process **pp = &ap->agent->procs; *pp; pp = &(*pp)->next) {
		if (*pp == ap) {
			*pp = ap->next;
			return;
		}
	}
}

/* Stop tracking: answer parked stream calls, close our fds, free ap. */
static void process_release(struct agent_process *ap)
{
	for (int i = 0; i < 3; i++) {
		/* A forwarder outlives the process: a descendant may still write. */
		stdio_forward_detach(ap->streams[i].fwd);
		stream_release(&ap->streams[i]);
	}
	loop_remove(ap->agent->loop, ap->grace_src);
	safe_close(ap->grace_fd);
	ap->proc->user = NULL;
	process_unlink(ap);
	free(ap);
}

/* Returns how many connected clients got the status. */
static int process_answer_waits(struct agent_process *ap)
{
	int delivered = 0;

	while (ap->waits) {
		struct parked *p = ap->waits;

		ap->waits = p->next;
		if (husk_ttrpc_call_connected(p->call)) {
			reply_wait(p->call, ap->proc->exit_code);
			delivered++;
		} else {
			husk_ttrpc_call_drop(p->call);
		}
		free(p);
	}
	return delivered;
}

static void on_grace_over(struct agent_loop *loop, struct loop_source *src, uint32_t events,
			  void *data)
{
	struct agent_process *ap = data;

	log_warn("exec %s: output still open %d ms after the exit (a descendant holds it); "
		 "reporting the exit", ap->proc->exec_id, FORWARD_GRACE_MS);
	loop_remove(loop, ap->grace_src);
	ap->grace_src = NULL;
	ap->grace_over = true;
	process_try_finish(ap);
}

/* Arm the grace timer once, FORWARD_GRACE_MS after the exit. */
static void process_arm_grace(struct agent_process *ap)
{
	struct itimerspec its = { .it_value = ap->exited_at };
	struct husk_error err = {};

	if (ap->grace_fd >= 0 || ap->grace_over)
		return;
	its.it_value.tv_sec += FORWARD_GRACE_MS / 1000;
	its.it_value.tv_nsec += (FORWARD_GRACE_MS % 1000) * 1000000L;
	if (its.it_value.tv_nsec >= 1000000000L) {
		its.it_value.tv_sec++;
		its.it_value.tv_nsec -= 1000000000L;
	}
	ap->grace_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ap->grace_fd < 0 ||
	    timerfd_settime(ap->grace_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ||
	    loop_add(ap->agent->loop, ap->grace_fd, EPOLLIN, on_grace_over, ap, &ap->grace_src,
		     &err) < 0) {
		/* Without a timer the exit must not wait for the descendant at all. */
		log_warn("exec %s: grace timer: %s", ap->proc->exec_id,
			 err.msg[0] ? err.msg : strerror(errno));
		ap->grace_over = true;
	}
}

static void process_try_finish(struct agent_process *ap)
{
	struct runtime_process *proc = ap->proc;
	bool settled = true;

	if (!proc->exited || !ap->waits)
		return;
	for (int i = RUNTIME_STDOUT; i <= RUNTIME_STDERR; i++) {
		struct agent_stream *s = &ap->streams[i];

		if (!stream_settled(s)) {
			settled = false;
			if (s->handed_off)
				process_arm_grace(ap);
			else
				stream_watch_hangup(s);
		}
	}
	if (!settled)
		return;
	/* Only a status somebody received lets the process be forgotten. */
	if (process_answer_waits(ap) == 0)
		return;
	process_release(ap);
	runtime_process_forget(proc);
}

void agent_process_on_exit(void *userdata, struct runtime_container *ctr,
			   struct runtime_process *proc)
{
	struct agent_process *ap = agent_process_of(proc);

	log_debug("container %s exec %s: pid %d exited with %d", runtime_container_id(ctr),
		  proc->exec_id, proc->pid, proc->exit_code);
	if (!ap)
		return;
	(void)clock_gettime(CLOCK_MONOTONIC, &ap->exited_at);
	process_try_finish(ap);
}

void agent_process_wait(struct agent_process *ap, struct husk_ttrpc_call *call)
{
	struct parked **tail = &ap->waits;

	while (*tail)
		tail = &(*tail)->next;
	park(&tail, call, 0, NULL);
	process_try_finish(ap);
}

void agent_process_read(struct agent_process *ap, enum runtime_stream which, size_t len,
			struct husk_ttrpc_call *call)
{
	struct agent_stream *s = &ap->streams[which];

	if (s->fd < 0 && !s->eof) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_FAILED_PRECONDITION,
					     "exec %s: no %s stream (terminal process or handed off)",
					     ap->proc->exec_id,
					     which == RUNTIME_STDOUT ? "stdout" : "stderr");
		return;
	}
	stream_submit(s, call, len > READ_MAX ? READ_MAX : len, NULL);
	process_try_finish(ap);
}

void agent_process_write(struct agent_process *ap, const uint8_t *data, size_t len,
			 struct husk_ttrpc_call *call)
{
	stream_submit(&ap->streams[RUNTIME_STDIN], call, len, data);
}

int agent_process_hand_off(struct agent_process *ap, enum runtime_stream which,
			   struct stdio_forward *fwd, struct husk_error *err)
{
	struct agent_stream *s = &ap->streams[which];
	const char *name = stdio_stream_name(which);
	int fd;

	if (s->handed_off || s->touched)
		return husk_error_set(err, EBUSY, "exec %s: %s already attached%s",
				      ap->proc->exec_id, name,
				      s->touched ? " (read or written over RPC)" : "");
	if (which == RUNTIME_STDIN) {
		stream_release(s);
		fd = runtime_process_take_fd(ap->proc, RUNTIME_STDIN);
	} else {
		stream_stop_watch(s);
		fd = s->fd;
		s->fd = -1;
	}
	if (fd < 0)
		return husk_error_set(err, ENODEV, "exec %s: no %s (closed, or a terminal's stderr)",
				      ap->proc->exec_id, name);
	s->handed_off = true;
	s->fwd = fwd;
	return fd;
}

void agent_process_forward_done(struct agent_process *ap, enum runtime_stream which)
{
	struct agent_stream *s = &ap->streams[which];

	s->forward_done = true;
	s->fwd = NULL;
	process_try_finish(ap);
}

void agent_process_close_stdin(struct agent_process *ap)
{
	/* Stop watching the fd before the runtime closes it. */
	stream_release(&ap->streams[RUNTIME_STDIN]);
	runtime_process_close_stdin(ap->proc);
}

void agent_container_untrack(struct agent *agent, struct runtime_container *ctr)
{
	struct agent_process *ap = agent->procs;

	while (ap) {
		struct agent_process *next = ap->next;

		if (ap->ctr == ctr) {
			struct parked *p;

			while ((p = ap->waits)) {
				ap->waits = p->next;
				if (ap->proc->exited)
					reply_wait(p->call, ap->proc->exit_code);
				else
					husk_ttrpc_call_reply_status(p->call, HUSK_TTRPC_NOT_FOUND,
								     "container %s removed",
								     runtime_container_id(ctr));
				free(p);
			}
			process_release(ap);
		}
		ap = next;
	}
}

void agent_process_untrack_all(struct agent *agent)
{
	while (agent->procs) {
		struct agent_process *ap = agent->procs;
		struct parked *p;

		while ((p = ap->waits)) {
			ap->waits = p->next;
			husk_ttrpc_call_drop(p->call);
			free(p);
		}
		process_release(ap);
	}
}
