// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Host bind mounts of a container's spec.  A virtio-9p device is mounted
 * once in the guest and QEMU cannot hot-add one, so a sandbox shares one
 * directory (husk_sandbox_config.shared_dir, tag SANDBOX_SHARED_TAG) for
 * all of them: mounts[i]'s host source is bound on SHARED/<cid>/mounts/<i>
 * (an empty file or directory made for it), and the spec the agent gets
 * names that entry's path in the guest instead.
 *
 * A bind with the option MOUNT_OPT_GUEST keeps a guest path as source
 * (the demo binds the guest's /proc); the option is dropped on the way.
 *
 * The guest can write to the shared directory, so the host never follows
 * a path below it: entries are made and opened relative to directory fds
 * with O_NOFOLLOW, and mounted through /proc/self/fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "sandbox-internal.h"

#define MOUNTS_DIR "mounts"

static bool mount_has_option(const Grpc__Mount *m, const char *opt)
{
	for (size_t i = 0; i < m->n_options; i++)
		if (!strcmp(m->options[i], opt))
			return true;
	return false;
}

bool mount_is_bind(const Grpc__Mount *m)
{
	return !strcmp(m->type, "bind") || mount_has_option(m, "bind") ||
	       mount_has_option(m, "rbind");
}

bool mount_is_host_bind(const Grpc__Mount *m)
{
	return mount_is_bind(m) && !mount_has_option(m, MOUNT_OPT_GUEST);
}

/* m's options without MOUNT_OPT_GUEST (the agent does not know it); borrowed strings. */
static int options_for_guest(Grpc__Mount *copy, const Grpc__Mount *m, char ***owned,
			     struct husk_error *err)
{
	size_t n = 0;

	*owned = calloc(m->n_options ? m->n_options : 1, sizeof(**owned));
	if (!*owned)
		return husk_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < m->n_options; i++)
		if (strcmp(m->options[i], MOUNT_OPT_GUEST))
			(*owned)[n++] = m->options[i];
	copy->options = *owned;
	copy->n_options = n;
	return 0;
}

size_t spec_host_binds(const Grpc__Spec *spec)
{
	size_t n = 0;

	for (size_t i = 0; i < spec->n_mounts; i++)
		n += mount_is_host_bind(spec->mounts[i]);
	return n;
}

int spec_check_host_binds(const Grpc__Spec *spec, const char *what, struct husk_error *err)
{
	struct stat st;

	for (size_t i = 0; i < spec->n_mounts; i++) {
		const char *src = spec->mounts[i]->source;

		if (!mount_is_host_bind(spec->mounts[i]))
			continue;
		if (src[0] != '/')
			return husk_error_set(err, EINVAL, "%s: mounts[%zu].source: '%s' is not "
					      "an absolute host path (a bind mount's source is "
					      "on the host)", what, i, src);
		if (stat(src, &st) < 0)
			return husk_error_seterrno(err, errno, "%s: mounts[%zu].source: %s", what,
						   i, src);
	}
	return 0;
}

