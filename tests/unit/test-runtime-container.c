// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The runtime end to end on this host: real containers from the
 * busybox-static rootfs in build/runtime-rootfs, under a private cgroup
 * below the host's cgroup2 mount.  Needs root; skips (and says why)
 * otherwise.  The test plays the agent's loop: it reaps with waitpid()
 * and hands each status to runtime_child_exited().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime.h"
#include "test-runtime-spec.h"

#define SANDBOX "sbtest"

static char rootfs[PATH_MAX];
static char cgroup_root[PATH_MAX + 64];
static const char *skip_reason;
static int exits_seen;

struct fixture {
	struct runtime *rt;
	struct test_spec ts;
};

static void on_exit_cb(void *userdata, struct runtime_container *ctr,
		       struct runtime_process *proc)
{
	exits_seen++;
}

/* The cgroup2 mount of this host (pure v2, or the "unified" of hybrid). */
static bool find_cgroup2(char *out, size_t size)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	char dev[256], dir[PATH_MAX], type[64];
	bool found = false;

	if (!f)
		return false;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (strcmp(type, "cgroup2") == 0) {
			snprintf(out, size, "%s", dir);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

static int group_setup(void **state)
{
	char mnt[PATH_MAX];
	const char *env = getenv("HUSK_TEST_ROOTFS");

	if (geteuid() != 0) {
		skip_reason = "needs root (namespaces, mounts, cgroups)";
		return 0;
	}
	if (!realpath(env ? env : "build/runtime-rootfs", rootfs) ||
	    access(strcat(strcpy(mnt, rootfs), "/bin/busybox"), X_OK) < 0) {
		skip_reason = "no busybox rootfs (make build/runtime-rootfs/.stamp)";
		return 0;
	}
	if (!find_cgroup2(mnt, sizeof(mnt))) {
		skip_reason = "no cgroup2 mount on this host";
		return 0;
	}
	snprintf(cgroup_root, sizeof(cgroup_root), "%s/husk-unit-%d", mnt, (int)getpid());
	if (mkdir(cgroup_root, 0755) < 0) {
		skip_reason = "cannot make a cgroup below the cgroup2 mount";
		return 0;
	}
	return 0;
}

static int group_teardown(void **state)
{
	char path[PATH_MAX * 2];

	if (cgroup_root[0]) {
		snprintf(path, sizeof(path), "%s/husk", cgroup_root);
		rmdir(path);
		rmdir(cgroup_root);
	}
	return 0;
}

static int setup(void **state)
{
	struct runtime_options opts = { .on_exit = on_exit_cb };
	struct husk_error err = { 0 };
	struct fixture *f;

	if (skip_reason) {
		*state = NULL;
		return 0;
	}
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	opts.cgroup_root = cgroup_root;
	assert_int_equal(runtime_new(&opts, &f->rt, &err), 0);
	exits_seen = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f) {
		runtime_free(f->rt);
		/* runtime_free killed what was left; reap it */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		free(f);
	}
	return 0;
}

#define SKIP_UNLESS_READY(f)						\
	do {								\
		if (!(f)) {						\
			fprintf(stderr, "skipped: %s\n", skip_reason);	\
			skip();						\
		}							\
	} while (0)

/* Play the agent's loop until proc has exited. */
static void wait_exit(struct runtime *rt, struct runtime_process *proc)
{
	while (!proc->exited) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);

		assert_true(pid > 0);
		(void)runtime_child_exited(rt, pid, status);
	}
}

/* Everything from a nonblocking fd until EOF. */
static char *read_all(int fd)
{
	static char buf[65536];
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		assert_true(poll(&p, 1, 10000) > 0);
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0 && errno == EIO)	/* pty master after the slave closed */
			break;
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

static struct runtime_container *create(struct fixture *f, const char *id,
					struct husk_error *err)
{
	struct container_config *cfg = NULL;
	struct runtime_container *ctr = NULL;
	int r;

	r = runtime_spec_parse(&f->ts.spec, id, &cfg, err);
	if (r < 0)
		return NULL;
	r = runtime_container_create(f->rt, SANDBOX, id, id, cfg, &ctr, err);
	return r < 0 ? NULL : ctr;
}

/* Run args to completion in a fresh container; returns stdout, exit code. */
static char *run(struct fixture *f, const char *id, int *exit_code)
{
	struct husk_error err = { 0 };
	struct runtime_container *ctr = create(f, id, &err);
	struct runtime_process *init;
	char *out;

	if (!ctr)
		fail_msg("create: %s", err.msg);
	init = runtime_container_init(ctr);
	assert_int_equal(runtime_container_state(ctr), RUNTIME_CREATED);
	if (runtime_container_start(f->rt, ctr, &err) < 0)
		fail_msg("start: %s", err.msg);
	out = read_all(init->stdio.out);
	wait_exit(f->rt, init);
	assert_int_equal(runtime_container_state(ctr), RUNTIME_STOPPED);
	*exit_code = init->exit_code;
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
	return out;
}

