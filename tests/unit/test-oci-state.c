// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The OCI state store and hooks: ids, duplicate creates, state.json round
 * trips, status of a container whose monitor died, the per-container lock
 * (a waiter sees a deleted container as gone), listing, and hooks run in
 * order with the state on stdin, failing and timing out.
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
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk-common/error.h"
#include "../../host/lib/json.h"
#include "../../host/lib/oci-hooks.h"
#include "../../host/lib/oci-state.h"

static char root[64];

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/husk-unit-oci.XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void fill_state(struct oci_state *st, const char *id, pid_t pid)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->id, sizeof(st->id), "%s", id);
	st->status = OCI_RUNNING;
	st->pid = pid;
	st->pid_start = oci_pid_start_time(pid);
	st->bundle = strdup("/b \"quoted\"");
	st->rootfs = strdup("/b/rootfs");
	st->created = strdup("2026-01-01T00:00:00.000000000Z");
	st->n_annotations = 1;
	st->annotations[0][0] = strdup("husk.vm.cpus");
	st->annotations[0][1] = strdup("2");
}

static void test_ids(void **state)
{
	assert_true(oci_id_valid("c1"));
	assert_true(oci_id_valid("a.b_c-d"));
	assert_false(oci_id_valid("a"));
	assert_false(oci_id_valid("-ab"));
	assert_false(oci_id_valid("a/b"));
	assert_false(oci_id_valid(".."));
	assert_false(oci_id_valid(""));
}

static void test_create_duplicate_and_round_trip(void **state)
{
	struct husk_error err = { 0 };
	struct oci_state st, back;
	char nested[128];
	int fd, fd2;

	/* The root is made with its parents, as runc makes --root. */
	snprintf(nested, sizeof(nested), "%s/a/b", root);
	assert_int_equal(oci_state_create(nested, "c1", &fd, &err), 0);
	assert_int_equal(oci_state_create(nested, "c1", &fd2, &err), -EEXIST);
	assert_string_equal(err.msg, "container with given ID already exists");

	fill_state(&st, "c1", getpid());
	assert_int_equal(oci_state_write(fd, &st, NULL), 0);
	assert_int_equal(oci_state_read(fd, &back, NULL), 0);
	assert_int_equal(back.pid_start, st.pid_start);
	assert_true(back.pid_start > 0);
	assert_string_equal(back.id, "c1");
	assert_int_equal(back.status, OCI_RUNNING);
	assert_int_equal(back.pid, getpid());
	assert_string_equal(back.bundle, "/b \"quoted\"");
	assert_int_equal(back.n_annotations, 1);
	assert_string_equal(back.annotations[0][1], "2");
	assert_int_equal(oci_state_status(&back), OCI_RUNNING);
	oci_state_release(&back);
	oci_state_release(&st);
	close(fd);
}

static void test_dead_monitor_reads_stopped(void **state)
{
	struct oci_state st;
	char *text;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	fill_state(&st, "c2", pid);
	/* Exited, not reaped yet: a zombie monitor is a stopped container. */
	assert_int_equal(waitid(P_PID, pid, &(siginfo_t){ 0 }, WEXITED | WNOWAIT), 0);
	assert_int_equal(oci_state_status(&st), OCI_STOPPED);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(oci_state_status(&st), OCI_STOPPED);
	/* The printed state of a stopped container has pid 0. */
	text = oci_state_format(&st, oci_state_status(&st));
	assert_non_null(strstr(text, "\"status\":\"stopped\",\"pid\":0"));
	free(text);
	/* A live pid with another start time is a reused pid, not our monitor. */
	st.pid = getpid();
	st.pid_start = oci_pid_start_time(getpid()) + 1;
	assert_int_equal(oci_state_status(&st), OCI_STOPPED);
	oci_state_release(&st);
}

