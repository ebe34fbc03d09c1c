/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One error record carried up the stack: functions return 0 or -errno and,
 * when given a non-NULL record, describe what failed in words that name the
 * file, container or field involved.  Library code never prints; the caller
 * decides what to show.
 */
#ifndef HUSK_COMMON_ERROR_H
#define HUSK_COMMON_ERROR_H

#include <stdarg.h>

#define HUSK_ERROR_MSG_MAX 512

struct husk_error {
	int code;			/* positive errno, 0 when unset */
	char msg[HUSK_ERROR_MSG_MAX];	/* human message, "" when unset */
};

/*
 * Record an error and return -code, so a failure path reads
 *	return husk_error_set(err, ENOENT, "rootfs %s: not found", path);
 * A NULL err is allowed.  code is a positive errno (a negative one is
 * accepted and normalised).  The first error set wins: an outer caller
 * adding context uses husk_error_prefix().
 */
int husk_error_set(struct husk_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Same, appending ": strerror(code)". */
int husk_error_seterrno(struct husk_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend context ("container foo: ") to an error already set; returns -code. */
int husk_error_prefix(struct husk_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void husk_error_clear(struct husk_error *err);

#endif
