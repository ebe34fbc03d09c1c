// SPDX-License-Identifier: LGPL-2.1-or-later
/* The hybrid-vsock CONNECT line parser. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hybrid.h"

static int parse(const char *line, uint32_t *port)
{
	return hybrid_parse_connect(line, strlen(line), port);
}

static void test_valid_lines(void **state)
{
	uint32_t port = 0;

	assert_int_equal(parse("CONNECT 1024\n", &port), 0);
	assert_int_equal(port, 1024);
	assert_int_equal(parse("connect 0\n", &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(parse("CoNnEcT 4294967295\n", &port), 0);
	assert_int_equal(port, UINT32_MAX);
	assert_int_equal(parse("CONNECT 0000000052\n", &port), 0);
	assert_int_equal(port, 52);
}

static void test_invalid_lines(void **state)
{
	static const char *const bad[] = {
		"CONNECT 1024", "CONNECT\n", "CONNECT \n", "CONNECT 4294967296\n",
		"CONNECT -1\n", "CONNECT +1\n", "CONNECT 1 \n", "CONNECT  1\n",
		"CONNECT 1\r\n", "CONNECT 0x10\n", "CONNECTX 1\n", "PASSFD 1\n",
		"CONNECT 99999999999\n", "\n", "",
	};
	uint32_t port;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &port), -EINVAL);
	/* An embedded NUL is not a digit. */
	assert_int_equal(hybrid_parse_connect("CONNECT 1\0002\n", 12, &port), -EINVAL);
}

static void test_find_line(void **state)
{
	char buf[HYBRID_LINE_MAX + 8];
	size_t len;

	assert_int_equal(hybrid_find_line("CONNECT 5\nrest", 14, &len), 1);
	assert_int_equal(len, 10);
	assert_int_equal(hybrid_find_line("CONNECT 5", 9, &len), 0);
	memset(buf, 'a', sizeof(buf));
	assert_int_equal(hybrid_find_line(buf, HYBRID_LINE_MAX - 1, &len), 0);
	assert_int_equal(hybrid_find_line(buf, HYBRID_LINE_MAX, &len), -EMSGSIZE);
	buf[HYBRID_LINE_MAX + 2] = '\n';	/* too late to count */
	assert_int_equal(hybrid_find_line(buf, sizeof(buf), &len), -EMSGSIZE);
}

static void test_format_ok(void **state)
{
	char buf[32];

	assert_int_equal(hybrid_format_ok(buf, sizeof(buf), 1073741824), 14);
	assert_string_equal(buf, "OK 1073741824\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_lines),
		cmocka_unit_test(test_invalid_lines),
		cmocka_unit_test(test_find_line),
		cmocka_unit_test(test_format_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