static void test_echo_hi(void **state)
{
	struct fixture *f = *state;
	char cg[PATH_MAX * 2];
	int code = -1;

	SKIP_UNLESS_READY(f);
	/* an empty leaf left by an agent that died is taken over */
	snprintf(cg, sizeof(cg), "%s/husk", cgroup_root);
	(void)mkdir(cg, 0755);
	snprintf(cg, sizeof(cg), "%s/husk/%s", cgroup_root, SANDBOX);
	(void)mkdir(cg, 0755);
	snprintf(cg, sizeof(cg), "%s/husk/%s/echo-hi", cgroup_root, SANDBOX);
	assert_int_equal(mkdir(cg, 0755), 0);
	ts_init(&f->ts, rootfs, (const char *[]){ "echo", "hi", NULL });
	assert_string_equal(run(f, "echo-hi", &code), "hi\n");
	assert_int_equal(code, 0);
	assert_int_equal(exits_seen, 1);
	/* nothing left behind: the cgroup leaf is gone */
	snprintf(cg, sizeof(cg), "%s/husk/%s/echo-hi", cgroup_root, SANDBOX);
	assert_int_equal(access(cg, F_OK), -1);
}

static void test_exit_code_and_env(void **state)
{
	struct fixture *f = *state;
	int code = -1;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){
		"sh", "-c", "echo $HOME $FOO; pwd; exit 3", NULL });
	f->ts.env[2] = (char *)"FOO=bar";
	f->ts.process.n_env = 3;
	f->ts.process.cwd = (char *)"/tmp";
	assert_string_equal(run(f, "exit-code", &code), "/ bar\n/tmp\n");
	assert_int_equal(code, 3);
}

static void test_isolation(void **state)
{
	struct fixture *f = *state;
	int code = -1;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){
		"sh", "-c", "echo $$; hostname; ls /dev/null; grep ^0:: /proc/self/cgroup",
		NULL });
	f->ts.spec.hostname = (char *)"boxy";
	ts_add_ns(&f->ts, "cgroup");
	/* pid 1 of its namespace, its own hostname, devices, and its cgroup
	 * is the root of its cgroup namespace */
	assert_string_equal(run(f, "isolation", &code),
			    "1\nboxy\n/dev/null\n0::/\n");
	assert_int_equal(code, 0);
}

static void test_user_caps_rlimits(void **state)
{
	struct fixture *f = *state;
	int code = -1;
	char *out;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){
		"sh", "-c", "id -u; id -g; ulimit -n; grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status",
		NULL });
	f->ts.user.uid = 1000;
	f->ts.user.gid = 1001;
	ts_add_rlimit(&f->ts, "RLIMIT_NOFILE", 77, 88);
	char *caps[] = { (char *)"CAP_KILL", (char *)"CAP_NET_BIND_SERVICE" };
	f->ts.caps.bounding = caps;
	f->ts.caps.n_bounding = 2;
	f->ts.caps.effective = caps;
	f->ts.caps.n_effective = 2;
	f->ts.caps.permitted = caps;
	f->ts.caps.n_permitted = 2;
	f->ts.caps.inheritable = caps;
	f->ts.caps.n_inheritable = 2;
	/* after execve a non-root process keeps only its ambient set
	 * effective; the ambient set makes the others reach it */
	f->ts.caps.ambient = caps;
	f->ts.caps.n_ambient = 2;
	f->ts.process.capabilities = &f->ts.caps;
	out = run(f, "user-caps", &code);
	/* CAP_KILL is bit 5, CAP_NET_BIND_SERVICE bit 10 */
	assert_string_equal(out, "1000\n1001\n77\n"
			    "CapEff:\t0000000000000420\nCapBnd:\t0000000000000420\n"
			    "CapAmb:\t0000000000000420\n");
	assert_int_equal(code, 0);
}

static void test_readonly_and_masked(void **state)
{
	struct fixture *f = *state;
	int code = -1;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){
		"sh", "-c", "touch /x 2>/dev/null || echo ro; cat /proc/kcore | wc -c; "
		"touch /tmp/w && echo tmp-rw", NULL });
	static const char *const tmp_opts[] = { "nosuid", "size=1m", NULL };
	char *masked[] = { (char *)"/proc/kcore" };
	ts_add_mount(&f->ts, "/tmp", "tmpfs", "tmpfs", tmp_opts);
	f->ts.root.readonly = true;
	f->ts.linux.maskedpaths = masked;
	f->ts.linux.n_maskedpaths = 1;
	assert_string_equal(run(f, "ro-masked", &code), "ro\n0\ntmp-rw\n");
	assert_int_equal(code, 0);
}

