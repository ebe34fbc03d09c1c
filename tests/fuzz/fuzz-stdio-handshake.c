// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Bytes from a stdio channel connection -> the handshake parser.  Whatever
 * it accepts must be a line that formats back to exactly the input: ids
 * inside their bounds and charset, a known stream.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "stdio-handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stdio_handshake hs;
	struct husk_error err = {};
	char again[STDIO_HANDSHAKE_MAX + 64];
	int n;

	memset(&hs, 0xa5, sizeof(hs));
	if (stdio_handshake_parse((const char *)data, size, &hs, &err) < 0) {
		assert(err.code == EINVAL && err.msg[0]);
		return 0;
	}
	assert(strlen(hs.container_id) >= 1 && strlen(hs.container_id) <= RUNTIME_ID_MAX);
	assert(strlen(hs.exec_id) >= 1 && strlen(hs.exec_id) <= RUNTIME_ID_MAX);
	n = snprintf(again, sizeof(again), "husk-stdio 1 %s %s %s%s\n", hs.container_id,
		     hs.exec_id, stdio_stream_name(hs.stream), hs.force_relay ? " relay" : "");
	assert(n > 0 && (size_t)n == size && memcmp(again, data, size) == 0);
	return 0;
}
