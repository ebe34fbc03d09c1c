// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The VM handle: start (state dir, husk-vsockd, QEMU, QMP), supervise
 * (events, exit), stop with escalation and clean up everything it made.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vm-internal.h"

#define VM_QMP_TIMEOUT_MS 10000
#define VM_VSOCKD_READY_MS 10000
#define VM_VSOCKD_GRACE_MS 2000

struct husk_vm {
	char *name;
	struct vm_paths paths;
	int lock_fd;
	bool keep_logs;
	enum husk_vm_vsock vsock;
	uint32_t guest_cid;
	pid_t qemu_pid;
	int qemu_pidfd;
	pid_t vsockd_pid;
	int vsockd_pidfd;
	struct qmp qmp;		/* qmp.fd < 0 once closed */
	int epoll_fd;
	struct husk_vm_exit exit;
};

static void vm_on_qmp_event(void *data, const char *event,
			    const struct json_doc *doc,
			    const struct json_node *event_data)
{
	struct husk_vm *vm = data;

	if (!strcmp(event, "SHUTDOWN")) {
		const char *reason = json_string(json_get(doc, event_data, "reason"));

		if (json_is_true(json_get(doc, event_data, "guest")))
			vm->exit.guest_shutdown = true;
		if (reason)
			snprintf(vm->exit.shutdown_reason,
				 sizeof(vm->exit.shutdown_reason), "%s", reason);
	} else if (!strcmp(event, "GUEST_PANICKED")) {
		vm->exit.guest_panicked = true;
	} else if (!strcmp(event, "STOP")) {
		vm->exit.stopped = true;
	}
}

static int open_log(const char *path, struct husk_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return husk_error_seterrno(err, errno, "open %s", path);
	return fd;
}

/* The last line of a log, to explain why a helper died. */
static void log_tail(const char *path, char *out, size_t size)
{
	char buf[2048];
	int n = read_small_file(AT_FDCWD, path, buf, sizeof(buf));
	char *line;

	out[0] = '\0';
	if (n <= 0)
		return;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	n = strnlen(line, size - 1);
	memcpy(out, line, n);
	out[n] = '\0';
}

static int write_pid_file(const struct husk_vm *vm, const char *name, pid_t pid,
			  struct husk_error *err)
{
	_cleanup_close_ int dirfd = open(vm->paths.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char text[32];
	int r;

	if (dirfd < 0)
		return husk_error_seterrno(err, errno, "open %s", vm->paths.dir);
	snprintf(text, sizeof(text), "%d\n", (int)pid);
	r = write_small_file(dirfd, name, text);
	if (r < 0)
		return husk_error_seterrno(err, -r, "write %s/%s", vm->paths.dir, name);
	return 0;
}

/* Wait for husk-vsockd's "READY\n" on the pipe, or its death. */
static int vsockd_wait_ready(struct husk_vm *vm, int ready_fd,
			     struct husk_error *err)
{
	int64_t deadline = deadline_after_ms(VM_VSOCKD_READY_MS);
	char buf[16];
	size_t len = 0;

