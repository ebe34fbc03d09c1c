// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Where the husk tool finds the guest image (kernel + initramfs).
 *
 * Images live in one directory: build/guest next to a build tree's husk,
 * else the installed $(DATADIR)/husk/guest.  The default image ("minimal",
 * husk's own kernel) sits at its top; another kernel's image sits in a
 * subdirectory named after it ("debian": `make image KERNEL=debian`).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/error.h"
#include "husk-tool.h"

#ifndef HUSK_GUEST_DIR
#error "HUSK_GUEST_DIR must be set by the build (host/tools/build.mk)"
#endif

#define DEFAULT_IMAGE "minimal"
#define KERNEL_FILE "vmlinux"
#define INITRD_FILE "initramfs.img"

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* build/guest next to build/bin/husk, when run from a build tree. */
static bool build_tree_guest_dir(char *out, size_t size)
{
	char exe[PATH_MAX], dir[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	struct stat st;

	if (n <= 0)
		return false;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = '\0';
	snprintf(dir, sizeof(dir), "%s/../guest", exe);
	if (size < PATH_MAX || !realpath(dir, out))
		return false;
	return stat(out, &st) == 0 && S_ISDIR(st.st_mode);
}

/* An image name is one path component a make variable can hold. */
static bool valid_image_name(const char *name)
{
	if (!*name || *name == '.' || strlen(name) > 64)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") == strlen(name);
}

/* FILE of the named image in dir; an error names what to build. */
static int image_file(const char *dir, const char *image, const char *file,
		      char *out, size_t size, struct husk_error *err)
{
	bool named = strcmp(image, DEFAULT_IMAGE) != 0;
	int w;

	if (named)
		w = snprintf(out, size, "%s/%s/%s", dir, image, file);
	else
		w = snprintf(out, size, "%s/%s", dir, file);
	if (w < 0 || (size_t)w >= size)
		return husk_error_set(err, ENAMETOOLONG, "guest image directory %s: path too long",
				      dir);
	if (!is_file(out))
		return husk_error_set(err, ENOENT,
				      "guest image '%s' not found: no %s (build it with 'make image%s%s')",
				      image, out, named ? " KERNEL=" : "", named ? image : "");
	return 0;
}

/* A file the caller named: it must exist. */
static int given_file(const char *path, const char *what, char *out, size_t size,
		      struct husk_error *err)
{
	if (snprintf(out, size, "%s", path) >= (int)size)
		return husk_error_set(err, ENAMETOOLONG, "guest %s path too long", what);
	if (!is_file(out))
		return husk_error_set(err, ENOENT, "guest %s %s not found", what, path);
	return 0;
}

int tool_guest_image(const char *kernel, const char *initrd, struct tool_guest_image *img,
		     struct husk_error *err)
{
	bool kernel_file = kernel && strchr(kernel, '/');
	const char *image = DEFAULT_IMAGE;
	char dir[PATH_MAX];
	int r;

	if (kernel && *kernel && !kernel_file) {
		if (!valid_image_name(kernel))
			return husk_error_set(err, EINVAL,
					      "kernel '%s': not a file path (with a '/') nor an image name like 'minimal' or 'debian'",
					      kernel);
		image = kernel;
	}
	if (!build_tree_guest_dir(dir, sizeof(dir)))
		snprintf(dir, sizeof(dir), "%s", HUSK_GUEST_DIR);

	if (kernel_file)
		r = given_file(kernel, "kernel", img->kernel, sizeof(img->kernel), err);
	else
		r = image_file(dir, image, KERNEL_FILE, img->kernel, sizeof(img->kernel), err);
	if (r < 0)
		return r;
	/* A named image brings its own initramfs (its kernel's modules); a
	 * kernel given as a file goes with the default image's. */
	if (initrd && *initrd)
		return given_file(initrd, "initramfs", img->initrd, sizeof(img->initrd), err);
	return image_file(dir, image, INITRD_FILE, img->initrd, sizeof(img->initrd), err);
}
