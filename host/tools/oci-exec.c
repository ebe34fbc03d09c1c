// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk exec: run another process in a running container.  The exec
 * monitor (this process, or with --detach a child whose pid goes to
 * --pid-file) asks the init monitor to start the process, receives its
 * stdio fds, relays them, forwards signals and exits with its status.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "json.h"
#include "oci.h"

#define EXEC_MAX_ITEMS 512
#define EXIT_KILLED (128 + SIGKILL)

static const char exec_usage[] =
	"usage: husk exec [--process FILE] [--tty] [--detach] [--pid-file FILE]\n"
	"                 [--env K=V] [--cwd DIR] [--user UID[:GID]] [--console-socket SOCK]\n"
	"                 ID [COMMAND ARGS...]\n";

struct exec_opts {
	const char *id;
	char ctl_id[OCI_ID_MAX + 1];	/* whose monitor runs it: ours, or our pod sandbox's */
	const char *process_file;
	const char *pid_file;
	const char *console_socket;
	bool tty, detach;
	/* The request: "exec\0" then KEY=VALUE items, each NUL-terminated. */
	char *req;
	size_t req_len;
};

static int add_item(struct exec_opts *o, const char *key, const char *value)
{
	size_t len = strlen(key) + 1 + strlen(value) + 1;
	char *grown;

	if (o->req_len + len > OCI_CTL_MSG_MAX) {
		oci_error("exec: the process description is too large");
		return -E2BIG;
	}
	grown = realloc(o->req, o->req_len + len);
	if (!grown)
		return -ENOMEM;
	o->req = grown;
	sprintf(o->req + o->req_len, "%s=%s", key, value);
	o->req_len += len;
	return 0;
}

/* Fields of process.json husk cannot honour are named, not dropped silently. */
static const char *const ignored_fields[] = {
	"capabilities", "rlimits", "noNewPrivileges", "apparmorProfile",
	"selinuxLabel", "oomScoreAdj", "ioPriority", "scheduler",
};

static int string_items(struct exec_opts *o, const struct json_doc *doc,
			const struct json_node *arr, const char *key)
{
	if (!arr)
		return 0;
	if (arr->type != JSON_ARRAY)
		return -EINVAL;
	for (uint32_t i = 0; i < arr->count; i++) {
		const char *s = json_string(json_item(doc, arr, i));

		if (!s || add_item(o, key, s) < 0)
			return -EINVAL;
	}
	return 0;
}

/* An integer member in [0, max]; absent is 0. */
static int uint_member(const struct json_doc *doc, const struct json_node *obj,
		       const char *key, long long max, long long *out)
{
	const struct json_node *n = json_get(doc, obj, key);

	*out = 0;
	if (!n)
		return 0;
	if (n->type != JSON_NUMBER || !n->is_integer || n->integer < 0 || n->integer > max)
		return -EINVAL;
	*out = n->integer;
	return 0;
}

/* "A<sep>B" from obj's integer members a and b, as an item named key. */
static int pair_item(struct exec_opts *o, const struct json_doc *doc,
		     const struct json_node *obj, const char *a, const char *b,
		     long long max, char sep, const char *key)
{
	long long x, y;
	char buf[64];

	if (!obj)
		return 0;
	if (obj->type != JSON_OBJECT || uint_member(doc, obj, a, max, &x) < 0 ||
	    uint_member(doc, obj, b, max, &y) < 0)
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%lld%c%lld", x, sep, y);
	return add_item(o, key, buf);
}

static int process_items(struct exec_opts *o, const struct json_doc *doc)
{
	const struct json_node *root = json_root(doc), *n;
	const char *cwd = json_string(json_get(doc, root, "cwd"));

	if (root->type != JSON_OBJECT ||
	    string_items(o, doc, json_get(doc, root, "args"), "arg") < 0 ||
	    string_items(o, doc, json_get(doc, root, "env"), "env") < 0)
		return -EINVAL;
	if (cwd && add_item(o, "cwd", cwd) < 0)
		return -EINVAL;
	if (json_is_true(json_get(doc, root, "terminal")))
		o->tty = true;
	if (pair_item(o, doc, json_get(doc, root, "user"), "uid", "gid", UINT32_MAX - 1,
		      ':', "user") < 0 ||
	    pair_item(o, doc, json_get(doc, root, "consoleSize"), "height", "width", 65535,
		      ' ', "size") < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(ignored_fields) / sizeof(ignored_fields[0]); i++) {
		n = json_get(doc, root, ignored_fields[i]);
		if (n && n->type != JSON_NULL)
			oci_debug("exec: process.%s is ignored: exec'd processes share the "
				  "container's settings in the guest", ignored_fields[i]);
	}
	return 0;
}

