// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * CopyFile: the host pushes a file in chunks.  The destination must lie
 * below the configured copy root; every directory on the way is opened
 * with O_NOFOLLOW, so a symlink planted in the tree cannot lead outside.
 * Chunks go to a hidden temporary file next to the target, which is
 * renamed into place (with its mode and owner) once the last byte landed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "log.h"
#include "rpc.h"

/* Largest file accepted: CopyFile carries configuration, not images. */
#define COPY_MAX_SIZE (256LL << 20)
#define COPY_TMP_PREFIX ".husk-copy."

/* Path below root, as a relative path with only plain components; else -EINVAL. */
static int copy_relative_path(const char *root, const char *path, const char **rel,
			      struct husk_error *err)
{
	size_t rlen = strlen(root);
	const char *p;

	while (rlen > 1 && root[rlen - 1] == '/')
		rlen--;
	if (path[0] != '/' || strlen(path) >= PATH_MAX)
		return husk_error_set(err, EINVAL, "path: '%s' is not an absolute path", path);
	if (strncmp(path, root, rlen) != 0 || path[rlen] != '/' || path[rlen + 1] == '\0')
		return husk_error_set(err, EINVAL, "path: '%s' is not below %.*s", path,
				      (int)rlen, root);
	p = path + rlen + 1;
	*rel = p;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return husk_error_set(err, EINVAL,
					      "path: '%s' has an empty, '.' or '..' component", path);
		if (n > NAME_MAX)
			return husk_error_set(err, EINVAL, "path: a component of '%s' is too long",
					      path);
		p += n;
		if (*p == '/' && p[1] == '\0')
			return husk_error_set(err, EINVAL, "path: '%s' ends with '/'", path);
		if (*p == '/')
			p++;
	}
	return 0;
}

/* Open (creating as needed) each directory of rel except the last component. */
static int copy_open_parent(const char *root, const char *rel, mode_t dir_mode,
			    const char **leaf, struct husk_error *err)
{
	_cleanup_close_ int dfd = -1;
	char comp[NAME_MAX + 1];
	const char *p = rel;

	if (mkdir(root, 0755) < 0 && errno != EEXIST)
		return husk_error_seterrno(err, errno, "copy root %s", root);
	dfd = open(root, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dfd < 0)
		return husk_error_seterrno(err, errno, "copy root %s", root);
	for (;;) {
		size_t n = strcspn(p, "/");
		int next;

		if (p[n] == '\0')
			break;
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (mkdirat(dfd, comp, dir_mode) < 0 && errno != EEXIST)
			return husk_error_seterrno(err, errno, "path: mkdir %.*s",
						   (int)(p + n - rel), rel);
		next = openat(dfd, comp, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return husk_error_seterrno(err, errno, "path: %.*s", (int)(p + n - rel), rel);
		safe_close(dfd);
		dfd = next;
		p += n + 1;
	}
	*leaf = p;
	return TAKE_FD(dfd);
}

static int copy_validate(const Grpc__CopyFileRequest *req, struct husk_error *err)
{
	mode_t type = req->file_mode & S_IFMT;

	if (req->file_size < 0 || req->file_size > COPY_MAX_SIZE)
		return husk_error_set(err, EINVAL, "file_size: %" PRId64 " not within 0..%lld",
				      req->file_size, COPY_MAX_SIZE);
	if (req->offset < 0 || (int64_t)req->data.len > req->file_size - req->offset)
		return husk_error_set(err, EINVAL,
				      "offset: chunk %" PRId64 "+%zu ends past file_size %" PRId64,
				      req->offset, req->data.len, req->file_size);
	if (type != 0 && type != S_IFREG && type != S_IFDIR)
		return husk_error_set(err, EOPNOTSUPP,
				      "file_mode: only regular files and directories are copied");
	if (req->uid < -1 || req->gid < -1)
		return husk_error_set(err, EINVAL, "uid/gid: %d/%d out of range", req->uid,
				      req->gid);
	return 0;
}

static int copy_apply_owner_mode(int fd, const Grpc__CopyFileRequest *req, const char *path,
				 struct husk_error *err)
{
	if (fchmod(fd, req->file_mode & 07777) < 0)
		return husk_error_seterrno(err, errno, "path: chmod %s", path);
	if ((req->uid >= 0 || req->gid >= 0) && fchown(fd, (uid_t)req->uid, (gid_t)req->gid) < 0)
		return husk_error_seterrno(err, errno, "path: chown %s", path);
	return 0;
}

static int copy_directory(int dfd, const char *leaf, const Grpc__CopyFileRequest *req,
			  struct husk_error *err)
{
	_cleanup_close_ int fd = -1;

	if (mkdirat(dfd, leaf, req->file_mode & 07777) < 0 && errno != EEXIST)
		return husk_error_seterrno(err, errno, "path: mkdir %s", req->path);
	fd = openat(dfd, leaf, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "path: %s", req->path);
	return copy_apply_owner_mode(fd, req, req->path, err);
}

static int copy_chunk(int dfd, const char *leaf, const Grpc__CopyFileRequest *req,
		      struct husk_error *err)
{
	char tmp[NAME_MAX + sizeof(COPY_TMP_PREFIX)];
	_cleanup_close_ int fd = -1;
	size_t done = 0;
	int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC;

	snprintf(tmp, sizeof(tmp), COPY_TMP_PREFIX "%s", leaf);
	/* The first chunk starts the file afresh; later ones add to it. */
	if (req->offset == 0)
		flags |= O_TRUNC;
	fd = openat(dfd, tmp, flags, 0600);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "path: staging %s", req->path);
	while (done < req->data.len) {
		ssize_t n = pwrite(fd, req->data.data + done, req->data.len - done,
				   req->offset + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return husk_error_seterrno(err, errno, "path: writing %s", req->path);
		}
		done += (size_t)n;
	}
	if (req->offset + (int64_t)req->data.len < req->file_size)
		return 0;
	if (ftruncate(fd, req->file_size) < 0 || fsync(fd) < 0)
		return husk_error_seterrno(err, errno, "path: finishing %s", req->path);
	if (copy_apply_owner_mode(fd, req, req->path, err) < 0)
		return -err->code;
	if (renameat(dfd, tmp, dfd, leaf) < 0)
		return husk_error_seterrno(err, errno, "path: rename into %s", req->path);
	return 0;
}

RPC_HANDLER(copy_file)
{
	const Grpc__CopyFileRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	_cleanup_close_ int dfd = -1;
	struct husk_error err = {};
	const char *rel = NULL, *leaf = NULL;
	mode_t dir_mode = req->dir_mode ? (req->dir_mode & 07777) : 0755;
	int r;

	r = copy_validate(req, &err);
	if (r == 0)
		r = copy_relative_path(agent->cfg.copy_root, req->path, &rel, &err);
	if (r == 0) {
		dfd = copy_open_parent(agent->cfg.copy_root, rel, dir_mode, &leaf, &err);
		r = dfd < 0 ? dfd : 0;
	}
	if (r == 0)
		r = (req->file_mode & S_IFMT) == S_IFDIR ? copy_directory(dfd, leaf, req, &err) :
			copy_chunk(dfd, leaf, req, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	rpc_reply_ok(call);
}
