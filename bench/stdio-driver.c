// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk-stdio-driver: boots one sandbox through libhusk and runs stdio
 * scenarios in one container of it, printing one JSON line per scenario.
 * tests/e2e/test_stdio.py checks those lines; bench/stdio.py prints the
 * `bench:` scenario's numbers.  HUSK_STDIO (docs/stdio.md) picks how
 * libhusk carries stdio, so one VM compares vsockfwd.ko, the relay and the
 * RPCs side by side.
 *
 *	husk-stdio-driver --kernel K --initrd I --bundle B [--cmdline S] SCENARIO...
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "husk-common/error.h"
#include "husk/husk.h"
#include "sha256.h"

#define ERR_KEEP (1u << 20)	/* stderr kept per run */
#define OUT_KEEP (4u << 20)	/* stdout kept when a scenario asks */
#define MAX_RUNS 128

struct ctx {
	struct husk_sandbox *sb;
	struct husk_container *ctr;
	struct husk_spec *spec;
	unsigned int seq;
};

/* One process and what came back from it. */
struct run {
	struct husk_process *proc;
	struct husk_stdio io;
	const uint8_t *in;
	size_t in_len, in_off;
	struct sha256 sha;
	uint64_t out_len;
	bool keep_out;
	char *out, *err;
	size_t out_used, err_used;
	int status;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const struct husk_error *err)
{
	fprintf(stderr, "husk-stdio-driver: %s: %s\n", what, err && err->msg[0] ? err->msg : "");
	exit(2);
}

static void run_start(struct ctx *c, const char *script, const uint8_t *in, size_t in_len,
		      bool keep_out, struct run *r)
{
	const char *argv[] = { "sh", "-c", script, NULL };
	struct husk_process_options opts = { .open_stdin = in != NULL };
	struct husk_error err = { 0 };
	char eid[32];

	memset(r, 0, sizeof(*r));
	r->in = in;
	r->in_len = in_len;
	r->keep_out = keep_out;
	sha256_init(&r->sha);
	r->err = calloc(1, ERR_KEEP + 1);
	r->out = keep_out ? calloc(1, OUT_KEEP + 1) : NULL;
	if (!r->err || (keep_out && !r->out))
		die("out of memory", NULL);
	snprintf(eid, sizeof(eid), "e%u", c->seq++);
	if (husk_spec_set_args(c->spec, argv, &err) < 0 ||
	    husk_container_exec(c->ctr, eid, c->spec, &opts, &r->io, &r->proc, &err) < 0)
		die("exec", &err);
	if (r->io.stdin_fd >= 0)
		fcntl(r->io.stdin_fd, F_SETFL, O_NONBLOCK);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Move one batch for fd's role; returns false once that role is done. */
static void run_io(struct run *r, int fd, short revents)
{
	static char buf[1 << 16];
	ssize_t n;

	if (fd == r->io.stdin_fd) {
		if (r->in_off < r->in_len) {
			n = write(fd, r->in + r->in_off, r->in_len - r->in_off);
			if (n > 0)
				r->in_off += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				r->in_off = r->in_len;
		}
		if (r->in_off == r->in_len)
			close_fd(&r->io.stdin_fd);
		return;
	}
	n = read(fd, buf, sizeof(buf));
	if (n <= 0) {
		close_fd(fd == r->io.stdout_fd ? &r->io.stdout_fd : &r->io.stderr_fd);
		return;
	}
	if (fd == r->io.stdout_fd) {
		sha256_update(&r->sha, buf, (size_t)n);
		r->out_len += (uint64_t)n;
		if (r->out && r->out_used + (size_t)n <= OUT_KEEP) {
			memcpy(r->out + r->out_used, buf, (size_t)n);
			r->out_used += (size_t)n;
		}
	} else if (r->err_used + (size_t)n <= ERR_KEEP) {
		memcpy(r->err + r->err_used, buf, (size_t)n);
		r->err_used += (size_t)n;
	}
}

/* Feed stdin and drain both outputs of every run to EOF, then collect the exits. */
static void runs_finish(struct run *runs, int n)
{
	struct pollfd pfd[3 * MAX_RUNS];
	struct run *owner[3 * MAX_RUNS];
	struct husk_error err = { 0 };

	for (;;) {
		int k = 0;

		for (int i = 0; i < n; i++) {
			struct run *r = &runs[i];

			if (r->io.stdin_fd >= 0) {
				owner[k] = r;
				pfd[k++] = (struct pollfd){ .fd = r->io.stdin_fd, .events = POLLOUT };
			}
			if (r->io.stdout_fd >= 0) {
				owner[k] = r;
				pfd[k++] = (struct pollfd){ .fd = r->io.stdout_fd, .events = POLLIN };
			}
			if (r->io.stderr_fd >= 0) {
				owner[k] = r;
				pfd[k++] = (struct pollfd){ .fd = r->io.stderr_fd, .events = POLLIN };
			}
		}
		if (k == 0)
			break;
		if (poll(pfd, k, 120000) <= 0)
			die("no progress for 120 s", NULL);
		for (int i = 0; i < k; i++)
			if (pfd[i].revents)
				run_io(owner[i], pfd[i].fd, pfd[i].revents);
	}
	for (int i = 0; i < n; i++)
		if (husk_process_wait(runs[i].proc, 60000, &runs[i].status, &err) < 0)
			die("wait", &err);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static bool run_once(struct ctx *c, const char *script, const uint8_t *in, size_t in_len,
		     bool keep_out, struct run *r)
{
	run_start(c, script, in, in_len, keep_out, r);
	runs_finish(r, 1);
	return true;
}

/* "<hex>  -\n" from sha256sum against what the host hashed. */
static bool sha_matches(struct run *r)
{
	char hex[65];

	sha256_hex(&r->sha, hex);
	return r->err_used >= 64 && memcmp(r->err, hex, 64) == 0;
}

static uint8_t *random_bytes(size_t n)
{
	uint8_t *b = malloc(n);
	uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);

	if (!b)
		die("out of memory", NULL);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)(x >> 24);
	}
	return b;
}

