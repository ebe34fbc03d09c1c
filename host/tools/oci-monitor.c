// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The init monitor: the host process standing for a container's init.
 * create forks it; it boots the sandbox, creates the container, then
 * relays the init's stdio, forwards the signals it gets, serves the
 * control socket (start, kill, exec, ps, delete; pause, resume, update and
 * stats in oci-monitor-cgroup.c) and exits with the init's
 * status, taking the VM with it.  Its pid is the one in --pid-file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "oci.h"

#define MAX_EXECS 32
#define EXIT_KILLED (128 + SIGKILL)

struct exec_proc {
	int conn;			/* the exec monitor's connection, -1: free slot */
	struct husk_container *ctr;	/* the sandbox's own, or a pod member's */
	struct husk_process *proc;
	pid_t peer;
	bool peer_gone;			/* the exec monitor hung up: stop polling it */
};

struct monitor {
	const char *id;
	const char *bundle;
	int dir_fd;
	struct husk_spec *spec;
	struct husk_sandbox *sb;
	struct husk_container *ctr;
	struct husk_process *init;
	struct oci_stdio io;
	struct oci_relay relay;
	int signal_fd, listen_fd;
	int cancel_fd;			/* while booting: a signal, or create gone */
	bool started, exited;
	struct oci_cgroup_state cgroup;	/* pause, OOM count: oci-monitor-cgroup.c */
	int status;
	unsigned int exec_seq;
	struct exec_proc execs[MAX_EXECS];
	struct oci_pod pod;		/* containers that joined our VM */
};

/* Tear the sandbox down and leave with status: the shim reaps it. */
static void __attribute__((noreturn)) monitor_finish(struct monitor *m, int status)
{
	oci_relay_close(&m->relay);
	for (size_t i = 0; i < MAX_EXECS; i++)
		if (m->execs[i].conn >= 0)
			close(m->execs[i].conn);
	husk_sandbox_destroy(m->sb);
	oci_pod_teardown(&m->pod);
	husk_spec_free(m->spec);
	unlinkat(m->dir_fd, OCI_CTL_SOCKET, 0);
	_exit(status);
}

/* Whether sig's default action ends a process (what a never-started init would do). */
static bool signal_terminates(int sig)
{
	switch (sig) {
	case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:
	case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
		return false;
	default:
		return true;
	}
}

static void reply(int conn, const char *text)
{
	(void)oci_ctl_send(conn, text, strlen(text), NULL, 0);
}

static void reply_error(int conn, const struct husk_error *err, int r)
{
	oci_ctl_reply_error(conn, err, r);
}

static void handle_start(struct monitor *m, int conn)
{
	struct husk_error err = { 0 };
	int r;

	if (m->started) {
		reply(conn, "err 22 cannot start an already running container");
		return;
	}
	r = husk_container_start(m->ctr, &err);
	if (r < 0) {
		reply_error(conn, &err, r);
		return;
	}
	m->started = true;
	reply(conn, "ok");
}

static void handle_kill(struct monitor *m, int conn, const char *args)
{
	struct husk_error err = { 0 };
	int sig = 0, all = 0, r;

	if (sscanf(args, "%d %d", &sig, &all) != 2 || sig <= 0 || sig >= NSIG) {
		reply(conn, "err 22 bad kill request");
		return;
	}
	/* A created init never ran: a deadly signal ends it without asking the guest. */
	if (!m->started && signal_terminates(sig)) {
		reply(conn, "ok");
		monitor_finish(m, 128 + sig);
	}
	if (all)
		oci_monitor_execs_signal(m, m->ctr, sig);
	r = husk_process_signal(m->init, sig, &err);
	if (r < 0) {
		reply_error(conn, &err, r);
		return;
	}
	oci_monitor_cgroup_killed(m->ctr, &m->cgroup, sig);
	reply(conn, "ok");
}

void oci_monitor_execs_signal(struct monitor *m, const struct husk_container *ctr, int sig)
{
	for (size_t i = 0; i < MAX_EXECS; i++)
		if (m->execs[i].conn >= 0 && m->execs[i].ctr == ctr)
			(void)husk_process_signal(m->execs[i].proc, sig, NULL);
}

