// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk-test-init: a tiny static PID 1 for libhusk's e2e tests and benches.
 *
 * Mounts proc, sys and devtmpfs, loads the modules listed in
 * /lib/modules/husk.list (one path per line, relative to /lib/modules or
 * absolute) with finit_module(2), prints HUSK-TEST-READY on the console
 * once its vsock services listen, and serves (one forked child per
 * connection):
 *   5000 echo     bytes back until EOF
 *   5001 sink     read to EOF, answer "<sha256> <bytes>\n"
 *   5002 source   read "<bytes>\n", send that many bytes, then "<sha256>\n"
 *   5003 control  lines: "ping" -> "pong"; "poweroff"; "connect PORT BYTES":
 *                 connect to host port PORT, send BYTES + "<sha256>\n", then
 *                 answer "ok <sha256>" or "err <errno>"; "mount9p TAG" mounts
 *                 a virtio-9p share at /mnt/TAG; "read PATH" answers
 *                 "ok <first line>"; "write PATH TEXT" creates PATH
 * Kernel command line: husk.test=poweroff powers off at once (a bench
 * baseline); husk.test=ready-poweroff powers off after the READY marker;
 * husk.test=panic exits PID 1, so the kernel panics before READY.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sha256.h"

#define PORT_ECHO 5000
#define PORT_SINK 5001
#define PORT_SOURCE 5002
#define PORT_CONTROL 5003
#define CHUNK (64 * 1024)
#define MAX_TRANSFER (1ULL << 34)

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		(void)!write(1, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static void mount_early(void)
{
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		say("husk-test-init: mount /proc: %s\n", strerror(errno));
	if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		say("husk-test-init: mount /sys: %s\n", strerror(errno));
	/* An initramfs root gets no automatic devtmpfs. */
	if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, NULL) < 0 && errno != EBUSY)
		say("husk-test-init: mount /dev: %s\n", strerror(errno));
	if (fcntl(1, F_GETFD) < 0) {
		int fd = open("/dev/console", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
	}
}

static const char *test_mode(void)
{
	static char cmdline[4096];
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n;
	char *p;

	if (fd < 0)
		return "serve";
	n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (n <= 0)
		return "serve";
	cmdline[n] = '\0';
	p = strstr(cmdline, "husk.test=");
	if (!p)
		return "serve";
	p += strlen("husk.test=");
	p[strcspn(p, " \n")] = '\0';
	return p;
}

static void load_modules(void)
{
	FILE *f = fopen("/lib/modules/husk.list", "re");
	char line[512];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char path[600];
		int fd;

		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		snprintf(path, sizeof(path), "%s%s", line[0] == '/' ? "" : "/lib/modules/", line);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			say("husk-test-init: module %s: %s\n", path, strerror(errno));
			continue;
		}
		if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
			say("husk-test-init: finit_module %s: %s\n", path, strerror(errno));
		close(fd);
	}
	fclose(f);
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/* One line, byte by byte: the stream may go on after it. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = '\0';
	return (int)len;
}

static void serve_echo(int fd)
{
	static char buf[CHUNK];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write_all(fd, buf, n) < 0)
			return;
}

static void serve_sink(int fd)
{
	static char buf[CHUNK];
	struct sha256 s;
	unsigned long long total = 0;
	char hex[65];
	ssize_t n;

	sha256_init(&s);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		sha256_update(&s, buf, n);
		total += n;
	}
	sha256_hex(&s, hex);
	dprintf(fd, "%s %llu\n", hex, total);
}

/* Send n pseudo-random bytes then "<sha256>\n"; the digest goes to out. */
static int send_generated(int fd, unsigned long long n, char out[65])
{
	static uint64_t buf[CHUNK / 8];
	uint64_t x = 0x9e3779b97f4a7c15ULL ^ n ^ (uint64_t)getpid() << 32;
	struct sha256 s;

	sha256_init(&s);
	while (n) {
		size_t take = n < sizeof(buf) ? n : sizeof(buf);

		for (size_t i = 0; i < sizeof(buf) / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		sha256_update(&s, buf, take);
		if (write_all(fd, buf, take) < 0)
			return -1;
		n -= take;
	}
	sha256_hex(&s, out);
	return dprintf(fd, "%s\n", out) < 0 ? -1 : 0;
}

static void serve_source(int fd)
{
	char line[64], hex[65];
	unsigned long long n;

	if (read_line(fd, line, sizeof(line)) < 0)
		return;
	n = strtoull(line, NULL, 10);
	if (n > MAX_TRANSFER)
		return;
	send_generated(fd, n, hex);
}

static void control_connect(int fd, unsigned int port, unsigned long long n)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST,
				  .svm_port = port };
	int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char hex[65];

	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		dprintf(fd, "err %d\n", errno);
		if (s >= 0)
			close(s);
		return;
	}
	if (send_generated(s, n, hex) < 0) {
		dprintf(fd, "err %d\n", errno);
		close(s);
		return;
	}
	close(s);
	dprintf(fd, "ok %s\n", hex);
}

