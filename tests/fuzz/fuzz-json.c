// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer: libhusk's strict JSON reader (QMP input is QEMU's to shape). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../host/lib/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walk every node through the accessors so a broken sibling chain shows. */
static void walk(const struct json_doc *doc, const struct json_node *n, int depth)
{
	if (depth > JSON_MAX_DEPTH + 1)
		abort();
	if (n->type == JSON_STRING && strlen(n->str) != n->len)
		abort();	/* an embedded NUL slipped through */
	if (n->type == JSON_ARRAY)
		for (uint32_t i = 0; i < n->count; i++)
			walk(doc, json_item(doc, n, i), depth + 1);
	if (n->type == JSON_OBJECT && n->count) {
		uint32_t v = (uint32_t)(n - doc->nodes) + 2;

		for (uint32_t i = 0; i < n->count; i++) {
			if (v >= doc->n_nodes || json_get(doc, n, doc->nodes[v - 1].str) == NULL)
				abort();
			walk(doc, &doc->nodes[v], depth + 1);
			v = doc->nodes[v].next;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct json_doc doc;
	/* A private copy: the reader must not read past size. */
	char *text = malloc(size ? size : 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	if (json_parse(&doc, text, size, NULL) == 0)
		walk(&doc, json_root(&doc), 0);
	free(text);
	return 0;
}