/* Append " PID" for each exec monitor of ctr. */
void oci_monitor_execs_list(struct monitor *m, const struct husk_container *ctr, char *buf,
			    size_t size)
{
	size_t len = strlen(buf);

	for (size_t i = 0; i < MAX_EXECS && len < size; i++)
		if (m->execs[i].conn >= 0 && m->execs[i].ctr == ctr && m->execs[i].peer > 0)
			len += (size_t)snprintf(buf + len, size - len, " %d",
						(int)m->execs[i].peer);
}

static void handle_ps(struct monitor *m, int conn)
{
	char buf[32 * (MAX_EXECS + 1)];

	snprintf(buf, sizeof(buf), "ok %d", (int)getpid());
	oci_monitor_execs_list(m, m->ctr, buf, sizeof(buf));
	reply(conn, buf);
}

/* Apply one KEY=VALUE of an exec request to the process's spec. */
static int exec_apply(struct husk_spec *spec, const char *item, const char **args,
		      size_t *n_args, struct husk_process_options *opts,
		      struct husk_error *err)
{
	const char *v = strchr(item, '=');
	unsigned int uid, gid;

	if (!v)
		return husk_error_set(err, EINVAL, "exec: bad item '%s'", item);
	v++;
	if (!strncmp(item, "container=", 10))
		return 0;	/* the target, see exec_target() */
	if (!strncmp(item, "arg=", 4)) {
		if (*n_args >= 255)
			return husk_error_set(err, E2BIG, "exec: too many args");
		args[(*n_args)++] = v;
		return 0;
	}
	if (!strncmp(item, "env=", 4))
		return husk_spec_set_env(spec, v, err);
	if (!strncmp(item, "cwd=", 4))
		return husk_spec_set_cwd(spec, v, err);
	if (!strncmp(item, "user=", 5)) {
		if (sscanf(v, "%u:%u", &uid, &gid) != 2)
			return husk_error_set(err, EINVAL, "exec: bad user '%s'", v);
		husk_spec_set_user(spec, uid, gid);
		return 0;
	}
	if (!strncmp(item, "tty=", 4)) {
		husk_spec_set_terminal(spec, !strcmp(v, "1"));
		return 0;
	}
	if (!strncmp(item, "size=", 5)) {
		if (sscanf(v, "%hu %hu", &opts->rows, &opts->cols) != 2)
			return husk_error_set(err, EINVAL, "exec: bad size '%s'", v);
		return 0;
	}
	return husk_error_set(err, EINVAL, "exec: unknown item '%s'", item);
}

static struct exec_proc *exec_slot(struct monitor *m)
{
	for (size_t i = 0; i < MAX_EXECS; i++)
		if (m->execs[i].conn < 0)
			return &m->execs[i];
	return NULL;
}

static pid_t peer_pid(int conn)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ? 0 : cred.pid;
}

/*
 * Our container, or the pod member a "container=ID" item names, with its
 * bundle and cgroup state; NULL: err says why.
 */
static struct husk_container *exec_target(struct monitor *m, const char *msg, size_t len,
					  const char **bundle, struct oci_cgroup_state **cg,
					  struct husk_error *err)
{
	for (const char *p = msg + 5; p < msg + len; p += strlen(p) + 1) {
		struct oci_pod_member *mb;

		if (strncmp(p, "container=", 10) || !strcmp(p + 10, m->id))
			continue;
		mb = oci_pod_find_running(&m->pod, p + 10, err);
		if (!mb)
			return NULL;
		*bundle = mb->bundle;
		*cg = &mb->cgroup;
		return mb->ctr;
	}
	if (!m->started || m->exited) {
		husk_error_set(err, EINVAL, "cannot exec in a stopped container: container not running");
		return NULL;
	}
	*bundle = m->bundle;
	*cg = &m->cgroup;
	return m->ctr;
}

