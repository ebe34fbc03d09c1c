// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk-mkinitramfs: the list parser, modules.dep resolution, the newc writer
 * (read back by a small independent parser), reproducibility, compression,
 * failure hygiene, and the PVH note check / payload extraction.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <elf.h>
#include <cmocka.h>

#include "husk-common/cleanup.h"
#include "../../initramfs/build.h"
#include "../../initramfs/elfnote.h"
#include "../../initramfs/list.h"
#include "../../initramfs/moddep.h"
#include "../../initramfs/vmlinux.h"

static char tmpdir[] = "/tmp/husk-test-mkinitramfs.XXXXXX";

/* ---- helpers ---------------------------------------------------------- */

static char *tpath(const char *fmt, ...)
{
	static char bufs[8][4096];
	static int next;
	char *b = bufs[next++ % 8];
	int n = snprintf(b, 4096, "%s/", tmpdir);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b + n, (size_t)(4096 - n), fmt, ap);
	va_end(ap);
	return b;
}

static void write_file(const char *path, const void *data, size_t len)
{
	_cleanup_free_ char *dir = strdup(path);
	char cmd[4200];
	FILE *f;

	assert_non_null(dir);
	*strrchr(dir, '/') = '\0';
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
	assert_int_equal(system(cmd), 0);
	f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_text(const char *path, const char *text)
{
	write_file(path, text, strlen(text));
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	if (!f)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int setup_tmp(void **state)
{
	strcpy(tmpdir, "/tmp/husk-test-mkinitramfs.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run a shell command; returns its exit status, stderr captured to a file. */
static int run(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The tool built alongside this test: $(BUILD)/tests/.. /bin/husk-mkinitramfs. */
static const char *tool(void)
{
	static char path[4096];
	char self[4000];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	assert_true(n > 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(path, sizeof(path), "%s/../bin/husk-mkinitramfs", self);
	return path;
}

/* ---- a small independent newc reader ------------------------------------ */

struct cpio_rec {
	char name[256];
	uint32_t ino, mode, uid, gid, nlink, mtime, size, rmaj, rmin;
	size_t hdr_off;
	const char *data;
};

static uint32_t hex8(const char *p)
{
	char b[9];

	memcpy(b, p, 8);
	b[8] = '\0';
	return (uint32_t)strtoul(b, NULL, 16);
}

/* Parses the whole archive; fails the test on any malformation. */
static size_t cpio_parse(const char *buf, size_t len, struct cpio_rec *recs, size_t max)
{
	size_t off = 0, n = 0;

	for (;;) {
		struct cpio_rec r = { 0 };
		uint32_t namesize;

		assert_true(off + 110 <= len);
		assert_memory_equal(buf + off, "070701", 6);
		r.hdr_off = off;
		r.ino = hex8(buf + off + 6);
		r.mode = hex8(buf + off + 14);
		r.uid = hex8(buf + off + 22);
		r.gid = hex8(buf + off + 30);
		r.nlink = hex8(buf + off + 38);
		r.mtime = hex8(buf + off + 46);
		r.size = hex8(buf + off + 54);
		r.rmaj = hex8(buf + off + 78);
		r.rmin = hex8(buf + off + 86);
		namesize = hex8(buf + off + 94);
		assert_true(namesize > 0 && namesize < sizeof(r.name));
		assert_true(off + 110 + namesize <= len);
		memcpy(r.name, buf + off + 110, namesize);
		assert_int_equal(r.name[namesize - 1], '\0');
		off = (off + 110 + namesize + 3) & ~(size_t)3;
		assert_true(off + r.size <= len);
		r.data = buf + off;
		off = (off + r.size + 3) & ~(size_t)3;
		if (strcmp(r.name, "TRAILER!!!") == 0)
			break;
		assert_true(n < max);
		recs[n++] = r;
	}
	assert_int_equal(off, len);
	return n;
}

static const struct cpio_rec *find_rec(const struct cpio_rec *recs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(recs[i].name, name) == 0)
			return &recs[i];
	return NULL;
}

/* ---- list parser ---------------------------------------------------------- */

static void test_list_every_type(void **state)
{
	struct husk_error err = { 0 };
	struct list_entry e;

	setenv("HUSK_TEST_DIR", "/opt/x", 1);
	assert_int_equal(list_parse_line("file /bin/sh ${HUSK_TEST_DIR}/sh 0755 0 0 /bin/ash bin//dash\n",
					 3, &e, &err), 1);
	assert_int_equal(e.type, LIST_FILE);
	assert_string_equal(e.name, "bin/sh");
	assert_string_equal(e.location, "/opt/x/sh");
	assert_int_equal(e.mode, S_IFREG | 0755);
	assert_int_equal(e.n_links, 2);
	assert_string_equal(e.links[0], "bin/ash");
	assert_string_equal(e.links[1], "bin/dash");
	assert_int_equal(e.line, 3);
	list_entry_done(&e);

	assert_int_equal(list_parse_line("dir /dev 0700 12 34", 1, &e, &err), 1);
	assert_int_equal(e.type, LIST_DIR);
	assert_int_equal(e.mode, S_IFDIR | 0700);
	assert_int_equal(e.uid, 12);
	assert_int_equal(e.gid, 34);
	list_entry_done(&e);

	assert_int_equal(list_parse_line("nod /dev/console 0600 0 5 c 5 1", 1, &e, &err), 1);
	assert_int_equal(e.mode, S_IFCHR | 0600);
	assert_int_equal(e.rdev_major, 5);
	assert_int_equal(e.rdev_minor, 1);
	assert_int_equal(e.gid, 5);
	list_entry_done(&e);

	assert_int_equal(list_parse_line("nod /dev/vda 0660 0 6 b 254 0", 1, &e, &err), 1);
	assert_int_equal(e.mode, S_IFBLK | 0660);
	list_entry_done(&e);

	assert_int_equal(list_parse_line("slink /bin/busybox ../sbin/bb 0777 0 0", 1, &e, &err), 1);
	assert_int_equal(e.mode, S_IFLNK | 0777);
	assert_string_equal(e.location, "../sbin/bb");
	list_entry_done(&e);

	assert_int_equal(list_parse_line("pipe /run/fifo 0644 1 1", 1, &e, &err), 1);
	assert_int_equal(e.mode, S_IFIFO | 0644);
	list_entry_done(&e);

	assert_int_equal(list_parse_line("sock /run/s\t0600\t0  0\r\n", 1, &e, &err), 1);
	assert_int_equal(e.mode, S_IFSOCK | 0600);
	list_entry_done(&e);

	assert_int_equal(list_parse_line("dir / 0755 0 0", 1, &e, &err), 1);
	assert_string_equal(e.name, ".");
	list_entry_done(&e);

	assert_int_equal(list_parse_line("", 1, &e, &err), 0);
	assert_int_equal(list_parse_line("   \t\n", 1, &e, &err), 0);
	assert_int_equal(list_parse_line("# file /x y 0 0 0", 1, &e, &err), 0);
	assert_int_equal(err.code, 0);
}

static void test_list_malformed(void **state)
{
	static const struct {
		const char *line;
		const char *needle;
	} bad[] = {
		{ "fiel /x /y 0644 0 0", "unknown type 'fiel'" },
		{ "file /x /y 0644 0", "file takes 5 fields, got 4" },
		{ "dir /x 0755 0", "dir takes 4 fields, got 3" },
		{ "dir /x 0755 0 0 extra", "dir takes 4 fields, got 5" },
		{ "nod /x 0600 0 0 c 5", "nod takes 7 fields" },
		{ "slink /x", "slink takes 5 fields" },
		{ "pipe /x 0644 0 0 0", "pipe takes 4 fields" },
		{ "sock /x", "sock takes 4 fields" },
		{ "dir /x 0789 0 0", "invalid mode '0789'" },
		{ "dir /x 10000 0 0", "invalid mode '10000'" },
		{ "dir /x rwx 0 0", "invalid mode 'rwx'" },
		{ "dir /x 0755 -1 0", "invalid uid '-1'" },
		{ "dir /x 0755 0 4294967296", "invalid gid '4294967296'" },
		{ "dir /x 0755 0 0x1", "invalid gid '0x1'" },
		{ "nod /x 0600 0 0 d 5 1", "invalid dev_type 'd'" },
		{ "nod /x 0600 0 0 c five 1", "invalid major 'five'" },
		{ "nod /x 0600 0 0 c 5 -1", "invalid minor '-1'" },
		{ "dir /a/../b 0755 0 0", "invalid name '/a/../b'" },
		{ "dir /a/./b 0755 0 0", "invalid name" },
		{ "file / /y 0644 0 0", "only a dir may be the root" },
		{ "file /x ${HUSK_TEST_UNSET_VAR}/y 0644 0 0", "HUSK_TEST_UNSET_VAR is not set" },
		{ "file /x /y 0644 0 0 ../z", "invalid hard link name '../z'" },
	};

	unsetenv("HUSK_TEST_UNSET_VAR");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct husk_error err = { 0 };
		struct list_entry e = { 0 };
		char want_line[32];
		int r = list_parse_line(bad[i].line, (unsigned int)(i + 40), &e, &err);

		snprintf(want_line, sizeof(want_line), "line %zu: ", i + 40);
		if (r >= 0 || !strstr(err.msg, bad[i].needle) || !strstr(err.msg, want_line))
			fail_msg("'%s' -> r=%d msg='%s' (want '%s')", bad[i].line, r, err.msg,
				 bad[i].needle);
		assert_true(err.code > 0);
	}
}

static void test_list_file_errors_name_the_line(void **state)
{
	struct husk_error err = { 0 };
	struct image img = { 0 };

	write_text(tpath("a.list"), "# comment\n\ndir /x 0755 0 0\nfile /y %s 0644 0 0\n");
	assert_true(image_add_list_file(&img, tpath("a.list"), &err) < 0);
	assert_non_null(strstr(err.msg, "a.list: line 4: "));
	image_done(&img);

	husk_error_clear(&err);
	write_text(tpath("b.list"), "dir /x 0755 0 0\n\nfile /y /nonexistent/husk 0644 0 0\n");
	assert_int_equal(image_add_list_file(&img, tpath("b.list"), &err), -ENOENT);
	assert_non_null(strstr(err.msg, "b.list: line 3: /nonexistent/husk"));
	image_done(&img);

	husk_error_clear(&err);
	write_text(tpath("c.list"), "file /y /tmp 0644 0 0\n");
	assert_true(image_add_list_file(&img, tpath("c.list"), &err) < 0);
	assert_non_null(strstr(err.msg, "line 1: /tmp: not a regular file"));
	image_done(&img);

	husk_error_clear(&err);
	assert_int_equal(image_add_list_file(&img, tpath("missing.list"), &err), -ENOENT);
	assert_non_null(strstr(err.msg, "missing.list"));
	image_done(&img);
}

/* ---- modules.dep ---------------------------------------------------------- */

static const char *fake_dep =
	"kernel/net/vsock.ko:\n"
	"kernel/drivers/virtio_ring.ko:\n"
	"kernel/drivers/virtio.ko: kernel/drivers/virtio_ring.ko\n"
	"kernel/net/vsock_common.ko.xz: kernel/net/vsock.ko kernel/drivers/virtio.ko kernel/drivers/virtio_ring.ko\n"
	"kernel/net/vsock-virtio.ko: kernel/net/vsock_common.ko.xz kernel/net/vsock.ko kernel/drivers/virtio.ko kernel/drivers/virtio_ring.ko\n"
	"kernel/fs/loop_a.ko: kernel/fs/loop_b.ko\n"
	"kernel/fs/loop_b.ko: kernel/fs/loop_a.ko\n"
	"kernel/fs/uses_loop.ko: kernel/fs/loop_a.ko\n";

static const char *order_name(struct moddep *md, size_t i)
{
	return md->mods[md->order[i]].name;
}

static void test_moddep_order(void **state)
{
	struct husk_error err = { 0 };
	struct moddep md;

	assert_int_equal(moddep_parse(&md, fake_dep, strlen(fake_dep), &err), 0);
	assert_int_equal(moddep_resolve(&md, "vsock_virtio", &err), 0);
	assert_int_equal(md.n_order, 5);
	assert_string_equal(order_name(&md, 0), "virtio_ring");
	assert_string_equal(order_name(&md, 1), "virtio");
	assert_string_equal(order_name(&md, 2), "vsock");
	assert_string_equal(order_name(&md, 3), "vsock_common");
	assert_string_equal(order_name(&md, 4), "vsock_virtio");
	/* asking again, or for a dependency, adds nothing; by path works too */
	assert_int_equal(moddep_resolve(&md, "vsock-virtio.ko", &err), 0);
	assert_int_equal(moddep_resolve(&md, "kernel/drivers/virtio.ko", &err), 0);
	assert_int_equal(md.n_order, 5);
	moddep_done(&md);
}

static void test_moddep_errors(void **state)
{
	struct husk_error err = { 0 };
	struct moddep md;
	const char *dangling = "a.ko: b.ko\n";
	const char *twice = "a.ko:\nb.ko:\na.ko:\n";
	const char *nocolon = "a.ko\n";
	const char *escape = "../x.ko:\n";

	assert_int_equal(moddep_parse(&md, fake_dep, strlen(fake_dep), &err), 0);
	assert_int_equal(moddep_resolve(&md, "no_such_mod", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "module no_such_mod: not found"));
	husk_error_clear(&err);
	assert_int_equal(moddep_resolve(&md, "uses_loop", &err), -ELOOP);
	assert_non_null(strstr(err.msg, "dependency cycle through kernel/fs/loop_"));
	assert_int_equal(md.n_order, 0);
	moddep_done(&md);

	husk_error_clear(&err);
	assert_int_equal(moddep_parse(&md, dangling, strlen(dangling), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "dependency b.ko of a.ko has no line"));
	husk_error_clear(&err);
	assert_int_equal(moddep_parse(&md, twice, strlen(twice), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "lines 1 and 3: a.ko listed twice"));
	husk_error_clear(&err);
	assert_int_equal(moddep_parse(&md, nocolon, strlen(nocolon), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "line 1: no ':'"));
	husk_error_clear(&err);
	assert_int_equal(moddep_parse(&md, escape, strlen(escape), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "line 1: invalid module path"));
}

/* A fake modules tree on disk, one module xz-compressed. */
static void make_fake_tree(void)
{
	static const char *const plain[] = {
		"kernel/net/vsock.ko", "kernel/drivers/virtio_ring.ko",
		"kernel/drivers/virtio.ko", "kernel/net/vsock-virtio.ko",
		"kernel/fs/loop_a.ko", "kernel/fs/loop_b.ko", "kernel/fs/uses_loop.ko",
	};

	write_text(tpath("mods/modules.dep"), fake_dep);
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++)
		write_text(tpath("mods/%s", plain[i]), plain[i]);
	write_text(tpath("mods/kernel/net/vsock_common.ko"), "common module body");
	assert_int_equal(run("xz --check=crc32 %s", tpath("mods/kernel/net/vsock_common.ko")), 0);
}

static void test_modules_into_image(void **state)
{
	/* vsock is also a dependency of vsock_virtio: listed once */
	char *const names[] = { "vsock_virtio", "vsock" };
	_cleanup_free_ char *fwd = strdup(tpath("extra/fwd.ko"));
	char *const files[] = { fwd };
	struct husk_error err = { 0 };
	struct image img = { 0 };
	const struct cpio_rec *r;
	struct cpio_rec recs[64];
	_cleanup_free_ char *buf = NULL;
	size_t len, n;

	make_fake_tree();
	write_text(files[0], "out of tree");
	assert_int_equal(image_add_modules(&img, tpath("mods"), names, 2, files, 1, &err), 0);
	assert_int_equal(initramfs_write_output(&img, tpath("m.cpio"), COMPRESS_NONE, 0, &err), 0);
	image_done(&img);

	buf = slurp(tpath("m.cpio"), &len);
	assert_non_null(buf);
	n = cpio_parse(buf, len, recs, ARRAY_SIZE(recs));
	r = find_rec(recs, n, "lib/modules/husk.list");
	assert_non_null(r);
	assert_int_equal(r->mode, S_IFREG | 0644);
	assert_memory_equal(r->data,
			    "/lib/modules/kernel/drivers/virtio_ring.ko\n"
			    "/lib/modules/kernel/drivers/virtio.ko\n"
			    "/lib/modules/kernel/net/vsock.ko\n"
			    "/lib/modules/kernel/net/vsock_common.ko\n"
			    "/lib/modules/kernel/net/vsock-virtio.ko\n"
			    "/lib/modules/extra/fwd.ko\n", r->size);
	r = find_rec(recs, n, "lib/modules/kernel/net/vsock_common.ko");
	assert_non_null(r);
	assert_int_equal(r->size, strlen("common module body"));
	assert_memory_equal(r->data, "common module body", r->size);
	assert_null(find_rec(recs, n, "lib/modules/kernel/fs/loop_a.ko"));
	assert_non_null(find_rec(recs, n, "lib/modules/kernel/drivers"));
}

static void test_modules_missing(void **state)
{
	char *const unknown[] = { "not_there" };
	char *const names[] = { "vsock" };
	struct husk_error err = { 0 };
	struct image img = { 0 };

	make_fake_tree();
	assert_int_equal(image_add_modules(&img, tpath("mods"), unknown, 1, NULL, 0, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "module not_there: not found"));
	image_done(&img);

	/* a corrupt compressed module names the module and the tool */
	husk_error_clear(&err);
	write_text(tpath("mods/kernel/net/vsock_common.ko.xz"), "not xz at all");
	assert_true(image_add_modules(&img, tpath("mods"), (char *const[]){ "vsock_common" }, 1,
				      NULL, 0, &err) < 0);
	assert_non_null(strstr(err.msg, "decompressing module"));
	assert_non_null(strstr(err.msg, "vsock_common.ko.xz: xz failed"));
	image_done(&img);

	husk_error_clear(&err);
	assert_int_equal(unlink(tpath("mods/kernel/net/vsock.ko")), 0);
	assert_int_equal(image_add_modules(&img, tpath("mods"), names, 1, NULL, 0, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "mods/kernel/net/vsock.ko"));
	image_done(&img);

	husk_error_clear(&err);
	assert_int_equal(image_add_modules(&img, NULL, names, 1, NULL, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--kernel-modules"));
	image_done(&img);
}

/* ---- the archive ------------------------------------------------------------ */

static void write_sample_list(void)
{
	write_text(tpath("src/init"), "#!/bin/sh\necho hi\n");
	write_text(tpath("src/blob"), "0123456789");
	write_text(tpath("s.list"),
		   "file /init ${HUSK_TEST_SRC}/init 0755 0 0\n"
		   "file /usr/bin/a ${HUSK_TEST_SRC}/blob 0711 5 6 /bin/b /usr/bin/0\n"
		   "slink /bin/sh /init 0777 0 0\n"
		   "dir /tmp 1777 0 0\n"
		   "nod /dev/console 0600 0 5 c 5 1\n"
		   "pipe /run/p 0600 0 0\n"
		   "sock /run/s 0600 0 0\n");
	setenv("HUSK_TEST_SRC", tpath("src"), 1);
}

static void test_cpio_contents(void **state)
{
	struct cpio_rec recs[64];
	_cleanup_free_ char *buf = NULL;
	const struct cpio_rec *r, *a, *b, *z;
	size_t len, n;

	write_sample_list();
	assert_int_equal(run("SOURCE_DATE_EPOCH=1700000000 %s -c none -o %s %s", tool(),
			     tpath("s.cpio"), tpath("s.list")), 0);
	buf = slurp(tpath("s.cpio"), &len);
	assert_non_null(buf);
	n = cpio_parse(buf, len, recs, ARRAY_SIZE(recs));

	/* sorted, unique inodes except hard links, one mtime */
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(recs[i - 1].name, recs[i].name) < 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(recs[i].mtime, 1700000000);

	r = find_rec(recs, n, "init");
	assert_non_null(r);
	assert_int_equal(r->mode, S_IFREG | 0755);
	assert_int_equal(r->size, 18);
	assert_memory_equal(r->data, "#!/bin/sh\necho hi\n", 18);

	r = find_rec(recs, n, "bin/sh");
	assert_non_null(r);
	assert_int_equal(r->mode, S_IFLNK | 0777);
	assert_memory_equal(r->data, "/init", r->size);
	assert_int_equal(r->size, 5);

	/* hard links: one inode, nlink 3, data only on the last in archive order */
	a = find_rec(recs, n, "bin/b");
	b = find_rec(recs, n, "usr/bin/0");
	z = find_rec(recs, n, "usr/bin/a");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(z);
	assert_int_equal(a->ino, z->ino);
	assert_int_equal(b->ino, z->ino);
	assert_int_equal(z->nlink, 3);
	assert_int_equal(a->size, 0);
	assert_int_equal(b->size, 0);
	assert_int_equal(z->size, 10);
	assert_int_equal(z->uid, 5);
	assert_int_equal(z->gid, 6);
	assert_int_equal(z->mode, S_IFREG | 0711);

	r = find_rec(recs, n, "dev/console");
	assert_non_null(r);
	assert_int_equal(r->mode, S_IFCHR | 0600);
	assert_int_equal(r->rmaj, 5);
	assert_int_equal(r->rmin, 1);
	assert_int_equal(find_rec(recs, n, "tmp")->mode, S_IFDIR | 01777);
	assert_int_equal(find_rec(recs, n, "run/p")->mode, S_IFIFO | 0600);
	assert_int_equal(find_rec(recs, n, "run/s")->mode, S_IFSOCK | 0600);

	/* parents nobody listed */
	r = find_rec(recs, n, "usr");
	assert_non_null(r);
	assert_int_equal(r->mode, S_IFDIR | 0755);
	assert_int_equal(r->uid, 0);
	assert_non_null(find_rec(recs, n, "usr/bin"));
	assert_non_null(find_rec(recs, n, "dev"));
	assert_int_equal(n, 14);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (recs[i].ino == recs[j].ino)
				assert_true(recs[i].ino == z->ino);

	/* GNU cpio agrees */
	assert_int_equal(run("cpio -it --quiet < %s > %s", tpath("s.cpio"), tpath("s.txt")), 0);
	_cleanup_free_ char *listing = slurp(tpath("s.txt"), &len);

	assert_non_null(listing);
	assert_string_equal(listing,
			    "bin\nbin/b\nbin/sh\ndev\ndev/console\ninit\nrun\nrun/p\nrun/s\n"
			    "tmp\nusr\nusr/bin\nusr/bin/0\nusr/bin/a\n");
}

static void test_reproducible(void **state)
{
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
	size_t la, lb, lc;

	write_sample_list();
	assert_int_equal(run("%s -o %s %s", tool(), tpath("r1.gz"), tpath("s.list")), 0);
	/* touch every source: host mtimes must not leak into the archive */
	assert_int_equal(run("sleep 1; touch %s/* && %s -o %s %s", tpath("src"), tool(),
			     tpath("r2.gz"), tpath("s.list")), 0);
	assert_int_equal(run("SOURCE_DATE_EPOCH=86400 %s -o %s %s", tool(), tpath("r3.gz"),
			     tpath("s.list")), 0);
	a = slurp(tpath("r1.gz"), &la);
	b = slurp(tpath("r2.gz"), &lb);
	c = slurp(tpath("r3.gz"), &lc);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	assert_true(la != lc || memcmp(a, c, la) != 0);
	/* gzip -n: no name, mtime 0 in the gzip header */
	assert_memory_equal(a + 4, "\0\0\0\0", 4);
	assert_int_equal(a[3] & 0x08, 0);

	/* with another SOURCE_DATE_EPOCH only the mtime fields differ */
	_cleanup_free_ char *u1 = NULL, *u3 = NULL;

	assert_int_equal(run("zcat %s > %s && zcat %s > %s", tpath("r1.gz"), tpath("r1.cpio"),
			     tpath("r3.gz"), tpath("r3.cpio")), 0);
	u1 = slurp(tpath("r1.cpio"), &la);
	u3 = slurp(tpath("r3.cpio"), &lc);
	assert_int_equal(la, lc);
	struct cpio_rec r1[64], r3[64];
	size_t n1 = cpio_parse(u1, la, r1, 64), n3 = cpio_parse(u3, lc, r3, 64);

	assert_int_equal(n1, n3);
	for (size_t i = 0; i < n1; i++) {
		assert_int_equal(r1[i].mtime, 0);
		assert_int_equal(r3[i].mtime, 86400);
		/* blank the mtime field (header offset 46, 8 hex digits) */
		assert_int_equal(r1[i].hdr_off, r3[i].hdr_off);
		memset(u1 + r1[i].hdr_off + 46, '0', 8);
		memset(u3 + r3[i].hdr_off + 46, '0', 8);
	}
	assert_memory_equal(u1, u3, la);
}

static void test_compressions(void **state)
{
	static const struct {
		const char *kind, *unpack;
	} kinds[] = {
		{ "gzip", "gzip -dc" }, { "xz", "xz -dc" }, { "zstd", "zstd -dcq" },
	};
	_cleanup_free_ char *plain = NULL;
	size_t lp;

	write_sample_list();
	assert_int_equal(run("%s -c none -o %s %s", tool(), tpath("c.none"), tpath("s.list")), 0);
	plain = slurp(tpath("c.none"), &lp);
	assert_non_null(plain);
	assert_memory_equal(plain, "070701", 6);
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		_cleanup_free_ char *out = NULL;
		size_t lo;

		assert_int_equal(run("%s -c %s -o %s.%s %s", tool(), kinds[i].kind, tpath("c"),
				     kinds[i].kind, tpath("s.list")), 0);
		assert_int_equal(run("%s < %s.%s > %s.%s.out", kinds[i].unpack, tpath("c"),
				     kinds[i].kind, tpath("c"), kinds[i].kind), 0);
		out = slurp(tpath("c.%s.out", kinds[i].kind), &lo);
		assert_int_equal(lo, lp);
		assert_memory_equal(out, plain, lp);
	}
	/* the kernel's xz decoder wants CRC32 (check id 1 in the stream flags) */
	_cleanup_free_ char *xz = NULL;

	xz = slurp(tpath("c.xz"), &lp);
	assert_int_equal(xz[7], 0x01);
	assert_int_equal(run("%s -c lz77 -o %s %s 2>/dev/null", tool(), tpath("c.bad"),
			     tpath("s.list")), 1);
}

static int count_entries(const char *dir)
{
	char cmd[4200];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void test_failures_leave_nothing(void **state)
{
	write_sample_list();
	make_fake_tree();
	assert_int_equal(mkdir(tpath("out"), 0755), 0);
	write_text(tpath("dup.list"), "dir /a 0755 0 0\n\ndir /a 0700 0 0\n");
	assert_int_equal(run("%s -o %s %s 2>%s", tool(), tpath("out/x.gz"), tpath("dup.list"),
			     tpath("dup.err")), 1);
	write_text(tpath("notdir.list"), "slink /a /b 0777 0 0\ndir /a/b 0755 0 0\n");
	assert_int_equal(run("%s -o %s %s 2>%s", tool(), tpath("out/x.gz"), tpath("notdir.list"),
			     tpath("notdir.err")), 1);
	assert_int_equal(run("%s -o %s -k %s -m nope %s 2>%s", tool(), tpath("out/x.gz"),
			     tpath("mods"), tpath("s.list"), tpath("mod.err")), 1);
	assert_int_equal(run("SOURCE_DATE_EPOCH=yesterday %s -o %s %s 2>/dev/null", tool(),
			     tpath("out/x.gz"), tpath("s.list")), 1);
	/* a compressor that fails: PATH without zstd */
	assert_int_equal(run("PATH=/nonexistent %s -c zstd -o %s %s 2>/dev/null", tool(),
			     tpath("out/x.zst"), tpath("s.list")), 1);
	assert_int_equal(count_entries(tpath("out")), 0);

	size_t len;
	_cleanup_free_ char *e1 = slurp(tpath("dup.err"), &len);
	_cleanup_free_ char *e2 = slurp(tpath("notdir.err"), &len);
	_cleanup_free_ char *e3 = slurp(tpath("mod.err"), &len);

	assert_non_null(strstr(e1, "dup.list: line 3: 'a' is already in the archive"));
	assert_non_null(strstr(e1, "line 1"));
	assert_non_null(strstr(e2, "notdir.list: line 2: parent 'a' of 'a/b' is not a directory"));
	assert_non_null(strstr(e3, "module nope: not found"));
}

/* ---- vmlinux ----------------------------------------------------------------- */

/* A minimal x86-64 ELF whose only program header is a PT_NOTE. */
static size_t fake_elf(unsigned char *buf, size_t cap, uint32_t note_type)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph = { 0 };
	Elf64_Nhdr nh = { .n_namesz = 4, .n_descsz = 4, .n_type = note_type };
	uint32_t entry = 0x1000123;
	size_t off = sizeof(eh) + sizeof(ph);

	assert_true(cap >= off + sizeof(nh) + 8 + 4096);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_machine = EM_X86_64;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(ph);
	eh.e_phnum = 1;
	ph.p_type = PT_NOTE;
	ph.p_offset = off;
	ph.p_filesz = sizeof(nh) + 8;
	memcpy(buf, &eh, sizeof(eh));
	memcpy(buf + sizeof(eh), &ph, sizeof(ph));
	memcpy(buf + off, &nh, sizeof(nh));
	memcpy(buf + off + sizeof(nh), "Xen", 4);
	memcpy(buf + off + sizeof(nh) + 4, &entry, 4);
	/* padding that compresses well, like a kernel's zero pages */
	memset(buf + off + sizeof(nh) + 8, 0, 4096);
	return off + sizeof(nh) + 8 + 4096;
}

static void test_elf_pvh_note(void **state)
{
	unsigned char buf[8192];
	struct husk_error err = { 0 };
	uint32_t entry = 0;
	size_t len = fake_elf(buf, sizeof(buf), XEN_ELFNOTE_PHYS32_ENTRY);

	assert_int_equal(elf_pvh_entry(buf, len, &entry, &err), 0);
	assert_int_equal(entry, 0x1000123);
	len = fake_elf(buf, sizeof(buf), 17);
	assert_int_equal(elf_pvh_entry(buf, len, &entry, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "no Xen PVH entry note"));
	husk_error_clear(&err);
	assert_int_equal(elf_pvh_entry(buf, 40, &entry, &err), -ENOEXEC);
	husk_error_clear(&err);
	assert_int_equal(elf_pvh_entry("MZ\x90\x00", 4, &entry, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "not an ELF"));
}

/* Extraction by magic scan from a fake compressed kernel, per format. */
static void test_vmlinux_extract(void **state)
{
	static const char *const packers[] = { "gzip -9", "xz --check=crc32", "zstd -q" };
	unsigned char elf[8192];
	size_t elf_len = fake_elf(elf, sizeof(elf), XEN_ELFNOTE_PHYS32_ENTRY);
	struct husk_error err = { 0 };
	uint32_t entry = 0;

	write_file(tpath("k/elf"), elf, elf_len);
	for (size_t i = 0; i < ARRAY_SIZE(packers); i++) {
		_cleanup_free_ char *out = NULL;
		size_t lo;

		/* junk before the payload and a size word after it, as in a bzImage */
		assert_int_equal(run("{ head -c 3000 /dev/zero; %s -c %s; printf 'SIZE'; } > %s",
				     packers[i], tpath("k/elf"), tpath("k/fake")), 0);
		husk_error_clear(&err);
		assert_int_equal(vmlinux_extract(tpath("k/fake"), tpath("k/vmlinux"), &entry, &err), 0);
		assert_int_equal(entry, 0x1000123);
		out = slurp(tpath("k/vmlinux"), &lo);
		assert_int_equal(lo, elf_len);
		assert_memory_equal(out, elf, elf_len);
	}
	/* an ELF input is checked and copied */
	assert_int_equal(vmlinux_extract(tpath("k/elf"), tpath("k/copy"), &entry, &err), 0);

	/* no PVH note anywhere: an error, and no output file */
	elf_len = fake_elf(elf, sizeof(elf), 17);
	write_file(tpath("k/nopvh"), elf, elf_len);
	assert_int_equal(run("gzip -c %s > %s", tpath("k/nopvh"), tpath("k/nopvh.gz")), 0);
	husk_error_clear(&err);
	assert_int_equal(vmlinux_extract(tpath("k/nopvh.gz"), tpath("k/out2"), &entry, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "no compressed payload decompressed"));
	assert_int_equal(access(tpath("k/out2"), F_OK), -1);
	assert_int_equal(count_entries(tpath("k")), 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_every_type),
		cmocka_unit_test(test_list_malformed),
		cmocka_unit_test_setup_teardown(test_list_file_errors_name_the_line, setup_tmp, teardown_tmp),
		cmocka_unit_test(test_moddep_order),
		cmocka_unit_test(test_moddep_errors),
		cmocka_unit_test_setup_teardown(test_modules_into_image, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_modules_missing, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_cpio_contents, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_reproducible, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_compressions, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_failures_leave_nothing, setup_tmp, teardown_tmp),
		cmocka_unit_test(test_elf_pvh_note),
		cmocka_unit_test_setup_teardown(test_vmlinux_extract, setup_tmp, teardown_tmp),
	};

	/* initramfs_write_output() feeds compressors through a pipe */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("mkinitramfs", tests, NULL, NULL);
}
