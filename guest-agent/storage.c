// SPDX-License-Identifier: LGPL-2.1-or-later
/* Mounting the storages of CreateContainer (virtio-9p rootfs shares). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "log.h"
#include "storage.h"

#define TAG_MAX 31		/* QEMU's mount_tag limit */
#define MOUNT_DATA_MAX 256

static bool tag_valid(const char *tag)
{
	size_t n = strlen(tag);

	if (n == 0 || n > TAG_MAX)
		return false;
	return strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* mount_point must be STORAGE_ROOT/<cid>/<one plain component>. */
static int check_mount_point(const char *cid, const char *mp, const char *field,
			     struct husk_error *err)
{
	size_t root_len = strlen(STORAGE_ROOT), cid_len = strlen(cid);
	const char *leaf;

	if (strncmp(mp, STORAGE_ROOT "/", root_len + 1) ||
	    strncmp(mp + root_len + 1, cid, cid_len) || mp[root_len + 1 + cid_len] != '/')
		return husk_error_set(err, EINVAL, "%s.mount_point: '%s' is not under %s/%s/",
				      field, mp, STORAGE_ROOT, cid);
	leaf = mp + root_len + 1 + cid_len + 1;
	if (!leaf[0] || strchr(leaf, '/') || !strcmp(leaf, ".") || !strcmp(leaf, "..") ||
	    strlen(leaf) > NAME_MAX)
		return husk_error_set(err, EINVAL,
				      "%s.mount_point: '%s' must end in one plain name", field, mp);
	return 0;
}

/* Options: flags we map, 9p data options we pass on, anything else refused. */
static int mount_options(const Grpc__Storage *s, const char *field, unsigned long *flags,
			 char *data, size_t size, struct husk_error *err)
{
	static const char *const data_prefixes[] = {
		"trans=virtio", "version=9p2000.L", "msize=", "cache=", "access=",
	};
	size_t used = 0;

	*flags = MS_NOSUID | MS_NODEV;
	data[0] = '\0';
	for (size_t i = 0; i < s->n_options; i++) {
		const char *o = s->options[i];
		bool ok = false;
		int w;

		if (!strcmp(o, "ro")) {
			*flags |= MS_RDONLY;
			continue;
		}
		if (!strcmp(o, "rw") || !strcmp(o, "nosuid") || !strcmp(o, "nodev"))
			continue;
		for (size_t k = 0; k < sizeof(data_prefixes) / sizeof(data_prefixes[0]); k++)
			if (!strncmp(o, data_prefixes[k], strlen(data_prefixes[k])))
				ok = true;
		if (!ok || strchr(o, ','))
			return husk_error_set(err, EINVAL, "%s.options: '%s' is not supported",
					      field, o);
		w = snprintf(data + used, size - used, "%s%s", used ? "," : "", o);
		if (w < 0 || (size_t)w >= size - used)
			return husk_error_set(err, EINVAL, "%s.options: longer than %zu bytes",
					      field, size - 1);
		used += w;
	}
	return 0;
}

static int mkdir_owned(const char *path, struct husk_error *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return husk_error_seterrno(err, errno, "mkdir %s", path);
	return 0;
}

/* path and its missing parents (/run is a fresh tmpfs in the guest). */
static int mkdir_parents(const char *path, struct husk_error *err)
{
	char buf[PATH_MAX];

	if (strlen(path) >= sizeof(buf))
		return husk_error_set(err, ENAMETOOLONG, "%s: path too long", path);
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		int r;

		if (*p != '/')
			continue;
		*p = '\0';
		r = mkdir_owned(buf, err);
		if (r < 0)
			return r;
		*p = '/';
	}
	return mkdir_owned(buf, err);
}

/* Already a mount point: its device differs from its parent's. */
static bool is_mount_point(const char *path)
{
	char parent[PATH_MAX + 4];
	struct stat st, pst;

	snprintf(parent, sizeof(parent), "%s/..", path);
	return stat(path, &st) == 0 && stat(parent, &pst) == 0 && st.st_dev != pst.st_dev;
}

/*
 * A virtio-9p tag can be mounted once: the first container using a share
 * mounts it under SHARES_ROOT, every container binds it from there.
 */
static int share_mount_once(const char *tag, const char *data, const char *field,
			    char *path, size_t size, struct husk_error *err)
{
	int r;

	snprintf(path, size, "%s/%s", SHARES_ROOT, tag);
	if (is_mount_point(path))
		return 0;
	r = mkdir_parents(path, err);
	if (r < 0)
		return r;
	if (mount(tag, path, "9p", MS_NOSUID | MS_NODEV, data) < 0)
		return husk_error_seterrno(err, errno, "%s: mount 9p share '%s' on %s", field,
					   tag, path);
	return 0;
}

static int storage_mount_one(const char *cid, const Grpc__Storage *s, size_t i,
			     struct husk_error *err)
{
	char field[32], data[MOUNT_DATA_MAX], share[PATH_MAX];
	unsigned long flags = 0;
	int r;

	snprintf(field, sizeof(field), "storages[%zu]", i);
	if (strcmp(s->driver, "9p") || strcmp(s->fstype, "9p"))
		return husk_error_set(err, EOPNOTSUPP,
				      "%s: driver '%s' fstype '%s': only 9p shares are supported",
				      field, s->driver, s->fstype);
	if (!tag_valid(s->source))
		return husk_error_set(err, EINVAL, "%s.source: '%s' is not a 9p mount tag",
				      field, s->source);
	r = check_mount_point(cid, s->mount_point, field, err);
	if (r == 0)
		r = mount_options(s, field, &flags, data, sizeof(data), err);
	if (r == 0)
		r = share_mount_once(s->source, data, field, share, sizeof(share), err);
	if (r == 0)
		r = mkdir_parents(s->mount_point, err);
	if (r < 0)
		return r;
	if (mount(share, s->mount_point, NULL, MS_BIND, NULL) < 0)
		return husk_error_seterrno(err, errno, "%s: bind %s on %s", field, share,
					   s->mount_point);
	/* A bind takes its flags only from a remount. */
	if (mount(NULL, s->mount_point, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0) {
		r = husk_error_seterrno(err, errno, "%s: remount %s", field, s->mount_point);
		umount2(s->mount_point, MNT_DETACH);
		return r;
	}
	log_info("container %s: 9p share %s on %s%s", cid, s->source, s->mount_point,
		 flags & MS_RDONLY ? " (read-only)" : "");
	return 0;
}

int storage_mount_all(const char *container_id, Grpc__Storage *const *storages, size_t n,
		      struct husk_error *err)
{
	for (size_t i = 0; i < n; i++) {
		int r = storage_mount_one(container_id, storages[i], i, err);

		if (r < 0) {
			storage_unmount_container(container_id);
			return r;
		}
	}
	return 0;
}

void storage_unmount_container(const char *container_id)
{
	char dir[PATH_MAX];
	_cleanup_close_ int dfd = -1;
	DIR *d;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s/%s", STORAGE_ROOT, container_id);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	d = fdopendir(dfd);
	if (!d)
		return;
	dfd = -1;	/* owned by d now */
	while ((de = readdir(d))) {
		char path[PATH_MAX + NAME_MAX + 2];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		/* Detach: the container's processes may still hold files open. */
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL)
			log_warn("container %s: umount %s: %m", container_id, path);
		if (rmdir(path) < 0)
			log_warn("container %s: rmdir %s: %m", container_id, path);
	}
	closedir(d);
	if (rmdir(dir) < 0)
		log_warn("container %s: rmdir %s: %m", container_id, dir);
}
