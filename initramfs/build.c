// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "husk-common/fileio.h"
#include "build.h"
#include "list.h"
#include "moddep.h"
#include "spawn.h"

struct compressor {
	const char *name;
	enum initramfs_compression c;
	char *const *argv;	/* NULL: written as is */
};

/* gzip -n: no name or timestamp; xz: the kernel only checks CRC32. */
static char *const gzip_argv[] = { "gzip", "-n", "-9", "-c", NULL };
static char *const xz_argv[] = { "xz", "--check=crc32", "--lzma2=dict=1MiB",
				 "-T1", "-c", NULL };
static char *const zstd_argv[] = { "zstd", "-q", "-19", "-c", NULL };

static const struct compressor compressors[] = {
	{ "none", COMPRESS_NONE, NULL },
	{ "gzip", COMPRESS_GZIP, gzip_argv },
	{ "xz", COMPRESS_XZ, xz_argv },
	{ "zstd", COMPRESS_ZSTD, zstd_argv },
};

/* Compressed modules as installed by distributions, and how to undo them. */
static const struct {
	const char *suffix;	/* stripped from the guest path */
	char *const argv[3];
} module_decompressors[] = {
	{ ".xz", { "xz", "-dc", NULL } },
	{ ".zst", { "zstd", "-dc", NULL } },
	{ ".gz", { "gzip", "-dc", NULL } },
};

int initramfs_parse_compression(const char *s, enum initramfs_compression *c)
{
	for (size_t i = 0; i < ARRAY_SIZE(compressors); i++)
		if (strcmp(s, compressors[i].name) == 0) {
			*c = compressors[i].c;
			return 0;
		}
	return -EINVAL;
}

int initramfs_source_date(uint32_t *mtime, struct husk_error *err)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	unsigned long long v = 0;

	*mtime = 0;
	if (!s)
		return 0;
	if (!*s || strlen(s) > 10)
		goto bad;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	if (v > UINT32_MAX)
		goto bad;
	*mtime = (uint32_t)v;
	return 0;
bad:
	return husk_error_set(err, EINVAL,
			      "SOURCE_DATE_EPOCH='%s': want seconds since 1970 (0..4294967295)", s);
}

static int add_list_stream(struct image *img, FILE *f, const char *path,
			   struct husk_error *err)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	unsigned int lineno = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, f)) >= 0) {
		struct list_entry e;
		int r;

		lineno++;
		if (strlen(line) != (size_t)n)
			return husk_error_set(err, EINVAL, "%s: line %u: NUL byte", path, lineno);
		r = list_parse_line(line, lineno, &e, err);
		if (r == -ENOMEM)
			husk_error_set(err, ENOMEM, "out of memory");
		if (r < 0)
			return husk_error_prefix(err, "%s: ", path);
		if (r == 0)
			continue;
		r = image_add_list_entry(img, &e, path, err);
		list_entry_done(&e);
		if (r < 0)
			return r;
	}
	if (ferror(f))
		return husk_error_seterrno(err, errno, "%s: reading", path);
	return 0;
}

int image_add_list_file(struct image *img, const char *path,
			struct husk_error *err)
{
	_cleanup_fclose_ FILE *f = NULL;

	if (strcmp(path, "-") == 0)
		return add_list_stream(img, stdin, "<stdin>", err);
	f = fopen(path, "re");
	if (!f)
		return husk_error_seterrno(err, errno, "list %s", path);
	return add_list_stream(img, f, path, err);
}

static int read_whole_file(const char *path, char **buf, size_t *len,
			   struct husk_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int r;

	if (fd < 0)
		return husk_error_seterrno(err, errno, "%s", path);
	r = read_all_fd(fd, buf, len);
	if (r < 0)
		return husk_error_seterrno(err, -r, "reading %s", path);
	return 0;
}

/* Guest-side name of a module file: its compression suffix dropped. */
static int load_module(const char *path, char **guest_rel_in_out,
		       char **data, size_t *size, struct husk_error *err)
{
	char *rel = *guest_rel_in_out;
	size_t rel_len = strlen(rel);

	for (size_t i = 0; i < ARRAY_SIZE(module_decompressors); i++) {
		const char *sfx = module_decompressors[i].suffix;
		size_t sl = strlen(sfx);
		_cleanup_close_ int fd = -1;
		int r;

		if (rel_len <= sl || strcmp(rel + rel_len - sl, sfx) != 0)
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return husk_error_seterrno(err, errno, "module %s", path);
		r = spawn_capture(module_decompressors[i].argv, fd, data, size, err);
		if (r < 0)
			return husk_error_prefix(err, "decompressing module %s: ", path);
		rel[rel_len - sl] = '\0';
		return 0;
	}
	return read_whole_file(path, data, size, err);
}

struct module_list {
	char *text;
	size_t len;
};

/* Put one module file at /lib/modules/<rel> and name it in husk.list. */
static int add_module_file(struct image *img, struct module_list *ml,
			   const char *src, const char *rel,
			   struct husk_error *err)
{
	_cleanup_free_ char *guest = NULL;
	_cleanup_free_ char *rel_copy = strdup(rel);
	_cleanup_free_ char *origin = NULL;
	char *data = NULL, *nt;
	size_t size = 0;
	int r;

