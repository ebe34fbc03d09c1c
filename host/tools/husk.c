// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk: the command line, a thin layer over libhusk. */
#include <stdio.h>
#include <string.h>

#include "husk-tool.h"
#include "oci.h"

static const struct husk_command commands[] = {
	{ "run", cmd_run, "run a container in a new micro-VM" },
	{ "vm-run", cmd_vm_run, "boot a VM and supervise it (diagnostics)" },
	{ "vm-argv", cmd_vm_argv, "print the QEMU command line vm-run would use" },
	{ "vm-reap", cmd_vm_reap, "clean up VMs whose owner died" },
	/* runc-compatible (docs/oci-runtime.md); `husk --root R run` is runc's run. */
	{ "create", cmd_oci_create, "create a container (runc)" },
	{ "start", cmd_oci_start, "start a created container (runc)" },
	{ "state", cmd_oci_state, "print a container's state JSON (runc)" },
	{ "kill", cmd_oci_kill, "signal a container's init (runc)" },
	{ "delete", cmd_oci_delete, "delete a container and its VM (runc)" },
	{ "exec", cmd_oci_exec, "run a process in a running container (runc)" },
	{ "list", cmd_oci_list, "list containers (runc)" },
	{ "ps", cmd_oci_ps, "the host processes of a container (runc)" },
	{ "spec", cmd_oci_spec, "write a default config.json (runc)" },
	{ "features", cmd_oci_features, "print supported features as JSON (runc)" },
	{ "pause", cmd_oci_pause, "freeze every process of a container (runc)" },
	{ "resume", cmd_oci_resume, "thaw a paused container (runc)" },
	{ "update", cmd_oci_update, "change a container's cgroup limits (runc)" },
	{ "events", cmd_oci_events, "print a container's stats as JSON events (runc)" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: husk COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\n'husk COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	int globals = oci_parse_globals(argc, argv);

	if (globals < 0)
		return 1;
	if (globals > 0) {
		/* runc's global flags came first: drop them, runc's run is meant. */
		argv[globals] = argv[0];
		argv += globals;
		argc -= globals;
		if (argc >= 2 && !strcmp(argv[1], "run"))
			return cmd_oci_run(argc - 1, argv + 1);
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("husk %s\n", HUSK_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "husk: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
