// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer: config.json -> grpc.Spec, libhusk's edge for OCI bundles. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../host/lib/oci-spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct husk_error err = { 0 };
	ProtobufCMessage *m = NULL;
	uint8_t *buf;
	size_t len;

	if (oci_json_to_message((const char *)data, size, &grpc__spec__descriptor, "fuzz", &m,
				&err) < 0) {
		if (m || !err.code || !err.msg[0])
			abort();	/* a failure leaks nothing and says why */
		return 0;
	}
	/* What converted must be a well-formed message: it packs and reads back. */
	len = protobuf_c_message_get_packed_size(m);
	buf = malloc(len ? len : 1);
	if (!buf)
		abort();
	if (protobuf_c_message_pack(m, buf) != len)
		abort();
	protobuf_c_message_free_unpacked(m, NULL);
	m = protobuf_c_message_unpack(&grpc__spec__descriptor, NULL, len, buf);
	if (!m)
		abort();
	protobuf_c_message_free_unpacked(m, NULL);
	free(buf);
	return 0;
}
