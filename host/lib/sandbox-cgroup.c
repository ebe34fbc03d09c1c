// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A container's cgroup in the guest, driven from the host: its counters
 * (StatsContainer), freezing and thawing it (PauseContainer,
 * ResumeContainer) and changing its limits (UpdateContainer).
 */
#include <errno.h>

#include "oci-spec.h"
#include "sandbox-internal.h"
#include "util.h"

HUSK_EXPORT int husk_container_stats(struct husk_container *ctr,
				     struct husk_container_stats *st, struct husk_error *err)
{
	Grpc__StatsContainerResponse *resp;
	int r;

	r = agent_stats_container(&ctr->sb->agent, ctr->id, &resp, err);
	if (r < 0)
		return r;
	container_stats_from_reply(resp, st);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

HUSK_EXPORT int husk_container_pause(struct husk_container *ctr, struct husk_error *err)
{
	return agent_pause_container(&ctr->sb->agent, ctr->id, true, err);
}

HUSK_EXPORT int husk_container_resume(struct husk_container *ctr, struct husk_error *err)
{
	return agent_pause_container(&ctr->sb->agent, ctr->id, false, err);
}

HUSK_EXPORT int husk_container_update(struct husk_container *ctr, const char *resources_json,
				      size_t len, struct husk_error *err)
{
	ProtobufCMessage *res;
	int r;

	if (!resources_json)
		return husk_error_set(err, EINVAL, "resources: missing");
	r = oci_json_to_message(resources_json, len, &grpc__linux_resources__descriptor,
				"resources", &res, err);
	if (r < 0)
		return r;
	r = agent_update_container(&ctr->sb->agent, ctr->id, (Grpc__LinuxResources *)res, err);
	protobuf_c_message_free_unpacked(res, NULL);
	return r;
}
