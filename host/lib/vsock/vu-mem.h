/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guest memory as announced by SET_MEM_TABLE: up to 8 regions, each mapped
 * from its own fd.  Every access the backend makes to guest memory goes
 * through vu_mem_gpa()/vu_mem_uva(), which return a host pointer only when
 * the whole [addr, addr+len) lies inside one region.
 */
#ifndef HUSK_VU_MEM_H
#define HUSK_VU_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "husk-common/error.h"

#define VU_MAX_REGIONS 8

/* One region as sent by QEMU (native byte order). */
struct vu_mem_region_desc {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct vu_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint8_t *host;		/* host address of gpa */
	void *map;		/* our mmap, NULL when the memory is borrowed */
	size_t map_len;
};

struct vu_mem {
	unsigned nregions;
	struct vu_region region[VU_MAX_REGIONS];
};

void vu_mem_init(struct vu_mem *mem);

/* Replace the table with n regions mapped from fds[i] (fds stay the caller's). */
int vu_mem_map(struct vu_mem *mem, const struct vu_mem_region_desc *desc,
	       unsigned n, const int *fds, struct husk_error *err);

/* Add memory the caller already owns (tests, fuzzing); never unmapped by us. */
int vu_mem_add_borrowed(struct vu_mem *mem, uint64_t gpa, uint64_t uva,
			void *host, uint64_t size);

/* Unmap everything. */
void vu_mem_clear(struct vu_mem *mem);

/* Host pointer for guest-physical [gpa, gpa+len), or NULL. */
void *vu_mem_gpa(const struct vu_mem *mem, uint64_t gpa, uint64_t len);

/* Host pointer for QEMU-virtual [uva, uva+len), or NULL (ring addresses). */
void *vu_mem_uva(const struct vu_mem *mem, uint64_t uva, uint64_t len);

#endif
