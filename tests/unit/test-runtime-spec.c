// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * runtime_spec_parse(): a good spec becomes the expected validated
 * struct; every bad field is refused with an error naming it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "spec.h"
#include "test-runtime-spec.h"

static void init_good(struct test_spec *t)
{
	static const char *const tmp_opts[] = {
		"nosuid", "nodev", "mode=1777", "size=65536k", "rprivate", NULL,
	};
	static const char *const bind_opts[] = { "rbind", "ro", NULL };

	ts_init(t, "/", (const char *[]){ "sh", "-c", "echo hi", NULL });
	t->spec.hostname = (char *)"box";
	ts_add_mount(t, "/tmp", "tmpfs", "tmpfs", tmp_opts);
	ts_add_mount(t, "/data", "bind", "/srv/data", bind_opts);
	ts_add_rlimit(t, "RLIMIT_NOFILE", 1024, 4096);
	ts_add_ns(t, "network");
	ts_add_sysctl(t, "net.ipv4.ip_forward", "1");
	ts_add_sysctl(t, "kernel.shmmax", "65536");
}

static void test_good_spec(void **state)
{
	struct test_spec t;
	struct container_config *cfg = NULL;
	struct husk_error err = { 0 };
	char *caps[] = { (char *)"CAP_CHOWN", (char *)"CAP_KILL" };

	init_good(&t);
	t.caps.bounding = caps;
	t.caps.n_bounding = 2;
	t.caps.permitted = caps;
	t.caps.n_permitted = 2;
	t.caps.inheritable = caps;
	t.caps.n_inheritable = 2;
	t.caps.ambient = caps + 1;
	t.caps.n_ambient = 1;
	t.process.capabilities = &t.caps;
	t.memory.limit = 1 << 20;
	t.memory.swap = 3 << 20;
	t.cpu.shares = 1024;
	t.cpu.quota = 50000;
	t.cpu.cpus = (char *)"0-1";
	t.pids.limit = -1;
	t.resources.memory = &t.memory;
	t.resources.cpu = &t.cpu;
	t.resources.pids = &t.pids;
	t.linux.resources = &t.resources;

	assert_int_equal(runtime_spec_parse(&t.spec, "good-1", &cfg, &err), 0);
	assert_string_equal(err.msg, "");
	assert_string_equal(cfg->root_path, "/");
	assert_string_equal(cfg->hostname, "box");
	assert_int_equal(cfg->process->n_args, 3);
	assert_string_equal(cfg->process->args[2], "echo hi");
	assert_null(cfg->process->args[3]);
	assert_string_equal(cfg->process->env[0], "PATH=/bin:/sbin");
	assert_null(cfg->process->env[2]);
	assert_string_equal(cfg->process->cwd, "/");
	/* pid and mount are always the container's own */
	assert_true(cfg->ns[NS_PID].enabled && cfg->ns[NS_MNT].enabled);
	assert_true(cfg->ns[NS_NET].enabled && !cfg->ns[NS_USER].enabled);
	assert_false(cfg->ns[NS_CGROUP].enabled);

	assert_int_equal(cfg->n_mounts, 3);
	assert_int_equal(cfg->mounts[0].flags, MS_NOSUID | MS_NOEXEC | MS_NODEV);
	assert_string_equal(cfg->mounts[1].data, "mode=1777,size=65536k");
	assert_int_equal(cfg->mounts[1].propagation, MS_PRIVATE | MS_REC);
	assert_true(cfg->mounts[2].bind);
	assert_null(cfg->mounts[2].type);
	assert_int_equal(cfg->mounts[2].flags, MS_BIND | MS_REC | MS_RDONLY);

	assert_int_equal(cfg->process->n_rlimits, 1);
	assert_int_equal(cfg->process->rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(cfg->process->rlimits[0].hard, 4096);
	assert_true(cfg->process->has_caps);
	assert_int_equal(cfg->process->caps.bounding, (1 << 0) | (1 << 5));
	assert_int_equal(cfg->process->caps.effective, 0);
	assert_int_equal(cfg->process->caps.ambient, 1 << 5);

	assert_int_equal(cfg->n_sysctls, 2);
	assert_string_equal(cfg->sysctls[1].key, "kernel.shmmax");

	assert_true(cfg->resources.has_memory_max);
	assert_int_equal(cfg->resources.memory_max, 1 << 20);
	assert_int_equal(cfg->resources.swap_max, 2 << 20);	/* OCI counts mem+swap */
	assert_int_equal(cfg->resources.cpu_weight, 39);	/* runc's mapping of 1024 */
	assert_int_equal(cfg->resources.cpu_quota, 50000);
	assert_int_equal(cfg->resources.cpu_period, 100000);
	assert_string_equal(cfg->resources.cpuset_cpus, "0-1");
	assert_int_equal(cfg->resources.pids_max, -1);
	container_config_free(cfg);
}

static void test_ids(void **state)
{
	static const char *const good[] = { "ab", "A1", "a_b.c-d", "0..1" };
	static const char *const bad[] = {
		"", "a", "-ab", ".ab", "_ab", "a/b", "..", "a b", "ab\n", "ä12",
	};
	char long_id[RUNTIME_ID_MAX + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(runtime_id_validate(good[i], "id", NULL), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(runtime_id_validate(bad[i], "id", NULL), -EINVAL);
	memset(long_id, 'a', sizeof(long_id));
	long_id[RUNTIME_ID_MAX] = '\0';
	assert_int_equal(runtime_id_validate(long_id, "id", NULL), 0);
	long_id[RUNTIME_ID_MAX] = 'a';
	long_id[RUNTIME_ID_MAX + 1] = '\0';
	assert_int_equal(runtime_id_validate(long_id, "id", NULL), -EINVAL);
	assert_int_equal(runtime_id_validate(NULL, "id", NULL), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* One bad field at a time                                                   */

struct bad_case {
	const char *name;
	void (*mutate)(struct test_spec *t);
	int code;
	const char *msg;	/* expected substring of the error */
};

static char *bad_caps[] = { (char *)"CAP_CHOWN", (char *)"CAP_FLY" };
static char *bad_env[] = { (char *)"PATH=/bin", (char *)"NOEQUALS" };
static char *rel_paths[] = { (char *)"proc/kcore" };
static Grpc__LinuxIDMapping idmap;
static Grpc__LinuxIDMapping *idmapp[] = { &idmap };
static Grpc__LinuxDevice dev;
static Grpc__LinuxDevice *devp[] = { &dev };

static void m_no_process(struct test_spec *t) { t->spec.process = NULL; }
static void m_no_root(struct test_spec *t) { t->spec.root = NULL; }
static void m_no_linux(struct test_spec *t) { t->spec.linux = NULL; }
static void m_root_relative(struct test_spec *t) { t->root.path = (char *)"rootfs"; }
static void m_root_missing(struct test_spec *t) { t->root.path = (char *)"/no/such/rootfs"; }
static void m_root_file(struct test_spec *t) { t->root.path = (char *)"/proc/self/status"; }
static void m_root_dotdot(struct test_spec *t) { t->root.path = (char *)"/a/../b"; }
static void m_no_args(struct test_spec *t) { t->process.n_args = 0; }
static void m_empty_arg0(struct test_spec *t) { t->args[0] = (char *)""; }
static void m_bad_env(struct test_spec *t)
{
	t->process.env = bad_env;
	t->process.n_env = 2;
}
static void m_cwd_relative(struct test_spec *t) { t->process.cwd = (char *)"tmp"; }
static void m_cwd_dotdot(struct test_spec *t) { t->process.cwd = (char *)"/tmp/../.."; }
static void m_rlimit_unknown(struct test_spec *t)
{
	ts_add_rlimit(t, "RLIMIT_CORE", 0, 0);
	ts_add_rlimit(t, "RLIMIT_NPROC", 10, 10);
	ts_add_rlimit(t, "RLIMIT_FOO", 1, 1);
}
static void m_rlimit_twice(struct test_spec *t)
{
	ts_add_rlimit(t, "RLIMIT_CORE", 0, 0);
	ts_add_rlimit(t, "RLIMIT_CORE", 0, 0);
}
static void m_rlimit_soft_hard(struct test_spec *t) { ts_add_rlimit(t, "RLIMIT_NOFILE", 9, 8); }
static void m_cap_unknown(struct test_spec *t)
{
	t->caps.effective = bad_caps;
	t->caps.n_effective = 2;
	t->process.capabilities = &t->caps;
}
static void m_cap_ambient(struct test_spec *t)
{
	t->caps.ambient = bad_caps;
	t->caps.n_ambient = 1;
	t->process.capabilities = &t->caps;
}
static void m_username(struct test_spec *t) { t->user.username = (char *)"root"; }
static void m_oom_adj(struct test_spec *t) { t->process.oomscoreadj = 1001; }
static void m_ns_unknown(struct test_spec *t) { ts_add_ns(t, "time"); }
static void m_ns_twice(struct test_spec *t) { ts_add_ns(t, "uts"); }
static void m_ns_join_pid(struct test_spec *t) { t->ns[0].path = (char *)"/proc/1/ns/pid"; }
static void m_ns_join_relative(struct test_spec *t)
{
	ts_add_ns(t, "network");
	t->ns[t->linux.n_namespaces - 1].path = (char *)"proc/1/ns/net";
}
static void m_hostname_no_uts(struct test_spec *t)
{
	t->spec.hostname = (char *)"box";
	t->linux.n_namespaces = 3;	/* pid, mount, ipc */
}
static void m_hostname_joined_uts(struct test_spec *t)
{
	t->spec.hostname = (char *)"box";
	t->ns[3].path = (char *)"/proc/1/ns/uts";
}
static void m_hostname_long(struct test_spec *t)
{
	t->spec.hostname = (char *)"a-very-long-host-name-that-is-longer-than-sixty-four-bytes-in-total";
}
static void m_mount_relative(struct test_spec *t) { ts_add_mount(t, "mnt", "tmpfs", "tmpfs", NULL); }
static void m_mount_dotdot(struct test_spec *t) { ts_add_mount(t, "/mnt/../../etc", "tmpfs", "tmpfs", NULL); }
static void m_mount_no_type(struct test_spec *t) { ts_add_mount(t, "/mnt", "", "tmpfs", NULL); }
static void m_mount_type_slash(struct test_spec *t) { ts_add_mount(t, "/mnt", "../x", "tmpfs", NULL); }
static void m_bind_relative(struct test_spec *t) { ts_add_mount(t, "/mnt", "bind", "srv", NULL); }
static void m_mount_comma(struct test_spec *t)
{
	ts_add_mount(t, "/mnt", "tmpfs", "tmpfs", (const char *[]){ "size=1m,mode=700", NULL });
}
static void m_mount_remount(struct test_spec *t)
{
	ts_add_mount(t, "/mnt", "tmpfs", "tmpfs", (const char *[]){ "remount", NULL });
}
static void m_sysctl_global(struct test_spec *t) { ts_add_sysctl(t, "vm.overcommit_memory", "1"); }
static void m_sysctl_no_netns(struct test_spec *t) { ts_add_sysctl(t, "net.ipv4.ip_forward", "1"); }
static void m_sysctl_bad_name(struct test_spec *t) { ts_add_sysctl(t, "net/../../x", "1"); }
static void m_userns_no_maps(struct test_spec *t) { ts_add_ns(t, "user"); }
static void m_maps_no_userns(struct test_spec *t)
{
	grpc__linux_idmapping__init(&idmap);
	idmap.size = 1;
	t->linux.uidmappings = idmapp;
	t->linux.n_uidmappings = 1;
}
static void m_map_overflow(struct test_spec *t)
{
	ts_add_ns(t, "user");
	grpc__linux_idmapping__init(&idmap);
	idmap.hostid = 0xfffffff0;
	idmap.size = 0x100;
	t->linux.uidmappings = idmapp;
	t->linux.n_uidmappings = 1;
}
static void m_masked_relative(struct test_spec *t)
{
	t->linux.maskedpaths = rel_paths;
	t->linux.n_maskedpaths = 1;
}
static void m_readonly_relative(struct test_spec *t)
{
	t->linux.readonlypaths = rel_paths;
	t->linux.n_readonlypaths = 1;
}
static void m_propagation(struct test_spec *t) { t->linux.rootfspropagation = (char *)"sideways"; }
static void m_device_outside_dev(struct test_spec *t)
{
	grpc__linux_device__init(&dev);
	dev.path = (char *)"/etc/null";
	dev.type = (char *)"c";
	t->linux.devices = devp;
	t->linux.n_devices = 1;
}
static void m_device_type(struct test_spec *t)
{
	grpc__linux_device__init(&dev);
	dev.path = (char *)"/dev/thing";
	dev.type = (char *)"x";
	t->linux.devices = devp;
	t->linux.n_devices = 1;
}
static void m_memory_swap(struct test_spec *t)
{
	t->memory.limit = 2 << 20;
	t->memory.swap = 1 << 20;
	t->resources.memory = &t->memory;
	t->linux.resources = &t->resources;
}
static void m_memory_negative(struct test_spec *t)
{
	t->memory.limit = -5;
	t->resources.memory = &t->memory;
	t->linux.resources = &t->resources;
}
static void m_cpu_shares(struct test_spec *t)
{
	t->cpu.shares = 1;
	t->resources.cpu = &t->cpu;
	t->linux.resources = &t->resources;
}
static void m_cpu_period(struct test_spec *t)
{
	t->cpu.period = 10;
	t->resources.cpu = &t->cpu;
	t->linux.resources = &t->resources;
}
static void m_cpu_rt(struct test_spec *t)
{
	t->cpu.realtimeruntime = 1000;
	t->resources.cpu = &t->cpu;
	t->linux.resources = &t->resources;
}
static void m_cpuset(struct test_spec *t)
{
	t->cpu.cpus = (char *)"0-3;rm";
	t->resources.cpu = &t->cpu;
	t->linux.resources = &t->resources;
}

static const struct bad_case bad_cases[] = {
	{ "no process", m_no_process, EINVAL, "spec.process: missing" },
	{ "no root", m_no_root, EINVAL, "spec.root: missing" },
	{ "no linux", m_no_linux, EINVAL, "spec.linux: missing" },
	{ "root relative", m_root_relative, EINVAL, "spec.root.path: 'rootfs' is not an absolute path" },
	{ "root missing", m_root_missing, ENOENT, "spec.root.path: /no/such/rootfs: No such file" },
	{ "root file", m_root_file, ENOTDIR, "spec.root.path: /proc/self/status is not a directory" },
	{ "root dotdot", m_root_dotdot, EINVAL, "spec.root.path: '/a/../b' has a '.' or '..' component" },
	{ "no args", m_no_args, EINVAL, "spec.process.args: must not be empty" },
	{ "empty arg0", m_empty_arg0, EINVAL, "spec.process.args[0]: must not be empty" },
	{ "env", m_bad_env, EINVAL, "spec.process.env[1]: 'NOEQUALS' is not KEY=value" },
	{ "cwd relative", m_cwd_relative, EINVAL, "spec.process.cwd: 'tmp' is not an absolute path" },
	{ "cwd dotdot", m_cwd_dotdot, EINVAL, "spec.process.cwd: '/tmp/../..' has a '.' or '..' component" },
	{ "rlimit unknown", m_rlimit_unknown, EINVAL, "spec.process.rlimits[2].type: unknown rlimit 'RLIMIT_FOO'" },
	{ "rlimit twice", m_rlimit_twice, EINVAL, "spec.process.rlimits[1].type: 'RLIMIT_CORE' given twice" },
	{ "rlimit soft>hard", m_rlimit_soft_hard, EINVAL, "spec.process.rlimits[0]: soft limit 9 exceeds hard limit 8" },
	{ "cap unknown", m_cap_unknown, EINVAL, "spec.process.capabilities.effective[1]: unknown capability 'CAP_FLY'" },
	{ "cap ambient", m_cap_ambient, EINVAL, "spec.process.capabilities.ambient: every ambient capability must also be permitted and inheritable" },
	{ "username", m_username, EINVAL, "spec.process.user.username: user names are not resolved" },
	{ "oom score", m_oom_adj, EINVAL, "spec.process.oomScoreAdj: 1001 is outside -1000..1000" },
	{ "ns unknown", m_ns_unknown, EINVAL, "spec.linux.namespaces[4].type: unknown namespace 'time'" },
	{ "ns twice", m_ns_twice, EINVAL, "spec.linux.namespaces[4].type: namespace 'uts' given twice" },
	{ "ns join pid", m_ns_join_pid, EOPNOTSUPP, "spec.linux.namespaces[0].path: joining an existing pid namespace is not supported" },
	{ "ns join relative", m_ns_join_relative, EINVAL, "spec.linux.namespaces[4].path: 'proc/1/ns/net' is not an absolute path" },
	{ "hostname no uts", m_hostname_no_uts, EINVAL, "spec.hostname: setting a hostname needs a new uts namespace" },
	{ "hostname joined uts", m_hostname_joined_uts, EINVAL, "spec.hostname: setting a hostname needs a new uts namespace" },
	{ "hostname long", m_hostname_long, EINVAL, "spec.hostname: longer than 64 bytes" },
	{ "mount relative", m_mount_relative, EINVAL, "spec.mounts[1].destination: 'mnt' is not an absolute path" },
	{ "mount dotdot", m_mount_dotdot, EINVAL, "spec.mounts[1].destination: '/mnt/../../etc' has a '.' or '..' component" },
	{ "mount no type", m_mount_no_type, EINVAL, "spec.mounts[1].type: needed unless the mount is a bind mount" },
	{ "mount type slash", m_mount_type_slash, EINVAL, "spec.mounts[1].type: '../x' contains '/'" },
	{ "bind relative", m_bind_relative, EINVAL, "spec.mounts[1].source: 'srv' is not an absolute path" },
	{ "mount comma", m_mount_comma, EINVAL, "spec.mounts[1].options[0]: 'size=1m,mode=700' contains ','" },
	{ "mount remount", m_mount_remount, EINVAL, "spec.mounts[1].options: 'remount' is not allowed" },
	{ "sysctl global", m_sysctl_global, EPERM, "spec.linux.sysctl[vm.overcommit_memory]: not a namespaced sysctl" },
	{ "sysctl no netns", m_sysctl_no_netns, EPERM, "spec.linux.sysctl[net.ipv4.ip_forward]: needs the container's own network namespace" },
	{ "sysctl bad name", m_sysctl_bad_name, EINVAL, "spec.linux.sysctl[net/../../x]: not a sysctl name" },
	{ "userns no maps", m_userns_no_maps, EINVAL, "spec.linux: a user namespace needs uidMappings and gidMappings" },
	{ "maps no userns", m_maps_no_userns, EINVAL, "spec.linux.uidMappings: given without a user namespace" },
	{ "map overflow", m_map_overflow, EINVAL, "spec.linux.uidMappings[0]: empty or overflowing range" },
	{ "masked relative", m_masked_relative, EINVAL, "spec.linux.maskedPaths[0]: 'proc/kcore' is not an absolute path" },
	{ "readonly relative", m_readonly_relative, EINVAL, "spec.linux.readonlyPaths[0]: 'proc/kcore' is not an absolute path" },
	{ "propagation", m_propagation, EINVAL, "spec.linux.rootfsPropagation: unknown 'sideways'" },
	{ "device outside dev", m_device_outside_dev, EINVAL, "spec.linux.devices[0].path: '/etc/null' is not under /dev" },
	{ "device type", m_device_type, EINVAL, "spec.linux.devices[0].type: must be one of c, u, b, p" },
	{ "memory swap", m_memory_swap, EINVAL, "spec.linux.resources.memory.swap: 1048576 is below memory.limit 2097152" },
	{ "memory negative", m_memory_negative, EINVAL, "spec.linux.resources.memory: limits must be positive" },
	{ "cpu shares", m_cpu_shares, EINVAL, "spec.linux.resources.cpu.shares: 1 is outside 2..262144" },
	{ "cpu period", m_cpu_period, EINVAL, "spec.linux.resources.cpu.period: 10 is outside 1000..1000000" },
	{ "cpu realtime", m_cpu_rt, EOPNOTSUPP, "spec.linux.resources.cpu: realtime cpu limits do not exist in cgroup v2" },
	{ "cpuset", m_cpuset, EINVAL, "spec.linux.resources.cpu.cpus: '0-3;rm' is not a cpu/node list" },
};

static void test_bad_fields(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct container_config *cfg = NULL;
		struct husk_error err = { 0 };
		struct test_spec t;
		int r;

		ts_init(&t, "/", (const char *[]){ "true", NULL });
		c->mutate(&t);
		r = runtime_spec_parse(&t.spec, "bad-case", &cfg, &err);
		if (r != -c->code || !strstr(err.msg, c->msg))
			fail_msg("case '%s': got %d '%s', want %d '%s'", c->name, r,
				 err.msg, -c->code, c->msg);
		assert_null(cfg);
	}
}

static void test_bad_container_id(void **state)
{
	struct test_spec t;
	struct container_config *cfg = NULL;
	struct husk_error err = { 0 };

	ts_init(&t, "/", (const char *[]){ "true", NULL });
	assert_int_equal(runtime_spec_parse(&t.spec, "../etc", &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "container_id: id '../etc' must match"));
	assert_null(cfg);
}

static void test_exec_process(void **state)
{
	struct test_spec t;
	struct process_config *pc = NULL;
	struct husk_error err = { 0 };

	assert_int_equal(runtime_process_parse(NULL, &pc, &err), -EINVAL);
	assert_string_equal(err.msg, "process: missing");

	husk_error_clear(&err);
	ts_init(&t, "/", (const char *[]){ "ls", "-l", NULL });
	t.process.terminal = true;
	t.user.uid = 5;
	uint32_t gids[] = { 7, 8 };
	t.user.additionalgids = gids;
	t.user.n_additionalgids = 2;
	assert_int_equal(runtime_process_parse(&t.process, &pc, &err), 0);
	assert_true(pc->terminal);
	assert_int_equal(pc->uid, 5);
	assert_int_equal(pc->n_gids, 2);
	assert_int_equal(pc->gids[1], 8);
	assert_false(pc->has_caps);
	process_config_free(pc);

	husk_error_clear(&err);
	t.process.n_args = 0;
	assert_int_equal(runtime_process_parse(&t.process, &pc, &err), -EINVAL);
	assert_string_equal(err.msg, "process.args: must not be empty");
}

static void test_resources_update(void **state)
{
	Grpc__LinuxResources res;
	Grpc__LinuxMemory mem;
	Grpc__LinuxBlockIO bio;
	struct resources_config rc;
	struct husk_error err = { 0 };

	grpc__linux_resources__init(&res);
	grpc__linux_memory__init(&mem);
	grpc__linux_block_io__init(&bio);
	mem.limit = -1;
	mem.swap = -1;
	bio.weight = 1000;
	res.memory = &mem;
	res.blockio = &bio;
	assert_int_equal(spec_resources_parse(&res, "resources", &rc, &err), 0);
	assert_true(rc.has_memory_max && rc.memory_max == -1);
	assert_true(rc.has_swap_max && rc.swap_max == -1);
	assert_true(rc.has_io_weight);
	assert_int_equal(rc.io_weight, 10000);
	assert_false(rc.has_cpu_max || rc.has_pids_max || rc.has_cpu_weight);
	resources_config_clear(&rc);

	bio.weight = 5;
	assert_int_equal(spec_resources_parse(&res, "resources", &rc, &err), -EINVAL);
	assert_string_equal(err.msg, "resources.blockIO.weight: 5 is outside 10..1000");

	/* hugetlb page sizes become file names: checked strictly */
	Grpc__LinuxHugepageLimit hl = GRPC__LINUX_HUGEPAGE_LIMIT__INIT;
	Grpc__LinuxHugepageLimit *hlp[] = { &hl };
	bio.weight = 0;
	hl.pagesize = (char *)"2MB";
	hl.limit = 4 << 20;
	res.hugepagelimits = hlp;
	res.n_hugepagelimits = 1;
	assert_int_equal(spec_resources_parse(&res, "resources", &rc, &err), 0);
	assert_int_equal(rc.n_hugetlb, 1);
	assert_string_equal(rc.hugetlb[0].pagesize, "2MB");
	assert_int_equal(rc.hugetlb[0].limit, 4 << 20);
	resources_config_clear(&rc);
	husk_error_clear(&err);
	hl.pagesize = (char *)"2MB/../../x";
	assert_int_equal(spec_resources_parse(&res, "resources", &rc, &err), -EINVAL);
	assert_string_equal(err.msg, "resources.hugepageLimits[0].pageSize: '2MB/../../x' is not a page size like 2MB");

	/* nothing given: nothing to change */
	assert_int_equal(spec_resources_parse(NULL, "resources", &rc, NULL), 0);
	assert_false(rc.has_memory_max);
}

static void test_name_tables(void **state)
{
	assert_int_equal(spec_cap_from_name("CAP_SYS_ADMIN"), 21);
	assert_int_equal(spec_cap_from_name("CAP_CHECKPOINT_RESTORE"), 40);
	assert_int_equal(spec_cap_from_name("cap_sys_admin"), -1);
	assert_int_equal(spec_rlimit_from_name("RLIMIT_STACK"), RLIMIT_STACK);
	assert_int_equal(spec_rlimit_from_name("NOFILE"), -1);
	assert_string_equal(ns_kind_name(NS_NET), "network");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_spec),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_bad_container_id),
		cmocka_unit_test(test_exec_process),
		cmocka_unit_test(test_resources_update),
		cmocka_unit_test(test_name_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
