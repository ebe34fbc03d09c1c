// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk-agent: PID 1 of the guest (or a plain process for host tests).
 * Straight line: settings, PID-1 setup, runtime, signals, server, loop;
 * on the way out: flush replies, remove containers, power off or exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "agent.h"
#include "config.h"
#include "init.h"
#include "log.h"
#include "logstream.h"
#include "oom.h"
#include "pending.h"
#include "process.h"
#include "stdio-channel.h"

/* Time the last replies (DestroySandbox's) get to reach the host. */
#define SHUTDOWN_FLUSH_MS 2000
/* Time killed container processes get to finish dying and be reaped. */
#define SHUTDOWN_REAP_MS 2000

void agent_request_shutdown(struct agent *agent, int status)
{
	agent->destroying = true;
	agent->exit_status = status;
	loop_stop(agent->loop);
}

static void read_kernel_cmdline(struct agent_config *cfg)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/cmdline", "re");
	char line[4096];
	struct husk_error err = {};

	if (!f || !fgets(line, sizeof(line), f))
		return;
	if (agent_config_parse_cmdline(cfg, line, &err) < 0)
		log_warn("kernel command line: %s (ignored)", err.msg);
}

void agent_wait_modules(struct agent *agent)
{
	int status;

	if (agent->modules_pid <= 0)
		return;
	if (waitpid(agent->modules_pid, &status, 0) == agent->modules_pid &&
	    !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		log_warn("module loader: not every out-of-tree module loaded");
	agent->modules_pid = 0;
}

/* The guest's boot duties; each step logs its own trouble and boot goes on. */
static void pid1_setup(struct agent_config *cfg)
{
	agent_init_mounts();
	read_kernel_cmdline(cfg);
	agent_log_set_level(cfg->log_level);
	agent_init_cgroup_controllers("/sys/fs/cgroup");
	agent_init_modules(AGENT_MODULE_LIST, AGENT_MODULES_BOOT);
	agent_init_loopback();
}

static int agent_start(struct agent *agent, struct husk_error *err)
{
	struct runtime_options ropts = {
		.cgroup_root = agent->cfg.cgroup_root,
		.on_exit = agent_process_on_exit,
		.userdata = agent,
	};
	int r;

	r = loop_new(&agent->loop, err);
	if (r < 0)
		return r;
	r = agent_signals_start(agent, err);
	if (r < 0)
		return r;
	r = runtime_new(&ropts, &agent->rt, err);
	if (r < 0)
		return r;
	r = agent_oom_start(agent, err);
	if (r < 0)
		return r;
	/* No log stream is no reason to stop serving. */
	r = agent_logstream_start(agent, err);
	if (r < 0) {
		log_warn("log stream: %s", err->msg);
		husk_error_clear(err);
	}
	r = agent_stdio_start(agent, err);
	if (r < 0)
		return r;
	return agent_server_start(agent, err);
}

static void agent_stop(struct agent *agent)
{
	agent_pending_cancel_all(agent);
	if (agent->srv)
		agent_server_flush(agent, SHUTDOWN_FLUSH_MS);
	agent_process_untrack_all(agent);
	if (agent->loop)
		agent_stdio_stop(agent);
	agent_oom_stop(agent);
	if (agent->loop)
		agent_logstream_stop(agent);
	if (agent->srv)
		agent_server_stop(agent);
	runtime_free(agent->rt);
	agent->rt = NULL;
	agent_reap_until_childless(SHUTDOWN_REAP_MS);
	if (agent->loop)
		agent_signals_stop(agent);
	loop_free(agent->loop);
	agent->loop = NULL;
}

int main(int argc, char **argv)
{
	struct agent agent = {
		.listen_fd = -1, .spare_fd = -1, .signal_fd = -1, .log_listen_fd = -1,
	};
	struct husk_error err = {};
	bool pid1 = getpid() == 1;
	char where[128];
	int r;

	/*
	 * Flags are read twice: first to choose the log sink and reject a bad
	 * command line before anything happens, then again after the kernel
	 * command line, so that they win over it (a PID 1 tested on a host).
	 */
	agent_config_defaults(&agent.cfg, pid1);
	r = agent_config_parse_args(&agent.cfg, argc, argv, &err);
	if (r != 0) {
		if (r < 0)
			fprintf(stderr, "husk-agent: %s\n", err.msg);
		if (pid1)
			agent_shutdown(true, 1);
		return r < 0 ? 2 : 0;
	}
	agent_log_open(pid1 && !agent.cfg.log_stderr, agent.cfg.log_level);
	if (pid1) {
		pid1_setup(&agent.cfg);
		(void)agent_config_parse_args(&agent.cfg, argc, argv, NULL);
		agent_log_set_level(agent.cfg.log_level);
	}

	r = agent_start(&agent, &err);
	if (r < 0) {
		log_error("cannot serve: %s", err.msg);
		agent_stop(&agent);
		agent_shutdown(pid1, 1);
	}
	log_info("husk-agent %s serving on %s", HUSK_VERSION,
		 agent_endpoint_text(&agent.cfg.listen, where, sizeof(where)));
	/* The host waits for the answer above; vsockfwd.ko loads meanwhile. */
	if (pid1)
		agent.modules_pid = agent_init_modules_async(AGENT_MODULE_LIST);

	r = loop_run(agent.loop);
	if (r < 0)
		agent.exit_status = 1;
	log_info("shutting down");
	agent_stop(&agent);
	agent_shutdown(pid1, agent.exit_status);
}
