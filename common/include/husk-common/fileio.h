/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef HUSK_COMMON_FILEIO_H
#define HUSK_COMMON_FILEIO_H

#include <sys/types.h>

#include "husk-common/error.h"

/* Fills a freshly created file; returns 0 or -errno and fills err. */
typedef int (*husk_file_fill_fn)(int fd, void *ctx, struct husk_error *err);

/*
 * Write path atomically: fill a temporary file next to it, give it mode,
 * then rename it over path.  Readers see the old file or the complete new
 * one, never a partial write, and a failure leaves nothing behind.
 */
int husk_write_file_atomic(const char *path, mode_t mode, husk_file_fill_fn fill,
			   void *ctx, struct husk_error *err);

#endif
