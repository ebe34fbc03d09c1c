// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "husk-common/fd-util.h"
#include "husk-common/cleanup.h"
#include "stdio-channel.h"
#include "util.h"

/* The agent's bounds (guest-agent/stdio-handshake.h). */
#define HANDSHAKE_MAX 320
#define ANSWER_MAX 256

static const char *const stream_names[] = {
	[STDIO_CHANNEL_STDIN] = "stdin",
	[STDIO_CHANNEL_STDOUT] = "stdout",
	[STDIO_CHANNEL_STDERR] = "stderr",
};

static const struct {
	const char *reason;
	int code;
} answer_reasons[] = {
	{ "invalid", EINVAL },
	{ "not-found", ENOENT },
	{ "busy", EBUSY },
	{ "no-stream", ENODEV },
};

enum stdio_channel_mode stdio_channel_mode_from_env(void)
{
	const char *v = getenv("HUSK_STDIO");

	if (v && strcmp(v, "rpc") == 0)
		return STDIO_MODE_RPC;
	if (v && strcmp(v, "relay") == 0)
		return STDIO_MODE_CHANNEL_RELAY;
	return STDIO_MODE_CHANNEL;
}

/*
 * One byte at a time: after the newline the connection carries stream
 * data that must stay unread.  Returns the line's length without '\n'.
 */
static ssize_t read_answer(int fd, char *line, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		ssize_t n = read(fd, line + len, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		if (line[len] == '\n') {
			line[len] = '\0';
			return (ssize_t)len;
		}
		len++;
	}
	return -EPROTO;
}

/* "OK" -> 0; "ERR <reason> <text>" -> -code with the text in err. */
static int parse_answer(const char *line, const char *what, struct husk_error *err)
{
	const char *text;

	if (strcmp(line, "OK") == 0)
		return 0;
	if (strncmp(line, "ERR ", 4) != 0)
		return husk_error_set(err, EPROTO, "%s: unexpected answer from the agent", what);
	line += 4;
	text = strchr(line, ' ');
	text = text ? text + 1 : "";
	for (size_t i = 0; i < sizeof(answer_reasons) / sizeof(answer_reasons[0]); i++) {
		size_t n = strlen(answer_reasons[i].reason);

		if (strncmp(line, answer_reasons[i].reason, n) == 0 &&
		    (line[n] == ' ' || line[n] == '\0'))
			return husk_error_set(err, answer_reasons[i].code, "%s: %s", what, text);
	}
	return husk_error_set(err, EPROTO, "%s: agent refused: %s", what, line);
}

int stdio_channel_attach(struct husk_vm *vm, const char *container_id, const char *exec_id,
			 enum stdio_channel_stream stream, bool relay, int timeout_ms,
			 struct husk_error *err)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	struct timeval none = { 0 };
	char line[HANDSHAKE_MAX + 1], what[HANDSHAKE_MAX];
	_cleanup_close_ int fd = -1;
	int len, r;
	ssize_t n;

	snprintf(what, sizeof(what), "stdio %s/%s %s", container_id, exec_id,
		 stream_names[stream]);
	len = snprintf(line, sizeof(line), "husk-stdio 1 %s %s %s%s\n", container_id, exec_id,
		       stream_names[stream], relay ? " relay" : "");
	if (len < 0 || len > HANDSHAKE_MAX)
		return husk_error_set(err, EINVAL, "%s: ids too long for the handshake", what);
	fd = husk_vm_vsock_connect(vm, STDIO_CHANNEL_PORT, timeout_ms, err);
	if (fd < 0)
		return fd;
	/* The answer comes at once or the agent is stuck: do not hang on it. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return husk_error_seterrno(err, errno, "%s: SO_RCVTIMEO", what);
	r = husk_send_all(fd, line, (size_t)len);
	if (r < 0)
		return husk_error_seterrno(err, -r, "%s: sending the handshake", what);
	n = read_answer(fd, line, ANSWER_MAX);
	if (n < 0)
		return husk_error_seterrno(err, (int)-n, "%s: reading the answer", what);
	r = parse_answer(line, what, err);
	if (r < 0)
		return r;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none)) < 0)
		return husk_error_seterrno(err, errno, "%s: SO_RCVTIMEO", what);
	return TAKE_FD(fd);
}
