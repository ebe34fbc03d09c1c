// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The parent side of the runtime: containers and their processes as
 * objects, and the steps that create, start, exec, signal and remove them.
 * What the new process does itself lives in child.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "cgroup.h"
#include "internal.h"

#define REMOVE_DEFAULT_TIMEOUT_S 10

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

/*
 * Receive one message without waiting: 1 = got one, 0 = EOF (the child
 * exec'd or died), -EAGAIN = nothing yet.  A passed descriptor lands in
 * *fd (else -1).
 */
static int sync_recv(int sock, struct sync_msg *msg, int *fd, const char *who,
		     struct husk_error *err)
{
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(*msg) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	ssize_t n;

	*fd = -1;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -EAGAIN;
	if (n < 0)
		return husk_error_seterrno(err, errno, "%s: recv", who);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(*msg)) {
		*fd = safe_close(*fd);
		return husk_error_set(err, EPROTO, "%s: short sync message", who);
	}
	msg->text[sizeof(msg->text) - 1] = '\0';
	return 1;
}

static int sync_send(int fd, int type, const char *who, struct husk_error *err)
{
	struct sync_msg msg = { .type = type };

	if (send(fd, &msg, sizeof(msg), MSG_NOSIGNAL) < 0)
		return husk_error_seterrno(err, errno, "%s: send", who);
	return 0;
}

/* A child's SYNC_ERROR becomes the caller's error, in the child's words. */
static int child_error(const struct sync_msg *msg, const char *who,
		       struct husk_error *err)
{
	return husk_error_seterrno(err, msg->value ? msg->value : EIO, "%s: %s",
				   who, msg->text);
}

static int unexpected(const struct sync_msg *msg, const char *who,
		      struct husk_error *err)
{
	if (msg->type == SYNC_ERROR)
		return child_error(msg, who, err);
	return husk_error_set(err, EPROTO, "%s: unexpected sync message %d",
			      who, msg->type);
}

/*
 * Consume what the child has sent so far: 1 once a message of type `want`
 * arrived, 0 at EOF when want is 0 (the child exec'd), -EAGAIN when more
 * is to come.  A pty master sent on the way becomes proc's stdio.
 */
