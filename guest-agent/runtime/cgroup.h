/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cgroup v2 for containers: one leaf per container at
 * <root>/husk/<sandbox>/<container>, limits, freeze, kill, stats.
 * Private to the runtime.
 */
#ifndef HUSK_AGENT_RUNTIME_CGROUP_H
#define HUSK_AGENT_RUNTIME_CGROUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "runtime.h"
#include "spec.h"

/*
 * Make the container's leaf (it must not exist yet), enabling on the way
 * every controller the parents offer.  *leaf is the malloc'ed path.
 */
int cgroup_create(const char *root, const char *sandbox, const char *id,
		  char **leaf, struct husk_error *err);

/* rmdir the leaf, then its sandbox directory if that is now empty. */
int cgroup_remove(const char *leaf, struct husk_error *err);

/* Write the limits rc asks for; a missing controller is an error naming it. */
int cgroup_apply_resources(const char *leaf, const struct resources_config *rc,
			   struct husk_error *err);

/* Open <leaf>/cgroup.procs for writing (the child writes "0" to join). */
int cgroup_open_procs(const char *leaf, struct husk_error *err);

int cgroup_read_pids(const char *leaf, pid_t **pids, size_t *n,
		     struct husk_error *err);

/* SIGKILL through cgroup.kill when the kernel has it, else pid by pid. */
int cgroup_signal_all(const char *leaf, int sig, struct husk_error *err);

int cgroup_freeze(const char *leaf, bool frozen, struct husk_error *err);

/* true when cgroup.events says "populated 0". */
bool cgroup_is_empty(const char *leaf);

int cgroup_read_stats(const char *leaf, struct runtime_stats *st,
		      struct husk_error *err);

/* Read one "key value" line of a flat-keyed file such as memory.events. */
int cgroup_read_key(const char *leaf, const char *file, const char *key,
		    uint64_t *value);

#endif
