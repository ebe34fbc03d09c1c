// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk create: record the container, fork its monitor (which boots the VM
 * and creates the container in the guest, blocked before exec), run the
 * prestart and createRuntime hooks, write the pid file.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "json.h"
#include "oci-hooks.h"
#include "oci.h"

static const char create_usage[] =
	"usage: husk create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID\n";

/* A member joins a sandbox whose monitor runs (created or running). */
static int check_sandbox(const char *id, const char *sandbox)
{
	struct husk_error err = { 0 };
	_cleanup_close_ int dir_fd = -1;
	struct oci_state st;
	enum oci_status status;

	if (!oci_id_valid(sandbox) || oci_state_peek(oci_globals.root, sandbox, &dir_fd, &err) < 0 ||
	    oci_state_read(dir_fd, &st, &err) < 0) {
		oci_error("container %s: joining sandbox %s: no such sandbox", id, sandbox);
		return -ENOENT;
	}
	status = oci_state_status(&st);
	oci_state_release(&st);
	if (status == OCI_STOPPED || status == OCI_CREATING) {
		oci_error("container %s: joining sandbox %s: the sandbox is %s", id, sandbox,
			  oci_status_name(status));
		return -ESRCH;
	}
	return 0;
}

/* Fields the guest accepts but does not enforce: said, never silent. */
static const struct {
	const char *section, *field, *why;
} ignored_fields[] = {
	{ "linux", "seccomp", "no seccomp in the guest; the VM is the boundary" },
	{ "process", "apparmorProfile", "no AppArmor in the guest" },
	{ "process", "selinuxLabel", "no SELinux in the guest" },
	{ "linux", "mountLabel", "no SELinux in the guest" },
	{ "linux", "intelRdt", "no RDT in the guest" },
	{ "hooks", "createContainer", "it would run in the guest's namespaces" },
	{ "hooks", "startContainer", "it would run in the guest's namespaces" },
};

static void warn_ignored_fields(const struct json_doc *config)
{
	const struct json_node *root = json_root(config);

	for (size_t i = 0; i < ARRAY_SIZE(ignored_fields); i++) {
		const struct json_node *n = json_get(config, json_get(config, root,
						     ignored_fields[i].section),
						     ignored_fields[i].field);

		if (n && n->type != JSON_NULL)
			oci_warn("config.json: %s.%s is ignored (%s)", ignored_fields[i].section,
				 ignored_fields[i].field, ignored_fields[i].why);
	}
}

/* A member runs in its sandbox's VM: its own VM-size annotations cannot apply. */
static void warn_member_vm_size(const struct oci_state *st, const char *sandbox)
{
	for (size_t i = 0; i < st->n_annotations; i++)
		if (!strncmp(st->annotations[i][0], "husk.vm.", 8))
			oci_warn("annotation %s is ignored: the container joins sandbox %s, "
				 "whose VM is already sized", st->annotations[i][0], sandbox);
}

/* Our stdio, or the slave of a pty whose master goes to the console socket. */
static int monitor_stdio(const char *console_socket, struct oci_stdio *io)
{
	int slave, r;

	if (!console_socket) {
		*io = (struct oci_stdio){ .in = STDIN_FILENO, .out = STDOUT_FILENO,
					  .err = STDERR_FILENO };
		return 0;
	}
	r = oci_console_setup(console_socket, &slave);
	if (r < 0) {
		oci_error("console socket %s: %s", console_socket, strerror(-r));
		return r;
	}
	*io = (struct oci_stdio){ .in = dup(slave), .out = slave, .err = dup(slave),
				  .tty = true };
	if (io->in < 0 || io->err < 0) {
		oci_error("console: dup: %m");
		return -errno;
	}
	return 0;
}

static void close_stdio(struct oci_stdio *io)
{
	if (io->tty) {
		close(io->in);
		close(io->out);
		close(io->err);
	}
}

/* Wait for "ok" or "err ERRNO MSG" from the monitor on ready_fd. */
static int wait_ready(int ready_fd, pid_t monitor)
{
	char msg[HUSK_ERROR_MSG_MAX + 64];
	size_t len = 0;
	ssize_t n;
	int code = 0, off = 0;

	while (len < sizeof(msg) - 1) {
		n = read(ready_fd, msg + len, sizeof(msg) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len >= 2 && !strncmp(msg, "ok", 2))
			break;
	}
	msg[len] = '\0';
	if (!strcmp(msg, "ok"))
		return 0;
	if (sscanf(msg, "err %d %n", &code, &off) >= 1 && code > 0) {
		oci_error("%s", msg + off);
	} else {
		oci_error("the monitor died while creating the container");
		code = EIO;
	}
	while (waitpid(monitor, NULL, 0) < 0 && errno == EINTR)
		;
	return -code;
}

static int fork_monitor(const struct oci_create_opts *o, int dir_fd, const char *join,
			pid_t *monitor)
{
	struct oci_stdio io;
	int fds[2], r;
	pid_t pid;

	r = monitor_stdio(o->console_socket, &io);
	if (r < 0)
		return r;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		oci_error("pipe: %m");
		close_stdio(&io);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		oci_error("fork: %m");
		close(fds[0]);
		close(fds[1]);
		close_stdio(&io);
		return -errno;
	}
	if (pid == 0) {
		close(fds[0]);
		if (join)
			oci_member_main(o->id, o->bundle, join, dir_fd, &io, fds[1]);
		oci_monitor_main(o->id, o->bundle, dir_fd, &io, fds[1]);
	}
	close(fds[1]);
	close_stdio(&io);
	r = wait_ready(fds[0], pid);
	close(fds[0]);
	*monitor = pid;
	return r;
}

