// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Which annotations make a container a pod sandbox or a member of one:
 * CRI's (what containerd's CRI plugin writes) and husk's own.
 */
#include <string.h>

#include "oci.h"

static const char *annotation(const struct oci_state *st, const char *key)
{
	for (size_t i = 0; i < st->n_annotations; i++)
		if (!strcmp(st->annotations[i][0], key))
			return st->annotations[i][1];
	return NULL;
}

const char *oci_pod_sandbox_of(const struct oci_state *st)
{
	const char *husk = annotation(st, "husk.sandbox");
	const char *type = annotation(st, "io.kubernetes.cri.container-type");
	const char *sandbox = annotation(st, "io.kubernetes.cri.sandbox-id");

	if (husk)
		return strcmp(husk, st->id) ? husk : NULL;
	if (type && !strcmp(type, "container") && sandbox && strcmp(sandbox, st->id))
		return sandbox;
	return NULL;
}

bool oci_pod_is_sandbox(const struct oci_state *st)
{
	const char *husk = annotation(st, "husk.sandbox");
	const char *type = annotation(st, "io.kubernetes.cri.container-type");

	if (husk)
		return !strcmp(husk, st->id);
	return type && !strcmp(type, "sandbox");
}
