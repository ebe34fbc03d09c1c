// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The new process between clone and execve.  It runs in a copy of the
 * agent, so it only makes async-signal-safe calls (no malloc, no stdio):
 * paths are built in stack buffers, and a failed step is sent to the
 * parent as a sync message naming it, then _exit(127).
 *
 * Init process: join/unshare the remaining namespaces, mount the rootfs
 * and the spec's mounts, make /dev, pivot_root, sysctls, mask and protect
 * paths, hostname; then, like an exec'd process: rlimits, cwd, stdio,
 * identity and capabilities, wait for the go, execve.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "internal.h"

#define CHILD_PATH_MAX 4096
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ------------------------------------------------------------------------ */
/* Async-signal-safe string helpers                                          */

/* Append s to buf (size bytes, len used), truncating; always terminated. */
static void str_append(char *buf, size_t size, size_t *len, const char *s)
{
	while (*s && *len + 1 < size)
		buf[(*len)++] = *s++;
	buf[*len] = '\0';
}

/*
 * Send "part part part" with errno e to the parent and exit.  The parts
 * are a NULL-terminated list of strings.
 */
__attribute__((noreturn, sentinel))
static void child_fail(int sync_fd, int e, ...)
{
	struct sync_msg msg = { .type = SYNC_ERROR, .value = e };
	size_t len = 0;
	const char *part;
	va_list ap;

	va_start(ap, e);
	while ((part = va_arg(ap, const char *)))
		str_append(msg.text, sizeof(msg.text), &len, part);
	va_end(ap);
	(void)!send(sync_fd, &msg, sizeof(msg), MSG_NOSIGNAL);
	_exit(127);
}

static void child_send(int sync_fd, int type, int value)
{
	struct sync_msg msg = { .type = type, .value = value };

	if (send(sync_fd, &msg, sizeof(msg), MSG_NOSIGNAL) < 0)
		_exit(127);
}

/* Block until the parent sends `type`; a closed socket means give up. */
static void child_wait(int sync_fd, int type)
{
	struct sync_msg msg;
	ssize_t n;

	do {
		n = recv(sync_fd, &msg, sizeof(msg), 0);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(msg) || msg.type != type)
		_exit(127);
}

/* "/proc/self/fd/N" for fd, the way to name an opened mount point. */
static void fd_path(char buf[32], int fd)
{
	char digits[12];
	int i = sizeof(digits);
	size_t len = 0;

	digits[--i] = '\0';
	do {
		digits[--i] = (char)('0' + fd % 10);
		fd /= 10;
	} while (fd && i > 0);
	str_append(buf, 32, &len, "/proc/self/fd/");
	str_append(buf, 32, &len, digits + i);
}

/* ------------------------------------------------------------------------ */
/* Namespaces                                                                */

static void join_namespaces(const struct child_plan *plan, const int *fds)
{
	/* user first: the other namespaces are then owned by it */
	static const enum ns_kind order[] = {
		NS_USER, NS_IPC, NS_UTS, NS_NET, NS_PID, NS_CGROUP, NS_MNT,
	};

	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		int fd = fds[order[i]];

		if (fd >= 0 && setns(fd, 0) < 0)
			child_fail(plan->sync_fd, errno, "setns ",
				   ns_kind_name(order[i]), NULL);
	}
}

/* ------------------------------------------------------------------------ */
/* Mounts                                                                    */

static void mount_or_fail(const struct child_plan *plan, const char *src,
			  const char *target, const char *type,
			  unsigned long flags, const char *data, const char *what)
{
	if (mount(src, target, type, flags, data) < 0)
		child_fail(plan->sync_fd, errno, what, " ", src ? src : type,
			   " on ", target, NULL);
}

/* Bind flags that a remount may not drop (locked in a user namespace). */
static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;

	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	return f;
}

/*
 * Paths inside the rootfs are resolved by the kernel as if the rootfs were
 * "/" (openat2 RESOLVE_IN_ROOT), so an image's symlinks cannot point a
 * mount or a new mount point outside it.
 */
static int open_in_root(int root_fd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT,
	};
	int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));

	return fd < 0 ? -errno : fd;
}

