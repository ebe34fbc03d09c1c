// SPDX-License-Identifier: LGPL-2.1-or-later
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "util.h"

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t deadline_after_ms(int timeout_ms)
{
	return timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
}

int deadline_remaining_ms(int64_t deadline)
{
	int64_t left;

	if (deadline == INT64_MAX)
		return -1;
	left = deadline - now_ms();
	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static int strv_push(struct strv *s, char *str)
{
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		char **v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
	return 0;
}

int strv_add(struct strv *s, const char *str)
{
	char *copy = strdup(str);

	if (!copy)
		return -ENOMEM;
	if (strv_push(s, copy) < 0) {
		free(copy);
		return -ENOMEM;
	}
	return 0;
}

int strv_addf(struct strv *s, const char *fmt, ...)
{
	char *str;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&str, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	if (strv_push(s, str) < 0) {
		free(str);
		return -ENOMEM;
	}
	return 0;
}

void strv_release(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct strv){ 0 };
}

char **strv_take(struct strv *s)
{
	char **v = s->v;

	*s = (struct strv){ 0 };
	return v;
}

int read_small_file(int dirfd, const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = 0;

	if (fd < 0)
		return -errno;
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	return (int)len;
}

int write_small_file(int dirfd, const char *path, const char *text)
{
	_cleanup_close_ int fd = openat(dirfd, path,
					O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
					0600);
	size_t len = strlen(text);

	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = write(fd, text, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		text += n;
		len -= n;
	}
	return 0;
}

static int rm_rf_children(int fd, dev_t dev, unsigned int depth)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (depth > 16)
		return -ELOOP;
	d = fdopendir(fd);
	if (!d) {
		safe_close(fd);
		return -errno;
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub;

			if (st.st_dev != dev) {
				r = -EXDEV;
				continue;
			}
			sub = openat(dirfd(d), de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				int k = rm_rf_children(sub, dev, depth + 1);

				if (k < 0 && !r)
					r = k;
			}
			if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && !r)
				r = -errno;
		} else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && !r) {
			r = -errno;
		}
	}
	closedir(d);
	return r;
}

int rm_rf_at(int parent_fd, const char *name)
{
	struct stat st;
	int fd, r;

	fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		safe_close(fd);
		return r;
	}
	r = rm_rf_children(fd, st.st_dev, 0);
	if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !r)
		r = -errno;
	return r;
}

int find_program(const char *name, char **path_out)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		if (access(name, X_OK) < 0)
			return -errno;
		*path_out = strdup(name);
		return *path_out ? 0 : -ENOMEM;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		_cleanup_free_ char *cand = NULL;

		if (len) {
			if (asprintf(&cand, "%.*s/%s", (int)len, path, name) < 0) {
				cand = NULL;
				return -ENOMEM;
			}
			if (access(cand, X_OK) == 0) {
				*path_out = TAKE_PTR(cand);
				return 0;
			}
		}
		path += len;
		if (*path == ':')
			path++;
	}
	return -ENOENT;
}

int self_exe_dir(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	char *slash;

	if (n < 0) {
		buf[0] = '\0';
		return -errno;
	}
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
	return 0;
}

static int unix_socket_for(const char *path, struct sockaddr_un *sa,
			   struct husk_error *err)
{
	int fd;

	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa->sun_path))
		return husk_error_set(err, ENAMETOOLONG,
				      "socket path %s is too long for AF_UNIX", path);
	strcpy(sa->sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "socket for %s", path);
	return fd;
}

int unix_listen(const char *path, int backlog, struct husk_error *err)
{
	struct sockaddr_un sa;
	_cleanup_close_ int fd = unix_socket_for(path, &sa, err);

	if (fd < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return husk_error_seterrno(err, errno, "bind %s", path);
	if (listen(fd, backlog) < 0)
		return husk_error_seterrno(err, errno, "listen %s", path);
	return TAKE_FD(fd);
}

int unix_connect(const char *path, struct husk_error *err)
{
	struct sockaddr_un sa;
	_cleanup_close_ int fd = unix_socket_for(path, &sa, err);

	if (fd < 0)
		return fd;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return husk_error_seterrno(err, errno, "connect %s", path);
	return TAKE_FD(fd);
}
