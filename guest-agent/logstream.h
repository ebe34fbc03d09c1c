/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Log stream listener (vsock port 1025): readers get every later log line. */
#ifndef HUSK_AGENT_LOGSTREAM_H
#define HUSK_AGENT_LOGSTREAM_H

#include "agent.h"

/* Listen on cfg.log_listen (nothing when its kind is NONE). */
int agent_logstream_start(struct agent *agent, struct husk_error *err);
void agent_logstream_stop(struct agent *agent);

#endif
