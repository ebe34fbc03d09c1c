/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The stdio channel's handshake line (vsock port 1027), parsed at the
 * edge: the host names a container, a process and one of its streams in
 *
 *	husk-stdio 1 <container-id> <exec-id> <stdin|stdout|stderr>[ relay]\n
 *
 * (the optional "relay" asks for the user-space relay even where
 * vsockfwd.ko forwards: benchmarks and tests compare both in one VM)
 * and the agent answers "OK\n" or "ERR <reason> <text>\n".  The grammar,
 * bounds and reasons are in docs/stdio.md.
 */
#ifndef HUSK_AGENT_STDIO_HANDSHAKE_H
#define HUSK_AGENT_STDIO_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#include <husk-common/error.h>

#include "runtime/runtime.h"

/* Longest handshake line, newline included. */
#define STDIO_HANDSHAKE_MAX 320
/* Longest answer line, newline included. */
#define STDIO_ANSWER_MAX 256

struct stdio_handshake {
	char container_id[RUNTIME_ID_MAX + 1];
	char exec_id[RUNTIME_ID_MAX + 1];
	enum runtime_stream stream;
	bool force_relay;
};

/*
 * Parse one line of len bytes (its final '\n' included).  Returns 0 or
 * -EINVAL with the offending part named in err.
 */
int stdio_handshake_parse(const char *line, size_t len, struct stdio_handshake *hs,
			  struct husk_error *err);

const char *stdio_stream_name(enum runtime_stream stream);

#endif
