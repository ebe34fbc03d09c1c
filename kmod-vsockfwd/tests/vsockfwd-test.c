// SPDX-License-Identifier: GPL-2.0
/*
 * vsockfwd-test: in-guest scenarios for vsockfwd.ko over vsock loopback
 * (CID 1), so no host backend is needed.  One line per scenario on stdout:
 *
 *	RESULT <name> ok|fail key=value ...
 *
 * `vsockfwd-test test` runs the scenarios (tests/e2e/test_vsockfwd.py),
 * `vsockfwd-test bench MIB ROUNDS [WRITE_SIZE]` compares vsockfwd.ko against
 * user-space relays (bench/vsockfwd.py) and prints BENCH lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>
#include <linux/vsockfwd.h>

#define MIB		(1024 * 1024)
#define CHUNK		(64 * 1024)
#define PARAMS		"/sys/module/vsockfwd/parameters/"
#define MODULE_PATH	"/lib/modules/vsockfwd.ko"

static unsigned char pattern[CHUNK];
static int dev_fd = -1;
static int failures;
/* Benchmarks skip generating and hashing per byte: it would dominate. */
static bool verify = true;
/* Producer write size when not verifying (benchmarks of small writes). */
static size_t write_size = CHUNK;

/* ---- small helpers ---------------------------------------------------- */

static void result(const char *name, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void result(const char *name, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("RESULT %s %s ", name, ok ? "ok" : "fail");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		failures++;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* FNV-1a, streamed: equal hashes and counts mean the same byte stream. */
static uint64_t hash_update(uint64_t h, const unsigned char *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define HASH_INIT 0xcbf29ce484222325ULL

static void pattern_init(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t i;

	for (i = 0; i < sizeof(pattern); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pattern[i] = x >> 24;
	}
}

/* The bytes at stream offset @off of stream @seed (chunk-stamped). */
static void stream_chunk(unsigned char *buf, uint64_t seed, uint64_t off,
			 size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = pattern[(off + i) % CHUNK] ^ (uint8_t)(seed + (off + i) / CHUNK);
}

static long read_counter(const char *name)
{
	char path[128], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

/* Wait for @fd to become readable; 1 ready, 0 timeout, -errno. */
static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ret = poll(&pfd, 1, timeout_ms);

	return ret < 0 ? -errno : ret;
}

/* waitpid with a deadline; returns the wait status or -ETIMEDOUT. */
static int wait_child(pid_t pid, int timeout_ms)
{
	double end = now() + timeout_ms / 1000.0;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			return -errno;
		if (now() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		usleep(2000);
	}
}

/* ---- vsock loopback --------------------------------------------------- */

static int vsock_listen(unsigned int port)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_ANY,
		.svm_port = port,
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(fd, 512) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* A connected pair through @lfd: *cli is the connecting side. */
static int vsock_pair(int lfd, unsigned int port, int *cli, int *srv)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_LOCAL,
		.svm_port = port,
	};
	int c, s;

	c = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0)
		return -errno;
	if (connect(c, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = -errno;

		close(c);
		return err;
	}
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0) {
		int err = -errno;

		close(c);
		return err;
	}
	*cli = c;
	*srv = s;
	return 0;
}

/* ---- the module's API -------------------------------------------------- */

static int fwd_splice(int in_fd, int out_fd, unsigned int flags)
{
	struct vsockfwd_splice args = {
		.size = sizeof(args),
		.flags = flags,
		.in_fd = in_fd,
		.out_fd = out_fd,
	};
	int h = ioctl(dev_fd, VSOCKFWD_SPLICE, &args);

	return h < 0 ? -errno : h;
}

/* Wait for the handle to finish and read its result. */
static int fwd_result(int h, int timeout_ms, struct vsockfwd_result *res)
{
	int ret = wait_readable(h, timeout_ms);

	if (ret <= 0)
		return ret ? ret : -ETIMEDOUT;
	if (read(h, res, sizeof(*res)) != sizeof(*res))
		return -errno ? -errno : -EIO;
	return 0;
}

/* ---- producers and consumers ------------------------------------------ */

struct producer {
	pid_t pid;
	int hash_fd;	/* the child writes its uint64_t hash here at the end */
};

/*
 * Keep only @fd and @hash_fd (as 3 and 4) in a forked child, so it pins
 * neither the module's handles nor the other ends of the test's streams.
 */
static void child_keep_only(int *fd, int *hash_fd)
{
	int a = fcntl(*fd, F_DUPFD_CLOEXEC, 1000);
	int b = fcntl(*hash_fd, F_DUPFD_CLOEXEC, 1000);

	if (a < 0 || b < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0)
		_exit(2);
	close_range(5, ~0U, 0);
	*fd = 3;
	*hash_fd = 4;
}

