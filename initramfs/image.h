/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The in-memory initramfs: a set of entries written out as a newc cpio
 * (the format of the kernel's Documentation/driver-api/early-userspace/
 * buffer-format.rst).  Output is reproducible: entries sorted by name,
 * inode numbers assigned in that order, one caller-chosen mtime.
 */
#ifndef HUSK_INITRAMFS_IMAGE_H
#define HUSK_INITRAMFS_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "husk-common/error.h"
#include "list.h"

struct image_entry {
	char *name;		/* archive name, see list_normalise_name() */
	mode_t mode;
	uint32_t uid, gid;
	uint32_t rdev_major, rdev_minor;
	char *src_path;		/* regular file read at write time, or NULL */
	char *data;		/* contents (symlink target, generated file) */
	uint64_t size;
	unsigned int line;	/* list line, 0 when not from the list */
	char *origin;		/* what added it, for messages */
	size_t link_group;	/* hard links share a group; 0 = none */
	bool implicit;		/* parent directory nobody listed */
	/* assigned by image_finalise() */
	uint32_t ino;
	uint32_t nlink;
	bool carries_data;
};

struct image {
	struct image_entry *v;
	size_t n, cap;
	size_t next_link_group;
	bool finalised;
};

void image_done(struct image *img);

/*
 * Add a parsed list line (a file line with hard links gives several
 * entries).  A file's source must be a readable regular file now.
 */
int image_add_list_entry(struct image *img, const struct list_entry *e,
			 const char *list_name, struct husk_error *err);

/* Add a regular file with the given contents (takes ownership of data). */
int image_add_data(struct image *img, const char *name, mode_t perm,
		   char *data, size_t size, const char *origin,
		   struct husk_error *err);

/*
 * Add missing parent directories (0755 root:root), sort, refuse duplicate
 * names and parents that are not directories, assign inodes.
 */
int image_finalise(struct image *img, struct husk_error *err);

/* Write the newc archive with every mtime set to mtime. */
int image_write_cpio(struct image *img, int fd, uint32_t mtime,
		     struct husk_error *err);

#endif
