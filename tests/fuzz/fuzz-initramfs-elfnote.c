// SPDX-License-Identifier: LGPL-2.1-or-later
/* The PVH note lookup on arbitrary "kernels". */
#include <stdint.h>

#include "../../initramfs/elfnote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t entry;

	elf_pvh_entry(data, size, &entry, NULL);
	return 0;
}