	while (len < 6) {
		struct pollfd pfd = { .fd = ready_fd, .events = POLLIN };
		int r = poll(&pfd, 1, deadline_remaining_ms(deadline));
		ssize_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return husk_error_set(err, ETIMEDOUT,
					      "husk-vsockd not ready after %d ms",
					      VM_VSOCKD_READY_MS);
		n = read(ready_fd, buf + len, 6 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	if (len == 6 && memcmp(buf, "READY\n", 6) == 0)
		return 0;
	char tail[256];

	log_tail(vm->paths.vsockd_log, tail, sizeof(tail));
	return husk_error_set(err, EIO, "husk-vsockd failed to start: %s",
			      *tail ? tail : "no readiness line");
}

static int vm_start_vsockd(struct husk_vm *vm, const char *vsockd,
			   struct husk_error *err)
{
	_cleanup_close_ int log_fd = -1, rd = -1, wr = -1;
	char cid[16], ready[16];
	int pipefd[2], r;

	snprintf(cid, sizeof(cid), "%u", vm->guest_cid);
	snprintf(ready, sizeof(ready), "%d", VM_READY_CHILD_FD);
	char *const argv[] = {
		(char *)vsockd, (char *)"--vhost-user", vm->paths.vhost_user,
		(char *)"--uds", vm->paths.vsock, (char *)"--guest-cid", cid,
		(char *)"--ready-fd", ready, NULL,
	};

	log_fd = open_log(vm->paths.vsockd_log, err);
	if (log_fd < 0)
		return log_fd;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return husk_error_seterrno(err, errno, "pipe");
	rd = pipefd[0];
	wr = pipefd[1];
	r = vm_spawn(argv, &wr, 1, log_fd, &vm->vsockd_pid, &vm->vsockd_pidfd, err);
	if (r < 0)
		return r;
	wr = safe_close(wr);
	r = write_pid_file(vm, "vsockd.pid", vm->vsockd_pid, err);
	if (r < 0)
		return r;
	return vsockd_wait_ready(vm, rd, err);
}

/*
 * QEMU gets a listening socket we bound ourselves, so our connect() queues
 * at once instead of racing QEMU's startup; if QEMU dies the queued
 * connection is reset and the handshake fails fast.
 */
static int vm_start_qemu(struct husk_vm *vm, char **argv, struct husk_error *err)
{
	_cleanup_close_ int log_fd = -1, listen_fd = -1, conn = -1;
	int r;

	log_fd = open_log(vm->paths.qemu_log, err);
	if (log_fd < 0)
		return log_fd;
	listen_fd = unix_listen(vm->paths.qmp, 4, err);
	if (listen_fd < 0)
		return listen_fd;
	r = vm_spawn(argv, &listen_fd, 1, log_fd, &vm->qemu_pid, &vm->qemu_pidfd, err);
	if (r < 0)
		return r;
	r = write_pid_file(vm, "qemu.pid", vm->qemu_pid, err);
	if (r < 0)
		return r;
	conn = unix_connect(vm->paths.qmp, err);
	listen_fd = safe_close(listen_fd);
	if (conn < 0)
		return conn;
	r = qmp_open(&vm->qmp, TAKE_FD(conn), vm_on_qmp_event, vm,
		     VM_QMP_TIMEOUT_MS, err);
	if (r < 0) {
		char tail[256];

		/* Most start failures are QEMU refusing its command line. */
		if (vm_child_wait(vm->qemu_pidfd, 2000, NULL) == 0) {
			vm->qemu_pidfd = safe_close(vm->qemu_pidfd);
			vm->exit.exited = true;
		}
		log_tail(vm->paths.qemu_log, tail, sizeof(tail));
		husk_error_clear(err);
		return husk_error_set(err, -r, "QEMU did not start: %s",
				      *tail ? tail : "no QMP greeting");
	}
	return 0;
}

static int vm_setup_epoll(struct husk_vm *vm, struct husk_error *err)
{
	struct epoll_event ev = { .events = EPOLLIN };

	vm->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (vm->epoll_fd < 0)
		return husk_error_seterrno(err, errno, "epoll_create1");
	ev.data.fd = vm->qemu_pidfd;
	if (epoll_ctl(vm->epoll_fd, EPOLL_CTL_ADD, vm->qemu_pidfd, &ev) < 0)
		return husk_error_seterrno(err, errno, "epoll_ctl");
	ev.data.fd = vm->qmp.fd;
	if (epoll_ctl(vm->epoll_fd, EPOLL_CTL_ADD, vm->qmp.fd, &ev) < 0)
		return husk_error_seterrno(err, errno, "epoll_ctl");
	if (vm->vsockd_pidfd >= 0) {
		ev.data.fd = vm->vsockd_pidfd;
		if (epoll_ctl(vm->epoll_fd, EPOLL_CTL_ADD, vm->vsockd_pidfd, &ev) < 0)
			return husk_error_seterrno(err, errno, "epoll_ctl");
	}
	return 0;
}

static struct husk_vm *vm_new(void)
{
	struct husk_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->lock_fd = vm->qemu_pidfd = vm->vsockd_pidfd = vm->epoll_fd = -1;
	vm->qmp.fd = -1;
	vm->exit.exit_code = -1;
	return vm;
}

static int vm_pick_name(const struct husk_vm_config *cfg, char **name)
{
	uint32_t rnd;

	if (cfg->name) {
		*name = strdup(cfg->name);
		return *name ? 0 : -ENOMEM;
	}
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)now_ms();
	if (asprintf(name, "vm-%d-%08x", (int)getpid(), rnd) < 0) {
		*name = NULL;
		return -ENOMEM;
	}
	return 0;
}

/*
 * QEMU keeps the kernel and initramfs files mapped to load them again at a
 * reset.  husk's VMs never reset (-no-reboot), and one that did would
 * fault the pages back in from the files: until then they are only host
 * memory (16 + 2.5 MiB for the minimal image).  Needs CAP_SYS_NICE;
 * without it nothing changes.
 */
int vm_release_file(struct husk_vm *vm, const char *path)
{
	if (!path || vm->qemu_pidfd < 0)
		return 0;
	return vm_child_release_file(vm->qemu_pid, vm->qemu_pidfd, path);
}

HUSK_EXPORT int husk_vm_start(const struct husk_vm_config *cfg,
			      struct husk_vm **vm_out, struct husk_error *err)
{
	_cleanup_free_ char *qemu = NULL, *vsockd = NULL, *root = NULL, *dir = NULL;
	struct husk_vm_config named;
	struct husk_vm *vm = NULL;
	struct vm_host_caps caps;
	struct strv argv = { 0 };
	int r;

