/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The steps of husk-mkinitramfs, one function each. */
#ifndef HUSK_INITRAMFS_BUILD_H
#define HUSK_INITRAMFS_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "husk-common/error.h"
#include "image.h"

enum initramfs_compression {
	COMPRESS_NONE,
	COMPRESS_GZIP,
	COMPRESS_XZ,
	COMPRESS_ZSTD,
};

#define HUSK_MODULE_LIST "lib/modules/husk.list"

int initramfs_parse_compression(const char *s, enum initramfs_compression *c);

/* SOURCE_DATE_EPOCH, or 0 when unset; a malformed value is an error. */
int initramfs_source_date(uint32_t *mtime, struct husk_error *err);

/* Every line of a gen_init_cpio list file ("-" is stdin) into img. */
int image_add_list_file(struct image *img, const char *path,
			struct husk_error *err);

/*
 * Modules named in `names` and their modules.dep dependencies from
 * modules_dir, then the out-of-tree .ko files in `files`, decompressed, at
 * /lib/modules/<path in modules_dir> (files: /lib/modules/extra/<basename>),
 * plus /lib/modules/husk.list naming them in load order.
 */
int image_add_modules(struct image *img, const char *modules_dir,
		      char *const *names, size_t n_names,
		      char *const *files, size_t n_files,
		      struct husk_error *err);

/*
 * Finalise img and write it to output, compressed; the file appears
 * complete (temporary file + rename) or not at all.
 */
int initramfs_write_output(struct image *img, const char *output,
			   enum initramfs_compression c, uint32_t mtime,
			   struct husk_error *err);

#endif
