// SPDX-License-Identifier: LGPL-2.1-or-later
/* Container lifecycle, resources and statistics RPCs. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "log.h"
#include "oom.h"
#include "pending.h"
#include "process.h"
#include "rpc.h"
#include "storage.h"

/* Fields of CreateContainerRequest husk-agent does not act on; refuse rather than ignore. */
static bool create_check_unsupported(struct husk_ttrpc_call *call,
				     const Grpc__CreateContainerRequest *req)
{
	const char *field = NULL;

	if (req->n_devices)
		field = "devices";
	else if (req->n_shared_mounts)
		field = "shared_mounts";
	else if (req->sandbox_pidns)
		field = "sandbox_pidns";
	else if (req->string_user && (req->string_user->uid[0] || req->string_user->gid[0] ||
				      req->string_user->n_additionalgids))
		field = "string_user";
	if (!field)
		return true;
	husk_ttrpc_call_reply_status(call, HUSK_TTRPC_UNIMPLEMENTED,
				     "%s: not supported by husk-agent", field);
	return false;
}

/* The create ended: track the init process, or undo the storage mounts. */
static void create_done(struct agent_pending *p, int r, const struct husk_error *err)
{
	struct agent *agent = p->agent;
	struct runtime_container *ctr = p->ctr;
	struct husk_error terr = {};

	if (r == 0) {
		r = agent_process_track(agent, runtime_container_init(ctr), &terr);
		err = &terr;
		/* out of memory: the init only waits for GO, it dies within ms */
		if (r < 0)
			(void)runtime_container_remove(agent->rt, ctr, 0, NULL);
	}
	if (r < 0) {
		log_warn("CreateContainer %s: %s", p->id, err->msg);
		storage_unmount_container(p->id);
		rpc_reply_error(p->call, r, err);
		return;
	}
	agent_oom_watch(agent, ctr);
	log_info("container %s created", p->id);
	rpc_reply_ok(p->call);
}

RPC_HANDLER(create_container)
{
	const Grpc__CreateContainerRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	struct container_config *cfg = NULL;
	struct runtime_op *op;
	struct husk_error err = {};
	int r;

	if (!rpc_check_id(call, req->container_id, "container_id") ||
	    !rpc_check_id(call, req->exec_id, "exec_id") ||
	    !create_check_unsupported(call, req))
		return;
	if (!agent->sandbox.created) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_FAILED_PRECONDITION,
					     "container %s: no sandbox (CreateSandbox first)",
					     req->container_id);
		return;
	}
	/* also while a create of that id is still in flight: its mounts are in use */
	if (runtime_container_id_taken(agent->rt, req->container_id)) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_ALREADY_EXISTS,
					     "container_id: container %s already exists",
					     req->container_id);
		return;
	}
	if (!req->oci) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT, "OCI: missing spec");
		return;
	}
	/* The rootfs share is mounted first: the spec's root.path points into it. */
	r = storage_mount_all(req->container_id, req->storages, req->n_storages, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	r = runtime_spec_parse(req->oci, req->container_id, &cfg, &err);
	if (r < 0) {
		storage_unmount_container(req->container_id);
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT, "%s", err.msg);
		return;
	}
	r = runtime_container_create_begin(agent->rt, agent->sandbox.id, req->container_id,
					   req->exec_id, cfg, &op, &err);
	if (r < 0) {
		log_warn("CreateContainer %s: %s", req->container_id, err.msg);
		storage_unmount_container(req->container_id);
		rpc_reply_error(call, r, &err);
		return;
	}
	agent_pending_watch(agent, op, call, create_done, NULL, req->container_id);
}

static void start_done(struct agent_pending *p, int r, const struct husk_error *err)
{
	if (r < 0)
		rpc_reply_error(p->call, r, err);
	else
		rpc_reply_ok(p->call);
}

RPC_HANDLER(start_container)
{
	const Grpc__StartContainerRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	struct runtime_container *ctr = rpc_container(agent, call, req->container_id);
	struct runtime_op *op;
	struct husk_error err = {};
	int r;

	if (!ctr)
		return;
	if (runtime_container_state(ctr) != RUNTIME_CREATED) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_FAILED_PRECONDITION,
					     "container %s: already started", req->container_id);
		return;
	}
	r = runtime_container_start_begin(agent->rt, ctr, &op, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	agent_pending_watch(agent, op, call, start_done, ctr, req->container_id);
}

/*
 * Everything in the container has died and every exit is recorded, so
 * parked WaitProcess calls got the real status: now drop the bookkeeping.
 */
static void remove_done(struct agent_pending *p, int r, const struct husk_error *err)
{
	struct agent *agent = p->agent;
	struct husk_error rerr = {};

	if (r < 0) {
		rpc_reply_error(p->call, r, err);
		return;
	}
	agent_oom_unwatch(agent, p->ctr);
	agent_container_untrack(agent, p->ctr);
	/* the cgroup is empty: this does not wait */
	r = runtime_container_remove(agent->rt, p->ctr, 0, &rerr);
	if (r < 0) {
		rpc_reply_error(p->call, r, &rerr);
		return;
	}
	storage_unmount_container(p->id);
	log_info("container %s removed", p->id);
	rpc_reply_ok(p->call);
}