/* Create path's last component in its parent (both resolved in root). */
static int create_in_root(int root_fd, char *path, bool file)
{
	char *slash = strrchr(path, '/');
	int parent, r = 0;

	*slash = '\0';
	parent = open_in_root(root_fd, slash == path ? "/" : path,
			      O_PATH | O_DIRECTORY);
	*slash = '/';
	if (parent < 0)
		return parent;
	if (file) {
		/* O_NOFOLLOW: a dangling symlink here is refused, not followed */
		int fd = openat(parent, slash + 1, O_WRONLY | O_CREAT | O_NOFOLLOW |
				O_CLOEXEC | O_NOCTTY, 0644);

		if (fd < 0)
			r = -errno;
		else
			close(fd);
	} else if (mkdirat(parent, slash + 1, 0755) < 0 && errno != EEXIST) {
		r = -errno;
	}
	close(parent);
	return r;
}

/*
 * An O_PATH fd on dest inside the rootfs, creating what is missing:
 * directories, and a last empty file when `file` (for a file bind).
 */
static int mount_point(const struct child_plan *plan, int root_fd,
		       const char *dest, bool file)
{
	char prefix[CHILD_PATH_MAX];
	size_t len = strlen(dest);
	int fd = -1;

	if (len >= sizeof(prefix))
		child_fail(plan->sync_fd, ENAMETOOLONG, "mount point ", dest, NULL);
	memcpy(prefix, dest, len + 1);
	for (size_t i = 1; i <= len; i++) {
		bool last = i == len;
		char saved = prefix[i];
		int r;

		if (!last && saved != '/')
			continue;
		prefix[i] = '\0';
		fd = open_in_root(root_fd, prefix, O_PATH);
		if (fd == -ENOENT) {
			r = create_in_root(root_fd, prefix, last && file);
			fd = r < 0 ? r : open_in_root(root_fd, prefix, O_PATH);
		}
		if (fd < 0)
			child_fail(plan->sync_fd, -fd, "create mount point ",
				   plan->cfg->root_path, prefix, NULL);
		prefix[i] = saved;
		if (!last)
			close(fd);
	}
	return fd;
}

/* mount src on dest inside the rootfs. */
static void mount_in_root(const struct child_plan *plan, int root_fd,
			  const char *src, const char *dest, bool file,
			  const char *type, unsigned long flags, const char *data,
			  const char *what)
{
	int fd = mount_point(plan, root_fd, dest, file);
	char target[32];

	fd_path(target, fd);
	if (mount(src, target, type, flags, data) < 0)
		child_fail(plan->sync_fd, errno, what, " ", src ? src : type, " on ",
			   plan->cfg->root_path, dest, NULL);
	close(fd);
}

/* Change flags of what is mounted at dest (re-resolved: the new top). */
static void remount_in_root(const struct child_plan *plan, int root_fd,
			    const char *dest, unsigned long flags, const char *what)
{
	int fd = open_in_root(root_fd, dest, O_PATH);
	char target[32];

	if (fd < 0)
		child_fail(plan->sync_fd, -fd, what, " ", plan->cfg->root_path, dest,
			   NULL);
	fd_path(target, fd);
	if (flags & MS_REMOUNT)
		flags |= locked_flags(target);
	if (mount(NULL, target, NULL, flags, NULL) < 0)
		child_fail(plan->sync_fd, errno, what, " ", plan->cfg->root_path, dest,
			   NULL);
	close(fd);
}

static void mount_one(const struct child_plan *plan, int root_fd,
		      const struct mount_config *m)
{
	unsigned long extra = m->flags & ~(MS_BIND | MS_REC);
	const char *type = m->type;
	bool is_cgroup = type && (strcmp(type, "cgroup") == 0 ||
				  strcmp(type, "cgroup2") == 0);
	struct stat st;

	if (m->bind) {
		if (stat(m->source, &st) < 0)
			child_fail(plan->sync_fd, errno, "bind source ", m->source,
				   NULL);
		mount_in_root(plan, root_fd, m->source, m->destination,
			      !S_ISDIR(st.st_mode), NULL,
			      MS_BIND | (m->flags & MS_REC), NULL, "bind");
		/* a bind takes its flags only from a remount */
		if (extra)
			remount_in_root(plan, root_fd, m->destination,
					MS_REMOUNT | MS_BIND | extra, "remount");
	} else if (is_cgroup && !plan->cfg->ns[NS_CGROUP].enabled) {
		/* Without a cgroup namespace a cgroup2 mount would show the
		 * whole guest's tree: show the container's own leaf instead. */
		mount_in_root(plan, root_fd, plan->cgroup, m->destination, false,
			      NULL, MS_BIND, NULL, "bind");
		remount_in_root(plan, root_fd, m->destination,
				MS_REMOUNT | MS_BIND | extra, "remount");
	} else {
		/* A v1 "cgroup" mount from a default spec means the
		 * container's cgroup here, and the guest has only v2. */
		if (is_cgroup)
			type = "cgroup2";
		mount_in_root(plan, root_fd, m->source ? m->source : type,
			      m->destination, false, type, m->flags, m->data, "mount");
	}
	if (m->propagation)
		remount_in_root(plan, root_fd, m->destination, m->propagation,
				"set propagation of");
}

