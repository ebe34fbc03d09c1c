// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Bytes from a hostile guest -> ttRPC client reply path: two calls are in
 * flight (streams 1 and 3), the input is what the peer answers before it
 * hangs up.  Each call must end with a reply or a clean -errno.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health.pb-c.h"
#include "husk-common/ttrpc.h"

#define FUZZ_MAX_INPUT	(64 * 1024)	/* fits a socketpair buffer */

static void finish(struct husk_ttrpc_client *client, struct husk_ttrpc_pending *p)
{
	ProtobufCMessage *out = NULL;
	struct husk_ttrpc_status st;
	struct husk_error err = {};
	int rc = husk_ttrpc_client_wait(client, p, &out, &st, &err);

	if (rc == 0) {
		assert(out && st.code == HUSK_TTRPC_OK);
		protobuf_c_message_free_unpacked(out, NULL);
	} else {
		assert(!out && err.code == -rc && err.msg[0]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
	struct husk_ttrpc_client *client;
	struct husk_ttrpc_pending *a, *b;
	int sv[2];

	if (size > FUZZ_MAX_INPUT)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (husk_ttrpc_client_new(sv[0], &client, NULL) < 0)
		abort();
	req.service = (char *)"fuzz";
	if (husk_ttrpc_client_start(client, "grpc.Health", "Check", &req.base,
				    &grpc__health_check_response__descriptor, 1000, &a, NULL) < 0 ||
	    husk_ttrpc_client_start(client, "grpc.Health", "Version", &req.base,
				    &grpc__version_check_response__descriptor, 1000, &b, NULL) < 0)
		abort();
	if (size && write(sv[1], data, size) != (ssize_t)size)
		abort();
	close(sv[1]);		/* the end of input is a hang-up: no call waits out its deadline */

	finish(client, b);
	finish(client, a);
	husk_ttrpc_client_free(client);
	return 0;
}
