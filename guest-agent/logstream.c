// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The log stream: host readers connect (vsock port 1025 in the guest) and
 * receive every log line from then on.  Readers never send; their sockets
 * are watched only to notice when they go away.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <husk-common/cleanup.h>

#include "agent.h"
#include "listen.h"
#include "log.h"
#include "logstream.h"

struct log_reader {
	struct agent *agent;
	int fd;
	struct loop_source *src;
	struct log_reader *next;
};

static void reader_close(struct agent *agent, struct log_reader *r)
{
	for (struct log_reader **pp = &agent->log_readers; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	agent_log_remove_reader(r->fd);
	loop_remove(agent->loop, r->src);
	safe_close(r->fd);
	free(r);
}

static void on_reader(struct agent_loop *loop, struct loop_source *src, uint32_t events,
		      void *data)
{
	struct log_reader *r = data;
	char buf[256];
	ssize_t n = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT);

	/* Whatever a reader sends is ignored; EOF or an error ends it. */
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
	    (events & (EPOLLHUP | EPOLLERR)))
		reader_close(r->agent, r);
}

static void reader_add(struct agent *agent, int fd)
{
	struct log_reader *r = calloc(1, sizeof(*r));
	struct husk_error err = {};

	if (!r || agent_log_add_reader(fd) < 0) {
		free(r);
		safe_close(fd);
		return;
	}
	r->agent = agent;
	r->fd = fd;
	if (loop_add(agent->loop, fd, EPOLLIN | EPOLLRDHUP, on_reader, r, &r->src, &err) < 0) {
		agent_log_remove_reader(fd);
		safe_close(fd);
		free(r);
		return;
	}
	r->next = agent->log_readers;
	agent->log_readers = r;
	log_debug("log reader connected");
}

static void on_log_listen(struct agent_loop *loop, struct loop_source *src, uint32_t events,
			  void *data)
{
	struct agent *agent = data;

	for (;;) {
		int fd = agent_listen_accept(agent->log_listen_fd);

		if (fd < 0)
			return;
		reader_add(agent, fd);
	}
}

int agent_logstream_start(struct agent *agent, struct husk_error *err)
{
	int fd;

	if (agent->cfg.log_listen.kind == AGENT_LISTEN_NONE)
		return 0;
	fd = agent_listen_open(&agent->cfg.log_listen, err);
	if (fd < 0)
		return fd;
	agent->log_listen_fd = fd;
	return loop_add(agent->loop, fd, EPOLLIN, on_log_listen, agent, &agent->log_listen_src,
			err);
}

void agent_logstream_stop(struct agent *agent)
{
	while (agent->log_readers)
		reader_close(agent, agent->log_readers);
	loop_remove(agent->loop, agent->log_listen_src);
	agent->log_listen_src = NULL;
	agent->log_listen_fd = safe_close(agent->log_listen_fd);
}
