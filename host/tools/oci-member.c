// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A pod member's monitor: the host process standing for a container that
 * runs in another container's VM.  create forks it; it asks the sandbox's
 * init monitor to create the container ("join") and gets its stdio fds,
 * then, like the init monitor, relays that stdio, forwards the signals it
 * gets, answers start/kill/ps/pause/resume/update/stats/delete on its own
 * control socket (passing all but delete on to the sandbox's monitor) and
 * exits with the container's status.
 * Before exiting it has the container removed from the VM; if the
 * sandbox's monitor goes away first, it exits 137.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "oci.h"

#define EXIT_KILLED (128 + SIGKILL)
/* The sandbox's monitor removes the container (kill, RemoveContainer) within this. */
#define REMOVE_TIMEOUT_S 30

struct member {
	const char *id, *sandbox;
	int dir_fd, owner, listen_fd, signal_fd;
	struct oci_stdio io;
	struct oci_relay relay;
	bool started, exited;
	int status;
};

/* Whether sig's default action ends a process (what a never-started init would do). */
static bool signal_terminates(int sig)
{
	switch (sig) {
	case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:
	case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
		return false;
	default:
		return true;
	}
}

/* An "exit N" from the sandbox's monitor, or its hang-up (the VM is gone). */
static void note_exit(struct member *mb, const char *msg, ssize_t n)
{
	if (n <= 0 || sscanf(msg, "exit %d", &mb->status) != 1)
		mb->status = EXIT_KILLED;
	mb->exited = true;
	if (n <= 0)
		mb->owner = safe_close(mb->owner);
}

/* Send a request of len bytes to the sandbox's monitor, wait for its reply ("ok"/"err"). */
static int owner_call(struct member *mb, const char *request, size_t len, char *reply,
		      size_t size)
{
	ssize_t n;

	if (mb->owner < 0 || oci_ctl_send(mb->owner, request, len, NULL, 0) < 0) {
		snprintf(reply, size, "err 3 container not running");
		return -ESRCH;
	}
	for (;;) {
		n = oci_ctl_recv(mb->owner, reply, size, NULL, 0, NULL);
		if (n > 0 && !strncmp(reply, "exit ", 5)) {
			note_exit(mb, reply, n);
			continue;
		}
		if (n <= 0) {
			note_exit(mb, reply, n);
			snprintf(reply, size, "err 3 container not running");
			return -ESRCH;
		}
		return 0;
	}
}

/* Leave the VM (the sandbox's monitor removes the container), then exit. */
static void __attribute__((noreturn)) member_finish(struct member *mb, int status)
{
	struct timeval tv = { .tv_sec = REMOVE_TIMEOUT_S };
	char reply[256];

	oci_relay_close(&mb->relay);
	if (mb->owner >= 0) {
		(void)setsockopt(mb->owner, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)owner_call(mb, "remove", strlen("remove"), reply, sizeof(reply));
	}
	unlinkat(mb->dir_fd, OCI_CTL_SOCKET, 0);
	_exit(status);
}

static void reply(int conn, const char *text)
{
	(void)oci_ctl_send(conn, text, strlen(text), NULL, 0);
}

/* The verbs the sandbox's monitor answers for us (delete is ours alone). */
static bool forwarded_verb(const char *msg)
{
	static const char *const verbs[] = { "start", "ps", "pause", "resume", "update", "stats" };

	if (!strncmp(msg, "kill ", 5))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (!strcmp(msg, verbs[i]))
			return true;
	return false;
}

/* A verb's request: all but delete go on to the sandbox's monitor. */
static void handle_request(struct member *mb, int conn)
{
	struct timeval tv = { .tv_sec = 5 };
	/* update's JSON makes requests long; stats replies are long too. */
	_cleanup_free_ char *msg = malloc(OCI_CTL_MSG_MAX), *answer = malloc(OCI_CTL_MSG_MAX);
	int sig = 0, all = 0;
	ssize_t n;

	if (!msg || !answer)
		return;
	(void)setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = oci_ctl_recv(conn, msg, OCI_CTL_MSG_MAX, NULL, 0, NULL);
	if (n <= 0)
		return;
	oci_debug("member %s: request %s", mb->id, msg);
	if (!strcmp(msg, "delete")) {
		snprintf(answer, OCI_CTL_MSG_MAX, "ok %d", (int)getpid());
		reply(conn, answer);
		member_finish(mb, mb->exited ? mb->status : EXIT_KILLED);
	}
	if (sscanf(msg, "kill %d %d", &sig, &all) == 2 && !mb->started &&
	    signal_terminates(sig)) {
		/* A created init never ran: a deadly signal ends it without asking the guest. */
		reply(conn, "ok");
		member_finish(mb, 128 + sig);
	}
	if (!forwarded_verb(msg)) {
		snprintf(answer, OCI_CTL_MSG_MAX, "err %d %.64s: not supported for a container "
			 "in a pod sandbox's VM", EOPNOTSUPP, msg);
		reply(conn, answer);
		return;
	}
	if (owner_call(mb, msg, (size_t)n, answer, OCI_CTL_MSG_MAX) == 0 &&
	    !strcmp(msg, "start") && !strncmp(answer, "ok", 2))
		mb->started = true;
	reply(conn, answer);
}

static void handle_signal(struct member *mb)
{
	struct signalfd_siginfo si;
	struct winsize ws;
	char msg[64];

	if (read(mb->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGWINCH) {
		if (!mb->io.tty || ioctl(mb->io.out, TIOCGWINSZ, &ws) < 0 || !ws.ws_row)
			return;
		snprintf(msg, sizeof(msg), "resize %u %u", ws.ws_row, ws.ws_col);
	} else {
		if (!mb->started && signal_terminates((int)si.ssi_signo))
			member_finish(mb, 128 + (int)si.ssi_signo);
		snprintf(msg, sizeof(msg), "signal %u", si.ssi_signo);
	}
	if (mb->owner >= 0)
		(void)oci_ctl_send(mb->owner, msg, strlen(msg), NULL, 0);
}

static void __attribute__((noreturn)) member_loop(struct member *mb)
{
	enum { P_SIG = 3, P_LISTEN, P_OWNER, P_COUNT };
	struct pollfd pfd[P_COUNT];
	char msg[64];

	for (;;) {
		if (mb->exited && !oci_relay_output_open(&mb->relay))
			member_finish(mb, mb->status);
		oci_relay_pollfds(&mb->relay, pfd);
		pfd[P_SIG] = (struct pollfd){ .fd = mb->signal_fd, .events = POLLIN };
		pfd[P_LISTEN] = (struct pollfd){ .fd = mb->listen_fd, .events = POLLIN };
		pfd[P_OWNER] = (struct pollfd){ .fd = mb->exited ? -1 : mb->owner,
						.events = POLLIN };
		if (poll(pfd, P_COUNT, -1) < 0) {
			if (errno == EINTR)
				continue;
			oci_error("container %s: monitor poll: %m", mb->id);
			member_finish(mb, EXIT_KILLED);
		}
		oci_relay_handle(&mb->relay, pfd);
		if (pfd[P_SIG].revents)
			handle_signal(mb);
		if (pfd[P_OWNER].revents) {
			ssize_t n = oci_ctl_recv(mb->owner, msg, sizeof(msg), NULL, 0, NULL);

			note_exit(mb, msg, n);
			/* The VM went with its sandbox: nothing more will come out. */
			if (mb->owner < 0)
				oci_relay_close(&mb->relay);
		}
		if (pfd[P_LISTEN].revents) {
			int conn = accept4(mb->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (conn >= 0) {
				handle_request(mb, conn);
				close(conn);
			}
		}
	}
}

/* Ask the sandbox's monitor to create us in its VM; its reply carries our stdio. */
static int member_join(struct member *mb, const char *bundle, struct husk_error *err)
{
	struct husk_stdio stdio = { -1, -1, -1 };
	char req[PATH_MAX + 256], reply_msg[HUSK_ERROR_MSG_MAX + 32];
	size_t len = 0, n_fds = 0;
	struct winsize ws;
	int fds[3], code = EIO, off = 0;
	ssize_t n;

	mb->owner = oci_ctl_connect(oci_globals.root, mb->sandbox);
	if (mb->owner < 0)
		return husk_error_set(err, ESRCH, "container %s: joining sandbox %s: the "
				      "sandbox is not running", mb->id, mb->sandbox);
	len = (size_t)snprintf(req, sizeof(req), "join%cid=%s%cbundle=%s%ctty=%d", 0, mb->id,
			       0, bundle, 0, mb->io.tty) + 1;
	if (len + 32 > sizeof(req))
		return husk_error_set(err, ENAMETOOLONG, "bundle path too long");
	if (mb->io.tty && ioctl(mb->io.out, TIOCGWINSZ, &ws) == 0 && ws.ws_row)
		len += (size_t)snprintf(req + len, sizeof(req) - len, "size=%u %u", ws.ws_row,
					ws.ws_col) + 1;
	if (oci_ctl_send(mb->owner, req, len, NULL, 0) < 0)
		return husk_error_set(err, ESRCH, "container %s: joining sandbox %s: the "
				      "sandbox is not running", mb->id, mb->sandbox);
	n = oci_ctl_recv(mb->owner, reply_msg, sizeof(reply_msg), fds, 3, &n_fds);
	if (n <= 0)
		return husk_error_set(err, ESRCH, "container %s: joining sandbox %s: the "
				      "sandbox's monitor went away", mb->id, mb->sandbox);
	if (strncmp(reply_msg, "ok", 2) || n_fds < 2) {
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		sscanf(reply_msg, "err %d %n", &code, &off);
		return husk_error_set(err, code > 0 ? code : EIO, "container %s: joining sandbox "
				      "%s: %s", mb->id, mb->sandbox, reply_msg + off);
	}
	stdio.stdin_fd = fds[0];
	stdio.stdout_fd = fds[1];
	stdio.stderr_fd = n_fds == 3 ? fds[2] : -1;
	oci_relay_init(&mb->relay, &mb->io, &stdio);
	return 0;
}

void oci_member_main(const char *id, const char *bundle, const char *sandbox, int dir_fd,
		     struct oci_stdio *io, int ready_fd)
{
	struct member mb = {
		.id = id, .sandbox = sandbox, .io = *io, .owner = -1, .listen_fd = -1,
		.relay = { .from = { -1, -1, -1 }, .to = { -1, -1, -1 } },
	};
	struct husk_error err = { 0 };
	char msg[HUSK_ERROR_MSG_MAX + 32];
	int r;

	oci_globals.no_stderr = true;
	mb.dir_fd = oci_monitor_enter(dir_fd, io);
	mb.signal_fd = oci_monitor_signalfd();
	r = mb.dir_fd < 0 || mb.signal_fd < 0 ?
		husk_error_seterrno(&err, errno, "monitor setup") : member_join(&mb, bundle, &err);
	if (r == 0) {
		mb.listen_fd = oci_ctl_listen(mb.dir_fd);
		if (mb.listen_fd < 0)
			r = husk_error_seterrno(&err, -mb.listen_fd, "control socket");
	}
	if (r < 0) {
		snprintf(msg, sizeof(msg), "err %d %s", -r, err.msg);
		(void)!write(ready_fd, msg, strlen(msg));
		/* A refused join made nothing the sandbox's monitor would remove. */
		mb.owner = safe_close(mb.owner);
		member_finish(&mb, 1);
	}
	/* Nobody to tell (create was killed): nobody will ever delete us either. */
	if (write(ready_fd, "ok", 2) != 2)
		member_finish(&mb, EXIT_KILLED);
	close(ready_fd);
	member_loop(&mb);
}
