// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A StatsContainer reply -> struct husk_container_stats.  The reply comes
 * from the guest: protobuf-c decoded it, but any sub-message may be absent,
 * so every pointer is checked before it is read.
 */
#include <string.h>

#include "sandbox-internal.h"

static void memory_stats(const Grpc__MemoryStats *m, struct husk_container_stats *st)
{
	if (!m)
		return;
	st->memory_cache = m->cache;
	if (!m->usage)
		return;
	st->memory_usage = m->usage->usage;
	st->memory_max_usage = m->usage->max_usage;
	st->memory_failcnt = m->usage->failcnt;
	st->memory_limit = m->usage->limit;
}

static void cpu_stats(const Grpc__CpuStats *c, struct husk_container_stats *st)
{
	if (!c || !c->cpu_usage)
		return;
	st->cpu_usage_ns = c->cpu_usage->total_usage;
	st->cpu_user_ns = c->cpu_usage->usage_in_usermode;
	st->cpu_kernel_ns = c->cpu_usage->usage_in_kernelmode;
}

void container_stats_from_reply(const Grpc__StatsContainerResponse *resp,
				struct husk_container_stats *st)
{
	const Grpc__CgroupStats *cg = resp ? resp->cgroup_stats : NULL;

	memset(st, 0, sizeof(*st));
	if (!cg)
		return;
	memory_stats(cg->memory_stats, st);
	cpu_stats(cg->cpu_stats, st);
	if (cg->pids_stats) {
		st->pids_current = cg->pids_stats->current;
		st->pids_limit = cg->pids_stats->limit;
	}
}
