// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk vm-run / vm-argv / vm-reap: diagnostics over libhusk's vm API. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "husk/husk.h"
#include "husk-tool.h"

#define MAX_SHARES 16

struct vm_opts {
	struct husk_vm_config cfg;
	struct husk_vm_share shares[MAX_SHARES];
	const char *wait_console;
	int boot_timeout_ms;
	int stop_timeout_ms;
	bool json;
};

static const char vm_usage[] =
	"usage: husk %s --kernel FILE [OPTIONS] [-- QEMU-ARGS...]\n"
	"  --kernel FILE          guest kernel (PVH vmlinux or bzImage)\n"
	"  --initrd FILE          initramfs\n"
	"  --append TEXT          extra kernel command line\n"
	"  --machine microvm|q35  (default microvm)\n"
	"  --accel auto|tcg|kvm   (default auto: KVM when usable)\n"
	"  --cpus N --memory MIB  (default 1, 256)\n"
	"  --tb-size MIB          TCG translation cache (default 16)\n"
	"  --vsock none|vhost-user|kernel, --cid N, --vsockd PATH\n"
	"  --share TAG:DIR[:ro]   virtio-9p share (repeatable)\n"
	"  --name NAME --state-root DIR --keep-logs --qemu PATH\n"
	"  --wait-console TEXT    vm-run: wait for TEXT on the guest console\n"
	"  --timeout SEC          vm-run: boot timeout for --wait-console (60)\n"
	"  --stop-timeout MS      vm-run: stop escalation budget (4000)\n";

static int parse_enum(const char *arg, const char *const *names, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(arg, names[i])) {
			*out = (int)i;
			return 0;
		}
	return -EINVAL;
}

static int parse_uint(const char *arg, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || *out > max || arg[0] == '-')
		return -EINVAL;
	return 0;
}

static int parse_share(struct vm_opts *o, char *arg)
{
	struct husk_vm_share *s;
	char *colon = strchr(arg, ':'), *ro;

	if (!colon || o->cfg.n_shares == MAX_SHARES)
		return -EINVAL;
	s = &o->shares[o->cfg.n_shares++];
	*colon = '\0';
	s->tag = arg;
	s->path = colon + 1;
	ro = strrchr(s->path, ':');
	if (ro && !strcmp(ro, ":ro")) {
		*ro = '\0';
		s->readonly = true;
	}
	o->cfg.shares = o->shares;
	return 0;
}

static int parse_vm_opts(const char *cmd, int argc, char **argv, struct vm_opts *o)
{
	static const char *const machines[] = { "microvm", "q35" };
	static const char *const accels[] = { "auto", "tcg", "kvm" };
	static const char *const vsocks[] = { "none", "vhost-user", "kernel" };
	static const struct option longopts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "machine", required_argument, NULL, 'M' },
		{ "accel", required_argument, NULL, 'A' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' },
		{ "tb-size", required_argument, NULL, 'B' },
		{ "vsock", required_argument, NULL, 'v' },
		{ "cid", required_argument, NULL, 'C' },
		{ "vsockd", required_argument, NULL, 'D' },
		{ "share", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "state-root", required_argument, NULL, 'r' },
		{ "keep-logs", no_argument, NULL, 'K' },
		{ "qemu", required_argument, NULL, 'q' },
		{ "wait-console", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "stop-timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned long v;
	int c, e = 0, idx = 0;

	husk_vm_config_init(&o->cfg);
	o->boot_timeout_ms = 60000;
	o->stop_timeout_ms = 4000;
	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		int r = 0;

		switch (c) {
		case 'k': o->cfg.kernel = optarg; break;
		case 'i': o->cfg.initrd = optarg; break;
		case 'a': o->cfg.cmdline = optarg; break;
		case 'M':
			r = parse_enum(optarg, machines, 2, &e);
			o->cfg.machine = e;
			break;
		case 'A':
			r = parse_enum(optarg, accels, 3, &e);
			o->cfg.accel = e;
			break;
		case 'v':
			r = parse_enum(optarg, vsocks, 3, &e);
			o->cfg.vsock = e;
			break;
		case 'c':
			r = parse_uint(optarg, 255, &v);
			o->cfg.cpus = v;
			break;
		case 'm':
			r = parse_uint(optarg, 1024 * 1024, &v);
			o->cfg.memory_mib = v;
			break;
		case 'B':
			r = parse_uint(optarg, 2048, &v);
			if (!r && !v)
				r = -EINVAL;
			o->cfg.tcg_tb_mib = v;
			break;
		case 'C':
			r = parse_uint(optarg, UINT32_MAX, &v);
			o->cfg.guest_cid = v;
			break;
		case 'D': o->cfg.vsockd = optarg; break;
		case 's': r = parse_share(o, optarg); break;
		case 'n': o->cfg.name = optarg; break;
		case 'r': o->cfg.state_root = optarg; break;
		case 'K': o->cfg.keep_logs = true; break;
		case 'q': o->cfg.qemu = optarg; break;
		case 'w': o->wait_console = optarg; break;
		case 't':
			r = parse_uint(optarg, 3600, &v);
			o->boot_timeout_ms = v * 1000;
			break;
		case 'T':
			r = parse_uint(optarg, 3600000, &v);
			o->stop_timeout_ms = v;
			break;
		case 'h':
			printf(vm_usage, cmd);
			exit(0);
		default:
			fprintf(stderr, vm_usage, cmd);
			return -EINVAL;
		}
		if (r < 0) {
			fprintf(stderr, "husk %s: bad value '%s' for --%s\n", cmd, optarg,
				longopts[idx].name);
			return -EINVAL;
		}
	}
	if (optind < argc)
		o->cfg.extra_args = (const char *const *)argv + optind;
	if (!o->cfg.kernel) {
		fprintf(stderr, "husk %s: --kernel is required\n", cmd);
		return -EINVAL;
	}
	return 0;
}