/* ---- scenarios ----------------------------------------------------------- */

/* stdout:BYTES: random bytes, hashed in the guest (on stderr) and here. */
static bool sc_stdout(struct ctx *c, const char *arg)
{
	uint64_t n = strtoull(arg, NULL, 0);
	char script[256];
	struct run r;
	double t0 = now_s();
	bool ok;

	snprintf(script, sizeof(script),
		 "{ head -c %" PRIu64 " /dev/urandom | tee /proc/self/fd/3 | sha256sum >&2; } 3>&1",
		 n);
	run_once(c, script, NULL, 0, false, &r);
	ok = r.out_len == n && sha_matches(&r) && r.status == 0;
	printf("{\"scenario\": \"stdout\", \"ok\": %s, \"bytes\": %" PRIu64
	       ", \"expected\": %" PRIu64 ", \"status\": %d, \"seconds\": %.2f}\n",
	       ok ? "true" : "false", r.out_len, n, r.status, now_s() - t0);
	run_free(&r);
	return ok;
}

/* stdin:BYTES: the guest hashes what it read to EOF. */
static bool sc_stdin(struct ctx *c, const char *arg)
{
	size_t n = strtoull(arg, NULL, 0);
	uint8_t *data = random_bytes(n);
	struct sha256 sha;
	char hex[65];
	struct run r;
	double t0 = now_s();
	bool ok;

	sha256_init(&sha);
	sha256_update(&sha, data, n);
	sha256_hex(&sha, hex);
	run_once(c, "sha256sum", data, n, true, &r);
	ok = r.out_used >= 64 && memcmp(r.out, hex, 64) == 0 && r.status == 0;
	printf("{\"scenario\": \"stdin\", \"ok\": %s, \"bytes\": %zu, \"status\": %d, "
	       "\"seconds\": %.2f}\n", ok ? "true" : "false", n, r.status, now_s() - t0);
	run_free(&r);
	free(data);
	return ok;
}

/* echo:BYTES: random bytes through `cat`, in by stdin and back by stdout. */
static bool sc_echo(struct ctx *c, const char *arg)
{
	size_t n = strtoull(arg, NULL, 0);
	uint8_t *data = random_bytes(n);
	char sent[65], got[65];
	struct sha256 sha;
	struct run r;
	double t0 = now_s();
	bool ok;

	sha256_init(&sha);
	sha256_update(&sha, data, n);
	sha256_hex(&sha, sent);
	run_once(c, "cat", data, n, false, &r);
	sha256_hex(&r.sha, got);
	ok = r.out_len == n && strcmp(sent, got) == 0 && r.status == 0;
	printf("{\"scenario\": \"echo\", \"ok\": %s, \"bytes\": %" PRIu64 ", \"sha256_sent\": "
	       "\"%s\", \"sha256_received\": \"%s\", \"seconds\": %.2f}\n",
	       ok ? "true" : "false", r.out_len, sent, got, now_s() - t0);
	run_free(&r);
	free(data);
	return ok;
}

