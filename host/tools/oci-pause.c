// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk pause ID / husk resume ID: the guest freezes (thaws) the container's
 * cgroup; the state records "paused" while it is frozen.
 */
#include <errno.h>
#include <stdio.h>

#include "husk-common/cleanup.h"
#include "oci.h"

static int pause_or_resume(const char *id, bool pause)
{
	struct husk_error err = { 0 };
	_cleanup_close_ int dir_fd = -1;
	struct oci_state st;
	char reply[256];
	int r;

	r = oci_state_open(oci_globals.root, id, &dir_fd, &err);
	if (r == 0)
		r = oci_state_read(dir_fd, &st, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		return r;
	}
	/* runc's errors; a created container has no running init to freeze yet. */
	if (oci_state_status(&st) != (pause ? OCI_RUNNING : OCI_PAUSED)) {
		oci_error(pause ? "container not running" : "container not paused");
		r = -EINVAL;
		goto out;
	}
	r = oci_ctl_call(id, pause ? "pause" : "resume", reply, sizeof(reply));
	if (r < 0)
		goto out;
	st.status = pause ? OCI_PAUSED : OCI_RUNNING;
	r = oci_state_write(dir_fd, &st, &err);
	if (r < 0)
		oci_error("%s", err.msg);
out:
	oci_state_release(&st);
	return r;
}

static int pause_command(int argc, char **argv, bool pause)
{
	if (argc != 2 || argv[1][0] == '-') {
		oci_error("usage: husk %s ID", pause ? "pause" : "resume");
		return 1;
	}
	return pause_or_resume(argv[1], pause) < 0 ? 1 : 0;
}

int cmd_oci_pause(int argc, char **argv)
{
	return pause_command(argc, argv, true);
}

int cmd_oci_resume(int argc, char **argv)
{
	return pause_command(argc, argv, false);
}