/* The items follow "exec\0" up to len; the reply carries the stdio fds. */
static bool handle_exec(struct monitor *m, int conn, const char *msg, size_t len)
{
	struct husk_process_options opts = { .open_stdin = true };
	struct husk_stdio stdio = { -1, -1, -1 };
	struct husk_error err = { 0 };
	struct husk_spec *spec = NULL;
	struct exec_proc *slot = exec_slot(m);
	struct oci_cgroup_state *cg = NULL;
	struct husk_container *ctr;
	const char *args[256], *bundle = NULL;
	size_t n_args = 0;
	char exec_id[64];
	int r;

	ctr = exec_target(m, msg, len, &bundle, &cg, &err);
	if (!ctr) {
		reply_error(conn, &err, -err.code);
		return false;
	}
	if (cg->paused) {
		reply(conn, "err 16 cannot exec in a paused container");
		return false;
	}
	if (!slot) {
		reply(conn, "err 16 too many exec processes");
		return false;
	}
	r = husk_spec_from_bundle(bundle, &spec, &err);
	for (const char *p = msg + 5; r == 0 && p < msg + len; p += strlen(p) + 1)
		r = exec_apply(spec, p, args, &n_args, &opts, &err);
	args[n_args] = NULL;
	if (r == 0 && !n_args)
		r = husk_error_set(&err, EINVAL, "exec: args must not be empty");
	if (r == 0)
		r = husk_spec_set_args(spec, args, &err);
	snprintf(exec_id, sizeof(exec_id), "exec-%u", ++m->exec_seq);
	if (r == 0)
		r = husk_container_exec(ctr, exec_id, spec, &opts, &stdio, &slot->proc, &err);
	husk_spec_free(spec);
	if (r < 0) {
		reply_error(conn, &err, r);
		return false;
	}
	oci_ctl_send_stdio(conn, &stdio);
	slot->conn = conn;
	slot->ctr = ctr;
	slot->peer = peer_pid(conn);
	return true;
}

/* One request per connection; exec connections stay open. */
static void handle_request(struct monitor *m, int conn)
{
	_cleanup_free_ char *msg = malloc(OCI_CTL_MSG_MAX);
	struct timeval tv = { .tv_sec = 5 };
	ssize_t n;

	if (!msg) {
		close(conn);
		return;
	}
	(void)setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = oci_ctl_recv(conn, msg, OCI_CTL_MSG_MAX, NULL, 0, NULL);
	if (n <= 0) {
		close(conn);
		return;
	}
	oci_debug("monitor %s: request %s", m->id, msg);
	if (!strcmp(msg, "start"))
		handle_start(m, conn);
	else if (!strncmp(msg, "kill ", 5))
		handle_kill(m, conn, msg + 5);
	else if (!strcmp(msg, "ps"))
		handle_ps(m, conn);
	else if (!strcmp(msg, "exec") && handle_exec(m, conn, msg, (size_t)n))
		return;
	else if (!strcmp(msg, "join")) {
		if (oci_pod_join(&m->pod, m->sb, conn, msg, (size_t)n))
			return;
	}
	else if (!strcmp(msg, "delete")) {
		char ok[32];

		snprintf(ok, sizeof(ok), "ok %d", (int)getpid());
		reply(conn, ok);
		monitor_finish(m, m->exited ? m->status : EXIT_KILLED);
	} else if (strcmp(msg, "exec") &&
		   !oci_monitor_cgroup_request(m, m->ctr, m->started && !m->exited,
					       &m->cgroup, conn, msg, (size_t)n))
		reply(conn, "err 22 unknown request");
	close(conn);
}

struct husk_sandbox *oci_monitor_sandbox(const struct monitor *m)
{
	return m->sb;
}

struct oci_cgroup_state *oci_monitor_cgroup_of(struct monitor *m, const char *id)
{
	struct oci_pod_member *mb;

	if (!strcmp(id, m->id))
		return &m->cgroup;
	mb = oci_pod_find(&m->pod, id);
	return mb ? &mb->cgroup : NULL;
}

static void exec_forget(struct exec_proc *e)
{
	close(e->conn);
	e->conn = -1;
	e->ctr = NULL;
	e->proc = NULL;
	e->peer = 0;
	e->peer_gone = false;
}

