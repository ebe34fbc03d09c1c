// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk update [FLAGS | -r FILE] ID: new cgroup limits for a container, as
 * an OCI linux.resources object the monitor hands to the guest agent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "oci.h"

#define UPDATE_HEAD "update"
#define RESOURCES_MAX (OCI_CTL_MSG_MAX - sizeof(UPDATE_HEAD) - 1)

/* At most max bytes of path ("-": stdin); -E2BIG when there is more. */
static int read_resources(const char *path, char *buf, size_t max, size_t *n)
{
	_cleanup_close_ int fd = strcmp(path, "-") ?
		open(path, O_RDONLY | O_CLOEXEC) : fcntl(0, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return -errno;
	*n = 0;
	for (;;) {
		ssize_t got = read(fd, buf + *n, max + 1 - *n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return 0;
		*n += (size_t)got;
		if (*n > max)
			return -E2BIG;
	}
}

/* "update\0" then the JSON of -r FILE or of the flags. */
static int update_request(const struct oci_update *u, char **msg, size_t *len)
{
	size_t head = sizeof(UPDATE_HEAD), n = 0;
	_cleanup_free_ char *buf = malloc(head + RESOURCES_MAX + 1);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, UPDATE_HEAD, head);
	if (u->resources_file) {
		r = read_resources(u->resources_file, buf + head, RESOURCES_MAX, &n);
	} else {
		n = strlen(u->json);
		if (n > RESOURCES_MAX)
			r = -E2BIG;
		else
			memcpy(buf + head, u->json, n);
	}
	if (r < 0)
		return r;
	*msg = TAKE_PTR(buf);
	*len = head + n;
	return 0;
}

int cmd_oci_update(int argc, char **argv)
{
	struct oci_update u;
	struct husk_error err = { 0 };
	_cleanup_close_ int dir_fd = -1;
	_cleanup_free_ char *msg = NULL;
	struct oci_state st;
	char reply[256];
	size_t len = 0;
	int r;

	r = oci_update_parse(argc, argv, &u, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		goto out;
	}
	if (u.flags_ignored)
		oci_warn("update: --resources given, the other flags are ignored");
	r = update_request(&u, &msg, &len);
	if (r < 0) {
		oci_error("update: --resources %s: %s", u.resources_file ? u.resources_file : "",
			  strerror(-r));
		goto out;
	}
	r = oci_state_open(oci_globals.root, u.id, &dir_fd, &err);
	if (r == 0)
		r = oci_state_read(dir_fd, &st, &err);
	if (r < 0) {
		oci_error("%s", err.msg);
		goto out;
	}
	if (oci_state_status(&st) == OCI_STOPPED) {
		oci_error("container not running");
		r = -EINVAL;
	}
	oci_state_release(&st);
	if (r == 0)
		r = oci_ctl_call_msg(u.id, msg, len, reply, sizeof(reply));
out:
	oci_update_release(&u);
	return r < 0 ? 1 : 0;
}
