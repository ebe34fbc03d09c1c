// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "log.h"
#include "oom.h"
#include "rpc.h"

/* Events nobody asked for yet are kept up to this many, oldest dropped. */
#define OOM_QUEUE_MAX 64

struct oom_watch {
	struct runtime_container *ctr;
	int wd;
	uint64_t kills;			/* oom_kill count last seen */
	struct oom_watch *next;
};

struct oom_event {
	char id[RUNTIME_ID_MAX + 1];
	struct oom_event *next;
};

struct oom_waiter {
	struct husk_ttrpc_call *call;
	struct oom_waiter *next;
};

struct agent_oom {
	int ifd;
	struct loop_source *src;
	struct oom_watch *watches;
	struct oom_event *events, **events_tail;
	size_t n_events;
	struct oom_waiter *waiters, **waiters_tail;
};

static void reply_event(struct husk_ttrpc_call *call, const char *id)
{
	Grpc__OOMEvent ev = GRPC__OOMEVENT__INIT;

	ev.container_id = (char *)id;
	husk_ttrpc_call_reply(call, &ev.base, NULL);
}

static void oom_deliver(struct agent_oom *oom, const char *id)
{
	struct oom_event *ev;

	/* A waiter whose client went away must not swallow the event. */
	while (oom->waiters) {
		struct oom_waiter *w = oom->waiters;
		bool connected = husk_ttrpc_call_connected(w->call);

		oom->waiters = w->next;
		if (!oom->waiters)
			oom->waiters_tail = &oom->waiters;
		if (connected)
			reply_event(w->call, id);
		else
			husk_ttrpc_call_drop(w->call);
		free(w);
		if (connected)
			return;
	}
	if (oom->n_events == OOM_QUEUE_MAX) {
		ev = oom->events;
		oom->events = ev->next;
		if (!oom->events)
			oom->events_tail = &oom->events;
		oom->n_events--;
		log_warn("OOM event of container %s dropped: nobody asked", ev->id);
		free(ev);
	}
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return;
	snprintf(ev->id, sizeof(ev->id), "%s", id);
	*oom->events_tail = ev;
	oom->events_tail = &ev->next;
	oom->n_events++;
}

static void oom_check(struct agent_oom *oom, struct oom_watch *w)
{
	uint64_t kills;

	if (runtime_container_oom_kills(w->ctr, &kills, NULL) < 0 || kills <= w->kills)
		return;
	w->kills = kills;
	log_info("container %s: OOM kill (%llu so far)", runtime_container_id(w->ctr),
		 (unsigned long long)kills);
	oom_deliver(oom, runtime_container_id(w->ctr));
}

static void on_inotify(struct agent_loop *loop, struct loop_source *src, uint32_t events,
		       void *data)
{
	struct agent_oom *oom = data;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		ssize_t n = read(oom->ifd, buf, sizeof(buf));

		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ie = (const void *)p;

			for (struct oom_watch *w = oom->watches; w; w = w->next)
				if (w->wd == ie->wd)
					oom_check(oom, w);
			p += sizeof(*ie) + ie->len;
		}
	}
}

int agent_oom_start(struct agent *agent, struct husk_error *err)
{
	struct agent_oom *oom = calloc(1, sizeof(*oom));
	int r;

	if (!oom)
		return husk_error_set(err, ENOMEM, "OOM watcher: out of memory");
	oom->events_tail = &oom->events;
	oom->waiters_tail = &oom->waiters;
	oom->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (oom->ifd < 0) {
		r = husk_error_seterrno(err, errno, "OOM watcher: inotify_init1");
		free(oom);
		return r;
	}
	r = loop_add(agent->loop, oom->ifd, EPOLLIN, on_inotify, oom, &oom->src, err);
	if (r < 0) {
		safe_close(oom->ifd);
		free(oom);
		return r;
	}
	agent->oom = oom;
	return 0;
}

void agent_oom_stop(struct agent *agent)
{
	struct agent_oom *oom = agent->oom;

	if (!oom)
		return;
	while (oom->watches) {
		struct oom_watch *w = oom->watches;

		oom->watches = w->next;
		free(w);
	}
	while (oom->events) {
		struct oom_event *ev = oom->events;

		oom->events = ev->next;
		free(ev);
	}
	while (oom->waiters) {
		struct oom_waiter *w = oom->waiters;

		oom->waiters = w->next;
		husk_ttrpc_call_drop(w->call);
		free(w);
	}
	loop_remove(agent->loop, oom->src);
	safe_close(oom->ifd);
	free(oom);
	agent->oom = NULL;
}

void agent_oom_watch(struct agent *agent, struct runtime_container *ctr)
{
	const char *path = runtime_container_memory_events(ctr);
	struct agent_oom *oom = agent->oom;
	struct oom_watch *w;

	if (!path || !oom)
		return;
	w = calloc(1, sizeof(*w));
	if (!w)
		return;
	w->ctr = ctr;
	w->wd = inotify_add_watch(oom->ifd, path, IN_MODIFY);
	if (w->wd < 0) {
		log_warn("container %s: watching %s: %m", runtime_container_id(ctr), path);
		free(w);
		return;
	}
	(void)runtime_container_oom_kills(ctr, &w->kills, NULL);
	w->next = oom->watches;
	oom->watches = w;
}

void agent_oom_unwatch(struct agent *agent, struct runtime_container *ctr)
{
	struct agent_oom *oom = agent->oom;

	if (!oom)
		return;
	for (struct oom_watch **pp = &oom->watches; *pp; pp = &(*pp)->next) {
		struct oom_watch *w = *pp;

		if (w->ctr != ctr)
			continue;
		/* A last look: an OOM kill may have ended the container. */
		oom_check(oom, w);
		(void)inotify_rm_watch(oom->ifd, w->wd);
		*pp = w->next;
		free(w);
		return;
	}
}

RPC_HANDLER(get_oom_event)
{
	struct agent *agent = userdata;
	struct agent_oom *oom = agent->oom;
	struct oom_event *ev = oom->events;
	struct oom_waiter *w;

	if (ev) {
		oom->events = ev->next;
		if (!oom->events)
			oom->events_tail = &oom->events;
		oom->n_events--;
		reply_event(call, ev->id);
		free(ev);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INTERNAL, "out of memory");
		return;
	}
	w->call = call;
	*oom->waiters_tail = w;
	oom->waiters_tail = &w->next;
}
