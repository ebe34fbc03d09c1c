/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * husk-agent's container runtime: the internal API the RPC handlers call.
 *
 * Untrusted OCI input is validated once by runtime_spec_parse() /
 * runtime_process_parse() into config structs; everything past that works
 * on validated data.  Nothing here waits for a container process to exit:
 * the agent's loop reaps children with waitpid() and hands each status to
 * runtime_child_exited(), which records it and calls the exit callback.
 *
 * What does wait (a process being set up answers over a sync socket, a
 * killed cgroup takes a while to empty) comes in two forms: a *_begin()
 * call returning a struct runtime_op, a state machine behind one pollable
 * fd that the agent's loop drives with runtime_op_advance() and that never
 * blocks; and the plain call (runtime_container_create() etc.), which is
 * begin + drive to the end on the caller's thread, for tests and tools.
 *
 * Functions return 0 or -errno and fill the optional husk_error record with
 * a message naming the container, the field or the failed setup step.
 */
#ifndef HUSK_AGENT_RUNTIME_H
#define HUSK_AGENT_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "husk-common/error.h"
#include "oci.pb-c.h"

/* Container and exec ids: ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$, at most this long. */
#define RUNTIME_ID_MAX 128

struct runtime;
struct runtime_container;
struct runtime_op;
struct container_config;	/* a validated oci.Spec (see spec.h) */
struct process_config;		/* a validated oci.Process */

/* ------------------------------------------------------------------------ */
/* Validation at the edge                                                    */

/* 0 when id is a valid container/exec/sandbox id; else -EINVAL naming `what`. */
int runtime_id_validate(const char *id, const char *what, struct husk_error *err);

/*
 * Validate spec for container `container_id` into *out (free with
 * container_config_free).  Errors name the field, e.g.
 * "spec.process.rlimits[2].type: unknown rlimit 'RLIMIT_FOO'".
 * Root.Path must exist on this machine (checked with stat()).
 */
int runtime_spec_parse(const Grpc__Spec *spec, const char *container_id,
		       struct container_config **out, struct husk_error *err);
void container_config_free(struct container_config *cfg);

/* Validate an exec'd process (ExecProcessRequest.process). */
int runtime_process_parse(const Grpc__Process *proc,
			  struct process_config **out, struct husk_error *err);
void process_config_free(struct process_config *pc);

/* ------------------------------------------------------------------------ */
/* The runtime object                                                        */

struct runtime_process;

/*
 * Called once a container process's exit status is known (proc->exited is
 * true): from runtime_child_exited(), and from runtime_container_remove()
 * for processes it killed that the loop had not reaped yet (the runtime
 * reaps those itself, by pid).  For a container's init process the
 * container is RUNTIME_STOPPED by then.  After runtime_container_remove()
 * returns, its processes are freed: drop every pointer to them.
 */
typedef void (*runtime_exit_cb)(void *userdata, struct runtime_container *ctr,
				struct runtime_process *proc);

struct runtime_options {
	/* cgroup v2 mount under which husk/<sandbox>/<container> is made;
	 * NULL means /sys/fs/cgroup. */
	const char *cgroup_root;
	runtime_exit_cb on_exit;
	void *userdata;
};

/*
 * Also makes the caller a child subreaper (PR_SET_CHILD_SUBREAPER), so exec'd
 * processes, which are forked through an intermediate that joins the
 * container's pid namespace, are reparented to the agent and reaped by it.
 */
int runtime_new(const struct runtime_options *opts, struct runtime **out,
		struct husk_error *err);
/* Kills (SIGKILL) and removes every container that is left, then frees. */
void runtime_free(struct runtime *rt);

/* ------------------------------------------------------------------------ */
/* Processes                                                                 */

/*
 * The agent-side ends of a process's stdio, O_CLOEXEC|O_NONBLOCK, -1 when
 * absent.  With a terminal, `in` and `out` are two separate descriptors of
 * the pty master (so either can be closed alone), `err` is -1, and
 * `pty_master` is a third one kept for window-size changes.  The pty comes
 * from the container's own devpts (the process sees /dev/pts/N), so for an
 * init process the fds are there once runtime_container_create() returns.
 *
 * The runtime owns these fds until a caller takes one with
 * runtime_process_take_fd() (e.g. to hand it to a forwarder: the
 * user-space relay or vsockfwd.ko); it closes whatever is left when the
 * process is forgotten or its container removed.
 */
struct runtime_stdio {
	int in;			/* write end of the process's stdin */
	int out;		/* read end of its stdout */
	int err;		/* read end of its stderr */
	int pty_master;		/* pty master, terminal processes only */
};

enum runtime_stream {
	RUNTIME_STDIN,
	RUNTIME_STDOUT,
	RUNTIME_STDERR,
};

/*
 * A container process (the init process or an exec'd one).  Callers read
 * these fields; they may write only `user`.
 */
