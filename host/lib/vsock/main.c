// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk-vsockd: the vhost-user-vsock backend as its own process, so that
 * parsing a hostile guest's rings never happens inside the library
 * caller, and the VM can outlive the command that started it.
 *
 *   husk-vsockd --vhost-user PATH --uds PATH --guest-cid N [--ready-fd FD] [--debug]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vsockd.h"

struct options {
	const char *vhost_user;
	const char *uds;
	uint64_t cid;
	int ready_fd;
	bool debug;
};

static void log_line(void *opaque, enum vsockd_log_level level, const char *msg)
{
	const struct options *o = opaque;

	if (level == VSOCKD_LOG_DEBUG && !o->debug)
		return;
	fprintf(stderr, "husk-vsockd: %s\n", msg);
}

static void usage(FILE *f)
{
	fputs("usage: husk-vsockd --vhost-user PATH --uds PATH --guest-cid N "
	      "[--ready-fd FD] [--debug]\n", f);
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || end == s || *end || *s == '-' ? -EINVAL : 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "vhost-user", required_argument, NULL, 'v' },
		{ "uds", required_argument, NULL, 'u' },
		{ "guest-cid", required_argument, NULL, 'c' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	uint64_t v;
	int opt;

	*o = (struct options){ .ready_fd = -1 };
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			o->vhost_user = optarg;
			break;
		case 'u':
			o->uds = optarg;
			break;
		case 'c':
			if (parse_u64(optarg, &o->cid) < 0) {
				fprintf(stderr, "husk-vsockd: bad --guest-cid %s\n", optarg);
				return -EINVAL;
			}
			break;
		case 'r':
			if (parse_u64(optarg, &v) < 0 || v > INT32_MAX) {
				fprintf(stderr, "husk-vsockd: bad --ready-fd %s\n", optarg);
				return -EINVAL;
			}
			o->ready_fd = (int)v;
			break;
		case 'd':
			o->debug = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc || !o->vhost_user || !o->uds || !o->cid) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static int signal_fd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void announce_ready(int fd)
{
	static const char ready[] = "READY\n";

	if (fd < 0)
		return;
	if (write(fd, ready, sizeof(ready) - 1) < 0)
		fprintf(stderr, "husk-vsockd: --ready-fd %d: %s\n", fd, strerror(errno));
	close(fd);
}

static int serve(struct vsockd *d, int sigfd)
{
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = vsockd_fd(d), .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
		};
		int r;

		if (poll(p, 2, vsockd_timeout_ms(d)) < 0 && errno != EINTR) {
			fprintf(stderr, "husk-vsockd: poll: %s\n", strerror(errno));
			return 1;
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si))
				fprintf(stderr, "husk-vsockd: %s, exiting\n",
					strsignal(si.ssi_signo));
			return 0;
		}
		r = vsockd_dispatch(d, 0);
		if (r == -EPIPE)
			return 0;
		if (r < 0) {
			fprintf(stderr, "husk-vsockd: %s\n", strerror(-r));
			return 1;
		}
	}
}

int main(int argc, char **argv)
{
	struct husk_error err = {};
	struct options o;
	struct vsockd *d;
	_cleanup_close_ int sigfd = -1;
	int status;

	if (parse_options(argc, argv, &o) < 0)
		return 2;
	sigfd = signal_fd();
	if (sigfd < 0) {
		fprintf(stderr, "husk-vsockd: signalfd: %s\n", strerror(-sigfd));
		return 1;
	}
	struct vsockd_config cfg = {
		.vhost_user_path = o.vhost_user,
		.uds_path = o.uds,
		.guest_cid = o.cid,
		.log = log_line,
		.log_opaque = &o,
	};
	if (vsockd_new(&cfg, &d, &err) < 0) {
		fprintf(stderr, "husk-vsockd: %s\n", err.msg);
		return 1;
	}
	announce_ready(o.ready_fd);
	status = serve(d, sigfd);
	vsockd_free(d);
	return status;
}
