/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's state: one loop, one runtime, one ttRPC server, and the
 * per-process bookkeeping the RPC handlers need for deferred replies
 * (WaitProcess, ReadStdout/ReadStderr, GetOOMEvent).
 */
#ifndef HUSK_AGENT_AGENT_H
#define HUSK_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include <husk-common/ttrpc.h>

#include "config.h"
#include "loop.h"
#include "runtime/runtime.h"

struct agent_conn;
struct agent_process;
struct agent_oom;
struct log_reader;
struct pending_entry;
struct stdio_channel;

struct agent_sandbox {
	bool created;
	char id[RUNTIME_ID_MAX + 1];
	char hostname[65];
};

struct agent {
	struct agent_config cfg;
	struct agent_loop *loop;
	struct runtime *rt;
	struct husk_ttrpc_server *srv;

	int listen_fd;
	int spare_fd;				/* given up to refuse a client at EMFILE */
	struct loop_source *listen_src;
	int signal_fd;
	struct loop_source *signal_src;
	int log_listen_fd;
	struct loop_source *log_listen_src;
	struct log_reader *log_readers;
	struct stdio_channel *stdio;		/* port 1027 listener and forwarders */

	struct agent_conn *conns;		/* open ttRPC connections */
	struct agent_process *procs;		/* processes the server tracks */
	struct pending_entry *pending;		/* runtime ops in flight (pending.c) */
	struct agent_oom *oom;			/* memory.events watcher */
	struct agent_sandbox sandbox;

	pid_t modules_pid;			/* out-of-tree modules loading, or 0 */
	bool destroying;			/* DestroySandbox answered: stop */
	int exit_status;
};

/* main.c: wait until the out-of-tree modules (vsockfwd.ko) are loaded,
 * blocking: the stdio channel asks before its first stream. */
void agent_wait_modules(struct agent *agent);

/* main.c: leave the loop (DestroySandbox, fatal error); main powers off or exits. */
void agent_request_shutdown(struct agent *agent, int status);

/* server.c: listener and connections. */
int agent_server_start(struct agent *agent, struct husk_error *err);
void agent_server_stop(struct agent *agent);
/* Write what is queued on every connection, bounded by timeout_ms in total. */
void agent_server_flush(struct agent *agent, int timeout_ms);

/* signals.c: signalfd for SIGCHLD/SIGTERM/SIGINT/SIGPWR, reaping. */
int agent_signals_start(struct agent *agent, struct husk_error *err);
void agent_signals_stop(struct agent *agent);
/* Reap every exited child now. */
void agent_reap_children(struct agent *agent);
/* Shutdown: reap until no child is left or timeout_ms passed. */
void agent_reap_until_childless(int timeout_ms);

#endif