static void test_exec_and_kill(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	struct runtime_container *ctr;
	struct runtime_process *init, *ex = NULL;
	struct process_config *pc = NULL;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "sleep", "1000", NULL });
	f->ts.spec.hostname = (char *)"exechost";
	ctr = create(f, "exec-kill", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	init = runtime_container_init(ctr);
	assert_int_equal(runtime_container_start(f->rt, ctr, &err), 0);
	assert_int_equal(runtime_container_state(ctr), RUNTIME_RUNNING);

	/* an exec'd process sees the container's hostname and pid namespace */
	Grpc__Process p = f->ts.process;
	char *args[] = { (char *)"sh", (char *)"-c", (char *)"hostname; echo $$; exit 7" };
	p.args = args;
	p.n_args = 3;
	assert_int_equal(runtime_process_parse(&p, &pc, &err), 0);
	if (runtime_exec(f->rt, ctr, "ex1", pc, &ex, &err) < 0)
		fail_msg("exec: %s", err.msg);
	assert_ptr_equal(runtime_process_find(ctr, "ex1"), ex);
	char *out = read_all(ex->stdio.out);
	assert_int_equal(strncmp(out, "exechost\n", 9), 0);
	assert_true(atoi(out + 9) > 1);	/* a pid of the container's namespace */
	wait_exit(f->rt, ex);
	assert_int_equal(ex->exit_code, 7);
	runtime_process_forget(ex);
	assert_null(runtime_process_find(ctr, "ex1"));

	/* the same exec id can be used again once forgotten; a taken one not */
	pc = NULL;
	assert_int_equal(runtime_process_parse(&p, &pc, &err), 0);
	assert_int_equal(runtime_exec(f->rt, ctr, runtime_container_id(ctr), pc, &ex, &err), -EEXIST);

	/* SIGTERM to a handler-less pid-namespace init is dropped by the kernel;
	 * SIGKILL to the whole container is not */
	assert_int_equal(runtime_signal(f->rt, ctr, NULL, SIGKILL, &err), 0);
	wait_exit(f->rt, init);
	assert_int_equal(init->exit_code, 128 + SIGKILL);
	assert_int_equal(runtime_container_state(ctr), RUNTIME_STOPPED);
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
	assert_null(runtime_container_find(f->rt, "exec-kill"));
}

static void test_stdin_and_terminal(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	struct runtime_container *ctr;
	struct runtime_process *init;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "sh", "-c", "tty; read x; echo got $x", NULL });
	f->ts.process.terminal = true;
	ctr = create(f, "tty", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	init = runtime_container_init(ctr);
	assert_true(init->terminal);
	assert_true(init->stdio.pty_master >= 0);
	assert_int_equal(init->stdio.err, -1);
	assert_int_equal(runtime_process_resize_tty(init, 30, 100, &err), 0);
	assert_int_equal(runtime_container_start(f->rt, ctr, &err), 0);
	assert_int_equal(write(init->stdio.in, "abc\n", 4), 4);
	char *out = read_all(init->stdio.out);
	/* the pty echoes the input back; the program saw a terminal */
	assert_non_null(strstr(out, "/dev/pts/"));
	assert_non_null(strstr(out, "got abc"));
	wait_exit(f->rt, init);
	assert_int_equal(init->exit_code, 0);
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
}

static void test_start_reports_exec_failure(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	struct runtime_container *ctr;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "/no/such/program", NULL });
	ctr = create(f, "bad-exec", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	assert_int_equal(runtime_container_start(f->rt, ctr, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "exec /no/such/program"));
	wait_exit(f->rt, runtime_container_init(ctr));
	assert_int_equal(runtime_container_init(ctr)->exit_code, 127);
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
}

static void test_failed_create_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	char cg[PATH_MAX * 2];

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "true", NULL });
	static const char *const bind_opts[] = { "rbind", "ro", NULL };
	ts_add_mount(&f->ts, "/data", "bind", "/no/such/source", bind_opts);
	assert_null(create(f, "bad-mount", &err));
	assert_int_equal(err.code, ENOENT);
	assert_non_null(strstr(err.msg, "container bad-mount: container setup: bind source /no/such/source"));
	snprintf(cg, sizeof(cg), "%s/husk/%s/bad-mount", cgroup_root, SANDBOX);
	assert_int_equal(access(cg, F_OK), -1);
	assert_null(runtime_container_find(f->rt, "bad-mount"));
	assert_int_equal(exits_seen, 0);	/* never created, never reported */
	/* the half-made process was killed; only a zombie may remain to reap */
	int status;
	pid_t pid = waitpid(-1, &status, WNOHANG);
	assert_true(pid >= 0 || errno == ECHILD);
	assert_false(runtime_child_exited(f->rt, pid, status));
}

