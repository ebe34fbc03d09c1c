// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk run: boot a sandbox, run one container in it, relay its stdio, exit
 * with its status, tear everything down.  The work is libhusk's; this file
 * turns flags into a spec and a sandbox config and reports failures in one
 * line each.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-tool.h"
#include "run.h"


#define MAX_ENV 256
#define CONTAINER_ID "husk-run"
/* The agent queues OOM events as memory.events changes; it is prompt. */
#define OOM_EVENT_WAIT_MS 500

struct run_opts {
	unsigned int vm_cpus;
	unsigned int vm_memory_mib;
	int64_t memory_bytes;		/* 0: no limit */
	int64_t pids_limit;		/* 0: no limit */
	const char *kernel;
	const char *initrd;
	enum husk_vm_accel accel;
	enum husk_vm_machine machine;
	unsigned int tcg_tb_mib;
	bool tty, interactive, timings, debug;
	const char *env[MAX_ENV];
	size_t n_env;
	const char *cwd;
	bool set_user;
	uint32_t uid, gid;
	const char *hostname;
	const char *bundle;
	const char *rootfs;
	char **cmd;			/* NULL: the spec's args */
	int agent_timeout_ms;
};

static const char run_usage[] =
	"usage: husk run [OPTIONS] (BUNDLE_DIR | --rootfs DIR) [-- CMD ARGS...]\n"
	"  --vm-cpus N           vCPUs of the VM (default 1)\n"
	"  --vm-memory SIZE      VM memory, e.g. 256M, 1G (default 256M)\n"
	"  --memory SIZE         the container's memory limit (cgroup, in the guest)\n"
	"  --pids-limit N        the container's task limit\n"
	"  --kernel NAME|PATH    guest image by name: minimal (default) or debian;\n"
	"                        or a kernel file (a path with a '/')\n"
	"  --initrd PATH         guest initramfs (default: the image's)\n"
	"  --machine microvm|q35 QEMU machine type (default microvm)\n"
	"  --tb-size MIB         TCG translation cache (default 16)\n"
	"  --accel tcg|kvm       (default: KVM when usable, else TCG)\n"
	"  -t, --tty             give the container a terminal\n"
	"  -i, --interactive     forward stdin\n"
	"  -e, --env K=V         set an environment variable (repeatable)\n"
	"  -w, --workdir DIR     working directory inside the container\n"
	"  -u, --user UID[:GID]  numeric user (and group) to run as\n"
	"  --hostname H          the container's hostname\n"
	"  --rootfs DIR          run in DIR with a default spec instead of a bundle\n"
	"  --agent-timeout SEC   how long the guest may take to answer (default 60)\n"
	"  --timings             print a timeline on stderr at the end\n"
	"  --debug               show the guest console on stderr\n"
	"Exit status: the container's (128+N when killed by signal N), 125 when\n"
	"husk itself failed.\n";

/* "256M", "1g", "65536k", "1048576" (bytes unless a suffix says otherwise). */
static int parse_size(const char *arg, uint64_t *bytes)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || arg[0] == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case '\0': break;
	default: return -EINVAL;
	}
	if ((*end == 'b' || *end == 'B') && shift)
		end++;
	if (*end || v > (UINT64_MAX >> 1) >> shift)
		return -EINVAL;
	*bytes = v << shift;
	return 0;
}

static int parse_uint(const char *arg, unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || *out > max)
		return -EINVAL;
	return 0;
}

static int parse_user(const char *arg, struct run_opts *o)
{
	unsigned long long uid, gid = 0;
	char buf[64], *colon;

	if (strlen(arg) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, arg);
	colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	if (parse_uint(buf, UINT32_MAX - 1, &uid) < 0 ||
	    (colon && parse_uint(colon + 1, UINT32_MAX - 1, &gid) < 0))
		return -EINVAL;
	o->set_user = true;
	o->uid = (uint32_t)uid;
	o->gid = colon ? (uint32_t)gid : (uint32_t)uid;
	return 0;
}

enum {
	OPT_VM_CPUS = 256, OPT_VM_MEMORY, OPT_MEMORY, OPT_PIDS, OPT_KERNEL, OPT_INITRD,
	OPT_ACCEL, OPT_MACHINE, OPT_TB_SIZE, OPT_HOSTNAME, OPT_ROOTFS, OPT_TIMINGS, OPT_DEBUG,
	OPT_AGENT_TIMEOUT,
};

static int bad_value(const char *opt, const char *arg)
{
	fprintf(stderr, "husk run: bad value '%s' for %s\n", arg, opt);
	return -EINVAL;
}