RPC_HANDLER(remove_container)
{
	const Grpc__RemoveContainerRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	/* Read before any lookup: a failed lookup answers, which frees req. */
	unsigned int timeout = req->timeout;
	struct runtime_container *ctr = rpc_container(agent, call, req->container_id);
	struct runtime_op *op;
	struct husk_error err = {};
	int r;

	if (!ctr)
		return;
	r = runtime_container_kill_begin(agent->rt, ctr, timeout, &op, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	agent_pending_watch(agent, op, call, remove_done, ctr, runtime_container_id(ctr));
}

RPC_HANDLER(update_container)
{
	const Grpc__UpdateContainerRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	struct runtime_container *ctr = rpc_container(agent, call, req->container_id);
	struct husk_error err = {};
	int r;

	if (!ctr)
		return;
	if (!req->resources) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT,
					     "resources: missing");
		return;
	}
	r = runtime_container_update(agent->rt, ctr, req->resources, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	rpc_reply_ok(call);
}

static void pause_or_resume(struct agent *agent, struct husk_ttrpc_call *call,
			    const char *id, bool pause)
{
	struct runtime_container *ctr = rpc_container(agent, call, id);
	enum runtime_state want = pause ? RUNTIME_RUNNING : RUNTIME_PAUSED;
	struct husk_error err = {};
	int r;

	if (!ctr)
		return;
	if (runtime_container_state(ctr) != want) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_FAILED_PRECONDITION,
					     "container %s: not %s", id,
					     pause ? "running" : "paused");
		return;
	}
	r = pause ? runtime_container_pause(agent->rt, ctr, &err) :
		runtime_container_resume(agent->rt, ctr, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	rpc_reply_ok(call);
}

RPC_HANDLER(pause_container)
{
	const Grpc__PauseContainerRequest *req = (const void *)msg;

	pause_or_resume(userdata, call, req->container_id, true);
}

RPC_HANDLER(resume_container)
{
	const Grpc__ResumeContainerRequest *req = (const void *)msg;

	pause_or_resume(userdata, call, req->container_id, false);
}

/* "max" (UINT64_MAX) reads as 0 = no limit, as Kata's cgroup v2 stats do. */
static uint64_t limit_value(uint64_t v)
{
	return v == UINT64_MAX ? 0 : v;
}

static void io_entry(Grpc__BlkioStatsEntry *e, const struct runtime_io_dev *d,
		     const char *op, uint64_t value)
{
	grpc__blkio_stats_entry__init(e);
	e->major = d->major;
	e->minor = d->minor;
	e->op = (char *)op;
	e->value = value;
}

