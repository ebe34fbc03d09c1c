// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The init monitor's requests on a container's cgroup in the guest, its
 * own or a pod member's: pause and resume (cgroup.freeze), update (new
 * limits) and stats with the count of OOM kills (for husk events).  The
 * monitor owns the sandbox handle, so these go through it like start and
 * kill do.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci.h"

static void reply_ok(int conn)
{
	(void)oci_ctl_send(conn, "ok", 2, NULL, 0);
}

static void reply_refused(int conn, const char *why)
{
	struct husk_error err = { 0 };

	oci_ctl_reply_error(conn, &err, husk_error_set(&err, EBUSY, "%s", why));
}

static void handle_pause(struct husk_container *ctr, bool running, bool *paused,
			 bool pause, int conn)
{
	struct husk_error err = { 0 };
	int r;

	if (pause && (!running || *paused)) {
		reply_refused(conn, "container not running");
		return;
	}
	if (!pause && (!running || !*paused)) {
		reply_refused(conn, "container not paused");
		return;
	}
	r = pause ? husk_container_pause(ctr, &err) : husk_container_resume(ctr, &err);
	if (r < 0) {
		oci_ctl_reply_error(conn, &err, r);
		return;
	}
	*paused = pause;
	reply_ok(conn);
}

/* The JSON follows "update\0" up to len. */
static void handle_update(struct husk_container *ctr, int conn, const char *msg, size_t len)
{
	struct husk_error err = { 0 };
	size_t head = sizeof("update");
	int r;

	r = husk_container_update(ctr, msg + head, len > head ? len - head : 0, &err);
	if (r < 0)
		oci_ctl_reply_error(conn, &err, r);
	else
		reply_ok(conn);
}

/*
 * Count the OOM kills queued since the last request, each for the
 * container it hit: the queue is the VM's, shared by a pod's members.  The
 * watch starts with the first stats request (husk events): kills the agent
 * kept from before then are counted by it.
 */
static void count_ooms(struct monitor *m, struct oci_cgroup_state *cg)
{
	struct husk_sandbox *sb = oci_monitor_sandbox(m);
	struct oci_cgroup_state *hit;
	char id[256];

	if (!cg->oom_watch) {
		if (husk_sandbox_watch_oom(sb, NULL) < 0)
			return;
		cg->oom_watch = true;
	}
	while (husk_sandbox_next_oom(sb, id, sizeof(id), NULL) == 0) {
		hit = oci_monitor_cgroup_of(m, id);
		if (hit)
			hit->ooms++;
	}
}

/* "ok OOMS DATA": the OOM kills so far and the stats event's data object. */
static void handle_stats(struct monitor *m, struct husk_container *ctr,
			 struct oci_cgroup_state *cg, int conn)
{
	struct husk_container_stats st;
	struct husk_error err = { 0 };
	char *text = NULL;
	size_t size;
	FILE *out;
	int r;

	r = husk_container_stats(ctr, &st, &err);
	if (r < 0) {
		oci_ctl_reply_error(conn, &err, r);
		return;
	}
	out = open_memstream(&text, &size);
	if (!out) {
		oci_ctl_reply_error(conn, NULL, -ENOMEM);
		return;
	}
	count_ooms(m, cg);
	fprintf(out, "ok %" PRIu64 " ", cg->ooms);
	oci_stats_json(out, &st);
	if (fclose(out) != 0) {
		free(text);
		oci_ctl_reply_error(conn, NULL, -ENOMEM);
		return;
	}
	(void)oci_ctl_send(conn, text, size, NULL, 0);
	free(text);
}

bool oci_monitor_cgroup_request(struct monitor *m, struct husk_container *ctr,
				bool running, struct oci_cgroup_state *cg, int conn,
				const char *msg, size_t len)
{
	if (!strcmp(msg, "pause") || !strcmp(msg, "resume")) {
		handle_pause(ctr, running, &cg->paused, !strcmp(msg, "pause"), conn);
		return true;
	}
	/* A created container has its cgroup already: runc updates it too. */
	if (!strcmp(msg, "update")) {
		handle_update(ctr, conn, msg, len);
		return true;
	}
	if (!strcmp(msg, "stats")) {
		handle_stats(m, ctr, cg, conn);
		return true;
	}
	return false;
}

void oci_monitor_cgroup_killed(struct husk_container *ctr, struct oci_cgroup_state *cg,
			       int sig)
{
	if (sig == SIGKILL && cg->paused && husk_container_resume(ctr, NULL) == 0)
		cg->paused = false;
}