/* A second opener blocks on the lock and, after the delete, finds nothing. */
static void test_lock_waiter_sees_delete(void **state)
{
	struct husk_error err = { 0 };
	struct oci_state st;
	int fd, pipefd[2], status;
	pid_t child;
	char c;

	assert_int_equal(oci_state_create(root, "c3", &fd, &err), 0);
	fill_state(&st, "c3", getpid());
	assert_int_equal(oci_state_write(fd, &st, NULL), 0);
	oci_state_release(&st);
	assert_int_equal(pipe(pipefd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int fd2, r;

		/* Our copy of the locked description would keep the lock alive. */
		close(fd);
		close(pipefd[0]);
		(void)!write(pipefd[1], "x", 1);
		r = oci_state_open(root, "c3", &fd2, NULL);
		_exit(r == -ENOENT ? 0 : 1);
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	close(pipefd[0]);
	usleep(100000);		/* the child is now waiting for our lock */
	assert_int_equal(oci_state_remove(root, "c3", fd, &err), 0);
	close(fd);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Readers peek without the lock: a create booting a VM does not block state. */
static void test_peek_does_not_wait(void **state)
{
	struct oci_state st, back;
	int fd, peek_fd;

	assert_int_equal(oci_state_create(root, "c4", &fd, NULL), 0);
	fill_state(&st, "c4", getpid());
	st.status = OCI_CREATING;
	assert_int_equal(oci_state_write(fd, &st, NULL), 0);
	alarm(10);	/* a peek that took the lock would hang here */
	assert_int_equal(oci_state_peek(root, "c4", &peek_fd, NULL), 0);
	alarm(0);
	assert_int_equal(oci_state_read(peek_fd, &back, NULL), 0);
	assert_int_equal(oci_state_status(&back), OCI_CREATING);
	oci_state_release(&back);
	oci_state_release(&st);
	close(peek_fd);
	close(fd);
	assert_int_equal(oci_state_peek(root, "nosuch", &peek_fd, NULL), -ENOENT);
}

static void test_list_sorted(void **state)
{
	char **ids = NULL;
	int fd;

	assert_int_equal(oci_state_create(root, "zz", &fd, NULL), 0);
	close(fd);
	assert_int_equal(oci_state_create(root, "aa", &fd, NULL), 0);
	close(fd);
	assert_int_equal(oci_state_list(root, &ids, NULL), 0);
	assert_string_equal(ids[0], "aa");
	assert_string_equal(ids[1], "zz");
	assert_null(ids[2]);
	for (size_t i = 0; ids[i]; i++)
		free(ids[i]);
	free(ids);
	/* A directory without state.json (a create that died early) does not exist. */
	assert_int_equal(oci_state_open(root, "aa", &fd, NULL), -ENOENT);
}

static struct json_doc *write_bundle(const char *config)
{
	struct oci_state scratch = { 0 };
	struct json_doc *doc = NULL;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/config.json", root);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(config, f);
	fclose(f);
	assert_int_equal(oci_config_load(root, &doc, &scratch, NULL), 0);
	oci_state_release(&scratch);
	return doc;
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_hooks_order_and_stdin(void **state)
{
	char config[1024], log[96];
	struct json_doc *doc;
	int saved, out;

	snprintf(log, sizeof(log), "%s/hooks.log", root);
	snprintf(config, sizeof(config),
		 "{\"hooks\":{\"prestart\":["
		 "{\"path\":\"/bin/sh\",\"args\":[\"sh\",\"-c\",\"echo one $X; cat\"],"
		 " \"env\":[\"X=envd\"]},"
		 "{\"path\":\"/bin/sh\",\"args\":[\"sh\",\"-c\",\"echo two\"]}]}}");
	doc = write_bundle(config);
	/* Hook output goes to our stdout: point it at the log for the check. */
	fflush(stdout);
	saved = dup(1);
	out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(out, 1);
	assert_int_equal(oci_hooks_run(doc, "prestart", "{\"id\":\"c\"}", NULL), 0);
	assert_int_equal(oci_hooks_run(doc, "poststop", "{}", NULL), 0);
	dup2(saved, 1);
	close(out);
	close(saved);
	assert_string_equal(slurp(log), "one envd\n{\"id\":\"c\"}two\n");
	oci_config_free(doc);
}

static void test_hooks_fail_and_timeout(void **state)
{
	struct husk_error err = { 0 };
	struct json_doc *doc;
	time_t t0;

	doc = write_bundle("{\"hooks\":{\"poststart\":[{\"path\":\"/bin/false\"}],"
			   "\"createRuntime\":[{\"path\":\"/bin/sleep\",\"args\":[\"sleep\",\"30\"],"
			   "\"timeout\":1}],"
			   "\"prestart\":[{\"path\":\"relative\"}]}}");
	assert_int_equal(oci_hooks_run(doc, "poststart", "{}", &err), -ECANCELED);
	assert_string_equal(err.msg, "poststart hook /bin/false: exit status 1");
	husk_error_clear(&err);
	t0 = time(NULL);
	assert_int_equal(oci_hooks_run(doc, "createRuntime", "{}", &err), -ETIMEDOUT);
	assert_true(time(NULL) - t0 < 10);
	husk_error_clear(&err);
	assert_int_equal(oci_hooks_run(doc, "prestart", "{}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "hooks.prestart[0]"));
	oci_config_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test_setup_teardown(test_create_duplicate_and_round_trip, setup, teardown),
		cmocka_unit_test(test_dead_monitor_reads_stopped),
		cmocka_unit_test_setup_teardown(test_lock_waiter_sees_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peek_does_not_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_sorted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hooks_order_and_stdin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hooks_fail_and_timeout, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
