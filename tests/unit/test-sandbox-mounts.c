// SPDX-License-Identifier: LGPL-2.1-or-later
/* Host bind mounts of a spec (host/lib/sandbox-mounts.c): which, checks, the guest's view. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../host/lib/sandbox-internal.h"

#define BIND(dst, src, type, ...) \
	{ PROTOBUF_C_MESSAGE_INIT(&grpc__mount__descriptor), (char *)(dst), (char *)(src), \
	  (char *)(type), sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(char *), \
	  (char **)(const char *[]){ __VA_ARGS__ } }

static Grpc__Mount mounts[] = {
	BIND("/proc", "proc", "proc", "nosuid"),
	BIND("/data", "/srv/data", "bind", "rw"),
	BIND("/etc/hosts", "/etc/hosts", "none", "rbind", "ro"),
	BIND("/run/guest-proc", "/proc", "bind", "rbind", "ro", MOUNT_OPT_GUEST),
	BIND("/tmp", "tmpfs", "tmpfs", "size=1m"),
};

static Grpc__Mount *mount_ptrs[] = { &mounts[0], &mounts[1], &mounts[2], &mounts[3], &mounts[4] };

static Grpc__Spec test_spec(void)
{
	Grpc__Spec spec = GRPC__SPEC__INIT;

	spec.mounts = mount_ptrs;
	spec.n_mounts = 5;
	return spec;
}

static void test_which_mounts_are_host_binds(void **state)
{
	Grpc__Spec spec = test_spec();

	assert_false(mount_is_host_bind(&mounts[0]));
	assert_true(mount_is_host_bind(&mounts[1]));	/* type bind */
	assert_true(mount_is_host_bind(&mounts[2]));	/* rbind option, any type */
	assert_true(mount_is_bind(&mounts[3]));
	assert_false(mount_is_host_bind(&mounts[3]));	/* a guest path */
	assert_false(mount_is_host_bind(&mounts[4]));
	assert_int_equal(spec_host_binds(&spec), 2);
}

static void test_guest_view_rewrites_bind_sources(void **state)
{
	Grpc__Spec spec = test_spec();
	struct husk_error err = { 0 };
	struct guest_mounts gm;

	assert_int_equal(guest_mounts_build(&spec, "/run/husk/containers/c/binds/c/mounts", &gm,
					    &err), 0);
	assert_int_equal(gm.n, 5);
	assert_string_equal(gm.ptrs[0]->source, "proc");
	assert_string_equal(gm.ptrs[1]->source, "/run/husk/containers/c/binds/c/mounts/1");
	assert_string_equal(gm.ptrs[2]->source, "/run/husk/containers/c/binds/c/mounts/2");
	/* Options, destination and type travel unchanged. */
	assert_string_equal(gm.ptrs[2]->destination, "/etc/hosts");
	assert_int_equal(gm.ptrs[2]->n_options, 2);
	assert_string_equal(gm.ptrs[2]->options[1], "ro");
	/* A guest bind keeps its source and loses husk's option. */
	assert_string_equal(gm.ptrs[3]->source, "/proc");
	assert_int_equal(gm.ptrs[3]->n_options, 2);
	assert_string_equal(gm.ptrs[3]->options[0], "rbind");
	assert_string_equal(gm.ptrs[3]->options[1], "ro");
	assert_string_equal(gm.ptrs[4]->source, "tmpfs");
	/* The caller's spec is untouched. */
	assert_string_equal(mounts[1].source, "/srv/data");
	assert_int_equal(mounts[3].n_options, 3);
	guest_mounts_release(&gm);
	assert_null(gm.ptrs);
}

