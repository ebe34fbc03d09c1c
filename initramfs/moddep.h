/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * modules.dep as written by depmod: one line per module,
 *   <path>: <dep path> <dep path> ...
 * paths relative to the modules directory, each dependency with its own line.
 * Resolution gives a load order: every module after all of its dependencies,
 * each module once.
 */
#ifndef HUSK_INITRAMFS_MODDEP_H
#define HUSK_INITRAMFS_MODDEP_H

#include <stddef.h>

#include "husk-common/error.h"

struct moddep_module {
	char *path;		/* as in modules.dep, e.g. kernel/net/x.ko.xz */
	char *name;		/* module name: basename, no .ko*, '-' as '_' */
	char **dep_paths;
	size_t n_deps;
	size_t *deps;		/* indices into moddep.mods, once linked */
	unsigned int line;
	int state;		/* resolution: unvisited, visiting, done */
};

struct moddep {
	struct moddep_module *mods;	/* sorted by path after parsing */
	size_t n;
	size_t *order;			/* resolved load order (indices) */
	size_t n_order;
};

/* Parse a whole modules.dep buffer (need not be NUL-terminated). */
int moddep_parse(struct moddep *md, const char *buf, size_t len,
		 struct husk_error *err);

/*
 * Append the module called name (or with that path) and its dependencies,
 * dependencies first, to md->order; modules already there are skipped.
 * A name not in modules.dep or a dependency cycle is an error naming it.
 */
int moddep_resolve(struct moddep *md, const char *name, struct husk_error *err);

void moddep_done(struct moddep *md);

/* Module name of a path or name: basename, up to ".ko", '-' folded to '_'. */
int moddep_module_name(const char *path_or_name, char **out);

#endif
