/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libhusk sandboxes and containers: a VM whose husk-agent answers, and the
 * containers it runs.  Included by husk.h; the conventions there hold here
 * (0 or -errno, optional struct husk_error, opaque handles, no printing).
 *
 * The flow of `husk run`:
 *
 *	husk_spec_from_bundle(dir, &spec, &err);	 or husk_spec_from_rootfs()
 *	husk_spec_set_args(spec, argv, &err);		 ... other overrides
 *	husk_sandbox_config_init(&cfg);  cfg.vm.kernel = ...;
 *	husk_sandbox_create(&cfg, spec, &sb, &err);	 VM up, agent answers
 *	husk_container_create(sb, "c0", spec, &stdio, &ctr, &err);
 *	husk_container_start(ctr, &err);
 *	... poll the stdio fds and husk_process_exit_fd(husk_container_process(ctr))
 *	husk_container_delete(ctr, &err);
 *	husk_sandbox_destroy(sb);
 *
 * Container stdio reaches the caller as plain fds (pipes).  Today library
 * threads move the bytes with the agent's ReadStdout/ReadStderr/WriteStdin
 * RPCs; the fds stay the interface when a faster channel replaces them.
 */
#ifndef HUSK_HUSK_SANDBOX_H
#define HUSK_HUSK_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct husk_error;

/* ---- OCI specs ---------------------------------------------------------- */

/* A validated OCI runtime spec plus the host directory of its rootfs. */
struct husk_spec;

/*
 * Read BUNDLE/config.json (strict: unknown keys, wrong types and
 * out-of-range numbers are errors naming the field, e.g.
 * "config.json: process.user.uid: expected an integer in 0..4294967295").
 * root.path is taken relative to the bundle.
 */
int husk_spec_from_bundle(const char *bundle_dir, struct husk_spec **spec_out,
			  struct husk_error *err);

/* Parse config.json text; root.path relative to base_dir. */
int husk_spec_from_json(const char *text, size_t len, const char *base_dir,
			struct husk_spec **spec_out, struct husk_error *err);

/*
 * A default spec for a plain root filesystem directory: /bin/sh as root in
 * /, PATH set, new pid/mount/ipc/uts namespaces, /proc, /dev, /dev/pts,
 * /dev/shm and /tmp mounted, the capabilities of `runc spec`.
 */
int husk_spec_from_rootfs(const char *rootfs_dir, struct husk_spec **spec_out,
			  struct husk_error *err);

void husk_spec_free(struct husk_spec *spec);

/* Overrides, as `husk run` flags apply them.  argv/env are copied. */
int husk_spec_set_args(struct husk_spec *spec, const char *const *argv,
		       struct husk_error *err);
/* "KEY=VALUE": replaces an entry with the same KEY, else appends. */
int husk_spec_set_env(struct husk_spec *spec, const char *kv, struct husk_error *err);
int husk_spec_set_cwd(struct husk_spec *spec, const char *cwd, struct husk_error *err);
void husk_spec_set_user(struct husk_spec *spec, uint32_t uid, uint32_t gid);
/* Also gives the container its own uts namespace. */
int husk_spec_set_hostname(struct husk_spec *spec, const char *hostname,
			   struct husk_error *err);
void husk_spec_set_terminal(struct husk_spec *spec, bool terminal);
bool husk_spec_terminal(const struct husk_spec *spec);
/* cgroup limits inside the guest: bytes; tasks (<= 0: unlimited). */
int husk_spec_set_memory_limit(struct husk_spec *spec, int64_t bytes,
			       struct husk_error *err);
int husk_spec_set_pids_limit(struct husk_spec *spec, int64_t limit,
			     struct husk_error *err);

/* The rootfs directory on the host (absolute) and whether it is read-only. */
const char *husk_spec_rootfs(const struct husk_spec *spec);
/*
 * Take the rootfs from dir instead (made canonical; must be a directory),
 * e.g. a bind mount of it inside a directory the sandbox already shares.
 */
int husk_spec_set_rootfs(struct husk_spec *spec, const char *dir, struct husk_error *err);
bool husk_spec_rootfs_readonly(const struct husk_spec *spec);
/*
 * How many of the spec's mounts bind a host path (type "bind", or a
 * "bind"/"rbind" option): they need husk_sandbox_config.shared_dir.
 */
size_t husk_spec_host_binds(const struct husk_spec *spec);

/* ---- sandboxes ---------------------------------------------------------- */

struct husk_sandbox;