static int parse_one(int c, const char *arg, struct run_opts *o)
{
	unsigned long long v;
	uint64_t bytes;

	switch (c) {
	case OPT_VM_CPUS:
		if (parse_uint(arg, 255, &v) < 0 || !v)
			return bad_value("--vm-cpus", arg);
		o->vm_cpus = v;
		return 0;
	case OPT_VM_MEMORY:
		if (parse_size(arg, &bytes) < 0 || bytes < (64ULL << 20) || bytes > (1ULL << 40))
			return bad_value("--vm-memory (64M..1T)", arg);
		o->vm_memory_mib = bytes >> 20;
		return 0;
	case OPT_MEMORY:
		if (parse_size(arg, &bytes) < 0 || bytes < (4ULL << 20))
			return bad_value("--memory (at least 4M)", arg);
		o->memory_bytes = (int64_t)bytes;
		return 0;
	case OPT_PIDS:
		if (parse_uint(arg, INT32_MAX, &v) < 0 || !v)
			return bad_value("--pids-limit", arg);
		o->pids_limit = (int64_t)v;
		return 0;
	case OPT_KERNEL: o->kernel = arg; return 0;
	case OPT_INITRD: o->initrd = arg; return 0;
	case OPT_ACCEL:
		if (!strcmp(arg, "tcg"))
			o->accel = HUSK_VM_ACCEL_TCG;
		else if (!strcmp(arg, "kvm"))
			o->accel = HUSK_VM_ACCEL_KVM;
		else
			return bad_value("--accel (tcg or kvm)", arg);
		return 0;
	case OPT_MACHINE:
		if (!strcmp(arg, "microvm"))
			o->machine = HUSK_VM_MACHINE_MICROVM;
		else if (!strcmp(arg, "q35"))
			o->machine = HUSK_VM_MACHINE_Q35;
		else
			return bad_value("--machine (microvm or q35)", arg);
		return 0;
	case OPT_TB_SIZE:
		if (parse_uint(arg, 2048, &v) < 0 || !v)
			return bad_value("--tb-size (1..2048 MiB)", arg);
		o->tcg_tb_mib = v;
		return 0;
	case 't': o->tty = true; return 0;
	case 'i': o->interactive = true; return 0;
	case 'e':
		if (o->n_env == MAX_ENV || !strchr(arg, '=') || arg[0] == '=')
			return bad_value("-e (KEY=VALUE)", arg);
		o->env[o->n_env++] = arg;
		return 0;
	case 'w': o->cwd = arg; return 0;
	case 'u':
		return parse_user(arg, o) < 0 ? bad_value("-u (UID[:GID])", arg) : 0;
	case OPT_HOSTNAME: o->hostname = arg; return 0;
	case OPT_ROOTFS: o->rootfs = arg; return 0;
	case OPT_TIMINGS: o->timings = true; return 0;
	case OPT_DEBUG: o->debug = true; return 0;
	case OPT_AGENT_TIMEOUT:
		if (parse_uint(arg, 3600, &v) < 0 || !v)
			return bad_value("--agent-timeout", arg);
		o->agent_timeout_ms = (int)v * 1000;
		return 0;
	}
	return -EINVAL;
}

static int parse_run_opts(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "vm-cpus", required_argument, NULL, OPT_VM_CPUS },
		{ "vm-memory", required_argument, NULL, OPT_VM_MEMORY },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "pids-limit", required_argument, NULL, OPT_PIDS },
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "accel", required_argument, NULL, OPT_ACCEL },
		{ "machine", required_argument, NULL, OPT_MACHINE },
		{ "tb-size", required_argument, NULL, OPT_TB_SIZE },
		{ "tty", no_argument, NULL, 't' },
		{ "interactive", no_argument, NULL, 'i' },
		{ "env", required_argument, NULL, 'e' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },
		{ "hostname", required_argument, NULL, OPT_HOSTNAME },
		{ "rootfs", required_argument, NULL, OPT_ROOTFS },
		{ "timings", no_argument, NULL, OPT_TIMINGS },
		{ "debug", no_argument, NULL, OPT_DEBUG },
		{ "agent-timeout", required_argument, NULL, OPT_AGENT_TIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	o->vm_cpus = 1;
	o->vm_memory_mib = 256;
	o->agent_timeout_ms = 60000;
	/* '+': options end at the bundle directory, as in `docker run IMAGE CMD`. */
	while ((c = getopt_long(argc, argv, "+tie:w:u:h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(run_usage, stdout);
			exit(0);
		}
		if (c == '?' || parse_one(c, optarg, o) < 0) {
			fputs(run_usage, stderr);
			return -EINVAL;
		}
	}
	if (!o->rootfs) {
		if (optind >= argc || !strcmp(argv[optind - 1], "--")) {
			fprintf(stderr, "husk run: give a bundle directory or --rootfs DIR\n");
			return -EINVAL;
		}
		o->bundle = argv[optind++];
	}
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind < argc)
		o->cmd = argv + optind;
	return 0;
}