struct runtime_process {
	char exec_id[RUNTIME_ID_MAX + 1];
	struct runtime_container *container;
	pid_t pid;		/* in the agent's pid namespace */
	bool terminal;
	bool started;		/* execve reached (init: after start) */
	bool exited;
	int exit_code;		/* WEXITSTATUS, or 128+signal; valid when exited */
	struct runtime_stdio stdio;
	void *user;		/* the server's own per-process state */

	/* private to the runtime */
	bool forgotten;
	bool setting_up;	/* its exec op is pending: not found */
	struct runtime_process *next;
};

/* Take ownership of one stdio fd; returns it (or -1) and leaves -1 behind. */
int runtime_process_take_fd(struct runtime_process *proc, enum runtime_stream s);

/*
 * Close the agent's end of the process's stdin (CloseStdin).  With a
 * terminal, an end-of-file character (^D) is written first, so a reader of
 * the tty sees EOF when the input so far ended with a newline.
 */
void runtime_process_close_stdin(struct runtime_process *proc);

/* TIOCSWINSZ on the pty master; -ENOTTY for a process without a terminal. */
int runtime_process_resize_tty(struct runtime_process *proc, uint16_t rows,
			       uint16_t cols, struct husk_error *err);

/*
 * Look up a live (not forgotten) process by exec id; an init process is
 * found under its exec id (by convention the container id).
 */
struct runtime_process *runtime_process_find(struct runtime_container *ctr,
					     const char *exec_id);

/*
 * The server has delivered the exit status (WaitProcess answered): forget
 * the process.  Its remaining stdio fds are closed; an exec'd process is
 * freed, an init process stays with its container but is no longer found.
 */
void runtime_process_forget(struct runtime_process *proc);

/*
 * The loop reaped `pid` with `wait_status`.  Returns true when pid was a
 * container process (recorded, exit callback called), false otherwise
 * (an orphan or an exec intermediate: nothing to do).
 */
bool runtime_child_exited(struct runtime *rt, pid_t pid, int wait_status);

/* ------------------------------------------------------------------------ */
/* Containers                                                                */

enum runtime_state {
	RUNTIME_CREATED,	/* init process set up, blocked before execve */
	RUNTIME_RUNNING,
	RUNTIME_PAUSED,
	RUNTIME_STOPPED,	/* init process exited */
};

struct runtime_container *runtime_container_find(struct runtime *rt,
						 const char *id);
/* The id is in use, also by a container whose create is still pending. */
bool runtime_container_id_taken(struct runtime *rt, const char *id);
const char *runtime_container_id(const struct runtime_container *ctr);
enum runtime_state runtime_container_state(const struct runtime_container *ctr);
struct runtime_process *runtime_container_init(struct runtime_container *ctr);
/* The container's cgroup v2 directory (absolute path). */
const char *runtime_container_cgroup(const struct runtime_container *ctr);

/*
 * Create container `id` of sandbox `sandbox_id` from cfg (ownership of cfg
 * passes to the runtime, also on failure).  On success the init process
 * (exec id `exec_id`) exists, fully set up and blocked before execve; its
 * stdio is in runtime_container_init(*out)->stdio.  On failure nothing is
 * left behind: no process, cgroup or mount.
 */
int runtime_container_create(struct runtime *rt, const char *sandbox_id,
			     const char *id, const char *exec_id,
			     struct container_config *cfg,
			     struct runtime_container **out,
			     struct husk_error *err);

/* Let the init process execve; an execve failure is reported here. */
int runtime_container_start(struct runtime *rt, struct runtime_container *ctr,
			    struct husk_error *err);

/*
 * Start a new process in a running container: it joins the container's
 * namespaces and cgroup and execs at once.  Ownership of pc passes to the
 * runtime.  -EEXIST when exec_id is taken.
 */
int runtime_exec(struct runtime *rt, struct runtime_container *ctr,
		 const char *exec_id, struct process_config *pc,
		 struct runtime_process **out, struct husk_error *err);

/*
 * Send sig to one process (proc non-NULL) or to every process of the
 * container (proc NULL: cgroup.kill for SIGKILL, else each pid of
 * cgroup.procs).  Note the kernel drops default-action signals other than
 * SIGKILL/SIGSTOP sent to a pid-namespace init that installed no handler.
 */
int runtime_signal(struct runtime *rt, struct runtime_container *ctr,
		   struct runtime_process *proc, int sig,
		   struct husk_error *err);

/* Apply new limits (UpdateContainerRequest.resources), validated first. */
int runtime_container_update(struct runtime *rt, struct runtime_container *ctr,
			     const Grpc__LinuxResources *res,
			     struct husk_error *err);

/* Freeze / thaw the container's cgroup (cgroup.freeze). */
int runtime_container_pause(struct runtime *rt, struct runtime_container *ctr,
			    struct husk_error *err);
int runtime_container_resume(struct runtime *rt, struct runtime_container *ctr,
			     struct husk_error *err);

/*
 * Pids of the container's processes (cgroup.procs, agent's namespace);
 * *pids is malloc'ed, free it.
 */
int runtime_container_pids(struct runtime_container *ctr, pid_t **pids,
			   size_t *n, struct husk_error *err);

