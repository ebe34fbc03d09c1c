/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Linux kernel's gen_init_cpio list format (usr/gen_init_cpio.c):
 *
 *   file  <name> <location> <mode> <uid> <gid> [<hard links>...]
 *   dir   <name> <mode> <uid> <gid>
 *   nod   <name> <mode> <uid> <gid> <dev_type> <maj> <min>
 *   slink <name> <target> <mode> <uid> <gid>
 *   pipe  <name> <mode> <uid> <gid>
 *   sock  <name> <mode> <uid> <gid>
 *
 * '#' starts a comment line; blank lines are skipped.  A file location may
 * use ${VAR}, expanded from the environment (an unset VAR is an error here,
 * not an empty string as in the kernel's tool).
 */
#ifndef HUSK_INITRAMFS_LIST_H
#define HUSK_INITRAMFS_LIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "husk-common/error.h"

enum list_type {
	LIST_FILE,
	LIST_DIR,
	LIST_NOD,
	LIST_SLINK,
	LIST_PIPE,
	LIST_SOCK,
};

struct list_entry {
	enum list_type type;
	unsigned int line;
	char *name;		/* normalised: no leading '/', "." is the root */
	char *location;		/* file: host path; slink: link target */
	mode_t mode;		/* permission bits | S_IFMT of the type */
	uint32_t uid;
	uint32_t gid;
	uint32_t rdev_major;	/* nod only */
	uint32_t rdev_minor;
	char **links;		/* file only: further hard-link names, normalised */
	size_t n_links;
};

/*
 * Parse one line.  Returns 1 and fills *out for an entry, 0 for a blank or
 * comment line, -errno with err saying "line N: ..." for a malformed one.
 */
int list_parse_line(const char *line, unsigned int lineno,
		    struct list_entry *out, struct husk_error *err);

void list_entry_done(struct list_entry *e);

/*
 * Canonical archive name of a path: leading and repeated '/' dropped, "."
 * for the root; "." or ".." components and empty paths are refused.
 */
int list_normalise_name(const char *path, char **out);

#endif