int cmd_vm_argv(int argc, char **argv)
{
	struct husk_error err = { 0 };
	struct vm_opts o = { 0 };
	char root[4096];
	char **qargv;
	int r;

	if (parse_vm_opts("vm-argv", argc, argv, &o) < 0)
		return 2;
	if (o.cfg.state_root)
		snprintf(root, sizeof(root), "%s", o.cfg.state_root);
	else if (husk_state_root_default(root, sizeof(root), &err) < 0)
		goto fail;
	strncat(root, "/", sizeof(root) - strlen(root) - 1);
	strncat(root, o.cfg.name ? o.cfg.name : "NAME", sizeof(root) - strlen(root) - 1);
	r = husk_vm_build_argv(&o.cfg, root, &qargv, &err);
	if (r < 0)
		goto fail;
	for (size_t i = 0; qargv[i]; i++)
		printf("%s\n", qargv[i]);
	husk_strv_free(qargv);
	return 0;
fail:
	fprintf(stderr, "husk vm-argv: %s\n", err.msg);
	return 1;
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_started(const struct husk_vm *vm)
{
	printf("{\"event\":\"started\",\"name\":");
	print_json_string(husk_vm_name(vm));
	printf(",\"state_dir\":");
	print_json_string(husk_vm_state_dir(vm));
	printf(",\"console\":");
	print_json_string(husk_vm_console_path(vm));
	printf(",\"vsock\":");
	if (husk_vm_vsock_path(vm))
		print_json_string(husk_vm_vsock_path(vm));
	else
		printf("null");
	printf(",\"qemu_pid\":%d,\"pid\":%d}\n", husk_vm_qemu_pid(vm), (int)getpid());
	fflush(stdout);
}

static void print_exit(const struct husk_vm_exit *ex)
{
	printf("{\"event\":\"exited\",\"exit_code\":%d,\"signal\":%d,"
	       "\"guest_shutdown\":%s,\"guest_panicked\":%s,\"vsockd_died\":%s,"
	       "\"reason\":",
	       ex->exit_code, ex->signal, ex->guest_shutdown ? "true" : "false",
	       ex->guest_panicked ? "true" : "false", ex->vsockd_died ? "true" : "false");
	print_json_string(ex->shutdown_reason);
	printf("}\n");
	fflush(stdout);
}

/* Supervise until QEMU exits; SIGINT/SIGTERM stop the VM with escalation. */
static int supervise(struct husk_vm *vm, int sfd, int stop_timeout_ms)
{
	struct husk_error err = { 0 };

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = husk_vm_fd(vm), .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};
		int r = husk_vm_process(vm, &err);

		if (r == 1)
			return 0;
		if (r < 0)
			break;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
			perror("husk vm-run: poll");
			return -errno;
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			r = husk_vm_stop(vm, stop_timeout_ms, &err);
			if (r < 0)
				break;
			return 0;
		}
	}
	fprintf(stderr, "husk vm-run: %s\n", err.msg);
	return -err.code;
}

int cmd_vm_run(int argc, char **argv)
{
	struct husk_error err = { 0 };
	struct vm_opts o = { 0 };
	struct husk_vm *vm = NULL;
	struct husk_vm_exit ex;
	sigset_t mask;
	int sfd, rc = 1;

	if (parse_vm_opts("vm-run", argc, argv, &o) < 0)
		return 2;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("husk vm-run: signalfd");
		return 1;
	}
	if (husk_vm_start(&o.cfg, &vm, &err) < 0) {
		fprintf(stderr, "husk vm-run: %s\n", err.msg);
		return 1;
	}
	if (o.wait_console &&
	    husk_vm_wait_console(vm, o.wait_console, o.boot_timeout_ms, &err) < 0) {
		fprintf(stderr, "husk vm-run: %s (console: %s)\n", err.msg,
			husk_vm_console_path(vm));
		husk_vm_stop(vm, 0, NULL);
		goto out;
	}
	print_started(vm);
	if (supervise(vm, sfd, o.stop_timeout_ms) < 0)
		goto out;
	husk_vm_get_exit(vm, &ex);
	print_exit(&ex);
	rc = ex.exit_code == 0 ? 0 : 1;
out:
	husk_vm_destroy(vm);
	close(sfd);
	return rc;
}

int cmd_vm_reap(int argc, char **argv)
{
	struct husk_error err = { 0 };
	const char *root = NULL;
	int r;

	if (argc > 2 && !strcmp(argv[1], "--state-root"))
		root = argv[2];
	else if (argc > 1) {
		fprintf(stderr, "usage: husk vm-reap [--state-root DIR]\n");
		return 2;
	}
	r = husk_state_reap(root, &err);
	if (r < 0) {
		fprintf(stderr, "husk vm-reap: %s\n", err.msg);
		return 1;
	}
	printf("reaped %d\n", r);
	return 0;
}
