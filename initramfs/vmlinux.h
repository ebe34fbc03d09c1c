/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Get a PVH-bootable ELF vmlinux out of a kernel image: an ELF is checked
 * and copied; a bzImage has its compressed payload located (boot-protocol
 * header first, then a scan for compressor magic numbers, as the kernel's
 * scripts/extract-vmlinux does) and decompressed with the matching tool.
 */
#ifndef HUSK_INITRAMFS_VMLINUX_H
#define HUSK_INITRAMFS_VMLINUX_H

#include <stdint.h>

#include "husk-common/error.h"

/* Writes output atomically; *entry is the PVH entry point found. */
int vmlinux_extract(const char *input, const char *output, uint32_t *entry,
		    struct husk_error *err);

#endif