static bool lines_exact(const char *buf, size_t len, const char *prefix, unsigned int count)
{
	size_t off = 0;
	char want[32];

	for (unsigned int i = 0; i < count; i++) {
		int w = snprintf(want, sizeof(want), "%s%u\n", prefix, i);

		if (off + (size_t)w > len || memcmp(buf + off, want, (size_t)w) != 0)
			return false;
		off += (size_t)w;
	}
	return off == len;
}

/* interleave:LINES: alternating stdout/stderr lines, each stream in order. */
static bool sc_interleave(struct ctx *c, const char *arg)
{
	unsigned int lines = (unsigned int)strtoul(arg, NULL, 0);
	char script[256];
	struct run r;
	bool ok;

	snprintf(script, sizeof(script),
		 "i=0; while [ $i -lt %u ]; do echo out$i; echo err$i >&2; i=$((i+1)); done", lines);
	run_once(c, script, NULL, 0, true, &r);
	ok = lines_exact(r.out, r.out_used, "out", lines) &&
	     lines_exact(r.err, r.err_used, "err", lines) && r.status == 0;
	printf("{\"scenario\": \"interleave\", \"ok\": %s, \"out_bytes\": %zu, \"err_bytes\": %zu}\n",
	       ok ? "true" : "false", r.out_used, r.err_used);
	run_free(&r);
	return ok;
}

/*
 * Read what is already there without waiting; returns the byte count, or
 * -1 if the stream had not ended yet (a byte still on its way).
 */
static int64_t drain_ready(int fd)
{
	char buf[65536];
	int64_t total = 0;

	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0)
			return total;
		if (n < 0)
			return -1;
		total += n;
	}
}

/*
 * exitloss:RUNS: write N random bytes and exit at once, N varying.  The
 * exit is awaited first: once libhusk reports it, every byte must already
 * be in the caller's stdout and the stream ended (N stays under what the
 * caller's socket buffers, so nothing needs reading to make progress).
 */
static bool sc_exitloss(struct ctx *c, const char *arg)
{
	unsigned int runs = (unsigned int)strtoul(arg, NULL, 0), bad = 0;
	struct husk_error err = { 0 };
	uint64_t total = 0;
	double t0 = now_s();

	for (unsigned int i = 0; i < runs; i++) {
		uint64_t n = 1 + (uint64_t)i * 7919 % 100000;
		char script[128];
		int64_t got;
		struct run r;

		snprintf(script, sizeof(script), "head -c %" PRIu64 " /dev/urandom; exit %u", n,
			 i % 7);
		run_start(c, script, NULL, 0, false, &r);
		if (husk_process_wait(r.proc, 60000, &r.status, &err) < 0)
			die("wait", &err);
		got = drain_ready(r.io.stdout_fd);
		if (got != (int64_t)n || r.status != (int)(i % 7)) {
			fprintf(stderr, "exitloss run %u: %" PRId64 " of %" PRIu64 " bytes, status %d\n",
				i, got, n, r.status);
			bad++;
		}
		total += got > 0 ? (uint64_t)got : 0;
		close_fd(&r.io.stdout_fd);
		runs_finish(&r, 1);
		run_free(&r);
	}
	printf("{\"scenario\": \"exitloss\", \"ok\": %s, \"runs\": %u, \"bad\": %u, "
	       "\"bytes\": %" PRIu64 ", \"seconds\": %.2f}\n", bad ? "false" : "true", runs, bad,
	       total, now_s() - t0);
	return bad == 0;
}

