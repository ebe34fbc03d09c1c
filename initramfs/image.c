// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "image.h"

#define CPIO_TRAILER "TRAILER!!!"
#define CPIO_HDR_LEN 110
#define FIRST_INO 721		/* where gen_init_cpio starts, for familiarity */

static void entry_done(struct image_entry *e)
{
	free(e->name);
	free(e->src_path);
	free(e->data);
	free(e->origin);
	memset(e, 0, sizeof(*e));
}

void image_done(struct image *img)
{
	for (size_t i = 0; i < img->n; i++)
		entry_done(&img->v[i]);
	free(img->v);
	memset(img, 0, sizeof(*img));
}

/* Append a zeroed entry; on success the image owns whatever is put in it. */
static struct image_entry *push_entry(struct image *img)
{
	if (img->n == img->cap) {
		size_t cap = img->cap ? img->cap * 2 : 64;
		struct image_entry *nv = reallocarray(img->v, cap, sizeof(*nv));

		if (!nv)
			return NULL;
		img->v = nv;
		img->cap = cap;
	}
	memset(&img->v[img->n], 0, sizeof(img->v[0]));
	return &img->v[img->n++];
}

/* Drop the last entry after a failure while filling it. */
static int pop_entry(struct image *img, int r)
{
	entry_done(&img->v[--img->n]);
	return r;
}

static int oom(struct husk_error *err)
{
	return husk_error_set(err, ENOMEM, "out of memory");
}

static int check_source_file(const char *path, const char *where, uint64_t *size,
			     struct husk_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;

	if (fd < 0)
		return husk_error_seterrno(err, errno, "%s: %s", where, path);
	if (fstat(fd, &st) < 0)
		return husk_error_seterrno(err, errno, "%s: %s", where, path);
	if (!S_ISREG(st.st_mode))
		return husk_error_set(err, EINVAL, "%s: %s: not a regular file", where, path);
	*size = (uint64_t)st.st_size;
	return 0;
}

static int add_named(struct image *img, const struct list_entry *le,
		     const char *name, const char *where, size_t group,
		     uint64_t size)
{
	struct image_entry *e = push_entry(img);

	if (!e)
		return -ENOMEM;
	e->mode = le->mode;
	e->uid = le->uid;
	e->gid = le->gid;
	e->rdev_major = le->rdev_major;
	e->rdev_minor = le->rdev_minor;
	e->line = le->line;
	e->link_group = group;
	e->size = size;
	e->name = strdup(name);
	e->origin = strdup(where);
	if (!e->name || !e->origin)
		return pop_entry(img, -ENOMEM);
	if (le->type == LIST_FILE) {
		e->src_path = strdup(le->location);
		if (!e->src_path)
			return pop_entry(img, -ENOMEM);
	} else if (le->type == LIST_SLINK) {
		e->data = strdup(le->location);
		if (!e->data)
			return pop_entry(img, -ENOMEM);
	}
	return 0;
}

int image_add_list_entry(struct image *img, const struct list_entry *le,
			 const char *list_name, struct husk_error *err)
{
	char where[512];
	uint64_t size = 0;
	size_t group = 0;
	int r;

	snprintf(where, sizeof(where), "%s: line %u", list_name, le->line);
	if (le->type == LIST_FILE) {
		r = check_source_file(le->location, where, &size, err);
		if (r < 0)
			return r;
		if (le->n_links)
			group = ++img->next_link_group;
	} else if (le->type == LIST_SLINK) {
		size = strlen(le->location);
	}
	r = add_named(img, le, le->name, where, group, size);
	for (size_t i = 0; r >= 0 && i < le->n_links; i++)
		r = add_named(img, le, le->links[i], where, group, size);
	return r == -ENOMEM ? oom(err) : r;
}

int image_add_data(struct image *img, const char *name, mode_t perm,
		   char *data, size_t size, const char *origin,
		   struct husk_error *err)
{
	struct image_entry *e = push_entry(img);
	int r;

