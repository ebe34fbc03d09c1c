// SPDX-License-Identifier: LGPL-2.1-or-later
/* The strict JSON reader behind libhusk's QMP client. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../host/lib/json.h"

static struct json_doc *doc_new(void)
{
	struct json_doc *doc = calloc(1, sizeof(*doc));

	assert_non_null(doc);
	return doc;
}

static void doc_free(struct json_doc *doc)
{
	json_doc_release(doc);
	free(doc);
}

static int parse(struct json_doc *doc, const char *text)
{
	return json_parse(doc, text, strlen(text), NULL);
}

static void test_qmp_greeting(void **state)
{
	struct json_doc *doc = doc_new();
	const char *text =
		"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
		"\"package\": \"Debian 1:7.2+dfsg-7\"}, \"capabilities\": [\"oob\"]}}";
	const struct json_node *qmp, *v, *caps;

	assert_int_equal(parse(doc, text), 0);
	qmp = json_get(doc, json_root(doc), "QMP");
	assert_non_null(qmp);
	v = json_get(doc, json_get(doc, qmp, "version"), "qemu");
	assert_non_null(v);
	assert_true(json_get(doc, v, "major")->is_integer);
	assert_int_equal(json_get(doc, v, "major")->integer, 7);
	assert_int_equal(json_get(doc, v, "micro")->integer, 22);
	caps = json_get(doc, qmp, "capabilities");
	assert_int_equal(caps->type, JSON_ARRAY);
	assert_int_equal(caps->count, 1);
	assert_string_equal(json_string(json_item(doc, caps, 0)), "oob");
	assert_null(json_item(doc, caps, 1));
	assert_string_equal(json_string(json_get(doc, json_get(doc, qmp, "version"), "package")),
			    "Debian 1:7.2+dfsg-7");
	assert_null(json_get(doc, qmp, "missing"));
	doc_free(doc);
}

static void test_event_and_nesting(void **state)
{
	struct json_doc *doc = doc_new();
	const struct json_node *root, *data;

	assert_int_equal(parse(doc, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
				    "\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, "
				    "\"reason\": \"guest-shutdown\"}}\r"), 0);
	root = json_root(doc);
	assert_int_equal(root->count, 3);
	assert_string_equal(json_string(json_get(doc, root, "event")), "SHUTDOWN");
	data = json_get(doc, root, "data");
	assert_true(json_is_true(json_get(doc, data, "guest")));
	assert_string_equal(json_string(json_get(doc, data, "reason")), "guest-shutdown");
	/* Values after a nested object are still found through the sibling chain. */
	assert_int_equal(parse(doc, "{\"a\": [1, [2, {\"x\": 3}], 4], \"b\": null, \"c\": false}"), 0);
	root = json_root(doc);
	assert_int_equal(json_get(doc, root, "b")->type, JSON_NULL);
	assert_int_equal(json_get(doc, root, "c")->type, JSON_FALSE);
	assert_int_equal(json_item(doc, json_get(doc, root, "a"), 2)->integer, 4);
	assert_int_equal(json_item(doc, json_get(doc, root, "a"), 1)->count, 2);
	doc_free(doc);
}

static void test_strings(void **state)
{
	struct json_doc *doc = doc_new();

	assert_int_equal(parse(doc, "\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\ud83d\\ude00\""), 0);
	assert_string_equal(json_root(doc)->str, "a\"b\\c/d\n\t\xc3\xa9\xf0\x9f\x98\x80");
	assert_int_equal(json_root(doc)->len, strlen("a\"b\\c/d\n\t\xc3\xa9\xf0\x9f\x98\x80"));
	assert_int_equal(parse(doc, "\"caf\xc3\xa9\""), 0);	/* raw UTF-8 */
	assert_int_equal(parse(doc, "\"\""), 0);
	assert_string_equal(json_root(doc)->str, "");
	doc_free(doc);
}

static void test_numbers(void **state)
{
	struct json_doc *doc = doc_new();

	assert_int_equal(parse(doc, "-0"), 0);
	assert_int_equal(parse(doc, "9223372036854775807"), 0);
	assert_true(json_root(doc)->is_integer);
	assert_int_equal(parse(doc, "9223372036854775808"), 0);	/* overflows int64 */
	assert_false(json_root(doc)->is_integer);
	assert_int_equal(parse(doc, "1.5e3"), 0);
	assert_false(json_root(doc)->is_integer);
	assert_true(json_root(doc)->number == 1500.0);
	doc_free(doc);
}

static void test_rejects(void **state)
{
	static const char *const bad[] = {
		"", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]",
		"01", "1.", ".5", "+1", "1e", "-", "--1", "0x10", "1e999",
		"tru", "nul", "True", "NaN", "Infinity",
		"\"unterminated", "\"ctl\x01\"", "\"tab\there\"", "\"\\x\"", "\"\\u12\"",
		"\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\u0000\"",
		"\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xe2\x82\"",
		"\"\x80\"", "1 2", "{} {}", "{\"a\":1}x", "// c\n1", "[1]/**/",
	};

	struct json_doc *doc = doc_new();

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(doc, bad[i]);

		if (r != -EINVAL && r != -E2BIG)
			fail_msg("accepted bad input #%zu '%s' (r=%d)", i, bad[i], r);
		assert_null(json_root(doc));
	}
	doc_free(doc);
}

static void test_limits(void **state)
{
	struct json_doc *doc = doc_new();
	char deep[2 * (JSON_MAX_DEPTH + 1) + 1], *many;
	size_t errpos = 99;

	memset(deep, '[', JSON_MAX_DEPTH + 1);
	memset(deep + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
	deep[sizeof(deep) - 1] = '\0';
	assert_int_equal(parse(doc, deep), -E2BIG);
	/* Exactly the limit is fine. */
	assert_int_equal(json_parse(doc, deep + 1, strlen(deep) - 2, NULL), 0);

	/* More values than JSON_MAX_NODES. */
	many = malloc(JSON_MAX_NODES * 2 + 8);
	assert_non_null(many);
	many[0] = '[';
	for (int i = 0; i < JSON_MAX_NODES; i++) {
		many[1 + 2 * i] = '0';
		many[2 + 2 * i] = ',';
	}
	many[2 * JSON_MAX_NODES] = ']';
	many[2 * JSON_MAX_NODES + 1] = '\0';
	assert_int_equal(parse(doc, many), -E2BIG);
	free(many);

	/* The position of a syntax error is reported. */
	assert_int_equal(json_parse(doc, "[1, x]", 6, &errpos), -EINVAL);
	assert_int_equal(errpos, 4);
	/* Not NUL-terminated input is read only up to len. */
	assert_int_equal(json_parse(doc, "[1]garbage", 3, NULL), 0);
	doc_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qmp_greeting),
		cmocka_unit_test(test_event_and_nesting),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
