// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk start: let a created container's init exec, then the poststart hooks. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "oci-hooks.h"
#include "oci.h"

static int run_poststart(const struct oci_state *st)
{
	struct oci_state scratch = { 0 };
	struct json_doc *config = NULL;
	struct husk_error err = { 0 };
	_cleanup_free_ char *state = oci_state_format(st, OCI_RUNNING);
	int r;

	r = oci_config_load(st->bundle, &config, &scratch, &err);
	oci_state_release(&scratch);
	if (r == 0 && state)
		r = oci_hooks_run(config, "poststart", state, &err);
	oci_config_free(config);
	/* runc warns about a failed poststart hook and keeps the container. */
	if (r < 0)
		oci_warn("%s", err.msg);
	return 0;
}

int oci_start(const char *id)
{
	struct husk_error err = { 0 };
	struct oci_state st;
	_cleanup_close_ int dir_fd = -1;
	char reply[256];
	int r;

	r = oci_state_open(oci_globals.root, id, &dir_fd, &err);
	if (r == 0)
		r = oci_state_read(dir_fd, &st, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		return r;
	}
	switch (oci_state_status(&st)) {
	case OCI_CREATED:
		break;
	case OCI_STOPPED:
		oci_error("cannot start a container that has stopped");
		r = -EINVAL;
		goto out;
	default:
		oci_error("cannot start an already running container");
		r = -EINVAL;
		goto out;
	}
	r = oci_ctl_call(id, "start", reply, sizeof(reply));
	if (r < 0)
		goto out;
	st.status = OCI_RUNNING;
	r = oci_state_write(dir_fd, &st, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		goto out;
	}
	(void)flock(dir_fd, LOCK_UN);
	r = run_poststart(&st);
out:
	oci_state_release(&st);
	return r;
}

int cmd_oci_start(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		oci_error("usage: husk start ID");
		return 1;
	}
	return oci_start(argv[1]) < 0 ? 1 : 0;
}
