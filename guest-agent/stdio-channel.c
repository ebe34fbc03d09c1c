// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <linux/vsockfwd.h>

#include <husk-common/cleanup.h>

#include "listen.h"
#include "log.h"
#include "process.h"
#include "relay.h"
#include "stdio-channel.h"
#include "stdio-handshake.h"

#define VSOCKFWD_DEV "/dev/vsockfwd"
/* A connection that has not sent its handshake line by then is closed. */
#define HANDSHAKE_TIMEOUT_S 10
/* Connections still in their handshake; more are refused. */
#define PENDING_MAX 256

/* A connection before and during its handshake. */
struct stdio_pending {
	struct stdio_channel *ch;
	int fd;
	int timer_fd;
	struct loop_source *src, *timer_src;
	char line[STDIO_HANDSHAKE_MAX];
	size_t len;
	struct stdio_pending *next;
};

/* One stream being forwarded, by vsockfwd.ko (handle_fd) or the relay. */
struct stdio_forward {
	struct stdio_channel *ch;
	struct agent_process *ap;	/* NULL once the process is forgotten */
	enum runtime_stream stream;
	char exec_id[RUNTIME_ID_MAX + 1];
	bool terminal;
	int pipe_fd;
	int sock_fd;
	int handle_fd;
	struct loop_source *handle_src;
	struct relay *relay;
	struct stdio_forward *next;
};

struct stdio_channel {
	struct agent *agent;
	int listen_fd;
	struct loop_source *listen_src;
	int vsockfwd_fd;		/* -1: every stream goes to the relay */
	bool vsockfwd_checked;		/* vsockfwd_fd says so (opened at first use) */
	unsigned int npending;
	struct stdio_pending *pending;
	struct stdio_forward *forwards;
};

/* ------------------------------------------------------------------------ */
/* Forwarders                                                                */

static void forward_unlink(struct stdio_forward *fw)
{
	for (struct stdio_forward **pp = &fw->ch->forwards; *pp; pp = &(*pp)->next) {
		if (*pp == fw) {
			*pp = fw->next;
			return;
		}
	}
}

/* Cancel (kernel: closing the handle) and close both ends. */
static void forward_free(struct stdio_forward *fw)
{
	forward_unlink(fw);
	loop_remove(fw->ch->agent->loop, fw->handle_src);
	safe_close(fw->handle_fd);
	relay_free(fw->relay);
	/* A terminal's reader sees end of input from ^D, not from a close. */
	if (fw->stream == RUNTIME_STDIN && fw->terminal && fw->pipe_fd >= 0)
		(void)!write(fw->pipe_fd, "\x04", 1);
	safe_close(fw->pipe_fd);
	safe_close(fw->sock_fd);
	free(fw);
}

/* The forwarder ended (EOF or error): close its ends, then tell the process. */
static void forward_end(struct stdio_forward *fw, uint64_t bytes, int error)
{
	struct agent_process *ap = fw->ap;
	enum runtime_stream stream = fw->stream;

	if (error && error != -EPIPE && error != -ECONNRESET)
		log_warn("exec %s: %s forwarder: %s after %llu bytes", fw->exec_id,
			 stdio_stream_name(stream), strerror(-error), (unsigned long long)bytes);
	else
		log_debug("exec %s: %s forwarded %llu bytes%s", fw->exec_id,
			  stdio_stream_name(stream), (unsigned long long)bytes,
			  error ? " (reader gone)" : "");
	forward_free(fw);
	if (ap)
		agent_process_forward_done(ap, stream);
}

static void on_relay_done(void *data, uint64_t bytes, int error)
{
	forward_end(data, bytes, error);
}

static void on_handle(struct agent_loop *loop, struct loop_source *src, uint32_t events,
		      void *data)
{
	struct stdio_forward *fw = data;
	struct vsockfwd_result res = {};
	ssize_t n = read(fw->handle_fd, &res, sizeof(res));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(res))
		forward_end(fw, 0, n < 0 ? -errno : -EIO);
	else
		forward_end(fw, res.bytes, res.error);
}

