// SPDX-License-Identifier: LGPL-2.1-or-later
/* modules.dep parsing and resolution on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../initramfs/moddep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct husk_error err = { 0 };
	struct moddep md;

	if (moddep_parse(&md, (const char *)data, size, &err) < 0)
		return 0;
	/* resolve every module; the order must put dependencies first, once */
	for (size_t i = 0; i < md.n; i++) {
		husk_error_clear(&err);
		moddep_resolve(&md, md.mods[i].path, &err);
	}
	for (size_t i = 0; i < md.n_order; i++) {
		const struct moddep_module *m = &md.mods[md.order[i]];

		for (size_t j = 0; j < m->n_deps; j++) {
			size_t k = 0;

			while (k < i && md.order[k] != m->deps[j])
				k++;
			if (k == i)
				abort();
		}
	}
	moddep_done(&md);
	return 0;
}