	if (!rel_copy || asprintf(&origin, "module %s", src) < 0)
		return husk_error_set(err, ENOMEM, "out of memory");
	r = load_module(src, &rel_copy, &data, &size, err);
	if (r < 0)
		return r;
	if (asprintf(&guest, "lib/modules/%s", rel_copy) < 0) {
		free(data);
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	r = image_add_data(img, guest, 0644, data, size, origin, err);
	if (r < 0)
		return r;
	nt = realloc(ml->text, ml->len + strlen(guest) + 3);
	if (!nt)
		return husk_error_set(err, ENOMEM, "out of memory");
	ml->text = nt;
	ml->len += (size_t)sprintf(ml->text + ml->len, "/%s\n", guest);
	return 0;
}

static int add_resolved_modules(struct image *img, struct module_list *ml,
				const char *dir, char *const *names, size_t n_names,
				struct husk_error *err)
{
	_cleanup_free_ char *dep_path = NULL;
	_cleanup_free_ char *buf = NULL;
	struct moddep md;
	size_t len;
	int r;

	if (asprintf(&dep_path, "%s/modules.dep", dir) < 0)
		return husk_error_set(err, ENOMEM, "out of memory");
	r = read_whole_file(dep_path, &buf, &len, err);
	if (r < 0)
		return r;
	r = moddep_parse(&md, buf, len, err);
	if (r < 0)
		return husk_error_prefix(err, "%s: ", dep_path);
	for (size_t i = 0; r >= 0 && i < n_names; i++) {
		r = moddep_resolve(&md, names[i], err);
		if (r < 0)
			husk_error_prefix(err, "%s: ", dep_path);
	}
	for (size_t i = 0; r >= 0 && i < md.n_order; i++) {
		const char *rel = md.mods[md.order[i]].path;
		_cleanup_free_ char *src = NULL;

		if (asprintf(&src, "%s/%s", dir, rel) < 0) {
			r = husk_error_set(err, ENOMEM, "out of memory");
			break;
		}
		r = add_module_file(img, ml, src, rel, err);
	}
	moddep_done(&md);
	return r;
}

int image_add_modules(struct image *img, const char *modules_dir,
		      char *const *names, size_t n_names,
		      char *const *files, size_t n_files,
		      struct husk_error *err)
{
	_cleanup_free_ char *text = NULL;
	struct module_list ml = { 0 };
	int r = 0;

	if (n_names && !modules_dir)
		return husk_error_set(err, EINVAL, "--module needs --kernel-modules DIR");
	if (n_names)
		r = add_resolved_modules(img, &ml, modules_dir, names, n_names, err);
	for (size_t i = 0; r >= 0 && i < n_files; i++) {
		const char *base = strrchr(files[i], '/');
		_cleanup_free_ char *rel = NULL;

		if (asprintf(&rel, "extra/%s", base ? base + 1 : files[i]) < 0)
			r = husk_error_set(err, ENOMEM, "out of memory");
		else
			r = add_module_file(img, &ml, files[i], rel, err);
	}
	text = ml.text;
	if (r < 0 || ml.len == 0)
		return r;
	r = image_add_data(img, HUSK_MODULE_LIST, 0644, TAKE_PTR(text), ml.len,
			   "module load list", err);
	return r;
}

static const struct compressor *find_compressor(enum initramfs_compression c)
{
	for (size_t i = 0; i < ARRAY_SIZE(compressors); i++)
		if (compressors[i].c == c)
			return &compressors[i];
	return NULL;
}

/* Archive into out_fd through the compressor, if any. */
static int write_compressed(struct image *img, int out_fd,
			    const struct compressor *comp, uint32_t mtime,
			    struct husk_error *err)
{
	struct husk_error werr = { 0 };
	int pipefd[2];
	pid_t pid;
	int r, rw;

	if (!comp->argv)
		return image_write_cpio(img, out_fd, mtime, err);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return husk_error_seterrno(err, errno, "pipe to %s", comp->name);
	r = spawn_filter(comp->argv, pipefd[0], out_fd, -1, &pid, err);
	safe_close(pipefd[0]);
	if (r < 0) {
		safe_close(pipefd[1]);
		return r;
	}
	/* the compressor's status explains a failed write better: check it first */
	rw = image_write_cpio(img, pipefd[1], mtime, &werr);
	safe_close(pipefd[1]);
	r = spawn_wait(pid, comp->argv[0], err);
	if (r < 0)
		return r;
	if (rw < 0)
		return husk_error_set(err, werr.code, "%s", werr.msg);
	return 0;
}

struct write_ctx {
	struct image *img;
	const struct compressor *comp;
	uint32_t mtime;
};

static int fill_compressed(int fd, void *data, struct husk_error *err)
{
	struct write_ctx *ctx = data;

	return write_compressed(ctx->img, fd, ctx->comp, ctx->mtime, err);
}

int initramfs_write_output(struct image *img, const char *output,
			   enum initramfs_compression c, uint32_t mtime,
			   struct husk_error *err)
{
	struct write_ctx ctx = { img, find_compressor(c), mtime };
	int r;

	if (!ctx.comp)
		return husk_error_set(err, EINVAL, "unknown compression");
	r = image_finalise(img, err);
	if (r < 0)
		return r;
	return husk_write_file_atomic(output, 0644, fill_compressed, &ctx, err);
}
