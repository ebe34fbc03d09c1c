/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host side of husk-agent's API: typed calls over one ttRPC client
 * (safe to share between threads).  Each call returns 0 or -errno with
 * the agent's status message in err ("grpc.AgentService/WaitProcess:
 * container c0: not found").  timeout_ms 0 waits as long as it takes.
 */
#ifndef HUSK_LIB_AGENT_CLIENT_H
#define HUSK_LIB_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent.pb-c.h"
#include "husk-common/error.h"
#include "husk-common/ttrpc.h"

#define AGENT_VSOCK_PORT 1024
/* Bound on calls that do work in the guest (create, start, remove, ...). */
#define AGENT_CONTROL_TIMEOUT_MS 60000

struct agent_client {
	struct husk_ttrpc_client *ttrpc;
};

/* Takes fd (also on failure). */
int agent_client_open(struct agent_client *ac, int fd, struct husk_error *err);
void agent_client_close(struct agent_client *ac);

/* grpc.Health/Check answered SERVING. */
int agent_health_check(struct agent_client *ac, int timeout_ms, struct husk_error *err);

int agent_create_sandbox(struct agent_client *ac, const char *sandbox_id,
			 const char *hostname, struct husk_error *err);
int agent_destroy_sandbox(struct agent_client *ac, int timeout_ms, struct husk_error *err);

int agent_create_container(struct agent_client *ac, const Grpc__CreateContainerRequest *req,
			   struct husk_error *err);
int agent_start_container(struct agent_client *ac, const char *cid, struct husk_error *err);
int agent_remove_container(struct agent_client *ac, const char *cid, unsigned int timeout_s,
			   struct husk_error *err);
int agent_exec_process(struct agent_client *ac, const char *cid, const char *exec_id,
		       const Grpc__Process *process, struct husk_error *err);
int agent_signal_process(struct agent_client *ac, const char *cid, const char *exec_id,
			 int signal, struct husk_error *err);
/* *status: exit code or 128+signal. */
int agent_wait_process(struct agent_client *ac, const char *cid, const char *exec_id,
		       int *status, struct husk_error *err);

enum agent_stream { AGENT_STDOUT, AGENT_STDERR };

/*
 * Up to size bytes of a process's stdout/stderr into buf; blocks until
 * some arrive.  Returns the byte count, 0 at end of stream.
 */
ssize_t agent_read_stream(struct agent_client *ac, const char *cid, const char *exec_id,
			  enum agent_stream which, void *buf, size_t size,
			  struct husk_error *err);
/* Returns how many bytes the guest pipe took (may be fewer than len). */
ssize_t agent_write_stdin(struct agent_client *ac, const char *cid, const char *exec_id,
			  const void *data, size_t len, struct husk_error *err);
int agent_close_stdin(struct agent_client *ac, const char *cid, const char *exec_id,
		      struct husk_error *err);
int agent_tty_resize(struct agent_client *ac, const char *cid, const char *exec_id,
		     unsigned int rows, unsigned int cols, struct husk_error *err);
/* Freeze (pause) or thaw the container's cgroup in the guest. */
int agent_pause_container(struct agent_client *ac, const char *cid, bool pause,
			  struct husk_error *err);
int agent_update_container(struct agent_client *ac, const char *cid,
			   const Grpc__LinuxResources *res, struct husk_error *err);
/* The caller frees *resp with protobuf_c_message_free_unpacked(). */
int agent_stats_container(struct agent_client *ac, const char *cid,
			  Grpc__StatsContainerResponse **resp, struct husk_error *err);
int agent_get_oom_event(struct agent_client *ac, int timeout_ms, char *cid, size_t size,
			struct husk_error *err);

#endif
