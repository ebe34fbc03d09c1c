// SPDX-License-Identifier: LGPL-2.1-or-later
/* The stdio channel's handshake line (guest-agent/stdio-handshake.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "stdio-handshake.h"

static int parse(const char *line, struct stdio_handshake *hs, struct husk_error *err)
{
	return stdio_handshake_parse(line, strlen(line), hs, err);
}

static void test_valid_lines(void **state)
{
	struct stdio_handshake hs;

	assert_int_equal(parse("husk-stdio 1 my.ctr_1 exec-2 stdin\n", &hs, NULL), 0);
	assert_string_equal(hs.container_id, "my.ctr_1");
	assert_string_equal(hs.exec_id, "exec-2");
	assert_int_equal(hs.stream, RUNTIME_STDIN);
	assert_false(hs.force_relay);
	assert_int_equal(parse("husk-stdio 1 c c stderr relay\n", &hs, NULL), 0);
	assert_int_equal(hs.stream, RUNTIME_STDERR);
	assert_true(hs.force_relay);
}

static void test_id_bounds(void **state)
{
	char line[STDIO_HANDSHAKE_MAX + 8], id[RUNTIME_ID_MAX + 2];
	struct stdio_handshake hs;
	struct husk_error err = { 0 };

	memset(id, 'a', RUNTIME_ID_MAX);
	id[RUNTIME_ID_MAX] = '\0';
	snprintf(line, sizeof(line), "husk-stdio 1 %s %s stdout\n", id, id);
	assert_int_equal(parse(line, &hs, NULL), 0);
	assert_int_equal(strlen(hs.exec_id), RUNTIME_ID_MAX);
	strcat(id, "a");
	snprintf(line, sizeof(line), "husk-stdio 1 %s e stdout\n", id);
	assert_int_equal(parse(line, &hs, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "container id"));
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"", "\n", "husk-stdio 1 c e stdout", "husk-stdio 1 c e stdout \n",
		" husk-stdio 1 c e stdout\n", "husk-stdio  1 c e stdout\n",
		"husk-stdio 2 c e stdout\n", "husk-stdio 1 c e stdio\n", "husk-stdio 1 c e\n",
		"husk-stdio 1 c e stdout user\n", "husk-stdio 1 c e stdout relay x\n",
		"husk-stdio 1 _c e stdout\n", "husk-stdio 1 c e/1 stdout\n",
		"husk-stdio 1 c e stdout\r\n", "husk-stdio 1 c\ne stdout\n",
	};
	struct stdio_handshake hs;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct husk_error err = { 0 };

		assert_int_equal(parse(bad[i], &hs, &err), -EINVAL);
		assert_int_equal(err.code, EINVAL);
	}
	/* An embedded NUL, which strlen would hide. */
	assert_int_equal(stdio_handshake_parse("husk-stdio 1 c\0 e stdout\n", 25, &hs, NULL),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_lines),
		cmocka_unit_test(test_id_bounds),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
