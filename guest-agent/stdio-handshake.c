// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "stdio-handshake.h"

#define HANDSHAKE_MAGIC "husk-stdio"
#define HANDSHAKE_VERSION "1"

static const char *const stream_names[] = {
	[RUNTIME_STDIN] = "stdin",
	[RUNTIME_STDOUT] = "stdout",
	[RUNTIME_STDERR] = "stderr",
};

const char *stdio_stream_name(enum runtime_stream stream)
{
	return (unsigned int)stream < 3 ? stream_names[stream] : "?";
}

/* Container and exec ids: what Kata accepts, 1..RUNTIME_ID_MAX bytes. */
static bool id_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return !first && (c == '_' || c == '.' || c == '-');
}

/* Cut the next space-separated field off [*p, end); empty fields are errors. */
static bool next_field(const char **p, const char *end, const char **field, size_t *flen)
{
	const char *s = *p, *sp;

	if (s >= end)
		return false;
	sp = memchr(s, ' ', (size_t)(end - s));
	*field = s;
	*flen = (size_t)((sp ? sp : end) - s);
	*p = sp ? sp + 1 : end;
	return *flen > 0 && (!sp || sp + 1 < end);
}

static int parse_id(const char *f, size_t n, char *dst, const char *what,
		    struct husk_error *err)
{
	if (n > RUNTIME_ID_MAX)
		return husk_error_set(err, EINVAL, "%s longer than %d bytes", what,
				      RUNTIME_ID_MAX);
	for (size_t i = 0; i < n; i++)
		if (!id_char(f[i], i == 0))
			return husk_error_set(err, EINVAL, "%s: invalid character at %zu",
					      what, i);
	memcpy(dst, f, n);
	dst[n] = '\0';
	return 0;
}

static bool field_is(const char *f, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(f, word, n) == 0;
}

static int parse_stream(const char *f, size_t n, enum runtime_stream *stream,
			struct husk_error *err)
{
	for (int i = 0; i < 3; i++) {
		if (field_is(f, n, stream_names[i])) {
			*stream = (enum runtime_stream)i;
			return 0;
		}
	}
	return husk_error_set(err, EINVAL, "handshake: stream must be stdin, stdout or stderr");
}

int stdio_handshake_parse(const char *line, size_t len, struct stdio_handshake *hs,
			  struct husk_error *err)
{
	const char *p = line, *end, *f;
	size_t n;
	int r;

	if (len == 0 || len > STDIO_HANDSHAKE_MAX || line[len - 1] != '\n')
		return husk_error_set(err, EINVAL, "handshake: not one line of at most %d bytes",
				      STDIO_HANDSHAKE_MAX);
	end = line + len - 1;
	if (memchr(line, '\n', len - 1) || memchr(line, '\0', len - 1))
		return husk_error_set(err, EINVAL, "handshake: stray newline or NUL");

	if (!next_field(&p, end, &f, &n) || !field_is(f, n, HANDSHAKE_MAGIC))
		return husk_error_set(err, EINVAL, "handshake: expected '" HANDSHAKE_MAGIC "'");
	if (!next_field(&p, end, &f, &n) || !field_is(f, n, HANDSHAKE_VERSION))
		return husk_error_set(err, EINVAL, "handshake: unsupported version");
	if (!next_field(&p, end, &f, &n))
		return husk_error_set(err, EINVAL, "handshake: missing container id");
	r = parse_id(f, n, hs->container_id, "container id", err);
	if (r < 0)
		return r;
	if (!next_field(&p, end, &f, &n))
		return husk_error_set(err, EINVAL, "handshake: missing exec id");
	r = parse_id(f, n, hs->exec_id, "exec id", err);
	if (r < 0)
		return r;
	if (!next_field(&p, end, &f, &n))
		return husk_error_set(err, EINVAL, "handshake: missing stream");
	r = parse_stream(f, n, &hs->stream, err);
	if (r < 0)
		return r;
	hs->force_relay = false;
	if (p == end)
		return 0;
	if (!next_field(&p, end, &f, &n) || p != end || !field_is(f, n, "relay"))
		return husk_error_set(err, EINVAL, "handshake: only 'relay' may follow the stream");
	hs->force_relay = true;
	return 0;
}
