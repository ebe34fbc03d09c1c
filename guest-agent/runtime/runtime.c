// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The parent side of the runtime: containers and their processes as
 * objects, and the steps that create, start, exec, signal and remove them.
 * What the new process does itself lives in child.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "cgroup.h"
#include "internal.h"

static const int ns_clone_flags[NS_COUNT] = {
	[NS_PID] = CLONE_NEWPID,
	[NS_NET] = CLONE_NEWNET,
	[NS_MNT] = CLONE_NEWNS,
	[NS_IPC] = CLONE_NEWIPC,
	[NS_UTS] = CLONE_NEWUTS,
	[NS_USER] = CLONE_NEWUSER,
	[NS_CGROUP] = CLONE_NEWCGROUP,
};

static const char *const ns_proc_names[NS_COUNT] = {
	[NS_PID] = "pid", [NS_NET] = "net", [NS_MNT] = "mnt", [NS_IPC] = "ipc",
	[NS_UTS] = "uts", [NS_USER] = "user", [NS_CGROUP] = "cgroup",
};

static uint64_t capability_mask(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int last = 40;	/* CAP_CHECKPOINT_RESTORE, the newest we name */

	if (f && fscanf(f, "%d", &last) != 1)
		last = 40;
	if (last > 63)
		last = 63;
	return last == 63 ? UINT64_MAX : (UINT64_C(1) << (last + 1)) - 1;
}

int runtime_new(const struct runtime_options *opts, struct runtime **out,
		struct husk_error *err)
{
	struct runtime *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return husk_error_set(err, ENOMEM, "runtime: out of memory");
	rt->cgroup_root = strdup(opts && opts->cgroup_root ? opts->cgroup_root
							   : "/sys/fs/cgroup");
	if (!rt->cgroup_root) {
		free(rt);
		return husk_error_set(err, ENOMEM, "runtime: out of memory");
	}
	if (opts) {
		rt->on_exit = opts->on_exit;
		rt->userdata = opts->userdata;
	}
	/* exec'd processes are grandchildren: adopt them when orphaned */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		int e = errno;

		free(rt->cgroup_root);
		free(rt);
		return husk_error_seterrno(err, e, "PR_SET_CHILD_SUBREAPER");
	}
	*out = rt;
	return 0;
}

