/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A valid oci.Spec built from protobuf-c structs on the stack, for the
 * runtime's tests to start from and then break one field at a time.
 */
#ifndef HUSK_TEST_RUNTIME_SPEC_H
#define HUSK_TEST_RUNTIME_SPEC_H

#include <string.h>

#include "oci.pb-c.h"

#define TS_MAX 16

struct test_spec {
	Grpc__Spec spec;
	Grpc__Process process;
	Grpc__User user;
	Grpc__Root root;
	Grpc__Linux linux;
	Grpc__LinuxNamespace ns[TS_MAX];
	Grpc__LinuxNamespace *nsp[TS_MAX];
	Grpc__Mount mounts[TS_MAX];
	Grpc__Mount *mountp[TS_MAX];
	char *mount_opts[TS_MAX][TS_MAX];
	Grpc__POSIXRlimit rlimits[TS_MAX];
	Grpc__POSIXRlimit *rlimitp[TS_MAX];
	Grpc__LinuxCapabilities caps;
	Grpc__LinuxResources resources;
	Grpc__LinuxMemory memory;
	Grpc__LinuxCPU cpu;
	Grpc__LinuxPids pids;
	Grpc__Linux__SysctlEntry sysctl[TS_MAX];
	Grpc__Linux__SysctlEntry *sysctlp[TS_MAX];
	char *args[TS_MAX];
	char *env[TS_MAX];
};

static inline void ts_add_ns(struct test_spec *t, const char *type)
{
	size_t i = t->linux.n_namespaces++;

	grpc__linux_namespace__init(&t->ns[i]);
	t->ns[i].type = (char *)type;
	t->nsp[i] = &t->ns[i];
}

/* Mount with up to TS_MAX-1 options, NULL-terminated. */
static inline Grpc__Mount *ts_add_mount(struct test_spec *t, const char *dest,
					const char *type, const char *source,
					const char *const *opts)
{
	size_t i = t->spec.n_mounts++;
	Grpc__Mount *m = &t->mounts[i];

	grpc__mount__init(m);
	m->destination = (char *)dest;
	m->type = (char *)type;
	m->source = (char *)source;
	m->options = t->mount_opts[i];
	for (; opts && *opts && m->n_options < TS_MAX - 1; opts++)
		t->mount_opts[i][m->n_options++] = (char *)*opts;
	t->mountp[i] = m;
	return m;
}

static inline void ts_add_rlimit(struct test_spec *t, const char *type,
				 uint64_t soft, uint64_t hard)
{
	size_t i = t->process.n_rlimits++;

	grpc__posixrlimit__init(&t->rlimits[i]);
	t->rlimits[i].type = (char *)type;
	t->rlimits[i].soft = soft;
	t->rlimits[i].hard = hard;
	t->rlimitp[i] = &t->rlimits[i];
}

static inline void ts_add_sysctl(struct test_spec *t, const char *key,
				 const char *value)
{
	size_t i = t->linux.n_sysctl++;

	grpc__linux__sysctl_entry__init(&t->sysctl[i]);
	t->sysctl[i].key = (char *)key;
	t->sysctl[i].value = (char *)value;
	t->sysctlp[i] = &t->sysctl[i];
}

/* args is NULL-terminated.  Namespaces: pid, mount, ipc, uts; /proc mounted. */
static inline void ts_init(struct test_spec *t, const char *rootfs,
			   const char *const *args)
{
	static const char *const proc_opts[] = { "nosuid", "noexec", "nodev", NULL };

	memset(t, 0, sizeof(*t));
	grpc__spec__init(&t->spec);
	grpc__process__init(&t->process);
	grpc__user__init(&t->user);
	grpc__root__init(&t->root);
	grpc__linux__init(&t->linux);
	grpc__linux_capabilities__init(&t->caps);
	grpc__linux_resources__init(&t->resources);
	grpc__linux_memory__init(&t->memory);
	grpc__linux_cpu__init(&t->cpu);
	grpc__linux_pids__init(&t->pids);

	t->spec.process = &t->process;
	t->spec.root = &t->root;
	t->spec.linux = &t->linux;
	t->spec.mounts = t->mountp;
	t->root.path = (char *)rootfs;

	t->process.user = &t->user;
	t->process.args = t->args;
	for (; args && *args && t->process.n_args < TS_MAX - 1; args++)
		t->args[t->process.n_args++] = (char *)*args;
	t->env[0] = (char *)"PATH=/bin:/sbin";
	t->env[1] = (char *)"HOME=/";
	t->process.env = t->env;
	t->process.n_env = 2;
	t->process.cwd = (char *)"/";
	t->process.rlimits = t->rlimitp;

	t->linux.namespaces = t->nsp;
	t->linux.sysctl = t->sysctlp;
	ts_add_ns(t, "pid");
	ts_add_ns(t, "mount");
	ts_add_ns(t, "ipc");
	ts_add_ns(t, "uts");
	ts_add_mount(t, "/proc", "proc", "proc", proc_opts);
}

#endif
