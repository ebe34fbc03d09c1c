// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk delete [--force] ID: stop the monitor (and with it the VM), reap a
 * VM whose monitor crashed, run the poststop hooks, remove the state.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "oci-hooks.h"
#include "oci.h"

#define MONITOR_EXIT_TIMEOUT_MS 30000

/* Wait for the monitor to exit (it is not our child: poll its pidfd). */
static void wait_monitor_gone(const char *id, pid_t pid)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	if (pidfd < 0)
		return;
	if (poll(&p, 1, MONITOR_EXIT_TIMEOUT_MS) == 0) {
		oci_warn("container %s: monitor %d did not exit: killing it", id, (int)pid);
		kill(pid, SIGKILL);
		(void)poll(&p, 1, MONITOR_EXIT_TIMEOUT_MS);
	}
}

static void run_poststop(const struct oci_state *st)
{
	struct oci_state scratch = { 0 };
	struct json_doc *config = NULL;
	struct husk_error err = { 0 };
	_cleanup_free_ char *state = oci_state_format(st, OCI_STOPPED);
	int r;

	r = oci_config_load(st->bundle, &config, &scratch, &err);
	oci_state_release(&scratch);
	if (r == 0 && state)
		r = oci_hooks_run(config, "poststop", state, &err);
	oci_config_free(config);
	/* As runc: a failing poststop hook is reported, the delete goes on. */
	if (r < 0)
		oci_warn("%s", err.msg);
}

int oci_delete(const char *id, bool force)
{
	struct husk_error err = { 0 };
	_cleanup_close_ int dir_fd = -1;
	struct oci_state st;
	enum oci_status status;
	const char *quiet_log;
	char reply[256];
	int monitor = 0;
	int r;

	r = oci_state_open(oci_globals.root, id, &dir_fd, &err);
	if (r == 0)
		r = oci_state_read(dir_fd, &st, &err);
	if (r < 0) {
		/* runc: deleting what is not there is fine when forced. */
		if (r == -ENOENT && force)
			return 0;
		oci_error("%s", err.msg);
		return r;
	}
	status = oci_state_status(&st);
	if ((status == OCI_RUNNING || status == OCI_PAUSED) && !force) {
		oci_error("cannot delete container %s that is not stopped: %s", id,
			  oci_status_name(status));
		r = -EBUSY;
		goto out;
	}
	/*
	 * Even a stopped container may have a monitor: one whose create was
	 * killed while it booted the VM.  Asking costs a failed connect.
	 */
	oci_globals.no_stderr = true;
	quiet_log = oci_globals.log_path;
	oci_globals.log_path = NULL;
	r = oci_ctl_call(id, "delete", reply, sizeof(reply));
	oci_globals.log_path = quiet_log;
	oci_globals.no_stderr = false;
	/* The monitor answers "ok PID" and then takes its VM down. */
	if (r == 0 && sscanf(reply, "ok %d", &monitor) == 1 && monitor > 0)
		wait_monitor_gone(id, monitor);
	/* A monitor that crashed left its VM behind: its lock is free now. */
	(void)husk_state_reap(NULL, NULL);
	run_poststop(&st);
	/* A pod sandbox whose monitor was killed may have left members' bind mounts. */
	oci_pod_share_cleanup(oci_globals.root, id);
	r = oci_state_remove(oci_globals.root, id, dir_fd, &err);
	if (r < 0)
		oci_error("%s", err.msg);
out:
	oci_state_release(&st);
	return r;
}

int cmd_oci_delete(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ 0 }
	};
	bool force = false;
	int c;

	optind = 1;
	while ((c = getopt_long_only(argc, argv, "f", longopts, NULL)) != -1) {
		if (c != 'f') {
			oci_error("usage: husk delete [--force] ID");
			return 1;
		}
		force = true;
	}
	if (optind != argc - 1) {
		oci_error("usage: husk delete [--force] ID");
		return 1;
	}
	return oci_delete(argv[optind], force) < 0 ? 1 : 0;
}
