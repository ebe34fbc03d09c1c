/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The server's view of a container process: its stdio streams for the
 * WriteStdin/ReadStdout/ReadStderr RPCs and the WaitProcess calls waiting
 * for it.  Reads, writes and waits that cannot complete now are deferred:
 * the call is parked here and answered from the loop later.
 *
 * Exit ordering: WaitProcess is answered only once the process exited and
 * every stream a client has started reading reached its end for that
 * client, so no output is lost to the forget that follows (later calls for
 * that process answer NOT_FOUND, as Kata's).
 */
#ifndef HUSK_AGENT_PROCESS_H
#define HUSK_AGENT_PROCESS_H

#include "agent.h"

struct agent_process;

/* Track a new process: take its output fds from the runtime, borrow its stdin. */
int agent_process_track(struct agent *agent, struct runtime_process *proc,
			struct husk_error *err);

/* Exit callback of the runtime (runtime_options.on_exit). */
void agent_process_on_exit(void *userdata, struct runtime_container *ctr,
			   struct runtime_process *proc);

/* The tracked state of proc, NULL when not tracked. */
struct agent_process *agent_process_of(struct runtime_process *proc);

/* Answer now if the process is done, else defer the call. */
void agent_process_wait(struct agent_process *ap, struct husk_ttrpc_call *call);

/* ReadStdout/ReadStderr: answer with up to len bytes, empty at EOF; defer if none yet. */
void agent_process_read(struct agent_process *ap, enum runtime_stream which, size_t len,
			struct husk_ttrpc_call *call);

/* WriteStdin: answer with the bytes accepted; defer while the pipe is full. */
void agent_process_write(struct agent_process *ap, const uint8_t *data, size_t len,
			 struct husk_ttrpc_call *call);

struct stdio_forward;

/*
 * The stdio channel takes stream `which` for forwarder fwd: returns the
 * fd (now the caller's), -EBUSY when already attached or used over RPC,
 * -ENODEV when the process has no such stream.  From then on ReadStdout
 * and WriteStdin on it fail, and WaitProcess waits for
 * agent_process_forward_done() on an output stream, at most
 * FORWARD_GRACE_MS (2 s) after the exit.
 */
int agent_process_hand_off(struct agent_process *ap, enum runtime_stream which,
			   struct stdio_forward *fwd, struct husk_error *err);

/* The forwarder of a handed-off stream ended. */
void agent_process_forward_done(struct agent_process *ap, enum runtime_stream which);

/* CloseStdin. */
void agent_process_close_stdin(struct agent_process *ap);

/*
 * The container is about to be removed: answer every call parked on its
 * processes (reads: end of stream; waits: the status if known, else
 * `code`/"message") and stop tracking them.
 */
void agent_container_untrack(struct agent *agent, struct runtime_container *ctr);


/* Shutdown: drop every parked call and tracked process. */
void agent_process_untrack_all(struct agent *agent);

#endif
