/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's log: /dev/kmsg when PID 1 (the guest console), stderr
 * otherwise.  Levels are syslog's so kmsg lines carry the right prefix.
 */
#ifndef HUSK_AGENT_LOG_H
#define HUSK_AGENT_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* May be called again to switch sinks (flags are parsed after PID-1 setup). */
void agent_log_open(bool to_kmsg, int max_level);
void agent_log_set_level(int max_level);
void agent_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Log stream readers (vsock port 1025): every line also goes to each
 * reader, without blocking; a reader too slow loses lines, one that fails
 * is detached (its owner, logstream.c, closes the fd).
 */
#define AGENT_LOG_MAX_READERS 4
int agent_log_add_reader(int fd);		/* -EBUSY when all slots are taken */
void agent_log_remove_reader(int fd);

/* "error"/"warn"/"info"/"debug" -> LOG_*; -EINVAL when unknown. */
int agent_log_level_parse(const char *name);

#define log_error(...) agent_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) agent_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...) agent_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) agent_log(LOG_DEBUG, __VA_ARGS__)

#endif
