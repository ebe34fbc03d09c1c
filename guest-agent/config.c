// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

void agent_config_defaults(struct agent_config *cfg, bool pid1)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen.kind = AGENT_LISTEN_VSOCK;
	cfg->listen.vsock_port = AGENT_DEFAULT_VSOCK_PORT;
	cfg->log_listen.kind = AGENT_LISTEN_VSOCK;
	cfg->log_listen.vsock_port = AGENT_DEFAULT_LOG_PORT;
	cfg->stdio_listen.kind = AGENT_LISTEN_VSOCK;
	cfg->stdio_listen.vsock_port = AGENT_DEFAULT_STDIO_PORT;
	snprintf(cfg->cgroup_root, sizeof(cfg->cgroup_root), "%s", AGENT_DEFAULT_CGROUP_ROOT);
	snprintf(cfg->copy_root, sizeof(cfg->copy_root), "%s", AGENT_DEFAULT_COPY_ROOT);
	cfg->log_level = LOG_INFO;
	cfg->stdio_kernel = true;
	cfg->pid1 = pid1;
}

static int parse_port(const char *s, unsigned int *port, const char *what,
		      struct husk_error *err)
{
	char *end;

	errno = 0;
	unsigned long v = strtoul(s, &end, 10);

	if (errno || end == s || *end || v == 0 || v > 0xffffffffUL - 1)
		return husk_error_set(err, EINVAL, "%s: invalid vsock port '%s'", what, s);
	*port = (unsigned int)v;
	return 0;
}

/* "kernel" (vsockfwd.ko when present) or "user" (the agent's relay). */
static int parse_stdio_mode(struct agent_config *cfg, const char *val, const char *what,
			    struct husk_error *err)
{
	if (val && strcmp(val, "kernel") == 0)
		cfg->stdio_kernel = true;
	else if (val && strcmp(val, "user") == 0)
		cfg->stdio_kernel = false;
	else
		return husk_error_set(err, EINVAL, "%s: expected kernel or user, got '%s'", what,
				      val ? val : "");
	return 0;
}

/* One "key" or "key=value" word of the kernel command line. */
static int cmdline_word(struct agent_config *cfg, const char *key, const char *val,
			struct husk_error *err)
{
	if (strcmp(key, "husk.port") == 0) {
		if (!val)
			return husk_error_set(err, EINVAL, "husk.port needs a value");
		return parse_port(val, &cfg->listen.vsock_port, "husk.port", err);
	}
	if (strcmp(key, "husk.debug") == 0) {
		cfg->log_level = LOG_DEBUG;
		return 0;
	}
	if (strcmp(key, "husk.log") == 0) {
		int level = val ? agent_log_level_parse(val) : -EINVAL;

		if (level < 0)
			return husk_error_set(err, EINVAL, "husk.log: unknown level '%s'",
					      val ? val : "");
		cfg->log_level = level;
		return 0;
	}
	if (strcmp(key, "husk.stdio") == 0)
		return parse_stdio_mode(cfg, val, "husk.stdio", err);
	return 0;
}

int agent_config_parse_cmdline(struct agent_config *cfg, const char *cmdline,
			       struct husk_error *err)
{
	char *copy = strdup(cmdline);
	char *save = NULL;
	int r = 0;

	if (!copy)
		return husk_error_set(err, ENOMEM, "kernel command line: out of memory");
	for (char *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
		char *eq = strchr(w, '=');

		if (eq)
			*eq++ = '\0';
		if (strncmp(w, "husk.", 5) != 0)
			continue;
		r = cmdline_word(cfg, w, eq, err);
		if (r < 0)
			break;
	}
	free(copy);
	return r;
}

int agent_config_parse_endpoint(struct agent_endpoint *ep, const char *spec, bool allow_none,
				const char *flag, struct husk_error *err)
{
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *path = spec + 5;

		if (path[0] == '\0' || strlen(path) >= sizeof(ep->unix_path))
			return husk_error_set(err, EINVAL,
					      "%s: unix socket path empty or longer than %zu bytes",
					      flag, sizeof(ep->unix_path) - 1);
		ep->kind = AGENT_LISTEN_UNIX;
		snprintf(ep->unix_path, sizeof(ep->unix_path), "%s", path);
		return 0;
	}
	if (strncmp(spec, "vsock:", 6) == 0) {
		ep->kind = AGENT_LISTEN_VSOCK;
		return parse_port(spec + 6, &ep->vsock_port, flag, err);
	}
	if (allow_none && strcmp(spec, "none") == 0) {
		ep->kind = AGENT_LISTEN_NONE;
		return 0;
	}
	return husk_error_set(err, EINVAL, "%s: expected unix:PATH or vsock:PORT%s, got '%s'",
			      flag, allow_none ? " or none" : "", spec);
}

