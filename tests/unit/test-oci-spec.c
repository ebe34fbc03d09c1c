// SPDX-License-Identifier: LGPL-2.1-or-later
/* config.json -> grpc.Spec (host/lib/oci-json.c, oci-spec.c) and the run-time overrides. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../host/lib/oci-spec.h"	/* before husk.h: the internal error.h first */

/* What `runc spec` writes (1.1), trimmed of nothing: every key must convert. */
static const char runc_spec[] =
	"{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"terminal\":true,"
	"\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"sh\"],"
	"\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"TERM=xterm\"],"
	"\"cwd\":\"/\",\"capabilities\":{\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\","
	"\"CAP_NET_BIND_SERVICE\"],\"effective\":[\"CAP_AUDIT_WRITE\"],\"permitted\":[\"CAP_KILL\"],"
	"\"ambient\":[\"CAP_NET_BIND_SERVICE\"]},\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\","
	"\"hard\":18446744073709551615,\"soft\":1024}],\"noNewPrivileges\":true},"
	"\"root\":{\"path\":\".\",\"readonly\":true},\"hostname\":\"runc\","
	"\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	"{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
	"\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]}],"
	"\"annotations\":{\"a\":\"1\",\"b\":\"2\"},"
	"\"linux\":{\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1}],"
	"\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"},"
	"\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}],"
	"\"memory\":{\"limit\":134217728,\"disableOOMKiller\":false},"
	"\"pids\":{\"limit\":-1},\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":0}]},"
	"\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},"
	"{\"type\":\"uts\"},{\"type\":\"mount\"},{\"type\":\"cgroup\"}],"
	"\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\"]}}";

static int from_json(const char *text, struct husk_spec **spec, struct husk_error *err)
{
	memset(err, 0, sizeof(*err));
	return husk_spec_from_json(text, strlen(text), "/", spec, err);
}

static void test_runc_spec_converts(void **state)
{
	struct husk_spec *spec = NULL;
	struct husk_error err;
	const Grpc__Spec *s;

	assert_int_equal(from_json(runc_spec, &spec, &err), 0);
	s = spec->pb;
	assert_string_equal(s->version, "1.0.2-dev");
	assert_true(s->process->terminal);
	assert_int_equal(s->process->n_args, 1);
	assert_string_equal(s->process->env[1], "TERM=xterm");
	assert_int_equal(s->process->capabilities->n_bounding, 3);
	assert_string_equal(s->process->capabilities->ambient[0], "CAP_NET_BIND_SERVICE");
	assert_true(s->process->rlimits[0]->hard == UINT64_MAX);
	assert_int_equal(s->process->rlimits[0]->soft, 1024);
	assert_true(s->process->nonewprivileges);
	assert_string_equal(spec->rootfs, "/");
	assert_true(husk_spec_rootfs_readonly(spec));
	assert_string_equal(s->hostname, "runc");
	assert_int_equal(s->n_mounts, 2);
	assert_string_equal(s->mounts[1]->options[3], "size=65536k");
	assert_int_equal(s->n_annotations, 2);
	assert_string_equal(s->annotations[1]->key, "b");
	assert_string_equal(s->annotations[1]->value, "2");
	assert_int_equal(s->linux->uidmappings[0]->hostid, 1000);
	assert_string_equal(s->linux->sysctl[0]->key, "net.ipv4.ip_forward");
	assert_int_equal(s->linux->resources->memory->limit, 134217728);
	assert_int_equal(s->linux->resources->pids->limit, -1);
	assert_string_equal(s->linux->resources->hugepagelimits[0]->pagesize, "2MB");
	assert_int_equal(s->linux->n_namespaces, 6);
	assert_string_equal(s->linux->namespaces[5]->type, "cgroup");
	assert_string_equal(s->linux->readonlypaths[0], "/proc/sys");
	husk_spec_free(spec);
}

struct bad_case {
	const char *json;
	const char *message;	/* substring of the error */
};

static const struct bad_case bad_cases[] = {
	{ "{\"process\":{\"user\":{\"uid\":-1}},\"linux\":{},\"root\":{\"path\":\"/\"}}",
	  "config.json: process.user.uid: expected an integer in 0..4294967295" },
	{ "{\"process\":{\"args\":\"sh\"},\"linux\":{},\"root\":{\"path\":\"/\"}}",
	  "process.args: expected an array, got a string" },
	{ "{\"process\":{\"args\":[\"sh\",1]},\"linux\":{},\"root\":{\"path\":\"/\"}}",
	  "process.args[1]: expected a string, got a number" },
	{ "{\"process\":{\"colour\":\"blue\"},\"linux\":{},\"root\":{\"path\":\"/\"}}",
	  "process.colour: unknown field" },
	{ "{\"process\":{},\"process\":{},\"linux\":{},\"root\":{\"path\":\"/\"}}",
	  "process: given twice" },
	{ "{\"process\":{\"terminal\":1},\"linux\":{},\"root\":{\"path\":\"/\"}}",
	  "process.terminal: expected a boolean, got a number" },
	{ "{\"process\":{\"oomScoreAdj\":1.5},\"linux\":{},\"root\":{\"path\":\"/\"}}",
	  "process.oomScoreAdj: expected an integer" },
	{ "{\"process\":{},\"linux\":{\"sysctl\":{\"a\":1}},\"root\":{\"path\":\"/\"}}",
	  "linux.sysctl.a: expected a string, got a number" },
	{ "{\"process\":{},\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":null}]},"
	  "\"root\":{\"path\":\"/\"}}",
	  "linux.namespaces[0].path: expected a string, got null" },
	/* proto names are not JSON keys: OCI spells them lowerCamelCase. */
	{ "{\"Process\":{},\"linux\":{},\"root\":{\"path\":\"/\"}}", "Process: unknown field" },
	{ "{\"process\":{},\"linux\":{}}", "root.path: missing" },
	{ "{\"linux\":{},\"root\":{\"path\":\"/\"}}", "process: missing" },
	{ "{\"process\":{},\"linux\":{},\"root\":{\"path\":\"/nonexistent-husk\"}}",
	  "root.path: /nonexistent-husk: No such file or directory" },
	{ "[]", "document: expected an object, got an array" },
	{ "{\"process\":{},}", "not valid JSON (at byte 14)" },
};

