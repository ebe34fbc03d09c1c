// SPDX-License-Identifier: LGPL-2.1-or-later
/* Process RPCs: exec, signal, wait, and the stdio calls for clients without stdio connections. */
#include <errno.h>
#include <signal.h>

#include "log.h"
#include "pending.h"
#include "process.h"
#include "rpc.h"

/* The exec'd process runs (or failed to): track it for its stdio and wait. */
static void exec_done(struct agent_pending *p, int r, const struct husk_error *err)
{
	struct runtime_process *proc = p->proc;
	struct husk_error terr = {};

	if (r == 0) {
		r = agent_process_track(p->agent, proc, &terr);
		err = &terr;
		if (r < 0)
			(void)runtime_signal(p->agent->rt, p->ctr, proc, SIGKILL, NULL);
	}
	if (r < 0)
		rpc_reply_error(p->call, r, err);
	else
		rpc_reply_ok(p->call);
}

RPC_HANDLER(exec_process)
{
	const Grpc__ExecProcessRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	struct runtime_container *ctr = rpc_container(agent, call, req->container_id);
	struct process_config *pc = NULL;
	struct runtime_op *op;
	struct husk_error err = {};
	int r;

	if (!ctr || !rpc_check_id(call, req->exec_id, "exec_id"))
		return;
	if (req->string_user && (req->string_user->uid[0] || req->string_user->gid[0])) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_UNIMPLEMENTED,
					     "string_user: not supported by husk-agent");
		return;
	}
	if (!req->process) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT, "process: missing");
		return;
	}
	if (runtime_container_state(ctr) != RUNTIME_RUNNING) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_FAILED_PRECONDITION,
					     "container %s: not running", req->container_id);
		return;
	}
	if (runtime_process_find(ctr, req->exec_id)) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_ALREADY_EXISTS,
					     "exec_id: process %s already exists in container %s",
					     req->exec_id, req->container_id);
		return;
	}
	r = runtime_process_parse(req->process, &pc, &err);
	if (r < 0) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT, "%s", err.msg);
		return;
	}
	r = runtime_exec_begin(agent->rt, ctr, req->exec_id, pc, &op, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	agent_pending_watch(agent, op, call, exec_done, ctr, req->container_id);
}

RPC_HANDLER(signal_process)
{
	const Grpc__SignalProcessRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	struct runtime_container *ctr = rpc_container(agent, call, req->container_id);
	struct runtime_process *proc = NULL;
	struct husk_error err = {};
	int r;

	if (!ctr)
		return;
	if (req->signal == 0 || req->signal > (uint32_t)SIGRTMAX) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT,
					     "signal: %u is not a signal number", req->signal);
		return;
	}
	/* An empty exec_id addresses every process of the container. */
	if (req->exec_id[0]) {
		proc = rpc_process(agent, call, req->container_id, req->exec_id);
		if (!proc)
			return;
		if (proc->exited) {
			husk_ttrpc_call_reply_status(call, HUSK_TTRPC_NOT_FOUND,
						     "exec_id: process %s already exited",
						     req->exec_id);
			return;
		}
	}
	r = runtime_signal(agent->rt, ctr, proc, (int)req->signal, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	rpc_reply_ok(call);
}

RPC_HANDLER(wait_process)
{
	const Grpc__WaitProcessRequest *req = (const void *)msg;
	struct runtime_process *proc = rpc_process(userdata, call, req->container_id, req->exec_id);

	if (proc)
		agent_process_wait(agent_process_of(proc), call);
}

static void read_stream(struct agent *agent, struct husk_ttrpc_call *call,
			const Grpc__ReadStreamRequest *req, enum runtime_stream which)
{
	struct runtime_process *proc = rpc_process(agent, call, req->container_id, req->exec_id);

	if (!proc)
		return;
	if (req->len == 0) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT,
					     "len: must be greater than 0");
		return;
	}
	agent_process_read(agent_process_of(proc), which, req->len, call);
}

RPC_HANDLER(read_stdout)
{
	read_stream(userdata, call, (const void *)msg, RUNTIME_STDOUT);
}

RPC_HANDLER(read_stderr)
{
	read_stream(userdata, call, (const void *)msg, RUNTIME_STDERR);
}

RPC_HANDLER(write_stdin)
{
	const Grpc__WriteStreamRequest *req = (const void *)msg;
	struct runtime_process *proc = rpc_process(userdata, call, req->container_id, req->exec_id);

	if (proc)
		agent_process_write(agent_process_of(proc), req->data.data, req->data.len, call);
}

RPC_HANDLER(close_stdin)
{
	const Grpc__CloseStdinRequest *req = (const void *)msg;
	struct runtime_process *proc = rpc_process(userdata, call, req->container_id, req->exec_id);

	if (!proc)
		return;
	agent_process_close_stdin(agent_process_of(proc));
	rpc_reply_ok(call);
}

RPC_HANDLER(tty_win_resize)
{
	const Grpc__TtyWinResizeRequest *req = (const void *)msg;
	struct runtime_process *proc = rpc_process(userdata, call, req->container_id, req->exec_id);
	struct husk_error err = {};
	int r;

	if (!proc)
		return;
	if (req->row > UINT16_MAX || req->column > UINT16_MAX) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT,
					     "row/column: %ux%u exceeds 65535", req->row, req->column);
		return;
	}
	r = runtime_process_resize_tty(proc, (uint16_t)req->row, (uint16_t)req->column, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	rpc_reply_ok(call);
}
