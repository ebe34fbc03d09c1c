// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * JSON -> protobuf-c message, driven by the message descriptors.
 *
 * OCI's config.json keys are oci.proto's field names in lowerCamelCase
 * ("UIDMappings" -> "uidMappings", "OOMScoreAdj" -> "oomScoreAdj"), with
 * three historical exceptions in oci_key_exceptions[].  Each JSON value is
 * checked against the field's protobuf type; map fields (repeated
 * key/value entry messages) take JSON objects.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "husk-common/cleanup.h"
#include "json.h"
#include "oci-spec.h"

#define FIELD_PATH_MAX 256
#define OCI_KEY_MAX 64

struct conv {
	const struct json_doc *doc;
	const char *what;		/* "config.json" */
	struct husk_error *err;
};

static const struct {
	const char *proto;
	const char *json;
} oci_key_exceptions[] = {
	{ "Version", "ociVersion" },	/* Spec.Version */
	{ "Pagesize", "pageSize" },	/* LinuxHugepageLimit.Pagesize */
	{ "errnoret", "errnoRet" },	/* LinuxSyscall.errnoret */
};

/* "UIDMappings" -> "uidMappings", "HostID" -> "hostID", "UID" -> "uid". */
static void oci_key_for_field(const char *name, char *out, size_t size)
{
	size_t n = strlen(name), run = 0;

	for (size_t i = 0; i < ARRAY_SIZE(oci_key_exceptions); i++)
		if (!strcmp(name, oci_key_exceptions[i].proto)) {
			snprintf(out, size, "%s", oci_key_exceptions[i].json);
			return;
		}
	while (run < n && isupper((unsigned char)name[run]))
		run++;
	/* An acronym followed by a word keeps the word's capital: OOMScore -> oomScore. */
	if (run > 1 && run < n && islower((unsigned char)name[run]))
		run--;
	if (run == 0)
		run = 1;
	snprintf(out, size, "%s", name);
	for (size_t i = 0; i < run && i < size; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
}

/* Field paths in messages may be cut short; they only name things for people. */
static void __attribute__((format(printf, 2, 3)))
field_path(char *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, FIELD_PATH_MAX, fmt, ap);
	va_end(ap);
}

static const struct json_node *node_at(const struct conv *c, uint32_t i)
{
	return &c->doc->nodes[i];
}

static uint32_t node_index(const struct conv *c, const struct json_node *n)
{
	return (uint32_t)(n - c->doc->nodes);
}

static const char *json_type_name(enum json_type t)
{
	switch (t) {
	case JSON_NULL: return "null";
	case JSON_FALSE:
	case JSON_TRUE: return "a boolean";
	case JSON_NUMBER: return "a number";
	case JSON_STRING: return "a string";
	case JSON_ARRAY: return "an array";
	case JSON_OBJECT: return "an object";
	}
	return "?";
}

static int type_error(struct conv *c, const char *path, const char *want,
		      const struct json_node *got)
{
	return husk_error_set(c->err, EINVAL, "%s: %s: expected %s, got %s", c->what, path,
			      want, json_type_name(got->type));
}

static void *repeated_grow(void **arr, size_t n, size_t elem, struct conv *c,
			   const char *path)
{
	void *p = calloc(n ? n : 1, elem);

	if (!p)
		husk_error_set(c->err, ENOMEM, "%s: %s: out of memory", c->what, path);
	*arr = p;
	return p;
}

static size_t scalar_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	default:
		return 0;
	}
}

/* An integer in [min, max]; uint64 values above INT64_MAX arrive as doubles. */
static int get_integer(struct conv *c, const char *path, const struct json_node *n,
		       double min, double max, int64_t *i_out, uint64_t *u_out)
{
	if (n->type != JSON_NUMBER)
		return type_error(c, path, "an integer", n);
	if (n->is_integer && (double)n->integer >= min && (double)n->integer <= max) {
		*i_out = n->integer;
		*u_out = (uint64_t)n->integer;
		return 0;
	}
	/* 2^64-1 parses as 2^64 in a double: the one large value OCI uses (rlimits). */
	if (!n->is_integer && min == 0 && max >= 1.8e19 && n->number >= 9.2e18 &&
	    n->number <= 18446744073709551616.0 && floor(n->number) == n->number) {
		*u_out = n->number >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)n->number;
		*i_out = 0;
		return 0;
	}
	return husk_error_set(c->err, ERANGE, "%s: %s: expected an integer in %.0f..%.0f",
			      c->what, path, min, max);
}

