// SPDX-License-Identifier: LGPL-2.1-or-later
/* The gen_init_cpio list-line parser on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../initramfs/list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct husk_error err = { 0 };
	struct list_entry e;
	char *line = malloc(size + 1);

	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	setenv("HUSK_FUZZ", "/x", 0);
	if (list_parse_line(line, 1, &e, &err) == 1) {
		/* a parsed entry is canonical: no leading '/', no "..", a type bit */
		if (!e.name[0] || e.name[0] == '/' || strstr(e.name, "//") ||
		    (e.mode & ~(mode_t)0177777) || !(e.mode & 0170000))
			abort();
		list_entry_done(&e);
	} else if (err.code && strncmp(err.msg, "line 1: ", 8) != 0) {
		abort();	/* every error names the line */
	}
	free(line);
	return 0;
}
