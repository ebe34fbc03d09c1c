// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <string.h>

#include "log.h"
#include "rpc.h"

#define AGENT_METHOD(name, type, fn) \
	{ RPC_SERVICE_AGENT, name, &grpc__##type##__descriptor, rpc_##fn }

const struct husk_ttrpc_method agent_methods[] = {
	{ RPC_SERVICE_HEALTH, "Check", &grpc__check_request__descriptor, rpc_health_check },
	{ RPC_SERVICE_HEALTH, "Version", &grpc__check_request__descriptor, rpc_health_version },

	AGENT_METHOD("CreateContainer", create_container_request, create_container),
	AGENT_METHOD("StartContainer", start_container_request, start_container),
	AGENT_METHOD("RemoveContainer", remove_container_request, remove_container),
	AGENT_METHOD("ExecProcess", exec_process_request, exec_process),
	AGENT_METHOD("SignalProcess", signal_process_request, signal_process),
	AGENT_METHOD("WaitProcess", wait_process_request, wait_process),
	AGENT_METHOD("ListProcesses", list_processes_request, list_processes),
	AGENT_METHOD("UpdateContainer", update_container_request, update_container),
	AGENT_METHOD("StatsContainer", stats_container_request, stats_container),
	AGENT_METHOD("PauseContainer", pause_container_request, pause_container),
	AGENT_METHOD("ResumeContainer", resume_container_request, resume_container),

	AGENT_METHOD("WriteStdin", write_stream_request, write_stdin),
	AGENT_METHOD("ReadStdout", read_stream_request, read_stdout),
	AGENT_METHOD("ReadStderr", read_stream_request, read_stderr),
	AGENT_METHOD("CloseStdin", close_stdin_request, close_stdin),
	AGENT_METHOD("TtyWinResize", tty_win_resize_request, tty_win_resize),

	AGENT_METHOD("UpdateInterface", update_interface_request, update_interface),
	AGENT_METHOD("UpdateRoutes", update_routes_request, update_routes),
	AGENT_METHOD("ListInterfaces", list_interfaces_request, list_interfaces),
	AGENT_METHOD("ListRoutes", list_routes_request, list_routes),
	AGENT_METHOD("AddARPNeighbors", add_arpneighbors_request, add_arp_neighbors),

	AGENT_METHOD("CreateSandbox", create_sandbox_request, create_sandbox),
	AGENT_METHOD("DestroySandbox", destroy_sandbox_request, destroy_sandbox),
	AGENT_METHOD("OnlineCPUMem", online_cpumem_request, online_cpu_mem),
	AGENT_METHOD("GetGuestDetails", guest_details_request, get_guest_details),
	AGENT_METHOD("SetGuestDateTime", set_guest_date_time_request, set_guest_date_time),
	AGENT_METHOD("CopyFile", copy_file_request, copy_file),
	AGENT_METHOD("GetOOMEvent", get_oomevent_request, get_oom_event),
};

const size_t agent_n_methods = sizeof(agent_methods) / sizeof(agent_methods[0]);

void rpc_reply_ok(struct husk_ttrpc_call *call)
{
	Grpc__Empty e = GRPC__EMPTY__INIT;

	husk_ttrpc_call_reply(call, &e.base, NULL);
}

/* The agent's reading of a few errnos the generic table leaves INTERNAL. */
static int status_of_errno(int errnum)
{
	switch (errnum) {
	case E2BIG:
	case ENAMETOOLONG:
		return HUSK_TTRPC_INVALID_ARGUMENT;
	case ENOTTY:		/* TtyWinResize on a process without a terminal */
	case EALREADY:
	case EPIPE:		/* stdin of a process that closed it */
		return HUSK_TTRPC_FAILED_PRECONDITION;
	default:
		return husk_ttrpc_code_from_errno(errnum);
	}
}

void rpc_reply_error(struct husk_ttrpc_call *call, int r, const struct husk_error *err)
{
	int errnum = r < 0 ? -r : r;

	husk_ttrpc_call_reply_status(call, status_of_errno(errnum), "%s",
				     err && err->msg[0] ? err->msg : strerror(errnum));
}

bool rpc_check_id(struct husk_ttrpc_call *call, const char *id, const char *field)
{
	struct husk_error err = {};

	if (runtime_id_validate(id, field, &err) == 0)
		return true;
	husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT, "%s", err.msg);
	return false;
}

struct runtime_container *rpc_container(struct agent *agent, struct husk_ttrpc_call *call,
					const char *id)
{
	struct runtime_container *ctr;

	if (!rpc_check_id(call, id, "container_id"))
		return NULL;
	ctr = runtime_container_find(agent->rt, id);
	if (!ctr)
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_NOT_FOUND,
					     "container_id: container %s not found", id);
	return ctr;
}

struct runtime_process *rpc_process(struct agent *agent, struct husk_ttrpc_call *call,
				    const char *container_id, const char *exec_id)
{
	struct runtime_container *ctr = rpc_container(agent, call, container_id);
	struct runtime_process *proc;

	if (!ctr || !rpc_check_id(call, exec_id, "exec_id"))
		return NULL;
	proc = runtime_process_find(ctr, exec_id);
	if (!proc || !proc->user) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_NOT_FOUND,
					     "exec_id: process %s of container %s not found",
					     exec_id, container_id);
		return NULL;
	}
	return proc;
}

RPC_HANDLER(health_check)
{
	Grpc__HealthCheckResponse resp = GRPC__HEALTH_CHECK_RESPONSE__INIT;
	struct agent *agent = userdata;

	resp.status = agent->destroying ? GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING :
		GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}

RPC_HANDLER(health_version)
{
	Grpc__VersionCheckResponse resp = GRPC__VERSION_CHECK_RESPONSE__INIT;

	/* The protocol is Kata's agent API subset; its version moves with husk's. */
	resp.grpc_version = (char *)HUSK_VERSION;
	resp.agent_version = (char *)HUSK_VERSION;
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}
