// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cgroup v2 files, read and written whole.  Each helper names the file it
 * failed on; a controller the machine lacks is reported as such, never
 * silently skipped, when a limit needs it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "cgroup.h"

#define CGROUP_FILE_MAX 65536	/* memory.stat is the biggest we read */

static const char *const controllers[] = {
	"cpu", "cpuset", "io", "memory", "pids", "hugetlb",
};

/* Write a whole value to dir/file; -errno. */
static int write_file(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	size_t len = strlen(value);
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* Read dir/file into a malloc'ed NUL-terminated buffer. */
static int read_file(const char *dir, const char *file, char **out)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(CGROUP_FILE_MAX);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, CGROUP_FILE_MAX - 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0 || len + n == CGROUP_FILE_MAX - 1) {
			len += n;
			break;
		}
		len += n;
	}
	buf[len] = '\0';
	*out = TAKE_PTR(buf);
	return 0;
}

static int read_u64(const char *dir, const char *file, uint64_t *value)
{
	_cleanup_free_ char *buf = NULL;
	int r = read_file(dir, file, &buf);

	if (r < 0)
		return r;
	if (strncmp(buf, "max", 3) == 0) {
		*value = UINT64_MAX;
		return 0;
	}
	*value = strtoull(buf, NULL, 10);
	return 0;
}

