// SPDX-License-Identifier: LGPL-2.1-or-later
/* Sandboxes: a VM, its rootfs shares and the agent connection inside it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "sandbox-internal.h"
#include "util.h"
#include "vm-internal.h"

#define AGENT_TIMEOUT_DEFAULT_MS 60000
/* A refused connect costs the guest one reset packet.  Polling every 20 ms
 * made agent-ready 18 ms later than every 2 ms (medians of 6, TCG, 0.75 s);
 * 5 ms keeps most of that with fewer tries. */
#define AGENT_POLL_INTERVAL_MS 5
/* After DestroySandbox the agent powers the guest off by itself. */
#define POWEROFF_WAIT_MS 3000
#define STOP_TIMEOUT_MS 1000
#define CONSOLE_TAIL_BYTES 8192
#define ERROR_TAIL_LINES 3

HUSK_EXPORT void husk_sandbox_config_init(struct husk_sandbox_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	husk_vm_config_init(&cfg->vm);
	cfg->agent_timeout_ms = AGENT_TIMEOUT_DEFAULT_MS;
	cfg->cancel_fd = -1;
}

static int share_add(struct husk_sandbox *sb, const char *tag, const char *path,
		     bool readonly, struct husk_error *err)
{
	struct husk_vm_share *s = &sb->shares[sb->n_shares];
	char auto_tag[32];

	if (!tag) {
		/* One share per directory; a writer anywhere makes it writable. */
		for (size_t i = 0; i < sb->n_shares; i++)
			if (!strcmp(sb->shares[i].path, path)) {
				sb->shares[i].readonly &= readonly;
				return 0;
			}
		snprintf(auto_tag, sizeof(auto_tag), "rootfs%zu", sb->n_shares);
		tag = auto_tag;
	}
	s->tag = strdup(tag);
	s->path = strdup(path);
	s->readonly = readonly;
	sb->n_shares++;
	if (!s->tag || !s->path)
		return husk_error_set(err, ENOMEM, "out of memory");
	return 0;
}

static int sandbox_build_shares(struct husk_sandbox *sb, const struct husk_sandbox_config *cfg,
				const struct husk_spec *spec, struct husk_error *err)
{
	size_t max = 2 + cfg->n_specs + cfg->vm.n_shares;
	int r = 0;

	sb->shares = calloc(max, sizeof(*sb->shares));
	if (!sb->shares)
		return husk_error_set(err, ENOMEM, "out of memory");
	if (spec)
		r = share_add(sb, NULL, spec->rootfs, husk_spec_rootfs_readonly(spec), err);
	for (size_t i = 0; r == 0 && i < cfg->n_specs; i++)
		r = share_add(sb, NULL, cfg->specs[i]->rootfs,
			      husk_spec_rootfs_readonly(cfg->specs[i]), err);
	for (size_t i = 0; r == 0 && i < cfg->vm.n_shares; i++)
		r = share_add(sb, cfg->vm.shares[i].tag, cfg->vm.shares[i].path,
			      cfg->vm.shares[i].readonly, err);
	if (r == 0 && cfg->shared_dir) {
		/* Canonical, as rootfs paths are: a rootfs inside it is found by prefix. */
		_cleanup_free_ char *real = realpath(cfg->shared_dir, NULL);

		if (!real)
			return husk_error_seterrno(err, errno, "shared directory %s",
						   cfg->shared_dir);
		sb->shared = &sb->shares[sb->n_shares];
		r = share_add(sb, SANDBOX_SHARED_TAG, real, false, err);
	}
	return r;
}

/* The last n lines of a file, at most size-1 bytes, joined by sep. */
static size_t file_tail_lines(const char *path, unsigned int n, const char *sep,
			      char *out, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char buf[CONSOLE_TAIL_BYTES + 1];
	struct stat st;
	off_t off;
	ssize_t len;
	char *start, *p;
	size_t used = 0;

	if (size)
		out[0] = '\0';
	if (fd < 0 || fstat(fd, &st) < 0 || size == 0)
		return 0;
	off = st.st_size > CONSOLE_TAIL_BYTES ? st.st_size - CONSOLE_TAIL_BYTES : 0;
	len = pread(fd, buf, CONSOLE_TAIL_BYTES, off);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	for (p = buf; *p; p++)
		if (*p == '\r' || (*p != '\n' && *p != '\t' && (unsigned char)*p < 0x20))
			*p = ' ';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	start = buf + len;
	for (unsigned int found = 0; start > buf && found < n;) {
		start--;
		if (*start == '\n' && ++found == n) {
			start++;
			break;
		}
	}
	for (char *line = strtok_r(start, "\n", &p); line; line = strtok_r(NULL, "\n", &p)) {
		int w = snprintf(out + used, size - used, "%s%s", used ? sep : "", line);

		if (w < 0 || (size_t)w >= size - used) {
			used = size - 1;
			break;
		}
		used += w;
	}
	return used;
}

