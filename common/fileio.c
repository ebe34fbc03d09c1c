// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "husk-common/fileio.h"

int husk_write_file_atomic(const char *path, mode_t mode, husk_file_fill_fn fill,
			   void *ctx, struct husk_error *err)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0)
		return husk_error_set(err, ENOMEM, "out of memory");
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "creating a temporary file next to %s", path);
	r = fill(fd, ctx, err);
	if (r >= 0 && fchmod(fd, mode) < 0)
		r = husk_error_seterrno(err, errno, "%s", tmp);
	if (r >= 0 && close(TAKE_FD(fd)) < 0)
		r = husk_error_seterrno(err, errno, "writing %s", tmp);
	if (r >= 0 && rename(tmp, path) < 0)
		r = husk_error_seterrno(err, errno, "renaming %s to %s", tmp, path);
	if (r < 0)
		unlink(tmp);
	return r;
}