/* "signal N" or "resize R C" from an exec monitor; EOF: it died, so does the process. */
static void handle_exec_conn(struct exec_proc *e)
{
	char msg[128];
	ssize_t n = oci_ctl_recv(e->conn, msg, sizeof(msg), NULL, 0, NULL);
	unsigned short rows, cols;
	int sig;

	if (n <= 0) {
		(void)husk_process_signal(e->proc, SIGKILL, NULL);
		e->peer_gone = true;
		return;
	}
	if (sscanf(msg, "signal %d", &sig) == 1)
		(void)husk_process_signal(e->proc, sig, NULL);
	else if (sscanf(msg, "resize %hu %hu", &rows, &cols) == 2)
		(void)husk_process_resize(e->proc, rows, cols, NULL);
}

static void handle_exec_exit(struct exec_proc *e)
{
	char msg[32];
	int status = EXIT_KILLED;

	if (husk_process_wait(e->proc, 0, &status, NULL) == -ETIMEDOUT)
		return;
	snprintf(msg, sizeof(msg), "exit %d", status);
	reply(e->conn, msg);
	exec_forget(e);
}

/* ctr leaves the VM: its exec processes die, their monitors hear EOF (exit 137). */
void oci_monitor_execs_drop(struct monitor *m, const struct husk_container *ctr)
{
	for (size_t i = 0; i < MAX_EXECS; i++)
		if (m->execs[i].conn >= 0 && m->execs[i].ctr == ctr) {
			(void)husk_process_signal(m->execs[i].proc, SIGKILL, NULL);
			exec_forget(&m->execs[i]);
		}
}

static void handle_signal(struct monitor *m)
{
	struct signalfd_siginfo si;
	struct winsize ws;

	if (read(m->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGWINCH) {
		if (m->io.tty && ioctl(m->io.out, TIOCGWINSZ, &ws) == 0 && ws.ws_row)
			(void)husk_process_resize(m->init, ws.ws_row, ws.ws_col, NULL);
		return;
	}
	if (!m->started && signal_terminates((int)si.ssi_signo))
		monitor_finish(m, 128 + (int)si.ssi_signo);
	(void)husk_process_signal(m->init, (int)si.ssi_signo, NULL);
}

static void handle_init_exit(struct monitor *m)
{
	struct husk_error err = { 0 };

	if (husk_process_wait(m->init, 0, &m->status, &err) == -ETIMEDOUT)
		return;
	if (err.code) {
		oci_error("container %s: %s", m->id, err.msg);
		m->status = EXIT_KILLED;
	}
	m->exited = true;
}

enum { P_IN, P_OUT, P_ERR, P_SIG, P_LISTEN, P_VM, P_EXIT, P_FIXED };

static void __attribute__((noreturn)) monitor_loop(struct monitor *m)
{
	struct pollfd pfd[P_FIXED + 2 * MAX_EXECS + 2 * OCI_POD_MAX_MEMBERS];

	for (;;) {
		size_t n = P_FIXED;

		if (m->exited && !oci_relay_output_open(&m->relay))
			monitor_finish(m, m->status);
		oci_relay_pollfds(&m->relay, pfd);
		pfd[P_SIG] = (struct pollfd){ .fd = m->signal_fd, .events = POLLIN };
		pfd[P_LISTEN] = (struct pollfd){ .fd = m->listen_fd, .events = POLLIN };
		pfd[P_VM] = (struct pollfd){ .fd = husk_vm_fd(husk_sandbox_vm(m->sb)),
					     .events = POLLIN };
		pfd[P_EXIT] = (struct pollfd){ .fd = m->exited ? -1 :
					       husk_process_exit_fd(m->init), .events = POLLIN };
		for (size_t i = 0; i < MAX_EXECS; i++) {
			bool used = m->execs[i].conn >= 0;

			pfd[n++] = (struct pollfd){ .fd = used && !m->execs[i].peer_gone ?
						    m->execs[i].conn : -1, .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = used ?
				husk_process_exit_fd(m->execs[i].proc) : -1, .events = POLLIN };
		}
		n += oci_pod_pollfds(&m->pod, pfd + n);
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			oci_error("container %s: monitor poll: %m", m->id);
			monitor_finish(m, EXIT_KILLED);
		}
		oci_relay_handle(&m->relay, pfd);
		if (pfd[P_SIG].revents)
			handle_signal(m);
		if (pfd[P_EXIT].revents)
			handle_init_exit(m);
		for (size_t i = 0; i < MAX_EXECS; i++) {
			struct exec_proc *e = &m->execs[i];

			if (e->conn >= 0 && pfd[P_FIXED + 2 * i + 1].revents)
				handle_exec_exit(e);
			if (e->conn >= 0 && pfd[P_FIXED + 2 * i].revents)
				handle_exec_conn(e);
		}
		oci_pod_handle(&m->pod, m, pfd + P_FIXED + 2 * MAX_EXECS);
		if (pfd[P_LISTEN].revents) {
			int conn = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (conn >= 0)
				handle_request(m, conn);
		}
		if (pfd[P_VM].revents && husk_vm_process(husk_sandbox_vm(m->sb), NULL) == 1 &&
		    !m->exited) {
			oci_error("container %s: the VM died", m->id);
			monitor_finish(m, EXIT_KILLED);
		}
	}
}