static int convert_message(struct conv *c, const char *path, const struct json_node *obj,
			   const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);

/* Store one JSON value of a scalar/string/message field at dst. */
static int convert_value(struct conv *c, const char *path, const struct json_node *n,
			 const ProtobufCFieldDescriptor *f, void *dst)
{
	int64_t i;
	uint64_t u;
	int r;

	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		if (n->type != JSON_TRUE && n->type != JSON_FALSE)
			return type_error(c, path, "a boolean", n);
		*(protobuf_c_boolean *)dst = n->type == JSON_TRUE;
		return 0;
	case PROTOBUF_C_TYPE_STRING: {
		char *s;

		if (n->type != JSON_STRING)
			return type_error(c, path, "a string", n);
		s = strdup(n->str);
		if (!s)
			return husk_error_set(c->err, ENOMEM, "%s: out of memory", c->what);
		*(char **)dst = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		r = get_integer(c, path, n, INT32_MIN, INT32_MAX, &i, &u);
		if (r == 0)
			*(int32_t *)dst = (int32_t)i;
		return r;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		r = get_integer(c, path, n, 0, UINT32_MAX, &i, &u);
		if (r == 0)
			*(uint32_t *)dst = (uint32_t)u;
		return r;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		r = get_integer(c, path, n, (double)INT64_MIN, (double)INT64_MAX, &i, &u);
		if (r == 0)
			*(int64_t *)dst = i;
		return r;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		r = get_integer(c, path, n, 0, 18446744073709551615.0, &i, &u);
		if (r == 0)
			*(uint64_t *)dst = u;
		return r;
	case PROTOBUF_C_TYPE_MESSAGE:
		return convert_message(c, path, n, f->descriptor, (ProtobufCMessage **)dst);
	default:
		return husk_error_set(c->err, EOPNOTSUPP, "%s: %s: field type not supported",
				      c->what, path);
	}
}

/* A map<string,string> field: a repeated entry message with key and value. */
static bool field_is_map(const ProtobufCFieldDescriptor *f)
{
	const ProtobufCMessageDescriptor *d = f->descriptor;

	return f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE &&
	       d->n_fields == 2 && !strcmp(d->fields[0].name, "key") &&
	       !strcmp(d->fields[1].name, "value") &&
	       d->fields[0].type == PROTOBUF_C_TYPE_STRING &&
	       d->fields[1].type == PROTOBUF_C_TYPE_STRING;
}

static int new_message(struct conv *c, const char *path, const ProtobufCMessageDescriptor *desc,
		       ProtobufCMessage **out)
{
	ProtobufCMessage *m = malloc(desc->sizeof_message);

	if (!m)
		return husk_error_set(c->err, ENOMEM, "%s: %s: out of memory", c->what, path);
	desc->message_init(m);
	*out = m;
	return 0;
}

static int convert_map(struct conv *c, const char *path, const struct json_node *obj,
		       const ProtobufCFieldDescriptor *f, size_t *n_out, void **arr_out)
{
	const ProtobufCMessageDescriptor *d = f->descriptor;
	ProtobufCMessage **entries;
	uint32_t v;

	if (obj->type != JSON_OBJECT)
		return type_error(c, path, "an object", obj);
	if (!repeated_grow((void **)&entries, obj->count, sizeof(*entries), c, path))
		return -ENOMEM;
	*arr_out = entries;
	v = node_index(c, obj) + 2;
	for (uint32_t i = 0; i < obj->count; i++, v = node_at(c, v)->next) {
		const struct json_node *key = node_at(c, v - 1), *val = node_at(c, v);
		char sub[FIELD_PATH_MAX];
		int r;

		field_path(sub, "%s.%s", path, key->str);
		if (val->type != JSON_STRING)
			return type_error(c, sub, "a string", val);
		r = new_message(c, sub, d, &entries[i]);
		if (r < 0)
			return r;
		(*n_out)++;
		r = convert_value(c, sub, key, &d->fields[0],
				  (char *)entries[i] + d->fields[0].offset);
		if (r == 0)
			r = convert_value(c, sub, val, &d->fields[1],
					  (char *)entries[i] + d->fields[1].offset);
		if (r < 0)
			return r;
	}
	return 0;
}

