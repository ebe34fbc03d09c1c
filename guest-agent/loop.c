// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "log.h"
#include "loop.h"

#define LOOP_BATCH 64

struct loop_source {
	int fd;
	loop_fn fn;
	void *data;
	bool dead;
	struct loop_source *next_dead;
};

struct agent_loop {
	int epfd;
	bool stop;
	struct loop_source *dead;	/* removed, freed after the batch */
};

int loop_new(struct agent_loop **out, struct husk_error *err)
{
	struct agent_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return husk_error_set(err, ENOMEM, "event loop: out of memory");
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int r = husk_error_seterrno(err, errno, "event loop: epoll_create1");

		free(loop);
		return r;
	}
	*out = loop;
	return 0;
}

static void loop_reap_dead(struct agent_loop *loop)
{
	while (loop->dead) {
		struct loop_source *s = loop->dead;

		loop->dead = s->next_dead;
		free(s);
	}
}

void loop_free(struct agent_loop *loop)
{
	if (!loop)
		return;
	loop_reap_dead(loop);
	safe_close(loop->epfd);
	free(loop);
}

int loop_add(struct agent_loop *loop, int fd, uint32_t events, loop_fn fn, void *data,
	     struct loop_source **out, struct husk_error *err)
{
	struct loop_source *src = calloc(1, sizeof(*src));
	struct epoll_event ev = { .events = events };

	if (!src)
		return husk_error_set(err, ENOMEM, "event loop: out of memory");
	src->fd = fd;
	src->fn = fn;
	src->data = data;
	ev.data.ptr = src;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = husk_error_seterrno(err, errno, "event loop: watching fd %d", fd);

		free(src);
		return r;
	}
	if (out)
		*out = src;
	return 0;
}

int loop_modify(struct agent_loop *loop, struct loop_source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0)
		return -errno;
	return 0;
}

void loop_remove(struct agent_loop *loop, struct loop_source *src)
{
	if (!src || src->dead)
		return;
	/* The fd may already be closed by its owner; then epoll forgot it. */
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, src->fd, NULL);
	src->dead = true;
	src->next_dead = loop->dead;
	loop->dead = src;
}

int loop_source_fd(const struct loop_source *src)
{
	return src->fd;
}

int loop_run(struct agent_loop *loop)
{
	struct epoll_event events[LOOP_BATCH];

	while (!loop->stop) {
		int n = epoll_wait(loop->epfd, events, LOOP_BATCH, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %m");
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct loop_source *src = events[i].data.ptr;

			if (!src->dead)
				src->fn(loop, src, events[i].events, src->data);
		}
		loop_reap_dead(loop);
	}
	return 0;
}

void loop_stop(struct agent_loop *loop)
{
	loop->stop = true;
}

bool loop_stopped(const struct agent_loop *loop)
{
	return loop->stop;
}