/* disconnect: the host reader leaves mid-stream; the writer gets SIGPIPE. */
static bool sc_disconnect(struct ctx *c, const char *arg)
{
	char buf[65536];
	struct run r;
	ssize_t got = 0;
	bool ok;

	run_start(c, "yes", NULL, 0, false, &r);
	while (got < 1 << 20) {
		ssize_t n = read(r.io.stdout_fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		got += n;
	}
	close_fd(&r.io.stdout_fd);
	runs_finish(&r, 1);
	ok = got >= 1 << 20 && r.status == 128 + 13;
	printf("{\"scenario\": \"disconnect\", \"ok\": %s, \"read\": %zd, \"status\": %d}\n",
	       ok ? "true" : "false", got, r.status);
	run_free(&r);
	return ok;
}

/* concurrent:N:BYTES: N processes streaming at once, each hashed. */
static bool sc_concurrent(struct ctx *c, const char *arg)
{
	char *end;
	unsigned int n = (unsigned int)strtoul(arg, &end, 0), bad = 0;
	uint64_t bytes = *end == ':' ? strtoull(end + 1, NULL, 0) : 1 << 20;
	struct run *runs = calloc(n, sizeof(*runs));
	char script[256];
	double t0 = now_s();

	if (!runs || n > MAX_RUNS)
		die("concurrent: at most 128 runs", NULL);
	for (unsigned int i = 0; i < n; i++) {
		snprintf(script, sizeof(script),
			 "{ head -c %" PRIu64 " /dev/urandom | tee /proc/self/fd/3 | sha256sum >&2; } 3>&1",
			 bytes + i);
		run_start(c, script, NULL, 0, false, &runs[i]);
	}
	runs_finish(runs, (int)n);
	for (unsigned int i = 0; i < n; i++) {
		if (runs[i].out_len != bytes + i || !sha_matches(&runs[i]) || runs[i].status)
			bad++;
		run_free(&runs[i]);
	}
	free(runs);
	printf("{\"scenario\": \"concurrent\", \"ok\": %s, \"streams\": %u, \"bad\": %u, "
	       "\"seconds\": %.2f}\n", bad ? "false" : "true", n, bad, now_s() - t0);
	return bad == 0;
}

/* grace: a background child keeps stdout open; the exit still comes, bounded. */
static bool sc_grace(struct ctx *c, const char *arg)
{
	struct run r;
	double t0 = now_s(), took;
	bool ok;

	run_once(c, "sleep 20 & echo parent; exit 6", NULL, 0, true, &r);
	took = now_s() - t0;
	ok = r.status == 6 && r.out_used == 7 && took < 12;
	printf("{\"scenario\": \"grace\", \"ok\": %s, \"status\": %d, \"seconds\": %.2f}\n",
	       ok ? "true" : "false", r.status, took);
	run_free(&r);
	return ok;
}

/*
 * module: vsockfwd.ko's counters as the guest shows them (needs /sys in the
 * spec).  The host attaches a process's streams while it runs (its output
 * waits in the pipe meanwhile): the script waits a moment so that its own
 * two are counted, not caught half attached between the three reads.
 */
static bool sc_module(struct ctx *c, const char *arg)
{
	unsigned long long active = 0, started = 0, finished = 0;
	int loaded = 0;
	struct run r;
	bool ok;

	run_once(c, "sleep 1; d=/sys/module/vsockfwd/parameters; if [ -d $d ]; then "
		 "echo 1 $(cat $d/active) $(cat $d/started) $(cat $d/finished); else echo 0; fi",
		 NULL, 0, true, &r);
	ok = r.status == 0 && sscanf(r.out, "%d %llu %llu %llu", &loaded, &active, &started,
				     &finished) >= 1;
	printf("{\"scenario\": \"module\", \"ok\": %s, \"loaded\": %s, \"active\": %llu, "
	       "\"started\": %llu, \"finished\": %llu}\n", ok ? "true" : "false",
	       loaded ? "true" : "false", active, started, finished);
	run_free(&r);
	return ok;
}

/* Guest CPU seconds so far (all CPUs, /proc/stat's USER_HZ = 100). */
static double guest_cpu(struct ctx *c)
{
	unsigned long long v[8] = { 0 };
	struct run r;

	run_once(c, "head -1 /proc/stat", NULL, 0, true, &r);
	sscanf(r.out, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
	       &v[3], &v[4], &v[5], &v[6], &v[7]);
	run_free(&r);
	/* user nice system (idle iowait skipped) irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / 100.0;
}

/* bench:BYTES: both directions for each way libhusk carries stdio. */
static bool sc_bench(struct ctx *c, const char *arg)
{
	static const char *const modes[][2] = {
		{ "vsockfwd", "channel" }, { "relay", "relay" }, { "rpc", "rpc" },
	};
	size_t n = strtoull(arg, NULL, 0);
	uint8_t *data = random_bytes(n);
	char script[128];

	/* Whole pipe-sized writes: the producer's own cost stays small. */
	snprintf(script, sizeof(script), "dd if=/dev/zero bs=65536 count=%zu 2>/dev/null",
		 n / 65536);
	n = n / 65536 * 65536;
	for (size_t m = 0; m < 3; m++) {
		for (int dir = 0; dir < 2; dir++) {
			double cpu0, t0, secs, cpu;
			struct run r;

			setenv("HUSK_STDIO", modes[m][1], 1);
			cpu0 = guest_cpu(c);
			t0 = now_s();
			if (dir == 0)
				run_once(c, script, NULL, 0, false, &r);
			else
				run_once(c, "cat >/dev/null", data, n, false, &r);
			secs = now_s() - t0;
			cpu = guest_cpu(c) - cpu0;
			printf("{\"scenario\": \"bench\", \"ok\": %s, \"path\": \"%s\", "
			       "\"direction\": \"%s\", \"bytes\": %zu, \"seconds\": %.3f, "
			       "\"mb_s\": %.2f, \"guest_cpu_s_per_gib\": %.3f}\n",
			       r.status == 0 && (dir == 1 || r.out_len == n) ? "true" : "false",
			       modes[m][0], dir == 0 ? "guest-to-host" : "host-to-guest", n, secs,
			       n / secs / 1e6, cpu * (double)(1ull << 30) / (double)n);
			fflush(stdout);
			run_free(&r);
		}
	}
	unsetenv("HUSK_STDIO");
	free(data);
	return true;
}

static const struct {
	const char *name;
	bool (*fn)(struct ctx *c, const char *arg);
} scenarios[] = {
	{ "stdout", sc_stdout }, { "stdin", sc_stdin }, { "echo", sc_echo },
	{ "interleave", sc_interleave },
	{ "exitloss", sc_exitloss }, { "disconnect", sc_disconnect },
	{ "concurrent", sc_concurrent }, { "grace", sc_grace }, { "module", sc_module },
	{ "bench", sc_bench },
};

static bool run_scenario(struct ctx *c, const char *spec)
{
	size_t len = strcspn(spec, ":");

	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (strlen(scenarios[i].name) == len && strncmp(spec, scenarios[i].name, len) == 0) {
			bool ok = scenarios[i].fn(c, spec[len] ? spec + len + 1 : "");

			fflush(stdout);
			return ok;
		}
	}
	fprintf(stderr, "husk-stdio-driver: unknown scenario '%s'\n", spec);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "bundle", required_argument, NULL, 'b' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "cpus", required_argument, NULL, 'p' },
		{}
	};
	struct husk_sandbox_config cfg;
	struct husk_error err = { 0 };
	struct husk_spec *init_spec = NULL;
	const char *bundle = NULL;
	const char *sleep_argv[] = { "sleep", "100000", NULL };
	struct husk_stdio io;
	struct ctx c = { 0 };
	bool ok = true;
	int opt;

	husk_sandbox_config_init(&cfg);
	cfg.vm.accel = HUSK_VM_ACCEL_TCG;
	cfg.vm.memory_mib = 512;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': cfg.vm.kernel = optarg; break;
		case 'i': cfg.vm.initrd = optarg; break;
		case 'b': bundle = optarg; break;
		case 'c': cfg.vm.cmdline = optarg; break;
		case 'p': cfg.vm.cpus = (unsigned int)atoi(optarg); break;
		default: return 2;
		}
	}
	if (!cfg.vm.kernel || !bundle || optind >= argc) {
		fprintf(stderr, "usage: husk-stdio-driver --kernel K --initrd I --bundle B "
			"[--cmdline S] [--cpus N] SCENARIO...\n");
		return 2;
	}
	if (husk_spec_from_bundle(bundle, &init_spec, &err) < 0 ||
	    husk_spec_from_bundle(bundle, &c.spec, &err) < 0)
		die("bundle", &err);
	if (husk_spec_set_args(init_spec, sleep_argv, &err) < 0)
		die("spec", &err);
	husk_spec_set_terminal(init_spec, false);
	husk_spec_set_terminal(c.spec, false);
	if (husk_sandbox_create(&cfg, init_spec, &c.sb, &err) < 0)
		die("sandbox", &err);
	if (husk_container_create(c.sb, "stdio", init_spec, NULL, &io, &c.ctr, &err) < 0 ||
	    husk_container_start(c.ctr, &err) < 0)
		die("container", &err);
	for (int i = optind; i < argc; i++)
		ok = run_scenario(&c, argv[i]) && ok;
	close(io.stdout_fd);
	if (io.stderr_fd >= 0)
		close(io.stderr_fd);
	(void)husk_container_delete(c.ctr, NULL);
	husk_sandbox_destroy(c.sb);
	husk_spec_free(init_spec);
	husk_spec_free(c.spec);
	return ok ? 0 : 1;
}