/* Hand both ends to vsockfwd.ko; on failure nothing of it is left behind. */
static int forward_start_kernel(struct stdio_forward *fw, int in_fd, int out_fd,
				struct husk_error *err)
{
	struct vsockfwd_splice sp = {
		.size = sizeof(sp),
		.flags = fw->stream == RUNTIME_STDIN ? VSOCKFWD_F_CLOSE_OUT : VSOCKFWD_F_SHUT_WR,
		.in_fd = in_fd,
		.out_fd = out_fd,
	};
	int r;

	fw->handle_fd = ioctl(fw->ch->vsockfwd_fd, VSOCKFWD_SPLICE, &sp);
	if (fw->handle_fd < 0) {
		fw->handle_fd = -1;
		return husk_error_seterrno(err, errno, "VSOCKFWD_SPLICE");
	}
	r = loop_add(fw->ch->agent->loop, fw->handle_fd, EPOLLIN, on_handle, fw,
		     &fw->handle_src, err);
	if (r < 0)
		fw->handle_fd = safe_close(fw->handle_fd);	/* cancels it */
	return r;
}

static int open_vsockfwd(const struct agent_config *cfg);

/* The module's device, opened at the first stream: the agent loads the
 * module while it already serves the host (agent_wait_modules()). */
static int channel_vsockfwd(struct stdio_channel *ch)
{
	if (!ch->vsockfwd_checked) {
		agent_wait_modules(ch->agent);
		ch->vsockfwd_fd = open_vsockfwd(&ch->agent->cfg);
		ch->vsockfwd_checked = true;
	}
	return ch->vsockfwd_fd;
}

/*
 * The module when in use, else (or when it refuses: -EINVAL for a
 * terminal, whose pty is no pipe; anything else is worth a warning) the
 * relay.
 */
static int forward_start(struct stdio_forward *fw, bool force_relay, struct husk_error *err)
{
	bool in = fw->stream == RUNTIME_STDIN;
	int in_fd = in ? fw->sock_fd : fw->pipe_fd;
	int out_fd = in ? fw->pipe_fd : fw->sock_fd;

	if (!force_relay && channel_vsockfwd(fw->ch) >= 0) {
		struct husk_error kerr = {};
		int r = forward_start_kernel(fw, in_fd, out_fd, &kerr);

		if (r == 0)
			return 0;
		if (r == -EINVAL)
			log_debug("exec %s: %s: %s; using the relay", fw->exec_id,
				  stdio_stream_name(fw->stream), kerr.msg);
		else
			log_warn("exec %s: %s: %s; using the relay", fw->exec_id,
				 stdio_stream_name(fw->stream), kerr.msg);
	}
	return relay_start(fw->ch->agent->loop, in_fd, out_fd, in ? 0 : RELAY_SHUT_WR,
			   on_relay_done, fw, &fw->relay, err);
}

void stdio_forward_detach(struct stdio_forward *fw)
{
	if (fw)
		fw->ap = NULL;
}

/* ------------------------------------------------------------------------ */
/* Handshake                                                                 */