static int load_process_file(struct exec_opts *o)
{
	_cleanup_free_ struct json_doc *doc = calloc(1, sizeof(*doc));
	_cleanup_free_ char *text = malloc(JSON_MAX_INPUT);
	_cleanup_close_ int fd = open(o->process_file, O_RDONLY | O_CLOEXEC);
	size_t len = 0, errpos = 0;
	ssize_t n;
	int r;

	if (fd < 0) {
		oci_error("process file %s: %m", o->process_file);
		return -errno;
	}
	if (!doc || !text)
		return -ENOMEM;
	while ((n = read(fd, text + len, JSON_MAX_INPUT - len)) > 0)
		len += (size_t)n;
	r = n < 0 ? -errno : json_parse(doc, text, len, &errpos);
	if (r == 0)
		r = process_items(o, doc);
	json_doc_release(doc);
	if (r < 0)
		oci_error("process file %s: not a valid OCI process (byte %zu)",
			  o->process_file, errpos);
	return r;
}

enum { OPT_PROCESS = 256, OPT_PID_FILE, OPT_CONSOLE, OPT_CWD, OPT_IGNORED_ARG, OPT_IGNORED };

static int parse_exec(int argc, char **argv, struct exec_opts *o)
{
	static const struct option longopts[] = {
		{ "process", required_argument, NULL, 'p' },
		{ "tty", no_argument, NULL, 't' },
		{ "detach", no_argument, NULL, 'd' },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "env", required_argument, NULL, 'e' },
		{ "cwd", required_argument, NULL, OPT_CWD },
		{ "user", required_argument, NULL, 'u' },
		{ "console-socket", required_argument, NULL, OPT_CONSOLE },
		{ "process-label", required_argument, NULL, OPT_IGNORED_ARG },
		{ "apparmor", required_argument, NULL, OPT_IGNORED_ARG },
		{ "no-new-privs", no_argument, NULL, OPT_IGNORED },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	char user[64];
	int c, r = 0;

	optind = 1;
	/* '+': the command's own flags follow the id. */
	while (r == 0 && (c = getopt_long_only(argc, argv, "+p:tde:u:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': o->process_file = optarg; break;
		case 't': o->tty = true; break;
		case 'd': o->detach = true; break;
		case OPT_PID_FILE: o->pid_file = optarg; break;
		case OPT_CONSOLE: o->console_socket = optarg; break;
		case 'e': r = add_item(o, "env", optarg); break;
		case OPT_CWD: r = add_item(o, "cwd", optarg); break;
		case 'u':
			snprintf(user, sizeof(user), "%s%s", optarg, strchr(optarg, ':') ? "" : ":0");
			r = add_item(o, "user", user);
			break;
		case OPT_IGNORED_ARG:
		case OPT_IGNORED:
			oci_debug("exec: %s ignored (no such labels in husk's guest)", argv[optind - 1]);
			break;
		case 'h':
			fputs(exec_usage, stdout);
			exit(0);
		default:
			fputs(exec_usage, stderr);
			return -EINVAL;
		}
	}
	if (r < 0)
		return r;
	if (optind >= argc) {
		oci_error("exec: expects the container id");
		return -EINVAL;
	}
	o->id = argv[optind++];
	if (o->process_file && optind < argc) {
		oci_error("exec: give --process or a command, not both");
		return -EINVAL;
	}
	if (o->process_file)
		r = load_process_file(o);
	else if (optind == argc) {
		oci_error("exec: expects a command (or --process FILE)");
		return -EINVAL;
	}
	for (; r == 0 && optind < argc; optind++)
		r = add_item(o, "arg", argv[optind]);
	return r;
}

struct exec_monitor {
	int conn, signal_fd;
	struct oci_stdio io;
	struct oci_relay relay;
	bool exited;
	int status;
};

static void forward_signal(struct exec_monitor *em)
{
	struct signalfd_siginfo si;
	struct winsize ws;
	char msg[64];

	if (read(em->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGWINCH) {
		if (!em->io.tty || ioctl(em->io.out, TIOCGWINSZ, &ws) < 0 || !ws.ws_row)
			return;
		snprintf(msg, sizeof(msg), "resize %u %u", ws.ws_row, ws.ws_col);
	} else {
		snprintf(msg, sizeof(msg), "signal %u", si.ssi_signo);
	}
	(void)oci_ctl_send(em->conn, msg, strlen(msg), NULL, 0);
}

static void read_exit(struct exec_monitor *em)
{
	char msg[64];
	ssize_t n = oci_ctl_recv(em->conn, msg, sizeof(msg), NULL, 0, NULL);

	/* The init monitor gone without a word: the VM and the process are gone. */
	if (n <= 0 || sscanf(msg, "exit %d", &em->status) != 1)
		em->status = EXIT_KILLED;
	em->exited = true;
}

static int exec_monitor_loop(struct exec_monitor *em)
{
	enum { P_SIG = 3, P_CONN, P_COUNT };
	struct pollfd pfd[P_COUNT];

	while (!em->exited || oci_relay_output_open(&em->relay)) {
		oci_relay_pollfds(&em->relay, pfd);
		pfd[P_SIG] = (struct pollfd){ .fd = em->signal_fd, .events = POLLIN };
		pfd[P_CONN] = (struct pollfd){ .fd = em->exited ? -1 : em->conn, .events = POLLIN };
		if (poll(pfd, P_COUNT, -1) < 0) {
			if (errno == EINTR)
				continue;
			return EXIT_KILLED;
		}
		oci_relay_handle(&em->relay, pfd);
		if (pfd[P_SIG].revents)
			forward_signal(em);
		if (pfd[P_CONN].revents)
			read_exit(em);
	}
	oci_relay_close(&em->relay);
	return em->status;
}

/* Ask the init monitor for the process; 0 when it runs, its fds relayed. */
static int exec_monitor_start(struct exec_opts *o, struct exec_monitor *em)
{
	struct husk_stdio stdio = { -1, -1, -1 };
	int fds[3];
	size_t n_fds = 0;
	char reply[512];
	ssize_t n;
	int r;

	em->conn = oci_ctl_connect(oci_globals.root, o->ctl_id);
	if (em->conn < 0) {
		oci_error("container not running");
		return -ESRCH;
	}
	r = oci_ctl_send(em->conn, o->req, o->req_len, NULL, 0);
	if (r < 0) {
		oci_error("exec: %s", strerror(-r));
		return r;
	}
	n = oci_ctl_recv(em->conn, reply, sizeof(reply), fds, 3, &n_fds);
	if (n <= 0) {
		oci_error("container not running");
		return -ESRCH;
	}
	if (strncmp(reply, "ok", 2)) {
		int code = EIO, off = 0;

		sscanf(reply, "err %d %n", &code, &off);
		oci_error("exec failed: %s", reply + off);
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		return -code;
	}
	if (n_fds < 2)
		return -EPROTO;
	stdio.stdin_fd = fds[0];
	stdio.stdout_fd = fds[1];
	stdio.stderr_fd = n_fds == 3 ? fds[2] : -1;
	oci_relay_init(&em->relay, &em->io, &stdio);
	return 0;
}

static struct termios saved_termios;
static bool termios_saved;

static void restore_terminal(void)
{
	if (termios_saved)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
	termios_saved = false;
}

/* Foreground exec -t without a console socket: our own terminal, raw meanwhile. */
static int own_terminal(struct exec_opts *o, struct oci_stdio *io)
{
	struct termios raw;
	struct winsize ws;
	char size[32];

	if (o->detach) {
		oci_error("cannot allocate tty if husk will detach without setting console socket");
		return -EINVAL;
	}
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		oci_error("exec: --tty without --console-socket needs a terminal on stdin and stdout");
		return -ENOTTY;
	}
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row) {
		snprintf(size, sizeof(size), "%u %u", ws.ws_row, ws.ws_col);
		if (add_item(o, "size", size) < 0)
			return -E2BIG;
	}
	/* The guest's pty echoes and edits lines: ours passes keys through. */
	if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
		return -errno;
	raw = saved_termios;
	cfmakeraw(&raw);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
		return -errno;
	termios_saved = true;
	*io = (struct oci_stdio){ STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, true };
	return 0;
}