struct husk_sandbox_config {
	/*
	 * The VM.  kernel is required; vsock NONE becomes VHOST_USER (the
	 * agent is reached over vsock); shares are added to the rootfs shares.
	 */
	struct husk_vm_config vm;
	const char *id;			/* sandbox id; NULL: the VM's name */
	const char *hostname;		/* guest hostname; NULL: none set */
	int agent_timeout_ms;		/* VM start to agent ready; default 60000 */
	/* -1 (default) or an fd whose readability makes the wait for the agent
	 * give up with -ECANCELED (husk run passes its signalfd). */
	int cancel_fd;
	/* Rootfs directories to share over virtio-9p besides spec's (below). */
	const struct husk_spec *const *specs;
	size_t n_specs;
	/*
	 * A host directory the VM shares as 9p tag "husk-shared" (read-write),
	 * where the host bind mounts of containers' specs are bound, at
	 * <shared_dir>/<container id>/mounts/<i> for mounts[i] (which needs
	 * CAP_SYS_ADMIN in the caller's mount namespace).  NULL: a spec with
	 * host bind mounts is refused.  It must exist; the library removes only
	 * what it made below it.
	 */
	union {
		const char *shared_dir;
		uint64_t reserved0;
	};
	uint64_t reserved[3];		/* for later versions; zero */
};

void husk_sandbox_config_init(struct husk_sandbox_config *cfg);

/*
 * Start the VM with the rootfs of spec (may be NULL) and of cfg->specs
 * shared, wait until the agent answers grpc.Health/Check, create the
 * sandbox in the agent.  On timeout, -ETIMEDOUT and the error carries the
 * tail of the guest console; if QEMU dies first, -ECHILD with its stderr;
 * -ECANCELED when cfg->cancel_fd became readable.  Nothing is left behind
 * on failure.
 */
int husk_sandbox_create(const struct husk_sandbox_config *cfg,
			const struct husk_spec *spec,
			struct husk_sandbox **sb_out, struct husk_error *err);

/*
 * Stop everything: remaining containers are abandoned, the agent is asked
 * to power off, QEMU is stopped (killed after a short grace), every stdio
 * thread is joined and every file the VM made is removed.  NULL: no-op.
 */
void husk_sandbox_destroy(struct husk_sandbox *sb);

/* The VM underneath (console path, QMP, the fd to poll for its death). */
struct husk_vm *husk_sandbox_vm(struct husk_sandbox *sb);

/* Monotonic (CLOCK_MONOTONIC) milliseconds of the steps so far, 0 if not reached. */
struct husk_sandbox_timings {
	int64_t start;			/* husk_sandbox_create() called */
	int64_t qemu_spawned;		/* QEMU runs, QMP answered */
	int64_t agent_ready;		/* Health/Check answered SERVING */
	int64_t reserved[4];
};
void husk_sandbox_get_timings(const struct husk_sandbox *sb,
			      struct husk_sandbox_timings *t);

/*
 * The last n_lines lines (at most size-1 bytes) of the guest console, for
 * error messages.  Returns the length written.
 */
size_t husk_sandbox_console_tail(const struct husk_sandbox *sb, unsigned int n_lines,
				 char *buf, size_t size);

/*
 * Wait up to timeout_ms (-1: forever) for the next OOM kill in any
 * container; copies that container's id.  -ETIMEDOUT when none came.
 */
int husk_sandbox_wait_oom(struct husk_sandbox *sb, int timeout_ms,
			  char *container_id, size_t size, struct husk_error *err);

/*
 * OOM kills for a caller with its own event loop.  The first call starts a
 * library thread that takes the agent's OOM events into a queue (the 64
 * newest are kept) and returns an fd, owned by the sandbox, that is
 * readable while husk_sandbox_next_oom() has something to give: the
 * oldest queued container id, else -EAGAIN, or -EPIPE once the agent went
 * away.  Afterwards husk_sandbox_wait_oom() answers -EBUSY: both would take
 * the same events.  Since HUSK_0.3.
 */
int husk_sandbox_watch_oom(struct husk_sandbox *sb, struct husk_error *err);
int husk_sandbox_next_oom(struct husk_sandbox *sb, char *container_id, size_t size,
			  struct husk_error *err);

/* ---- containers and processes ------------------------------------------- */

struct husk_container;
struct husk_process;

/*
 * The caller's ends of a process's stdio, owned by the caller once
 * returned.  stdin_fd is -1 unless asked for; closing it sends EOF to the
 * process.  stdout_fd/stderr_fd reach EOF when the process's streams end;
 * a terminal process has only stdout_fd (stderr_fd = -1).
 */