static void test_bad_specs_name_the_field(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct husk_spec *spec = NULL;
		struct husk_error err;
		int r = from_json(bad_cases[i].json, &spec, &err);

		if (r == 0 || !strstr(err.msg, bad_cases[i].message))
			fail_msg("case %zu: r=%d msg '%s', wanted '%s'", i, r, err.msg,
				 bad_cases[i].message);
		assert_null(spec);
		assert_int_equal(err.code, -r);
	}
}

static void test_defaults_and_overrides(void **state)
{
	const char *argv[] = { "echo", "a b", NULL };
	struct husk_spec *spec = NULL;
	struct husk_error err = { 0 };
	const Grpc__Spec *s;
	size_t n_ns;

	assert_int_equal(husk_spec_from_rootfs("/tmp", &spec, &err), 0);
	s = spec->pb;
	assert_string_equal(s->process->args[0], "/bin/sh");
	assert_false(husk_spec_terminal(spec));
	assert_false(husk_spec_rootfs_readonly(spec));
	assert_int_equal(s->process->capabilities->n_bounding, 14);
	n_ns = s->linux->n_namespaces;

	assert_int_equal(husk_spec_set_args(spec, argv, &err), 0);
	assert_int_equal(s->process->n_args, 2);
	assert_string_equal(s->process->args[1], "a b");
	assert_int_equal(husk_spec_set_env(spec, "PATH=/bin", &err), 0);
	assert_int_equal(husk_spec_set_env(spec, "NEW=1", &err), 0);
	assert_string_equal(s->process->env[0], "PATH=/bin");
	assert_string_equal(s->process->env[s->process->n_env - 1], "NEW=1");
	assert_int_equal(husk_spec_set_env(spec, "=x", &err), -EINVAL);
	assert_int_equal(husk_spec_set_cwd(spec, "relative", &err), -EINVAL);
	assert_int_equal(husk_spec_set_cwd(spec, "/srv", &err), 0);
	assert_string_equal(s->process->cwd, "/srv");
	husk_spec_set_user(spec, 1000, 1001);
	assert_int_equal(s->process->user->uid, 1000);
	assert_int_equal(s->process->user->gid, 1001);
	/* The default spec has a uts namespace already: none is added. */
	assert_int_equal(husk_spec_set_hostname(spec, "box", &err), 0);
	assert_int_equal(s->linux->n_namespaces, n_ns);
	assert_int_equal(husk_spec_set_memory_limit(spec, 128 << 20, &err), 0);
	assert_int_equal(s->linux->resources->memory->limit, 128 << 20);
	assert_int_equal(husk_spec_set_pids_limit(spec, 10, &err), 0);
	assert_int_equal(s->linux->resources->pids->limit, 10);
	husk_spec_set_terminal(spec, true);
	assert_true(husk_spec_terminal(spec));
	husk_spec_free(spec);
}

static void test_hostname_adds_uts_namespace(void **state)
{
	struct husk_spec *spec = NULL;
	struct husk_error err;

	assert_int_equal(from_json("{\"process\":{},\"linux\":{},\"root\":{\"path\":\"/\"}}",
				   &spec, &err), 0);
	assert_int_equal(husk_spec_set_hostname(spec, "h", &err), 0);
	assert_int_equal(spec->pb->linux->n_namespaces, 1);
	assert_string_equal(spec->pb->linux->namespaces[0]->type, "uts");
	husk_spec_free(spec);
}

static void test_bundle_root_is_relative_to_bundle(void **state)
{
	char dir[] = "/tmp/husk-test-bundle.XXXXXX", path[PATH_MAX], rootfs[PATH_MAX];
	struct husk_spec *spec = NULL;
	struct husk_error err = { 0 };
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
	assert_int_equal(mkdir(rootfs, 0755), 0);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"process\":{\"args\":[\"true\"]},\"linux\":{},\"root\":{\"path\":\"rootfs\"}}", f);
	fclose(f);
	assert_int_equal(husk_spec_from_bundle(dir, &spec, &err), 0);
	assert_string_equal(husk_spec_rootfs(spec), rootfs);
	husk_spec_free(spec);
	unlink(path);
	rmdir(rootfs);
	assert_int_equal(husk_spec_from_bundle(dir, &spec, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "config.json"));
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runc_spec_converts),
		cmocka_unit_test(test_bad_specs_name_the_field),
		cmocka_unit_test(test_defaults_and_overrides),
		cmocka_unit_test(test_hostname_adds_uts_namespace),
		cmocka_unit_test(test_bundle_root_is_relative_to_bundle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
