// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Pods, on the sandbox's side: the init monitor of a pod sandbox shares
 * ROOT/SBID/shared with its VM; a member's monitor asks it ("join") to
 * bind the member's rootfs below that directory and create the container
 * there, then keeps its connection for the member's verbs, signals and
 * exit status.  The member leaves the VM when that connection ends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "oci.h"

int oci_pod_init(struct oci_pod *pod, int dir_fd, bool sandbox, struct husk_error *err)
{
	char link[64], dir[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", dir_fd);
	n = readlink(link, dir, sizeof(dir) - 1);
	if (n < 0)
		return husk_error_seterrno(err, errno, "state directory");
	dir[n] = '\0';
	for (size_t i = 0; i < OCI_POD_MAX_MEMBERS; i++)
		pod->members[i] = (struct oci_pod_member){ .conn = -1 };
	if (mkdirat(dir_fd, OCI_POD_SHARE_DIR, 0700) < 0 && errno != EEXIST)
		return husk_error_seterrno(err, errno, "mkdir %s/" OCI_POD_SHARE_DIR, dir);
	if (asprintf(&pod->share, "%s/" OCI_POD_SHARE_DIR, dir) < 0) {
		pod->share = NULL;
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	pod->sandbox = sandbox;
	return 0;
}

/* Entries of dir (unmounted, made by libhusk) and dir, never following a link. */
static void mount_points_remove(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d)
		return;
	fd = -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    unlinkat(dirfd(d), de->d_name, 0) < 0 && errno == EISDIR)
			(void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	closedir(d);
	(void)rmdir(dir);
}

/* shared/<id>/rootfs, shared/<id>/mounts and shared/<id>, as far as they exist. */
static void member_dirs_remove(const char *share, const char *id)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s/mounts", share, id);
	mount_points_remove(path);
	snprintf(path, sizeof(path), "%s/%s/rootfs", share, id);
	(void)rmdir(path);
	snprintf(path, sizeof(path), "%s/%s", share, id);
	(void)rmdir(path);
}

/* Bind the member's rootfs into the share (read-only when its root is). */
static int member_bind_rootfs(const char *share, const char *id, const struct husk_spec *spec,
			      char **mount_out, struct husk_error *err)
{
	_cleanup_free_ char *dir = NULL, *target = NULL;

	if (asprintf(&dir, "%s/%s", share, id) < 0 || asprintf(&target, "%s/rootfs", dir) < 0)
		return husk_error_set(err, ENOMEM, "out of memory");
	if (mkdir(dir, 0700) < 0)
		return husk_error_seterrno(err, errno, "mkdir %s", dir);
	if (mkdir(target, 0755) < 0) {
		int r = husk_error_seterrno(err, errno, "mkdir %s", target);

		member_dirs_remove(share, id);
		return r;
	}
	if (mount(husk_spec_rootfs(spec), target, NULL, MS_BIND | MS_REC, NULL) < 0) {
		int r = husk_error_seterrno(err, errno, "bind %s on %s", husk_spec_rootfs(spec),
					    target);

		member_dirs_remove(share, id);
		return r;
	}
	/* A bind takes its flags only from a remount. */
	if (husk_spec_rootfs_readonly(spec) &&
	    mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
		int r = husk_error_seterrno(err, errno, "remount %s read-only", target);

		(void)umount2(target, MNT_DETACH);
		member_dirs_remove(share, id);
		return r;
	}
	*mount_out = TAKE_PTR(target);
	return 0;
}

static void member_unbind(struct oci_pod *pod, struct oci_pod_member *mb)
{
	if (mb->mount && umount2(mb->mount, MNT_DETACH) < 0 && errno != EINVAL &&
	    errno != ENOENT)
		oci_warn("container %s: umount %s: %m", mb->id, mb->mount);
	if (mb->id)
		member_dirs_remove(pod->share, mb->id);
}

static void member_free(struct oci_pod *pod, struct oci_pod_member *mb)
{
	member_unbind(pod, mb);
	if (mb->conn >= 0)
		close(mb->conn);
	free(mb->id);
	free(mb->bundle);
	free(mb->mount);
	*mb = (struct oci_pod_member){ .conn = -1 };
}

static struct oci_pod_member *member_by_id(struct oci_pod *pod, const char *id)
{
	if (!pod->share)
		return NULL;
	for (size_t i = 0; i < OCI_POD_MAX_MEMBERS; i++)
		if (pod->members[i].conn >= 0 && !strcmp(pod->members[i].id, id))
			return &pod->members[i];
	return NULL;
}