static void test_pause_resume_and_stats(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	struct runtime_container *ctr;
	struct runtime_stats st;
	pid_t *pids = NULL;
	size_t n = 0;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "sleep", "1000", NULL });
	ctr = create(f, "pause", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	assert_int_equal(runtime_container_start(f->rt, ctr, &err), 0);
	assert_int_equal(runtime_container_pids(ctr, &pids, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pids[0], runtime_container_init(ctr)->pid);
	free(pids);
	assert_int_equal(runtime_container_pause(f->rt, ctr, &err), 0);
	assert_int_equal(runtime_container_state(ctr), RUNTIME_PAUSED);
	assert_int_equal(runtime_container_resume(f->rt, ctr, &err), 0);
	assert_int_equal(runtime_container_state(ctr), RUNTIME_RUNNING);
	assert_int_equal(runtime_stats(ctr, &st, &err), 0);
	assert_true(st.has_cpu);
	/* removing a running container kills it and reports the exit */
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
	assert_int_equal(exits_seen, 1);
}

/* Whether our cgroup root offers a controller to its children. */
static bool have_controller(const char *name)
{
	char path[PATH_MAX * 2], ctrls[256] = "";
	FILE *c;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", cgroup_root);
	c = fopen(path, "re");
	if (c) {
		(void)!fgets(ctrls, sizeof(ctrls), c);
		fclose(c);
	}
	return strstr(ctrls, name) != NULL;
}

static void test_user_namespace(void **state)
{
	struct fixture *f = *state;
	static Grpc__LinuxIDMapping map = GRPC__LINUX_IDMAPPING__INIT;
	static Grpc__LinuxIDMapping *maps[] = { &map };
	int code = -1;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){
		"sh", "-c", "id -u; cat /proc/self/uid_map; hostname", NULL });
	map.containerid = 0;
	map.hostid = 100000;
	map.size = 65536;
	ts_add_ns(&f->ts, "user");
	f->ts.linux.uidmappings = maps;
	f->ts.linux.n_uidmappings = 1;
	f->ts.linux.gidmappings = maps;
	f->ts.linux.n_gidmappings = 1;
	f->ts.spec.hostname = (char *)"userns";
	/* root inside, host uid 100000 outside */
	assert_string_equal(run(f, "userns", &code),
			    "0\n         0     100000      65536\nuserns\n");
	assert_int_equal(code, 0);
}

static void test_exec_terminal(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	struct runtime_container *ctr;
	struct runtime_process *ex = NULL;
	struct process_config *pc = NULL;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "sleep", "1000", NULL });
	ctr = create(f, "exec-tty", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	assert_int_equal(runtime_container_start(f->rt, ctr, &err), 0);
	Grpc__Process p = f->ts.process;
	Grpc__Box box = GRPC__BOX__INIT;
	char *args[] = { (char *)"sh", (char *)"-c", (char *)"tty; stty size" };
	box.height = 40;
	box.width = 132;
	p.consolesize = &box;
	p.terminal = true;
	p.args = args;
	p.n_args = 3;
	assert_int_equal(runtime_process_parse(&p, &pc, &err), 0);
	if (runtime_exec(f->rt, ctr, "tty1", pc, &ex, &err) < 0)
		fail_msg("exec: %s", err.msg);
	char *out = read_all(ex->stdio.out);
	assert_non_null(strstr(out, "/dev/pts/0"));
	assert_non_null(strstr(out, "40 132"));
	wait_exit(f->rt, ex);
	assert_int_equal(ex->exit_code, 0);
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
}

/* An image's symlink pointing out of the rootfs stays inside it. */
static void test_symlink_cannot_escape(void **state)
{
	struct fixture *f = *state;
	char link[PATH_MAX * 2], made[PATH_MAX * 2];
	int code = -1;

	SKIP_UNLESS_READY(f);
	snprintf(link, sizeof(link), "%s/escape", rootfs);
	snprintf(made, sizeof(made), "%s/husk-escape-probe", rootfs);
	(void)unlink(link);
	assert_int_equal(symlink("/../../../../../..", link), 0);
	ts_init(&f->ts, rootfs, (const char *[]){
		"sh", "-c", "grep -c ' /husk-escape-probe tmpfs' /proc/mounts", NULL });
	ts_add_mount(&f->ts, "/escape/husk-escape-probe", "tmpfs", "tmpfs", NULL);
	char *out = run(f, "escape", &code);
	unlink(link);
	rmdir(made);
	/* the mount point was made and mounted at the rootfs' top, not the host's */
	assert_int_equal(access("/husk-escape-probe", F_OK), -1);
	assert_string_equal(out, "1\n");
	assert_int_equal(code, 0);
}

