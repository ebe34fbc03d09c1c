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
/* The 9p tag of husk_sandbox_config.shared_dir. */
#define SANDBOX_SHARED_TAG "husk-shared"

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

/* A container's host bind mounts below the shared directory (sandbox-mounts.c). */
struct host_binds {
	char *cid_dir;		/* SHARED/<cid> */
	char *dir;		/* SHARED/<cid>/mounts */
	char **points;		/* mounted entries of dir */
	size_t n;
};

struct husk_container {
	struct husk_sandbox *sb;
	struct husk_container *next;
	char *id;
	struct husk_process *procs;	/* init first */
	struct host_binds binds;
};

struct husk_sandbox {
	struct husk_vm *vm;
	struct agent_client agent;
	char *id;
	struct husk_vm_share *shares;	/* tags/paths owned */
	size_t n_shares;
	const struct husk_vm_share *shared;	/* shared_dir's share, NULL: none */
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

/*
 * sandbox-mounts.c.  A host bind mount: type "bind" or a bind/rbind option
 * (runc's rule); its source is a host path.
 */
bool mount_is_bind(const Grpc__Mount *m);
/* A bind from the guest's own tree instead: husk's extension, in options. */
#define MOUNT_OPT_GUEST "husk.guest"
bool mount_is_host_bind(const Grpc__Mount *m);
size_t spec_host_binds(const Grpc__Spec *spec);
/* Every bind source absolute and existing; errors name what: mounts[i].source. */
int spec_check_host_binds(const Grpc__Spec *spec, const char *what, struct husk_error *err);

/* The spec's mounts as the agent gets them (strings borrowed from the spec). */
struct guest_mounts {
	Grpc__Mount *copies;
	Grpc__Mount **ptrs;	/* what Spec.mounts points at */
	char **sources;		/* owned: guest_dir/<i> of each host bind */
	char ***options;	/* owned arrays: options without MOUNT_OPT_GUEST */
	size_t n;
};

/*
 * Copies of spec's mounts whose host bind sources become guest_dir/<i>
 * (guest binds lose MOUNT_OPT_GUEST).
 */
int guest_mounts_build(const Grpc__Spec *spec, const char *guest_dir,
		       struct guest_mounts *gm, struct husk_error *err);
void guest_mounts_release(struct guest_mounts *gm);

/* Bind each host bind source on SHARED/<cid>/mounts/<i>; undo with teardown (also after failure). */
int host_binds_setup(struct host_binds *hb, const char *shared_dir, const char *cid,
		     const Grpc__Spec *spec, struct husk_error *err);
void host_binds_teardown(struct host_binds *hb);

/* sandbox-container.c */
void container_free(struct husk_container *ctr);

/* sandbox-oom.c: join the OOM thread (the agent connection must be dead). */
bool sandbox_oom_watching(const struct husk_sandbox *sb);
void sandbox_oom_stop(struct husk_sandbox *sb);

/* container-stats.c: the guest's reply (absent parts read as 0). */
void container_stats_from_reply(const Grpc__StatsContainerResponse *resp,
				struct husk_container_stats *st);

#endif