struct oci_pod_member *oci_pod_find(struct oci_pod *pod, const char *id)
{
	return member_by_id(pod, id);
}

struct oci_pod_member *oci_pod_find_running(struct oci_pod *pod, const char *id,
					    struct husk_error *err)
{
	struct oci_pod_member *mb = member_by_id(pod, id);

	if (!mb)
		husk_error_set(err, ENOENT, "container %s is not in this sandbox", id);
	else if (!mb->started || mb->exited)
		husk_error_set(err, EINVAL, "cannot exec in a stopped container: container not running");
	return mb && mb->started && !mb->exited ? mb : NULL;
}

static void send_text(int conn, const char *text)
{
	(void)oci_ctl_send(conn, text, strlen(text), NULL, 0);
}

static void send_error(int conn, const struct husk_error *err, int r)
{
	char buf[HUSK_ERROR_MSG_MAX + 32];

	snprintf(buf, sizeof(buf), "err %d %s", r < 0 ? -r : EIO,
		 err->msg[0] ? err->msg : strerror(r < 0 ? -r : EIO));
	send_text(conn, buf);
}

struct join_request {
	const char *id, *bundle;
	bool tty;
	struct husk_process_options opts;
};

static int join_parse(const char *msg, size_t len, struct join_request *jr,
		      struct husk_error *err)
{
	for (const char *p = msg + strlen(msg) + 1; p < msg + len; p += strlen(p) + 1) {
		if (!strncmp(p, "id=", 3))
			jr->id = p + 3;
		else if (!strncmp(p, "bundle=", 7))
			jr->bundle = p + 7;
		else if (!strncmp(p, "tty=", 4))
			jr->tty = !strcmp(p + 4, "1");
		else if (!strncmp(p, "size=", 5) &&
			 sscanf(p + 5, "%hu %hu", &jr->opts.rows, &jr->opts.cols) == 2)
			continue;
		else
			return husk_error_set(err, EINVAL, "join: bad item '%s'", p);
	}
	if (!jr->id || !oci_id_valid(jr->id) || !jr->bundle || jr->bundle[0] != '/')
		return husk_error_set(err, EINVAL, "join: needs a valid id and an absolute bundle");
	return 0;
}

/* Only the sandbox's owner (or root) may bind host directories into its VM. */
static int join_allowed(int conn, struct husk_error *err, pid_t *peer)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return husk_error_seterrno(err, errno, "join: peer credentials");
	if (cred.uid != 0 && cred.uid != geteuid())
		return husk_error_set(err, EPERM, "join: uid %u may not join this sandbox",
				      (unsigned int)cred.uid);
	*peer = cred.pid;
	return 0;
}

static int member_create(struct oci_pod *pod, struct husk_sandbox *sb,
			 struct oci_pod_member *mb, const struct join_request *jr,
			 struct husk_stdio *stdio, struct husk_error *err)
{
	struct husk_spec *spec = NULL;
	int r;

	mb->id = strdup(jr->id);
	mb->bundle = strdup(jr->bundle);
	if (!mb->id || !mb->bundle)
		return husk_error_set(err, ENOMEM, "out of memory");
	r = husk_spec_from_bundle(jr->bundle, &spec, err);
	if (r == 0 && husk_spec_terminal(spec) != jr->tty)
		r = husk_error_set(err, EINVAL, jr->tty ?
				   "--console-socket given but process.terminal is false" :
				   "process.terminal needs --console-socket");
	if (r == 0)
		r = member_bind_rootfs(pod->share, jr->id, spec, &mb->mount, err);
	if (r == 0)
		r = husk_spec_set_rootfs(spec, mb->mount, err);
	if (r == 0)
		r = husk_container_create(sb, jr->id, spec, &jr->opts, stdio, &mb->ctr, err);
	husk_spec_free(spec);
	if (r == 0)
		mb->init = husk_container_process(mb->ctr);
	return r;
}