static int build_spec(const struct run_opts *o, struct husk_spec **spec_out)
{
	struct husk_error err = { 0 };
	struct husk_spec *spec = NULL;
	int r;

	r = o->bundle ? husk_spec_from_bundle(o->bundle, &spec, &err)
		      : husk_spec_from_rootfs(o->rootfs, &spec, &err);
	if (r == 0 && o->cmd)
		r = husk_spec_set_args(spec, (const char *const *)o->cmd, &err);
	for (size_t i = 0; r == 0 && i < o->n_env; i++)
		r = husk_spec_set_env(spec, o->env[i], &err);
	if (r == 0 && o->tty) {
		husk_spec_set_terminal(spec, true);
		r = husk_spec_set_env(spec, "TERM=xterm", &err);
	}
	if (r == 0 && o->cwd)
		r = husk_spec_set_cwd(spec, o->cwd, &err);
	if (r == 0 && o->set_user)
		husk_spec_set_user(spec, o->uid, o->gid);
	if (r == 0 && o->hostname)
		r = husk_spec_set_hostname(spec, o->hostname, &err);
	if (r == 0 && o->memory_bytes)
		r = husk_spec_set_memory_limit(spec, o->memory_bytes, &err);
	if (r == 0 && o->pids_limit)
		r = husk_spec_set_pids_limit(spec, o->pids_limit, &err);
	if (r < 0) {
		fprintf(stderr, "husk run: %s\n", err.msg);
		husk_spec_free(spec);
		return r;
	}
	*spec_out = spec;
	return 0;
}

static int open_signal_fd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGWINCH);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* The signal that cancelled the boot (SIGWINCH does not count: keep waiting is not offered). */
static int interrupting_signal(int signal_fd)
{
	struct signalfd_siginfo si;

	while (read(signal_fd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo != SIGWINCH)
			return (int)si.ssi_signo;
	return SIGINT;
}

struct timeline {
	struct husk_sandbox_timings sb;
	int64_t created, started, exited, vm_gone;
};

static void print_step(int64_t t0, int64_t t, const char *what)
{
	if (t)
		fprintf(stderr, "husk: %8.3f s  %s\n", (double)(t - t0) / 1000.0, what);
}

static void print_timeline(const struct timeline *tl)
{
	int64_t t0 = tl->sb.start;

	print_step(t0, tl->sb.start, "start");
	print_step(t0, tl->sb.qemu_spawned, "QEMU spawned");
	print_step(t0, tl->sb.agent_ready, "agent ready");
	print_step(t0, tl->created, "container created");
	print_step(t0, tl->started, "container started");
	print_step(t0, tl->exited, "container exited");
	print_step(t0, tl->vm_gone, "VM gone");
}

static void debug_console_open(struct run_io *io)
{
	io->console_fd = open(husk_vm_console_path(husk_sandbox_vm(io->sb)),
			      O_RDONLY | O_CLOEXEC);
	run_io_console_follow(io);
}

/* A SIGKILL may be the OOM killer's: the agent queues an event if so. */
static void report_oom_kill(struct husk_sandbox *sb)
{
	char id[128];

	if (husk_sandbox_wait_oom(sb, OOM_EVENT_WAIT_MS, id, sizeof(id), NULL) == 0 &&
	    !strcmp(id, CONTAINER_ID))
		fprintf(stderr, "husk run: the container ran out of memory (OOM kill in its cgroup)\n");
}

/* The container's part: create, start, relay, wait, delete. */
static int run_container(struct run_io *io, const struct husk_spec *spec,
			 const struct run_opts *o, struct timeline *tl, int *status)
{
	struct husk_process_options popts = { .open_stdin = o->interactive };
	struct husk_error err = { 0 };
	struct husk_container *ctr;
	int r;

	io->tty = husk_spec_terminal(spec);
	if (io->tty)
		run_tty_size(&popts.rows, &popts.cols);
	r = husk_container_create(io->sb, CONTAINER_ID, spec, &popts, &io->stdio, &ctr, &err);
	if (r < 0) {
		fprintf(stderr, "husk run: %s\n", err.msg);
		return r;
	}
	tl->created = run_now_ms();
	io->proc = husk_container_process(ctr);
	r = husk_container_start(ctr, &err);
	if (r < 0) {
		fprintf(stderr, "husk run: %s\n", err.msg);
	} else {
		tl->started = run_now_ms();
		if (io->tty && o->interactive)
			run_tty_raw();
		r = run_io_loop(io, status);
		run_tty_restore();
		tl->exited = io->exited_ms;
		if (r == 0 && *status == 128 + SIGKILL)
			report_oom_kill(io->sb);
	}
	if (io->stdio.stdin_fd >= 0)
		close(io->stdio.stdin_fd);
	if (io->stdio.stdout_fd >= 0)
		close(io->stdio.stdout_fd);
	if (io->stdio.stderr_fd >= 0)
		close(io->stdio.stderr_fd);
	/* A dead VM cannot remove anything: destroying the sandbox cleans up. */
	if (r != -EPIPE && husk_container_delete(ctr, &err) < 0 && r == 0)
		fprintf(stderr, "husk run: %s\n", err.msg);
	return r;
}

/*
 * A bundle's host bind mounts reach the VM through a shared directory:
 * a private one below the state root (no lock file: reaping skips it).
 */
static int shared_dir_make(const struct husk_spec *spec, char *dir, size_t size)
{
	struct husk_error err = { 0 };
	size_t n = husk_spec_host_binds(spec);

	dir[0] = '\0';
	if (!n)
		return 0;
	if (geteuid() != 0) {
		fprintf(stderr, "husk run: config.json: %zu host bind mount%s (mounts[] of type "
			"bind): binding them into the VM needs root\n", n, n > 1 ? "s" : "");
		return -EPERM;
	}
	if (husk_state_root_default(dir, size - 16, &err) < 0) {
		fprintf(stderr, "husk run: %s\n", err.msg);
		return -EINVAL;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "husk run: mkdir %s: %m\n", dir);
		return -errno;
	}
	strcat(dir, "/mounts-XXXXXX");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "husk run: mkdtemp %s: %m\n", dir);
		dir[0] = '\0';
		return -errno;
	}
	return 0;
}

