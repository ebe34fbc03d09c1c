// SPDX-License-Identifier: LGPL-2.1-or-later
/* The hybrid-vsock CONNECT line: find the line, parse it, and check that a
 * port it accepts formats back to an equivalent line. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "hybrid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	char again[32];
	uint32_t port, port2;
	size_t len;

	if (hybrid_find_line(buf, size, &len) != 1)
		return 0;
	if (len > size || len > HYBRID_LINE_MAX || buf[len - 1] != '\n')
		__builtin_trap();
	if (hybrid_parse_connect(buf, len, &port) < 0)
		return 0;
	if (strncasecmp(buf, "connect ", 8) != 0)
		__builtin_trap();
	snprintf(again, sizeof(again), "CONNECT %u\n", port);
	if (hybrid_parse_connect(again, strlen(again), &port2) < 0 || port2 != port)
		__builtin_trap();
	return 0;
}