bool oci_pod_join(struct oci_pod *pod, struct husk_sandbox *sb, int conn, const char *msg,
		  size_t len)
{
	struct join_request jr = { .opts = { .open_stdin = true } };
	struct husk_stdio stdio = { -1, -1, -1 };
	struct husk_error err = { 0 };
	struct oci_pod_member *mb = NULL;
	int r;
	pid_t peer = 0;

	if (!pod->sandbox)
		r = husk_error_set(&err, EINVAL, "this container is not a pod sandbox (annotate "
				   "it io.kubernetes.cri.container-type=sandbox or "
				   "husk.sandbox=<its id>)");
	else
		r = join_parse(msg, len, &jr, &err);
	if (r == 0)
		r = join_allowed(conn, &err, &peer);
	if (r == 0 && member_by_id(pod, jr.id))
		r = husk_error_set(&err, EEXIST, "container with given ID already exists");
	for (size_t i = 0; r == 0 && !mb && i < OCI_POD_MAX_MEMBERS; i++)
		if (pod->members[i].conn < 0 && !pod->members[i].id)
			mb = &pod->members[i];
	if (r == 0 && !mb)
		r = husk_error_set(&err, EBUSY, "the sandbox has %d members already",
				   OCI_POD_MAX_MEMBERS);
	if (r == 0)
		r = member_create(pod, sb, mb, &jr, &stdio, &err);
	if (r < 0) {
		if (mb)
			member_free(pod, mb);
		send_error(conn, &err, r);
		return false;
	}
	oci_ctl_send_stdio(conn, &stdio);
	mb->conn = conn;
	mb->peer = peer;
	oci_debug("sandbox: container %s joined (monitor %d)", mb->id, (int)peer);
	return true;
}

/* The member leaves the VM: its processes, its container, its bind mount. */
static void member_remove(struct oci_pod *pod, struct monitor *m, struct oci_pod_member *mb)
{
	struct husk_error err = { 0 };

	oci_monitor_execs_drop(m, mb->ctr);
	oci_monitor_cgroup_killed(mb->ctr, &mb->cgroup, SIGKILL);
	if (husk_container_delete(mb->ctr, &err) < 0)
		oci_warn("container %s: remove from the VM: %s", mb->id, err.msg);
	oci_debug("sandbox: container %s left", mb->id);
	member_free(pod, mb);
}

static void member_kill(struct monitor *m, struct oci_pod_member *mb, const char *args)
{
	struct husk_error err = { 0 };
	int sig = 0, all = 0, r;

	if (sscanf(args, "%d %d", &sig, &all) != 2 || sig <= 0 || sig >= NSIG) {
		send_text(mb->conn, "err 22 bad kill request");
		return;
	}
	if (all)
		oci_monitor_execs_signal(m, mb->ctr, sig);
	r = husk_process_signal(mb->init, sig, &err);
	if (r < 0) {
		send_error(mb->conn, &err, r);
		return;
	}
	oci_monitor_cgroup_killed(mb->ctr, &mb->cgroup, sig);
	send_text(mb->conn, "ok");
}

static void member_start(struct oci_pod_member *mb)
{
	struct husk_error err = { 0 };
	int r;

	if (mb->started) {
		send_text(mb->conn, "err 22 cannot start an already running container");
		return;
	}
	r = husk_container_start(mb->ctr, &err);
	if (r < 0) {
		send_error(mb->conn, &err, r);
		return;
	}
	mb->started = true;
	send_text(mb->conn, "ok");
}

/* One message from a member's monitor; false when the member is gone. */
static bool member_request(struct oci_pod *pod, struct monitor *m, struct oci_pod_member *mb)
{
	_cleanup_free_ char *msg = malloc(OCI_CTL_MSG_MAX);
	char buf[32 * 64];
	unsigned short rows, cols;
	ssize_t n;
	int sig;

	/* update's JSON makes messages long: a truncated one would read as a hang-up. */
	n = msg ? oci_ctl_recv(mb->conn, msg, OCI_CTL_MSG_MAX, NULL, 0, NULL) : -ENOMEM;
	if (n <= 0 || !strcmp(msg, "remove")) {
		int conn = mb->conn;

		mb->conn = -1;
		member_remove(pod, m, mb);
		if (n > 0)
			send_text(conn, "ok");
		close(conn);
		return false;
	}
	if (!strcmp(msg, "start")) {
		member_start(mb);
	} else if (!strncmp(msg, "kill ", 5)) {
		member_kill(m, mb, msg + 5);
	} else if (!strcmp(msg, "ps")) {
		snprintf(buf, sizeof(buf), "ok %d", (int)mb->peer);
		oci_monitor_execs_list(m, mb->ctr, buf, sizeof(buf));
		send_text(mb->conn, buf);
	} else if (sscanf(msg, "signal %d", &sig) == 1) {
		(void)husk_process_signal(mb->init, sig, NULL);
	} else if (sscanf(msg, "resize %hu %hu", &rows, &cols) == 2) {
		(void)husk_process_resize(mb->init, rows, cols, NULL);
	} else if (!oci_monitor_cgroup_request(m, mb->ctr, mb->started && !mb->exited,
					       &mb->cgroup, mb->conn, msg, (size_t)n)) {
		send_text(mb->conn, "err 22 unknown request");
	}
	return true;
}