static bool spec_mounts(const struct container_config *cfg, const char *dest)
{
	for (size_t i = 0; i < cfg->n_mounts; i++)
		if (strcmp(cfg->mounts[i].destination, dest) == 0)
			return true;
	return false;
}

/* The devices every container gets, bound from the agent's /dev. */
static void make_default_devices(const struct child_plan *plan, int root_fd)
{
	static const char *const devices[] = {
		"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
		"/dev/urandom", "/dev/tty",
	};
	static const char *const links[][2] = {
		{ "fd", "/proc/self/fd" },
		{ "stdin", "/proc/self/fd/0" },
		{ "stdout", "/proc/self/fd/1" },
		{ "stderr", "/proc/self/fd/2" },
		{ "ptmx", "pts/ptmx" },
		{ "core", "/proc/kcore" },
	};
	int dev;

	for (size_t i = 0; i < ARRAY_SIZE(devices); i++)
		mount_in_root(plan, root_fd, devices[i], devices[i], true, NULL,
			      MS_BIND, NULL, "bind");
	dev = open_in_root(root_fd, "/dev", O_PATH | O_DIRECTORY);
	if (dev < 0)
		child_fail(plan->sync_fd, -dev, "open ", plan->cfg->root_path, "/dev",
			   NULL);
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][1], dev, links[i][0]) < 0 && errno != EEXIST)
			child_fail(plan->sync_fd, errno, "symlink ",
				   plan->cfg->root_path, "/dev/", links[i][0], NULL);
	close(dev);
}

static void make_spec_devices(const struct child_plan *plan, int root_fd)
{
	const struct container_config *cfg = plan->cfg;

	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct device_config *d = &cfg->devices[i];
		char dir[CHILD_PATH_MAX];
		const char *name;
		size_t len = 0;
		int parent;

		/* validated: absolute, under /dev, so a '/' exists past 0 */
		str_append(dir, sizeof(dir), &len, d->path);
		*strrchr(dir, '/') = '\0';
		name = strrchr(d->path, '/') + 1;
		parent = mount_point(plan, root_fd, dir, false);
		(void)unlinkat(parent, name, 0);
		if (mknodat(parent, name, d->type | d->mode,
			    makedev(d->major, d->minor)) < 0)
			child_fail(plan->sync_fd, errno, "mknod ", d->path, NULL);
		if (fchownat(parent, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
			child_fail(plan->sync_fd, errno, "chown ", d->path, NULL);
		close(parent);
	}
}

/* /dev as a fresh tmpfs with devpts, unless the spec mounts its own. */
static void setup_dev(const struct child_plan *plan, int root_fd)
{
	const struct container_config *cfg = plan->cfg;

	if (!spec_mounts(cfg, "/dev"))
		mount_in_root(plan, root_fd, "tmpfs", "/dev", false, "tmpfs",
			      MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k",
			      "mount");
	if (!spec_mounts(cfg, "/dev/pts"))
		mount_in_root(plan, root_fd, "devpts", "/dev/pts", false, "devpts",
			      MS_NOSUID | MS_NOEXEC,
			      "newinstance,ptmxmode=0666,mode=0620", "mount");
}

static void enter_rootfs(const struct child_plan *plan, const char *rootfs)
{
	if (chdir(rootfs) < 0)
		child_fail(plan->sync_fd, errno, "chdir ", rootfs, NULL);
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		/* the old root is now stacked under "."; drop it */
		if (umount2(".", MNT_DETACH) < 0)
			child_fail(plan->sync_fd, errno, "unmount the old root", NULL);
	} else if (errno == EINVAL) {
		/* The agent's own root is the initramfs, which pivot_root
		 * cannot move: move the rootfs over it and chroot instead. */
		mount_or_fail(plan, rootfs, "/", NULL, MS_MOVE, NULL, "move");
		if (chroot(".") < 0)
			child_fail(plan->sync_fd, errno, "chroot ", rootfs, NULL);
	} else {
		child_fail(plan->sync_fd, errno, "pivot_root ", rootfs, NULL);
	}
	if (chdir("/") < 0)
		child_fail(plan->sync_fd, errno, "chdir /", NULL);
}

