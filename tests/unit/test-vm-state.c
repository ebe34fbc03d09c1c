// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * VM state directories: creation under a lock, name clashes, and reaping
 * of VMs whose owner died -- killing only processes that still name the
 * VM's directory (a recycled pid must survive).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk-common/error.h"
#include "../../host/lib/vm-internal.h"

static char root[64];

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/husk-unit-state.XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static bool exists(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void test_create_locked_private_dir(void **state)
{
	struct husk_error err = { 0 };
	char *dir = NULL, *dir2 = NULL, buf[32];
	struct stat st;
	int lock = -1, lock2 = -1;

	assert_int_equal(vm_state_create(root, "vm1", false, &dir, &lock, &err), 0);
	assert_true(lock >= 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	char lockpath[256];

	snprintf(lockpath, sizeof(lockpath), "%s/lock", dir);
	assert_true(read_small_file(AT_FDCWD, lockpath, buf, sizeof(buf)) > 0);
	assert_int_equal(atoi(buf), getpid());
	assert_int_equal(fcntl(lock, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

	/* Same name again: refused while the owner lives. */
	assert_int_equal(vm_state_create(root, "vm1", false, &dir2, &lock2, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "vm1"));
	/* Our own live VM is not reaped. */
	assert_int_equal(husk_state_reap(root, NULL), 0);
	assert_true(exists(dir, "lock"));

	vm_state_remove(dir, false);
	close(lock);
	assert_int_equal(access(dir, F_OK), -1);
	free(dir);
}

/* A process whose command line names `dir` (sh's $0), as QEMU's would. */
/* Returns once the child has exec'd, so its cmdline is the sleeper's: the
 * reaper must never see the test binary's cmdline under a recorded pid. */
static pid_t spawn_sleeper(const char *dir)
{
	int exec_pipe[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe2(exec_pipe, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Re-exec ourselves as a lone sleeper whose cmdline names dir
		 * (a shell would fork or exec away and leave orphans). */
		execl("/proc/self/exe", "test-vm-state", "--sleeper", dir, (char *)NULL);
		_exit(127);
	}
	close(exec_pipe[1]);
	assert_int_equal(read(exec_pipe[0], &c, 1), 0);	/* EOF at exec */
	close(exec_pipe[0]);
	return pid;
}

static void write_pid(const char *dir, const char *name, pid_t pid)
{
	char path[256], text[32];
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);

	snprintf(path, sizeof(path), "%s", name);
	snprintf(text, sizeof(text), "%d\n", (int)pid);
	assert_int_equal(write_small_file(dfd, path, text), 0);
	close(dfd);
}

static void test_reap_dead_owner(void **state)
{
	int sync_pipe[2], status;
	char dir[128];
	pid_t owner, qemu, bystander;

	snprintf(dir, sizeof(dir), "%s/orphan", root);
	/* The sleeper stands in for QEMU; the bystander has a pid written in
	 * vsockd.pid but a command line without the directory. */
	qemu = spawn_sleeper(dir);
	bystander = spawn_sleeper("/somewhere/else");
	assert_int_equal(pipe(sync_pipe), 0);
	owner = fork();
	assert_true(owner >= 0);
	if (owner == 0) {
		char *d = NULL;
		int lock;

		if (vm_state_create(root, "orphan", true, &d, &lock, NULL) < 0)
			_exit(1);
		write_pid(d, "qemu.pid", qemu);
		write_pid(d, "vsockd.pid", bystander);
		(void)!write(sync_pipe[1], "x", 1);
		_exit(0);	/* dies holding the lock: the kernel drops it */
	}
	char c;

	assert_int_equal(read(sync_pipe[0], &c, 1), 1);
	assert_int_equal(waitpid(owner, &status, 0), owner);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(exists(dir, "lock"));

	assert_int_equal(husk_state_reap(root, NULL), 1);
	/* The recorded QEMU died; the bystander with a reused-looking pid lives. */
	assert_int_equal(waitpid(qemu, &status, 0), qemu);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(waitpid(bystander, &status, WNOHANG), 0);
	kill(bystander, SIGKILL);
	waitpid(bystander, NULL, 0);
	/* keep_logs was set: the directory stays with only the logs. */
	assert_false(exists(dir, "lock"));
	assert_false(exists(dir, "qemu.pid"));
	assert_false(exists(dir, "keep-logs"));
	assert_int_equal(husk_state_reap(root, NULL), 0);	/* nothing left to reap */
	close(sync_pipe[0]);
	close(sync_pipe[1]);
}

static void test_root_must_be_absolute(void **state)
{
	struct husk_error err = { 0 };

	assert_int_equal(husk_state_reap("relative/root", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "absolute"));
	/* A root that does not exist has nothing to reap. */
	assert_int_equal(husk_state_reap("/nonexistent/husk-root", NULL), 0);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--sleeper") == 0) {
		alarm(100);
		for (;;)
			pause();
	}

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_locked_private_dir),
		cmocka_unit_test(test_reap_dead_owner),
		cmocka_unit_test(test_root_must_be_absolute),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