static void test_stdin_eof_and_signal(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	struct runtime_container *ctr;
	struct runtime_process *init, *ex = NULL;
	struct process_config *pc = NULL;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "cat", NULL });
	ctr = create(f, "stdin", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	init = runtime_container_init(ctr);
	assert_int_equal(runtime_container_start(f->rt, ctr, &err), 0);
	assert_int_equal(write(init->stdio.in, "ping\n", 5), 5);
	runtime_process_close_stdin(init);
	assert_int_equal(init->stdio.in, -1);
	/* EOF on stdin ends cat, after it copied what it got */
	assert_string_equal(read_all(init->stdio.out), "ping\n");
	wait_exit(f->rt, init);
	assert_int_equal(init->exit_code, 0);
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);

	/* the same through a terminal: closing stdin sends the EOF character */
	ts_init(&f->ts, rootfs, (const char *[]){ "cat", NULL });
	f->ts.process.terminal = true;
	ctr = create(f, "stdin-tty", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	init = runtime_container_init(ctr);
	assert_int_equal(runtime_container_start(f->rt, ctr, &err), 0);
	assert_int_equal(write(init->stdio.in, "pong\n", 5), 5);
	runtime_process_close_stdin(init);
	assert_non_null(strstr(read_all(init->stdio.out), "pong"));
	wait_exit(f->rt, init);
	assert_int_equal(init->exit_code, 0);
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);

	/* a signal to one exec'd process, which has a handler-free default */
	ts_init(&f->ts, rootfs, (const char *[]){ "sleep", "1000", NULL });
	ctr = create(f, "signal-one", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	assert_int_equal(runtime_container_start(f->rt, ctr, &err), 0);
	Grpc__Process p = f->ts.process;
	assert_int_equal(runtime_process_parse(&p, &pc, &err), 0);
	assert_int_equal(runtime_exec(f->rt, ctr, "sleeper", pc, &ex, &err), 0);
	assert_int_equal(runtime_signal(f->rt, ctr, ex, SIGTERM, &err), 0);
	wait_exit(f->rt, ex);
	assert_int_equal(ex->exit_code, 128 + SIGTERM);
	assert_int_equal(runtime_signal(f->rt, ctr, ex, SIGTERM, &err), -ESRCH);
	assert_int_equal(runtime_container_state(ctr), RUNTIME_RUNNING);
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
}

static void test_sysctl_bind_readonly_paths(void **state)
{
	struct fixture *f = *state;
	static const char *const ro_bind[] = { "bind", "ro", NULL };
	char *ro_paths[] = { (char *)"/proc/sys" };
	char src[PATH_MAX * 2];
	int code = -1;

	SKIP_UNLESS_READY(f);
	snprintf(src, sizeof(src), "%s/bin", rootfs);
	ts_init(&f->ts, rootfs, (const char *[]){
		"sh", "-c", "cat /proc/sys/kernel/shmmni; ls /ro/busybox; "
		"touch /ro/x 2>/dev/null || echo bind-ro; "
		"echo 1 > /proc/sys/kernel/shmmni 2>/dev/null || echo sys-ro", NULL });
	ts_add_sysctl(&f->ts, "kernel.shmmni", "1234");
	ts_add_mount(&f->ts, "/ro", "bind", src, ro_bind);
	f->ts.linux.readonlypaths = ro_paths;
	f->ts.linux.n_readonlypaths = 1;
	assert_string_equal(run(f, "sysctl", &code),
			    "1234\n/ro/busybox\nbind-ro\nsys-ro\n");
	assert_int_equal(code, 0);
}

/* Without a cgroup namespace the container's cgroup mount is its own leaf. */
static void test_cgroup_mount_shows_leaf(void **state)
{
	struct fixture *f = *state;
	static const char *const cg_opts[] = { "nosuid", "noexec", "nodev", "ro", NULL };
	int code = -1;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){
		"sh", "-c", "ls /sys/fs/cgroup | grep -c ^husk; "
		"test -e /sys/fs/cgroup/cgroup.freeze && echo leaf; "
		"touch /sys/fs/cgroup/x 2>/dev/null || echo ro", NULL });
	ts_add_mount(&f->ts, "/sys/fs/cgroup", "cgroup", "cgroup", cg_opts);
	/* cgroup.freeze exists in every cgroup but the root */
	assert_string_equal(run(f, "cg-leaf", &code), "0\nleaf\nro\n");
	assert_int_equal(code, 0);
}

