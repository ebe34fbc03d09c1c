/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef HUSK_TOOL_H
#define HUSK_TOOL_H

struct husk_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

#include <limits.h>
#include <stddef.h>

struct husk_error;

struct tool_guest_image {
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
};

/*
 * The guest image to boot.  kernel is a file when it holds a '/', else the
 * name of an image in the image directory (build/guest next to a build
 * tree's husk, else the installed one): "minimal" (the default, also for
 * NULL) or "debian" (`make image KERNEL=debian`).  initrd is a file; NULL
 * means the named image's initramfs (the default image's for a kernel file).
 * 0 when both are regular files; otherwise err names what is missing.
 */
int tool_guest_image(const char *kernel, const char *initrd, struct tool_guest_image *img,
		     struct husk_error *err);

int cmd_run(int argc, char **argv);
int cmd_vm_run(int argc, char **argv);
int cmd_vm_argv(int argc, char **argv);
int cmd_vm_reap(int argc, char **argv);

#endif
