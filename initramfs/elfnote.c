// SPDX-License-Identifier: LGPL-2.1-or-later
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "elfnote.h"

static size_t align4(size_t v)
{
	return (v + 3) & ~(size_t)3;
}

/* Walk one PT_NOTE segment; every length is checked against the segment. */
static int find_in_notes(const unsigned char *p, size_t len, uint32_t *entry)
{
	size_t off = 0;

	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		size_t name_len, desc_len;

		memcpy(&nh, p + off, sizeof(nh));
		off += sizeof(nh);
		name_len = align4(nh.n_namesz);
		desc_len = align4(nh.n_descsz);
		if (name_len < nh.n_namesz || name_len > len - off ||
		    desc_len < nh.n_descsz || desc_len > len - off - name_len)
			return -ENOEXEC;
		if (nh.n_namesz == 4 && memcmp(p + off, "Xen", 4) == 0 &&
		    nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_descsz >= 4) {
			memcpy(entry, p + off + name_len, sizeof(*entry));
			return 0;
		}
		off += name_len + desc_len;
	}
	return -ENOENT;
}

int elf_pvh_entry(const void *buf, size_t len, uint32_t *entry,
		  struct husk_error *err)
{
	const unsigned char *p = buf;
	Elf64_Ehdr eh;

	if (len < sizeof(eh) || memcmp(p, ELFMAG, SELFMAG) != 0)
		return husk_error_set(err, ENOEXEC, "not an ELF file");
	memcpy(&eh, p, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64)
		return husk_error_set(err, ENOEXEC, "not a little-endian x86-64 ELF");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > len ||
	    (len - eh.e_phoff) / sizeof(Elf64_Phdr) < eh.e_phnum)
		return husk_error_set(err, ENOEXEC, "ELF program headers out of bounds");

	for (size_t i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, p + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_NOTE)
			continue;
		if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
			return husk_error_set(err, ENOEXEC, "ELF note segment %zu out of bounds", i);
		if (find_in_notes(p + ph.p_offset, ph.p_filesz, entry) == 0)
			return 0;
	}
	return husk_error_set(err, ENOEXEC,
			      "ELF has no Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): kernel built without CONFIG_PVH?");
}