int cmd_run(int argc, char **argv)
{
	char shared_dir[PATH_MAX];
	struct husk_sandbox_config cfg;
	struct run_opts o = { 0 };
	struct run_io io = { .signal_fd = -1, .console_fd = -1 };
	struct husk_error err = { 0 };
	struct husk_spec *spec = NULL;
	struct timeline tl = { 0 };
	struct tool_guest_image image;
	int status = RUN_EXIT_FAILURE, r;

	if (parse_run_opts(argc, argv, &o) < 0)
		return RUN_EXIT_FAILURE;
	if (tool_guest_image(o.kernel, o.initrd, &image, &err) < 0) {
		fprintf(stderr, "husk run: %s\n", err.msg);
		return RUN_EXIT_FAILURE;
	}
	if (build_spec(&o, &spec) < 0)
		return RUN_EXIT_FAILURE;
	if (shared_dir_make(spec, shared_dir, sizeof(shared_dir)) < 0) {
		husk_spec_free(spec);
		return RUN_EXIT_FAILURE;
	}
	io.signal_fd = open_signal_fd();
	if (io.signal_fd < 0) {
		perror("husk run: signalfd");
		goto out;
	}

	husk_sandbox_config_init(&cfg);
	cfg.vm.kernel = image.kernel;
	cfg.vm.initrd = image.initrd;
	cfg.vm.machine = o.machine;
	cfg.vm.tcg_tb_mib = o.tcg_tb_mib;
	cfg.vm.cpus = o.vm_cpus;
	cfg.vm.memory_mib = o.vm_memory_mib;
	cfg.vm.accel = o.accel;
	cfg.vm.vsock = HUSK_VM_VSOCK_VHOST_USER;
	cfg.vm.cmdline = o.debug ? "husk.debug" : "quiet";
	cfg.agent_timeout_ms = o.agent_timeout_ms;
	cfg.cancel_fd = io.signal_fd;
	if (shared_dir[0])
		cfg.shared_dir = shared_dir;
	r = husk_sandbox_create(&cfg, spec, &io.sb, &err);
	if (r == -ECANCELED) {
		status = 128 + interrupting_signal(io.signal_fd);
		fprintf(stderr, "husk run: interrupted while the VM booted\n");
		goto out;
	}
	if (r < 0) {
		fprintf(stderr, "husk run: %s\n", err.msg);
		goto out;
	}
	if (o.debug)
		debug_console_open(&io);
	r = run_container(&io, spec, &o, &tl, &status);
	if (r < 0)
		status = RUN_EXIT_FAILURE;
out:
	if (io.sb) {
		husk_sandbox_get_timings(io.sb, &tl.sb);
		if (o.debug)
			run_io_console_follow(&io);
		husk_sandbox_destroy(io.sb);
		tl.vm_gone = run_now_ms();
	}
	if (io.console_fd >= 0)
		close(io.console_fd);
	if (o.timings && tl.sb.start)
		print_timeline(&tl);
	if (io.signal_fd >= 0)
		close(io.signal_fd);
	if (shared_dir[0] && rmdir(shared_dir) < 0)
		fprintf(stderr, "husk run: rmdir %s: %m\n", shared_dir);
	husk_spec_free(spec);
	return status;
}