static void member_exit(struct oci_pod_member *mb)
{
	struct husk_error err = { 0 };
	char msg[32];
	int status = 128 + SIGKILL;

	if (husk_process_wait(mb->init, 0, &status, &err) == -ETIMEDOUT)
		return;
	if (err.code)
		oci_warn("container %s: %s", mb->id, err.msg);
	mb->exited = true;
	snprintf(msg, sizeof(msg), "exit %d", status);
	send_text(mb->conn, msg);
}

size_t oci_pod_pollfds(const struct oci_pod *pod, struct pollfd *pfd)
{
	for (size_t i = 0; i < OCI_POD_MAX_MEMBERS; i++) {
		const struct oci_pod_member *mb = &pod->members[i];
		bool used = pod->share && mb->conn >= 0;

		pfd[2 * i] = (struct pollfd){ .fd = used ? mb->conn : -1, .events = POLLIN };
		pfd[2 * i + 1] = (struct pollfd){
			.fd = used && mb->started && !mb->exited ? husk_process_exit_fd(mb->init) : -1,
			.events = POLLIN };
	}
	return 2 * OCI_POD_MAX_MEMBERS;
}

void oci_pod_handle(struct oci_pod *pod, struct monitor *m, const struct pollfd *pfd)
{
	if (!pod->share)
		return;
	for (size_t i = 0; i < OCI_POD_MAX_MEMBERS; i++) {
		struct oci_pod_member *mb = &pod->members[i];

		if (mb->conn >= 0 && pfd[2 * i + 1].fd >= 0 && pfd[2 * i + 1].revents)
			member_exit(mb);
		if (mb->conn >= 0 && pfd[2 * i].fd >= 0 && pfd[2 * i].revents)
			(void)member_request(pod, m, mb);
	}
}

/* Mount points below prefix/ in our mount table, deepest first. */
static void unmount_below(const char *prefix)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	size_t plen = strlen(prefix), n = 0;
	char *line = NULL, *points[256];
	size_t cap = 0;

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0 && n < sizeof(points) / sizeof(points[0])) {
		char mp[PATH_MAX], *out = mp;
		const char *in;

		/* Field 5 is the mount point, with space, tab, \n and \\ as octal escapes. */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		for (in = mp; *in; in++) {
			if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] && in[3]) {
				*out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
				in += 3;
			} else {
				*out++ = *in;
			}
		}
		*out = '\0';
		if (!strncmp(mp, prefix, plen) && mp[plen] == '/')
			points[n++] = strdup(mp);
	}
	free(line);
	while (n--) {
		if (points[n] && umount2(points[n], MNT_DETACH) < 0 && errno != EINVAL &&
		    errno != ENOENT)
			oci_warn("umount %s: %m", points[n]);
		free(points[n]);
	}
}

/* Remove share/<id>/rootfs, share/<id> and share: rmdir only, never into a mount. */
static void share_dirs_remove(const char *share)
{
	_cleanup_close_ int fd = open(share, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d)
		return;
	fd = -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			member_dirs_remove(share, de->d_name);
	closedir(d);
	if (rmdir(share) < 0 && errno != ENOENT)
		oci_warn("rmdir %s: %m", share);
}

void oci_pod_teardown(struct oci_pod *pod)
{
	if (!pod->share)
		return;
	for (size_t i = 0; i < OCI_POD_MAX_MEMBERS; i++)
		if (pod->members[i].conn >= 0 || pod->members[i].id)
			member_free(pod, &pod->members[i]);
	unmount_below(pod->share);
	share_dirs_remove(pod->share);
	free(pod->share);
	pod->share = NULL;
}

void oci_pod_share_cleanup(const char *root, const char *id)
{
	_cleanup_free_ char *share = NULL;
	char real[PATH_MAX];

	if (asprintf(&share, "%s/%s/" OCI_POD_SHARE_DIR, root, id) < 0 || !realpath(share, real))
		return;
	unmount_below(real);
	share_dirs_remove(real);
}
