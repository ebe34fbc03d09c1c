// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * ttRPC client against a hostile guest that frames its lies correctly:
 * up to six calls are in flight, and the input is a list of records the
 * harness turns into well-formed frames (replies for any stream id, known
 * or not, duplicated or out of order, with any status and payload; DATA and
 * REQUEST frames; raw bytes) interleaved with cancellations of calls.
 * fuzz-ttrpc-client feeds raw bytes, which rarely get past the framing.
 * After a hang-up every remaining call must end with a reply or a clean
 * -errno, in whichever order the input picks.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health.pb-c.h"
#include "husk-common/ttrpc.h"
#include "ttrpc.pb-c.h"

#define MAX_CALLS	6
#define MAX_WIRE	(64 * 1024)	/* what a socketpair buffers */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

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

/* What the peer sends, written in one go: many small writes would fill
 * the socket buffer with per-write overhead long before 64 KiB. */
struct wire {
	uint8_t buf[MAX_WIRE];
	size_t len;
};

static bool put_bytes(struct wire *w, const void *p, size_t len)
{
	if (len > MAX_WIRE - w->len)
		return false;
	memcpy(w->buf + w->len, p, len);
	w->len += len;
	return true;
}

static bool put_frame(struct wire *w, uint32_t id, uint8_t type, uint8_t flags,
		      const uint8_t *body, size_t len)
{
	struct husk_ttrpc_header hdr = { .length = len, .stream_id = id,
					 .type = type, .flags = flags };
	uint8_t raw[HUSK_TTRPC_HEADER_SIZE];

	if (HUSK_TTRPC_HEADER_SIZE + len > MAX_WIRE - w->len)
		return false;
	husk_ttrpc_header_encode(&hdr, raw);
	return put_bytes(w, raw, sizeof(raw)) && put_bytes(w, body, len);
}

/* A Response envelope: status absent, or code and a message, then payload. */
static bool put_reply(struct wire *w, uint32_t id, uint8_t flags, uint8_t code,
		      const uint8_t *payload, size_t len)
{
	Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
	Ttrpc__Status status = TTRPC__STATUS__INIT;
	uint8_t buf[1024];

	if (code != 0xff) {
		status.code = code & 0x80 ? -(int)(code & 0x7f) : code % 20;
		status.message = (char *)"fuzz";
		resp.status = &status;
	}
	resp.payload.data = (uint8_t *)payload;
	resp.payload.len = len;
	if (ttrpc__response__get_packed_size(&resp) > sizeof(buf))
		return true;
	return put_frame(w, id, HUSK_TTRPC_TYPE_RESPONSE, flags, buf,
			 ttrpc__response__pack(&resp, buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
	struct husk_ttrpc_pending *calls[MAX_CALLS] = {};
	struct husk_ttrpc_client *client;
	struct input in = { data, size };
	uint8_t setup = take(&in);
	unsigned ncalls = 1 + setup % MAX_CALLS;
	static struct wire wire;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    husk_ttrpc_client_new(sv[0], &client, NULL) < 0)
		abort();
	wire.len = 0;
	req.service = (char *)"fuzz";
	for (unsigned i = 0; i < ncalls; i++)
		if (husk_ttrpc_client_start(client, "grpc.Health", i % 2 ? "Version" : "Check",
					    &req.base,
					    i % 2 ? &grpc__version_check_response__descriptor
						  : &grpc__health_check_response__descriptor,
					    2000, &calls[i], NULL) < 0)
			abort();

	while (in.left) {
		uint8_t kind = take(&in), sel = take(&in), code = take(&in);
		size_t len = take(&in) % 200;
		/* stream 1, 3, ... for our calls; one id past them is unknown */
		uint32_t id = 2 * (sel % (ncalls + 1)) + 1;
		const uint8_t *payload = in.p;
		bool room = true;

		if (len > in.left)
			len = in.left;
		in.p += len;
		in.left -= len;
		switch (kind % 8) {
		case 4:
			room = put_frame(&wire, id, HUSK_TTRPC_TYPE_DATA, sel >> 4, payload, len);
			break;
		case 5:
			room = put_frame(&wire, id, HUSK_TTRPC_TYPE_REQUEST, 0, payload, len);
			break;
		case 6:
			room = put_bytes(&wire, payload, len);
			break;
		case 7:
			/* The owner gives up; a late reply must find nothing. */
			if (calls[sel % ncalls]) {
				husk_ttrpc_client_cancel(client, calls[sel % ncalls]);
				calls[sel % ncalls] = NULL;
			}
			break;
		default:
			room = put_reply(&wire, id, sel >> 4, code, payload, len);
			break;
		}
		if (!room)
			break;
	}
	if (wire.len && write(sv[1], wire.buf, wire.len) != (ssize_t)wire.len)
		abort();
	close(sv[1]);		/* a hang-up: nobody waits out a deadline */

	for (unsigned i = 0; i < ncalls; i++) {
		unsigned k = setup & 0x80 ? ncalls - 1 - i : i;

		if (calls[k])
			finish(client, calls[k]);
	}
	husk_ttrpc_client_free(client);
	return 0;
}