static void pending_free(struct stdio_pending *p)
{
	for (struct stdio_pending **pp = &p->ch->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	p->ch->npending--;
	loop_remove(p->ch->agent->loop, p->src);
	loop_remove(p->ch->agent->loop, p->timer_src);
	safe_close(p->timer_fd);
	safe_close(p->fd);
	free(p);
}

/* Answer lines are tiny and the socket fresh: one send fits or it is gone. */
static int answer(int fd, const char *fmt, ...)
{
	char line[STDIO_ANSWER_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	return send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) == n ? 0 : -EIO;
}

static const char *answer_reason(int code)
{
	switch (code) {
	case EINVAL:
		return "invalid";
	case ENOENT:
		return "not-found";
	case EBUSY:
		return "busy";
	case ENODEV:
		return "no-stream";
	default:
		return "internal";
	}
}

/* The process behind a valid handshake, or NULL with err set (ENOENT). */
static struct runtime_process *handshake_process(struct stdio_channel *ch,
						 const struct stdio_handshake *hs,
						 struct husk_error *err)
{
	struct runtime_container *ctr = runtime_container_find(ch->agent->rt, hs->container_id);
	struct runtime_process *proc = ctr ? runtime_process_find(ctr, hs->exec_id) : NULL;

	if (!ctr)
		husk_error_set(err, ENOENT, "container %s not found", hs->container_id);
	else if (!agent_process_of(proc))
		husk_error_set(err, ENOENT, "container %s: exec %s not found", hs->container_id,
			       hs->exec_id);
	return agent_process_of(proc) ? proc : NULL;
}

/* Validate, attach and answer; the connection becomes a forwarder on success. */
static int handshake_complete(struct stdio_pending *p, struct husk_error *err)
{
	struct stdio_channel *ch = p->ch;
	struct stdio_handshake hs;
	struct runtime_process *proc;
	struct agent_process *ap;
	_cleanup_free_ struct stdio_forward *fw = NULL;
	int r;

	r = stdio_handshake_parse(p->line, p->len, &hs, err);
	if (r < 0)
		return r;
	proc = handshake_process(ch, &hs, err);
	if (!proc)
		return -ENOENT;
	ap = agent_process_of(proc);
	fw = calloc(1, sizeof(*fw));
	if (!fw)
		return husk_error_set(err, ENOMEM, "out of memory");
	fw->ch = ch;
	fw->stream = hs.stream;
	fw->handle_fd = -1;
	fw->sock_fd = -1;
	snprintf(fw->exec_id, sizeof(fw->exec_id), "%s", hs.exec_id);
	fw->terminal = proc->terminal;
	fw->pipe_fd = agent_process_hand_off(ap, hs.stream, fw, err);
	if (fw->pipe_fd < 0)
		return fw->pipe_fd;
	fw->ap = ap;
	/* OK goes out before the first forwarded byte can. */
	r = answer(p->fd, "OK");
	if (r == 0) {
		fw->sock_fd = TAKE_FD(p->fd);
		r = forward_start(fw, hs.force_relay, err);
	}
	fw->next = ch->forwards;
	ch->forwards = fw;
	if (r < 0) {
		/* The stream was taken: end it as a vanished reader would. */
		log_warn("exec %s: %s: %s", hs.exec_id, stdio_stream_name(hs.stream),
			 err->msg[0] ? err->msg : "handshake answer not sent");
		forward_end(TAKE_PTR(fw), 0, r);
		return 0;
	}
	log_debug("exec %s: %s attached (%s)", hs.exec_id, stdio_stream_name(hs.stream),
		  fw->relay ? "relay" : "vsockfwd");
	TAKE_PTR(fw);
	return 0;
}

/* Take bytes up to the newline only: what follows it is stdin data. */
static int pending_read(struct stdio_pending *p, bool *complete)
{
	size_t room = sizeof(p->line) - p->len, take;
	ssize_t n = recv(p->fd, p->line + p->len, room, MSG_PEEK | MSG_DONTWAIT);
	char *nl;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	nl = memchr(p->line + p->len, '\n', (size_t)n);
	take = nl ? (size_t)(nl - (p->line + p->len)) + 1 : (size_t)n;
	n = recv(p->fd, p->line + p->len, take, MSG_DONTWAIT);
	if (n != (ssize_t)take)
		return n < 0 ? -errno : -EIO;
	p->len += take;
	*complete = nl != NULL || p->len == sizeof(p->line);
	return 0;
}

static void on_pending(struct agent_loop *loop, struct loop_source *src, uint32_t events,
		       void *data)
{
	struct stdio_pending *p = data;
	struct husk_error err = {};
	bool complete = false;
	int r = pending_read(p, &complete);

	if (r < 0) {
		pending_free(p);
		return;
	}
	if (!complete)
		return;
	/* The socket may become a forwarder's: stop watching it here first. */
	loop_remove(loop, p->src);
	p->src = NULL;
	r = handshake_complete(p, &err);
	if (r < 0) {
		log_info("stdio connection refused: %s", err.msg);
		(void)answer(p->fd, "ERR %s %s", answer_reason(err.code), err.msg);
	}
	pending_free(p);
}

static void on_pending_timeout(struct agent_loop *loop, struct loop_source *src,
			       uint32_t events, void *data)
{
	struct stdio_pending *p = data;

	(void)answer(p->fd, "ERR invalid no handshake line within %d s", HANDSHAKE_TIMEOUT_S);
	pending_free(p);
}

static int pending_add(struct stdio_channel *ch, int fd)
{
	struct itimerspec its = { .it_value.tv_sec = HANDSHAKE_TIMEOUT_S };
	struct stdio_pending *p = calloc(1, sizeof(*p));
	struct husk_error err = {};
	int r;

	if (!p) {
		safe_close(fd);
		return -ENOMEM;
	}
	p->ch = ch;
	p->fd = fd;
	p->next = ch->pending;
	ch->pending = p;
	ch->npending++;
	p->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (p->timer_fd < 0 || timerfd_settime(p->timer_fd, 0, &its, NULL) < 0) {
		r = -errno;
		goto fail;
	}
	r = loop_add(ch->agent->loop, p->timer_fd, EPOLLIN, on_pending_timeout, p,
		     &p->timer_src, &err);
	if (r < 0)
		goto fail;
	r = loop_add(ch->agent->loop, fd, EPOLLIN, on_pending, p, &p->src, &err);
	if (r < 0)
		goto fail;
	return 0;
fail:
	pending_free(p);
	return r;
}

static void on_listen(struct agent_loop *loop, struct loop_source *src, uint32_t events,
		      void *data)
{
	struct stdio_channel *ch = data;

	for (;;) {
		int fd = agent_listen_accept(ch->listen_fd);

		if (fd < 0)
			return;
		if (ch->npending >= PENDING_MAX) {
			log_warn("stdio: %d connections in handshake, refusing one", PENDING_MAX);
			(void)answer(fd, "ERR busy too many connections in handshake");
			safe_close(fd);
			continue;
		}
		if (pending_add(ch, fd) < 0)
			log_warn("stdio: cannot take a connection");
	}
}

/* ------------------------------------------------------------------------ */
/* Channel                                                                   */

/* vsockfwd.ko unless told otherwise or absent: then the relay, said once. */
static int open_vsockfwd(const struct agent_config *cfg)
{
	int fd;

	if (!cfg->stdio_kernel) {
		log_info("stdio: user-space relay (husk.stdio=user)");
		return -1;
	}
	fd = open(VSOCKFWD_DEV, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		log_info("stdio: %s: %m; using the user-space relay", VSOCKFWD_DEV);
	else
		log_info("stdio: forwarding with vsockfwd.ko");
	return fd;
}

int agent_stdio_start(struct agent *agent, struct husk_error *err)
{
	struct stdio_channel *ch;
	int r;

	if (agent->cfg.stdio_listen.kind == AGENT_LISTEN_NONE)
		return 0;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return husk_error_set(err, ENOMEM, "stdio channel: out of memory");
	ch->agent = agent;
	ch->vsockfwd_fd = -1;
	agent->stdio = ch;
	ch->listen_fd = agent_listen_open(&agent->cfg.stdio_listen, err);
	if (ch->listen_fd < 0)
		return ch->listen_fd;
	r = loop_add(agent->loop, ch->listen_fd, EPOLLIN, on_listen, ch, &ch->listen_src, err);
	if (r < 0)
		return r;
	return 0;
}

void agent_stdio_stop(struct agent *agent)
{
	struct stdio_channel *ch = agent->stdio;

	if (!ch)
		return;
	while (ch->pending)
		pending_free(ch->pending);
	while (ch->forwards)
		forward_free(ch->forwards);
	loop_remove(agent->loop, ch->listen_src);
	safe_close(ch->listen_fd);
	safe_close(ch->vsockfwd_fd);
	free(ch);
	agent->stdio = NULL;
}
