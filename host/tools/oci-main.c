// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk's runc-compatible interface: global flags, the error log (runc's
 * text or JSON lines, which containerd's shim reads back), signal names,
 * pid files and where the guest image lives.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "husk-tool.h"
#include "oci.h"

struct oci_globals oci_globals = { .root = OCI_DEFAULT_ROOT };

static bool takes_value(const char *arg, const char *name, int argc, char **argv,
			int *i, const char **value)
{
	size_t len = strlen(name);

	if (!strncmp(arg, name, len) && arg[len] == '=') {
		*value = arg + len + 1;
		return true;
	}
	if (strcmp(arg, name))
		return false;
	*value = *i + 1 < argc ? argv[++*i] : NULL;
	return true;
}

/* Absolute, so a monitor (which leaves the directory it started in) finds it. */
static int set_log_path(const char *path)
{
	static char abs_path[PATH_MAX];
	char cwd[PATH_MAX];

	if (path[0] == '/') {
		oci_globals.log_path = path;
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd)) ||
	    snprintf(abs_path, sizeof(abs_path), "%s/%s", cwd, path) >= (int)sizeof(abs_path))
		return -ENAMETOOLONG;
	oci_globals.log_path = abs_path;
	return 0;
}

int oci_parse_globals(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *v = NULL;

		/* Go's flag package takes -flag and --flag alike. */
		if (a[1] == '-')
			a++;
		if (takes_value(a, "-root", argc, argv, &i, &v) ||
		    takes_value(a, "-log", argc, argv, &i, &v) ||
		    takes_value(a, "-log-format", argc, argv, &i, &v) ||
		    takes_value(a, "-criu", argc, argv, &i, &v) ||
		    takes_value(a, "-rootless", argc, argv, &i, &v)) {
			if (!v) {
				fprintf(stderr, "husk: %s needs a value\n", argv[i]);
				return -EINVAL;
			}
			if (!strncmp(a, "-root", 5) && (a[5] == '\0' || a[5] == '='))
				oci_globals.root = v;
			else if (!strncmp(a, "-log-format", 11)) {
				if (strcmp(v, "json") && strcmp(v, "text")) {
					fprintf(stderr, "husk: --log-format: want text or json\n");
					return -EINVAL;
				}
				oci_globals.log_json = !strcmp(v, "json");
			} else if (!strncmp(a, "-log", 4) && set_log_path(v) < 0) {
				fprintf(stderr, "husk: --log %s: path too long\n", v);
				return -EINVAL;
			}
		} else if (!strcmp(a, "-debug")) {
			oci_globals.debug = true;
		} else if (!strcmp(a, "-systemd-cgroup")) {
			/* Accepted: cgroups live in the guest, not under systemd. */
		} else {
			break;
		}
	}
	if (oci_globals.root[0] != '/') {
		fprintf(stderr, "husk: --root must be an absolute path\n");
		return -EINVAL;
	}
	return i - 1;
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
	char msg[2048], now[64];
	int fd;
	FILE *f;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (strcmp(level, "debug") && !oci_globals.no_stderr)
		fprintf(stderr, "%s\n", msg);
	if (!oci_globals.log_path)
		return;
	fd = open(oci_globals.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	f = fdopen(fd, "a");
	if (!f) {
		close(fd);
		return;
	}
	oci_time_now(now, sizeof(now));
	if (oci_globals.log_json) {
		fprintf(f, "{\"level\":\"%s\",\"msg\":", level);
		oci_json_put_string(f, msg);
		fprintf(f, ",\"time\":\"%s\"}\n", now);
	} else {
		fprintf(f, "time=\"%s\" level=%s msg=", now, level);
		oci_json_put_string(f, msg);
		fputc('\n', f);
	}
	fclose(f);
}

void oci_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("error", fmt, ap);
	va_end(ap);
}

void oci_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("warning", fmt, ap);
	va_end(ap);
}

void oci_debug(const char *fmt, ...)
{
	va_list ap;

	if (!oci_globals.debug)
		return;
	va_start(ap, fmt);
	log_line("debug", fmt, ap);
	va_end(ap);
}

int oci_parse_signal(const char *s)
{
	char *end;
	long n;

	if (!*s)
		return -EINVAL;
	n = strtol(s, &end, 10);
	if (!*end)
		return n > 0 && n < NSIG ? (int)n : -EINVAL;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (int sig = 1; sig < NSIG; sig++) {
		const char *abbrev = sigabbrev_np(sig);

		if (abbrev && !strcasecmp(s, abbrev))
			return sig;
	}
	return -EINVAL;
}

int oci_write_pid_file(const char *path, pid_t pid)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d", (int)pid);

	if (asprintf(&tmp, "%s.husk-tmp", path) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, len) != len || rename(tmp, path) < 0) {
		int r = -errno;

		unlink(tmp);
		return r;
	}
	return 0;
}

/* $HUSK_KERNEL (an image name or a kernel file) and $HUSK_INITRD, else the
 * default image: see tool_guest_image(). */
int oci_guest_files(char *kernel, size_t ksize, char *initrd, size_t isize)
{
	struct husk_error err = { 0 };
	struct tool_guest_image image;

	if (tool_guest_image(getenv("HUSK_KERNEL"), getenv("HUSK_INITRD"), &image, &err) < 0) {
		oci_error("%s (set HUSK_KERNEL/HUSK_INITRD or build the image)", err.msg);
		return -ENOENT;
	}
	if (snprintf(kernel, ksize, "%s", image.kernel) >= (int)ksize ||
	    snprintf(initrd, isize, "%s", image.initrd) >= (int)isize) {
		oci_error("guest image path too long");
		return -ENAMETOOLONG;
	}
	return 0;
}
