// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk-extract-vmlinux KERNEL OUTPUT: a PVH-bootable vmlinux from a bzImage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmlinux.h"

int main(int argc, char **argv)
{
	struct husk_error err = { 0 };
	uint32_t entry;
	int r;

	if (argc != 3 || argv[1][0] == '-') {
		fputs("Usage: husk-extract-vmlinux KERNEL OUTPUT\n"
		      "KERNEL is a bzImage (e.g. /boot/vmlinuz-*) or an ELF vmlinux; OUTPUT gets\n"
		      "the uncompressed ELF, checked for the Xen PVH entry note.\n", stderr);
		return EXIT_FAILURE;
	}
	r = vmlinux_extract(argv[1], argv[2], &entry, &err);
	if (r < 0) {
		fprintf(stderr, "husk-extract-vmlinux: %s\n", err.msg[0] ? err.msg : strerror(-r));
		return EXIT_FAILURE;
	}
	printf("%s: PVH entry 0x%08x\n", argv[2], entry);
	return EXIT_SUCCESS;
}
