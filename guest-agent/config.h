/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * husk-agent settings: from the kernel command line when PID 1, from
 * command-line flags otherwise.  Both parsers only fill the struct; main
 * decides what to do with it.
 */
#ifndef HUSK_AGENT_CONFIG_H
#define HUSK_AGENT_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <sys/un.h>

#include <husk-common/error.h>

#define AGENT_DEFAULT_VSOCK_PORT 1024
#define AGENT_DEFAULT_LOG_PORT 1025
#define AGENT_DEFAULT_STDIO_PORT 1027
/* The runtime makes husk/<sandbox>/<container> below this cgroup2 directory. */
#define AGENT_DEFAULT_CGROUP_ROOT "/sys/fs/cgroup"
/* CopyFile writes only below this directory (Kata confines it to /run/kata-containers). */
#define AGENT_DEFAULT_COPY_ROOT "/run/husk"

enum agent_listen_kind {
	AGENT_LISTEN_NONE,
	AGENT_LISTEN_VSOCK,
	AGENT_LISTEN_UNIX,
};

/* Where a socket listens: "unix:PATH", "vsock:PORT" or (log stream only) "none". */
struct agent_endpoint {
	enum agent_listen_kind kind;
	unsigned int vsock_port;
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct agent_config {
	struct agent_endpoint listen;		/* ttRPC */
	struct agent_endpoint log_listen;	/* log stream readers */
	struct agent_endpoint stdio_listen;	/* stdio channel connections */
	char cgroup_root[PATH_MAX];
	char copy_root[PATH_MAX];
	int log_level;			/* syslog level */
	bool log_stderr;		/* --log-target stderr: not /dev/kmsg even as PID 1 */
	bool stdio_kernel;		/* husk.stdio=kernel: vsockfwd.ko relays stdio */
	bool pid1;
};

void agent_config_defaults(struct agent_config *cfg, bool pid1);

/* Parse the kernel command line (husk.port=, husk.log=, husk.debug, husk.stdio=). */
int agent_config_parse_cmdline(struct agent_config *cfg, const char *cmdline,
			       struct husk_error *err);

/* "unix:PATH" or "vsock:PORT" (and "none" when allow_none); flag names the option. */
int agent_config_parse_endpoint(struct agent_endpoint *ep, const char *spec, bool allow_none,
				const char *flag, struct husk_error *err);

/* "unix:PATH" / "vsock:PORT" / "none" for messages. */
const char *agent_endpoint_text(const struct agent_endpoint *ep, char *buf, size_t size);

/*
 * Parse argv (--listen, --log-listen, --stdio-listen, --stdio, --cgroup-root,
 * --copy-root, --log-level, --log-target, --help, --version).
 * Returns 1 when the caller should exit 0 (help/version printed to out).
 */
int agent_config_parse_args(struct agent_config *cfg, int argc, char **argv,
			    struct husk_error *err);

#endif