static void mask_paths(const struct child_plan *plan)
{
	const struct container_config *cfg = plan->cfg;
	struct stat st;

	for (size_t i = 0; i < cfg->n_masked_paths; i++) {
		const char *p = cfg->masked_paths[i];

		if (stat(p, &st) < 0) {
			if (errno == ENOENT)
				continue;
			child_fail(plan->sync_fd, errno, "masked path ", p, NULL);
		}
		if (S_ISDIR(st.st_mode))
			mount_or_fail(plan, "tmpfs", p, "tmpfs", MS_RDONLY, NULL,
				      "mask with");
		else
			mount_or_fail(plan, "/dev/null", p, NULL, MS_BIND, NULL,
				      "mask with");
	}
	for (size_t i = 0; i < cfg->n_readonly_paths; i++) {
		const char *p = cfg->readonly_paths[i];

		if (access(p, F_OK) < 0) {
			if (errno == ENOENT)
				continue;
			child_fail(plan->sync_fd, errno, "readonly path ", p, NULL);
		}
		mount_or_fail(plan, p, p, NULL, MS_BIND | MS_REC, NULL, "bind");
		mount_or_fail(plan, NULL, p, NULL,
			      MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(p),
			      NULL, "remount read-only");
	}
}

static void setup_mounts(const struct child_plan *plan)
{
	const struct container_config *cfg = plan->cfg;
	const char *rootfs = cfg->root_path;
	int root_fd;

	/* nothing done below may propagate back to the agent */
	mount_or_fail(plan, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL,
		      "make private");
	mount_or_fail(plan, rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL, "bind");
	/* opened after the bind so mounts made through it land in the bind */
	root_fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		child_fail(plan->sync_fd, errno, "open ", rootfs, NULL);
	for (size_t i = 0; i < cfg->n_mounts; i++)
		mount_one(plan, root_fd, &cfg->mounts[i]);
	setup_dev(plan, root_fd);
	make_default_devices(plan, root_fd);
	make_spec_devices(plan, root_fd);
	close(root_fd);
	enter_rootfs(plan, rootfs);
	if (cfg->rootfs_propagation)
		mount_or_fail(plan, NULL, "/", NULL, cfg->rootfs_propagation, NULL,
			      "set propagation of");
}

/* Last, after sysctls were written through a still-writable /proc/sys. */
static void protect_paths(const struct child_plan *plan)
{
	mask_paths(plan);
	if (plan->cfg->root_readonly)
		mount_or_fail(plan, NULL, "/", NULL,
			      MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags("/"),
			      NULL, "remount read-only");
}

/* ------------------------------------------------------------------------ */
/* sysctl, hostname                                                          */

static void write_sysctls(const struct child_plan *plan)
{
	const struct container_config *cfg = plan->cfg;

	for (size_t i = 0; i < cfg->n_sysctls; i++) {
		char path[CHILD_PATH_MAX];
		size_t len = 0;
		ssize_t n;
		int fd;

		str_append(path, sizeof(path), &len, "/proc/sys/");
		for (const char *k = cfg->sysctls[i].key; *k && len + 1 < sizeof(path); k++)
			path[len++] = *k == '.' ? '/' : *k;
		path[len] = '\0';
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			child_fail(plan->sync_fd, errno, "sysctl ", path, NULL);
		n = write(fd, cfg->sysctls[i].value, strlen(cfg->sysctls[i].value));
		if (n < 0)
			child_fail(plan->sync_fd, errno, "sysctl ", path, NULL);
		close(fd);
	}
}

/* ------------------------------------------------------------------------ */
/* Process identity and exec (init and exec'd processes alike)              */

static void set_oom_score_adj(const struct child_plan *plan)
{
	char buf[16];
	int v = plan->proc->oom_score_adj, i = sizeof(buf) - 1, fd;
	bool neg = v < 0;

	if (!plan->proc->has_oom_score_adj)
		return;
	buf[i] = '\0';
	v = neg ? -v : v;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		buf[--i] = '-';
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf + i, strlen(buf + i)) < 0)
		child_fail(plan->sync_fd, errno, "write /proc/self/oom_score_adj",
			   NULL);
	close(fd);
}

