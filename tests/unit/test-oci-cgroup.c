// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * husk update's flags -> linux.resources JSON (checked by converting it the
 * way libhusk does before the agent sees it), runc's size and duration
 * syntax, and the stats event's data object.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../host/lib/json.h"
#include "../../host/lib/oci-spec.h"
#include "../../host/tools/oci.h"

static void test_sizes(void **state)
{
	int64_t v;

	assert_int_equal(oci_parse_size("1024", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(oci_parse_size("512m", &v), 0);
	assert_int_equal(v, 512LL << 20);
	assert_int_equal(oci_parse_size("64kb", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(oci_parse_size("1.5GiB", &v), 0);
	assert_int_equal(v, 3LL << 29);
	assert_int_equal(oci_parse_size("2 G", &v), 0);
	assert_int_equal(v, 2LL << 30);
	assert_int_equal(oci_parse_size("7b", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(oci_parse_size("-1", &v), 0);
	assert_int_equal(v, -1);
	assert_int_equal(oci_parse_size("", &v), -EINVAL);
	assert_int_equal(oci_parse_size("m", &v), -EINVAL);
	assert_int_equal(oci_parse_size("-5", &v), -EINVAL);
	assert_int_equal(oci_parse_size("10x", &v), -EINVAL);
	assert_int_equal(oci_parse_size("1.", &v), -EINVAL);
	assert_int_equal(oci_parse_size("12mm", &v), -EINVAL);
	assert_int_equal(oci_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(oci_parse_size("9000000000p", &v), -ERANGE);
}

static void test_durations(void **state)
{
	int64_t ns;

	assert_int_equal(oci_parse_duration("5s", &ns), 0);
	assert_int_equal(ns, 5000000000LL);
	assert_int_equal(oci_parse_duration("100ms", &ns), 0);
	assert_int_equal(ns, 100000000LL);
	assert_int_equal(oci_parse_duration("1m30s", &ns), 0);
	assert_int_equal(ns, 90000000000LL);
	assert_int_equal(oci_parse_duration("1.5h", &ns), 0);
	assert_int_equal(ns, 5400000000000LL);
	assert_int_equal(oci_parse_duration("250us", &ns), 0);
	assert_int_equal(ns, 250000);
	assert_int_equal(oci_parse_duration("0", &ns), 0);
	assert_int_equal(ns, 0);
	assert_int_equal(oci_parse_duration("5", &ns), -EINVAL);
	assert_int_equal(oci_parse_duration("", &ns), -EINVAL);
	assert_int_equal(oci_parse_duration("-1s", &ns), -EINVAL);
	assert_int_equal(oci_parse_duration("5x", &ns), -EINVAL);
	assert_int_equal(oci_parse_duration("s", &ns), -EINVAL);
}

/* Parse argv (NULL-terminated) as husk update's. */
static int parse(struct oci_update *u, struct husk_error *err, ...)
{
	char *argv[32] = { "update" };
	int argc = 1;
	va_list ap;

	va_start(ap, err);
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	memset(err, 0, sizeof(*err));
	return oci_update_parse(argc, argv, u, err);
}

static Grpc__LinuxResources *convert(const char *json)
{
	struct husk_error err = { 0 };
	ProtobufCMessage *m = NULL;

	if (oci_json_to_message(json, strlen(json), &grpc__linux_resources__descriptor,
				"resources", &m, &err) < 0)
		fail_msg("%s: %s", json, err.msg);
	return (Grpc__LinuxResources *)m;
}

static void test_update_flags(void **state)
{
	struct husk_error err;
	struct oci_update u;
	Grpc__LinuxResources *res;

	assert_int_equal(parse(&u, &err, "--memory", "256m", "--memory-swap=512m",
			       "--memory-reservation", "128m", "--cpu-share", "512",
			       "--cpu-quota", "50000", "-cpu-period", "100000",
			       "--cpuset-cpus", "0-1", "--cpuset-mems", "0",
			       "--pids-limit", "42", "--blkio-weight", "300", "c1", NULL), 0);
	assert_string_equal(u.id, "c1");
	assert_null(u.resources_file);
	res = convert(u.json);
	assert_int_equal(res->memory->limit, 256LL << 20);
	assert_int_equal(res->memory->swap, 512LL << 20);
	assert_int_equal(res->memory->reservation, 128LL << 20);
	assert_int_equal(res->cpu->shares, 512);
	assert_int_equal(res->cpu->quota, 50000);
	assert_int_equal(res->cpu->period, 100000);
	assert_string_equal(res->cpu->cpus, "0-1");
	assert_string_equal(res->cpu->mems, "0");
	assert_int_equal(res->pids->limit, 42);
	assert_int_equal(res->blockio->weight, 300);
	protobuf_c_message_free_unpacked(&res->base, NULL);
	oci_update_release(&u);

	/* Only what was given; unlimited memory brings unlimited swap (runc). */
	assert_int_equal(parse(&u, &err, "--memory", "-1", "--cpu-shares", "2", "c1", NULL), 0);
	assert_string_equal(u.json, "{\"memory\":{\"limit\":-1,\"swap\":-1},"
			    "\"cpu\":{\"shares\":2}}");
	oci_update_release(&u);
	assert_int_equal(parse(&u, &err, "--pids-limit", "-1", "c1", NULL), 0);
	assert_string_equal(u.json, "{\"pids\":{\"limit\":-1}}");
	oci_update_release(&u);
	/* A cpuset string travels escaped. */
	assert_int_equal(parse(&u, &err, "--cpuset-cpus", "0\"1", "c1", NULL), 0);
	assert_string_equal(u.json, "{\"cpu\":{\"cpus\":\"0\\\"1\"}}");
	oci_update_release(&u);
}

static void test_update_errors(void **state)
{
	struct husk_error err;
	struct oci_update u;

	assert_int_equal(parse(&u, &err, "--memory", "lots", "c1", NULL), -EINVAL);
	assert_string_equal(err.msg, "invalid value for --memory: 'lots'");
	assert_int_equal(parse(&u, &err, "--cpu-period", "-5", "c1", NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "--cpu-period"));
	assert_int_equal(parse(&u, &err, "--pids-limit", "12abc", "c1", NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "--pids-limit"));
	assert_int_equal(parse(&u, &err, "--cpuset-cpus", "", "c1", NULL), -EINVAL);
	assert_int_equal(parse(&u, &err, "--kernel-memory", "1m", "c1", NULL), -EOPNOTSUPP);
	assert_string_equal(err.msg, "--kernel-memory is not supported: "
			    "cgroup v2 has no kernel memory limit");
	assert_int_equal(parse(&u, &err, "--l3-cache-schema", "L3:0=f", "c1", NULL),
			 -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "Intel RDT"));
	assert_int_equal(parse(&u, &err, "--bogus", "1", "c1", NULL), -EINVAL);
	assert_int_equal(parse(&u, &err, "c1", NULL), -EINVAL);
	assert_non_null(strstr(err.msg, "nothing to change"));
	assert_int_equal(parse(&u, &err, "--memory", "1m", NULL), -EINVAL);
	assert_int_equal(parse(&u, &err, "--memory", "1m", "c1", "c2", NULL), -EINVAL);

	/* -r: the file is the whole story, as in runc. */
	assert_int_equal(parse(&u, &err, "-r", "-", "c1", NULL), 0);
	assert_string_equal(u.resources_file, "-");
	assert_false(u.flags_ignored);
	assert_null(u.json);
	assert_int_equal(parse(&u, &err, "--resources", "/f.json", "--memory", "1m", "c1",
			       NULL), 0);
	assert_string_equal(u.resources_file, "/f.json");
	assert_true(u.flags_ignored);
}

static void test_stats_json(void **state)
{
	struct husk_container_stats st = {
		.memory_usage = 4096, .memory_limit = 1 << 20, .memory_max_usage = 8192,
		.memory_failcnt = 1, .pids_current = 3, .pids_limit = 16,
		.cpu_usage_ns = 1000, .cpu_user_ns = 600, .cpu_kernel_ns = 400,
		.memory_cache = 512,
	};
	static struct json_doc doc;
	const struct json_node *root, *mem, *usage;
	char *text = NULL;
	size_t size;
	FILE *out = open_memstream(&text, &size);

	assert_non_null(out);
	oci_stats_json(out, &st);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(json_parse(&doc, text, size, NULL), 0);
	root = json_root(&doc);
	mem = json_get(&doc, root, "memory");
	usage = json_get(&doc, mem, "usage");
	assert_int_equal(json_get(&doc, usage, "usage")->integer, 4096);
	assert_int_equal(json_get(&doc, usage, "limit")->integer, 1 << 20);
	assert_int_equal(json_get(&doc, usage, "max")->integer, 8192);
	assert_int_equal(json_get(&doc, mem, "cache")->integer, 512);
	assert_int_equal(json_get(&doc, json_get(&doc, root, "pids"), "current")->integer, 3);
	assert_int_equal(json_get(&doc, json_get(&doc, root, "pids"), "limit")->integer, 16);
	usage = json_get(&doc, json_get(&doc, root, "cpu"), "usage");
	assert_int_equal(json_get(&doc, usage, "total")->integer, 1000);
	assert_int_equal(json_get(&doc, usage, "user")->integer, 600);
	assert_int_equal(json_get(&doc, usage, "kernel")->integer, 400);
	json_doc_release(&doc);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_update_flags),
		cmocka_unit_test(test_update_errors),
		cmocka_unit_test(test_stats_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
