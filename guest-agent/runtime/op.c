// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Runtime operations that wait (see runtime.h): the engine that drives a
 * struct runtime_op through its steps without ever blocking: the sync
 * socket's messages, the setup deadline, the polling tick of a kill, the
 * failure path that undoes a create.  What each step does to containers
 * and processes lives in runtime.c.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "cgroup.h"
#include "internal.h"

/* ------------------------------------------------------------------------ */
/* Receiving from a child being set up                                      */

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

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* The op engine                                                             */

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
int op_new(struct runtime *rt, enum op_kind kind, const char *who,
	   struct runtime_container *ctr, int sync_fd, struct runtime_op **out,
	   struct husk_error *err)
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
int op_sync_pair(struct runtime_op *op, int *child_sock, struct husk_error *err)
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

void op_release(struct runtime_op *op)
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
int op_wait_setup(struct runtime_op *op, enum op_step step)
{
	op->step = step;
	return op_arm_timer(op, RUNTIME_SETUP_TIMEOUT_MS, 0);
}

/* SIGKILL what runs in the container; the op ends once its cgroup is empty. */
int op_start_killing(struct runtime_op *op, unsigned int timeout_s, bool notify)
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

void op_finish(struct runtime_op *op, int r)
{
	op->step = STEP_DONE;
	op->result = r;
	op->sync_fd = safe_close(op->sync_fd);
	(void)op_arm_timer(op, 0, 0);
	op_settle(op);
}

/*
 * A step failed with r (op->err says why).  A create first kills what it
 * made and reports r once the cgroup is empty; the others end now.
 */
void op_fail(struct runtime_op *op, int r)
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

static void op_step(struct runtime_op *op)
{
	struct sync_msg msg;
	int r;

	switch (op->step) {
	case STEP_WAIT_READY:
		r = sync_consume(op->sync_fd, SYNC_READY, op->proc, &msg, op->who, &op->err);
		if (r > 0)
			r = container_create_ready(op);
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
int op_wait(struct runtime_op *op, struct husk_error *err)
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