static void set_rlimits(const struct child_plan *plan)
{
	const struct process_config *pc = plan->proc;

	for (size_t i = 0; i < pc->n_rlimits; i++) {
		struct rlimit rl = {
			.rlim_cur = pc->rlimits[i].soft,
			.rlim_max = pc->rlimits[i].hard,
		};

		if (setrlimit(pc->rlimits[i].resource, &rl) < 0)
			child_fail(plan->sync_fd, errno, "setrlimit", NULL);
	}
}

static void set_capabilities(const struct child_plan *plan)
{
	const struct caps_config *c = &plan->proc->caps;
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];
	uint64_t eff = c->effective & plan->cap_mask;
	uint64_t perm = c->permitted & plan->cap_mask;
	uint64_t inh = c->inheritable & plan->cap_mask;

	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(eff >> (32 * i));
		data[i].permitted = (uint32_t)(perm >> (32 * i));
		data[i].inheritable = (uint32_t)(inh >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		child_fail(plan->sync_fd, errno, "capset", NULL);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		child_fail(plan->sync_fd, errno, "clear ambient capabilities", NULL);
	for (int cap = 0; cap < 64; cap++) {
		if (!((c->ambient & plan->cap_mask) >> cap & 1))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			child_fail(plan->sync_fd, errno, "raise ambient capability",
				   NULL);
	}
}

static void drop_bounding(const struct child_plan *plan)
{
	for (int cap = 0; cap < 64; cap++) {
		if (!(plan->cap_mask >> cap & 1) || (plan->proc->caps.bounding >> cap & 1))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			child_fail(plan->sync_fd, errno, "drop bounding capability",
				   NULL);
	}
}

