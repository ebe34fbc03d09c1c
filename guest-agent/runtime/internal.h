/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runtime internals shared by runtime.c (the objects, parent side), op.c
 * (driving the operations that wait), child.c (what a new container
 * process does before execve) and process.c (stdio).
 */
#ifndef HUSK_AGENT_RUNTIME_INTERNAL_H
#define HUSK_AGENT_RUNTIME_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"
#include "spec.h"

/* Waits for a child still being set up (create, start, exec). */
#define RUNTIME_SETUP_TIMEOUT_MS 30000
/* RemoveContainer's bound when the caller gives none, and a failed create's. */
#define REMOVE_DEFAULT_TIMEOUT_S 10

/* Exits of pids that were nobody's yet, kept for an exec still learning its pid. */
#define RUNTIME_UNCLAIMED_EXITS 32

struct unclaimed_exit {
	pid_t pid;
	int status;
};

struct runtime {
	char *cgroup_root;
	runtime_exit_cb on_exit;
	void *userdata;
	struct runtime_container *containers;	/* also those being created */
	struct runtime_op *ops;			/* pending operations */
	struct unclaimed_exit unclaimed[RUNTIME_UNCLAIMED_EXITS];
	unsigned int unclaimed_next;
};

struct runtime_container {
	char id[RUNTIME_ID_MAX + 1];
	char sandbox_id[RUNTIME_ID_MAX + 1];
	enum runtime_state state;
	struct container_config *cfg;
	char *cgroup;			/* leaf directory */
	char *memory_events;		/* <cgroup>/memory.events, or NULL */
	int ns_fds[NS_COUNT];		/* the init's namespaces, for exec */
	int sync_fd;			/* to the init until it execs, else -1 */
	bool creating;			/* its create op is pending: not found */
	bool killing;			/* a kill op is pending */
	unsigned int n_ops;		/* pending start/exec ops on it */
	struct runtime_process *processes;	/* init first */
	struct runtime_container *next;
};

/* ------------------------------------------------------------------------ */
/* Parent <-> child sync messages (SOCK_SEQPACKET, one struct per message)   */

enum sync_type {
	SYNC_READY = 1,		/* child: set up, waiting for SYNC_GO */
	SYNC_ERROR,		/* child: a step failed (errno, text) */
	SYNC_PID,		/* exec intermediate: the process's pid */
	SYNC_GO,		/* parent: execve now */
	SYNC_MAPPED,		/* parent: id maps written, go on */
	SYNC_PTY,		/* child: pty master attached (SCM_RIGHTS) */
};

struct sync_msg {
	int32_t type;
	int32_t value;		/* errno for SYNC_ERROR, pid for SYNC_PID */
	char text[480];
};

/* ------------------------------------------------------------------------ */
/* Pending operations (op.c drives them, runtime.c defines their steps)     */

enum op_kind {
	OP_CREATE,
	OP_START,
	OP_EXEC,
	OP_KILL,
};

enum op_step {
	STEP_WAIT_READY,	/* create: until the init reports SYNC_READY */
	STEP_WAIT_PID,		/* exec: until the intermediate names the pid */
	STEP_WAIT_EXEC,		/* start, exec: until EOF, i.e. execve */
	STEP_KILLING,		/* kill, or a failed create undoing itself */
	STEP_DONE,
};

/*
 * One create/start/exec/kill in progress.  Its epoll fd holds the sync
 * socket and a timerfd (the setup deadline, or the kill's polling tick),
 * so a caller's loop watches one fd and calls runtime_op_advance().
 */
struct runtime_op {
	struct runtime *rt;
	enum op_kind kind;
	enum op_step step;
	const char *who;		/* names the step in messages */
	struct runtime_container *ctr;
	struct runtime_process *proc;	/* create: the init; exec: the new one */
	int epfd;
	int sync_fd;
	int timer_fd;
	int64_t deadline_ms;		/* STEP_KILLING */
	unsigned int timeout_s;
	bool notify;			/* STEP_KILLING: report exits */
	int result;
	struct husk_error err;
	struct runtime_op *next;
};

/* A new op watching sync_fd (owned by the op from here, also on failure). */
int op_new(struct runtime *rt, enum op_kind kind, const char *who,
	   struct runtime_container *ctr, int sync_fd, struct runtime_op **out,
	   struct husk_error *err);
/* The sync pair of a child about to be cloned; the op watches its end. */
int op_sync_pair(struct runtime_op *op, int *child_sock, struct husk_error *err);
/* Free an op that never started waiting, or a finished one. */
void op_release(struct runtime_op *op);
/* Wait in `step` for the child, bounded by RUNTIME_SETUP_TIMEOUT_MS. */
int op_wait_setup(struct runtime_op *op, enum op_step step);
/* SIGKILL the container's processes; the op ends once its cgroup is empty. */
int op_start_killing(struct runtime_op *op, unsigned int timeout_s, bool notify);
/* End the op with r; undo what a failed create or exec made. */
void op_finish(struct runtime_op *op, int r);
/* A step failed with r (op->err says why): a create undoes itself first. */
void op_fail(struct runtime_op *op, int r);
/* Drive op to its end on this thread: the blocking form of every call. */
int op_wait(struct runtime_op *op, struct husk_error *err);

/* runtime.c: the steps' effects on containers and processes. */
/* The op ended with op->result: commit or undo what it did. */
void op_settle(struct runtime_op *op);
bool container_reap_exited(struct runtime *rt, struct runtime_container *ctr,
			   bool notify);
int container_create_ready(struct runtime_op *op);
void exec_learn_pid(struct runtime_op *op, pid_t pid);

/* ------------------------------------------------------------------------ */
/* What a child needs, computed before clone so the child never allocates.   */

struct child_plan {
	int sync_fd;
	int stdio[3];			/* child-side pipe ends; unused with a terminal */
	const struct process_config *proc;
	uint64_t cap_mask;		/* capabilities this kernel knows */

	/* init process only (NULL for an exec'd one) */
	const struct container_config *cfg;
	const char *cgroup;		/* the container's leaf, for cgroup mounts */
	bool wait_mapped;		/* user namespace: wait for SYNC_MAPPED */
	bool unshare_cgroupns;
	/* namespaces to setns() into, -1 none: the spec's paths for an
	 * init process, all of the container's for an exec'd one */
	int join_fds[NS_COUNT];
};

/* child.c: never return; report failures on plan->sync_fd, _exit(127). */
__attribute__((noreturn)) void child_run_init(struct child_plan *plan);
__attribute__((noreturn)) void child_run_exec(struct child_plan *plan);

/* process.c */
struct process_stdio_pair {
	struct runtime_stdio agent;	/* the agent's ends */
	int child[3];			/* the child's stdin/stdout/stderr */
};

/* Pipes for a process without a terminal; all -1 for a terminal one,
 * whose pty the child opens inside the container (see SYNC_PTY). */
int process_stdio_open(const struct process_config *pc,
		       struct process_stdio_pair *p, struct husk_error *err);
/* Take a pty master received from the child as the process's stdio. */
int process_adopt_pty(struct runtime_process *proc, int master,
		      struct husk_error *err);
void process_stdio_close_child(struct process_stdio_pair *p);
void process_stdio_close_agent(struct runtime_stdio *s);

struct runtime_process *process_new(struct runtime_container *ctr,
				    const char *exec_id);
void process_free(struct runtime_process *proc);

/* Record a wait status; returns the exit code (128+signal when killed). */
int process_exit_code(int wait_status);

#endif
