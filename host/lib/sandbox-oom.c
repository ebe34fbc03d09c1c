// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * OOM events without blocking the caller: a library thread keeps one
 * GetOOMEvent call parked in the agent (never abandoned, so no event is
 * answered to a call nobody waits for) and queues what comes back.  The
 * thread ends when the agent connection dies, which husk_sandbox_destroy()
 * brings about before it joins the thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sandbox-internal.h"
#include "util.h"

/* Events not yet taken are kept up to this many, the oldest dropped. */
#define OOM_QUEUE_MAX 64
#define OOM_ID_MAX 128

struct sandbox_oom {
	struct husk_sandbox *sb;
	pthread_t thread;
	pthread_mutex_t lock;
	int efd;			/* readable while events are queued or the watch ended */
	char ids[OOM_QUEUE_MAX][OOM_ID_MAX + 1];
	size_t head, count;
	bool ended;
	struct husk_error end_err;	/* why the watch ended */
};

static void oom_signal(struct sandbox_oom *o)
{
	uint64_t one = 1;

	(void)!write(o->efd, &one, sizeof(one));
}

static void *oom_thread_main(void *arg)
{
	struct sandbox_oom *o = arg;
	struct husk_error err = { 0 };
	char id[OOM_ID_MAX + 1];

	/* No deadline: a timed-out call would stay parked and swallow an event. */
	while (agent_get_oom_event(&o->sb->agent, 0, id, sizeof(id), &err) == 0) {
		pthread_mutex_lock(&o->lock);
		if (o->count == OOM_QUEUE_MAX) {
			o->head = (o->head + 1) % OOM_QUEUE_MAX;
			o->count--;
		}
		memcpy(o->ids[(o->head + o->count) % OOM_QUEUE_MAX], id, sizeof(id));
		o->count++;
		oom_signal(o);
		pthread_mutex_unlock(&o->lock);
	}
	pthread_mutex_lock(&o->lock);
	o->ended = true;
	o->end_err = err;
	oom_signal(o);
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

HUSK_EXPORT int husk_sandbox_watch_oom(struct husk_sandbox *sb, struct husk_error *err)
{
	struct sandbox_oom *o = sb->oom;
	int r;

	if (o)
		return o->efd;
	o = calloc(1, sizeof(*o));
	if (!o)
		return husk_error_set(err, ENOMEM, "out of memory");
	o->sb = sb;
	o->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (o->efd < 0) {
		r = husk_error_seterrno(err, errno, "eventfd");
		free(o);
		return r;
	}
	pthread_mutex_init(&o->lock, NULL);
	r = pthread_create(&o->thread, NULL, oom_thread_main, o);
	if (r) {
		close(o->efd);
		pthread_mutex_destroy(&o->lock);
		free(o);
		return husk_error_seterrno(err, r, "OOM watch thread");
	}
	sb->oom = o;
	return o->efd;
}

HUSK_EXPORT int husk_sandbox_next_oom(struct husk_sandbox *sb, char *container_id,
				      size_t size, struct husk_error *err)
{
	struct sandbox_oom *o = sb->oom;
	uint64_t n;
	int r = 0;

	if (!o)
		return husk_error_set(err, EINVAL, "OOM events: husk_sandbox_watch_oom() first");
	pthread_mutex_lock(&o->lock);
	if (o->count) {
		snprintf(container_id, size, "%s", o->ids[o->head]);
		o->head = (o->head + 1) % OOM_QUEUE_MAX;
		o->count--;
	} else if (o->ended) {
		r = husk_error_set(err, EPIPE, "OOM events ended: %s",
				   o->end_err.msg[0] ? o->end_err.msg : "agent gone");
	} else {
		r = -EAGAIN;
	}
	/* Readable exactly while there is something to take (or the end to see). */
	if (!o->count && !o->ended)
		(void)!read(o->efd, &n, sizeof(n));
	pthread_mutex_unlock(&o->lock);
	return r;
}

bool sandbox_oom_watching(const struct husk_sandbox *sb)
{
	return sb->oom != NULL;
}

void sandbox_oom_stop(struct husk_sandbox *sb)
{
	struct sandbox_oom *o = sb->oom;

	if (!o)
		return;
	/* The agent connection is gone by now: the parked call has failed. */
	pthread_join(o->thread, NULL);
	close(o->efd);
	pthread_mutex_destroy(&o->lock);
	free(o);
	sb->oom = NULL;
}
