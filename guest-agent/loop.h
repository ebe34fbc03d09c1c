/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's single epoll loop.  A source is an fd plus a callback; a
 * removed source is freed only after the current batch of events has been
 * dispatched, so a callback may remove any source (even one whose event is
 * still pending in this batch) without a use-after-free.
 */
#ifndef HUSK_AGENT_LOOP_H
#define HUSK_AGENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include <husk-common/error.h>

struct agent_loop;
struct loop_source;

typedef void (*loop_fn)(struct agent_loop *loop, struct loop_source *src,
			uint32_t events, void *data);

int loop_new(struct agent_loop **out, struct husk_error *err);
void loop_free(struct agent_loop *loop);

/* Watch fd (not owned) for events; *out may be NULL. */
int loop_add(struct agent_loop *loop, int fd, uint32_t events, loop_fn fn, void *data,
	     struct loop_source **out, struct husk_error *err);
int loop_modify(struct agent_loop *loop, struct loop_source *src, uint32_t events);
/* Stop watching; NULL is a no-op.  The fd is not closed. */
void loop_remove(struct agent_loop *loop, struct loop_source *src);
int loop_source_fd(const struct loop_source *src);

/* Dispatch until loop_stop(); returns 0, or -errno if epoll itself fails. */
int loop_run(struct agent_loop *loop);
void loop_stop(struct agent_loop *loop);
bool loop_stopped(const struct agent_loop *loop);

#endif
