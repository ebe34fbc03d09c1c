// SPDX-License-Identifier: LGPL-2.1-or-later
/* Where the husk tool finds the guest image (kernel + initramfs). */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-tool.h"

#ifndef HUSK_GUEST_DIR
#error "HUSK_GUEST_DIR must be set by the build (host/tools/build.mk)"
#endif

/* build/guest/name next to build/bin/husk, when run from a build tree. */
static bool build_tree_guest_file(const char *name, char *out, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	struct stat st;
	int w;

	if (n <= 0)
		return false;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = '\0';
	w = snprintf(out, size, "%s/../guest/%s", exe, name);
	return w > 0 && (size_t)w < size && stat(out, &st) == 0;
}

int tool_guest_file(const char *given, const char *name, char *out, size_t size)
{
	struct stat st;
	int w;

	if (given && *given)
		w = snprintf(out, size, "%s", given);
	else if (build_tree_guest_file(name, out, size))
		w = 0;
	else
		w = snprintf(out, size, "%s/%s", HUSK_GUEST_DIR, name);
	if (w < 0 || (size_t)w >= size)
		return -ENAMETOOLONG;
	if (stat(out, &st) < 0 || !S_ISREG(st.st_mode))
		return -ENOENT;
	return 0;
}