HUSK_EXPORT size_t husk_sandbox_console_tail(const struct husk_sandbox *sb,
					     unsigned int n_lines, char *buf, size_t size)
{
	return file_tail_lines(husk_vm_console_path(sb->vm), n_lines, "\n", buf, size);
}

static int qemu_died_error(struct husk_sandbox *sb, struct husk_error *err)
{
	struct vm_paths paths = { 0 };
	struct husk_vm_exit ex;
	char how[64], tail[512] = "";

	husk_vm_get_exit(sb->vm, &ex);
	if (ex.signal)
		snprintf(how, sizeof(how), "killed by signal %d", ex.signal);
	else
		snprintf(how, sizeof(how), "exit code %d", ex.exit_code);
	if (vm_paths_init(&paths, husk_vm_state_dir(sb->vm)) == 0) {
		file_tail_lines(paths.qemu_log, ERROR_TAIL_LINES, " | ", tail, sizeof(tail));
		vm_paths_release(&paths);
	}
	if (!tail[0])
		file_tail_lines(husk_vm_console_path(sb->vm), ERROR_TAIL_LINES, " | ", tail,
				sizeof(tail));
	return husk_error_set(err, ECHILD, "QEMU exited before the agent was ready (%s): %s",
			      how, tail[0] ? tail : "no output");
}

static int agent_timeout_error(struct husk_sandbox *sb, int timeout_ms, struct husk_error *err)
{
	char tail[512];

	file_tail_lines(husk_vm_console_path(sb->vm), ERROR_TAIL_LINES, " | ", tail,
			sizeof(tail));
	return husk_error_set(err, ETIMEDOUT,
			      "agent not ready after %d.%03d s; guest console ends with: %s",
			      timeout_ms / 1000, timeout_ms % 1000, tail[0] ? tail : "(empty)");
}

/* Sleep ms unless cancel_fd becomes readable first (then true). */
static bool sleep_or_cancel(int cancel_fd, int ms)
{
	struct pollfd pfd = { .fd = cancel_fd, .events = POLLIN };

	return poll(&pfd, 1, ms) > 0 && (pfd.revents & POLLIN);
}

static int min_timeout(int remaining, int cap)
{
	return remaining < 0 || remaining > cap ? cap : (remaining ? remaining : 1);
}

/* Connect to the agent's port until Health/Check answers SERVING. */
static int sandbox_wait_agent(struct husk_sandbox *sb, int timeout_ms, int cancel_fd,
			      struct husk_error *err)
{
	int64_t deadline = deadline_after_ms(timeout_ms);

	for (;;) {
		int remaining = deadline_remaining_ms(deadline);
		struct husk_vm_exit ex;
		int fd;

		if (husk_vm_process(sb->vm, NULL) == 1)
			return qemu_died_error(sb, err);
		husk_vm_get_exit(sb->vm, &ex);
		if (ex.vsockd_died)
			return husk_error_set(err, EPIPE,
					      "husk-vsockd exited while the guest booted: no way to reach the agent");
		if (remaining == 0)
			return agent_timeout_error(sb, timeout_ms, err);
		fd = husk_vm_vsock_connect(sb->vm, AGENT_VSOCK_PORT, min_timeout(remaining, 1000),
					   NULL);
		if (fd >= 0) {
			if (agent_client_open(&sb->agent, fd, NULL) == 0) {
				if (agent_health_check(&sb->agent, min_timeout(remaining, 5000),
						       NULL) == 0)
					return 0;
				agent_client_close(&sb->agent);
			}
		}
		if (sleep_or_cancel(cancel_fd, AGENT_POLL_INTERVAL_MS))
			return husk_error_set(err, ECANCELED,
					      "interrupted while waiting for the agent");
	}
}

static int sandbox_start_vm(struct husk_sandbox *sb, const struct husk_sandbox_config *cfg,
			    struct husk_error *err)
{
	struct husk_vm_config vc = cfg->vm;

	vc.shares = sb->shares;
	vc.n_shares = sb->n_shares;
	if (vc.vsock == HUSK_VM_VSOCK_NONE)
		vc.vsock = HUSK_VM_VSOCK_VHOST_USER;
	return husk_vm_start(&vc, &sb->vm, err);
}