RPC_HANDLER(stats_container)
{
	const Grpc__StatsContainerRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	struct runtime_container *ctr = rpc_container(agent, call, req->container_id);
	Grpc__StatsContainerResponse resp = GRPC__STATS_CONTAINER_RESPONSE__INIT;
	Grpc__CgroupStats cg = GRPC__CGROUP_STATS__INIT;
	Grpc__CpuStats cpu = GRPC__CPU_STATS__INIT;
	Grpc__CpuUsage usage = GRPC__CPU_USAGE__INIT;
	Grpc__ThrottlingData thr = GRPC__THROTTLING_DATA__INIT;
	Grpc__MemoryStats mem = GRPC__MEMORY_STATS__INIT;
	Grpc__MemoryData mem_usage = GRPC__MEMORY_DATA__INIT;
	Grpc__MemoryData swap_usage = GRPC__MEMORY_DATA__INIT;
	Grpc__PidsStats pids = GRPC__PIDS_STATS__INIT;
	Grpc__BlkioStats blkio = GRPC__BLKIO_STATS__INIT;
	Grpc__MemoryStats__StatsEntry kv[RUNTIME_STATS_MEM_KEYS];
	Grpc__MemoryStats__StatsEntry *kvp[RUNTIME_STATS_MEM_KEYS];
	Grpc__BlkioStatsEntry bytes[2 * RUNTIME_STATS_IO_DEVS], ios[2 * RUNTIME_STATS_IO_DEVS];
	Grpc__BlkioStatsEntry *bytesp[2 * RUNTIME_STATS_IO_DEVS], *iosp[2 * RUNTIME_STATS_IO_DEVS];
	_cleanup_free_ struct runtime_stats *st = calloc(1, sizeof(*st));
	struct husk_error err = {};
	int r;

	if (!ctr)
		return;
	if (!st) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INTERNAL, "out of memory");
		return;
	}
	r = runtime_stats(ctr, st, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	resp.cgroup_stats = &cg;
	if (st->has_cpu) {
		usage.total_usage = st->cpu_usage_usec * 1000;
		usage.usage_in_usermode = st->cpu_user_usec * 1000;
		usage.usage_in_kernelmode = st->cpu_system_usec * 1000;
		thr.periods = st->cpu_nr_periods;
		thr.throttled_periods = st->cpu_nr_throttled;
		thr.throttled_time = st->cpu_throttled_usec * 1000;
		cpu.cpu_usage = &usage;
		cpu.throttling_data = &thr;
		cg.cpu_stats = &cpu;
	}
	if (st->has_memory) {
		mem_usage.usage = st->mem_current;
		mem_usage.max_usage = st->mem_peak;
		mem_usage.failcnt = st->mem_events_max;
		mem_usage.limit = limit_value(st->mem_max);
		swap_usage.usage = st->swap_current;
		swap_usage.limit = limit_value(st->swap_max);
		mem.usage = &mem_usage;
		mem.swap_usage = &swap_usage;
		mem.use_hierarchy = true;
		for (size_t i = 0; i < st->n_mem_stat; i++) {
			grpc__memory_stats__stats_entry__init(&kv[i]);
			kv[i].key = st->mem_stat[i].key;
			kv[i].value = st->mem_stat[i].value;
			kvp[i] = &kv[i];
			if (strcmp(kv[i].key, "file") == 0)
				mem.cache = kv[i].value;
		}
		mem.n_stats = st->n_mem_stat;
		mem.stats = kvp;
		cg.memory_stats = &mem;
	}
	if (st->has_pids) {
		pids.current = st->pids_current;
		pids.limit = limit_value(st->pids_max);
		cg.pids_stats = &pids;
	}
	if (st->has_io) {
		size_t nb = 0, ni = 0;

		for (size_t i = 0; i < st->n_io; i++) {
			const struct runtime_io_dev *d = &st->io[i];

			io_entry(&bytes[nb], d, "Read", d->rbytes);
			bytesp[nb] = &bytes[nb];
			nb++;
			io_entry(&bytes[nb], d, "Write", d->wbytes);
			bytesp[nb] = &bytes[nb];
			nb++;
			io_entry(&ios[ni], d, "Read", d->rios);
			iosp[ni] = &ios[ni];
			ni++;
			io_entry(&ios[ni], d, "Write", d->wios);
			iosp[ni] = &ios[ni];
			ni++;
		}
		blkio.n_io_service_bytes_recursive = nb;
		blkio.io_service_bytes_recursive = bytesp;
		blkio.n_io_serviced_recursive = ni;
		blkio.io_serviced_recursive = iosp;
		cg.blkio_stats = &blkio;
	}
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}

/* ps-like rendering of the container's pids: "json" is a JSON array, "table" PID/CMD rows. */
static int render_processes(const pid_t *pids, size_t n, bool json, char **out, size_t *len)
{
	_cleanup_fclose_ FILE *f = open_memstream(out, len);

	if (!f)
		return -errno;
	if (json)
		fputc('[', f);
	else
		fputs("PID CMD\n", f);
	for (size_t i = 0; i < n; i++) {
		char path[64], comm[64] = "";
		_cleanup_fclose_ FILE *cf = NULL;

		if (json) {
			fprintf(f, "%s%d", i ? "," : "", pids[i]);
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/comm", pids[i]);
		cf = fopen(path, "re");
		if (cf && fgets(comm, sizeof(comm), cf))
			comm[strcspn(comm, "\n")] = '\0';
		fprintf(f, "%d %s\n", pids[i], comm);
	}
	if (json)
		fputc(']', f);
	return fflush(f) == 0 ? 0 : -ENOMEM;
}

RPC_HANDLER(list_processes)
{
	const Grpc__ListProcessesRequest *req = (const void *)msg;
	struct agent *agent = userdata;
	struct runtime_container *ctr = rpc_container(agent, call, req->container_id);
	Grpc__ListProcessesResponse resp = GRPC__LIST_PROCESSES_RESPONSE__INIT;
	_cleanup_free_ pid_t *pids = NULL;
	_cleanup_free_ char *text = NULL;
	struct husk_error err = {};
	size_t n = 0, len = 0;
	bool json;
	int r;

	if (!ctr)
		return;
	if (strcmp(req->format, "json") == 0)
		json = true;
	else if (strcmp(req->format, "table") == 0 || req->format[0] == '\0')
		json = false;
	else {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT,
					     "format: expected json or table, got '%s'", req->format);
		return;
	}
	r = runtime_container_pids(ctr, &pids, &n, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	/* render_processes() closes its stream, which finalises text and len. */
	r = render_processes(pids, n, json, &text, &len);
	if (r < 0) {
		rpc_reply_error(call, r, NULL);
		return;
	}
	resp.process_list.data = (uint8_t *)text;
	resp.process_list.len = len;
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}
