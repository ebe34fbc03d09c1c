// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk state: the runtime-spec state JSON of a container. */
#include <stdio.h>

#include "husk-common/cleanup.h"
#include "oci.h"

int cmd_oci_state(int argc, char **argv)
{
	struct husk_error err = { 0 };
	_cleanup_close_ int dir_fd = -1;
	struct oci_state st;
	int r;

	if (argc != 2 || argv[1][0] == '-') {
		oci_error("usage: husk state ID");
		return 1;
	}
	r = oci_state_peek(oci_globals.root, argv[1], &dir_fd, &err);
	if (r == 0)
		r = oci_state_read(dir_fd, &st, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		return 1;
	}
	oci_state_print(stdout, &st);
	oci_state_release(&st);
	return 0;
}
