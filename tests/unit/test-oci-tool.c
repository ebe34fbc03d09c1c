// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The runc-compatible CLI's pieces that need no VM: global flags, signal
 * names, the JSON error log containerd reads, fd passing on the control
 * socket, and the console socket handing over a raw pty master.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../host/tools/oci.h"

static void test_signals(void **state)
{
	assert_int_equal(oci_parse_signal("KILL"), SIGKILL);
	assert_int_equal(oci_parse_signal("SIGKILL"), SIGKILL);
	assert_int_equal(oci_parse_signal("sigterm"), SIGTERM);
	assert_int_equal(oci_parse_signal("9"), 9);
	assert_int_equal(oci_parse_signal("WINCH"), SIGWINCH);
	assert_int_equal(oci_parse_signal("0"), -EINVAL);
	assert_int_equal(oci_parse_signal("65"), -EINVAL);
	assert_int_equal(oci_parse_signal("NOPE"), -EINVAL);
	assert_int_equal(oci_parse_signal(""), -EINVAL);
}

static void test_globals(void **state)
{
	char *argv[] = { "husk", "--root", "/r", "--log=/tmp/l.json", "-log-format", "json",
			 "--debug", "--systemd-cgroup", "create", "--bundle", "b", "id", NULL };
	char *bad_format[] = { "husk", "--log-format", "xml", "state", "x", NULL };
	char *relative[] = { "husk", "--root", "rel", "state", "x", NULL };
	char *missing[] = { "husk", "--root", NULL };

	assert_int_equal(oci_parse_globals(12, argv), 7);
	assert_string_equal(oci_globals.root, "/r");
	assert_string_equal(oci_globals.log_path, "/tmp/l.json");
	assert_true(oci_globals.log_json);
	assert_true(oci_globals.debug);
	assert_int_equal(oci_parse_globals(5, bad_format), -EINVAL);
	assert_int_equal(oci_parse_globals(5, relative), -EINVAL);
	assert_int_equal(oci_parse_globals(2, missing), -EINVAL);
	oci_globals = (struct oci_globals){ .root = OCI_DEFAULT_ROOT };
}

static void test_json_log(void **state)
{
	char path[] = "/tmp/husk-unit-log.XXXXXX", buf[512];
	int fd = mkstemp(path);
	ssize_t n;

	assert_true(fd >= 0);
	oci_globals.log_path = path;
	oci_globals.log_json = true;
	oci_globals.no_stderr = true;
	oci_error("container \"%s\" does not exist", "x\n");
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_true(!strncmp(buf, "{\"level\":\"error\",\"msg\":"
			     "\"container \\\"x\\n\\\" does not exist\",\"time\":\"", 65));
	assert_true(buf[n - 1] == '\n' && buf[n - 2] == '}' && buf[n - 3] == '"');
	assert_non_null(strstr(buf, "Z\"}"));
	close(fd);
	unlink(path);
	oci_globals = (struct oci_globals){ .root = OCI_DEFAULT_ROOT };
}

static void test_ctl_passes_fds(void **state)
{
	int sv[2], p[2], got[4];
	size_t n_fds = 0;
	char buf[64];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(oci_ctl_send(sv[0], "ok 2", 4, p, 2), 0);
	assert_int_equal(oci_ctl_recv(sv[1], buf, sizeof(buf), got, 4, &n_fds), 4);
	assert_string_equal(buf, "ok 2");
	assert_int_equal(n_fds, 2);
	/* The received write end reaches the original read end. */
	assert_int_equal(write(got[1], "z", 1), 1);
	assert_int_equal(read(p[0], buf, 1), 1);
	assert_int_equal(buf[0], 'z');
	assert_true(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	for (int i = 0; i < 2; i++) {
		close(got[i]);
		close(p[i]);
		close(sv[i]);
	}
}

/* A monitor for one request: answer (NULL: hang up without a word), then exit. */
static pid_t fake_monitor(int listen_fd, const char *answer)
{
	pid_t pid = fork();
	char buf[256];
	int conn;

	assert_true(pid >= 0);
	if (pid)
		return pid;
	conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0 || recv(conn, buf, sizeof(buf), 0) <= 0)
		_exit(1);
	if (answer && oci_ctl_send(conn, answer, strlen(answer), NULL, 0) < 0)
		_exit(1);
	_exit(0);
}

