// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk: the command line, a thin layer over libhusk. */
#include <stdio.h>
#include <string.h>

#include "husk-tool.h"

static const struct husk_command commands[] = {
	{ "run", cmd_run, "run a container in a new micro-VM" },
	{ "vm-run", cmd_vm_run, "boot a VM and supervise it (diagnostics)" },
	{ "vm-argv", cmd_vm_argv, "print the QEMU command line vm-run would use" },
	{ "vm-reap", cmd_vm_reap, "clean up VMs whose owner died" },
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