int cgroup_read_key(const char *leaf, const char *file, const char *key,
		    uint64_t *value)
{
	_cleanup_free_ char *buf = NULL;
	size_t klen = strlen(key);
	int r = read_file(leaf, file, &buf);

	if (r < 0)
		return r;
	for (char *line = buf; line && *line; ) {
		char *nl = strchr(line, '\n');

		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			*value = strtoull(line + klen + 1, NULL, 10);
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

/* Turn on in dir's subtree_control each controller dir itself has. */
static void enable_controllers(const char *dir)
{
	_cleanup_free_ char *avail = NULL;

	if (read_file(dir, "cgroup.controllers", &avail) < 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		char word[32];
		const char *p = avail;
		size_t len = strlen(controllers[i]);
		bool found = false;

		while ((p = strstr(p, controllers[i]))) {
			bool start = p == avail || p[-1] == ' ';
			bool end = p[len] == ' ' || p[len] == '\n' || p[len] == '\0';

			if (start && end) {
				found = true;
				break;
			}
			p += len;
		}
		if (!found)
			continue;
		/* Best effort: a cgroup holding processes refuses (EBUSY),
		 * and a limit needing the controller then reports it. */
		snprintf(word, sizeof(word), "+%s", controllers[i]);
		(void)write_file(dir, "cgroup.subtree_control", word);
	}
}

static int make_dir(const char *path, struct husk_error *err)
{
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	return husk_error_seterrno(err, errno, "cgroup mkdir %s", path);
}

int cgroup_create(const char *root, const char *sandbox, const char *id,
		  char **leaf, struct husk_error *err)
{
	char husk[PATH_MAX], sb[PATH_MAX], ctr[PATH_MAX];
	struct statfs sfs;
	int r;

	if (snprintf(husk, sizeof(husk), "%s/husk", root) >= (int)sizeof(husk) ||
	    snprintf(sb, sizeof(sb), "%s/%s", husk, sandbox) >= (int)sizeof(sb) ||
	    snprintf(ctr, sizeof(ctr), "%s/%s", sb, id) >= (int)sizeof(ctr))
		return husk_error_set(err, ENAMETOOLONG, "cgroup path under %s too long",
				      root);
	if (statfs(root, &sfs) < 0)
		return husk_error_seterrno(err, errno, "cgroup root %s", root);
	/* e.g. the tmpfs of a cgroup v1 host: mkdir would make plain dirs */
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return husk_error_set(err, ENOTSUP,
				      "cgroup root %s is not a cgroup2 mount", root);
	if (access(husk, F_OK) < 0 || access(sb, F_OK) < 0)
		enable_controllers(root);
	r = make_dir(husk, err);
	if (r < 0)
		return r;
	enable_controllers(husk);
	r = make_dir(sb, err);
	if (r < 0)
		return r;
	enable_controllers(sb);
	if (mkdir(ctr, 0755) < 0) {
		int e = errno;

		/* a leftover leaf of an agent that died goes if it is empty */
		if (e != EEXIST || rmdir(ctr) < 0 || mkdir(ctr, 0755) < 0)
			return husk_error_seterrno(err, e, "cgroup mkdir %s", ctr);
	}
	*leaf = strdup(ctr);
	if (!*leaf) {
		rmdir(ctr);
		return husk_error_set(err, ENOMEM, "cgroup %s: out of memory", ctr);
	}
	return 0;
}

int cgroup_remove(const char *leaf, struct husk_error *err)
{
	char sb[PATH_MAX];
	char *slash;

	if (rmdir(leaf) < 0 && errno != ENOENT)
		return husk_error_seterrno(err, errno, "cgroup rmdir %s", leaf);
	snprintf(sb, sizeof(sb), "%s", leaf);
	slash = strrchr(sb, '/');
	if (slash) {
		*slash = '\0';
		/* Other containers of the sandbox keep it busy: fine. */
		(void)rmdir(sb);
	}
	return 0;
}

/* Write one limit; ENOENT means the controller is not enabled here. */
static int write_limit(const char *leaf, const char *file, const char *value,
		       struct husk_error *err)
{
	int r = write_file(leaf, file, value);

	if (r == -ENOENT) {
		char ctrl[16];

		snprintf(ctrl, sizeof(ctrl), "%.*s", (int)strcspn(file, "."), file);
		return husk_error_set(err, EOPNOTSUPP,
				      "cgroup %s: the %s controller is not available (no %s)",
				      leaf, ctrl, file);
	}
	if (r < 0)
		return husk_error_seterrno(err, -r, "cgroup %s/%s: write '%s'",
					   leaf, file, value);
	return 0;
}

static void format_limit(char *buf, size_t size, int64_t v)
{
	if (v < 0)
		snprintf(buf, size, "max");
	else
		snprintf(buf, size, "%" PRId64, v);
}

int cgroup_apply_resources(const char *leaf, const struct resources_config *rc,
			   struct husk_error *err)
{
	char v[64];
	int r = 0;

	/* cpuset before the others: it has no dependency, memory.swap.max
	 * after memory.max as the kernel checks nothing between them. */
	if (rc->cpuset_cpus)
		r = write_limit(leaf, "cpuset.cpus", rc->cpuset_cpus, err);
	if (r == 0 && rc->cpuset_mems)
		r = write_limit(leaf, "cpuset.mems", rc->cpuset_mems, err);
	if (r == 0 && rc->has_memory_max) {
		format_limit(v, sizeof(v), rc->memory_max);
		r = write_limit(leaf, "memory.max", v, err);
	}
	if (r == 0 && rc->has_memory_low) {
		format_limit(v, sizeof(v), rc->memory_low);
		r = write_limit(leaf, "memory.low", v, err);
	}
	if (r == 0 && rc->has_swap_max) {
		format_limit(v, sizeof(v), rc->swap_max);
		r = write_limit(leaf, "memory.swap.max", v, err);
	}
	if (r == 0 && rc->has_cpu_weight) {
		snprintf(v, sizeof(v), "%" PRIu64, rc->cpu_weight);
		r = write_limit(leaf, "cpu.weight", v, err);
	}
	if (r == 0 && rc->has_cpu_max) {
		if (rc->cpu_quota < 0)
			snprintf(v, sizeof(v), "max %" PRIu64, rc->cpu_period);
		else
			snprintf(v, sizeof(v), "%" PRId64 " %" PRIu64,
				 rc->cpu_quota, rc->cpu_period);
		r = write_limit(leaf, "cpu.max", v, err);
	}
	if (r == 0 && rc->has_pids_max) {
		format_limit(v, sizeof(v), rc->pids_max);
		r = write_limit(leaf, "pids.max", v, err);
	}
	if (r == 0 && rc->has_io_weight) {
		snprintf(v, sizeof(v), "default %" PRIu64, rc->io_weight);
		r = write_limit(leaf, "io.weight", v, err);
	}
	for (size_t i = 0; r == 0 && i < rc->n_hugetlb; i++) {
		char file[48];

		snprintf(file, sizeof(file), "hugetlb.%s.max", rc->hugetlb[i].pagesize);
		snprintf(v, sizeof(v), "%" PRIu64, rc->hugetlb[i].limit);
		r = write_limit(leaf, file, v, err);
	}
	return r;
}

int cgroup_open_procs(const char *leaf, struct husk_error *err)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.procs", leaf);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "open %s", path);
	return fd;
}

int cgroup_read_pids(const char *leaf, pid_t **pids, size_t *n,
		     struct husk_error *err)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ pid_t *v = NULL;
	size_t count = 0, cap = 0;
	int r = read_file(leaf, "cgroup.procs", &buf);

	if (r < 0)
		return husk_error_seterrno(err, -r, "cgroup %s/cgroup.procs", leaf);
	for (char *p = buf; *p; ) {
		char *end;
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			pid_t *nv = realloc(v, ncap * sizeof(*nv));

			if (!nv)
				return husk_error_set(err, ENOMEM, "cgroup %s: out of memory",
						      leaf);
			v = nv;
			cap = ncap;
		}
		v[count++] = (pid_t)pid;
		p = end + strspn(end, "\n");
	}
	*pids = TAKE_PTR(v);
	*n = count;
	return 0;
}

int cgroup_signal_all(const char *leaf, int sig, struct husk_error *err)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	int r;

	if (sig == SIGKILL) {
		r = write_file(leaf, "cgroup.kill", "1");
		if (r == 0)
			return 0;
		if (r != -ENOENT)	/* before Linux 5.14: walk the pids */
			return husk_error_seterrno(err, -r, "cgroup %s/cgroup.kill", leaf);
	}
	r = cgroup_read_pids(leaf, &pids, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (kill(pids[i], sig) < 0 && errno != ESRCH)
			return husk_error_seterrno(err, errno, "kill %d", (int)pids[i]);
	return 0;
}