static int exec_stdio(struct exec_opts *o, struct oci_stdio *io)
{
	int slave, r;

	if (!o->tty) {
		*io = (struct oci_stdio){ STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, false };
		return 0;
	}
	if (!o->console_socket)
		return own_terminal(o, io);
	r = oci_console_setup(o->console_socket, &slave);
	if (r < 0) {
		oci_error("console socket %s: %s", o->console_socket, strerror(-r));
		return r;
	}
	*io = (struct oci_stdio){ .in = dup(slave), .out = slave, .err = dup(slave), .tty = true };
	return io->in < 0 || io->err < 0 ? -EMFILE : 0;
}

/* --detach: the child becomes the exec monitor; we wait for it to be set up. */
static int exec_detached(struct exec_opts *o, struct exec_monitor *em)
{
	int fds[2], r;
	char ok = 0;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(fds[0]);
		setsid();
		if (em->io.tty)
			(void)ioctl(em->io.out, TIOCSCTTY, 0);
		r = exec_monitor_start(o, em);
		if (r < 0)
			_exit(1);
		if (em->io.tty)
			for (int fd = 0; fd < 3; fd++)
				(void)dup2(em->io.out, fd);
		(void)!write(fds[1], "o", 1);
		close(fds[1]);
		oci_globals.no_stderr = true;
		_exit(exec_monitor_loop(em));
	}
	close(fds[1]);
	while (read(fds[0], &ok, 1) < 0 && errno == EINTR)
		;
	close(fds[0]);
	if (ok != 'o')
		return -EIO;
	if (o->pid_file && (r = oci_write_pid_file(o->pid_file, pid)) < 0) {
		oci_error("pid file %s: %s", o->pid_file, strerror(-r));
		kill(pid, SIGKILL);
		return r;
	}
	return 0;
}

