/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libhusk sandbox internals shared by sandbox*.c. */
#ifndef HUSK_LIB_SANDBOX_INTERNAL_H
#define HUSK_LIB_SANDBOX_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "agent-client.h"
#include "husk/husk.h"
#include "oci-spec.h"

/* Where the agent mounts a container's rootfs share (Kata: /run/kata-containers). */
#define SANDBOX_GUEST_CONTAINERS "/run/husk/containers"

struct husk_process {
	struct husk_container *ctr;
	struct husk_process *next;
	char *exec_id;
	bool terminal;

	/* Library ends of the caller's stdio socketpairs, -1 when absent. */
	int stdin_src, stdout_sink, stderr_sink;
	/* Stdio channel connections (stdio-channel.h), -1 where the RPCs carry the stream. */
	int stdin_chan, stdout_chan, stderr_chan;
	pthread_t stdin_thread, stdout_thread, stderr_thread, wait_thread;
	bool stdin_started, stdout_started, stderr_started, wait_started;
	int stop_efd;		/* tells the stdin relay to give up */
	int exit_efd;		/* readable once exit status (or failure) is known */

	pthread_mutex_t lock;
	bool exited;
	int status;
	struct husk_error wait_err;	/* code != 0 when waiting failed */
};

struct husk_container {
	struct husk_sandbox *sb;
	struct husk_container *next;
	char *id;
	struct husk_process *procs;	/* init first */
};

struct husk_sandbox {
	struct husk_vm *vm;
	struct agent_client agent;
	char *id;
	struct husk_vm_share *shares;	/* tags/paths owned */
	size_t n_shares;
	struct husk_sandbox_timings timings;
	struct husk_container *containers;
	struct sandbox_oom *oom;	/* husk_sandbox_watch_oom()'s thread and queue */
};

/* sandbox-stdio.c */
int process_new(struct husk_container *ctr, const char *exec_id, bool terminal,
		const struct husk_process_options *opts, struct husk_stdio *stdio,
		struct husk_process **proc_out, struct husk_error *err);
/* Start moving bytes (after the agent knows the process). */
int process_start_relays(struct husk_process *proc, struct husk_error *err);
/* Start waiting for the exit (after the process runs). */
int process_start_waiter(struct husk_process *proc, struct husk_error *err);
/* Ask the stdin relay to stop, join every thread, free. */
void process_free(struct husk_process *proc);

/*
 * sandbox.c: the share a spec's rootfs travels in (NULL when not shared);
 * *subdir is "" when the share is the rootfs, else its path inside the share.
 */
const struct husk_vm_share *sandbox_share_for(const struct husk_sandbox *sb,
					      const struct husk_spec *spec,
					      const char **subdir);

/* sandbox-container.c */
void container_free(struct husk_container *ctr);

/* sandbox-oom.c: join the OOM thread (the agent connection must be dead). */
bool sandbox_oom_watching(const struct husk_sandbox *sb);
void sandbox_oom_stop(struct husk_sandbox *sb);

/* container-stats.c: the guest's reply (absent parts read as 0). */
void container_stats_from_reply(const Grpc__StatsContainerResponse *resp,
				struct husk_container_stats *st);

#endif