	if (!e) {
		free(data);
		return oom(err);
	}
	e->data = data;
	e->size = size;
	e->mode = S_IFREG | (perm & 07777);
	e->origin = strdup(origin);
	if (!e->origin)
		return pop_entry(img, oom(err));
	r = list_normalise_name(name, &e->name);
	if (r == -ENOMEM)
		return pop_entry(img, oom(err));
	if (r < 0 || strcmp(e->name, ".") == 0)
		return pop_entry(img, husk_error_set(err, EINVAL, "%s: invalid archive name '%s'",
						     origin, name));
	return 0;
}

/* Every ancestor of every entry, as an implicit 0755 root:root directory. */
static int add_implicit_parents(struct image *img)
{
	size_t n = img->n;

	for (size_t i = 0; i < n; i++) {
		/* the string stays put even when push_entry() moves img->v */
		const char *name = img->v[i].name;

		for (const char *s = strchr(name, '/'); s; s = strchr(s + 1, '/')) {
			struct image_entry *e = push_entry(img);

			if (!e)
				return -ENOMEM;
			e->name = strndup(name, (size_t)(s - name));
			e->origin = strdup("implicit parent directory");
			if (!e->name || !e->origin)
				return pop_entry(img, -ENOMEM);
			e->mode = S_IFDIR | 0755;
			e->implicit = true;
		}
	}
	return 0;
}

/* By name; an explicit entry sorts before an implicit one of the same name. */
static int cmp_entry(const void *a, const void *b)
{
	const struct image_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (int)x->implicit - (int)y->implicit;
}

static int drop_duplicates(struct image *img, struct husk_error *err)
{
	size_t out = 0;

	for (size_t i = 0; i < img->n; i++) {
		struct image_entry *e = &img->v[i];

		if (out > 0 && strcmp(img->v[out - 1].name, e->name) == 0) {
			if (!e->implicit)
				return husk_error_set(err, EEXIST,
						      "%s: '%s' is already in the archive (%s)",
						      e->origin, e->name, img->v[out - 1].origin);
			entry_done(e);
			continue;
		}
		if (out != i) {
			img->v[out] = *e;
			memset(e, 0, sizeof(*e));
		}
		out++;
	}
	img->n = out;
	return 0;
}

static int check_parents(struct image *img, struct husk_error *err)
{
	for (size_t i = 0; i < img->n; i++) {
		struct image_entry *e = &img->v[i];
		const char *slash = strrchr(e->name, '/');
		_cleanup_free_ char *parent = NULL;
		struct image_entry key, *p;

		if (!slash)
			continue;
		parent = strndup(e->name, (size_t)(slash - e->name));
		if (!parent)
			return oom(err);
		key = (struct image_entry){ .name = parent };
		p = bsearch(&key, img->v, img->n, sizeof(key), cmp_entry);
		if (p && !S_ISDIR(p->mode))
			return husk_error_set(err, ENOTDIR,
					      "%s: parent '%s' of '%s' is not a directory (%s)",
					      e->origin, parent, e->name, p->origin);
	}
	return 0;
}

/* Inodes in archive order; hard links share one, data on the last link. */
static int assign_inodes(struct image *img, struct husk_error *err)
{
	size_t groups = img->next_link_group + 1;
	_cleanup_free_ uint32_t *group_ino = calloc(groups, sizeof(uint32_t));
	_cleanup_free_ uint32_t *group_count = calloc(groups, sizeof(uint32_t));
	_cleanup_free_ size_t *group_last = calloc(groups, sizeof(size_t));
	uint32_t ino = FIRST_INO;

	if (!group_ino || !group_count || !group_last)
		return oom(err);
	for (size_t i = 0; i < img->n; i++) {
		struct image_entry *e = &img->v[i];
		size_t g = e->link_group;

		if (g && !group_ino[g])
			group_ino[g] = ino++;
		e->ino = g ? group_ino[g] : ino++;
		group_count[g]++;
		group_last[g] = i;
	}
	for (size_t i = 0; i < img->n; i++) {
		struct image_entry *e = &img->v[i];
		size_t g = e->link_group;

		e->nlink = g ? group_count[g] : S_ISDIR(e->mode) ? 2 : 1;
		e->carries_data = !g || group_last[g] == i;
	}
	return 0;
}

