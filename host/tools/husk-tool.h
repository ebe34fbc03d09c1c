/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef HUSK_TOOL_H
#define HUSK_TOOL_H

struct husk_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

int cmd_run(int argc, char **argv);
int cmd_vm_run(int argc, char **argv);
int cmd_vm_argv(int argc, char **argv);
int cmd_vm_reap(int argc, char **argv);

#endif