static bool log_has(const char *path, const char *text)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

/* Each way a monitor fails to answer is told apart; a long error is not a hang-up. */
static void test_ctl_call_failures(void **state)
{
	char root[] = "/tmp/husk-unit-ctl.XXXXXX", dir[64], log[64], reply[64], err[400];
	int dir_fd, listen_fd, status;
	pid_t pid;

	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/c1", root);
	snprintf(log, sizeof(log), "%s/log", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	listen_fd = oci_ctl_listen(dir_fd);
	assert_true(listen_fd >= 0);
	/* The listening socket is non-blocking: the fake monitor waits for us. */
	assert_int_equal(fcntl(listen_fd, F_SETFL, 0), 0);
	oci_globals = (struct oci_globals){ .root = root, .log_path = log, .no_stderr = true };

	/* An error longer than the caller's buffer still comes through as that error. */
	memset(err, 'x', sizeof(err));
	memcpy(err, "err 5 ", 6);
	err[sizeof(err) - 1] = '\0';
	pid = fake_monitor(listen_fd, err);
	assert_int_equal(oci_ctl_call("c1", "kill 18 0", reply, sizeof(reply)), -EIO);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(log_has(log, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));

	pid = fake_monitor(listen_fd, "ok");
	assert_int_equal(oci_ctl_call("c1", "kill 18 0", reply, sizeof(reply)), 0);
	assert_string_equal(reply, "ok");
	assert_int_equal(waitpid(pid, &status, 0), pid);

	pid = fake_monitor(listen_fd, NULL);
	assert_int_equal(oci_ctl_call("c1", "kill 18 0", reply, sizeof(reply)), -ESRCH);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(log_has(log, "container not running (its monitor hung up: no answer)"));

	close(listen_fd);
	assert_int_equal(oci_ctl_call("c1", "kill 18 0", reply, sizeof(reply)), -ECONNREFUSED);
	assert_true(log_has(log, "container not running (no monitor answers: Connection refused)"));

	unlinkat(dir_fd, OCI_CTL_SOCKET, 0);
	close(dir_fd);
	unlink(log);
	rmdir(dir);
	rmdir(root);
	oci_globals = (struct oci_globals){ .root = OCI_DEFAULT_ROOT };
}

static void test_console_socket(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int srv, conn, slave = -1, master[1];
	size_t n_fds = 0;
	char name[64], buf[16];

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/husk-unit-console.%d", getpid());
	srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(srv, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(srv, 1), 0);
	assert_int_equal(oci_console_setup(sa.sun_path, &slave), 0);
	conn = accept(srv, NULL, NULL);
	assert_true(conn >= 0);
	assert_true(oci_ctl_recv(conn, name, sizeof(name), master, 1, &n_fds) > 0);
	assert_int_equal(n_fds, 1);
	assert_true(!strncmp(name, "/dev/pts/", 9));
	assert_true(isatty(master[0]) && isatty(slave));
	/* Raw: a carriage return arrives as it was typed, without echo. */
	assert_int_equal(write(master[0], "a\r", 2), 2);
	assert_int_equal(read(slave, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "a\r", 2);
	close(master[0]);
	close(slave);
	close(conn);
	close(srv);
	unlink(sa.sun_path);
	/* Nobody listening: the error comes back. */
	assert_int_equal(oci_console_setup(sa.sun_path, &slave), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_globals),
		cmocka_unit_test(test_json_log),
		cmocka_unit_test(test_ctl_passes_fds),
		cmocka_unit_test(test_ctl_call_failures),
		cmocka_unit_test(test_console_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
