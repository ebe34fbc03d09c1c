// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hybrid.h"

int hybrid_find_line(const char *buf, size_t len, size_t *line_len)
{
	size_t scan = len < HYBRID_LINE_MAX ? len : HYBRID_LINE_MAX;
	const char *nl = memchr(buf, '\n', scan);

	if (nl) {
		*line_len = (size_t)(nl - buf) + 1;
		return 1;
	}
	return len >= HYBRID_LINE_MAX ? -EMSGSIZE : 0;
}

int hybrid_parse_connect(const char *line, size_t len, uint32_t *port)
{
	static const char verb[] = "connect ";
	size_t i = sizeof(verb) - 1;
	uint64_t value = 0;

	if (len < i + 2 || len > HYBRID_LINE_MAX || line[len - 1] != '\n' ||
	    strncasecmp(line, verb, i) != 0)
		return -EINVAL;
	if (len - 1 - i > 10)		/* more digits than a u32 can have */
		return -EINVAL;
	for (; i < len - 1; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EINVAL;
		value = value * 10 + (uint64_t)(line[i] - '0');
	}
	if (value > UINT32_MAX)
		return -EINVAL;
	*port = (uint32_t)value;
	return 0;
}

size_t hybrid_format_ok(char *buf, size_t size, uint32_t host_port)
{
	int n = snprintf(buf, size, "OK %u\n", host_port);

	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}
