// SPDX-License-Identifier: LGPL-2.1-or-later
/* Strict, bounded JSON reader: see json.h for the contract. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct parser {
	struct json_doc *doc;
	const unsigned char *p, *end, *start;
	unsigned int depth;
};

static int parse_value(struct parser *ps, uint32_t *index);

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int new_node(struct parser *ps, enum json_type type, uint32_t *index)
{
	struct json_doc *doc = ps->doc;

	if (doc->n_nodes >= JSON_MAX_NODES)
		return -E2BIG;
	*index = doc->n_nodes++;
	memset(&doc->nodes[*index], 0, sizeof(doc->nodes[0]));
	doc->nodes[*index].type = type;
	return 0;
}

static int expect_literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return -EINVAL;
	ps->p += n;
	return 0;
}

static int hex4(struct parser *ps, unsigned int *out)
{
	unsigned int v = 0;

	if (ps->end - ps->p < 4)
		return -EINVAL;
	for (int i = 0; i < 4; i++) {
		unsigned char c = *ps->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

static void put_utf8(char **w, unsigned int cp)
{
	unsigned char *o = (unsigned char *)*w;

	if (cp < 0x80) {
		*o++ = cp;
	} else if (cp < 0x800) {
		*o++ = 0xc0 | (cp >> 6);
		*o++ = 0x80 | (cp & 0x3f);
	} else if (cp < 0x10000) {
		*o++ = 0xe0 | (cp >> 12);
		*o++ = 0x80 | ((cp >> 6) & 0x3f);
		*o++ = 0x80 | (cp & 0x3f);
	} else {
		*o++ = 0xf0 | (cp >> 18);
		*o++ = 0x80 | ((cp >> 12) & 0x3f);
		*o++ = 0x80 | ((cp >> 6) & 0x3f);
		*o++ = 0x80 | (cp & 0x3f);
	}
	*w = (char *)o;
}

/* \uXXXX (the backslash-u already consumed), pairing surrogates. */
static int parse_unicode_escape(struct parser *ps, unsigned int *cp)
{
	unsigned int hi, lo;

	if (hex4(ps, &hi) < 0)
		return -EINVAL;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return -EINVAL;		/* lone low surrogate */
	if (hi < 0xd800 || hi > 0xdbff) {
		*cp = hi;
		return hi == 0 ? -EINVAL : 0;
	}
	if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
		return -EINVAL;
	ps->p += 2;
	if (hex4(ps, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
		return -EINVAL;
	*cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

/* Length of a valid UTF-8 sequence at p (non-ASCII lead), 0 if invalid. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
	size_t n, avail = end - p;
	unsigned int cp;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;	/* overlong, out of range or a surrogate */
	return n;
}

static int parse_string(struct parser *ps, uint32_t *index)
{
	struct json_doc *doc = ps->doc;
	char *out = doc->strings + doc->strings_used, *w = out;
	int r;

	r = new_node(ps, JSON_STRING, index);
	if (r < 0)
		return r;
	ps->p++;		/* opening quote */
	for (;;) {
		unsigned char c;

		if (ps->p >= ps->end)
			return -EINVAL;
		c = *ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20)
			return -EINVAL;
		if (c >= 0x80) {
			size_t n = utf8_sequence(ps->p, ps->end);

			if (!n)
				return -EINVAL;
			memcpy(w, ps->p, n);
			w += n;
			ps->p += n;
			continue;
		}
		ps->p++;
		if (c != '\\') {
			*w++ = c;
			continue;
		}
		if (ps->p >= ps->end)
			return -EINVAL;
		c = *ps->p++;
		switch (c) {
		case '"': case '\\': case '/':
			*w++ = c;
			break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u': {
			unsigned int cp;

			if (parse_unicode_escape(ps, &cp) < 0)
				return -EINVAL;
			put_utf8(&w, cp);
			break;
		}
		default:
			return -EINVAL;
		}
	}
	*w++ = '\0';
	doc->nodes[*index].str = out;
	doc->nodes[*index].len = (size_t)(w - out) - 1;
	doc->strings_used += (size_t)(w - out);
	return 0;
}

static int parse_number(struct parser *ps, uint32_t *index)
{
	const unsigned char *s = ps->p;
	bool integer = true;
	char buf[64];
	size_t n;
	int r;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end)
		return -EINVAL;
	if (*ps->p == '0') {
		ps->p++;
	} else if (*ps->p >= '1' && *ps->p <= '9') {
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	} else {
		return -EINVAL;
	}
	if (ps->p < ps->end && *ps->p == '.') {
		integer = false;
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return -EINVAL;
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		integer = false;
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return -EINVAL;
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	n = ps->p - s;
	if (n >= sizeof(buf))
		return -E2BIG;
	memcpy(buf, s, n);
	buf[n] = '\0';

	r = new_node(ps, JSON_NUMBER, index);
	if (r < 0)
		return r;
	struct json_node *node = &ps->doc->nodes[*index];

	node->number = strtod(buf, NULL);
	if (!isfinite(node->number))
		return -EINVAL;
	if (integer) {
		errno = 0;
		long long v = strtoll(buf, NULL, 10);

		if (errno == 0) {
			node->is_integer = true;
			node->integer = v;
		}
	}
	return 0;
}