static void control_mount9p(int fd, const char *tag)
{
	char dir[96];

	snprintf(dir, sizeof(dir), "/mnt/%s", tag);
	mkdir("/mnt", 0755);
	mkdir(dir, 0755);
	if (mount(tag, dir, "9p", 0, "trans=virtio,version=9p2000.L") < 0)
		dprintf(fd, "err %d\n", errno);
	else
		dprintf(fd, "ok\n");
}

static void control_read(int fd, const char *path)
{
	char buf[256];
	int f = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (f < 0) {
		dprintf(fd, "err %d\n", errno);
		return;
	}
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n < 0) {
		dprintf(fd, "err %d\n", errno);
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	dprintf(fd, "ok %s\n", buf);
}

static void control_write(int fd, const char *path, const char *text)
{
	int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (f < 0 || write_all(f, text, strlen(text)) < 0) {
		dprintf(fd, "err %d\n", errno);
		if (f >= 0)
			close(f);
		return;
	}
	close(f);
	dprintf(fd, "ok\n");
}

static void serve_control(int fd)
{
	char line[128];

	while (read_line(fd, line, sizeof(line)) >= 0) {
		unsigned int port;
		unsigned long long n;
		char arg[64], text[64];

		if (!strcmp(line, "ping")) {
			dprintf(fd, "pong\n");
		} else if (!strcmp(line, "poweroff")) {
			dprintf(fd, "ok\n");
			kill(1, SIGUSR2);
			return;
		} else if (sscanf(line, "connect %u %llu", &port, &n) == 2 && n <= MAX_TRANSFER) {
			control_connect(fd, port, n);
		} else if (sscanf(line, "mount9p %63s", arg) == 1) {
			control_mount9p(fd, arg);
		} else if (sscanf(line, "read %63s", arg) == 1) {
			control_read(fd, arg);
		} else if (sscanf(line, "write %63s %63s", arg, text) == 2) {
			control_write(fd, arg, text);
		} else {
			dprintf(fd, "err %d\n", EINVAL);
		}
	}
}

static int listen_vsock(unsigned int port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		say("husk-test-init: vsock port %u: %s\n", port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void serve(void)
{
	static const unsigned int ports[] = { PORT_ECHO, PORT_SINK, PORT_SOURCE, PORT_CONTROL };
	static void (*const handlers[])(int) = { serve_echo, serve_sink, serve_source,
						 serve_control };
	struct pollfd pfd[4];
	sigset_t usr2;

	/* Children are reaped by the kernel; SIGUSR2 from a child powers off. */
	signal(SIGCHLD, SIG_IGN);
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);
	for (int i = 0; i < 4; i++) {
		pfd[i].fd = listen_vsock(ports[i]);
		pfd[i].events = POLLIN;
		if (pfd[i].fd < 0) {
			say("HUSK-TEST-FAILED\n");
			power_off();
		}
	}
	say("HUSK-TEST-READY\n");
	for (;;) {
		struct timespec zero = { 0 };

		if (sigtimedwait(&usr2, NULL, &zero) == SIGUSR2)
			power_off();
		if (poll(pfd, 4, 100) <= 0)
			continue;
		for (int i = 0; i < 4; i++) {
			int c;

			if (!(pfd[i].revents & POLLIN))
				continue;
			c = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue;
			if (fork() == 0) {
				signal(SIGCHLD, SIG_DFL);
				handlers[i](c);
				_exit(0);
			}
			close(c);
		}
	}
}

int main(void)
{
	const char *mode;

	mount_early();
	mode = test_mode();
	if (!strcmp(mode, "poweroff"))
		power_off();
	if (!strcmp(mode, "panic"))
		return 1;	/* PID 1 exiting panics the kernel */
	load_modules();
	if (!strcmp(mode, "ready-poweroff")) {
		say("HUSK-TEST-READY\n");
		power_off();
	}
	serve();
	return 0;
}