static void test_cgroup_root_must_be_cgroup2(void **state)
{
	struct fixture *f = *state;
	struct runtime_options opts = { .cgroup_root = "/proc" };
	struct husk_error err = { 0 };
	struct runtime *rt = NULL;
	struct container_config *cfg = NULL;
	struct runtime_container *ctr = NULL;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "true", NULL });
	assert_int_equal(runtime_new(&opts, &rt, &err), 0);
	assert_int_equal(runtime_spec_parse(&f->ts.spec, "v1", &cfg, &err), 0);
	assert_int_equal(runtime_container_create(rt, SANDBOX, "v1", "v1", cfg, &ctr, &err),
			 -ENOTSUP);
	assert_string_equal(err.msg, "container v1: cgroup root /proc is not a cgroup2 mount");
	runtime_free(rt);
}

static void test_update_reports_missing_controller(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	struct runtime_container *ctr;
	Grpc__LinuxResources res = GRPC__LINUX_RESOURCES__INIT;
	Grpc__LinuxCPU cpu = GRPC__LINUX_CPU__INIT;

	SKIP_UNLESS_READY(f);
	if (have_controller("cpu")) {
		fprintf(stderr, "skipped: this host has the cpu controller\n");
		skip();
	}
	ts_init(&f->ts, rootfs, (const char *[]){ "true", NULL });
	ctr = create(f, "update", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	cpu.shares = 512;
	res.cpu = &cpu;
	assert_int_equal(runtime_container_update(f->rt, ctr, &res, &err), -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "container update: cgroup "));
	assert_non_null(strstr(err.msg, "the cpu controller is not available (no cpu.weight)"));
	husk_error_clear(&err);
	cpu.shares = 1;
	assert_int_equal(runtime_container_update(f->rt, ctr, &res, &err), -EINVAL);
	assert_string_equal(err.msg, "resources.cpu.shares: 1 is outside 2..262144");
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_join_namespace_by_path(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	char host_net[64] = "", *out;
	int code = -1;

	SKIP_UNLESS_READY(f);
	assert_true(readlink("/proc/self/ns/net", host_net, sizeof(host_net) - 1) > 0);
	ts_init(&f->ts, rootfs, (const char *[]){ "readlink", "/proc/self/ns/net", NULL });
	ts_add_ns(&f->ts, "network");
	f->ts.ns[4].path = (char *)"/proc/self/ns/net";
	out = run(f, "join-net", &code);
	assert_int_equal(code, 0);
	assert_int_equal(strncmp(out, host_net, strlen(host_net)), 0);

	/* a path that does not exist fails create, and closes no fd that
	 * was not its own (an unopened slot must not count as fd 0) */
	int fds = count_fds();
	f->ts.ns[4].path = (char *)"/no/such/ns";
	assert_null(create(f, "join-bad", &err));
	assert_string_equal(err.msg, "container join-bad: spec.linux.namespaces: "
			    "network /no/such/ns: No such file or directory");
	assert_int_equal(count_fds(), fds);
}

/* Many containers through their whole life; nothing leaks, and the time
 * each one takes is printed for the record. */
static void test_many_containers(void **state)
{
	struct fixture *f = *state;
	struct timespec t0, t1;
	char cg[PATH_MAX * 2];
	int fds, code;

	SKIP_UNLESS_READY(f);
	fds = count_fds();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 20; i++) {
		char id[32];

		snprintf(id, sizeof(id), "many-%d", i);
		ts_init(&f->ts, rootfs, (const char *[]){ "true", NULL });
		code = -1;
		assert_string_equal(run(f, id, &code), "");
		assert_int_equal(code, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "create+start+exit+remove: %.1f ms per container (20 runs)\n",
		((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / 20);
	assert_int_equal(count_fds(), fds);
	snprintf(cg, sizeof(cg), "%s/husk/%s", cgroup_root, SANDBOX);
	assert_int_equal(access(cg, F_OK), -1);	/* the emptied sandbox went too */
}

static void test_missing_controller_is_reported(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };

	SKIP_UNLESS_READY(f);
	if (have_controller("pids")) {
		fprintf(stderr, "skipped: this host has the pids controller\n");
		skip();
	}
	ts_init(&f->ts, rootfs, (const char *[]){ "true", NULL });
	f->ts.pids.limit = 10;
	f->ts.resources.pids = &f->ts.pids;
	f->ts.linux.resources = &f->ts.resources;
	assert_null(create(f, "no-pids", &err));
	assert_int_equal(err.code, EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "pids controller is not available"));
}

static void test_pids_limit(void **state)
{
	struct fixture *f = *state;
	int code = -1;

	SKIP_UNLESS_READY(f);
	if (!have_controller("pids")) {
		fprintf(stderr, "skipped: no pids controller in this host's cgroup2\n");
		skip();
	}
	ts_init(&f->ts, rootfs, (const char *[]){ "cat", "/sys/fs/cgroup/pids.max", NULL });
	f->ts.pids.limit = 10;
	f->ts.resources.pids = &f->ts.pids;
	f->ts.linux.resources = &f->ts.resources;
	ts_add_ns(&f->ts, "cgroup");
	static const char *const cg_opts[] = { "nosuid", "ro", NULL };
	ts_add_mount(&f->ts, "/sys/fs/cgroup", "cgroup", "cgroup", cg_opts);
	assert_string_equal(run(f, "pids", &code), "10\n");
	assert_int_equal(code, 0);
}

/* ------------------------------------------------------------------------ */
/* The non-blocking ops                                                      */

/* Drive op to its end as the agent's loop would: poll its fd, advance. */
static int drive(struct runtime_op *op, struct husk_error *err)
{
	for (;;) {
		struct pollfd p = { .fd = runtime_op_fd(op), .events = POLLIN };
		int r = runtime_op_advance(op, err);

		if (r != -EINPROGRESS)
			return r;
		assert_true(poll(&p, 1, 20000) > 0);
	}
}

/* The op stays pending for ms: its fd never says there is more to do. */
static void assert_pending_for(struct runtime_op *op, int ms)
{
	struct pollfd p = { .fd = runtime_op_fd(op), .events = POLLIN };
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		int left = ms - (int)((t1.tv_sec - t0.tv_sec) * 1000 +
				      (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return;
		if (poll(&p, 1, left) > 0)
			assert_int_equal(runtime_op_advance(op, NULL), -EINPROGRESS);
	}
}

/* cgroup.freeze of the sandbox's cgroup, behind the runtime's back. */
static void freeze_sandbox(bool on)
{
	char path[PATH_MAX * 2];
	FILE *f;

	snprintf(path, sizeof(path), "%s/husk", cgroup_root);
	(void)mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/husk/%s", cgroup_root, SANDBOX);
	(void)mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/husk/%s/cgroup.freeze", cgroup_root, SANDBOX);
	f = fopen(path, "we");
	assert_non_null(f);
	fputs(on ? "1" : "0", f);
	assert_int_equal(fclose(f), 0);
}

static struct runtime_op *create_begin(struct fixture *f, const char *id,
				       struct husk_error *err)
{
	struct container_config *cfg = NULL;
	struct runtime_op *op = NULL;

	if (runtime_spec_parse(&f->ts.spec, id, &cfg, err) < 0 ||
	    runtime_container_create_begin(f->rt, SANDBOX, id, id, cfg, &op, err) < 0)
		fail_msg("create %s: %s", id, err->msg);
	return op;
}

static void test_async_create_waits_on_a_frozen_child(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	struct container_config *cfg = NULL;
	struct runtime_container *ctr;
	struct runtime_op *op, *dup = NULL;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "echo", "thawed", NULL });
	freeze_sandbox(true);
	op = create_begin(f, "frozen", &err);
	assert_pending_for(op, 300);
	/* not found while pending, but the id is taken */
	assert_null(runtime_container_find(f->rt, "frozen"));
	assert_true(runtime_container_id_taken(f->rt, "frozen"));
	assert_int_equal(runtime_spec_parse(&f->ts.spec, "frozen", &cfg, &err), 0);
	assert_int_equal(runtime_container_create_begin(f->rt, SANDBOX, "frozen", "frozen",
							cfg, &dup, &err), -EEXIST);
	assert_null(dup);
	freeze_sandbox(false);
	assert_int_equal(drive(op, &err), 0);
	ctr = runtime_op_container(op);
	runtime_op_free(op);
	assert_ptr_equal(runtime_container_find(f->rt, "frozen"), ctr);

	assert_int_equal(runtime_container_start_begin(f->rt, ctr, &op, &err), 0);
	assert_int_equal(drive(op, &err), 0);
	runtime_op_free(op);
	assert_string_equal(read_all(runtime_container_init(ctr)->stdio.out), "thawed\n");
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
}

