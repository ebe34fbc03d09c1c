// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "pending.h"

struct pending_entry {
	struct agent_pending p;
	struct runtime_op *op;
	agent_pending_fn done;
	struct loop_source *src;
	struct pending_entry *next;
};

static void pending_unlink(struct pending_entry *e)
{
	for (struct pending_entry **pp = &e->p.agent->pending; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			return;
		}
	}
}

/* Take the results, let go of the op, then report r. */
static void pending_end(struct pending_entry *e, int r, const struct husk_error *err)
{
	loop_remove(e->p.agent->loop, e->src);
	pending_unlink(e);
	if (r == 0) {
		if (!e->p.ctr)
			e->p.ctr = runtime_op_container(e->op);
		e->p.proc = runtime_op_process(e->op);
	}
	runtime_op_free(e->op);
	e->done(&e->p, r, err);
	free(e);
}

static void on_op(struct agent_loop *loop, struct loop_source *src, uint32_t events,
		  void *data)
{
	struct pending_entry *e = data;
	struct husk_error err = {};
	int r = runtime_op_advance(e->op, &err);

	if (r != -EINPROGRESS)
		pending_end(e, r, &err);
}

void agent_pending_watch(struct agent *agent, struct runtime_op *op,
			 struct husk_ttrpc_call *call, agent_pending_fn done,
			 struct runtime_container *ctr, const char *id)
{
	struct pending_entry *e = calloc(1, sizeof(*e));
	struct husk_error err = {};
	struct agent_pending p = { .agent = agent, .call = call, .ctr = ctr };
	int r;

	snprintf(p.id, sizeof(p.id), "%s", id);
	if (!e) {
		runtime_op_free(op);
		done(&p, husk_error_set(&err, ENOMEM, "container %s: out of memory", id), &err);
		return;
	}
	e->p = p;
	e->op = op;
	e->done = done;
	r = loop_add(agent->loop, runtime_op_fd(op), EPOLLIN, on_op, e, &e->src, &err);
	if (r < 0) {
		/* cancel first: a create must be undone before it reports */
		runtime_op_free(op);
		done(&e->p, r, &err);
		free(e);
		return;
	}
	e->next = agent->pending;
	agent->pending = e;
}

void agent_pending_cancel_all(struct agent *agent)
{
	while (agent->pending) {
		struct pending_entry *e = agent->pending;
		struct husk_error err = {};

		log_info("container %s: cancelling a pending operation", e->p.id);
		husk_error_set(&err, ECANCELED, "container %s: the agent is stopping", e->p.id);
		loop_remove(agent->loop, e->src);
		agent->pending = e->next;
		/* undo first (a create kills what it made), then answer */
		runtime_op_free(e->op);
		e->done(&e->p, -ECANCELED, &err);
		free(e);
	}
}