int guest_mounts_build(const Grpc__Spec *spec, const char *guest_dir,
		       struct guest_mounts *gm, struct husk_error *err)
{
	*gm = (struct guest_mounts){ 0 };
	if (!spec->n_mounts)
		return 0;
	gm->copies = calloc(spec->n_mounts, sizeof(*gm->copies));
	gm->ptrs = calloc(spec->n_mounts, sizeof(*gm->ptrs));
	gm->sources = calloc(spec->n_mounts, sizeof(*gm->sources));
	gm->options = calloc(spec->n_mounts, sizeof(*gm->options));
	if (!gm->copies || !gm->ptrs || !gm->sources || !gm->options) {
		guest_mounts_release(gm);
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	gm->n = spec->n_mounts;
	for (size_t i = 0; i < spec->n_mounts; i++) {
		gm->copies[i] = *spec->mounts[i];
		gm->ptrs[i] = &gm->copies[i];
		if (mount_has_option(spec->mounts[i], MOUNT_OPT_GUEST)) {
			int r = options_for_guest(&gm->copies[i], spec->mounts[i],
						  &gm->options[i], err);

			if (r < 0) {
				guest_mounts_release(gm);
				return r;
			}
			continue;
		}
		if (!mount_is_host_bind(spec->mounts[i]))
			continue;
		if (!guest_dir) {
			guest_mounts_release(gm);
			return husk_error_set(err, EINVAL, "mounts[%zu]: a host bind mount "
					      "without a shared directory", i);
		}
		if (asprintf(&gm->sources[i], "%s/%zu", guest_dir, i) < 0) {
			gm->sources[i] = NULL;
			guest_mounts_release(gm);
			return husk_error_set(err, ENOMEM, "out of memory");
		}
		gm->copies[i].source = gm->sources[i];
	}
	return 0;
}

void guest_mounts_release(struct guest_mounts *gm)
{
	for (size_t i = 0; gm->sources && i < gm->n; i++)
		free(gm->sources[i]);
	for (size_t i = 0; gm->options && i < gm->n; i++)
		free(gm->options[i]);
	free(gm->sources);
	free(gm->options);
	free(gm->ptrs);
	free(gm->copies);
	*gm = (struct guest_mounts){ 0 };
}

/* mkdirat(fd, name) unless it is there, then an fd on it that follows nothing. */
static int dir_open_made(int fd, const char *name, const char *path, struct husk_error *err)
{
	int d;

	if (mkdirat(fd, name, 0700) < 0 && errno != EEXIST)
		return husk_error_seterrno(err, errno, "mkdir %s", path);
	d = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return husk_error_seterrno(err, errno, "open %s", path);
	return d;
}

/* An empty file or directory, like the source, as the mount point; an O_PATH fd on it. */
static int mount_point_make(int dir_fd, const char *name, bool is_dir)
{
	struct stat st;
	int fd;

	if (is_dir) {
		if (mkdirat(dir_fd, name, 0700) < 0)
			return -errno;
	} else {
		fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
		if (fd < 0)
			return -errno;
		close(fd);
	}
	fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Swapped by the guest in between: refuse rather than mount elsewhere. */
	if (fstat(fd, &st) < 0 || !!S_ISDIR(st.st_mode) != is_dir ||
	    (!is_dir && !S_ISREG(st.st_mode))) {
		close(fd);
		return -EXDEV;
	}
	return fd;
}

static void fd_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* Bind mounts[i]'s source on MOUNTS/<i>, read-only when its options say so. */
static int host_bind_one(struct host_binds *hb, int mounts_fd, const Grpc__Mount *m,
			 size_t i, struct husk_error *err)
{
	_cleanup_close_ int src_fd = -1, point_fd = -1, top_fd = -1;
	_cleanup_free_ char *point = NULL;
	unsigned long flags = MS_BIND | (mount_has_option(m, "rbind") ? MS_REC : 0);
	char name[32], src_path[64], point_path[64];
	struct stat st;

	/* Resolved once, symlinks followed as runc does; mounted by its fd. */
	src_fd = open(m->source, O_PATH | O_CLOEXEC);
	if (src_fd < 0 || fstat(src_fd, &st) < 0)
		return husk_error_seterrno(err, errno, "mounts[%zu].source: %s", i, m->source);
	snprintf(name, sizeof(name), "%zu", i);
	if (asprintf(&point, "%s/%s", hb->dir, name) < 0) {
		point = NULL;
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	point_fd = mount_point_make(mounts_fd, name, S_ISDIR(st.st_mode));
	if (point_fd < 0)
		return husk_error_seterrno(err, -point_fd, "mounts[%zu]: mount point %s", i,
					   point);
	fd_path(src_path, sizeof(src_path), src_fd);
	fd_path(point_path, sizeof(point_path), point_fd);
	if (mount(src_path, point_path, NULL, flags, NULL) < 0) {
		int e = errno;

		(void)unlinkat(mounts_fd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
		return husk_error_seterrno(err, e, "mounts[%zu]: bind %s on %s%s", i, m->source,
					   point, e == EPERM ? " (host bind mounts need root)" :
					   "");
	}
	hb->points[hb->n++] = TAKE_PTR(point);
	if (!mount_has_option(m, "ro"))
		return 0;
	/* A bind takes its flags only from a remount, of the new top mount. */
	top_fd = openat(mounts_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (top_fd < 0)
		return husk_error_seterrno(err, errno, "mounts[%zu]: open %s", i,
					   hb->points[hb->n - 1]);
	fd_path(point_path, sizeof(point_path), top_fd);
	if (mount(NULL, point_path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		return husk_error_seterrno(err, errno, "mounts[%zu]: remount %s read-only", i,
					   hb->points[hb->n - 1]);
	return 0;
}

static int host_binds_dirs(struct host_binds *hb, const char *shared_dir, const char *cid,
			   int *mounts_fd, struct husk_error *err)
{
	_cleanup_close_ int shared_fd = -1, cid_fd = -1;

	if (asprintf(&hb->cid_dir, "%s/%s", shared_dir, cid) < 0) {
		hb->cid_dir = NULL;
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	if (asprintf(&hb->dir, "%s/" MOUNTS_DIR, hb->cid_dir) < 0) {
		hb->dir = NULL;
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	shared_fd = open(shared_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (shared_fd < 0)
		return husk_error_seterrno(err, errno, "shared directory %s", shared_dir);
	cid_fd = dir_open_made(shared_fd, cid, hb->cid_dir, err);
	if (cid_fd < 0)
		return cid_fd;
	*mounts_fd = dir_open_made(cid_fd, MOUNTS_DIR, hb->dir, err);
	return *mounts_fd < 0 ? *mounts_fd : 0;
}

int host_binds_setup(struct host_binds *hb, const char *shared_dir, const char *cid,
		     const Grpc__Spec *spec, struct husk_error *err)
{
	_cleanup_close_ int mounts_fd = -1;
	size_t n = spec_host_binds(spec);
	int r;

	if (!n)
		return 0;
	if (!shared_dir)
		return husk_error_set(err, EINVAL, "container %s: host bind mounts need the "
				      "sandbox's shared directory (husk_sandbox_config.shared_dir)",
				      cid);
	hb->points = calloc(n, sizeof(*hb->points));
	if (!hb->points)
		return husk_error_set(err, ENOMEM, "out of memory");
	r = host_binds_dirs(hb, shared_dir, cid, &mounts_fd, err);
	for (size_t i = 0; r == 0 && i < spec->n_mounts; i++)
		if (mount_is_host_bind(spec->mounts[i]))
			r = host_bind_one(hb, mounts_fd, spec->mounts[i], i, err);
	return r;
}

void host_binds_teardown(struct host_binds *hb)
{
	for (size_t i = 0; i < hb->n; i++) {
		/* Detach: the guest may still have the file open through 9p. */
		(void)umount2(hb->points[i], MNT_DETACH | UMOUNT_NOFOLLOW);
		if (unlink(hb->points[i]) < 0 && errno == EISDIR)
			(void)rmdir(hb->points[i]);
		free(hb->points[i]);
	}
	if (hb->dir)
		(void)rmdir(hb->dir);
	/* Not empty when it holds a pod member's rootfs: its owner removes it. */
	if (hb->cid_dir)
		(void)rmdir(hb->cid_dir);
	free(hb->points);
	free(hb->dir);
	free(hb->cid_dir);
	*hb = (struct host_binds){ 0 };
}