	r = vm_config_validate(cfg, err);
	if (r < 0)
		return r;
	r = vm_find_qemu(cfg, &qemu, err);
	if (r < 0)
		return r;
	if (cfg->vsock == HUSK_VM_VSOCK_VHOST_USER) {
		r = vm_find_vsockd(cfg, &vsockd, err);
		if (r < 0)
			return r;
	}
	r = vm_host_caps_probe(qemu, cfg->accel, &caps, err);
	if (r < 0)
		return r;
	r = vm_state_root(cfg, &root, err);
	if (r < 0)
		return r;

	vm = vm_new();
	if (!vm || vm_pick_name(cfg, &vm->name) < 0) {
		husk_vm_destroy(vm);
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	named = *cfg;
	named.name = vm->name;
	vm->keep_logs = cfg->keep_logs;
	vm->vsock = cfg->vsock;
	vm->guest_cid = cfg->guest_cid;

	r = vm_state_create(root, vm->name, cfg->keep_logs, &dir, &vm->lock_fd, err);
	if (r < 0)
		goto fail_no_dir;
	if (vm_paths_init(&vm->paths, dir) < 0) {
		r = husk_error_set(err, ENOMEM, "out of memory");
		vm_state_remove(dir, false);
		goto fail_no_dir;
	}
	/* From here on husk_vm_destroy() removes the directory. */
	r = vm_argv_build(&named, qemu, &vm->paths, &caps, &argv, err);
	if (r < 0)
		goto fail;
	if (vsockd) {
		r = vm_start_vsockd(vm, vsockd, err);
		if (r < 0)
			goto fail;
	}
	r = vm_start_qemu(vm, argv.v, err);
	if (r < 0)
		goto fail;
	/* The kernel is in guest RAM by the QMP greeting. */
	(void)vm_release_file(vm, cfg->kernel);
	r = vm_setup_epoll(vm, err);
	if (r < 0)
		goto fail;
	strv_release(&argv);
	*vm_out = vm;
	return 0;

fail:
	strv_release(&argv);
	husk_error_prefix(err, "VM %s: ", vm->name);
	husk_vm_destroy(vm);
	return r;
fail_no_dir:
	husk_vm_destroy(vm);
	return r;
}

/* QEMU is gone: take its status, drain the last events, end the helpers. */
static void vm_on_qemu_exit(struct husk_vm *vm, int status)
{
	char path[4096];

	vm->exit.exited = true;
	if (WIFEXITED(status)) {
		vm->exit.exit_code = WEXITSTATUS(status);
	} else {
		vm->exit.exit_code = -1;
		vm->exit.signal = WTERMSIG(status);
	}
	if (vm->qmp.fd >= 0) {
		qmp_poll_events(&vm->qmp, NULL);
		qmp_close(&vm->qmp);
	}
	vm->qemu_pidfd = safe_close(vm->qemu_pidfd);
	/* husk-vsockd ends on its own at QEMU's EOF; make sure of it. */
	if (vm->vsockd_pidfd >= 0) {
		vm_process_terminate(vm->vsockd_pidfd, VM_VSOCKD_GRACE_MS, true);
		vm->vsockd_pidfd = safe_close(vm->vsockd_pidfd);
	}
	if (vm->paths.dir) {
		unlink(vm->paths.qmp);
		unlink(vm->paths.vhost_user);
		unlink(vm->paths.vsock);
		snprintf(path, sizeof(path), "%s/qemu.pid", vm->paths.dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/vsockd.pid", vm->paths.dir);
		unlink(path);
	}
}

/* Reap husk-vsockd if it ended on its own while QEMU still runs. */
static void vm_check_vsockd(struct husk_vm *vm)
{
	char path[4096];

	if (vm->vsockd_pidfd < 0 || vm_child_wait(vm->vsockd_pidfd, 0, NULL) < 0)
		return;
	vm->vsockd_pidfd = safe_close(vm->vsockd_pidfd);
	vm->exit.vsockd_died = true;
	snprintf(path, sizeof(path), "%s/vsockd.pid", vm->paths.dir);
	unlink(path);
}

HUSK_EXPORT int husk_vm_process(struct husk_vm *vm, struct husk_error *err)
{
	int status, r;

	if (vm->exit.exited)
		return 1;
	vm_check_vsockd(vm);
	if (vm->qmp.fd >= 0) {
		/* On EOF or a protocol error the monitor is done for: events
		 * stop, but exit detection goes on through the pidfd. */
		r = qmp_poll_events(&vm->qmp, NULL);
		if (r < 0) {
			epoll_ctl(vm->epoll_fd, EPOLL_CTL_DEL, vm->qmp.fd, NULL);
			qmp_close(&vm->qmp);
		}
	}
	r = vm_child_wait(vm->qemu_pidfd, 0, &status);
	if (r == -ETIMEDOUT)
		return 0;
	if (r < 0)
		return husk_error_seterrno(err, -r, "VM %s: waiting for QEMU", vm->name);
	vm_on_qemu_exit(vm, status);
	return 1;
}

HUSK_EXPORT int husk_vm_wait(struct husk_vm *vm, int timeout_ms,
			     struct husk_error *err)
{
	int64_t deadline = deadline_after_ms(timeout_ms);

	for (;;) {
		struct epoll_event ev;
		int r = husk_vm_process(vm, err);

		if (r != 0)
			return r < 0 ? r : 0;
		r = epoll_wait(vm->epoll_fd, &ev, 1, deadline_remaining_ms(deadline));
		if (r < 0 && errno != EINTR)
			return husk_error_seterrno(err, errno, "epoll_wait");
		if (r == 0 && deadline_remaining_ms(deadline) == 0)
			return husk_vm_process(vm, err) == 1 ? 0 : -ETIMEDOUT;
	}
}

HUSK_EXPORT int husk_vm_wait_console(struct husk_vm *vm, const char *marker,
				     int timeout_ms, struct husk_error *err)
{
	int64_t deadline = deadline_after_ms(timeout_ms);
	size_t mlen = strlen(marker), have = 0;
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;

	if (mlen == 0 || mlen > 4096)
		return husk_error_set(err, EINVAL, "console marker: 1..4096 bytes");
	buf = malloc(mlen + 65536);
	if (!buf)
		return husk_error_set(err, ENOMEM, "out of memory");
	fd = open(vm->paths.console, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "open %s", vm->paths.console);
	for (;;) {
		bool gone = husk_vm_process(vm, NULL) == 1;
		ssize_t n;

		/* Keep the last mlen-1 bytes so a marker split across reads matches. */
		while ((n = read(fd, buf + have, 65536)) > 0) {
			have += n;
			if (memmem(buf, have, marker, mlen))
				return 0;
			if (have >= mlen) {
				memmove(buf, buf + have - (mlen - 1), mlen - 1);
				have = mlen - 1;
			}
		}
		if (gone)
			return husk_error_set(err, EPIPE,
					      "VM %s: QEMU exited before the guest printed '%s'",
					      vm->name, marker);
		if (deadline_remaining_ms(deadline) == 0)
			return husk_error_set(err, ETIMEDOUT,
					      "VM %s: no '%s' on the console within %d ms",
					      vm->name, marker, timeout_ms);
		/* A regular file never polls "not ready": sleep on QEMU's pidfd. */
		struct pollfd pfd = { .fd = vm->qemu_pidfd, .events = POLLIN };
		int left = deadline_remaining_ms(deadline);

		poll(&pfd, 1, left < 0 || left > 20 ? 20 : left);
	}
}

static int vm_need_qmp(struct husk_vm *vm, const char *what, struct husk_error *err)
{
	if (vm->exit.exited || vm->qmp.fd < 0)
		return husk_error_set(err, ESRCH, "VM %s: %s: QEMU is not running",
				      vm->name, what);
	return 0;
}

HUSK_EXPORT int husk_vm_query_status(struct husk_vm *vm, char *status, size_t size,
				     struct husk_error *err)
{
	const struct json_node *ret;
	const char *s;
	int r;

	r = vm_need_qmp(vm, "query-status", err);
	if (r < 0)
		return r;
	r = qmp_execute(&vm->qmp, "query-status", NULL, VM_QMP_TIMEOUT_MS, &ret, err);
	if (r < 0)
		return husk_error_prefix(err, "VM %s: ", vm->name);
	s = json_string(json_get(vm->qmp.doc, ret, "status"));
	if (!s)
		return husk_error_set(err, EPROTO, "VM %s: query-status without status",
				      vm->name);
	if (strlen(s) >= size)
		return husk_error_set(err, ENAMETOOLONG, "VM %s: status buffer too small",
				      vm->name);
	strcpy(status, s);
	return 0;
}

HUSK_EXPORT int husk_vm_powerdown(struct husk_vm *vm, struct husk_error *err)
{
	int r = vm_need_qmp(vm, "system_powerdown", err);

	if (r < 0)
		return r;
	r = qmp_execute(&vm->qmp, "system_powerdown", NULL, VM_QMP_TIMEOUT_MS, NULL, err);
	return r < 0 ? husk_error_prefix(err, "VM %s: ", vm->name) : 0;
}

static bool vm_wait_quietly(struct husk_vm *vm, int timeout_ms)
{
	return husk_vm_wait(vm, timeout_ms, NULL) == 0;
}

HUSK_EXPORT int husk_vm_stop(struct husk_vm *vm, int timeout_ms,
			     struct husk_error *err)
{
	int64_t deadline;
	int step;

	if (timeout_ms < 0)
		timeout_ms = 10000;
	deadline = deadline_after_ms(timeout_ms);
	if (vm->exit.exited || vm_wait_quietly(vm, 0))
		return 0;

	/* Ask the guest, then QEMU, then the kernel. */
	if (vm->qmp.fd >= 0 && qmp_send(&vm->qmp, "system_powerdown", NULL) == 0 &&
	    vm_wait_quietly(vm, timeout_ms / 2))
		return 0;
	step = deadline_remaining_ms(deadline) / 2;
	if (vm->qmp.fd >= 0 && qmp_send(&vm->qmp, "quit", NULL) == 0 &&
	    vm_wait_quietly(vm, step > 500 ? step : 500))
		return 0;
	if (pidfd_send_signal(vm->qemu_pidfd, SIGTERM, NULL, 0) == 0 &&
	    vm_wait_quietly(vm, 1000))
		return 0;
	pidfd_send_signal(vm->qemu_pidfd, SIGKILL, NULL, 0);
	if (vm_wait_quietly(vm, 10000))
		return 0;
	return husk_error_set(err, ETIMEDOUT, "VM %s: QEMU survived SIGKILL", vm->name);
}

HUSK_EXPORT void husk_vm_destroy(struct husk_vm *vm)
{
	if (!vm)
		return;
	if (vm->qemu_pidfd >= 0 && !vm->exit.exited) {
		pidfd_send_signal(vm->qemu_pidfd, SIGKILL, NULL, 0);
		if (!vm_wait_quietly(vm, 10000))
			vm->qemu_pidfd = safe_close(vm->qemu_pidfd);
	}
	if (vm->vsockd_pidfd >= 0) {	/* QEMU never started */
		vm_process_terminate(vm->vsockd_pidfd, VM_VSOCKD_GRACE_MS, true);
		vm->vsockd_pidfd = safe_close(vm->vsockd_pidfd);
	}
	if (vm->qmp.fd >= 0)
		qmp_close(&vm->qmp);
	if (vm->paths.dir)
		vm_state_remove(vm->paths.dir, vm->keep_logs);
	safe_close(vm->lock_fd);
	safe_close(vm->epoll_fd);
	vm_paths_release(&vm->paths);
	free(vm->name);
	free(vm);
}

HUSK_EXPORT const char *husk_vm_name(const struct husk_vm *vm)
{
	return vm->name;
}

HUSK_EXPORT const char *husk_vm_state_dir(const struct husk_vm *vm)
{
	return vm->paths.dir;
}

HUSK_EXPORT const char *husk_vm_console_path(const struct husk_vm *vm)
{
	return vm->paths.console;
}

HUSK_EXPORT const char *husk_vm_vsock_path(const struct husk_vm *vm)
{
	return vm->vsock == HUSK_VM_VSOCK_VHOST_USER ? vm->paths.vsock : NULL;
}

HUSK_EXPORT int husk_vm_qemu_pid(const struct husk_vm *vm)
{
	return vm->qemu_pid;
}

HUSK_EXPORT uint32_t husk_vm_guest_cid(const struct husk_vm *vm)
{
	return vm->guest_cid;
}

HUSK_EXPORT int husk_vm_fd(const struct husk_vm *vm)
{
	return vm->epoll_fd;
}

HUSK_EXPORT void husk_vm_get_exit(const struct husk_vm *vm, struct husk_vm_exit *exit)
{
	*exit = vm->exit;
}

enum husk_vm_vsock vm_vsock_mode(const struct husk_vm *vm)
{
	return vm->vsock;
}