static int convert_repeated(struct conv *c, const char *path, const struct json_node *arr,
			    const ProtobufCFieldDescriptor *f, ProtobufCMessage *m)
{
	size_t *n_out = (size_t *)((char *)m + f->quantifier_offset);
	void **arr_out = (void **)((char *)m + f->offset);
	size_t elem = scalar_size(f->type);
	uint32_t v;

	if (field_is_map(f))
		return convert_map(c, path, arr, f, n_out, arr_out);
	if (arr->type != JSON_ARRAY)
		return type_error(c, path, "an array", arr);
	if (!elem)
		return husk_error_set(c->err, EOPNOTSUPP, "%s: %s: field type not supported",
				      c->what, path);
	if (!repeated_grow(arr_out, arr->count, elem, c, path))
		return -ENOMEM;
	v = node_index(c, arr) + 1;
	for (uint32_t i = 0; i < arr->count; i++, v = node_at(c, v)->next) {
		char sub[FIELD_PATH_MAX];
		int r;

		field_path(sub, "%s[%u]", path, i);
		/* Counted first: a half-converted element is freed with the rest. */
		(*n_out)++;
		r = convert_value(c, sub, node_at(c, v), f, (char *)*arr_out + i * elem);
		if (r < 0)
			return r;
	}
	return 0;
}

static const ProtobufCFieldDescriptor *field_for_key(const ProtobufCMessageDescriptor *desc,
						     const char *key)
{
	for (unsigned int i = 0; i < desc->n_fields; i++) {
		char name[OCI_KEY_MAX];

		oci_key_for_field(desc->fields[i].name, name, sizeof(name));
		if (!strcmp(name, key))
			return &desc->fields[i];
	}
	return NULL;
}

static bool key_seen_before(const struct conv *c, const struct json_node *obj, uint32_t upto)
{
	uint32_t v = node_index(c, obj) + 2;
	const char *key = node_at(c, upto - 1)->str;

	for (; v != upto; v = node_at(c, v)->next)
		if (!strcmp(node_at(c, v - 1)->str, key))
			return true;
	return false;
}

static int convert_member(struct conv *c, const char *path, const struct json_node *obj,
			  uint32_t v, ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;
	const char *key = node_at(c, v - 1)->str;
	const ProtobufCFieldDescriptor *f = field_for_key(desc, key);
	const struct json_node *val = node_at(c, v);
	char sub[FIELD_PATH_MAX];

	field_path(sub, "%s%s%s", path, *path ? "." : "", key);
	if (!f)
		return husk_error_set(c->err, EINVAL, "%s: %s: unknown field", c->what, sub);
	if (key_seen_before(c, obj, v))
		return husk_error_set(c->err, EINVAL, "%s: %s: given twice", c->what, sub);
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return convert_repeated(c, sub, val, f, m);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
	else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
		 f->type != PROTOBUF_C_TYPE_MESSAGE)
		*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
	return convert_value(c, sub, val, f, (char *)m + f->offset);
}

static int convert_message(struct conv *c, const char *path, const struct json_node *obj,
			   const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	ProtobufCMessage *m = NULL;
	uint32_t v;
	int r;

	if (obj->type != JSON_OBJECT)
		return type_error(c, *path ? path : "document", "an object", obj);
	r = new_message(c, path, desc, &m);
	if (r < 0)
		return r;
	/* Linked in first, so a failure below frees what was converted so far. */
	*out = m;
	v = node_index(c, obj) + 2;
	for (uint32_t i = 0; i < obj->count; i++, v = node_at(c, v)->next) {
		r = convert_member(c, path, obj, v, m);
		if (r < 0)
			return r;
	}
	return 0;
}

int oci_json_to_message(const char *text, size_t len,
			const ProtobufCMessageDescriptor *desc, const char *what,
			ProtobufCMessage **msg_out, struct husk_error *err)
{
	_cleanup_free_ struct json_doc *doc = calloc(1, sizeof(*doc));
	struct conv c = { .doc = doc, .what = what, .err = err };
	ProtobufCMessage *m = NULL;
	size_t errpos;
	int r;

	if (!doc)
		return husk_error_set(err, ENOMEM, "%s: out of memory", what);
	r = json_parse(doc, text, len, &errpos);
	if (r == -E2BIG) {
		json_doc_release(doc);
		return husk_error_set(err, E2BIG, "%s: larger than %d bytes or %d values",
				      what, JSON_MAX_INPUT, JSON_MAX_NODES);
	}
	if (r < 0) {
		json_doc_release(doc);
		return husk_error_set(err, -r, "%s: not valid JSON (at byte %zu)", what, errpos);
	}
	r = convert_message(&c, "", json_root(doc), desc, &m);
	json_doc_release(doc);
	if (r < 0) {
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		return r;
	}
	*msg_out = m;
	return 0;
}