/* Name the container in an error set below; passes r through. */
static int container_error(struct husk_error *err,
			   const struct runtime_container *ctr, int r)
{
	if (r < 0 && err)
		husk_error_prefix(err, "container %s: ", ctr->id);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                   */

struct runtime_container *runtime_container_find(struct runtime *rt,
						 const char *id)
{
	for (struct runtime_container *c = rt->containers; c; c = c->next)
		if (!c->creating && strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

bool runtime_container_id_taken(struct runtime *rt, const char *id)
{
	for (struct runtime_container *c = rt->containers; c; c = c->next)
		if (strcmp(c->id, id) == 0)
			return true;
	return false;
}

const char *runtime_container_id(const struct runtime_container *ctr)
{
	return ctr->id;
}

enum runtime_state runtime_container_state(const struct runtime_container *ctr)
{
	return ctr->state;
}

struct runtime_process *runtime_container_init(struct runtime_container *ctr)
{
	return ctr->processes;
}

const char *runtime_container_cgroup(const struct runtime_container *ctr)
{
	return ctr->cgroup;
}

const char *runtime_container_memory_events(const struct runtime_container *ctr)
{
	return ctr->memory_events;
}

struct runtime_process *runtime_process_find(struct runtime_container *ctr,
					     const char *exec_id)
{
	for (struct runtime_process *p = ctr->processes; p; p = p->next)
		if (!p->forgotten && !p->setting_up && strcmp(p->exec_id, exec_id) == 0)
			return p;
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Exit handling                                                             */

static void process_record_exit(struct runtime *rt, struct runtime_process *p,
				int wait_status)
{
	p->exited = true;
	p->exit_code = process_exit_code(wait_status);
	if (p == p->container->processes)
		p->container->state = RUNTIME_STOPPED;
	if (rt->on_exit)
		rt->on_exit(rt->userdata, p->container, p);
}

bool runtime_child_exited(struct runtime *rt, pid_t pid, int wait_status)
{
	for (struct runtime_container *c = rt->containers; c; c = c->next)
		for (struct runtime_process *p = c->processes; p; p = p->next)
			if (p->pid == pid && !p->exited) {
				process_record_exit(rt, p, wait_status);
				return true;
			}
	/* maybe an exec'd process whose op has not read its pid yet */
	rt->unclaimed[rt->unclaimed_next] = (struct unclaimed_exit){ pid, wait_status };
	rt->unclaimed_next = (rt->unclaimed_next + 1) % RUNTIME_UNCLAIMED_EXITS;
	return false;
}

void runtime_process_forget(struct runtime_process *proc)
{
	struct runtime_container *ctr = proc->container;

	process_stdio_close_agent(&proc->stdio);
	proc->forgotten = true;
	if (proc == ctr->processes)
		return;		/* the init stays until its container goes */
	for (struct runtime_process **pp = &ctr->processes; *pp; pp = &(*pp)->next) {
		if (*pp == proc) {
			*pp = proc->next;
			process_free(proc);
			return;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Talking to a child being set up                                           */

static int sync_send(int fd, int type, const char *who, struct husk_error *err)
{
	struct sync_msg msg = { .type = type };

	if (send(fd, &msg, sizeof(msg), MSG_NOSIGNAL) < 0)
		return husk_error_seterrno(err, errno, "%s: send", who);
	return 0;
}

/* fork-like clone3 straight into the container's cgroup. */
static pid_t clone_into_cgroup(uint64_t flags, int cgroup_fd)
{
	struct clone_args args = {
		.flags = flags | CLONE_INTO_CGROUP,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)cgroup_fd,
	};

	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static int write_proc_file(pid_t pid, const char *file, const char *data,
			   struct husk_error *err)
{
	char path[64];
	_cleanup_close_ int fd = -1;
	size_t len = strlen(data);

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "open %s", path);
	if (write(fd, data, len) != (ssize_t)len)
		return husk_error_seterrno(err, errno ? errno : EIO, "write %s", path);
	return 0;
}

static int write_id_map(pid_t pid, const char *file,
			const struct idmap_config *maps, size_t n,
			struct husk_error *err)
{
	_cleanup_free_ char *buf = malloc(n * 40 + 1);
	size_t len = 0;

	if (!buf)
		return husk_error_set(err, ENOMEM, "%s: out of memory", file);
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, 40, "%u %u %u\n",
					maps[i].container_id, maps[i].host_id,
					maps[i].size);
	return write_proc_file(pid, file, buf, err);
}

/* ------------------------------------------------------------------------ */
/* Container objects                                                         */

static struct runtime_container *container_alloc(const char *sandbox_id,
						 const char *id,
						 struct container_config *cfg)
{
	struct runtime_container *ctr = calloc(1, sizeof(*ctr));

	if (!ctr)
		return NULL;
	snprintf(ctr->id, sizeof(ctr->id), "%s", id);
	snprintf(ctr->sandbox_id, sizeof(ctr->sandbox_id), "%s", sandbox_id);
	ctr->cfg = cfg;
	ctr->sync_fd = -1;
	for (int k = 0; k < NS_COUNT; k++)
		ctr->ns_fds[k] = -1;
	return ctr;
}

static void container_free(struct runtime_container *ctr)
{
	while (ctr->processes) {
		struct runtime_process *p = ctr->processes;

		ctr->processes = p->next;
		process_free(p);
	}
	for (int k = 0; k < NS_COUNT; k++)
		safe_close(ctr->ns_fds[k]);
	safe_close(ctr->sync_fd);
	container_config_free(ctr->cfg);
	free(ctr->cgroup);
	free(ctr->memory_events);
	free(ctr);
}

static void container_unlink(struct runtime *rt, struct runtime_container *ctr)
{
	for (struct runtime_container **pp = &rt->containers; *pp; pp = &(*pp)->next) {
		if (*pp == ctr) {
			*pp = ctr->next;
			return;
		}
	}
}

/* Drop a container whose processes are gone: no cgroup or object left. */
static void container_discard(struct runtime *rt, struct runtime_container *ctr)
{
	if (ctr->cgroup)
		(void)cgroup_remove(ctr->cgroup, NULL);
	container_unlink(rt, ctr);
	container_free(ctr);
}

static void process_unlink(struct runtime_container *ctr, struct runtime_process *proc)
{
	for (struct runtime_process **pp = &ctr->processes; *pp; pp = &(*pp)->next) {
		if (*pp == proc) {
			*pp = proc->next;
			return;
		}
	}
}

/*
 * Record the status of a process that left the cgroup but that the loop
 * has not reaped: reap it here.  True once every process's status is known.
 * With `notify` the exits are reported (pending waits get answered); not
 * for a create being undone, which the caller never saw.
 */
bool container_reap_exited(struct runtime *rt, struct runtime_container *ctr,
				  bool notify)
{
	struct runtime_process *p, *next;
	bool all = true;

	for (p = ctr->processes; p; p = next) {
		int status;
		pid_t r;

		next = p->next;		/* the exit callback may forget p */
		if (p->pid <= 0 || p->exited)
			continue;
		r = waitpid(p->pid, &status, WNOHANG);
		if (r == 0) {
			all = false;
			continue;
		}
		/* reaped by somebody else (ECHILD): it died of our SIGKILL */
		if (r < 0)
			status = SIGKILL;
		if (notify) {
			process_record_exit(rt, p, status);
		} else {
			p->exited = true;
			p->exit_code = process_exit_code(status);
		}
	}
	return all;
}

/* ------------------------------------------------------------------------ */
/* What an ended op leaves behind                                            */

void op_settle(struct runtime_op *op)
{
	struct runtime_container *ctr = op->ctr;
	struct runtime_process *proc = op->proc;
	int r = op->result;

	switch (op->kind) {
	case OP_CREATE:
		if (r < 0) {
			container_discard(op->rt, ctr);
			op->ctr = NULL;
			op->proc = NULL;
			return;
		}
		ctr->creating = false;
		return;
	case OP_START:
		ctr->n_ops--;
		if (r == 0) {
			proc->started = true;
			if (!proc->exited)
				ctr->state = RUNTIME_RUNNING;
		}
		break;
	case OP_EXEC:
		ctr->n_ops--;
		if (r == 0) {
			proc->setting_up = false;
			proc->started = true;
			break;
		}
		/* a process that got as far as a pid dies with its error */
		if (proc->pid > 0 && !proc->exited)
			(void)kill(proc->pid, SIGKILL);
		process_unlink(ctr, proc);
		process_free(proc);
		op->proc = NULL;
		break;
	case OP_KILL:
		ctr->killing = false;
		return;
	}
	if (r < 0)
		husk_error_prefix(&op->err, "container %s: ", ctr->id);
}

/* ------------------------------------------------------------------------ */
/* Create                                                                    */

static int open_join_fds(const struct container_config *cfg, int *fds,
			 struct husk_error *err)
{
	for (int k = 0; k < NS_COUNT; k++)
		fds[k] = -1;
	for (int k = 0; k < NS_COUNT; k++) {
		if (!cfg->ns[k].path)
			continue;
		fds[k] = open(cfg->ns[k].path, O_RDONLY | O_CLOEXEC);
		if (fds[k] < 0)
			return husk_error_seterrno(err, errno, "spec.linux.namespaces: %s %s",
						   ns_kind_name(k), cfg->ns[k].path);
	}
	return 0;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fds[i] = safe_close(fds[i]);
}

/* Keep the init's namespaces so exec'd processes can join them later. */
static int open_container_ns(struct runtime_container *ctr, pid_t pid,
			     struct husk_error *err)
{
	for (int k = 0; k < NS_COUNT; k++) {
		char path[64];

		/* setns into the user namespace one is in fails */
		if (k == NS_USER && !ctr->cfg->ns[NS_USER].enabled)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns_proc_names[k]);
		ctr->ns_fds[k] = open(path, O_RDONLY | O_CLOEXEC);
		if (ctr->ns_fds[k] < 0)
			return husk_error_seterrno(err, errno, "open %s", path);
	}
	return 0;
}

static uint64_t init_clone_flags(const struct container_config *cfg)
{
	uint64_t flags = 0;

	for (int k = 0; k < NS_COUNT; k++)
		if (k != NS_CGROUP && cfg->ns[k].enabled && !cfg->ns[k].path)
			flags |= ns_clone_flags[k];
	return flags;
}

/* Write the id maps of a new user namespace, then let the child go on. */
static int map_user_ns(const struct container_config *cfg, pid_t pid, int sync_fd,
		       struct husk_error *err)
{
	int r = write_id_map(pid, "uid_map", cfg->uid_maps, cfg->n_uid_maps, err);

	if (r == 0)
		r = write_id_map(pid, "gid_map", cfg->gid_maps, cfg->n_gid_maps, err);
	if (r == 0)
		r = sync_send(sync_fd, SYNC_MAPPED, "user namespace", err);
	return r;
}


/*
 * Clone the init process into the container's cgroup and namespaces.  It
 * talks over child_sock (closed here, whatever happens); sync is the
 * agent's end.  On failure after the clone, init->pid is set: the caller
 * kills what was made.
 */
static int spawn_init(struct runtime_container *ctr, struct runtime_process *init,
		      int sync, int child_sock, struct husk_error *err)
{
	const struct container_config *cfg = ctr->cfg;
	struct process_stdio_pair sp;
	struct child_plan plan = { 0 };
	_cleanup_close_ int cgroup_fd = -1;
	pid_t pid;
	int r;

	r = open_join_fds(cfg, plan.join_fds, err);
	if (r < 0)
		goto out_join;
	cgroup_fd = open(ctr->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgroup_fd < 0) {
		r = husk_error_seterrno(err, errno, "open %s", ctr->cgroup);
		goto out_join;
	}
	r = process_stdio_open(cfg->process, &sp, err);
	if (r < 0)
		goto out_join;

	plan.sync_fd = child_sock;
	memcpy(plan.stdio, sp.child, sizeof(plan.stdio));
	plan.proc = cfg->process;
	plan.cap_mask = capability_mask();
	plan.cfg = cfg;
	plan.cgroup = ctr->cgroup;
	plan.wait_mapped = cfg->ns[NS_USER].enabled;
	plan.unshare_cgroupns = cfg->ns[NS_CGROUP].enabled && !cfg->ns[NS_CGROUP].path;

	pid = clone_into_cgroup(init_clone_flags(cfg), cgroup_fd);
	if (pid == 0) {
		close(sync);
		child_run_init(&plan);
	}
	child_sock = safe_close(child_sock);
	process_stdio_close_child(&sp);
	if (pid < 0) {
		r = husk_error_seterrno(err, errno, "clone3 into %s", ctr->cgroup);
		goto out_stdio;
	}
	init->pid = pid;
	init->terminal = cfg->process->terminal;
	init->stdio = sp.agent;
	sp.agent = (struct runtime_stdio){ -1, -1, -1, -1 };
	if (plan.wait_mapped)
		r = map_user_ns(cfg, pid, sync, err);

out_stdio:
	process_stdio_close_child(&sp);
	process_stdio_close_agent(&sp.agent);
out_join:
	close_fds(plan.join_fds, NS_COUNT);
	safe_close(child_sock);
	return r;
}

static int container_init_memory_events(struct runtime_container *ctr,
					struct husk_error *err)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/memory.events", ctr->cgroup);
	if (access(path, F_OK) < 0)
		return 0;
	ctr->memory_events = strdup(path);
	if (!ctr->memory_events)
		return husk_error_set(err, ENOMEM, "container %s: out of memory", ctr->id);
	return 0;
}

/* The init reported SYNC_READY: keep its sync socket and namespaces. */
int container_create_ready(struct runtime_op *op)
{
	struct runtime_container *ctr = op->ctr;

	ctr->sync_fd = TAKE_FD(op->sync_fd);
	if (ctr->processes->exited)
		ctr->state = RUNTIME_STOPPED;
	return open_container_ns(ctr, ctr->processes->pid, &op->err);
}


/* cgroup, limits and the init process: the create steps up to its wait. */
static int create_setup(struct runtime *rt, struct runtime_op *op)
{
	struct runtime_container *ctr = op->ctr;
	int child_sock = -1;
	int r;

	r = cgroup_create(rt->cgroup_root, ctr->sandbox_id, ctr->id, &ctr->cgroup, &op->err);
	if (r == 0)
		r = cgroup_apply_resources(ctr->cgroup, &ctr->cfg->resources, &op->err);
	if (r == 0)
		r = container_init_memory_events(ctr, &op->err);
	if (r == 0)
		r = op_sync_pair(op, &child_sock, &op->err);
	if (r == 0)
		r = spawn_init(ctr, op->proc, op->sync_fd, child_sock, &op->err);
	if (r == 0)
		r = op_wait_setup(op, STEP_WAIT_READY);
	return r;
}

int runtime_container_create_begin(struct runtime *rt, const char *sandbox_id,
				   const char *id, const char *exec_id,
				   struct container_config *cfg,
				   struct runtime_op **out, struct husk_error *err)
{
	struct runtime_container *ctr;
	struct runtime_op *op;
	int r;

	if (runtime_id_validate(sandbox_id, "sandbox_id", err) < 0 ||
	    runtime_id_validate(id, "container_id", err) < 0 ||
	    runtime_id_validate(exec_id, "exec_id", err) < 0) {
		container_config_free(cfg);
		return -EINVAL;
	}
	if (runtime_container_id_taken(rt, id)) {
		container_config_free(cfg);
		return husk_error_set(err, EEXIST, "container %s already exists", id);
	}
	ctr = container_alloc(sandbox_id, id, cfg);
	if (!ctr) {
		container_config_free(cfg);
		return husk_error_set(err, ENOMEM, "container %s: out of memory", id);
	}
	ctr->creating = true;
	ctr->next = rt->containers;
	rt->containers = ctr;
	ctr->processes = process_new(ctr, exec_id);
	r = ctr->processes ? op_new(rt, OP_CREATE, "container setup", ctr, -1, &op, err)
			   : husk_error_set(err, ENOMEM, "out of memory");
	if (r < 0) {
		husk_error_prefix(err, "container %s: ", id);
		container_discard(rt, ctr);
		return r;
	}
	op->proc = ctr->processes;
	r = create_setup(rt, op);
	if (r < 0 && op->proc->pid <= 0) {
		/* nothing runs yet: undo at once */
		husk_error_prefix(&op->err, "container %s: ", id);
		if (err)
			*err = op->err;
		op_finish(op, r);
		op_release(op);
		return r;
	}
	if (r < 0)
		op_fail(op, r);	/* reported by runtime_op_advance() once undone */
	*out = op;
	return 0;
}

int runtime_container_create(struct runtime *rt, const char *sandbox_id,
			     const char *id, const char *exec_id,
			     struct container_config *cfg,
			     struct runtime_container **out,
			     struct husk_error *err)
{
	struct runtime_op *op;
	int r;

	r = runtime_container_create_begin(rt, sandbox_id, id, exec_id, cfg, &op, err);
	if (r < 0)
		return r;
	r = op_wait(op, err);
	if (r == 0)
		*out = runtime_op_container(op);
	runtime_op_free(op);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Start, exec                                                               */

int runtime_container_start_begin(struct runtime *rt, struct runtime_container *ctr,
				  struct runtime_op **out, struct husk_error *err)
{
	struct runtime_op *op;
	int r;

	if (ctr->state != RUNTIME_CREATED || ctr->sync_fd < 0)
		return husk_error_set(err, EINVAL, "container %s: not in the created state",
				      ctr->id);
	/* the socket is the op's from here, also when it fails to start */
	r = op_new(rt, OP_START, "start", ctr, TAKE_FD(ctr->sync_fd), &op, err);
	if (r < 0)
		return container_error(err, ctr, r);
	r = sync_send(op->sync_fd, SYNC_GO, "start", err);
	if (r < 0) {
		op_release(op);
		return container_error(err, ctr, r);
	}
	op->proc = ctr->processes;
	ctr->n_ops++;
	/* until EOF: the socket closes on execve */
	r = op_wait_setup(op, STEP_WAIT_EXEC);
	if (r < 0)
		op_fail(op, r);
	*out = op;
	return 0;
}

int runtime_container_start(struct runtime *rt, struct runtime_container *ctr,
			    struct husk_error *err)
{
	struct runtime_op *op;
	int r;

	r = runtime_container_start_begin(rt, ctr, &op, err);
	if (r < 0)
		return r;
	r = op_wait(op, err);
	runtime_op_free(op);
	return r;
}

/*
 * Clone an exec'd process (through an intermediate that joins the
 * container's namespaces).  It talks over child_sock (closed here); sync
 * is the agent's end.
 */
static int spawn_exec(struct runtime_container *ctr, struct runtime_process *proc,
		      const struct process_config *pc, int sync, int child_sock,
		      struct husk_error *err)
{
	struct process_stdio_pair sp;
	struct child_plan plan = { 0 };
	_cleanup_close_ int cgroup_fd = -1;
	pid_t pid;
	int r;

	cgroup_fd = open(ctr->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgroup_fd < 0) {
		safe_close(child_sock);
		return husk_error_seterrno(err, errno, "open %s", ctr->cgroup);
	}
	r = process_stdio_open(pc, &sp, err);
	if (r < 0) {
		safe_close(child_sock);
		return r;
	}
	plan.sync_fd = child_sock;
	memcpy(plan.stdio, sp.child, sizeof(plan.stdio));
	plan.proc = pc;
	plan.cap_mask = capability_mask();
	memcpy(plan.join_fds, ctr->ns_fds, sizeof(plan.join_fds));

	pid = clone_into_cgroup(0, cgroup_fd);
	if (pid == 0) {
		close(sync);
		child_run_exec(&plan);
	}
	safe_close(child_sock);
	process_stdio_close_child(&sp);
	if (pid < 0) {
		r = husk_error_seterrno(err, errno, "clone3 into %s", ctr->cgroup);
	} else {
		proc->terminal = pc->terminal;
		proc->stdio = sp.agent;
		sp.agent = (struct runtime_stdio){ -1, -1, -1, -1 };
	}
	process_stdio_close_agent(&sp.agent);
	return r;
}

/*
 * The intermediate named the process.  If the loop already reaped that pid
 * (the process may exec and exit before this op reads the message), its
 * status waits among the unclaimed exits.
 */
void exec_learn_pid(struct runtime_op *op, pid_t pid)
{
	struct runtime *rt = op->rt;

	op->proc->pid = pid;
	for (unsigned int i = 0; i < RUNTIME_UNCLAIMED_EXITS; i++) {
		struct unclaimed_exit *u = &rt->unclaimed[i];

		if (u->pid == pid && pid > 0) {
			op->proc->exited = true;
			op->proc->exit_code = process_exit_code(u->status);
			u->pid = 0;
			return;
		}
	}
}

static struct runtime_process *process_lookup(struct runtime_container *ctr,
					      const char *exec_id)
{
	for (struct runtime_process *p = ctr->processes; p; p = p->next)
		if (!p->forgotten && strcmp(p->exec_id, exec_id) == 0)
			return p;
	return NULL;
}

static int exec_check(struct runtime_container *ctr, const char *exec_id,
		      struct husk_error *err)
{
	if (runtime_id_validate(exec_id, "exec_id", err) < 0)
		return -EINVAL;
	if (ctr->killing)
		return husk_error_set(err, EBUSY, "container %s: being removed", ctr->id);
	if (ctr->state != RUNTIME_RUNNING)
		return husk_error_set(err, EINVAL, "container %s: not running", ctr->id);
	if (process_lookup(ctr, exec_id))
		return husk_error_set(err, EEXIST, "container %s: exec id %s is taken",
				      ctr->id, exec_id);
	return 0;
}

int runtime_exec_begin(struct runtime *rt, struct runtime_container *ctr,
		       const char *exec_id, struct process_config *pc,
		       struct runtime_op **out, struct husk_error *err)
{
	struct runtime_process *proc, **tail;
	struct runtime_op *op;
	int child_sock = -1;
	int r;

	r = exec_check(ctr, exec_id, err);
	if (r < 0)
		goto out;
	proc = process_new(ctr, exec_id);
	if (!proc) {
		r = husk_error_set(err, ENOMEM, "container %s: out of memory", ctr->id);
		goto out;
	}
	r = op_new(rt, OP_EXEC, "exec", ctr, -1, &op, err);
	if (r < 0) {
		process_free(proc);
		container_error(err, ctr, r);
		goto out;
	}
	r = op_sync_pair(op, &child_sock, err);
	if (r == 0)
		r = spawn_exec(ctr, proc, pc, op->sync_fd, child_sock, err);
	if (r < 0) {
		op_release(op);
		process_free(proc);
		container_error(err, ctr, r);
		goto out;
	}
	/* listed (not found) from now on, so its exit is recorded */
	proc->setting_up = true;
	for (tail = &ctr->processes; *tail; tail = &(*tail)->next)
		;
	*tail = proc;
	op->proc = proc;
	ctr->n_ops++;
	/* first the intermediate names the process, then the process itself
	 * reports a failure or closes the socket by exec'ing */
	r = op_wait_setup(op, STEP_WAIT_PID);
	if (r < 0)
		op_fail(op, r);
	*out = op;
out:
	process_config_free(pc);
	return r < 0 ? r : 0;
}

int runtime_exec(struct runtime *rt, struct runtime_container *ctr,
		 const char *exec_id, struct process_config *pc,
		 struct runtime_process **out, struct husk_error *err)
{
	struct runtime_op *op;
	int r;

	r = runtime_exec_begin(rt, ctr, exec_id, pc, &op, err);
	if (r < 0)
		return r;
	r = op_wait(op, err);
	if (r == 0)
		*out = runtime_op_process(op);
	runtime_op_free(op);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Signals, resources, freeze                                                */

int runtime_signal(struct runtime *rt, struct runtime_container *ctr,
		   struct runtime_process *proc, int sig, struct husk_error *err)
{
	if (sig <= 0 || sig >= NSIG)
		return husk_error_set(err, EINVAL, "signal %d is not valid", sig);
	if (!proc)
		return container_error(err, ctr, cgroup_signal_all(ctr->cgroup, sig, err));
	if (proc->exited || proc->pid <= 0)
		return husk_error_set(err, ESRCH, "container %s: process %s has exited",
				      ctr->id, proc->exec_id);
	if (kill(proc->pid, sig) < 0)
		return husk_error_seterrno(err, errno, "container %s: kill %s",
					   ctr->id, proc->exec_id);
	return 0;
}

int runtime_container_update(struct runtime *rt, struct runtime_container *ctr,
			     const Grpc__LinuxResources *res,
			     struct husk_error *err)
{
	struct resources_config rc;
	int r;

	r = spec_resources_parse(res, "resources", &rc, err);
	if (r < 0)
		return r;
	r = cgroup_apply_resources(ctr->cgroup, &rc, err);
	resources_config_clear(&rc);
	return container_error(err, ctr, r);
}

int runtime_container_pause(struct runtime *rt, struct runtime_container *ctr,
			    struct husk_error *err)
{
	int r;

	if (ctr->state != RUNTIME_RUNNING)
		return husk_error_set(err, EINVAL, "container %s: not running", ctr->id);
	r = cgroup_freeze(ctr->cgroup, true, err);
	if (r < 0)
		return r;
	ctr->state = RUNTIME_PAUSED;
	return 0;
}

int runtime_container_resume(struct runtime *rt, struct runtime_container *ctr,
			     struct husk_error *err)
{
	int r;

	if (ctr->state != RUNTIME_PAUSED)
		return husk_error_set(err, EINVAL, "container %s: not paused", ctr->id);
	r = cgroup_freeze(ctr->cgroup, false, err);
	if (r < 0)
		return r;
	ctr->state = ctr->processes->exited ? RUNTIME_STOPPED : RUNTIME_RUNNING;
	return 0;
}

int runtime_container_pids(struct runtime_container *ctr, pid_t **pids,
			   size_t *n, struct husk_error *err)
{
	return cgroup_read_pids(ctr->cgroup, pids, n, err);
}

int runtime_stats(struct runtime_container *ctr, struct runtime_stats *st,
		  struct husk_error *err)
{
	return cgroup_read_stats(ctr->cgroup, st, err);
}

int runtime_container_oom_kills(struct runtime_container *ctr, uint64_t *count,
				struct husk_error *err)
{
	int r = cgroup_read_key(ctr->cgroup, "memory.events", "oom_kill", count);

	if (r < 0)
		return husk_error_seterrno(err, -r, "container %s: memory.events oom_kill",
					   ctr->id);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Remove                                                                    */

int runtime_container_kill_begin(struct runtime *rt, struct runtime_container *ctr,
				 unsigned int timeout_sec, struct runtime_op **out,
				 struct husk_error *err)
{
	struct runtime_op *op;
	int r;

	if (ctr->killing)
		return husk_error_set(err, EBUSY, "container %s: removal in progress", ctr->id);
	if (ctr->n_ops)
		return husk_error_set(err, EBUSY, "container %s: a start or exec is in progress",
				      ctr->id);
	r = op_new(rt, OP_KILL, "remove", ctr, -1, &op, err);
	if (r < 0)
		return container_error(err, ctr, r);
	/* a frozen task only dies once thawed */
	if (ctr->state == RUNTIME_PAUSED)
		(void)cgroup_freeze(ctr->cgroup, false, NULL);
	ctr->killing = true;
	r = op_start_killing(op, timeout_sec ? timeout_sec : REMOVE_DEFAULT_TIMEOUT_S, true);
	if (r < 0)
		op_fail(op, r);
	*out = op;
	return 0;
}

int runtime_container_remove(struct runtime *rt, struct runtime_container *ctr,
			     unsigned int timeout_sec, struct husk_error *err)
{
	struct runtime_op *op;
	int r;

	r = runtime_container_kill_begin(rt, ctr, timeout_sec, &op, err);
	if (r < 0)
		return r;
	r = op_wait(op, err);
	runtime_op_free(op);
	if (r == 0)
		r = cgroup_remove(ctr->cgroup, err);
	if (r < 0)
		return r;
	container_unlink(rt, ctr);
	container_free(ctr);
	return 0;
}

void runtime_free(struct runtime *rt)
{
	if (!rt)
		return;
	/* their owners should have freed them; cancel what is left */
	while (rt->ops)
		runtime_op_free(rt->ops);
	while (rt->containers) {
		struct runtime_container *ctr = rt->containers;

		if (runtime_container_remove(rt, ctr, 0, NULL) < 0) {
			/* unkillable: forget it rather than loop forever */
			container_unlink(rt, ctr);
			container_free(ctr);
		}
	}
	free(rt->cgroup_root);
	free(rt);
}
