// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer: a StatsContainer reply as the guest may send it, decoded by
 * protobuf-c and converted by libhusk (any sub-message may be missing).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../host/lib/sandbox-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Grpc__StatsContainerResponse *resp;
	struct husk_container_stats st;

	resp = grpc__stats_container_response__unpack(NULL, size, data);
	container_stats_from_reply(resp, &st);
	/* Without a memory section nothing may be reported. */
	if ((!resp || !resp->cgroup_stats || !resp->cgroup_stats->memory_stats) &&
	    (st.memory_usage || st.memory_limit || st.memory_cache))
		abort();
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}