/*
 * Kill (SIGKILL) whatever still runs, wait up to timeout_sec (0: a default
 * of 10 s) for the cgroup to empty, remove the cgroup and free the
 * container and its processes.  -ETIMEDOUT leaves the container in place
 * so the call can be retried.
 */
int runtime_container_remove(struct runtime *rt, struct runtime_container *ctr,
			     unsigned int timeout_sec, struct husk_error *err);

/* ------------------------------------------------------------------------ */
/* The same, without blocking                                                */

/*
 * The *_begin() calls check what they can at once (returning -errno with
 * err filled, nothing left behind) and otherwise return 0 with *op
 * pending.  Watch runtime_op_fd(op) for EPOLLIN (level-triggered) and call
 * runtime_op_advance() when it is readable: -EINPROGRESS while pending,
 * else the result the blocking call would have returned, with the same
 * error message and the same guarantees (a failed create has left no
 * process, cgroup or mount by the time it reports).  Then read the result
 * and runtime_op_free() the op.
 *
 * While a create is pending its container is not found by
 * runtime_container_find() (but its id is taken); an exec'd process is
 * not found by runtime_process_find() until its exec succeeded.  A kill
 * while a start or exec of the container is pending fails with -EBUSY, and
 * so does a second kill or an exec during a kill.
 */
int runtime_container_create_begin(struct runtime *rt, const char *sandbox_id,
				   const char *id, const char *exec_id,
				   struct container_config *cfg,
				   struct runtime_op **op, struct husk_error *err);
int runtime_container_start_begin(struct runtime *rt, struct runtime_container *ctr,
				  struct runtime_op **op, struct husk_error *err);
int runtime_exec_begin(struct runtime *rt, struct runtime_container *ctr,
		       const char *exec_id, struct process_config *pc,
		       struct runtime_op **op, struct husk_error *err);
/*
 * The first half of runtime_container_remove(): SIGKILL what runs and
 * finish once the cgroup is empty and every process's exit is recorded
 * (exit callbacks called), or -ETIMEDOUT after timeout_sec (0: 10 s).
 * The container stays; runtime_container_remove() then removes it at once.
 */
int runtime_container_kill_begin(struct runtime *rt, struct runtime_container *ctr,
				 unsigned int timeout_sec, struct runtime_op **op,
				 struct husk_error *err);

int runtime_op_fd(const struct runtime_op *op);
int runtime_op_advance(struct runtime_op *op, struct husk_error *err);
/* After success: the new container (create) or process (exec), else NULL. */
struct runtime_container *runtime_op_container(const struct runtime_op *op);
struct runtime_process *runtime_op_process(const struct runtime_op *op);
/*
 * Free a finished op, or cancel a pending one: a create then kills what it
 * made and waits for that (bounded) here; a start or exec fails as if the
 * process had died; a kill stops trying.  runtime_free() cancels what is
 * left, so free ops first when you keep pointers to them.
 */
void runtime_op_free(struct runtime_op *op);

/* ------------------------------------------------------------------------ */
/* Statistics and OOM                                                        */

#define RUNTIME_STATS_MEM_KEYS 64
#define RUNTIME_STATS_IO_DEVS 16

struct runtime_stat_kv {
	char key[32];
	uint64_t value;
};

struct runtime_io_dev {
	uint32_t major, minor;
	uint64_t rbytes, wbytes, rios, wios;
};

/*
 * A snapshot of the container's cgroup v2 files.  A controller the cgroup
 * lacks leaves its has_* flag false and its fields zero.  UINT64_MAX
 * stands for "max" (no limit).
 */
struct runtime_stats {
	bool has_cpu;			/* cpu.stat (always present in v2) */
	uint64_t cpu_usage_usec, cpu_user_usec, cpu_system_usec;
	uint64_t cpu_nr_periods, cpu_nr_throttled, cpu_throttled_usec;

	bool has_memory;		/* memory.current, .max, .stat, .events */
	uint64_t mem_current, mem_max, mem_peak;
	uint64_t swap_current, swap_max;
	uint64_t mem_events_max, mem_oom, mem_oom_kill;
	size_t n_mem_stat;
	struct runtime_stat_kv mem_stat[RUNTIME_STATS_MEM_KEYS];

	bool has_pids;			/* pids.current, pids.max */
	uint64_t pids_current, pids_max;

	bool has_io;			/* io.stat */
	size_t n_io;
	struct runtime_io_dev io[RUNTIME_STATS_IO_DEVS];
};

int runtime_stats(struct runtime_container *ctr, struct runtime_stats *st,
		  struct husk_error *err);

/*
 * The container's memory.events file, for the loop to watch with inotify
 * (IN_MODIFY); NULL when the cgroup has no memory controller.
 */
const char *runtime_container_memory_events(const struct runtime_container *ctr);

/* Current oom_kill count of memory.events; -ENOENT without memory controller. */
int runtime_container_oom_kills(struct runtime_container *ctr, uint64_t *count,
				struct husk_error *err);

#endif