/* "husk.vm.cpus" / "husk.vm.memory" (MiB) from the recorded annotations. */
static int vm_size(const struct oci_state *st, struct husk_vm_config *vm,
		   struct husk_error *err)
{
	for (size_t i = 0; i < st->n_annotations; i++) {
		const char *key = st->annotations[i][0], *val = st->annotations[i][1];
		char *end;
		unsigned long v;

		if (strcmp(key, "husk.vm.cpus") && strcmp(key, "husk.vm.memory"))
			continue;
		errno = 0;
		v = strtoul(val, &end, 10);
		if (errno || *end || end == val || !v ||
		    (!strcmp(key, "husk.vm.cpus") ? v > 255 : v < 64 || v > (1UL << 20)))
			return husk_error_set(err, EINVAL, "annotation %s: bad value '%s' "
					      "(cpus 1..255, memory in MiB 64..1048576)",
					      key, val);
		if (!strcmp(key, "husk.vm.cpus"))
			vm->cpus = (unsigned int)v;
		else
			vm->memory_mib = (unsigned int)v;
	}
	return 0;
}

static int monitor_setup(struct monitor *m, struct husk_error *err)
{
	struct husk_process_options popts = { .open_stdin = true };
	struct husk_stdio stdio = { -1, -1, -1 };
	struct husk_sandbox_config cfg;
	struct oci_state st;
	bool pod_sandbox;
	char kernel[PATH_MAX], initrd[PATH_MAX];
	const char *accel = getenv("HUSK_ACCEL");
	struct winsize ws;
	int r;

	r = oci_state_read(m->dir_fd, &st, err);
	if (r < 0)
		return r;
	husk_sandbox_config_init(&cfg);
	r = vm_size(&st, &cfg.vm, err);
	pod_sandbox = oci_pod_is_sandbox(&st);
	oci_state_release(&st);
	if (r < 0)
		return r;
	r = husk_spec_from_bundle(m->bundle, &m->spec, err);
	if (r < 0)
		return r;
	/* Members' rootfs and host bind mounts reach the VM through one directory. */
	if (pod_sandbox || husk_spec_host_binds(m->spec)) {
		r = oci_pod_init(&m->pod, m->dir_fd, pod_sandbox, err);
		if (r < 0)
			return r;
		cfg.shared_dir = m->pod.share;
	}
	if (husk_spec_terminal(m->spec) != m->io.tty)
		return husk_error_set(err, EINVAL, m->io.tty ?
				      "--console-socket given but process.terminal is false" :
				      "process.terminal needs --console-socket");
	if (oci_guest_files(kernel, sizeof(kernel), initrd, sizeof(initrd)) < 0)
		return husk_error_set(err, ENOENT, "guest image not found");
	cfg.vm.kernel = kernel;
	cfg.vm.initrd = initrd;
	cfg.vm.vsock = HUSK_VM_VSOCK_VHOST_USER;
	cfg.vm.cmdline = "quiet";
	if (accel && !strcmp(accel, "tcg"))
		cfg.vm.accel = HUSK_VM_ACCEL_TCG;
	else if (accel && !strcmp(accel, "kvm"))
		cfg.vm.accel = HUSK_VM_ACCEL_KVM;
	cfg.id = m->id;
	/* A signal or create's death while the VM boots ends the boot. */
	cfg.cancel_fd = m->cancel_fd;
	r = husk_sandbox_create(&cfg, m->spec, &m->sb, err);
	if (r < 0)
		return r;
	if (m->io.tty && ioctl(m->io.out, TIOCGWINSZ, &ws) == 0 && ws.ws_row) {
		popts.rows = ws.ws_row;
		popts.cols = ws.ws_col;
	}
	r = husk_container_create(m->sb, m->id, m->spec, &popts, &stdio, &m->ctr, err);
	if (r < 0)
		return r;
	m->init = husk_container_process(m->ctr);
	oci_relay_init(&m->relay, &m->io, &stdio);
	m->listen_fd = oci_ctl_listen(m->dir_fd);
	if (m->listen_fd < 0)
		return husk_error_seterrno(err, -m->listen_fd, "control socket");
	return 0;
}