int cgroup_freeze(const char *leaf, bool frozen, struct husk_error *err)
{
	int r = write_file(leaf, "cgroup.freeze", frozen ? "1" : "0");

	if (r < 0)
		return husk_error_seterrno(err, -r, "cgroup %s/cgroup.freeze", leaf);
	return 0;
}

bool cgroup_is_empty(const char *leaf)
{
	uint64_t populated = 1;

	if (cgroup_read_key(leaf, "cgroup.events", "populated", &populated) < 0)
		return false;
	return populated == 0;
}

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */

static void read_cpu_stats(const char *leaf, struct runtime_stats *st)
{
	st->has_cpu = cgroup_read_key(leaf, "cpu.stat", "usage_usec",
				      &st->cpu_usage_usec) == 0;
	if (!st->has_cpu)
		return;
	(void)cgroup_read_key(leaf, "cpu.stat", "user_usec", &st->cpu_user_usec);
	(void)cgroup_read_key(leaf, "cpu.stat", "system_usec", &st->cpu_system_usec);
	/* present only with the cpu controller */
	(void)cgroup_read_key(leaf, "cpu.stat", "nr_periods", &st->cpu_nr_periods);
	(void)cgroup_read_key(leaf, "cpu.stat", "nr_throttled", &st->cpu_nr_throttled);
	(void)cgroup_read_key(leaf, "cpu.stat", "throttled_usec",
			      &st->cpu_throttled_usec);
}

static void read_memory_stat_keys(const char *leaf, struct runtime_stats *st)
{
	_cleanup_free_ char *buf = NULL;

	if (read_file(leaf, "memory.stat", &buf) < 0)
		return;
	for (char *line = buf; *line && st->n_mem_stat < RUNTIME_STATS_MEM_KEYS; ) {
		struct runtime_stat_kv *kv = &st->mem_stat[st->n_mem_stat];
		size_t klen = strcspn(line, " \n");

		if (line[klen] == ' ' && klen < sizeof(kv->key)) {
			memcpy(kv->key, line, klen);
			kv->key[klen] = '\0';
			kv->value = strtoull(line + klen + 1, NULL, 10);
			st->n_mem_stat++;
		}
		line += strcspn(line, "\n");
		line += *line == '\n';
	}
}

static void read_memory_stats(const char *leaf, struct runtime_stats *st)
{
	st->has_memory = read_u64(leaf, "memory.current", &st->mem_current) == 0;
	if (!st->has_memory)
		return;
	(void)read_u64(leaf, "memory.max", &st->mem_max);
	(void)read_u64(leaf, "memory.peak", &st->mem_peak);	/* Linux >= 5.19 */
	(void)read_u64(leaf, "memory.swap.current", &st->swap_current);
	(void)read_u64(leaf, "memory.swap.max", &st->swap_max);
	(void)cgroup_read_key(leaf, "memory.events", "max", &st->mem_events_max);
	(void)cgroup_read_key(leaf, "memory.events", "oom", &st->mem_oom);
	(void)cgroup_read_key(leaf, "memory.events", "oom_kill", &st->mem_oom_kill);
	read_memory_stat_keys(leaf, st);
}

/* io.stat lines: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" */
static void read_io_stats(const char *leaf, struct runtime_stats *st)
{
	_cleanup_free_ char *buf = NULL;

	st->has_io = read_file(leaf, "io.stat", &buf) == 0;
	if (!st->has_io)
		return;
	for (char *line = strtok(buf, "\n"); line && st->n_io < RUNTIME_STATS_IO_DEVS;
	     line = strtok(NULL, "\n")) {
		struct runtime_io_dev *d = &st->io[st->n_io];
		unsigned int maj, min;
		int off = 0;

		if (sscanf(line, "%u:%u%n", &maj, &min, &off) != 2)
			continue;
		*d = (struct runtime_io_dev){ .major = maj, .minor = min };
		for (char *tok = line + off; *tok; ) {
			tok += strspn(tok, " ");
			if (sscanf(tok, "rbytes=%" SCNu64, &d->rbytes) != 1 &&
			    sscanf(tok, "wbytes=%" SCNu64, &d->wbytes) != 1 &&
			    sscanf(tok, "rios=%" SCNu64, &d->rios) != 1)
				(void)sscanf(tok, "wios=%" SCNu64, &d->wios);
			tok += strcspn(tok, " ");
		}
		st->n_io++;
	}
}

int cgroup_read_stats(const char *leaf, struct runtime_stats *st,
		      struct husk_error *err)
{
	memset(st, 0, sizeof(*st));
	if (access(leaf, F_OK) < 0)
		return husk_error_seterrno(err, errno, "cgroup %s", leaf);
	read_cpu_stats(leaf, st);
	read_memory_stats(leaf, st);
	st->has_pids = read_u64(leaf, "pids.current", &st->pids_current) == 0;
	if (st->has_pids)
		(void)read_u64(leaf, "pids.max", &st->pids_max);
	read_io_stats(leaf, st);
	return 0;
}
