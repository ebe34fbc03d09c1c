// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "init.h"
#include "log.h"

struct early_mount {
	const char *source;
	const char *target;
	const char *fstype;
	unsigned long flags;
	const char *data;
	mode_t mode;
};

static const struct early_mount early_mounts[] = {
	{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555 },
	{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555 },
	{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0755 },
	{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
	  "newinstance,ptmxmode=0666,mode=0620,gid=5", 0755 },
	{ "shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777 },
	{ "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0755 },
	{ "cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	  "nsdelegate", 0755 },
};

static const struct {
	const char *target;
	const char *path;
} dev_links[] = {
	{ "/proc/self/fd", "/dev/fd" },
	{ "/proc/self/fd/0", "/dev/stdin" },
	{ "/proc/self/fd/1", "/dev/stdout" },
	{ "/proc/self/fd/2", "/dev/stderr" },
};

static int early_mount_one(const struct early_mount *m)
{
	if (mkdir(m->target, m->mode) < 0 && errno != EEXIST) {
		log_error("mkdir %s: %m", m->target);
		return -errno;
	}
	if (mount(m->source, m->target, m->fstype, m->flags, m->data) < 0) {
		/* The kernel may have mounted devtmpfs itself (DEVTMPFS_MOUNT). */
		if (errno == EBUSY)
			return 0;
		log_error("mount %s on %s: %m", m->fstype, m->target);
		return -errno;
	}
	return 0;
}

static int dev_link(const char *target, const char *path)
{
	if (symlink(target, path) < 0 && errno != EEXIST) {
		log_error("symlink %s -> %s: %m", path, target);
		return -errno;
	}
	return 0;
}

/*
 * devtmpfs's /dev/ptmx belongs to the initial devpts instance; bind the new
 * instance's ptmx over it.  A bind mount (not unlink + symlink) because
 * devtmpfs is one superblock shared with every other mount of it.
 */
static int dev_ptmx(void)
{
	if (mount("/dev/pts/ptmx", "/dev/ptmx", NULL, MS_BIND, NULL) < 0) {
		log_error("bind /dev/pts/ptmx on /dev/ptmx: %m");
		return -errno;
	}
	return 0;
}

int agent_init_mounts(void)
{
	int failed = 0;

	for (size_t i = 0; i < ARRAY_SIZE(early_mounts); i++)
		if (early_mount_one(&early_mounts[i]) < 0)
			failed++;
	for (size_t i = 0; i < ARRAY_SIZE(dev_links); i++)
		if (dev_link(dev_links[i].target, dev_links[i].path) < 0)
			failed++;
	if (dev_ptmx() < 0)
		failed++;
	return failed;
}

static int write_file_at(int dirfd, const char *name, const char *text)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		return -errno;
	return 0;
}

int agent_init_cgroup_controllers(const char *cgroup_dir)
{
	_cleanup_close_ int dfd = open(cgroup_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	char buf[512], *save = NULL;
	int failed = 0;

	if (dfd < 0) {
		log_error("open %s: %m", cgroup_dir);
		return -errno;
	}
	_cleanup_close_ int cfd = openat(dfd, "cgroup.controllers", O_RDONLY | O_CLOEXEC);
	if (cfd < 0) {
		log_error("%s/cgroup.controllers: %m", cgroup_dir);
		return -errno;
	}
	ssize_t n = read(cfd, buf, sizeof(buf) - 1);
	if (n < 0) {
		log_error("%s/cgroup.controllers: %m", cgroup_dir);
		return -errno;
	}
	buf[n] = '\0';
	/* One write per controller, so one refusal does not hide the others. */
	for (char *c = strtok_r(buf, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
		char req[64];
		int r;

		snprintf(req, sizeof(req), "+%s", c);
		r = write_file_at(dfd, "cgroup.subtree_control", req);
		if (r < 0) {
			log_warn("%s: enabling controller %s: %s", cgroup_dir, c, strerror(-r));
			failed++;
		}
	}
	return failed;
}

int agent_init_loopback(void)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {};

	if (fd < 0) {
		log_error("loopback: socket: %m");
		return -errno;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		log_error("loopback: SIOCGIFFLAGS: %m");
		return -errno;
	}
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
		log_error("loopback: SIOCSIFFLAGS: %m");
		return -errno;
	}
	return 0;
}

static int load_module(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		log_error("module %s: %m", path);
		return -errno;
	}
	if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST) {
		log_error("module %s: finit_module: %m", path);
		return -errno;
	}
	log_debug("module %s loaded", path);
	return 0;
}

static bool is_extra_module(const char *path)
{
	return !strncmp(path, AGENT_EXTRA_MODULE_DIR, strlen(AGENT_EXTRA_MODULE_DIR));
}

int agent_init_modules(const char *list_path, enum agent_modules which)
{
	_cleanup_fclose_ FILE *f = fopen(list_path, "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	int failed = 0;

	if (!f) {
		if (errno != ENOENT)
			log_error("%s: %m", list_path);
		return errno == ENOENT ? 0 : -errno;
	}
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (is_extra_module(line) != (which == AGENT_MODULES_EXTRA))
			continue;
		if (load_module(line) < 0)
			failed++;
	}
	return failed;
}

pid_t agent_init_modules_async(const char *list_path)
{
	_cleanup_fclose_ FILE *f = fopen(list_path, "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	bool any = false;
	pid_t pid;

	while (f && !any && getline(&line, &cap, f) > 0)
		any = is_extra_module(line);
	if (!any)
		return 0;
	pid = fork();
	if (pid < 0) {
		log_error("fork for the module loader: %m");
		return -errno;
	}
	if (pid == 0)
		_exit(agent_init_modules(list_path, AGENT_MODULES_EXTRA) ? 1 : 0);
	return pid;
}

void agent_shutdown(int pid1, int status)
{
	sync();
	if (!pid1)
		exit(status);
	/* Give processes a chance to flush, then make sure nothing survives. */
	kill(-1, SIGTERM);
	usleep(200 * 1000);
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	sync();
	reboot(RB_POWER_OFF);
	/* reboot() only returns on failure; PID 1 must not exit. */
	log_error("power off failed: %m");
	for (;;)
		pause();
}
