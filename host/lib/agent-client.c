// SPDX-License-Identifier: LGPL-2.1-or-later
/* Typed calls to husk-agent (Kata's agent API subset) over ttRPC. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent-client.h"
#include "health.pb-c.h"

#define AGENT_SERVICE "grpc.AgentService"
#define HEALTH_SERVICE "grpc.Health"

int agent_client_open(struct agent_client *ac, int fd, struct husk_error *err)
{
	return husk_ttrpc_client_new(fd, &ac->ttrpc, err);
}

void agent_client_close(struct agent_client *ac)
{
	husk_ttrpc_client_free(ac->ttrpc);
	ac->ttrpc = NULL;
}

/* One call; resp may be NULL when the answer carries nothing we need. */
static int agent_call(struct agent_client *ac, const char *service, const char *method,
		      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *out,
		      int timeout_ms, ProtobufCMessage **resp, struct husk_error *err)
{
	ProtobufCMessage *m = NULL;
	int r;

	r = husk_ttrpc_client_call(ac->ttrpc, service, method, req, out, timeout_ms, &m,
				   NULL, err);
	if (r < 0)
		return r;
	if (resp)
		*resp = m;
	else
		protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

static int agent_simple(struct agent_client *ac, const char *method,
			const ProtobufCMessage *req, int timeout_ms, struct husk_error *err)
{
	return agent_call(ac, AGENT_SERVICE, method, req, &grpc__empty__descriptor, timeout_ms,
			  NULL, err);
}

int agent_health_check(struct agent_client *ac, int timeout_ms, struct husk_error *err)
{
	Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
	Grpc__HealthCheckResponse *resp;
	int serving, r;

	r = agent_call(ac, HEALTH_SERVICE, "Check", &req.base,
		       &grpc__health_check_response__descriptor, timeout_ms,
		       (ProtobufCMessage **)&resp, err);
	if (r < 0)
		return r;
	serving = resp->status == GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return serving ? 0 : husk_error_set(err, EAGAIN, "agent: not serving yet");
}

int agent_create_sandbox(struct agent_client *ac, const char *sandbox_id,
			 const char *hostname, struct husk_error *err)
{
	Grpc__CreateSandboxRequest req = GRPC__CREATE_SANDBOX_REQUEST__INIT;

	req.sandbox_id = (char *)sandbox_id;
	if (hostname)
		req.hostname = (char *)hostname;
	return agent_simple(ac, "CreateSandbox", &req.base, AGENT_CONTROL_TIMEOUT_MS, err);
}

int agent_destroy_sandbox(struct agent_client *ac, int timeout_ms, struct husk_error *err)
{
	Grpc__DestroySandboxRequest req = GRPC__DESTROY_SANDBOX_REQUEST__INIT;

	return agent_simple(ac, "DestroySandbox", &req.base, timeout_ms, err);
}

int agent_create_container(struct agent_client *ac, const Grpc__CreateContainerRequest *req,
			   struct husk_error *err)
{
	return agent_simple(ac, "CreateContainer", &req->base, AGENT_CONTROL_TIMEOUT_MS, err);
}

int agent_start_container(struct agent_client *ac, const char *cid, struct husk_error *err)
{
	Grpc__StartContainerRequest req = GRPC__START_CONTAINER_REQUEST__INIT;

	req.container_id = (char *)cid;
	return agent_simple(ac, "StartContainer", &req.base, AGENT_CONTROL_TIMEOUT_MS, err);
}

int agent_remove_container(struct agent_client *ac, const char *cid, unsigned int timeout_s,
			   struct husk_error *err)
{
	Grpc__RemoveContainerRequest req = GRPC__REMOVE_CONTAINER_REQUEST__INIT;

	req.container_id = (char *)cid;
	req.timeout = timeout_s;
	return agent_simple(ac, "RemoveContainer", &req.base,
			    AGENT_CONTROL_TIMEOUT_MS + timeout_s * 1000, err);
}

int agent_exec_process(struct agent_client *ac, const char *cid, const char *exec_id,
		       const Grpc__Process *process, struct husk_error *err)
{
	Grpc__ExecProcessRequest req = GRPC__EXEC_PROCESS_REQUEST__INIT;

	req.container_id = (char *)cid;
	req.exec_id = (char *)exec_id;
	req.process = (Grpc__Process *)process;
	return agent_simple(ac, "ExecProcess", &req.base, AGENT_CONTROL_TIMEOUT_MS, err);
}

int agent_signal_process(struct agent_client *ac, const char *cid, const char *exec_id,
			 int signal, struct husk_error *err)
{
	Grpc__SignalProcessRequest req = GRPC__SIGNAL_PROCESS_REQUEST__INIT;

	req.container_id = (char *)cid;
	req.exec_id = (char *)exec_id;
	req.signal = (uint32_t)signal;
	return agent_simple(ac, "SignalProcess", &req.base, AGENT_CONTROL_TIMEOUT_MS, err);
}

int agent_wait_process(struct agent_client *ac, const char *cid, const char *exec_id,
		       int *status, struct husk_error *err)
{
	Grpc__WaitProcessRequest req = GRPC__WAIT_PROCESS_REQUEST__INIT;
	Grpc__WaitProcessResponse *resp;
	int r;

	req.container_id = (char *)cid;
	req.exec_id = (char *)exec_id;
	r = agent_call(ac, AGENT_SERVICE, "WaitProcess", &req.base,
		       &grpc__wait_process_response__descriptor, 0,
		       (ProtobufCMessage **)&resp, err);
	if (r < 0)
		return r;
	*status = resp->status;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

ssize_t agent_read_stream(struct agent_client *ac, const char *cid, const char *exec_id,
			  enum agent_stream which, void *buf, size_t size,
			  struct husk_error *err)
{
	Grpc__ReadStreamRequest req = GRPC__READ_STREAM_REQUEST__INIT;
	Grpc__ReadStreamResponse *resp;
	size_t n;
	int r;

	req.container_id = (char *)cid;
	req.exec_id = (char *)exec_id;
	req.len = (uint32_t)size;
	r = agent_call(ac, AGENT_SERVICE, which == AGENT_STDOUT ? "ReadStdout" : "ReadStderr",
		       &req.base, &grpc__read_stream_response__descriptor, 0,
		       (ProtobufCMessage **)&resp, err);
	if (r < 0)
		return r;
	n = resp->data.len;
	if (n > size) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return husk_error_set(err, EPROTO, "agent: read answered %zu bytes, asked %zu",
				      n, size);
	}
	if (n)
		memcpy(buf, resp->data.data, n);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return (ssize_t)n;
}

ssize_t agent_write_stdin(struct agent_client *ac, const char *cid, const char *exec_id,
			  const void *data, size_t len, struct husk_error *err)
{
	Grpc__WriteStreamRequest req = GRPC__WRITE_STREAM_REQUEST__INIT;
	Grpc__WriteStreamResponse *resp;
	size_t n;
	int r;

	req.container_id = (char *)cid;
	req.exec_id = (char *)exec_id;
	req.data.data = (uint8_t *)data;
	req.data.len = len;
	r = agent_call(ac, AGENT_SERVICE, "WriteStdin", &req.base,
		       &grpc__write_stream_response__descriptor, 0,
		       (ProtobufCMessage **)&resp, err);
	if (r < 0)
		return r;
	n = resp->len;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (n > len)
		return husk_error_set(err, EPROTO, "agent: stdin took %zu of %zu bytes", n, len);
	return (ssize_t)n;
}

int agent_close_stdin(struct agent_client *ac, const char *cid, const char *exec_id,
		      struct husk_error *err)
{
	Grpc__CloseStdinRequest req = GRPC__CLOSE_STDIN_REQUEST__INIT;

	req.container_id = (char *)cid;
	req.exec_id = (char *)exec_id;
	return agent_simple(ac, "CloseStdin", &req.base, AGENT_CONTROL_TIMEOUT_MS, err);
}

int agent_tty_resize(struct agent_client *ac, const char *cid, const char *exec_id,
		     unsigned int rows, unsigned int cols, struct husk_error *err)
{
	Grpc__TtyWinResizeRequest req = GRPC__TTY_WIN_RESIZE_REQUEST__INIT;

	req.container_id = (char *)cid;
	req.exec_id = (char *)exec_id;
	req.row = rows;
	req.column = cols;
	return agent_simple(ac, "TtyWinResize", &req.base, AGENT_CONTROL_TIMEOUT_MS, err);
}

int agent_pause_container(struct agent_client *ac, const char *cid, bool pause,
			  struct husk_error *err)
{
	Grpc__PauseContainerRequest preq = GRPC__PAUSE_CONTAINER_REQUEST__INIT;
	Grpc__ResumeContainerRequest rreq = GRPC__RESUME_CONTAINER_REQUEST__INIT;

	preq.container_id = rreq.container_id = (char *)cid;
	return pause ? agent_simple(ac, "PauseContainer", &preq.base, AGENT_CONTROL_TIMEOUT_MS, err) :
		agent_simple(ac, "ResumeContainer", &rreq.base, AGENT_CONTROL_TIMEOUT_MS, err);
}

int agent_update_container(struct agent_client *ac, const char *cid,
			   const Grpc__LinuxResources *res, struct husk_error *err)
{
	Grpc__UpdateContainerRequest req = GRPC__UPDATE_CONTAINER_REQUEST__INIT;

	req.container_id = (char *)cid;
	req.resources = (Grpc__LinuxResources *)res;
	return agent_simple(ac, "UpdateContainer", &req.base, AGENT_CONTROL_TIMEOUT_MS, err);
}

int agent_stats_container(struct agent_client *ac, const char *cid,
			  Grpc__StatsContainerResponse **resp, struct husk_error *err)
{
	Grpc__StatsContainerRequest req = GRPC__STATS_CONTAINER_REQUEST__INIT;

	req.container_id = (char *)cid;
	return agent_call(ac, AGENT_SERVICE, "StatsContainer", &req.base,
			  &grpc__stats_container_response__descriptor, AGENT_CONTROL_TIMEOUT_MS,
			  (ProtobufCMessage **)resp, err);
}

int agent_get_oom_event(struct agent_client *ac, int timeout_ms, char *cid, size_t size,
			struct husk_error *err)
{
	Grpc__GetOOMEventRequest req = GRPC__GET_OOMEVENT_REQUEST__INIT;
	Grpc__OOMEvent *ev;
	int r;

	r = agent_call(ac, AGENT_SERVICE, "GetOOMEvent", &req.base, &grpc__oomevent__descriptor,
		       timeout_ms, (ProtobufCMessage **)&ev, err);
	if (r < 0)
		return r;
	snprintf(cid, size, "%s", ev->container_id);
	protobuf_c_message_free_unpacked(&ev->base, NULL);
	return 0;
}