static void test_async_cancelled_create_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	char cg[PATH_MAX * 2];
	int fds;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "true", NULL });
	fds = count_fds();
	freeze_sandbox(true);
	struct runtime_op *op = create_begin(f, "cancelled", &err);

	assert_pending_for(op, 50);
	runtime_op_free(op);	/* SIGKILL reaches frozen tasks */
	snprintf(cg, sizeof(cg), "%s/husk/%s/cancelled", cgroup_root, SANDBOX);
	assert_int_equal(access(cg, F_OK), -1);
	assert_false(runtime_container_id_taken(f->rt, "cancelled"));
	assert_int_equal(exits_seen, 0);
	assert_int_equal(count_fds(), fds);
	freeze_sandbox(false);
}

static void test_async_failed_create_reports_once_undone(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	char cg[PATH_MAX * 2];

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "true", NULL });
	static const char *const bind_opts[] = { "rbind", NULL };
	ts_add_mount(&f->ts, "/data", "bind", "/no/such/source", bind_opts);
	struct runtime_op *op = create_begin(f, "bad-async", &err);

	/* the same error as the blocking call, and by then nothing is left */
	assert_int_equal(drive(op, &err), -ENOENT);
	assert_null(runtime_op_container(op));
	runtime_op_free(op);
	assert_non_null(strstr(err.msg, "container bad-async: container setup: bind source /no/such/source"));
	snprintf(cg, sizeof(cg), "%s/husk/%s/bad-async", cgroup_root, SANDBOX);
	assert_int_equal(access(cg, F_OK), -1);
	assert_false(runtime_container_id_taken(f->rt, "bad-async"));
}