int cmd_oci_exec(int argc, char **argv)
{
	struct exec_opts o = { 0 };
	struct exec_monitor em = { .conn = -1, .signal_fd = -1 };
	struct husk_error err = { 0 };
	_cleanup_close_ int dir_fd = -1;
	struct oci_state st;
	int r;

	o.req = strdup("exec");
	o.req_len = sizeof("exec");
	r = o.req ? parse_exec(argc, argv, &o) : -ENOMEM;
	if (r < 0)
		goto out;
	r = oci_state_open(oci_globals.root, o.id, &dir_fd, &err);
	if (r == 0)
		r = oci_state_read(dir_fd, &st, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		goto out;
	}
	if (oci_state_status(&st) != OCI_RUNNING) {
		bool paused = oci_state_status(&st) == OCI_PAUSED;

		oci_state_release(&st);
		oci_error(paused ? "cannot exec in a paused container" :
			  "cannot exec in a stopped container: container not running");
		r = -EINVAL;
		goto out;
	}
	/* A pod member's processes are started by the sandbox's monitor. */
	snprintf(o.ctl_id, sizeof(o.ctl_id), "%s",
		 oci_pod_sandbox_of(&st) ? oci_pod_sandbox_of(&st) : o.id);
	oci_state_release(&st);
	r = add_item(&o, "container", o.id);
	if (r < 0)
		goto out;
	dir_fd = safe_close(dir_fd);
	r = add_item(&o, "tty", o.tty ? "1" : "0");
	if (r == 0)
		r = exec_stdio(&o, &em.io);
	if (r == 0) {
		em.signal_fd = oci_monitor_signalfd();
		if (em.signal_fd < 0)
			r = -errno;
	}
	if (r < 0)
		goto out;
	if (o.detach) {
		r = exec_detached(&o, &em);
		goto out;
	}
	if (o.pid_file && (r = oci_write_pid_file(o.pid_file, getpid())) < 0) {
		oci_error("pid file %s: %s", o.pid_file, strerror(-r));
		goto out;
	}
	r = exec_monitor_start(&o, &em);
	if (r == 0) {
		free(o.req);
		r = exec_monitor_loop(&em);
		restore_terminal();
		return r;
	}
out:
	restore_terminal();
	free(o.req);
	return r < 0 ? 1 : 0;
}
