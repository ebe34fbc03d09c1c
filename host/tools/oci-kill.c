// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk kill [--all] ID [SIGNAL]: the monitor forwards it to the guest. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "husk-common/cleanup.h"
#include "oci.h"

int cmd_oci_kill(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ 0 }
	};
	struct husk_error err = { 0 };
	_cleanup_close_ int dir_fd = -1;
	struct oci_state st;
	char request[64], reply[256];
	bool all = false;
	int c, sig = 15, r;

	optind = 1;
	while ((c = getopt_long_only(argc, argv, "a", longopts, NULL)) != -1) {
		if (c != 'a') {
			oci_error("usage: husk kill [--all] ID [SIGNAL]");
			return 1;
		}
		all = true;
	}
	if (optind >= argc || argc - optind > 2) {
		oci_error("usage: husk kill [--all] ID [SIGNAL]");
		return 1;
	}
	if (argc - optind == 2) {
		sig = oci_parse_signal(argv[optind + 1]);
		if (sig < 0) {
			oci_error("unknown signal \"%s\"", argv[optind + 1]);
			return 1;
		}
	}
	r = oci_state_open(oci_globals.root, argv[optind], &dir_fd, &err);
	if (r == 0)
		r = oci_state_read(dir_fd, &st, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		return 1;
	}
	if (oci_state_status(&st) == OCI_STOPPED) {
		oci_state_release(&st);
		oci_error("container not running");
		return 1;
	}
	oci_state_release(&st);
	snprintf(request, sizeof(request), "kill %d %d", sig, all);
	return oci_ctl_call(argv[optind], request, reply, sizeof(reply)) < 0 ? 1 : 0;
}
