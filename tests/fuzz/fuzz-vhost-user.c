// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The vhost-user message path: arbitrary bytes are framed by the reader
 * and every complete message goes through validation and the device
 * (no fds, so memory tables never map; ring state, features, config and
 * NEED_REPLY handling all run).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vu-dev.h"
#include "vu-msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[0x4000];
	struct vu_reader rd;
	struct vu_dev dev;
	struct vu_msg msg, reply;

	vu_reader_init(&rd);
	vu_dev_init(&dev, 3);
	/* Borrowed RAM so SET_VRING_ADDR/KICK paths can translate rings. */
	vu_mem_add_borrowed(&dev.mem, 0, 0, ram, sizeof(ram));
	while (size) {
		bool has_reply;
		const char *why = NULL;
		size_t used;
		int r = vu_reader_feed(&rd, data, size, &used, &msg);

		data += used;
		size -= used;
		if (r <= 0)
			break;
		vu_dev_handle(&dev, &msg, &reply, &has_reply, &why);
		if (has_reply && reply.size > VU_PAYLOAD_MAX)
			__builtin_trap();
	}
	vu_dev_release(&dev);
	return 0;
}
