/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runtime operations in flight (create, start, exec, remove): each one's
 * fd sits in the agent's loop, and the RPC that started it is answered
 * from the loop when it ends, so a container being set up or killed never
 * holds up other requests (deferred replies, see husk-common/ttrpc.h).
 */
#ifndef HUSK_AGENT_PENDING_H
#define HUSK_AGENT_PENDING_H

#include "agent.h"

struct agent_pending {
	struct agent *agent;
	struct husk_ttrpc_call *call;		/* answered by done */
	/* the container (for a create: the new one once it succeeded) */
	struct runtime_container *ctr;
	struct runtime_process *proc;		/* an exec's new process, once it runs */
	char id[RUNTIME_ID_MAX + 1];		/* the request's container id */
};

/*
 * Called once with the op's result (-ECANCELED when the agent stops),
 * after the op is freed, so every fd it held is closed before the reply.
 */
typedef void (*agent_pending_fn)(struct agent_pending *p, int r, const struct husk_error *err);

/*
 * Drive op from the loop; done answers call.  If the op cannot be watched
 * it is cancelled and done runs at once with the error.
 */
void agent_pending_watch(struct agent *agent, struct runtime_op *op,
			 struct husk_ttrpc_call *call, agent_pending_fn done,
			 struct runtime_container *ctr, const char *id);

/* Shutdown: cancel every pending op (its done runs with -ECANCELED). */
void agent_pending_cancel_all(struct agent *agent);

#endif
