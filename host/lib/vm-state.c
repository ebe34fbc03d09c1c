// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Per-VM state directories under a state root, and reaping the ones whose
 * owner died.  Liveness is an flock on <dir>/lock held by the owner for the
 * VM's lifetime (the file also names the owner pid for people); the lock fd
 * is O_CLOEXEC so QEMU never inherits it and the lock dies with the owner.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vm-internal.h"

static const char *const vm_pid_files[] = { "qemu.pid", "vsockd.pid" };
static const char *const vm_log_files[] = { "console.log", "qemu.log", "vsockd.log" };

static int default_root(char **root)
{
	const char *env = getenv("HUSK_STATE_ROOT");
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		*root = strdup(env);
	else if (xdg && *xdg && xdg[0] == '/') {
		if (asprintf(root, "%s/husk", xdg) < 0)
			*root = NULL;
	} else
		*root = strdup("/run/husk");
	return *root ? 0 : -ENOMEM;
}

int vm_state_root(const struct husk_vm_config *cfg, char **root,
		  struct husk_error *err)
{
	if (cfg && cfg->state_root) {
		*root = strdup(cfg->state_root);
		if (!*root)
			return husk_error_set(err, ENOMEM, "out of memory");
	} else if (default_root(root) < 0) {
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	if ((*root)[0] != '/') {
		free(*root);
		*root = NULL;
		return husk_error_set(err, EINVAL, "state root must be an absolute path");
	}
	return 0;
}

HUSK_EXPORT int husk_state_root_default(char *buf, size_t size,
					struct husk_error *err)
{
	_cleanup_free_ char *root = NULL;
	int r = vm_state_root(NULL, &root, err);

