// SPDX-License-Identifier: LGPL-2.1-or-later
/* Sandbox and guest housekeeping RPCs. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "log.h"
#include "rpc.h"

#define RESOLV_CONF_DIR "/run/husk"
#define RESOLV_CONF RESOLV_CONF_DIR "/resolv.conf"
#define MEM_BLOCK_SIZE "/sys/devices/system/memory/block_size_bytes"
#define MEM_PROBE "/sys/devices/system/memory/probe"
#define SYS_CPU_DIR "/sys/devices/system/cpu"
#define SYS_MEMORY_DIR "/sys/devices/system/memory"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)

/* O_TRUNC means nothing to sysfs; it keeps a plain file (tests) exact. */
static int write_text(const char *path, const char *text)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		return -errno;
	return 0;
}

static bool sandbox_check_unsupported(struct husk_ttrpc_call *call,
				      const Grpc__CreateSandboxRequest *req)
{
	const char *field = NULL;

	if (req->n_storages)
		field = "storages";
	else if (req->sandbox_pidns)
		field = "sandbox_pidns";
	else if (req->n_kernel_modules)
		field = "kernel_modules";
	else if (req->guest_userns)
		field = "guest_userns";
	if (!field)
		return true;
	husk_ttrpc_call_reply_status(call, HUSK_TTRPC_UNIMPLEMENTED,
				     "%s: not supported by husk-agent", field);
	return false;
}

static bool dns_valid(struct husk_ttrpc_call *call, const Grpc__CreateSandboxRequest *req)
{
	for (size_t i = 0; i < req->n_dns; i++) {
		if (strlen(req->dns[i]) > 256 || strpbrk(req->dns[i], "\n\r")) {
			husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT,
						     "dns[%zu]: not a single resolv.conf line", i);
			return false;
		}
	}
	return true;
}

/* The guest's resolv.conf, which container specs bind-mount; only in a real guest. */
static int write_resolv_conf(const Grpc__CreateSandboxRequest *req, struct husk_error *err)
{
	_cleanup_fclose_ FILE *f = NULL;

	if (mkdir(RESOLV_CONF_DIR, 0755) < 0 && errno != EEXIST)
		return husk_error_seterrno(err, errno, "mkdir %s", RESOLV_CONF_DIR);
	f = fopen(RESOLV_CONF, "we");
	if (!f)
		return husk_error_seterrno(err, errno, "%s", RESOLV_CONF);
	for (size_t i = 0; i < req->n_dns; i++)
		fprintf(f, "%s\n", req->dns[i]);
	if (fflush(f) != 0)
		return husk_error_seterrno(err, errno, "%s", RESOLV_CONF);
	return 0;
}

RPC_HANDLER(create_sandbox)
{
	const Grpc__CreateSandboxRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	struct agent_sandbox *sb = &agent->sandbox;
	struct husk_error err = {};

	if (!rpc_check_id(call, req->sandbox_id, "sandbox_id") ||
	    !sandbox_check_unsupported(call, req) || !dns_valid(call, req))
		return;
	if (strlen(req->hostname) >= sizeof(sb->hostname)) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT,
					     "hostname: longer than %zu bytes",
					     sizeof(sb->hostname) - 1);
		return;
	}
	if (sb->created) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_ALREADY_EXISTS,
					     "sandbox_id: sandbox %s already created", sb->id);
		return;
	}
	if (req->guest_hook_path[0])
		log_info("sandbox %s: guest_hook_path %s ignored (guest hooks unsupported)",
			 req->sandbox_id, req->guest_hook_path);
	/* On a host (not PID 1) the hostname and DNS belong to the host: leave them. */
	if (agent->cfg.pid1) {
		if (req->hostname[0] && sethostname(req->hostname, strlen(req->hostname)) < 0) {
			husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INTERNAL,
						     "hostname: sethostname: %s", strerror(errno));
			return;
		}
		if (req->n_dns && write_resolv_conf(req, &err) < 0) {
			rpc_reply_error(call, -err.code, &err);
			return;
		}
	}
	snprintf(sb->id, sizeof(sb->id), "%s", req->sandbox_id);
	snprintf(sb->hostname, sizeof(sb->hostname), "%s", req->hostname);
	sb->created = true;
	log_info("sandbox %s created", sb->id);
	rpc_reply_ok(call);
}

RPC_HANDLER(destroy_sandbox)
{
	struct agent *agent = userdata;

	log_info("DestroySandbox: stopping");
	rpc_reply_ok(call);
	agent_request_shutdown(agent, 0);
}