HUSK_EXPORT int husk_sandbox_create(const struct husk_sandbox_config *cfg,
				    const struct husk_spec *spec,
				    struct husk_sandbox **sb_out, struct husk_error *err)
{
	struct husk_sandbox *sb = calloc(1, sizeof(*sb));
	int timeout = cfg->agent_timeout_ms > 0 ? cfg->agent_timeout_ms : AGENT_TIMEOUT_DEFAULT_MS;
	int r;

	if (!sb)
		return husk_error_set(err, ENOMEM, "out of memory");
	sb->timings.start = now_ms();
	r = sandbox_build_shares(sb, cfg, spec, err);
	if (r == 0)
		r = sandbox_start_vm(sb, cfg, err);
	if (r == 0) {
		sb->timings.qemu_spawned = now_ms();
		sb->id = strdup(cfg->id ? cfg->id : husk_vm_name(sb->vm));
		if (!sb->id)
			r = husk_error_set(err, ENOMEM, "out of memory");
	}
	if (r == 0)
		r = sandbox_wait_agent(sb, timeout, cfg->cancel_fd, err);
	if (r == 0) {
		sb->timings.agent_ready = now_ms();
		/* The guest's firmware read the initramfs while it booted. */
		(void)vm_release_file(sb->vm, cfg->vm.initrd);
		r = agent_create_sandbox(&sb->agent, sb->id, cfg->hostname, err);
	}
	if (r < 0) {
		husk_sandbox_destroy(sb);
		return r;
	}
	*sb_out = sb;
	return 0;
}

HUSK_EXPORT void husk_sandbox_destroy(struct husk_sandbox *sb)
{
	struct husk_vm_exit ex = { 0 };

	if (!sb)
		return;
	if (sb->vm)
		husk_vm_get_exit(sb->vm, &ex);
	if (sb->vm && !ex.exited && sb->agent.ttrpc &&
	    agent_destroy_sandbox(&sb->agent, STOP_TIMEOUT_MS, NULL) == 0)
		(void)husk_vm_wait(sb->vm, POWEROFF_WAIT_MS, NULL);
	/* With QEMU and husk-vsockd gone every agent call in flight fails: threads end. */
	if (sb->vm)
		(void)husk_vm_stop(sb->vm, STOP_TIMEOUT_MS, NULL);
	while (sb->containers) {
		struct husk_container *c = sb->containers;

		sb->containers = c->next;
		container_free(c);
	}
	sandbox_oom_stop(sb);
	if (sb->agent.ttrpc)
		agent_client_close(&sb->agent);
	husk_vm_destroy(sb->vm);
	for (size_t i = 0; i < sb->n_shares; i++) {
		free((char *)sb->shares[i].tag);
		free((char *)sb->shares[i].path);
	}
	free(sb->shares);
	free(sb->id);
	free(sb);
}

HUSK_EXPORT struct husk_vm *husk_sandbox_vm(struct husk_sandbox *sb)
{
	return sb->vm;
}

HUSK_EXPORT void husk_sandbox_get_timings(const struct husk_sandbox *sb,
					  struct husk_sandbox_timings *t)
{
	*t = sb->timings;
}

HUSK_EXPORT int husk_sandbox_wait_oom(struct husk_sandbox *sb, int timeout_ms,
				      char *container_id, size_t size, struct husk_error *err)
{
	/* ttRPC's 0 means no deadline; ours is -1. */
	int ttrpc_timeout = timeout_ms < 0 ? 0 : (timeout_ms ? timeout_ms : 1);

	if (sandbox_oom_watching(sb))
		return husk_error_set(err, EBUSY, "OOM events go to husk_sandbox_watch_oom()'s queue");
	return agent_get_oom_event(&sb->agent, ttrpc_timeout, container_id, size, err);
}

const struct husk_vm_share *sandbox_share_for(const struct husk_sandbox *sb,
					      const struct husk_spec *spec,
					      const char **subdir)
{
	const struct husk_vm_share *inside = NULL;

	for (size_t i = 0; i < sb->n_shares; i++) {
		const char *path = sb->shares[i].path;
		size_t len = strlen(path);

		if (!strcmp(path, spec->rootfs)) {
			*subdir = "";
			return &sb->shares[i];
		}
		/* Both paths are canonical: a prefix ending at a '/' is an ancestor. */
		if (!inside && !strncmp(path, spec->rootfs, len) && spec->rootfs[len] == '/' &&
		    spec->rootfs[len + 1]) {
			inside = &sb->shares[i];
			*subdir = spec->rootfs + len + 1;
		}
	}
	return inside;
}
