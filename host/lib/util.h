/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared inside libhusk: deadlines, string vectors, files. */
#ifndef HUSK_LIB_UTIL_H
#define HUSK_LIB_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "husk-common/error.h"

/* Symbols of the public API; everything else stays hidden. */
#define HUSK_EXPORT __attribute__((visibility("default")))

/* Monotonic milliseconds; a negative timeout means "no deadline". */
int64_t now_ms(void);
int64_t deadline_after_ms(int timeout_ms);
int deadline_remaining_ms(int64_t deadline);	/* -1 for no deadline */

/* A growable NULL-terminated string vector. */
struct strv {
	char **v;
	size_t n, cap;
};

int strv_add(struct strv *s, const char *str);
int strv_addf(struct strv *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strv_release(struct strv *s);
/* Hand the vector to the caller (NULL-terminated), leaving s empty. */
char **strv_take(struct strv *s);

/* Read a small file into a NUL-terminated buffer (at most size-1 bytes). */
int read_small_file(int dirfd, const char *path, char *buf, size_t size);
/* Create/replace path with text, mode 0600. */
int write_small_file(int dirfd, const char *path, const char *text);

/*
 * Remove dir and everything under it, never crossing into another file
 * system and never following symlinks.
 */
int rm_rf_at(int parent_fd, const char *name);

/* AF_UNIX stream sockets, O_CLOEXEC, with the path checked against sun_path. */
int unix_listen(const char *path, int backlog, struct husk_error *err);
int unix_connect(const char *path, struct husk_error *err);

/* Resolve a program name through PATH (names with '/' are taken as is). */
int find_program(const char *name, char **path_out);

/* The directory of the running executable ("" when unknown). */
int self_exe_dir(char *buf, size_t size);

#endif
