// SPDX-License-Identifier: LGPL-2.1-or-later
/* libhusk's QMP client against a scripted monitor on a socketpair. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../host/lib/qmp.h"

struct events {
	int shutdowns;
	char reason[32];
};

static void on_event(void *data, const char *event, const struct json_doc *doc,
		     const struct json_node *event_data)
{
	struct events *ev = data;

	if (!strcmp(event, "SHUTDOWN")) {
		ev->shutdowns++;
		snprintf(ev->reason, sizeof(ev->reason), "%s",
			 json_string(json_get(doc, event_data, "reason")));
	}
}

static const char greeting[] =
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
	"\"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n";

/* A monitor whose whole output is queued up front. */
static int monitor(const char *script, int *peer)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(write(sv[1], script, strlen(script)), (ssize_t)strlen(script));
	*peer = sv[1];
	return sv[0];
}

static void test_handshake_events_and_replies(void **state)
{
	char script[1024];
	struct events ev = { 0 };
	struct husk_error err = { 0 };
	const struct json_node *ret;
	struct qmp q;
	char sent[512];
	int peer, fd;

	snprintf(script, sizeof(script), "%s%s", greeting,
		 "{\"return\": {}, \"id\": 1}\r\n"
		 /* an event and a stale reply arrive before our answer */
		 "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"SHUTDOWN\", "
		 "\"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}\r\n"
		 "{\"return\": {\"status\": \"stale\"}, \"id\": 99}\r\n"
		 "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": 2}\r\n"
		 "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no such command\"}, \"id\": 3}\r\n");
	fd = monitor(script, &peer);
	assert_int_equal(qmp_open(&q, fd, on_event, &ev, 1000, &err), 0);
	assert_int_equal(qmp_execute(&q, "query-status", NULL, 1000, &ret, &err), 0);
	assert_string_equal(json_string(json_get(q.doc, ret, "status")), "running");
	assert_int_equal(ev.shutdowns, 1);
	assert_string_equal(ev.reason, "guest-shutdown");

	assert_int_equal(qmp_execute(&q, "bogus", "{\"a\": 1}", 1000, NULL, &err), -EREMOTEIO);
	assert_non_null(strstr(err.msg, "no such command"));

	/* What the client wrote: capabilities first, then ids 2 and 3. */
	ssize_t n = read(peer, sent, sizeof(sent) - 1);

	assert_true(n > 0);
	sent[n] = '\0';
	assert_non_null(strstr(sent, "{\"execute\":\"qmp_capabilities\",\"id\":1}\n"));
	assert_non_null(strstr(sent, "{\"execute\":\"query-status\",\"id\":2}\n"));
	assert_non_null(strstr(sent, "{\"execute\":\"bogus\",\"arguments\":{\"a\": 1},\"id\":3}\n"));

	/* EOF from the monitor is -EPIPE for event polling. */
	close(peer);
	assert_int_equal(qmp_poll_events(&q, NULL), -EPIPE);
	qmp_close(&q);
}

static void test_timeout_and_garbage(void **state)
{
	struct husk_error err = { 0 };
	struct qmp q;
	int peer, fd;

	fd = monitor("", &peer);		/* never greets */
	assert_int_equal(qmp_open(&q, fd, NULL, NULL, 100, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "QMP"));
	close(peer);

	memset(&err, 0, sizeof(err));
	fd = monitor("{\"QMP\": {}, }\r\n", &peer);	/* trailing comma */
	assert_int_equal(qmp_open(&q, fd, NULL, NULL, 1000, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "malformed"));
	close(peer);
}

static void test_line_limit(void **state)
{
	struct husk_error err = { 0 };
	char *big = malloc(QMP_LINE_MAX + 16);
	struct qmp q;
	int sv[2];

	assert_non_null(big);
	memset(big, ' ', QMP_LINE_MAX + 8);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* A line longer than the buffer, with no newline in it. */
	ssize_t done = 0;

	while (done < QMP_LINE_MAX + 8) {
		ssize_t n = write(sv[1], big + done, QMP_LINE_MAX + 8 - done);

		if (n <= 0)
			break;
		done += n;
	}
	free(big);
	assert_int_equal(qmp_open(&q, sv[0], NULL, NULL, 1000, &err), -E2BIG);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_events_and_replies),
		cmocka_unit_test(test_timeout_and_garbage),
		cmocka_unit_test(test_line_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
