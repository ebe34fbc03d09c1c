// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk list [--format table|json] [--quiet]: the containers under --root. */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci.h"

static void owner_name(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "#%u", (unsigned int)uid);
}

static void print_entry(const struct oci_state *st, bool json, bool quiet, bool first)
{
	enum oci_status status = oci_state_status(st);
	int pid = status == OCI_STOPPED ? 0 : st->pid;
	char owner[64];

	owner_name(st->owner, owner, sizeof(owner));
	if (quiet) {
		printf("%s\n", st->id);
	} else if (!json) {
		printf("%-12s %-10d %-10s %-40s %-32s %s\n", st->id, pid,
		       oci_status_name(status), st->bundle, st->created, owner);
	} else {
		printf("%s{\"ociVersion\":\"%s\",\"id\":", first ? "" : ",", OCI_VERSION);
		oci_json_put_string(stdout, st->id);
		printf(",\"pid\":%d,\"status\":\"%s\",\"bundle\":", pid, oci_status_name(status));
		oci_json_put_string(stdout, st->bundle);
		fputs(",\"rootfs\":", stdout);
		oci_json_put_string(stdout, st->rootfs);
		fputs(",\"created\":", stdout);
		oci_json_put_string(stdout, st->created);
		fputs(",\"owner\":", stdout);
		oci_json_put_string(stdout, owner);
		fputc('}', stdout);
	}
}

int cmd_oci_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ 0 }
	};
	struct husk_error err = { 0 };
	bool json = false, quiet = false, first = true;
	char **ids = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long_only(argc, argv, "f:q", longopts, NULL)) != -1) {
		if (c == 'q')
			quiet = true;
		else if (c == 'f' && (!strcmp(optarg, "json") || !strcmp(optarg, "table")))
			json = !strcmp(optarg, "json");
		else {
			oci_error("usage: husk list [--format table|json] [--quiet]");
			return 1;
		}
	}
	if (oci_state_list(oci_globals.root, &ids, &err) < 0) {
		oci_error("%s", err.msg);
		return 1;
	}
	if (json)
		fputc('[', stdout);
	else if (!quiet)
		printf("%-12s %-10s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE",
		       "CREATED", "OWNER");
	for (size_t i = 0; ids[i]; i++) {
		struct oci_state st;
		int dir_fd;

		/* A container deleted (or half-created) meanwhile is skipped. */
		if (oci_state_peek(oci_globals.root, ids[i], &dir_fd, NULL) < 0)
			continue;
		if (oci_state_read(dir_fd, &st, NULL) == 0) {
			print_entry(&st, json, quiet, first);
			first = false;
			oci_state_release(&st);
		}
		close(dir_fd);
	}
	if (json)
		fputs("]\n", stdout);
	for (size_t i = 0; ids[i]; i++)
		free(ids[i]);
	free(ids);
	return 0;
}
