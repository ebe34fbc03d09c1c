/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CreateContainerRequest.storages: file systems the host asks the agent to
 * mount before the container is made, as Kata's agent does.  husk uses one
 * kind: a virtio-9p share holding the container's rootfs (driver "9p",
 * source = the share's mount tag), mounted once per tag under SHARES_ROOT
 * and bound into each container's mount point.  Mount points must lie directly under
 * STORAGE_ROOT/<container id>/, so removing a container finds its mounts
 * without bookkeeping.
 */
#ifndef HUSK_AGENT_STORAGE_H
#define HUSK_AGENT_STORAGE_H

#include <stddef.h>

#include <husk-common/error.h>

#include "agent.pb-c.h"

#define STORAGE_ROOT "/run/husk/containers"
/* Where each 9p share is mounted once, to be bound into containers. */
#define SHARES_ROOT "/run/husk/shares"

/* Validate and mount every storage; on failure nothing stays mounted. */
int storage_mount_all(const char *container_id, Grpc__Storage *const *storages, size_t n,
		      struct husk_error *err);

/* Unmount and remove STORAGE_ROOT/<container id> (no-op when absent). */
void storage_unmount_container(const char *container_id);

#endif