/* Fork a child writing @len bytes of stream @seed to @fd (-1: forever). */
static int producer_start(struct producer *p, int fd, int64_t len,
			  uint64_t seed)
{
	int hp[2];

	if (pipe2(hp, O_CLOEXEC) < 0)
		return -errno;
	p->pid = fork();
	if (p->pid < 0)
		return -errno;
	if (p->pid == 0) {
		static unsigned char buf[CHUNK];
		uint64_t h = HASH_INIT, off = 0;

		child_keep_only(&fd, &hp[1]);
		while (len < 0 || off < (uint64_t)len) {
			size_t n = verify ? CHUNK : write_size;

			if (len >= 0 && (uint64_t)len - off < n)
				n = len - off;
			if (verify)
				stream_chunk(buf, seed, off, n);
			if (write_all(fd, verify ? buf : pattern, n) < 0)
				_exit(errno == EPIPE || errno == ECONNRESET ? 3 : 2);
			if (verify)
				h = hash_update(h, buf, n);
			off += n;
		}
		if (write_all(hp[1], &h, sizeof(h)) < 0)
			_exit(2);
		_exit(0);
	}
	close(hp[1]);
	p->hash_fd = hp[0];
	return 0;
}

static int producer_finish(struct producer *p, uint64_t *hash)
{
	int status;

	if (read(p->hash_fd, hash, sizeof(*hash)) != sizeof(*hash))
		*hash = 0;
	close(p->hash_fd);
	status = wait_child(p->pid, 30000);
	if (status < 0)
		return status;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Read @fd to EOF (or @limit bytes); returns 0 at EOF or -errno. */
static int consume(int fd, uint64_t limit, uint64_t *bytes, uint64_t *hash)
{
	static unsigned char buf[CHUNK];

	*bytes = 0;
	*hash = HASH_INIT;
	while (*bytes < limit) {
		size_t want = limit - *bytes < CHUNK ? limit - *bytes : CHUNK;
		ssize_t n = read(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if (verify)
			*hash = hash_update(*hash, buf, n);
		*bytes += n;
	}
	return 0;
}

/* ---- scenarios --------------------------------------------------------- */

/* pipe -> vsock (stdout) or vsock -> pipe (stdin), @len bytes. */
static void scenario_stream(const char *name, unsigned int port, bool to_sock,
			    uint64_t len)
{
	uint64_t got = 0, hash = 0, want_hash = 0;
	struct vsockfwd_result res = {};
	int lfd, cli = -1, srv = -1, p[2] = { -1, -1 }, h, ret, rc = -1;
	struct producer prod;
	double t0;

	lfd = vsock_listen(port);
	if (lfd < 0 || vsock_pair(lfd, port, &cli, &srv) < 0 ||
	    pipe2(p, O_CLOEXEC) < 0) {
		result(name, false, "setup errno=%d", errno);
		return;
	}
	close(lfd);
	t0 = now();
	if (to_sock) {
		h = fwd_splice(p[0], cli, VSOCKFWD_F_SHUT_WR | VSOCKFWD_F_CLOSE_OUT);
		close(p[0]);
		close(cli);
		ret = producer_start(&prod, p[1], len, 7);
		close(p[1]);
		if (h >= 0 && !ret)
			rc = consume(srv, UINT64_MAX, &got, &hash);
		close(srv);
	} else {
		h = fwd_splice(cli, p[1], VSOCKFWD_F_CLOSE_OUT);
		close(cli);
		close(p[1]);
		ret = producer_start(&prod, srv, len, 7);
		close(srv);
		if (h >= 0 && !ret)
			rc = consume(p[0], UINT64_MAX, &got, &hash);
		close(p[0]);
	}
	if (h < 0 || ret) {
		result(name, false, "splice=%d producer=%d", h, ret);
		return;
	}
	ret = producer_finish(&prod, &want_hash);
	rc = rc ? rc : fwd_result(h, 10000, &res);
	t0 = now() - t0;
	close(h);
	result(name, !rc && !ret && got == len && hash == want_hash &&
	       res.bytes == len && !res.error,
	       "bytes=%" PRIu64 " want=%" PRIu64 " hash=%016" PRIx64
	       " want_hash=%016" PRIx64 " handle_bytes=%llu handle_error=%d"
	       " producer=%d rc=%d mbps=%.1f", got, len, hash, want_hash,
	       (unsigned long long)res.bytes, res.error, ret, rc,
	       len / t0 / 1e6);
}

/*
 * A producer writes and exits at once; every byte must arrive.  Even
 * iterations start the forwarder first, odd ones after the producer is
 * gone (its data then sits in the pipe alone).
 */
static void scenario_exit_race(unsigned int port, int iterations)
{
	uint64_t lost = 0, total = 0;
	int lfd, i, bad = 0, first_bad = -1;

	lfd = vsock_listen(port);
	if (lfd < 0) {
		result("exit_race", false, "listen=%d", lfd);
		return;
	}
	for (i = 0; i < iterations; i++) {
		bool late = i & 1;
		uint64_t len = late ? 1 + (i * 7919) % 60000 : 1 + (i * 104729) % 300000;
		uint64_t got = 0, hash = 0, want_hash = 0;
		struct vsockfwd_result res = {};
		int cli, srv, p[2], h = -1, rc, ret;
		struct producer prod;

		if (vsock_pair(lfd, port, &cli, &srv) < 0 || pipe2(p, O_CLOEXEC) < 0) {
			bad++;
			break;
		}
		if (!late)
			h = fwd_splice(p[0], cli, VSOCKFWD_F_SHUT_WR | VSOCKFWD_F_CLOSE_OUT);
		ret = producer_start(&prod, p[1], len, i);
		close(p[1]);
		if (ret) {
			bad++;
			break;
		}
		if (late) {
			waitpid(prod.pid, NULL, 0);
			prod.pid = 0;
			h = fwd_splice(p[0], cli, VSOCKFWD_F_SHUT_WR | VSOCKFWD_F_CLOSE_OUT);
		}
		close(p[0]);
		close(cli);
		rc = consume(srv, UINT64_MAX, &got, &hash);
		close(srv);
		if (prod.pid) {
			ret = producer_finish(&prod, &want_hash);
		} else {
			if (read(prod.hash_fd, &want_hash, sizeof(want_hash)) != sizeof(want_hash))
				ret = -EIO;
			close(prod.hash_fd);
		}
		rc = rc ? rc : (h < 0 ? h : fwd_result(h, 10000, &res));
		if (h >= 0)
			close(h);
		total += len;
		if (rc || ret || got != len || hash != want_hash || res.bytes != len) {
			lost += len > got ? len - got : 0;
			if (first_bad < 0)
				first_bad = i;
			bad++;
		}
	}
	close(lfd);
	result("exit_race", !bad && i == iterations,
	       "iterations=%d bad=%d first_bad=%d bytes=%" PRIu64 " lost=%" PRIu64,
	       i, bad, first_bad, total, lost);
}

/* Start an endless producer -> pipe -> forwarder -> vsock stream. */
static int endless_stream(unsigned int port, int *h, int *srv,
			  struct producer *prod)
{
	int lfd, cli, p[2], ret;

	lfd = vsock_listen(port);
	if (lfd < 0)
		return lfd;
	ret = vsock_pair(lfd, port, &cli, srv);
	close(lfd);
	if (ret)
		return ret;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	*h = fwd_splice(p[0], cli, VSOCKFWD_F_SHUT_WR | VSOCKFWD_F_CLOSE_OUT);
	close(p[0]);
	close(cli);
	ret = producer_start(prod, p[1], -1, 3);
	close(p[1]);
	if (*h < 0)
		return *h;
	return ret;
}

/* The reader goes away mid-stream: the forwarder ends with an error. */
static void scenario_peer_reset(unsigned int port)
{
	struct vsockfwd_result res = {};
	uint64_t got = 0, hash, dummy;
	struct producer prod;
	int h = -1, srv = -1, ret, rc, status;

	ret = endless_stream(port, &h, &srv, &prod);
	if (ret) {
		result("peer_reset", false, "setup=%d", ret);
		return;
	}
	rc = consume(srv, 4 * MIB, &got, &hash);
	close(srv);
	ret = fwd_result(h, 10000, &res);
	close(h);
	/* With the module's pipe reference gone the producer sees EPIPE. */
	status = producer_finish(&prod, &dummy);
	result("peer_reset", !rc && got == 4 * MIB && !ret && res.error < 0 &&
	       status == 3,
	       "read=%" PRIu64 " handle=%d handle_error=%d handle_bytes=%llu producer=%d",
	       got, ret, res.error, (unsigned long long)res.bytes, status);
}

/*
 * A reader that never reads: the forwarder stops at the socket's credit
 * (256 KiB by default) instead of buffering; nothing grows meanwhile.
 */
static void scenario_bounded(unsigned int port)
{
	long bytes0 = read_counter("bytes"), moved1, moved2;
	struct producer prod;
	uint64_t dummy;
	int h = -1, srv = -1, ret;

	ret = endless_stream(port, &h, &srv, &prod);
	if (ret) {
		result("bounded", false, "setup=%d", ret);
		return;
	}
	usleep(500000);
	moved1 = read_counter("bytes") - bytes0;
	usleep(500000);
	moved2 = read_counter("bytes") - bytes0;
	close(h);
	close(srv);
	ret = producer_finish(&prod, &dummy);
	result("bounded", moved1 > 0 && moved2 == moved1 && moved2 <= 512 * 1024 &&
	       ret == 3,
	       "moved_at_500ms=%ld moved_at_1s=%ld producer=%d", moved1, moved2,
	       ret);
}

/* The producer is killed mid-stream: a normal EOF, everything written arrives. */
static void scenario_producer_killed(unsigned int port)
{
	struct vsockfwd_result res = {};
	uint64_t got = 0, more = 0, hash;
	struct producer prod;
	int h = -1, srv = -1, ret, rc;

	ret = endless_stream(port, &h, &srv, &prod);
	if (ret) {
		result("producer_killed", false, "setup=%d", ret);
		return;
	}
	rc = consume(srv, MIB, &got, &hash);
	kill(prod.pid, SIGKILL);
	waitpid(prod.pid, NULL, 0);
	close(prod.hash_fd);
	rc = rc ? rc : consume(srv, UINT64_MAX, &more, &hash);
	ret = fwd_result(h, 5000, &res);
	close(h);
	close(srv);
	result("producer_killed", !rc && !ret && !res.error &&
	       res.bytes == got + more,
	       "handle=%d handle_error=%d handle_bytes=%llu received=%" PRIu64,
	       ret, res.error, (unsigned long long)res.bytes, got + more);
}

/*
 * The process owning the handle (the agent) is killed: its forwarder is
 * cancelled like on close, the stream ends, nothing stays behind.
 */
static void scenario_agent_killed(unsigned int port)
{
	long active0 = read_counter("active");
	int lfd, cli, srv, p[2], ret, status;
	uint64_t got = 0, hash, dummy;
	struct producer prod;
	pid_t agent;

	lfd = vsock_listen(port);
	if (lfd < 0 || vsock_pair(lfd, port, &cli, &srv) < 0 ||
	    pipe2(p, O_CLOEXEC) < 0) {
		result("agent_killed", false, "setup errno=%d", errno);
		return;
	}
	close(lfd);
	agent = fork();
	if (agent == 0) {
		if (fwd_splice(p[0], cli, VSOCKFWD_F_SHUT_WR) < 0)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[0]);
	close(cli);
	ret = producer_start(&prod, p[1], -1, 5);
	close(p[1]);
	if (agent < 0 || ret) {
		result("agent_killed", false, "agent=%d producer=%d", agent, ret);
		return;
	}
	consume(srv, MIB, &got, &hash);
	kill(agent, SIGKILL);
	waitpid(agent, NULL, 0);
	ret = consume(srv, UINT64_MAX, &got, &hash);
	close(srv);
	status = producer_finish(&prod, &dummy);
	result("agent_killed", (ret == 0 || ret == -ECONNRESET) && status == 3 &&
	       read_counter("active") == active0,
	       "end=%d producer=%d active_delta=%ld", ret, status,
	       read_counter("active") - active0);
}

/* stdin: the pipe's reader exits while the host is idle; the forwarder ends. */
static void scenario_stdin_reader_exit(unsigned int port)
{
	struct vsockfwd_result res = {};
	int lfd, cli, srv, p[2], h, ret;
	double t0;

	lfd = vsock_listen(port);
	if (lfd < 0 || vsock_pair(lfd, port, &cli, &srv) < 0 ||
	    pipe2(p, O_CLOEXEC) < 0) {
		result("stdin_reader_exit", false, "setup errno=%d", errno);
		return;
	}
	close(lfd);
	h = fwd_splice(cli, p[1], VSOCKFWD_F_CLOSE_OUT);
	close(cli);
	close(p[1]);
	write_all(srv, "hello\n", 6);
	usleep(100000);
	t0 = now();
	close(p[0]);
	ret = h < 0 ? h : fwd_result(h, 5000, &res);
	t0 = now() - t0;
	if (h >= 0)
		close(h);
	close(srv);
	result("stdin_reader_exit", !ret && res.error == -EPIPE && res.bytes == 6,
	       "handle=%d handle_error=%d handle_bytes=%llu end_ms=%.1f",
	       ret, res.error, (unsigned long long)res.bytes, t0 * 1000);
}

/* Closing the handle mid-stream cancels: the reader sees the end. */
static void scenario_cancel(unsigned int port)
{
	uint64_t got = 0, hash, dummy;
	struct producer prod;
	int h = -1, srv = -1, ret, rc, status, nb;
	double t0, close_ms, end_ms;
	long active0 = read_counter("active");
	struct vsockfwd_result res;

	ret = endless_stream(port, &h, &srv, &prod);
	if (ret) {
		result("cancel", false, "setup=%d", ret);
		return;
	}
	rc = consume(srv, MIB, &got, &hash);
	/* Still running: a non-blocking read of the handle says so. */
	fcntl(h, F_SETFL, O_NONBLOCK);
	nb = read(h, &res, sizeof(res)) < 0 ? errno : 0;
	t0 = now();
	close(h);
	close_ms = (now() - t0) * 1000;
	/* Drain what was in flight; the stream must then end. */
	ret = consume(srv, UINT64_MAX, &got, &hash);
	end_ms = (now() - t0) * 1000;
	close(srv);
	status = producer_finish(&prod, &dummy);
	result("cancel", !rc && nb == EAGAIN && (ret == 0 || ret == -ECONNRESET) &&
	       close_ms < 1000 && end_ms < 5000 && status == 3 &&
	       read_counter("active") == active0,
	       "nonblock_read_errno=%d close_ms=%.1f end_ms=%.1f end=%d producer=%d",
	       nb, close_ms, end_ms, ret, status);
}

struct conc_stream {
	int wfd, srv, h;
	uint64_t wrote, got, whash, rhash;
	bool eof;
};

/* @n forwarders at once, one event loop feeding and draining them all. */
static void scenario_concurrent(unsigned int port, int n, uint64_t len)
{
	static unsigned char buf[CHUNK];
	struct conc_stream *s = calloc(n, sizeof(*s));
	struct pollfd *pfd = calloc(2 * n, sizeof(*pfd));
	long active0 = read_counter("active"), active_peak;
	int lfd, i, live = n, bad = 0, errors = 0;
	double t0 = now();

	lfd = vsock_listen(port);
	if (!s || !pfd || lfd < 0) {
		result("concurrent", false, "setup");
		return;
	}
	for (i = 0; i < n; i++) {
		int cli, p[2];

		if (vsock_pair(lfd, port, &cli, &s[i].srv) < 0 ||
		    pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			break;
		s[i].h = fwd_splice(p[0], cli, VSOCKFWD_F_SHUT_WR | VSOCKFWD_F_CLOSE_OUT);
		close(p[0]);
		close(cli);
		s[i].wfd = p[1];
		s[i].whash = s[i].rhash = HASH_INIT;
		fcntl(s[i].srv, F_SETFL, O_NONBLOCK);
		if (s[i].h < 0)
			break;
	}
	close(lfd);
	if (i < n) {
		result("concurrent", false, "created=%d errno=%d", i, errno);
		return;
	}
	active_peak = read_counter("active");
	while (live) {
		int k = 0;

		for (i = 0; i < n; i++) {
			if (s[i].wfd >= 0)
				pfd[k++] = (struct pollfd){ .fd = s[i].wfd, .events = POLLOUT };
			if (!s[i].eof)
				pfd[k++] = (struct pollfd){ .fd = s[i].srv, .events = POLLIN };
		}
		if (poll(pfd, k, 10000) <= 0) {
			errors++;
			break;
		}
		for (i = 0; i < n; i++) {
			ssize_t r;

			if (s[i].wfd >= 0) {
				size_t want = len - s[i].wrote < 4096 ? len - s[i].wrote : 4096;

				stream_chunk(buf, i, s[i].wrote, want);
				r = write(s[i].wfd, buf, want);
				if (r > 0) {
					s[i].whash = hash_update(s[i].whash, buf, r);
					s[i].wrote += r;
				}
				if (s[i].wrote == len) {
					close(s[i].wfd);
					s[i].wfd = -1;
				}
			}
			if (s[i].eof)
				continue;
			r = read(s[i].srv, buf, sizeof(buf));
			if (r > 0) {
				s[i].rhash = hash_update(s[i].rhash, buf, r);
				s[i].got += r;
			} else if (r == 0 || errno != EAGAIN) {
				s[i].eof = true;
				live--;
			}
		}
	}
	for (i = 0; i < n; i++) {
		struct vsockfwd_result res = {};

		if (fwd_result(s[i].h, 10000, &res) || res.error ||
		    res.bytes != len || s[i].got != len || s[i].rhash != s[i].whash)
			bad++;
		close(s[i].h);
		close(s[i].srv);
		if (s[i].wfd >= 0)
			close(s[i].wfd);
	}
	free(s);
	free(pfd);
	result("concurrent", !bad && !errors && active_peak - active0 == n &&
	       read_counter("active") == active0,
	       "streams=%d bytes_each=%" PRIu64 " bad=%d poll_timeouts=%d active_peak=%ld secs=%.2f",
	       n, len, bad, errors, active_peak - active0, now() - t0);
}

/* Argument checking and handle properties. */
static void scenario_api(void)
{
	struct vsockfwd_splice args = { .size = sizeof(args) };
	int p[2], q[2], sv[2], h, e_flags, e_pipes, e_size, e_badf, e_shut;
	int e_dgram, e_ext, ok_ext, cloexec = 0;

	if (pipe2(p, O_CLOEXEC) < 0 || pipe2(q, O_CLOEXEC) < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) {
		result("api", false, "setup errno=%d", errno);
		return;
	}
	e_flags = fwd_splice(p[0], q[1], 0x80);
	e_pipes = fwd_splice(p[0], q[1], 0);
	e_badf = fwd_splice(p[0], 9999, 0);
	e_dgram = fwd_splice(p[0], sv[0], 0);
	args.size = 8;
	args.in_fd = p[0];
	e_size = ioctl(dev_fd, VSOCKFWD_SPLICE, &args) < 0 ? -errno : 0;
	close(sv[0]);
	close(sv[1]);
	/* A stream socket as input and a pipe as output is fine. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	e_shut = fwd_splice(sv[0], q[1], VSOCKFWD_F_SHUT_WR);
	/* A newer caller's longer struct: fine while the tail is zero. */
	struct { struct vsockfwd_splice v0; __u64 ext; } v1 = {
		.v0 = { .size = sizeof(v1), .in_fd = sv[0], .out_fd = q[1] },
		.ext = 1,
	};
	e_ext = ioctl(dev_fd, _IOW(VSOCKFWD_IOC_MAGIC, 1, v1), &v1) < 0 ? -errno : 0;
	v1.ext = 0;
	h = ioctl(dev_fd, _IOW(VSOCKFWD_IOC_MAGIC, 1, v1), &v1);
	if (h >= 0)
		close(h);
	ok_ext = h >= 0;
	h = fwd_splice(sv[0], q[1], 0);
	if (h >= 0)
		cloexec = fcntl(h, F_GETFD) & FD_CLOEXEC;
	if (h >= 0)
		close(h);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	result("api", e_flags == -EINVAL && e_pipes == -EINVAL &&
	       e_badf == -EBADF && e_dgram == -EINVAL && e_size == -EINVAL &&
	       e_shut == -EINVAL && h >= 0 && cloexec && e_ext == -E2BIG && ok_ext,
	       "flags=%d pipes=%d badf=%d dgram=%d size=%d shut_on_pipe=%d unix_stream=%d cloexec=%d ext_nonzero=%d ext_zero_ok=%d",
	       e_flags, e_pipes, e_badf, e_dgram, e_size, e_shut, h, cloexec, e_ext, ok_ext);
}

static void scenario_counters(void)
{
	long active = read_counter("active");
	long started = read_counter("started");
	long finished = read_counter("finished");
	long bytes = read_counter("bytes");

	result("counters", active == 0 && started > 0 && started == finished &&
	       bytes > 0,
	       "active=%ld started=%ld finished=%ld bytes=%ld",
	       active, started, finished, bytes);
}

#define KMEMLEAK "/sys/kernel/debug/kmemleak"

static int kmemleak_command(const char *cmd)
{
	int fd = open(KMEMLEAK, O_WRONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = write_all(fd, cmd, strlen(cmd));
	close(fd);
	return ret;
}

/*
 * With a kmemleak kernel: objects allocated by the module and no longer
 * referenced.  Run while the module is loaded, so backtraces name it.
 */
static void scenario_kmemleak(void)
{
	int leaks = 0, vsockfwd = 0;
	char line[512];
	bool in_vsockfwd_report = false;
	FILE *f;

	if (kmemleak_command("scan") < 0) {
		printf("RESULT kmemleak skip no-kmemleak\n");
		return;
	}
	/* kmemleak ignores objects younger than 5 s. */
	sleep(6);
	kmemleak_command("scan");
	f = fopen(KMEMLEAK, "re");
	if (!f) {
		result("kmemleak", false, "open errno=%d", errno);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "unreferenced object")) {
			leaks++;
			in_vsockfwd_report = false;
		}
		if (strstr(line, "vsockfwd") && !in_vsockfwd_report) {
			vsockfwd++;
			in_vsockfwd_report = true;
		}
	}
	fclose(f);
	result("kmemleak", !vsockfwd, "unreferenced=%d vsockfwd=%d", leaks,
	       vsockfwd);
}

static int open_dev(void)
{
	dev_fd = open("/dev/vsockfwd", O_RDWR | O_CLOEXEC);
	return dev_fd < 0 ? -errno : 0;
}

/* rmmod is refused while a forwarder runs and succeeds once it is closed. */
static void scenario_rmmod(unsigned int port)
{
	uint64_t got1 = 0, got2 = 0, hash, dummy;
	int h = -1, srv = -1, ret, busy_errno, unload, reload = -1, mfd;
	struct producer prod;

	ret = endless_stream(port, &h, &srv, &prod);
	if (ret) {
		result("rmmod", false, "setup=%d", ret);
		return;
	}
	close(dev_fd);
	dev_fd = -1;
	consume(srv, MIB, &got1, &hash);
	busy_errno = syscall(SYS_delete_module, "vsockfwd", O_NONBLOCK) < 0 ? errno : 0;
	consume(srv, MIB, &got2, &hash);	/* the forwarder kept going */
	close(h);
	close(srv);
	producer_finish(&prod, &dummy);
	unload = syscall(SYS_delete_module, "vsockfwd", O_NONBLOCK) < 0 ? errno : 0;
	mfd = open(MODULE_PATH, O_RDONLY | O_CLOEXEC);
	if (mfd >= 0) {
		reload = syscall(SYS_finit_module, mfd, "", 0) < 0 ? errno : 0;
		close(mfd);
	}
	/* devtmpfs creates the node asynchronously. */
	for (ret = 0; ret < 200 && open_dev() < 0; ret++)
		usleep(10000);
	result("rmmod", busy_errno == EWOULDBLOCK && got2 == MIB && !unload &&
	       !reload && dev_fd >= 0,
	       "busy_errno=%d streamed_while_busy=%" PRIu64 " unload_errno=%d reload_errno=%d",
	       busy_errno, got2, unload, reload);
}

static int run_tests(void)
{
	struct rlimit rl = { 8192, 8192 };

	setrlimit(RLIMIT_NOFILE, &rl);
	kmemleak_command("clear");
	scenario_api();
	scenario_stream("stdout_64m", 5001, true, 64ULL * MIB);
	scenario_stream("stdin_64m", 5002, false, 64ULL * MIB);
	scenario_exit_race(5003, 200);
	scenario_peer_reset(5004);
	scenario_cancel(5005);
	scenario_stdin_reader_exit(5009);
	scenario_producer_killed(5010);
	scenario_bounded(5012);
	scenario_agent_killed(5011);
	scenario_concurrent(5006, 300, 128 * 1024);
	scenario_counters();
	scenario_kmemleak();
	scenario_rmmod(5007);
	scenario_stream("after_reload", 5008, true, 4ULL * MIB);
	printf("DONE failures=%d\n", failures);
	return failures ? 1 : 0;
}

/* ---- benchmark --------------------------------------------------------- */

/* Busy jiffies of the whole guest, from /proc/stat. */
static double guest_cpu_seconds(void)
{
	unsigned long long v[8] = {};
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return 0;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
		   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
		v[0] = 0;
	fclose(f);
	/* user nice system [idle] [iowait] irq softirq steal */
	return (v[0] + v[1] + v[2] + v[5] + v[6]) / (double)sysconf(_SC_CLK_TCK);
}

/* RELAY_NONE: producer and consumer on one pipe, the ceiling of the pair. */
enum relay { RELAY_KMOD, RELAY_RW, RELAY_SPLICE, RELAY_NONE, NR_RELAYS };
static const char *const relay_name[] = {
	"kmod", "user-rw", "user-splice", "pipe-only",
};

static void relay_loop(enum relay how, int in, int out)
{
	static char buf[CHUNK];
	ssize_t n;

	for (;;) {
		if (how == RELAY_SPLICE)
			n = splice(in, NULL, out, NULL, CHUNK, SPLICE_F_MOVE | SPLICE_F_MORE);
		else
			n = read(in, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (how == RELAY_RW && write_all(out, buf, n) < 0)
			break;
	}
	if (how != RELAY_KMOD)
		shutdown(out, SHUT_WR);
}

/*
 * Forward @in to @out through @how: a vsockfwd handle (*h) or a relay child
 * (*relay) that keeps only those two fds.  The caller closes its copies.
 */
static int relay_start(enum relay how, int in, int out, bool to_sock,
		       pid_t *relay, int *h)
{
	*relay = 0;
	*h = -1;
	if (how == RELAY_KMOD) {
		*h = fwd_splice(in, out, (to_sock ? VSOCKFWD_F_SHUT_WR : 0) |
				VSOCKFWD_F_CLOSE_OUT);
		return *h < 0 ? *h : 0;
	}
	*relay = fork();
	if (*relay < 0)
		return -errno;
	if (*relay == 0) {
		child_keep_only(&in, &out);
		relay_loop(how, in, out);
		_exit(0);
	}
	return 0;
}

/* One transfer of @len bytes through @how; returns seconds or < 0. */
static double bench_one(enum relay how, bool to_sock, uint64_t len,
			unsigned int port, double *cpu)
{
	int lfd, cli, srv, p[2], h = -1, ret, in, out, src, dst;
	uint64_t got = 0, hash, dummy;
	struct producer prod;
	pid_t relay = 0;
	double t0, c0;

	lfd = vsock_listen(port);
	if (lfd < 0 || vsock_pair(lfd, port, &cli, &srv) < 0 || pipe2(p, O_CLOEXEC) < 0)
		return -1;
	close(lfd);
	in = to_sock ? p[0] : cli;
	out = to_sock ? cli : p[1];
	src = to_sock ? p[1] : srv;
	dst = to_sock ? srv : p[0];
	if (how == RELAY_NONE) {
		close(cli);
		close(srv);
		src = p[1];
		dst = p[0];
	}
	t0 = now();
	c0 = guest_cpu_seconds();
	if (how != RELAY_NONE && relay_start(how, in, out, to_sock, &relay, &h) < 0)
		return -1;
	if (how != RELAY_NONE) {
		close(in);
		close(out);
	}
	ret = producer_start(&prod, src, len, 1);
	close(src);
	if (!ret)
		consume(dst, UINT64_MAX, &got, &hash);
	close(dst);
	producer_finish(&prod, &dummy);
	if (relay > 0)
		wait_child(relay, 30000);
	if (h >= 0)
		close(h);
	*cpu = guest_cpu_seconds() - c0;
	t0 = now() - t0;
	return got == len ? t0 : -1;
}

static int read_exact(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return n ? -errno : -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * Round trip of a 100-byte message out through a pipe -> vsock path and
 * back through a vsock -> pipe path, both forwarded by @how.
 */
static void bench_latency(enum relay how, unsigned int port, int iterations)
{
	int lfd, c1, s1, c2, s2, a[2], b[2], h1, h2, i, ret = 0;
	double lat[1000], t0;
	char msg[100] = "ping";
	pid_t r1, r2;

	if (iterations > 1000)
		iterations = 1000;
	lfd = vsock_listen(port);
	if (lfd < 0 || vsock_pair(lfd, port, &c1, &s1) < 0 ||
	    vsock_pair(lfd, port, &c2, &s2) < 0 || pipe2(a, O_CLOEXEC) < 0 ||
	    pipe2(b, O_CLOEXEC) < 0)
		return;
	close(lfd);
	if (relay_start(how, a[0], c1, true, &r1, &h1) < 0 ||
	    relay_start(how, c2, b[1], false, &r2, &h2) < 0)
		return;
	close(a[0]);
	close(c1);
	close(c2);
	close(b[1]);
	for (i = 0; i < iterations && !ret; i++) {
		t0 = now();
		ret = write_all(a[1], msg, sizeof(msg)) ?:
		      read_exact(s1, msg, sizeof(msg)) ?:
		      write_all(s2, msg, sizeof(msg)) ?:
		      read_exact(b[0], msg, sizeof(msg));
		lat[i] = (now() - t0) * 1e6;
	}
	close(a[1]);
	close(s2);
	close(s1);
	close(b[0]);
	if (r1 > 0)
		wait_child(r1, 10000);
	if (r2 > 0)
		wait_child(r2, 10000);
	if (h1 >= 0)
		close(h1);
	if (h2 >= 0)
		close(h2);
	if (ret || !i)
		return;
	qsort(lat, i, sizeof(lat[0]), cmp_double);
	printf("LATENCY method=%s iterations=%d p50_us=%.0f p99_us=%.0f\n",
	       relay_name[how], i, lat[i / 2], lat[i * 99 / 100]);
}

static int run_bench(uint64_t mib, int rounds)
{
	static const bool dirs[] = { true, false };
	unsigned int port = 6000;
	int r, d, m;

	verify = false;
	for (r = 0; r < rounds; r++) {
		for (d = 0; d < 2; d++) {
			for (m = 0; m < NR_RELAYS; m++) {
				double cpu = 0, secs;
				long runs;

				/* vsock has no splice_read; pipe-only has no direction */
				if (!dirs[d] && (m == RELAY_SPLICE || m == RELAY_NONE))
					continue;
				runs = read_counter("runs");
				secs = bench_one(m, dirs[d], mib * MIB, port++, &cpu);
				runs = read_counter("runs") - runs;
				printf("BENCH round=%d dir=%s method=%s mib=%" PRIu64
				       " write=%zu secs=%.3f mbps=%.1f cpu_s_per_gib=%.2f"
				       " runs_per_mib=%.1f\n",
				       r, dirs[d] ? "pipe-to-vsock" : "vsock-to-pipe",
				       relay_name[m], mib, write_size, secs,
				       secs > 0 ? mib * MIB / secs / 1e6 : 0,
				       secs > 0 ? cpu * 1024 / mib : 0,
				       (double)runs / mib);
				fflush(stdout);
			}
		}
		bench_latency(RELAY_KMOD, port++, 300);
		bench_latency(RELAY_RW, port++, 300);
	}
	printf("DONE failures=0\n");
	return 0;
}

int main(int argc, char **argv)
{
	pattern_init();
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (open_dev() < 0) {
		printf("RESULT open_dev fail errno=%d\nDONE failures=1\n", errno);
		return 1;
	}
	if (argc > 4)
		write_size = strtoul(argv[4], NULL, 0);
	if (!write_size || write_size > CHUNK)
		write_size = CHUNK;
	if (argc >= 2 && !strcmp(argv[1], "bench"))
		return run_bench(argc > 2 ? strtoull(argv[2], NULL, 0) : 256,
				 argc > 3 ? atoi(argv[3]) : 3);
	return run_tests();
}