static void test_guest_view_needs_a_directory_for_host_binds(void **state)
{
	Grpc__Spec spec = test_spec();
	struct husk_error err = { 0 };
	struct guest_mounts gm;

	assert_int_equal(guest_mounts_build(&spec, NULL, &gm, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "mounts[1]"));
	err = (struct husk_error){ 0 };
	/* Without host binds no directory is needed. */
	spec.mounts = &mount_ptrs[3];
	spec.n_mounts = 2;
	assert_int_equal(guest_mounts_build(&spec, NULL, &gm, &err), 0);
	assert_int_equal(gm.ptrs[0]->n_options, 2);
	guest_mounts_release(&gm);
}

static void test_check_names_the_source_field(void **state)
{
	Grpc__Mount bad[] = {
		BIND("/proc", "proc", "proc", "nosuid"),
		BIND("/data", "data", "bind", "rw"),
	};
	Grpc__Mount missing = BIND("/x", "/nonexistent/husk-test", "none", "bind");
	Grpc__Mount ok = BIND("/x", "/", "bind", "ro");
	Grpc__Mount *ptrs[] = { &bad[0], &bad[1] };
	Grpc__Spec spec = GRPC__SPEC__INIT;
	struct husk_error err = { 0 };

	spec.mounts = ptrs;
	spec.n_mounts = 2;
	assert_int_equal(spec_check_host_binds(&spec, "config.json", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "config.json: mounts[1].source: 'data'"));
	ptrs[1] = &missing;
	err = (struct husk_error){ 0 };	/* a record keeps its first failure */
	assert_int_equal(spec_check_host_binds(&spec, "config.json", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "mounts[1].source: /nonexistent/husk-test"));
	ptrs[1] = &ok;
	err = (struct husk_error){ 0 };
	assert_int_equal(spec_check_host_binds(&spec, "config.json", &err), 0);
}

static void test_parse_refuses_relative_bind_source(void **state)
{
	static const char json[] =
		"{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
		"\"root\":{\"path\":\"/\"},\"linux\":{},"
		"\"mounts\":[{\"destination\":\"/a\",\"type\":\"bind\",\"source\":\"rel/dir\"}]}";
	static const char ok_json[] =
		"{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
		"\"root\":{\"path\":\"/\"},\"linux\":{},"
		"\"mounts\":[{\"destination\":\"/a\",\"type\":\"bind\",\"source\":\"/\"},"
		"{\"destination\":\"/b\",\"type\":\"none\",\"source\":\"/\",\"options\":[\"rbind\"]}]}";
	struct husk_spec *spec = NULL;
	struct husk_error err = { 0 };

	assert_int_equal(husk_spec_from_json(json, strlen(json), "/", &spec, &err), -EINVAL);
	assert_null(spec);
	assert_non_null(strstr(err.msg, "mounts[0].source: 'rel/dir'"));
	err = (struct husk_error){ 0 };
	assert_int_equal(husk_spec_from_json(ok_json, strlen(ok_json), "/", &spec, &err), 0);
	assert_int_equal(husk_spec_host_binds(spec), 2);
	husk_spec_free(spec);
}

static void test_setup_without_shared_dir(void **state)
{
	Grpc__Spec spec = test_spec();
	struct host_binds hb = { 0 };
	struct husk_error err = { 0 };

	assert_int_equal(host_binds_setup(&hb, NULL, "c1", &spec, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "container c1: host bind mounts need"));
	host_binds_teardown(&hb);
	err = (struct husk_error){ 0 };
	/* Nothing to bind: nothing made, nothing needed. */
	spec.mounts = &mount_ptrs[3];
	spec.n_mounts = 2;
	assert_int_equal(host_binds_setup(&hb, NULL, "c1", &spec, &err), 0);
	assert_null(hb.dir);
	host_binds_teardown(&hb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_which_mounts_are_host_binds),
		cmocka_unit_test(test_guest_view_rewrites_bind_sources),
		cmocka_unit_test(test_guest_view_needs_a_directory_for_host_binds),
		cmocka_unit_test(test_check_names_the_source_field),
		cmocka_unit_test(test_parse_refuses_relative_bind_source),
		cmocka_unit_test(test_setup_without_shared_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
