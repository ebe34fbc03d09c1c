/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Is this an x86-64 ELF kernel QEMU can boot through PVH?  QEMU looks for
 * the Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (name "Xen", type 18) in the
 * program headers' PT_NOTE segments.
 */
#ifndef HUSK_INITRAMFS_ELFNOTE_H
#define HUSK_INITRAMFS_ELFNOTE_H

#include <stddef.h>
#include <stdint.h>

#include "husk-common/error.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* 0 and *entry = the 32-bit PVH entry point, or -ENOEXEC saying why not. */
int elf_pvh_entry(const void *buf, size_t len, uint32_t *entry,
		  struct husk_error *err);

#endif