static int read_hex_u64(const char *path, uint64_t *out)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	if (fscanf(f, "%" SCNx64, out) != 1)
		return -EINVAL;
	return 0;
}

RPC_HANDLER(get_guest_details)
{
	const Grpc__GuestDetailsRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	Grpc__GuestDetailsResponse resp = GRPC__GUEST_DETAILS_RESPONSE__INIT;
	Grpc__AgentDetails details = GRPC__AGENT_DETAILS__INIT;
	int r;

	if (req->mem_block_size) {
		r = read_hex_u64(MEM_BLOCK_SIZE, &resp.mem_block_size_bytes);
		/* No memory hotplug in this kernel: Kata answers 0 then too. */
		if (r < 0 && r != -ENOENT) {
			husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INTERNAL, "%s: %s",
						     MEM_BLOCK_SIZE, strerror(-r));
			return;
		}
	}
	if (req->mem_hotplug_probe)
		resp.support_mem_hotplug_probe = access(MEM_PROBE, W_OK) == 0;
	details.version = (char *)HUSK_VERSION;
	details.init_daemon = agent->cfg.pid1;
	details.supports_seccomp = false;
	resp.agent_details = &details;
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}

RPC_HANDLER(set_guest_date_time)
{
	const Grpc__SetGuestDateTimeRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	struct timespec ts;

	if (req->sec < 0) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT,
					     "Sec: %" PRId64 " is before the Epoch", req->sec);
		return;
	}
	if (req->usec < 0 || req->usec > 999999) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT,
					     "Usec: %" PRId64 " is not within 0..999999", req->usec);
		return;
	}
	/* Only a guest's clock is ours to set; on a host this would move the host's. */
	if (!agent->cfg.pid1) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_FAILED_PRECONDITION,
					     "SetGuestDateTime: only served as the guest's PID 1");
		return;
	}
	ts.tv_sec = req->sec;
	ts.tv_nsec = req->usec * 1000;
	if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INTERNAL, "clock_settime: %s",
					     strerror(errno));
		return;
	}
	rpc_reply_ok(call);
}

/*
 * Bring hot-added resources online: each "<dir>/<prefix>N/<file>" holding
 * `offline` gets `online` written.  Returns how many were switched, or
 * -errno naming the first entry that refused.
 */
static int online_entries(const char *dir, const char *prefix, const char *file,
			  const char *offline, const char *online, struct husk_error *err)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	size_t plen = strlen(prefix);
	int switched = 0;
	struct dirent *de;

	if (!d)
		return errno == ENOENT ? 0 : husk_error_seterrno(err, errno, "%s", dir);
	while ((de = readdir(d))) {
		char path[PATH_MAX], state[32] = "";
		_cleanup_fclose_ FILE *f = NULL;

		if (strncmp(de->d_name, prefix, plen) != 0 ||
		    strspn(de->d_name + plen, "0123456789") != strlen(de->d_name + plen) ||
		    !de->d_name[plen])
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", dir, de->d_name, file);
		f = fopen(path, "re");
		/* cpu0 usually has no "online" file: it cannot go offline. */
		if (!f || !fgets(state, sizeof(state), f))
			continue;
		state[strcspn(state, "\n")] = '\0';
		if (strcmp(state, offline) != 0)
			continue;
		int r = write_text(path, online);

		if (r < 0)
			return husk_error_seterrno(err, -r, "onlining %s", path);
		switched++;
	}
	return switched;
}

static long online_cpu_count(void)
{
	return sysconf(_SC_NPROCESSORS_ONLN);
}

RPC_HANDLER(online_cpu_mem)
{
	const Grpc__OnlineCPUMemRequest *req = (const void *)msg;
	struct husk_error err = {};
	uint32_t want = req->nb_cpus;
	int cpus, mems = 0;
	long online;

	/* Onlining is a few sysfs writes: done at once, so `wait` changes nothing. */
	cpus = online_entries(SYS_CPU_DIR, "cpu", "online", "0", "1", &err);
	if (cpus >= 0 && !req->cpu_only)
		mems = online_entries(SYS_MEMORY_DIR, "memory", "state", "offline", "online", &err);
	if (cpus < 0 || mems < 0) {
		rpc_reply_error(call, -err.code, &err);
		return;
	}
	online = online_cpu_count();
	log_info("OnlineCPUMem: %d CPU(s) and %d memory block(s) onlined, %ld CPU(s) online",
		 cpus, mems, online);
	if (want && online < (long)want) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_FAILED_PRECONDITION,
					     "nb_cpus: %u wanted online, %ld are", want, online);
		return;
	}
	rpc_reply_ok(call);
}
