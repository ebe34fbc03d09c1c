/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * RPC handlers of grpc.AgentService and grpc.Health.  Each handler
 * validates its request at the edge (ids, lengths, ranges; errors name the
 * field), answers with the right gRPC status code, or parks the call for a
 * deferred reply.  The helpers below answer the call themselves when they
 * fail, so a handler reads as a straight line of lookups.
 */
#ifndef HUSK_AGENT_RPC_H
#define HUSK_AGENT_RPC_H

#include <stddef.h>

#include <husk-common/ttrpc.h>

#include "agent.h"
#include "agent.pb-c.h"
#include "health.pb-c.h"

#define RPC_SERVICE_AGENT "grpc.AgentService"
#define RPC_SERVICE_HEALTH "grpc.Health"

extern const struct husk_ttrpc_method agent_methods[];
extern const size_t agent_n_methods;

#define RPC_HANDLER(name) \
	void rpc_##name(struct husk_ttrpc_call *call, const ProtobufCMessage *msg, void *userdata)

/* Answer Empty. */
void rpc_reply_ok(struct husk_ttrpc_call *call);
/* Answer the status that matches r (-errno) with err's message. */
void rpc_reply_error(struct husk_ttrpc_call *call, int r, const struct husk_error *err);

/* id must be a valid id; else INVALID_ARGUMENT naming field, returns false. */
bool rpc_check_id(struct husk_ttrpc_call *call, const char *id, const char *field);

/* Container `id` (field "container_id"), or NULL after answering. */
struct runtime_container *rpc_container(struct agent *agent, struct husk_ttrpc_call *call,
					const char *id);

/* A live process of a container, or NULL after answering NOT_FOUND/INVALID_ARGUMENT. */
struct runtime_process *rpc_process(struct agent *agent, struct husk_ttrpc_call *call,
				    const char *container_id, const char *exec_id);

/* Handlers, grouped by file. */
RPC_HANDLER(health_check);
RPC_HANDLER(health_version);

RPC_HANDLER(create_container);
RPC_HANDLER(start_container);
RPC_HANDLER(remove_container);
RPC_HANDLER(update_container);
RPC_HANDLER(stats_container);
RPC_HANDLER(pause_container);
RPC_HANDLER(resume_container);
RPC_HANDLER(list_processes);

RPC_HANDLER(exec_process);
RPC_HANDLER(signal_process);
RPC_HANDLER(wait_process);
RPC_HANDLER(write_stdin);
RPC_HANDLER(read_stdout);
RPC_HANDLER(read_stderr);
RPC_HANDLER(close_stdin);
RPC_HANDLER(tty_win_resize);

RPC_HANDLER(create_sandbox);
RPC_HANDLER(destroy_sandbox);
RPC_HANDLER(get_guest_details);
RPC_HANDLER(set_guest_date_time);
RPC_HANDLER(online_cpu_mem);
RPC_HANDLER(copy_file);
RPC_HANDLER(get_oom_event);

RPC_HANDLER(list_interfaces);
RPC_HANDLER(list_routes);
RPC_HANDLER(update_interface);
RPC_HANDLER(update_routes);
RPC_HANDLER(add_arp_neighbors);

#endif
