// SPDX-License-Identifier: LGPL-2.1-or-later
/* OCI hooks on the host (see oci-hooks.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "husk-common/fd-util.h"
#include "husk-common/cleanup.h"
#include "json.h"
#include "oci-hooks.h"

#define HOOK_MAX_ARGS 256

struct hook {
	const char *path;
	const char *argv[HOOK_MAX_ARGS + 1];
	const char *envp[HOOK_MAX_ARGS + 1];
	long long timeout_s;
};

/* A string array member into out[] (NULL-terminated); absent is empty. */
static int string_array(const struct json_doc *doc, const struct json_node *arr,
			const char **out)
{
	size_t n = 0;

	if (arr) {
		if (arr->type != JSON_ARRAY || arr->count > HOOK_MAX_ARGS)
			return -EINVAL;
		for (uint32_t i = 0; i < arr->count; i++) {
			out[n] = json_string(json_item(doc, arr, i));
			if (!out[n++])
				return -EINVAL;
		}
	}
	out[n] = NULL;
	return 0;
}

static int hook_parse(const struct json_doc *doc, const struct json_node *node,
		      struct hook *h)
{
	const struct json_node *t = json_get(doc, node, "timeout");

	h->path = json_string(json_get(doc, node, "path"));
	if (!h->path || h->path[0] != '/')
		return -EINVAL;
	if (string_array(doc, json_get(doc, node, "args"), h->argv) < 0 ||
	    string_array(doc, json_get(doc, node, "env"), h->envp) < 0)
		return -EINVAL;
	if (!h->argv[0]) {
		h->argv[0] = h->path;
		h->argv[1] = NULL;
	}
	h->timeout_s = 0;
	if (t) {
		if (t->type != JSON_NUMBER || !t->is_integer || t->integer <= 0)
			return -EINVAL;
		h->timeout_s = t->integer;
	}
	return 0;
}

/* Runs in the forked child: only async-signal-safe calls until exec. */
static void __attribute__((noreturn)) hook_child(const struct hook *h, int stdin_fd)
{
	if (dup2(stdin_fd, STDIN_FILENO) < 0)
		_exit(127);
	execve(h->path, (char *const *)h->argv, (char *const *)h->envp);
	_exit(127);
}

/* Wait for pid through its pidfd, killing it when the timeout passes. */
static int hook_wait(pid_t pid, long long timeout_s, int *wstatus)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	bool timed_out = false;

	if (pidfd >= 0 && timeout_s > 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int r;

		do
			r = poll(&p, 1, (int)(timeout_s > 86400 ? 86400000 : timeout_s * 1000));
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			kill(pid, SIGKILL);
			timed_out = true;
		}
	}
	while (waitpid(pid, wstatus, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return timed_out ? -ETIMEDOUT : 0;
}

static int hook_run(const struct hook *h, const char *kind, const char *state_json,
		    struct husk_error *err)
{
	_cleanup_close_ int rd = -1, wr = -1;
	int fds[2], wstatus = 0, r;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return husk_error_seterrno(err, errno, "%s hook %s: pipe", kind, h->path);
	rd = fds[0];
	wr = fds[1];
	pid = fork();
	if (pid < 0)
		return husk_error_seterrno(err, errno, "%s hook %s: fork", kind, h->path);
	if (pid == 0)
		hook_child(h, rd);
	rd = safe_close(rd);
	/* A hook that does not read its stdin is fine: EPIPE is ignored. */
	signal(SIGPIPE, SIG_IGN);
	(void)husk_write_all(wr, state_json, strlen(state_json));
	wr = safe_close(wr);
	r = hook_wait(pid, h->timeout_s, &wstatus);
	if (r == -ETIMEDOUT)
		return husk_error_set(err, ETIMEDOUT, "%s hook %s: timed out after %lld s",
				      kind, h->path, h->timeout_s);
	if (r < 0)
		return husk_error_seterrno(err, -r, "%s hook %s: wait", kind, h->path);
	if (WIFSIGNALED(wstatus))
		return husk_error_set(err, ECANCELED, "%s hook %s: killed by signal %d",
				      kind, h->path, WTERMSIG(wstatus));
	if (WEXITSTATUS(wstatus) == 127)
		return husk_error_set(err, ENOEXEC, "%s hook %s: could not be executed "
				      "(or exited 127)", kind, h->path);
	if (WEXITSTATUS(wstatus))
		return husk_error_set(err, ECANCELED, "%s hook %s: exit status %d",
				      kind, h->path, WEXITSTATUS(wstatus));
	return 0;
}

int oci_hooks_run(const struct json_doc *config, const char *kind,
		  const char *state_json, struct husk_error *err)
{
	const struct json_node *hooks = json_get(config, json_root(config), "hooks");
	const struct json_node *list = json_get(config, hooks, kind);

	if (!list)
		return 0;
	if (list->type != JSON_ARRAY)
		return husk_error_set(err, EINVAL, "config.json: hooks.%s: expected an array",
				      kind);
	for (uint32_t i = 0; i < list->count; i++) {
		struct hook h;
		int r;

		if (hook_parse(config, json_item(config, list, i), &h) < 0)
			return husk_error_set(err, EINVAL, "config.json: hooks.%s[%u]: want "
					      "an absolute path, string args/env and a "
					      "positive timeout", kind, i);
		r = hook_run(&h, kind, state_json, err);
		if (r < 0)
			return r;
	}
	return 0;
}
