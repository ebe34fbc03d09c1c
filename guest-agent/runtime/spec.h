/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Validated container configuration: what runtime_spec_parse() makes of an
 * oci.Spec.  Everything here has been bounds- and syntax-checked; the
 * setup code trusts it.  Private to the runtime and its unit tests.
 */
#ifndef HUSK_AGENT_RUNTIME_SPEC_H
#define HUSK_AGENT_RUNTIME_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime.h"

/* Bounds on untrusted input (a ttRPC frame is at most 4 MiB anyway). */
#define SPEC_PATH_MAX		4096
#define SPEC_ARGS_MAX		4096	/* args or env entries */
#define SPEC_ARG_LEN_MAX	131072	/* the kernel's MAX_ARG_STRLEN */
#define SPEC_MOUNTS_MAX		1024
#define SPEC_MOUNT_DATA_MAX	4096
#define SPEC_PATHLIST_MAX	1024	/* masked / readonly paths, devices */
#define SPEC_SYSCTL_MAX		256
#define SPEC_GIDS_MAX		65536
#define SPEC_IDMAPS_MAX		340	/* the kernel's limit per map */
#define SPEC_HOSTNAME_MAX	64
#define SPEC_HUGETLB_MAX	8	/* page sizes */

enum ns_kind {
	NS_PID,
	NS_NET,
	NS_MNT,
	NS_IPC,
	NS_UTS,
	NS_USER,
	NS_CGROUP,
	NS_COUNT,
};

struct ns_config {
	bool enabled;		/* a new one (path NULL) or join path */
	char *path;
};

struct mount_config {
	char *source;		/* NULL for pseudo filesystems without one */
	char *destination;	/* absolute, inside the container */
	char *type;		/* NULL for a bind mount */
	unsigned long flags;	/* MS_* applied at mount time */
	unsigned long propagation;	/* MS_PRIVATE etc. (| MS_REC), 0 none */
	bool bind;
	char *data;		/* filesystem options ("mode=755,size=64k"), or NULL */
};

struct rlimit_config {
	int resource;		/* RLIMIT_* */
	uint64_t soft, hard;
};

struct caps_config {
	uint64_t bounding, effective, inheritable, permitted, ambient;
};

struct process_config {
	char **args;		/* NULL-terminated */
	size_t n_args;
	char **env;		/* NULL-terminated */
	size_t n_env;
	char *cwd;		/* absolute */
	bool terminal;
	uint16_t rows, cols;
	uint32_t uid, gid;
	gid_t *gids;
	size_t n_gids;
	bool has_caps;		/* false: keep the full set (as root) */
	struct caps_config caps;
	struct rlimit_config *rlimits;
	size_t n_rlimits;
	bool no_new_privs;
	bool has_oom_score_adj;
	int oom_score_adj;
};

/* Each has_* says the spec asked for it; values already in cgroup v2 terms. */
struct resources_config {
	bool has_memory_max;
	int64_t memory_max;		/* bytes, -1 = "max" */
	bool has_memory_low;
	int64_t memory_low;		/* from Reservation */
	bool has_swap_max;
	int64_t swap_max;		/* swap only (OCI gives memory+swap), -1 = max */
	bool has_cpu_weight;
	uint64_t cpu_weight;		/* 1..10000, from Shares */
	bool has_cpu_max;
	int64_t cpu_quota;		/* usec, -1 = "max" */
	uint64_t cpu_period;		/* usec */
	char *cpuset_cpus;		/* NULL when unset */
	char *cpuset_mems;
	bool has_pids_max;
	int64_t pids_max;		/* -1 = "max" */
	bool has_io_weight;
	uint64_t io_weight;		/* 1..10000, from BlockIO.Weight */
	size_t n_hugetlb;
	struct hugetlb_limit {
		char pagesize[16];	/* "2MB", as in hugetlb.2MB.max */
		uint64_t limit;		/* bytes */
	} hugetlb[SPEC_HUGETLB_MAX];
};

struct idmap_config {
	uint32_t container_id, host_id, size;
};

struct sysctl_config {
	char *key;		/* dotted name */
	char *value;
};

struct device_config {
	char *path;		/* absolute, under /dev */
	mode_t type;		/* S_IFCHR, S_IFBLK or S_IFIFO */
	uint32_t major, minor;
	mode_t mode;		/* permission bits */
	uid_t uid;
	gid_t gid;
};

struct container_config {
	struct process_config *process;
	char *root_path;
	bool root_readonly;
	char *hostname;		/* NULL: leave the UTS namespace's own */
	unsigned long rootfs_propagation;	/* MS_* | MS_REC, 0 = rprivate */
	struct ns_config ns[NS_COUNT];
	struct idmap_config *uid_maps, *gid_maps;
	size_t n_uid_maps, n_gid_maps;
	struct mount_config *mounts;
	size_t n_mounts;
	char **masked_paths;
	size_t n_masked_paths;
	char **readonly_paths;
	size_t n_readonly_paths;
	struct sysctl_config *sysctls;
	size_t n_sysctls;
	struct device_config *devices;
	size_t n_devices;
	struct resources_config resources;
};

/* Validate LinuxResources (at `field`, e.g. "spec.linux.resources"). */
int spec_resources_parse(const Grpc__LinuxResources *res, const char *field,
			 struct resources_config *out, struct husk_error *err);
void resources_config_clear(struct resources_config *rc);

/* Name tables, shared with the setup code and the tests. */
const char *ns_kind_name(enum ns_kind k);
int spec_cap_from_name(const char *name);	/* -1 when unknown */
int spec_rlimit_from_name(const char *name);	/* -1 when unknown */

#endif
