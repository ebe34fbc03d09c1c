// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "vu-mem.h"

void vu_mem_init(struct vu_mem *mem)
{
	memset(mem, 0, sizeof(*mem));
}

void vu_mem_clear(struct vu_mem *mem)
{
	for (unsigned i = 0; i < mem->nregions; i++)
		if (mem->region[i].map)
			munmap(mem->region[i].map, mem->region[i].map_len);
	vu_mem_init(mem);
}

static int check_region(const struct vu_mem_region_desc *d, unsigned i,
			struct husk_error *err)
{
	uint64_t end;

	if (d->memory_size == 0)
		return husk_error_set(err, EINVAL, "memory region %u: size 0", i);
	if (__builtin_add_overflow(d->guest_phys_addr, d->memory_size - 1, &end) ||
	    __builtin_add_overflow(d->userspace_addr, d->memory_size - 1, &end) ||
	    __builtin_add_overflow(d->mmap_offset, d->memory_size, &end) ||
	    end > SIZE_MAX)
		return husk_error_set(err, EINVAL,
				      "memory region %u: range overflows", i);
	return 0;
}

static int map_region(struct vu_region *r, const struct vu_mem_region_desc *d,
		      int fd, unsigned i, struct husk_error *err)
{
	size_t len = d->mmap_offset + d->memory_size;
	struct stat st;
	void *map;

	/* A file shorter than the mapping would SIGBUS us on first touch. */
	if (fstat(fd, &st) < 0)
		return husk_error_seterrno(err, errno, "memory region %u: fstat", i);
	if (st.st_size < 0 || (uint64_t)st.st_size < len)
		return husk_error_set(err, EINVAL,
				      "memory region %u: fd holds %lld bytes, needs %zu",
				      i, (long long)st.st_size, len);
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return husk_error_seterrno(err, errno, "memory region %u: mmap", i);
	r->gpa = d->guest_phys_addr;
	r->size = d->memory_size;
	r->uva = d->userspace_addr;
	r->host = (uint8_t *)map + d->mmap_offset;
	r->map = map;
	r->map_len = len;
	return 0;
}

int vu_mem_map(struct vu_mem *mem, const struct vu_mem_region_desc *desc,
	       unsigned n, const int *fds, struct husk_error *err)
{
	struct vu_mem next;
	int r;

	if (n == 0 || n > VU_MAX_REGIONS)
		return husk_error_set(err, EINVAL, "memory table: %u regions", n);
	vu_mem_init(&next);
	for (unsigned i = 0; i < n; i++) {
		r = check_region(&desc[i], i, err);
		if (r < 0)
			goto fail;
		r = map_region(&next.region[i], &desc[i], fds[i], i, err);
		if (r < 0)
			goto fail;
		next.nregions = i + 1;
	}
	vu_mem_clear(mem);
	*mem = next;
	return 0;
fail:
	vu_mem_clear(&next);
	return r;
}

int vu_mem_add_borrowed(struct vu_mem *mem, uint64_t gpa, uint64_t uva,
			void *host, uint64_t size)
{
	struct vu_region *r;
	uint64_t end;

	if (mem->nregions >= VU_MAX_REGIONS || size == 0 ||
	    __builtin_add_overflow(gpa, size - 1, &end) ||
	    __builtin_add_overflow(uva, size - 1, &end))
		return -EINVAL;
	r = &mem->region[mem->nregions++];
	*r = (struct vu_region){ .gpa = gpa, .size = size, .uva = uva,
				 .host = host };
	return 0;
}

/* Checked so that no expression can overflow: len <= size first. */
static void *lookup(const struct vu_mem *mem, uint64_t addr, uint64_t len,
		    int by_uva)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct vu_region *r = &mem->region[i];
		uint64_t start = by_uva ? r->uva : r->gpa;

		if (addr < start || len > r->size ||
		    addr - start > r->size - len)
			continue;
		return r->host + (addr - start);
	}
	return NULL;
}

void *vu_mem_gpa(const struct vu_mem *mem, uint64_t gpa, uint64_t len)
{
	return lookup(mem, gpa, len, 0);
}

void *vu_mem_uva(const struct vu_mem *mem, uint64_t uva, uint64_t len)
{
	return lookup(mem, uva, len, 1);
}
