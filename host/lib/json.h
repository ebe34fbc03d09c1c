/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A small, strict, bounded JSON reader for QMP replies and events.
 *
 * One document is parsed into a flat array of nodes inside a caller-sized
 * arena; strings are decoded (escapes, surrogate pairs) and NUL-terminated.
 * Strict RFC 8259: no comments, no trailing commas, no leading zeros, no
 * lone surrogates, valid UTF-8 only, one value with optional surrounding
 * whitespace.  Limits: JSON_MAX_DEPTH nesting, JSON_MAX_NODES values,
 * strings that contain U+0000 are rejected (QMP never sends them and C
 * strings cannot carry them).
 */
#ifndef HUSK_LIB_JSON_H
#define HUSK_LIB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32
#define JSON_MAX_NODES 1024
#define JSON_MAX_INPUT (256 * 1024)

enum json_type {
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_node {
	enum json_type type;
	uint32_t next;		/* index of the next sibling, 0 = none */
	uint32_t count;		/* array: items; object: members (key+value pairs) */
	bool is_integer;	/* number fits int64 and had no fraction/exponent */
	int64_t integer;
	double number;
	const char *str;	/* JSON_STRING: decoded, NUL-terminated */
	size_t len;
};

struct json_doc {
	struct json_node nodes[JSON_MAX_NODES];
	uint32_t n_nodes;
	char *strings;		/* decoded string storage, owned */
	size_t strings_used, strings_size;
};

/*
 * Parse text[0..len) into doc (which the caller allocates; reuse is fine
 * after json_doc_release()).  Returns 0 or -EINVAL (malformed), -E2BIG
 * (over a limit), -ENOMEM.  *errpos gets the byte offset of the problem.
 */
int json_parse(struct json_doc *doc, const char *text, size_t len,
	       size_t *errpos);
void json_doc_release(struct json_doc *doc);

static inline const struct json_node *json_root(const struct json_doc *doc)
{
	return doc->n_nodes ? &doc->nodes[0] : NULL;
}

/* Member `key` of an object node, or NULL (also when node is not an object). */
const struct json_node *json_get(const struct json_doc *doc,
				 const struct json_node *obj, const char *key);
/* Item i of an array node, or NULL. */
const struct json_node *json_item(const struct json_doc *doc,
				  const struct json_node *arr, uint32_t i);
/* The string of node when it is a JSON string, else NULL. */
const char *json_string(const struct json_node *node);
/* True when node is true; false for anything else. */
bool json_is_true(const struct json_node *node);

#endif
