// SPDX-License-Identifier: LGPL-2.1-or-later
/* Pods: which annotations make a sandbox, which make a member and of what. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../host/tools/oci.h"

/* A state with id and up to 3 annotations (NULL-terminated key, value pairs). */
static struct oci_state state_of(const char *id, const char *const *kv)
{
	struct oci_state st = { 0 };

	snprintf(st.id, sizeof(st.id), "%s", id);
	for (; kv && kv[0]; kv += 2, st.n_annotations++) {
		st.annotations[st.n_annotations][0] = (char *)kv[0];
		st.annotations[st.n_annotations][1] = (char *)kv[1];
	}
	return st;
}

static void test_cri(void **state)
{
	const char *sandbox[] = { "io.kubernetes.cri.container-type", "sandbox",
				  "io.kubernetes.cri.sandbox-id", "pod", NULL };
	const char *member[] = { "io.kubernetes.cri.container-type", "container",
				 "io.kubernetes.cri.sandbox-id", "pod", NULL };
	const char *no_id[] = { "io.kubernetes.cri.container-type", "container", NULL };
	struct oci_state st;

	st = state_of("pod", sandbox);
	assert_true(oci_pod_is_sandbox(&st));
	assert_null(oci_pod_sandbox_of(&st));
	st = state_of("web", member);
	assert_false(oci_pod_is_sandbox(&st));
	assert_string_equal(oci_pod_sandbox_of(&st), "pod");
	/* Naming itself, or no sandbox id: a container of its own. */
	st = state_of("pod", member);
	assert_null(oci_pod_sandbox_of(&st));
	st = state_of("web", no_id);
	assert_null(oci_pod_sandbox_of(&st));
	st = state_of("web", NULL);
	assert_null(oci_pod_sandbox_of(&st));
	assert_false(oci_pod_is_sandbox(&st));
}

static void test_husk_annotation(void **state)
{
	const char *self[] = { "husk.sandbox", "pod", NULL };
	/* husk's own annotation wins over CRI's. */
	const char *both[] = { "io.kubernetes.cri.container-type", "sandbox",
			       "husk.sandbox", "other", NULL };
	struct oci_state st;

	st = state_of("pod", self);
	assert_true(oci_pod_is_sandbox(&st));
	assert_null(oci_pod_sandbox_of(&st));
	st = state_of("web", self);
	assert_false(oci_pod_is_sandbox(&st));
	assert_string_equal(oci_pod_sandbox_of(&st), "pod");
	st = state_of("pod", both);
	assert_false(oci_pod_is_sandbox(&st));
	assert_string_equal(oci_pod_sandbox_of(&st), "other");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cri),
		cmocka_unit_test(test_husk_annotation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