static int sync_consume(int sock, int want, struct runtime_process *proc,
			struct sync_msg *msg, const char *who,
			struct husk_error *err)
{
	for (;;) {
		int fd = -1;
		int r = sync_recv(sock, msg, &fd, who, err);

		if (r > 0 && msg->type == SYNC_PTY && fd >= 0) {
			r = process_adopt_pty(proc, fd, err);
			if (r < 0)
				return r;
			continue;
		}
		safe_close(fd);
		if (r < 0)
			return r;
		if (r == 0)
			return want ? husk_error_set(err, ECHILD,
						     "%s: the process died during setup",
						     who) : 0;
		if (msg->type == want)
			return 1;
		return unexpected(msg, who, err);
	}
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

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
static bool container_reap_exited(struct runtime *rt, struct runtime_container *ctr,
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
/* Pending operations                                                        */

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

/* Polling period while waiting for a killed cgroup to empty. */
#define KILL_TICK_MS 5

static int op_arm_timer(struct runtime_op *op, int first_ms, int period_ms)
{
	struct itimerspec its = {
		.it_value = { first_ms / 1000, (long)(first_ms % 1000) * 1000000 },
		.it_interval = { period_ms / 1000, (long)(period_ms % 1000) * 1000000 },
	};

	if (timerfd_settime(op->timer_fd, 0, &its, NULL) < 0)
		return husk_error_seterrno(&op->err, errno, "%s: timerfd_settime", op->who);
	return 0;
}

/* Did the timer fire since the last look?  Also clears it. */
static bool op_timer_fired(struct runtime_op *op)
{
	uint64_t ticks = 0;

	return read(op->timer_fd, &ticks, sizeof(ticks)) == sizeof(ticks) && ticks > 0;
}

static int op_watch(struct runtime_op *op, int fd, struct husk_error *err)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (epoll_ctl(op->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return husk_error_seterrno(err, errno, "%s: epoll_ctl", op->who);
	return 0;
}

/* A new op watching sync_fd (owned by the op from here, also on failure). */
static int op_new(struct runtime *rt, enum op_kind kind, const char *who,
		  struct runtime_container *ctr, int sync_fd,
		  struct runtime_op **out, struct husk_error *err)
{
	struct runtime_op *op = calloc(1, sizeof(*op));
	int r;

	if (!op) {
		safe_close(sync_fd);
		return husk_error_set(err, ENOMEM, "%s: out of memory", who);
	}
	op->rt = rt;
	op->kind = kind;
	op->who = who;
	op->ctr = ctr;
	op->sync_fd = sync_fd;
	op->epfd = epoll_create1(EPOLL_CLOEXEC);
	op->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (op->epfd < 0 || op->timer_fd < 0) {
		r = husk_error_seterrno(err, errno, "%s: epoll/timerfd", who);
		goto fail;
	}
	r = op_watch(op, op->timer_fd, err);
	if (r == 0 && sync_fd >= 0)
		r = op_watch(op, sync_fd, err);
	if (r < 0)
		goto fail;
	op->next = rt->ops;
	rt->ops = op;
	*out = op;
	return 0;
fail:
	safe_close(op->epfd);
	safe_close(op->timer_fd);
	safe_close(op->sync_fd);
	free(op);
	return r;
}

/*
 * The sync socket pair of a child about to be cloned: the op watches its
 * end before the clone, so nothing can fail between clone and wait.
 */
static int op_sync_pair(struct runtime_op *op, int *child_sock, struct husk_error *err)
{
	int sv[2], r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return husk_error_seterrno(err, errno, "sync socketpair");
	r = op_watch(op, sv[0], err);
	if (r < 0) {
		safe_close(sv[0]);
		safe_close(sv[1]);
		return r;
	}
	op->sync_fd = sv[0];
	*child_sock = sv[1];
	return 0;
}

static void op_release(struct runtime_op *op)
{
	for (struct runtime_op **pp = &op->rt->ops; *pp; pp = &(*pp)->next) {
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	}
	safe_close(op->epfd);
	safe_close(op->timer_fd);
	safe_close(op->sync_fd);
	free(op);
}

/* Wait for a child still being set up, bounded by RUNTIME_SETUP_TIMEOUT_MS. */
static int op_wait_setup(struct runtime_op *op, enum op_step step)
{
	op->step = step;
	return op_arm_timer(op, RUNTIME_SETUP_TIMEOUT_MS, 0);
}

/* SIGKILL what runs in the container; the op ends once its cgroup is empty. */
static int op_start_killing(struct runtime_op *op, unsigned int timeout_s, bool notify)
{
	struct runtime_container *ctr = op->ctr;
	struct runtime_process *init = ctr->processes;

	op->sync_fd = safe_close(op->sync_fd);	/* leaves the epoll set too */
	op->step = STEP_KILLING;
	op->timeout_s = timeout_s;
	op->deadline_ms = now_ms() + (int64_t)timeout_s * 1000;
	op->notify = notify;
	if (init && init->pid > 0 && !init->exited)
		(void)kill(init->pid, SIGKILL);
	return op_arm_timer(op, 1, KILL_TICK_MS);
}

/* 0 once the cgroup is empty and every status known, -EAGAIN until then. */
static int op_kill_step(struct runtime_op *op, struct husk_error *err)
{
	struct runtime_container *ctr = op->ctr;
	int r;

	(void)op_timer_fired(op);
	if (cgroup_is_empty(ctr->cgroup) && container_reap_exited(op->rt, ctr, op->notify))
		return 0;
	r = cgroup_signal_all(ctr->cgroup, SIGKILL, err);
	if (r < 0)
		return r;
	if (now_ms() >= op->deadline_ms)
		return husk_error_set(err, ETIMEDOUT,
				      "container %s: processes still alive after %u s",
				      ctr->id, op->timeout_s);
	return -EAGAIN;
}

static void op_finish(struct runtime_op *op, int r)
{
	struct runtime_container *ctr = op->ctr;
	struct runtime_process *proc = op->proc;

	op->step = STEP_DONE;
	op->result = r;
	op->sync_fd = safe_close(op->sync_fd);
	(void)op_arm_timer(op, 0, 0);
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

/*
 * A step failed with r (op->err says why).  A create first kills what it
 * made and reports r once the cgroup is empty; the others end now.
 */
static void op_fail(struct runtime_op *op, int r)
{
	if (op->kind != OP_CREATE) {
		op_finish(op, r);
		return;
	}
	if (op->step == STEP_KILLING)
		return;		/* already undoing: the first error stands */
	husk_error_prefix(&op->err, "container %s: ", op->ctr->id);
	op->result = r;
	if (op_start_killing(op, REMOVE_DEFAULT_TIMEOUT_S, false) < 0)
		op_finish(op, r);	/* cannot even tick: no timer, give up waiting */
}

static int create_ready(struct runtime_op *op);
static void exec_learn_pid(struct runtime_op *op, pid_t pid);

static void op_step(struct runtime_op *op)
{
	struct sync_msg msg;
	int r;

	switch (op->step) {
	case STEP_WAIT_READY:
		r = sync_consume(op->sync_fd, SYNC_READY, op->proc, &msg, op->who, &op->err);
		if (r > 0)
			r = create_ready(op);
		break;
	case STEP_WAIT_PID:
		r = sync_consume(op->sync_fd, SYNC_PID, op->proc, &msg, op->who, &op->err);
		if (r > 0) {
			exec_learn_pid(op, msg.value);
			op->step = STEP_WAIT_EXEC;
			op_step(op);
			return;
		}
		break;
	case STEP_WAIT_EXEC:
		r = sync_consume(op->sync_fd, 0, op->proc, &msg, op->who, &op->err);
		break;
	case STEP_KILLING:
		/* a create being undone keeps its first error */
		r = op_kill_step(op, op->kind == OP_CREATE ? NULL : &op->err);
		if (r != -EAGAIN && op->kind == OP_CREATE) {
			op_finish(op, op->result);
			return;
		}
		if (r == -EAGAIN)
			return;
		break;
	default:
		return;
	}
	if (r == -EAGAIN) {
		if (!op_timer_fired(op))
			return;
		r = husk_error_set(&op->err, ETIMEDOUT,
				   "%s: no answer from the process within %d ms",
				   op->who, RUNTIME_SETUP_TIMEOUT_MS);
	}
	if (r < 0)
		op_fail(op, r);
	else
		op_finish(op, 0);
}

int runtime_op_fd(const struct runtime_op *op)
{
	return op->epfd;
}

int runtime_op_advance(struct runtime_op *op, struct husk_error *err)
{
	if (op->step != STEP_DONE)
		op_step(op);
	if (op->step != STEP_DONE)
		return -EINPROGRESS;
	if (op->result < 0 && err)
		*err = op->err;
	return op->result;
}

struct runtime_container *runtime_op_container(const struct runtime_op *op)
{
	return op->result == 0 ? op->ctr : NULL;
}

struct runtime_process *runtime_op_process(const struct runtime_op *op)
{
	return op->result == 0 ? op->proc : NULL;
}

/* Drive op to its end on this thread: the blocking form of every call. */
static int op_wait(struct runtime_op *op, struct husk_error *err)
{
	for (;;) {
		struct pollfd pfd = { .fd = op->epfd, .events = POLLIN };
		int r = runtime_op_advance(op, err);

		if (r != -EINPROGRESS)
			return r;
		/* the timerfd bounds every wait; EINTR just goes round again */
		(void)poll(&pfd, 1, -1);
	}
}

void runtime_op_free(struct runtime_op *op)
{
	if (!op)
		return;
	if (op->step != STEP_DONE) {
		op_fail(op, husk_error_set(&op->err, ECANCELED, "%s: cancelled", op->who));
		/* only a create undoing itself is left: bounded by its timeout */
		(void)op_wait(op, NULL);
	}
	op_release(op);
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
static int create_ready(struct runtime_op *op)
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
static void exec_learn_pid(struct runtime_op *op, pid_t pid)
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
