// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * runc-style run: create and start; without --detach, wait for the init
 * monitor (our child), delete the container and exit with its status.
 * Reached as `husk --root DIR run ...` (plain `husk run` is husk's own).
 */
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>

#include "oci.h"

static const char run_usage[] =
	"usage: husk --root DIR run [--bundle DIR] [--pid-file FILE] [--console-socket SOCK]"
	" [--detach] ID\n";

int cmd_oci_run(int argc, char **argv)
{
	struct oci_create_opts o = { 0 };
	pid_t monitor;
	int wstatus = 0;

	if (oci_parse_create(argc, argv, &o, run_usage) < 0)
		return 1;
	if (oci_create(&o, &monitor) < 0)
		return 1;
	if (oci_start(o.id) < 0) {
		(void)oci_delete(o.id, true);
		return 1;
	}
	if (o.detach)
		return 0;
	while (waitpid(monitor, &wstatus, 0) < 0)
		if (errno != EINTR) {
			oci_error("wait for container %s: %m", o.id);
			return 1;
		}
	(void)oci_delete(o.id, false);
	return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}
