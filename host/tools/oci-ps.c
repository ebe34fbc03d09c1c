// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk ps [--format table|json] ID: the host processes standing for the
 * container's processes, i.e. the init monitor and the exec monitors (the
 * pids containerd's shim knows); guest pids mean nothing on the host.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "oci.h"

static void print_cmdline(int pid)
{
	char path[64], buf[256];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? 0 : read(fd, buf, sizeof(buf) - 1);
	for (ssize_t i = 0; i < n - 1; i++)
		if (!buf[i])
			buf[i] = ' ';
	buf[n > 0 ? n : 0] = '\0';
	printf("%-10d %s\n", pid, buf);
}

int cmd_oci_ps(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ 0 }
	};
	struct husk_error err = { 0 };
	_cleanup_close_ int dir_fd = -1;
	struct oci_state st;
	char reply[2048], *p, *end;
	bool json = false, first = true;
	int c;

	optind = 1;
	while ((c = getopt_long_only(argc, argv, "f:", longopts, NULL)) != -1) {
		if (c == 'f' && (!strcmp(optarg, "json") || !strcmp(optarg, "table"))) {
			json = !strcmp(optarg, "json");
		} else {
			oci_error("usage: husk ps [--format table|json] ID");
			return 1;
		}
	}
	if (optind != argc - 1) {
		oci_error("usage: husk ps [--format table|json] ID");
		return 1;
	}
	if (oci_state_peek(oci_globals.root, argv[optind], &dir_fd, &err) < 0 ||
	    oci_state_read(dir_fd, &st, &err) < 0) {
		oci_error("%s", err.msg);
		return 1;
	}
	c = oci_state_status(&st);
	oci_state_release(&st);
	dir_fd = safe_close(dir_fd);
	if (c == OCI_STOPPED) {
		oci_error("container not running");
		return 1;
	}
	if (oci_ctl_call(argv[optind], "ps", reply, sizeof(reply)) < 0)
		return 1;
	fputs(json ? "[" : "PID        CMD\n", stdout);
	for (p = reply + 2; *p; p = end) {
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (json)
			printf("%s%ld", first ? "" : ",", pid);
		else
			print_cmdline((int)pid);
		first = false;
	}
	if (json)
		fputs("]\n", stdout);
	return 0;
}
