/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OOM events: each container's memory.events is watched with inotify; a
 * rise of its oom_kill count becomes an event that answers a parked
 * GetOOMEvent call, or waits (bounded queue) for the next one.
 */
#ifndef HUSK_AGENT_OOM_H
#define HUSK_AGENT_OOM_H

#include "agent.h"

int agent_oom_start(struct agent *agent, struct husk_error *err);
void agent_oom_stop(struct agent *agent);

/* Start/stop watching ctr; a cgroup without memory controller is skipped. */
void agent_oom_watch(struct agent *agent, struct runtime_container *ctr);
void agent_oom_unwatch(struct agent *agent, struct runtime_container *ctr);

#endif
