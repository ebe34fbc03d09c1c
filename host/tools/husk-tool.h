/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef HUSK_TOOL_H
#define HUSK_TOOL_H

struct husk_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

#include <stddef.h>

/*
 * The guest image file `name` (vmlinux, initramfs.cpio.gz): `given` when set,
 * else build/guest next to a build tree's husk, else the installed image
 * directory.  Fills out with the path tried; 0 when it is a regular file.
 */
int tool_guest_file(const char *given, const char *name, char *out, size_t size);

int cmd_run(int argc, char **argv);
int cmd_vm_run(int argc, char **argv);
int cmd_vm_argv(int argc, char **argv);
int cmd_vm_reap(int argc, char **argv);

#endif
