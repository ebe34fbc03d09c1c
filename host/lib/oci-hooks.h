/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI lifecycle hooks, run on the host as runc runs them: each hook gets
 * the container's state JSON on stdin, its own args and env, and a timeout
 * in seconds (0: none); a hook that fails or times out fails the step.
 */
#ifndef HUSK_LIB_OCI_HOOKS_H
#define HUSK_LIB_OCI_HOOKS_H

#include "husk-common/error.h"

struct json_doc;

/*
 * Run the hooks of config.json's hooks.<kind> ("prestart", "createRuntime",
 * "poststart", "poststop", ...) in order with state_json on stdin.
 * Stops at the first failure and names the hook in err.
 */
int oci_hooks_run(const struct json_doc *config, const char *kind,
		  const char *state_json, struct husk_error *err);

#endif
