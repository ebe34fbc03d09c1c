/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Run an external filter (gzip, xz, zstd...) between two file descriptors. */
#ifndef HUSK_INITRAMFS_SPAWN_H
#define HUSK_INITRAMFS_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include "husk-common/error.h"

/*
 * Start argv[0] (searched in PATH) with stdin = in_fd, stdout = out_fd and
 * stderr = err_fd (-1: inherited).  The caller keeps its descriptors and
 * waits with spawn_wait().
 */
int spawn_filter(char *const argv[], int in_fd, int out_fd, int err_fd,
		 pid_t *pid, struct husk_error *err);

/* Wait for pid; 0 if it exited 0, -EIO with a message naming what otherwise. */
int spawn_wait(pid_t pid, const char *what, struct husk_error *err);

/* Run argv with stdin = in_fd and collect its stdout in a malloc'd buffer. */
int spawn_capture(char *const argv[], int in_fd, char **out, size_t *out_len,
		  struct husk_error *err);

/* Read fd to EOF into a malloc'd buffer; 0 or -errno. */
int read_all_fd(int fd, char **out, size_t *out_len);

#endif