/*
 * The agent's loop may reap an exec'd process before its op has read the
 * pid: the status must still reach the process.
 */
static void test_async_exec_reaped_before_its_pid_is_known(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	struct runtime_container *ctr;
	struct runtime_process *ex;
	struct process_config *pc = NULL;
	struct runtime_op *op = NULL, *busy = NULL;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "sleep", "1000", NULL });
	ctr = create(f, "early-reap", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	assert_int_equal(runtime_container_start(f->rt, ctr, &err), 0);

	Grpc__Process p = f->ts.process;
	char *args[] = { (char *)"sh", (char *)"-c", (char *)"exit 5" };
	p.args = args;
	p.n_args = 3;
	assert_int_equal(runtime_process_parse(&p, &pc, &err), 0);
	assert_int_equal(runtime_exec_begin(f->rt, ctr, "quick", pc, &op, &err), 0);
	/* pending: not found yet, and the container cannot be killed meanwhile */
	assert_null(runtime_process_find(ctr, "quick"));
	assert_int_equal(runtime_container_kill_begin(f->rt, ctr, 0, &busy, &err), -EBUSY);
	/* the intermediate and the process both exit; reap them unseen */
	for (int i = 0; i < 2; i++) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);

		assert_true(pid > 0);
		assert_false(runtime_child_exited(f->rt, pid, status));
	}
	assert_int_equal(drive(op, &err), 0);
	ex = runtime_op_process(op);
	runtime_op_free(op);
	assert_ptr_equal(runtime_process_find(ctr, "quick"), ex);
	assert_true(ex->exited);
	assert_int_equal(ex->exit_code, 5);
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
}

static void test_async_kill_is_exclusive(void **state)
{
	struct fixture *f = *state;
	struct husk_error err = { 0 };
	struct runtime_container *ctr;
	struct process_config *pc = NULL;
	struct runtime_op *op = NULL, *other = NULL;

	SKIP_UNLESS_READY(f);
	ts_init(&f->ts, rootfs, (const char *[]){ "sleep", "1000", NULL });
	ctr = create(f, "kill-once", &err);
	if (!ctr)
		fail_msg("create: %s", err.msg);
	assert_int_equal(runtime_container_start(f->rt, ctr, &err), 0);
	assert_int_equal(runtime_container_kill_begin(f->rt, ctr, 0, &op, &err), 0);
	assert_int_equal(runtime_container_kill_begin(f->rt, ctr, 0, &other, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "removal in progress"));
	assert_int_equal(runtime_process_parse(&f->ts.process, &pc, &err), 0);
	assert_int_equal(runtime_exec_begin(f->rt, ctr, "late", pc, &other, &err), -EBUSY);
	assert_int_equal(drive(op, &err), 0);
	runtime_op_free(op);
	/* every exit is recorded (the op reaped it) and reported */
	assert_true(runtime_container_init(ctr)->exited);
	assert_int_equal(runtime_container_init(ctr)->exit_code, 128 + SIGKILL);
	assert_int_equal(exits_seen, 1);
	assert_int_equal(runtime_container_remove(f->rt, ctr, 0, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_echo_hi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_code_and_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_isolation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_caps_rlimits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_and_masked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_and_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin_and_terminal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_reports_exec_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_create_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume_and_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_controller_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pids_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_namespace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_terminal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_cannot_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin_eof_and_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sysctl_bind_readonly_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_reports_missing_controller, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cgroup_root_must_be_cgroup2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cgroup_mount_shows_leaf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_join_namespace_by_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_containers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_create_waits_on_a_frozen_child, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_async_cancelled_create_leaves_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_async_failed_create_reports_once_undone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_async_exec_reaped_before_its_pid_is_known,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_kill_is_exclusive, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