/* Shared by arrays and objects: items separated by commas up to `close`. */
static int parse_container(struct parser *ps, uint32_t *index, bool object)
{
	const unsigned char close = object ? '}' : ']';
	uint32_t prev = 0, self;
	int r;

	if (++ps->depth > JSON_MAX_DEPTH)
		return -E2BIG;
	r = new_node(ps, object ? JSON_OBJECT : JSON_ARRAY, &self);
	if (r < 0)
		return r;
	*index = self;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		uint32_t item;

		skip_ws(ps);
		if (object) {
			uint32_t key;

			if (ps->p >= ps->end || *ps->p != '"')
				return -EINVAL;
			r = parse_string(ps, &key);
			if (r < 0)
				return r;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return -EINVAL;
			ps->p++;
			skip_ws(ps);
		}
		r = parse_value(ps, &item);
		if (r < 0)
			return r;
		/* Siblings chain value to value (an object's key sits at value-1). */
		if (prev)
			ps->doc->nodes[prev].next = item;
		prev = item;
		ps->doc->nodes[self].count++;
		skip_ws(ps);
		if (ps->p >= ps->end)
			return -EINVAL;
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p != close)
			return -EINVAL;
		ps->p++;
		break;
	}
	ps->depth--;
	return 0;
}

static int parse_value(struct parser *ps, uint32_t *index)
{
	int r;

	skip_ws(ps);
	if (ps->p >= ps->end)
		return -EINVAL;
	switch (*ps->p) {
	case '{':
		return parse_container(ps, index, true);
	case '[':
		return parse_container(ps, index, false);
	case '"':
		return parse_string(ps, index);
	case 't':
		r = expect_literal(ps, "true");
		return r < 0 ? r : new_node(ps, JSON_TRUE, index);
	case 'f':
		r = expect_literal(ps, "false");
		return r < 0 ? r : new_node(ps, JSON_FALSE, index);
	case 'n':
		r = expect_literal(ps, "null");
		return r < 0 ? r : new_node(ps, JSON_NULL, index);
	default:
		return parse_number(ps, index);
	}
}

int json_parse(struct json_doc *doc, const char *text, size_t len,
	       size_t *errpos)
{
	struct parser ps = {
		.doc = doc,
		.p = (const unsigned char *)text,
		.start = (const unsigned char *)text,
		.end = (const unsigned char *)text + len,
	};
	uint32_t root;
	int r;

	doc->n_nodes = 0;
	doc->strings_used = 0;
	if (errpos)
		*errpos = 0;
	if (len > JSON_MAX_INPUT)
		return -E2BIG;
	/* Decoded strings never outgrow their quoted source text. */
	if (doc->strings_size < len + 1) {
		char *s = realloc(doc->strings, len + 1);

		if (!s)
			return -ENOMEM;
		doc->strings = s;
		doc->strings_size = len + 1;
	}
	r = parse_value(&ps, &root);
	if (r == 0) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			r = -EINVAL;
	}
	if (r < 0) {
		if (errpos)
			*errpos = ps.p - ps.start;
		doc->n_nodes = 0;
	}
	return r;
}

void json_doc_release(struct json_doc *doc)
{
	free(doc->strings);
	doc->strings = NULL;
	doc->strings_size = doc->strings_used = 0;
	doc->n_nodes = 0;
}

static uint32_t node_index(const struct json_doc *doc, const struct json_node *n)
{
	return (uint32_t)(n - doc->nodes);
}

const struct json_node *json_get(const struct json_doc *doc,
				 const struct json_node *obj, const char *key)
{
	uint32_t v;

	if (!obj || obj->type != JSON_OBJECT || !obj->count)
		return NULL;
	v = node_index(doc, obj) + 2;	/* first value; its key sits before it */
	for (uint32_t i = 0; i < obj->count; i++) {
		if (strcmp(doc->nodes[v - 1].str, key) == 0)
			return &doc->nodes[v];
		v = doc->nodes[v].next;
	}
	return NULL;
}

const struct json_node *json_item(const struct json_doc *doc,
				  const struct json_node *arr, uint32_t i)
{
	uint32_t v;

	if (!arr || arr->type != JSON_ARRAY || i >= arr->count)
		return NULL;
	v = node_index(doc, arr) + 1;
	while (i--)
		v = doc->nodes[v].next;
	return &doc->nodes[v];
}

const char *json_string(const struct json_node *node)
{
	return node && node->type == JSON_STRING ? node->str : NULL;
}

bool json_is_true(const struct json_node *node)
{
	return node && node->type == JSON_TRUE;
}
