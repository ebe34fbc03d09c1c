// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "husk-common/fileio.h"
#include "elfnote.h"
#include "spawn.h"
#include "vmlinux.h"

/* Tries beyond this many magic matches are not worth the processes. */
#define MAX_CANDIDATES 64

struct payload_format {
	const char *name;
	const char *magic;
	size_t magic_len;
	char *const argv[5];
};

/* Trailing bytes after the stream (bzImage appends the size) are expected. */
static const struct payload_format formats[] = {
	{ "xz", "\xfd" "7zXZ\0", 6, { "xz", "-dc", "--single-stream", NULL } },
	{ "gzip", "\x1f\x8b\x08", 3, { "gzip", "-dc", NULL } },
	{ "zstd", "\x28\xb5\x2f\xfd", 4, { "zstd", "-dc", NULL } },
	{ "lz4", "\x02\x21\x4c\x18", 4, { "lz4", "-dc", NULL } },
	{ "lzma", "\x5d\x00\x00", 3, { "xz", "-dc", "--format=lzma", NULL } },
	{ "bzip2", "BZh", 3, { "bzip2", "-dc", NULL } },
};

struct candidate {
	size_t offset;
	const struct payload_format *fmt;
};

struct mapping {
	void *addr;
	size_t len;
};

static void unmapp(struct mapping *m)
{
	if (m->addr && m->addr != MAP_FAILED)
		munmap(m->addr, m->len);
}

static int map_fd(int fd, struct mapping *m, const char *what,
		  struct husk_error *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return husk_error_seterrno(err, errno, "%s", what);
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return husk_error_set(err, ENOEXEC, "%s: empty or not a regular file", what);
	m->len = (size_t)st.st_size;
	m->addr = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m->addr == MAP_FAILED)
		return husk_error_seterrno(err, errno, "mapping %s", what);
	return 0;
}

static const struct payload_format *format_at(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
		if (len >= formats[i].magic_len &&
		    memcmp(p, formats[i].magic, formats[i].magic_len) == 0)
			return &formats[i];
	return NULL;
}

/* The x86 boot protocol (>= 2.08) says exactly where the payload starts. */
static int bzimage_payload(const unsigned char *p, size_t len, struct candidate *c)
{
	uint32_t payload_offset;
	uint16_t version;
	size_t setup_sects, off;

	if (len < 0x250 || memcmp(p + 0x202, "HdrS", 4) != 0)
		return -ENOENT;
	memcpy(&version, p + 0x206, sizeof(version));
	if (version < 0x208)
		return -ENOENT;
	setup_sects = p[0x1f1] ? p[0x1f1] : 4;
	memcpy(&payload_offset, p + 0x248, sizeof(payload_offset));
	off = (setup_sects + 1) * 512 + payload_offset;
	if (off >= len)
		return -ENOENT;
	c->offset = off;
	c->fmt = format_at(p + off, len - off);
	return c->fmt ? 0 : -ENOENT;
}

static size_t find_candidates(const unsigned char *p, size_t len,
			      struct candidate *c, size_t max)
{
	size_t n = 0;

	if (bzimage_payload(p, len, &c[0]) == 0)
		n++;
	for (size_t off = 0; off < len && n < max; off++) {
		const struct payload_format *f = format_at(p + off, len - off);

		if (f && !(n > 0 && c[0].offset == off))
			c[n++] = (struct candidate){ off, f };
	}
	return n;
}

/* Decompress one candidate into out_fd and check the result is a PVH ELF. */
static int try_candidate(int in_fd, int out_fd, const struct candidate *c,
			 int quiet_fd, uint32_t *entry, struct husk_error *err)
{
	_cleanup_(unmapp) struct mapping m = { 0 };
	pid_t pid;
	int r;

	if (ftruncate(out_fd, 0) < 0 || lseek(out_fd, 0, SEEK_SET) < 0 ||
	    lseek(in_fd, (off_t)c->offset, SEEK_SET) < 0)
		return husk_error_seterrno(err, errno, "preparing to decompress");
	r = spawn_filter(c->fmt->argv, in_fd, out_fd, quiet_fd, &pid, err);
	if (r < 0)
		return r;
	/* its exit status is ignored: the bytes after the stream upset some tools */
	spawn_wait(pid, c->fmt->argv[0], NULL);
	r = map_fd(out_fd, &m, "decompressed kernel", err);
	if (r < 0)
		return r;
	return elf_pvh_entry(m.addr, m.len, entry, err);
}

static int copy_fd(int in_fd, int out_fd, struct husk_error *err)
{
	char buf[65536];
	ssize_t n;

	if (lseek(in_fd, 0, SEEK_SET) < 0)
		return husk_error_seterrno(err, errno, "seeking");
	while ((n = read(in_fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(out_fd, buf, (size_t)n) != n)
			return husk_error_seterrno(err, errno, "copying the kernel");
	}
	return 0;
}

static int extract_into(int in_fd, const char *input, int out_fd,
			uint32_t *entry, struct husk_error *err)
{
	_cleanup_(unmapp) struct mapping m = { 0 };
	_cleanup_free_ struct candidate *c = NULL;
	_cleanup_close_ int null_fd = -1;
	size_t n;
	int r;

	r = map_fd(in_fd, &m, input, err);
	if (r < 0)
		return r;
	if (m.len >= 4 && memcmp(m.addr, "\177ELF", 4) == 0) {
		r = elf_pvh_entry(m.addr, m.len, entry, err);
		if (r < 0)
			return husk_error_prefix(err, "%s: ", input);
		return copy_fd(in_fd, out_fd, err);
	}

	c = calloc(MAX_CANDIDATES, sizeof(*c));
	if (!c)
		return husk_error_set(err, ENOMEM, "out of memory");
	n = find_candidates(m.addr, m.len, c, MAX_CANDIDATES);
	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null_fd < 0)
		return husk_error_seterrno(err, errno, "/dev/null");
	for (size_t i = 0; i < n; i++) {
		struct husk_error try_err = { 0 };

		if (try_candidate(in_fd, out_fd, &c[i], null_fd, entry, &try_err) == 0)
			return 0;
	}
	return husk_error_set(err, ENOEXEC,
			      "%s: no compressed payload decompressed to an ELF with a Xen PVH entry note (%zu candidates tried)",
			      input, n);
}

struct extract_ctx {
	int in_fd;
	const char *input;
	uint32_t *entry;
};

static int fill_extracted(int fd, void *data, struct husk_error *err)
{
	struct extract_ctx *ctx = data;

	return extract_into(ctx->in_fd, ctx->input, fd, ctx->entry, err);
}

int vmlinux_extract(const char *input, const char *output, uint32_t *entry,
		    struct husk_error *err)
{
	_cleanup_close_ int in_fd = open(input, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct extract_ctx ctx = { in_fd, input, entry };

	if (in_fd < 0)
		return husk_error_seterrno(err, errno, "kernel %s", input);
	return husk_write_file_atomic(output, 0644, fill_extracted, &ctx, err);
}
