/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI runtime specs inside libhusk: config.json is parsed once, at the
 * edge, into the protobuf message the agent takes (grpc.Spec), driven by
 * the protobuf-c descriptors so every field of oci.proto is covered by one
 * code path.  Strict: unknown keys, wrong JSON types, out-of-range numbers
 * and duplicate keys are errors naming the field.
 */
#ifndef HUSK_LIB_OCI_SPEC_H
#define HUSK_LIB_OCI_SPEC_H

#include <stdbool.h>

#include "husk-common/error.h"
#include "husk/husk.h"
#include "oci.pb-c.h"

struct husk_spec {
	Grpc__Spec *pb;
	char *rootfs;		/* absolute host path of root.path */
};

/*
 * JSON text -> a newly allocated message of type desc (freed with
 * protobuf_c_message_free_unpacked(msg, NULL)).  what names the document
 * in errors ("config.json").
 */
int oci_json_to_message(const char *text, size_t len,
			const ProtobufCMessageDescriptor *desc, const char *what,
			ProtobufCMessage **msg_out, struct husk_error *err);

#endif
