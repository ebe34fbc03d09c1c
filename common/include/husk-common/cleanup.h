/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Scope-bound ownership, systemd style: a local declared _cleanup_free_ or
 * _cleanup_close_ is released when it goes out of scope; TAKE_PTR/TAKE_FD
 * hand ownership to someone else and leave the local empty.
 */
#ifndef HUSK_COMMON_CLEANUP_H
#define HUSK_COMMON_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
	free(*(void **)p);
}

/* close() that keeps errno, for cleanup paths. */
static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;

		close(fd);
		errno = saved;
	}
	return -1;
}

static inline void closep(int *fd)
{
	*fd = safe_close(*fd);
}

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

/* Declare a cleanup function freeing *p with func when *p is non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)		\
	static inline void func##p(type *p)		\
	{						\
		if (*p)					\
			func(*p);			\
	}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