/*
 * One fd for the sandbox's cancel_fd: readable on a signal, or when the
 * read end of create's ready pipe closed (create killed while we boot).
 */
static int boot_cancel_fd(int signal_fd, int ready_fd)
{
	struct epoll_event sig = { .events = EPOLLIN }, ready = { .events = 0 };
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		return -1;
	/* A pipe's write end reports EPOLLERR once its reader is gone. */
	if (epoll_ctl(fd, EPOLL_CTL_ADD, signal_fd, &sig) < 0 ||
	    epoll_ctl(fd, EPOLL_CTL_ADD, ready_fd, &ready) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int oci_monitor_enter(int dir_fd, const struct oci_stdio *io)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	close(dir_fd);
	/* Pin no directory (the bundle's may be unmounted after us); paths are absolute. */
	(void)!chdir("/");
	/* Our own session: a console becomes our terminal, for SIGWINCH. */
	setsid();
	if (io->tty) {
		(void)ioctl(io->out, TIOCSCTTY, 0);
		/* The console is the container's stdio: create's own fds are not ours. */
		for (int i = 0; i < 3; i++)
			(void)dup2(io->out, i);
	}
	return fd;
}

void oci_monitor_main(const char *id, const char *bundle, int dir_fd,
		      struct oci_stdio *io, int ready_fd)
{
	struct monitor m = {
		.id = id, .bundle = bundle, .io = *io, .listen_fd = -1, .cancel_fd = -1,
		.relay = { .from = { -1, -1, -1 }, .to = { -1, -1, -1 } },
	};
	struct husk_error err = { 0 };
	char msg[HUSK_ERROR_MSG_MAX + 32];
	int r;

	oci_globals.no_stderr = true;
	for (size_t i = 0; i < MAX_EXECS; i++)
		m.execs[i].conn = -1;
	m.dir_fd = oci_monitor_enter(dir_fd, io);
	m.signal_fd = oci_monitor_signalfd();
	m.cancel_fd = boot_cancel_fd(m.signal_fd, ready_fd);
	r = m.dir_fd < 0 || m.signal_fd < 0 || m.cancel_fd < 0 ?
		husk_error_seterrno(&err, errno, "monitor setup") : monitor_setup(&m, &err);
	if (m.cancel_fd >= 0)
		close(m.cancel_fd);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "err %d %s", -r, err.msg);
		(void)!write(ready_fd, msg, strlen(msg));
		monitor_finish(&m, 1);
	}
	/* Nobody to tell (create was killed): nobody will ever delete us either. */
	if (write(ready_fd, "ok", 2) != 2)
		monitor_finish(&m, EXIT_KILLED);
	close(ready_fd);
	monitor_loop(&m);
}