static void set_identity(const struct child_plan *plan)
{
	const struct process_config *pc = plan->proc;

	if (pc->has_caps) {
		drop_bounding(plan);
		/* keep the permitted set across setuid; capset then trims it */
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			child_fail(plan->sync_fd, errno, "PR_SET_KEEPCAPS", NULL);
	}
	if (setgroups(pc->n_gids, pc->gids) < 0)
		child_fail(plan->sync_fd, errno, "setgroups", NULL);
	if (setresgid(pc->gid, pc->gid, pc->gid) < 0)
		child_fail(plan->sync_fd, errno, "setresgid", NULL);
	if (setresuid(pc->uid, pc->uid, pc->uid) < 0)
		child_fail(plan->sync_fd, errno, "setresuid", NULL);
	if (pc->has_caps) {
		if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
			child_fail(plan->sync_fd, errno, "PR_SET_KEEPCAPS", NULL);
		set_capabilities(plan);
	}
	if (pc->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(plan->sync_fd, errno, "PR_SET_NO_NEW_PRIVS", NULL);
}

/* Hand the pty master to the agent over the sync socket. */
static void send_pty_master(const struct child_plan *plan, int master)
{
	struct sync_msg msg = { .type = SYNC_PTY };
	struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	memset(u.buf, 0, sizeof(u.buf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	if (sendmsg(plan->sync_fd, &mh, MSG_NOSIGNAL) < 0)
		child_fail(plan->sync_fd, errno, "send the pty master", NULL);
}

/*
 * A terminal comes from the container's own devpts, so the process sees
 * its tty under /dev/pts; the agent gets the master.  Returns the slave.
 */
static int open_container_pty(const struct child_plan *plan)
{
	const struct process_config *pc = plan->proc;
	int master, slave, unlock = 0;

	master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		child_fail(plan->sync_fd, errno, "open /dev/ptmx in the container", NULL);
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		child_fail(plan->sync_fd, errno, "unlock the pty", NULL);
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		child_fail(plan->sync_fd, errno, "open the pty slave", NULL);
	/* the process owns its terminal, so it can reopen $(tty) as its user */
	if (fchown(slave, pc->uid, (gid_t)-1) < 0)
		child_fail(plan->sync_fd, errno, "chown the pty slave to the process's uid",
			   NULL);
	if (pc->rows && pc->cols) {
		struct winsize ws = { .ws_row = pc->rows, .ws_col = pc->cols };

		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			child_fail(plan->sync_fd, errno, "TIOCSWINSZ", NULL);
	}
	send_pty_master(plan, master);
	close(master);
	return slave;
}

/*
 * Put the stdio fds on 0, 1, 2.  They are first moved above 2 so one
 * landing on another's number cannot be clobbered; dup2 then gives copies
 * without O_CLOEXEC.
 */
static void set_stdio(const struct child_plan *plan)
{
	int fds[3], tty = -1;

	if (setsid() < 0)
		child_fail(plan->sync_fd, errno, "setsid", NULL);
	if (plan->proc->terminal) {
		tty = open_container_pty(plan);
		if (ioctl(tty, TIOCSCTTY, 0) < 0)
			child_fail(plan->sync_fd, errno, "TIOCSCTTY", NULL);
	}
	for (int i = 0; i < 3; i++) {
		int src = tty >= 0 ? tty : plan->stdio[i];

		fds[i] = src < 0 ? -1 : fcntl(src, F_DUPFD_CLOEXEC, 3);
		if (src >= 0 && fds[i] < 0)
			child_fail(plan->sync_fd, errno, "dup stdio", NULL);
	}
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0 && dup2(fds[i], i) < 0)
			child_fail(plan->sync_fd, errno, "dup2 stdio", NULL);
}

static const char *env_path(char *const *env)
{
	for (; env && *env; env++)
		if (strncmp(*env, "PATH=", 5) == 0)
			return *env + 5;
	return DEFAULT_PATH;
}

/* execve argv[0], searched in PATH when it has no '/'. */
__attribute__((noreturn))
static void exec_process(const struct child_plan *plan)
{
	const struct process_config *pc = plan->proc;
	const char *prog = pc->args[0];
	int saved = ENOENT;

	if (strchr(prog, '/')) {
		execve(prog, pc->args, pc->env);
		child_fail(plan->sync_fd, errno, "exec ", prog, NULL);
	}
	for (const char *dir = env_path(pc->env); ; ) {
		size_t dlen = strcspn(dir, ":");
		char path[CHILD_PATH_MAX];

		if (dlen + strlen(prog) + 2 <= sizeof(path)) {
			memcpy(path, dir, dlen);
			path[dlen] = '/';
			memcpy(path + dlen + 1, prog, strlen(prog) + 1);
			execve(dlen ? path : prog, pc->args, pc->env);
			if (errno == EACCES)
				saved = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR)
				child_fail(plan->sync_fd, errno, "exec ", path, NULL);
		}
		if (!dir[dlen])
			break;
		dir += dlen + 1;
	}
	child_fail(plan->sync_fd, saved, "exec ", prog, " (searched PATH)", NULL);
}

/* The steps every process takes last, then execve. */
__attribute__((noreturn))
static void finish_and_exec(const struct child_plan *plan, bool wait_go)
{
	set_oom_score_adj(plan);
	set_rlimits(plan);
	if (chdir(plan->proc->cwd) < 0)
		child_fail(plan->sync_fd, errno, "chdir ", plan->proc->cwd, NULL);
	set_stdio(plan);
	set_identity(plan);
	if (wait_go) {
		child_send(plan->sync_fd, SYNC_READY, 0);
		child_wait(plan->sync_fd, SYNC_GO);
	}
	exec_process(plan);
}

/* Restore what the agent may have changed for itself. */
static void reset_signals(void)
{
	sigset_t all;
	struct sigaction dfl = { .sa_handler = SIG_DFL };

	for (int sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &dfl, NULL);
	sigemptyset(&all);
	(void)sigprocmask(SIG_SETMASK, &all, NULL);
}

void child_run_init(struct child_plan *plan)
{
	const struct container_config *cfg = plan->cfg;

	reset_signals();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(plan->sync_fd, errno, "PR_SET_PDEATHSIG", NULL);
	if (plan->wait_mapped) {
		child_wait(plan->sync_fd, SYNC_MAPPED);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			child_fail(plan->sync_fd, errno,
				   "become root in the user namespace", NULL);
	}
	join_namespaces(plan, plan->join_fds);
	if (plan->unshare_cgroupns && unshare(CLONE_NEWCGROUP) < 0)
		child_fail(plan->sync_fd, errno, "unshare the cgroup namespace", NULL);
	setup_mounts(plan);
	write_sysctls(plan);
	protect_paths(plan);
	if (cfg->hostname && sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
		child_fail(plan->sync_fd, errno, "sethostname ", cfg->hostname, NULL);
	finish_and_exec(plan, true);
}

void child_run_exec(struct child_plan *plan)
{
	pid_t pid;

	reset_signals();
	join_namespaces(plan, plan->join_fds);
	/* setns(pid) applies to children only: fork once more, report the
	 * pid and leave; the agent is a subreaper and adopts the process. */
	pid = fork();
	if (pid < 0)
		child_fail(plan->sync_fd, errno, "fork into the pid namespace", NULL);
	if (pid > 0) {
		child_send(plan->sync_fd, SYNC_PID, pid);
		_exit(0);
	}
	finish_and_exec(plan, false);
}