int image_finalise(struct image *img, struct husk_error *err)
{
	int r;

	if (add_implicit_parents(img) < 0)
		return oom(err);
	if (img->n)
		qsort(img->v, img->n, sizeof(*img->v), cmp_entry);
	r = drop_duplicates(img, err);
	if (r >= 0)
		r = check_parents(img, err);
	if (r >= 0)
		r = assign_inodes(img, err);
	if (r >= 0)
		img->finalised = true;
	return r;
}

struct cpio_out {
	int fd;
	uint64_t offset;
	struct husk_error *err;
};

static int out_write(struct cpio_out *o, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(o->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return husk_error_seterrno(o->err, errno, "writing the archive");
		p += n;
		len -= (size_t)n;
		o->offset += (uint64_t)n;
	}
	return 0;
}

static int out_pad4(struct cpio_out *o)
{
	static const char zeros[4];

	return out_write(o, zeros, (4 - (o->offset & 3)) & 3);
}

static int write_header(struct cpio_out *o, const struct image_entry *e,
			uint32_t mtime, uint32_t filesize)
{
	char hdr[CPIO_HDR_LEN + 1];
	/* names are shorter than PATH_MAX (list_normalise_name) */
	uint32_t namesize = (uint32_t)strlen(e->name) + 1;
	int r;

	snprintf(hdr, sizeof(hdr),
		 "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 e->ino, (uint32_t)e->mode, e->uid, e->gid, e->nlink, mtime,
		 filesize, 0, 0, e->rdev_major, e->rdev_minor, namesize, 0);
	r = out_write(o, hdr, CPIO_HDR_LEN);
	if (r >= 0)
		r = out_write(o, e->name, namesize);
	return r < 0 ? r : out_pad4(o);
}

/* Copy exactly e->size bytes; a source that changed size since is an error. */
static int write_file_data(struct cpio_out *o, const struct image_entry *e)
{
	_cleanup_close_ int fd = open(e->src_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	uint64_t left = e->size;
	char buf[65536];
	ssize_t n;
	int r;

	if (fd < 0)
		return husk_error_seterrno(o->err, errno, "%s: %s", e->origin, e->src_path);
	while (left) {
		n = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return husk_error_seterrno(o->err, errno, "%s: reading %s",
						   e->origin, e->src_path);
		if (n == 0)
			break;
		r = out_write(o, buf, (size_t)n);
		if (r < 0)
			return r;
		left -= (uint64_t)n;
	}
	if (left || read(fd, buf, 1) != 0)
		return husk_error_set(o->err, EIO, "%s: %s changed size while being archived",
				      e->origin, e->src_path);
	return 0;
}

static int write_entry(struct cpio_out *o, const struct image_entry *e,
		       uint32_t mtime)
{
	uint64_t size = e->carries_data ? e->size : 0;
	int r;

	if (size > UINT32_MAX)
		return husk_error_set(o->err, EFBIG, "%s: %s is larger than newc's 4 GiB limit",
				      e->origin, e->name);
	r = write_header(o, e, mtime, (uint32_t)size);
	if (r < 0 || !size)
		return r;
	r = e->src_path ? write_file_data(o, e) : out_write(o, e->data, (size_t)size);
	return r < 0 ? r : out_pad4(o);
}

int image_write_cpio(struct image *img, int fd, uint32_t mtime,
		     struct husk_error *err)
{
	struct cpio_out o = { .fd = fd, .err = err };
	struct image_entry trailer = { .name = (char *)CPIO_TRAILER, .nlink = 1 };
	int r;

	if (!img->finalised)
		return husk_error_set(err, EINVAL, "image written before image_finalise()");
	for (size_t i = 0; i < img->n; i++) {
		r = write_entry(&o, &img->v[i], mtime);
		if (r < 0)
			return r;
	}
	r = write_header(&o, &trailer, 0, 0);
	return r;
}