	if (r < 0)
		return r;
	if (strlen(root) >= size)
		return husk_error_set(err, ENAMETOOLONG, "state root %s: buffer too small", root);
	strcpy(buf, root);
	return 0;
}

/* mkdir -p; the last component 0700, the parents 0755. */
static int mkdir_parents(const char *path, struct husk_error *err)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return husk_error_set(err, ENAMETOOLONG, "state root %s: too long", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return husk_error_seterrno(err, errno, "mkdir %s", buf);
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return husk_error_seterrno(err, errno, "mkdir %s", buf);
	return 0;
}

/* Does /proc/<pid>/cmdline mention dir?  Guards against a reused pid. */
static bool process_mentions(pid_t pid, const char *dir)
{
	char path[64], buf[8192];
	int n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = read_small_file(AT_FDCWD, path, buf, sizeof(buf));
	if (n <= 0)
		return false;
	for (int i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return strstr(buf, dir) != NULL;
}

static void kill_recorded_process(int dirfd, const char *dir, const char *pid_file)
{
	_cleanup_close_ int pidfd = -1;
	char buf[32];
	long pid;

	if (read_small_file(dirfd, pid_file, buf, sizeof(buf)) <= 0)
		return;
	pid = strtol(buf, NULL, 10);
	if (pid <= 1 || pid > INT_MAX)
		return;
	/* Open first, then check: the pidfd pins the process we checked. */
	pidfd = pidfd_open((pid_t)pid, 0);
	if (pidfd < 0 || !process_mentions((pid_t)pid, dir))
		return;
	vm_process_terminate(pidfd, 0, false);
}

void vm_state_remove(const char *dir, bool keep_logs)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *parent = NULL;
	const char *base;
	DIR *d;
	struct dirent *de;

	if (!keep_logs) {
		parent = strdup(dir);
		if (!parent)
			return;
		*strrchr(parent, '/') = '\0';
		base = strrchr(dir, '/') + 1;
		fd = open(*parent ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0)
			rm_rf_at(fd, base);
		return;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	d = fdopendir(TAKE_FD(fd));
	if (!d)
		return;
	while ((de = readdir(d))) {
		bool is_log = false;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(vm_log_files); i++)
			is_log |= !strcmp(de->d_name, vm_log_files[i]);
		if (!is_log)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* Reap one entry of the root if its owner is gone; 1 when reaped. */
static int reap_entry(int rootfd, const char *root, const char *name)
{
	_cleanup_close_ int dirfd = -1, lockfd = -1;
	_cleanup_free_ char *dir = NULL;
	bool keep_logs;

	dirfd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return 0;
	lockfd = openat(dirfd, "lock", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (lockfd < 0)
		return 0;	/* kept logs, or not ours */
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0)
		return 0;	/* its owner is alive */
	if (asprintf(&dir, "%s/%s", root, name) < 0) {
		dir = NULL;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(vm_pid_files); i++)
		kill_recorded_process(dirfd, dir, vm_pid_files[i]);
	keep_logs = faccessat(dirfd, "keep-logs", F_OK, 0) == 0;
	vm_state_remove(dir, keep_logs);
	return 1;
}

static int reap_root(int rootfd, const char *root)
{
	_cleanup_close_ int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	struct dirent *de;
	int reaped = 0;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(TAKE_FD(fd));
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		reaped += reap_entry(rootfd, root, de->d_name);
	}
	closedir(d);
	return reaped;
}

HUSK_EXPORT int husk_state_reap(const char *state_root, struct husk_error *err)
{
	_cleanup_free_ char *root = NULL;
	_cleanup_close_ int rootfd = -1;
	struct husk_vm_config cfg = { .state_root = state_root };
	int r;

	r = vm_state_root(&cfg, &root, err);
	if (r < 0)
		return r;
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return errno == ENOENT ? 0 : husk_error_seterrno(err, errno, "state root %s", root);
	r = reap_root(rootfd, root);
	if (r < 0)
		return husk_error_seterrno(err, -r, "reading state root %s", root);
	return r;
}

static int create_locked_dir(int rootfd, const char *tmp, int *lock_fd_out,
			     bool keep_logs, struct husk_error *err)
{
	_cleanup_close_ int dirfd = -1, lockfd = -1;
	char pid[32];
	int r;

	if (mkdirat(rootfd, tmp, 0700) < 0)
		return husk_error_seterrno(err, errno, "mkdir %s", tmp);
	dirfd = openat(rootfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return husk_error_seterrno(err, errno, "open %s", tmp);
	lockfd = openat(dirfd, "lock", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			0600);
	if (lockfd < 0)
		return husk_error_seterrno(err, errno, "create %s/lock", tmp);
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0)
		return husk_error_seterrno(err, errno, "lock %s/lock", tmp);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (write(lockfd, pid, strlen(pid)) != (ssize_t)strlen(pid))
		return husk_error_seterrno(err, errno ? errno : EIO, "write %s/lock", tmp);
	if (keep_logs) {
		r = write_small_file(dirfd, "keep-logs", "");
		if (r < 0)
			return husk_error_seterrno(err, -r, "write %s/keep-logs", tmp);
	}
	*lock_fd_out = TAKE_FD(lockfd);
	return 0;
}

int vm_state_create(const char *root, const char *name, bool keep_logs,
		    char **dir_out, int *lock_fd_out, struct husk_error *err)
{
	_cleanup_close_ int rootfd = -1, lockfd = -1;
	char tmp[VM_NAME_MAX + 32];
	uint32_t rnd = 0;
	int r;

	r = mkdir_parents(root, err);
	if (r < 0)
		return r;
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return husk_error_seterrno(err, errno, "state root %s", root);
	reap_root(rootfd, root);

	/* Build under a hidden name and rename once locked, so a concurrent
	 * reaper never sees an unlocked half-made VM directory. */
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)now_ms() ^ (uint32_t)getpid();
	snprintf(tmp, sizeof(tmp), ".new-%s-%08x", name, rnd);
	r = create_locked_dir(rootfd, tmp, &lockfd, keep_logs, err);
	if (r < 0) {
		rm_rf_at(rootfd, tmp);
		return husk_error_prefix(err, "state root %s: ", root);
	}
	if (renameat2(rootfd, tmp, rootfd, name, RENAME_NOREPLACE) < 0) {
		int e = errno;

		rm_rf_at(rootfd, tmp);
		if (e == EEXIST)
			return husk_error_set(err, EEXIST, "VM '%s' already exists in %s",
					      name, root);
		return husk_error_seterrno(err, e, "rename %s/%s", root, tmp);
	}
	if (asprintf(dir_out, "%s/%s", root, name) < 0) {
		*dir_out = NULL;
		rm_rf_at(rootfd, name);
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	*lock_fd_out = TAKE_FD(lockfd);
	return 0;
}
