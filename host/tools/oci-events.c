// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk events [--interval D] [--stats] ID: runc's event lines on stdout,
 * {"type":"stats","id":ID,"data":{...}} every interval (one with --stats)
 * and {"type":"oom","id":ID} for each OOM kill seen meanwhile, until the
 * container stops (its monitor exits).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "oci.h"

#define EVENTS_USAGE "usage: husk events [--interval DURATION] [--stats] ID"
#define DEFAULT_INTERVAL_NS (5 * 1000000000LL)

struct events_opts {
	const char *id;
	int64_t interval_ns;
	bool once;
};

static int parse_events(int argc, char **argv, struct events_opts *o)
{
	static const struct option longopts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "stats", no_argument, NULL, 's' },
		{ 0 }
	};
	int c;

	o->interval_ns = DEFAULT_INTERVAL_NS;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+", longopts, NULL)) != -1) {
		if (c == 's') {
			o->once = true;
		} else if (c == 'i') {
			if (oci_parse_duration(optarg, &o->interval_ns) < 0) {
				oci_error("invalid value \"%s\" for flag -interval", optarg);
				return -EINVAL;
			}
		} else {
			oci_error(EVENTS_USAGE);
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		oci_error(EVENTS_USAGE);
		return -EINVAL;
	}
	if (o->interval_ns <= 0) {
		oci_error("duration interval must be greater than 0");
		return -EINVAL;
	}
	o->id = argv[optind];
	return 0;
}

static void print_event(const char *type, const char *id, const char *data)
{
	printf("{\"type\":\"%s\",\"id\":", type);
	oci_json_put_string(stdout, id);
	if (data)
		printf(",\"data\":%s", data);
	printf("}\n");
}

/*
 * One sample: an "oom" event for each OOM kill since the last one (none
 * on the first: *ooms is then the baseline), then "stats".
 */
static int print_sample(const char *id, bool first, uint64_t *ooms)
{
	char reply[4096];
	unsigned long long count;
	int off = 0, r = oci_ctl_call(id, "stats", reply, sizeof(reply));

	if (r < 0)
		return r;
	/* The monitor answers "ok OOMS DATA". */
	if (sscanf(reply, "ok %llu %n", &count, &off) != 1 || !off) {
		oci_error("container %s: monitor: unexpected stats reply", id);
		return -EPROTO;
	}
	for (; !first && *ooms < count; (*ooms)++)
		print_event("oom", id, NULL);
	*ooms = count;
	print_event("stats", id, reply + off);
	return fflush(stdout) == 0 ? 0 : -EPIPE;
}

/* Whether the monitor exited within timeout_ms. */
static bool monitor_gone(int pidfd, int timeout_ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	return n != 0;
}

int cmd_oci_events(int argc, char **argv)
{
	struct events_opts o = { 0 };
	struct husk_error err = { 0 };
	_cleanup_close_ int dir_fd = -1, pidfd = -1;
	struct oci_state st;
	uint64_t ooms = 0;
	bool first = true;
	int r;

	if (parse_events(argc, argv, &o) < 0)
		return 1;
	r = oci_state_peek(oci_globals.root, o.id, &dir_fd, &err);
	if (r == 0)
		r = oci_state_read(dir_fd, &st, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		return 1;
	}
	if (oci_state_status(&st) == OCI_STOPPED || st.pid <= 0) {
		oci_state_release(&st);
		oci_error("container with id %s is not running", o.id);
		return 1;
	}
	pidfd = (int)syscall(SYS_pidfd_open, st.pid, 0);
	oci_state_release(&st);
	if (pidfd < 0) {
		oci_error("container with id %s is not running", o.id);
		return 1;
	}
	for (;; first = false) {
		r = print_sample(o.id, first, &ooms);
		if (o.once)
			return r < 0 ? 1 : 0;
		/* A failed sample of a container that ended is just the end. */
		if (r < 0 && monitor_gone(pidfd, 0))
			return 0;
		if (r == -EPIPE)
			return 1;
		if (monitor_gone(pidfd, (int)(o.interval_ns / 1000000)))
			return 0;
	}
}
