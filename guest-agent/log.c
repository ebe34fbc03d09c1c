// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* The log is process-wide state by nature: one sink, one level. */
static int log_fd = STDERR_FILENO;
static bool log_kmsg;
static int log_max = LOG_INFO;
static int log_readers[AGENT_LOG_MAX_READERS] = { -1, -1, -1, -1 };

int agent_log_add_reader(int fd)
{
	for (size_t i = 0; i < AGENT_LOG_MAX_READERS; i++) {
		if (log_readers[i] < 0) {
			log_readers[i] = fd;
			return 0;
		}
	}
	return -EBUSY;
}

void agent_log_remove_reader(int fd)
{
	for (size_t i = 0; i < AGENT_LOG_MAX_READERS; i++)
		if (log_readers[i] == fd)
			log_readers[i] = -1;
}

static void log_to_readers(const char *line, size_t len)
{
	for (size_t i = 0; i < AGENT_LOG_MAX_READERS; i++) {
		if (log_readers[i] < 0)
			continue;
		/* Non-blocking: a full socket loses this line, a broken one its slot. */
		if (send(log_readers[i], line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
		    errno != EAGAIN && errno != EINTR)
			log_readers[i] = -1;
	}
}

void agent_log_open(bool to_kmsg, int max_level)
{
	log_max = max_level;
	if (log_kmsg) {
		close(log_fd);
		log_fd = STDERR_FILENO;
		log_kmsg = false;
	}
	if (!to_kmsg)
		return;
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);

	if (fd >= 0) {
		log_fd = fd;
		log_kmsg = true;
	}
}

void agent_log_set_level(int max_level)
{
	log_max = max_level;
}

int agent_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "error", LOG_ERR }, { "warn", LOG_WARNING }, { "warning", LOG_WARNING },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -EINVAL;
}

void agent_log(int level, const char *fmt, ...)
{
	char line[1024];
	int n = 0;
	va_list ap;

	if (level > log_max)
		return;
	int saved = errno;

	int prefix = 0;

	/* kmsg takes a "<level>" prefix; the other sinks get plain lines. */
	if (log_kmsg)
		prefix = snprintf(line, sizeof(line), "<%d>", level);
	n = prefix + snprintf(line + prefix, sizeof(line) - prefix, "husk-agent: ");
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* A lost log line must never stop the agent. */
	if (write(log_fd, line, n) < 0)
		(void)0;
	log_to_readers(line + prefix, (size_t)(n - prefix));
	errno = saved;
}
