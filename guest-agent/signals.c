// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Signals arrive through a signalfd on the loop, never in async handlers.
 * SIGCHLD reaps every child, including orphans reparented to the agent
 * (PID 1 or child subreaper), and hands container exits to the runtime.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "agent.h"
#include "log.h"

static void signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGPWR);
}

void agent_reap_children(struct agent *agent)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid <= 0)
			break;
		if (pid == agent->modules_pid) {
			agent->modules_pid = 0;
			if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
				log_warn("module loader: not every out-of-tree module loaded");
			continue;
		}
		/* After runtime_free() (shutdown) every child is just reaped. */
		if (!agent->rt || !runtime_child_exited(agent->rt, pid, status))
			log_debug("reaped pid %d (status 0x%x)", pid, status);
	}
}

void agent_reap_until_childless(int timeout_ms)
{
	for (int waited = 0;; waited += 10) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);

		if (pid > 0)
			continue;
		if (pid < 0 || waited >= timeout_ms)	/* ECHILD: nobody left */
			return;
		usleep(10 * 1000);
	}
}

static void on_termination(struct agent *agent, const struct signalfd_siginfo *si)
{
	const char *name = strsignal(si->ssi_signo);

	if (si->ssi_signo == SIGPWR) {
		log_info("%s from pid %u: shutting down", name, si->ssi_pid);
		agent_request_shutdown(agent, 0);
		return;
	}
	/* PID 1 must outlive every stray kill; only DestroySandbox/SIGPWR stop it. */
	if (agent->cfg.pid1) {
		log_info("ignoring %s from pid %u (PID 1)", name, si->ssi_pid);
		return;
	}
	log_info("%s from pid %u: exiting", name, si->ssi_pid);
	agent_request_shutdown(agent, 0);
}

static void on_signal(struct agent_loop *loop, struct loop_source *src, uint32_t events,
		      void *data)
{
	struct agent *agent = data;
	struct signalfd_siginfo si;
	bool reap = false;

	for (;;) {
		ssize_t n = read(agent->signal_fd, &si, sizeof(si));

		if (n != (ssize_t)sizeof(si)) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				log_error("signalfd read: %m");
			break;
		}
		if (si.ssi_signo == SIGCHLD)
			reap = true;
		else
			on_termination(agent, &si);
	}
	/* Coalesced SIGCHLDs: one pass collects every exited child. */
	if (reap)
		agent_reap_children(agent);
}

int agent_signals_start(struct agent *agent, struct husk_error *err)
{
	sigset_t set;
	int r;

	/* A client or process that went away must not kill the agent with SIGPIPE. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return husk_error_seterrno(err, errno, "ignoring SIGPIPE");
	signal_set(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return husk_error_seterrno(err, errno, "blocking signals");
	agent->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (agent->signal_fd < 0)
		return husk_error_seterrno(err, errno, "signalfd");
	r = loop_add(agent->loop, agent->signal_fd, EPOLLIN, on_signal, agent,
		     &agent->signal_src, err);
	if (r < 0) {
		agent->signal_fd = safe_close(agent->signal_fd);
		return r;
	}
	return 0;
}

void agent_signals_stop(struct agent *agent)
{
	loop_remove(agent->loop, agent->signal_src);
	agent->signal_src = NULL;
	agent->signal_fd = safe_close(agent->signal_fd);
}
