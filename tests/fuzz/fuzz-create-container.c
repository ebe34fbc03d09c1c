// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * CreateContainer's edge without execution: decode oci.Spec bytes as the
 * agent gets them, validate them into a container_config, free it all.
 * The container id comes from the input's first byte so id validation is
 * exercised too.
 */
#include <stddef.h>
#include <stdint.h>

#include "oci.pb-c.h"
#include "runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = { "ctr-1", "a", "../x", "ok.id_2-3" };
	struct container_config *cfg = NULL;
	struct husk_error err = { 0 };
	Grpc__Spec *spec;
	const char *id = ids[0];

	if (size > 0) {
		id = ids[data[0] % 4];
		data++;
		size--;
	}
	spec = grpc__spec__unpack(NULL, size, data);
	if (!spec)
		return 0;
	if (runtime_spec_parse(spec, id, &cfg, &err) == 0) {
		container_config_free(cfg);
	} else if (err.code == 0 || err.msg[0] == '\0') {
		__builtin_trap();	/* every refusal must say why */
	}
	if (spec->process) {
		struct process_config *pc = NULL;

		if (runtime_process_parse(spec->process, &pc, NULL) == 0)
			process_config_free(pc);
	}
	grpc__spec__free_unpacked(spec, NULL);
	return 0;
}