struct husk_stdio {
	int stdin_fd;
	int stdout_fd;
	int stderr_fd;
};

struct husk_process_options {
	bool open_stdin;		/* give the process a stdin the caller writes */
	unsigned short rows, cols;	/* initial terminal size (0: agent default) */
	uint64_t reserved[2];		/* zero */
};

/*
 * Create container id (^[a-zA-Z0-9][a-zA-Z0-9_.-]+$) from spec in the
 * sandbox, whose rootfs must have been shared at husk_sandbox_create(),
 * as a share of its own or anywhere inside a shared directory (which is
 * how a container joins a running sandbox: cfg.vm.shares names a host
 * directory, the rootfs is bound below it later);
 * its init process is created but not started.  stdio receives the
 * caller's ends.  The container handle belongs to the sandbox until
 * husk_container_delete().
 */
int husk_container_create(struct husk_sandbox *sb, const char *id,
			  const struct husk_spec *spec,
			  const struct husk_process_options *opts,
			  struct husk_stdio *stdio, struct husk_container **ctr_out,
			  struct husk_error *err);

int husk_container_start(struct husk_container *ctr, struct husk_error *err);

/* The container's init process (owned by the container). */
struct husk_process *husk_container_process(struct husk_container *ctr);

const char *husk_container_id(const struct husk_container *ctr);

/*
 * Run another process in a running container: spec's process section
 * (args, env, cwd, user, terminal) says what.  Owned by the container.
 */
int husk_container_exec(struct husk_container *ctr, const char *exec_id,
			const struct husk_spec *spec,
			const struct husk_process_options *opts,
			struct husk_stdio *stdio, struct husk_process **proc_out,
			struct husk_error *err);

struct husk_container_stats {
	uint64_t memory_usage;		/* bytes */
	uint64_t memory_limit;		/* bytes, 0: none */
	uint64_t memory_max_usage;
	uint64_t memory_failcnt;	/* OOM/limit hits */
	uint64_t pids_current;
	uint64_t pids_limit;		/* 0: none */
	uint64_t cpu_usage_ns;
	/* Since HUSK_0.3 (zero from older libraries): */
	uint64_t cpu_user_ns;
	uint64_t cpu_kernel_ns;
	uint64_t memory_cache;		/* bytes of page cache ("file" in memory.stat) */
	uint64_t reserved[1];
};

/* The container's cgroup counters in the guest (fields the guest lacks stay 0). */
int husk_container_stats(struct husk_container *ctr, struct husk_container_stats *st,
			 struct husk_error *err);

/*
 * Freeze every process of the container (cgroup.freeze in the guest) and
 * thaw them again.  -EBUSY (FAILED_PRECONDITION) when the container is not
 * running, resp. not paused.  Since HUSK_0.3.
 */
int husk_container_pause(struct husk_container *ctr, struct husk_error *err);
int husk_container_resume(struct husk_container *ctr, struct husk_error *err);

/*
 * Change the container's cgroup limits in the guest.  resources_json is an
 * OCI linux.resources object ({"memory":{"limit":N},"pids":{"limit":N},
 * ...}), checked as strictly as config.json; a field left out (or 0) is
 * left as it is, -1 means unlimited.  Since HUSK_0.3.
 */
int husk_container_update(struct husk_container *ctr, const char *resources_json,
			  size_t len, struct husk_error *err);

/*
 * Kill what still runs, remove the container in the guest (cgroup,
 * mounts, rootfs share mount) and free the handle with its processes.
 * The handle is invalid afterwards even on failure (the sandbox then
 * frees it when destroyed).
 */
int husk_container_delete(struct husk_container *ctr, struct husk_error *err);

/* Send signal to a process (its exec id inside its container). */
int husk_process_signal(struct husk_process *proc, int signal, struct husk_error *err);

/* Terminal size of a terminal process. */
int husk_process_resize(struct husk_process *proc, unsigned short rows,
			unsigned short cols, struct husk_error *err);

/*
 * Readable once the process's exit is known (and its stdout/stderr have
 * been handed to the caller's fds completely).  Owned by the process.
 */
int husk_process_exit_fd(const struct husk_process *proc);

/*
 * Wait up to timeout_ms (-1: forever) for the exit: *status is the exit
 * code, 128+N when signal N killed it.  -ETIMEDOUT while it runs; -EPIPE
 * (with the reason) when the agent went away first.
 */
int husk_process_wait(struct husk_process *proc, int timeout_ms, int *status,
		      struct husk_error *err);

#ifdef __cplusplus
}
#endif

#endif