/* Undo a create that failed after the monitor came up. */
static void abort_create(const char *id, pid_t monitor)
{
	char reply[256];

	oci_globals.no_stderr = true;
	(void)oci_ctl_call(id, "delete", reply, sizeof(reply));
	oci_globals.no_stderr = false;
	while (waitpid(monitor, NULL, 0) < 0 && errno == EINTR)
		;
}

static int run_create_hooks(const struct json_doc *config, const struct oci_state *st)
{
	_cleanup_free_ char *state = oci_state_format(st, OCI_CREATED);
	struct husk_error err = { 0 };
	int r;

	if (!state)
		return -ENOMEM;
	r = oci_hooks_run(config, "prestart", state, &err);
	if (r == 0)
		r = oci_hooks_run(config, "createRuntime", state, &err);
	if (r < 0)
		oci_error("%s", err.msg);
	return r;
}

int oci_create(const struct oci_create_opts *o, pid_t *monitor_out)
{
	struct oci_state st = { .status = OCI_CREATING, .owner = getuid() };
	struct husk_error err = { 0 };
	struct husk_spec *spec = NULL;
	struct json_doc *config = NULL;
	_cleanup_close_ int dir_fd = -1;
	const char *join;
	char created[64];
	pid_t monitor = 0;
	int r;

	/* Validate the bundle before anything is recorded. */
	r = husk_spec_from_bundle(o->bundle, &spec, &err);
	if (r == 0)
		r = oci_config_load(o->bundle, &config, &st, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		goto out;
	}
	warn_ignored_fields(config);
	snprintf(st.id, sizeof(st.id), "%s", o->id);
	join = oci_pod_sandbox_of(&st);
	if (join) {
		r = check_sandbox(o->id, join);
		if (r < 0)
			goto out;
		warn_member_vm_size(&st, join);
	}
	r = oci_state_create(oci_globals.root, o->id, &dir_fd, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		goto out;
	}
	oci_time_now(created, sizeof(created));
	st.bundle = strdup(o->bundle);
	st.rootfs = strdup(husk_spec_rootfs(spec));
	st.created = strdup(created);
	/* While creating, our own pid: a create that crashes reads as stopped. */
	st.pid = getpid();
	st.pid_start = oci_pid_start_time(st.pid);
	if (!st.bundle || !st.rootfs || !st.created) {
		r = -ENOMEM;
		oci_error("out of memory");
		goto fail;
	}
	r = oci_state_write(dir_fd, &st, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		goto fail;
	}
	r = fork_monitor(o, dir_fd, join, &monitor);
	if (r < 0)
		goto fail;
	st.pid = monitor;
	st.pid_start = oci_pid_start_time(monitor);
	st.status = OCI_CREATED;
	r = oci_state_write(dir_fd, &st, &err);
	if (r < 0)
		oci_error("%s", err.msg);
	/* Hooks may ask `husk state` about us: they must not wait for our lock. */
	(void)flock(dir_fd, LOCK_UN);
	if (r == 0)
		r = run_create_hooks(config, &st);
	if (r == 0 && o->pid_file) {
		r = oci_write_pid_file(o->pid_file, monitor);
		if (r < 0)
			oci_error("pid file %s: %s", o->pid_file, strerror(-r));
	}
	if (r < 0) {
		abort_create(o->id, monitor);
		goto fail;
	}
	*monitor_out = monitor;
	goto out;
fail:
	if (oci_state_remove(oci_globals.root, o->id, dir_fd, &err) < 0)
		oci_error("%s", err.msg);
out:
	oci_config_free(config);
	husk_spec_free(spec);
	oci_state_release(&st);
	return r;
}

enum { OPT_PID_FILE = 256, OPT_CONSOLE, OPT_IGNORED, OPT_IGNORED_ARG };

/* Flags of create and run (run adds --detach). */
int oci_parse_create(int argc, char **argv, struct oci_create_opts *o, const char *usage)
{
	static const struct option longopts[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "console-socket", required_argument, NULL, OPT_CONSOLE },
		{ "detach", no_argument, NULL, 'd' },
		{ "no-pivot", no_argument, NULL, OPT_IGNORED },
		{ "no-new-keyring", no_argument, NULL, OPT_IGNORED },
		{ "keep", no_argument, NULL, OPT_IGNORED },
		{ "preserve-fds", required_argument, NULL, OPT_IGNORED_ARG },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static char bundle[PATH_MAX];
	const char *b = ".";
	int c;

	optind = 1;
	while ((c = getopt_long_only(argc, argv, "b:dh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': b = optarg; break;
		case OPT_PID_FILE: o->pid_file = optarg; break;
		case OPT_CONSOLE: o->console_socket = optarg; break;
		case 'd': o->detach = true; break;
		case OPT_IGNORED: break;
		case OPT_IGNORED_ARG:
			if (strcmp(optarg, "0")) {
				oci_error("--preserve-fds: extra fds cannot reach a VM");
				return -EINVAL;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		oci_error("%s: expects exactly one argument, the container id", argv[0]);
		return -EINVAL;
	}
	o->id = argv[optind];
	if (!realpath(b, bundle)) {
		oci_error("bundle %s: %m", b);
		return -errno;
	}
	o->bundle = bundle;
	return 0;
}

int cmd_oci_create(int argc, char **argv)
{
	struct oci_create_opts o = { 0 };
	pid_t monitor;

	if (oci_parse_create(argc, argv, &o, create_usage) < 0)
		return 1;
	return oci_create(&o, &monitor) < 0 ? 1 : 0;
}