const char *agent_endpoint_text(const struct agent_endpoint *ep, char *buf, size_t size)
{
	if (ep->kind == AGENT_LISTEN_UNIX)
		snprintf(buf, size, "unix:%s", ep->unix_path);
	else if (ep->kind == AGENT_LISTEN_VSOCK)
		snprintf(buf, size, "vsock:%u", ep->vsock_port);
	else
		snprintf(buf, size, "none");
	return buf;
}

static int parse_abs_path(char *dst, size_t size, const char *arg, const char *flag,
			  struct husk_error *err)
{
	if (arg[0] != '/' || strlen(arg) >= size)
		return husk_error_set(err, EINVAL, "%s: '%s' is not an absolute path", flag, arg);
	snprintf(dst, size, "%s", arg);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: husk-agent [--listen unix:PATH|vsock:PORT] [--cgroup-root PATH]\n"
		"                  [--log-listen unix:PATH|vsock:PORT|none]\n"
		"                  [--stdio-listen unix:PATH|vsock:PORT|none] [--stdio kernel|user]\n"
		"                  [--copy-root DIR] [--log-level error|warn|info|debug]\n"
		"                  [--log-target kmsg|stderr]\n"
		"As PID 1 it reads husk.port=, husk.log=, husk.debug and husk.stdio=\n"
		"from the kernel command line instead.  See husk-agent(8).\n");
}

int agent_config_parse_args(struct agent_config *cfg, int argc, char **argv,
			    struct husk_error *err)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "log-listen", required_argument, NULL, 'g' },
		{ "stdio-listen", required_argument, NULL, 's' },
		{ "stdio", required_argument, NULL, 'S' },
		{ "cgroup-root", required_argument, NULL, 'c' },
		{ "copy-root", required_argument, NULL, 'C' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-target", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	bool log_listen_given = false, stdio_listen_given = false;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			r = agent_config_parse_endpoint(&cfg->listen, optarg, false, "--listen", err);
			if (r < 0)
				return r;
			break;
		case 'g':
			r = agent_config_parse_endpoint(&cfg->log_listen, optarg, true,
							"--log-listen", err);
			if (r < 0)
				return r;
			log_listen_given = true;
			break;
		case 's':
			r = agent_config_parse_endpoint(&cfg->stdio_listen, optarg, true,
							"--stdio-listen", err);
			if (r < 0)
				return r;
			stdio_listen_given = true;
			break;
		case 'S':
			r = parse_stdio_mode(cfg, optarg, "--stdio", err);
			if (r < 0)
				return r;
			break;
		case 'c':
			r = parse_abs_path(cfg->cgroup_root, sizeof(cfg->cgroup_root), optarg,
					   "--cgroup-root", err);
			if (r < 0)
				return r;
			break;
		case 'C':
			r = parse_abs_path(cfg->copy_root, sizeof(cfg->copy_root), optarg,
					   "--copy-root", err);
			if (r < 0)
				return r;
			break;
		case 'L':
			r = agent_log_level_parse(optarg);
			if (r < 0)
				return husk_error_set(err, EINVAL, "--log-level: unknown level '%s'",
						      optarg);
			cfg->log_level = r;
			break;
		case 'T':
			if (strcmp(optarg, "stderr") == 0)
				cfg->log_stderr = true;
			else if (strcmp(optarg, "kmsg") == 0)
				cfg->log_stderr = false;
			else
				return husk_error_set(err, EINVAL,
						      "--log-target: expected kmsg or stderr, got '%s'",
						      optarg);
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("husk-agent %s\n", HUSK_VERSION);
			return 1;
		default:
			return husk_error_set(err, EINVAL, "invalid command line (see --help)");
		}
	}
	if (optind < argc)
		return husk_error_set(err, EINVAL, "unexpected argument '%s'", argv[optind]);
	/* A host test on a unix socket gets no vsock log stream unless it asks. */
	if (!log_listen_given && cfg->listen.kind == AGENT_LISTEN_UNIX)
		cfg->log_listen.kind = AGENT_LISTEN_NONE;
	if (!stdio_listen_given && cfg->listen.kind == AGENT_LISTEN_UNIX)
		cfg->stdio_listen.kind = AGENT_LISTEN_NONE;
	return 0;
}
