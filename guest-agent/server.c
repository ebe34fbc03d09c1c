// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Glue between the loop and the ttRPC server: accept connections, feed
 * their events to husk_ttrpc_conn_process() and keep each fd's epoll mask
 * in step with what the connection wants.  Nothing here blocks, except
 * agent_server_flush() which is bounded and used only on the way out.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <husk-common/cleanup.h>

#include "agent.h"
#include "listen.h"
#include "log.h"
#include "rpc.h"

struct agent_conn {
	struct agent *agent;
	struct husk_ttrpc_conn *conn;
	struct loop_source *src;
	struct agent_conn *next;
};

static void conn_close(struct agent_conn *c)
{
	struct agent_conn **pp;

	for (pp = &c->agent->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	loop_remove(c->agent->loop, c->src);
	husk_ttrpc_conn_free(c->conn);
	free(c);
}

static void conn_notify(struct husk_ttrpc_conn *conn, uint32_t events, void *data)
{
	struct agent_conn *c = data;

	if (c->src && loop_modify(c->agent->loop, c->src, events) < 0)
		log_error("connection fd %d: updating epoll mask: %m", husk_ttrpc_conn_fd(conn));
}

static void on_conn(struct agent_loop *loop, struct loop_source *src, uint32_t events,
		    void *data)
{
	struct agent_conn *c = data;
	struct husk_error err = {};
	int r = husk_ttrpc_conn_process(c->conn, events, &err);

	if (r < 0) {
		if (r != -ECONNRESET)
			log_warn("connection fd %d closed: %s", husk_ttrpc_conn_fd(c->conn),
				 err.msg[0] ? err.msg : "error");
		conn_close(c);
		return;
	}
	conn_notify(c->conn, husk_ttrpc_conn_epoll_events(c->conn), c);
}

static int conn_add(struct agent *agent, int fd, struct husk_error *err)
{
	struct agent_conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c) {
		safe_close(fd);
		return husk_error_set(err, ENOMEM, "connection: out of memory");
	}
	c->agent = agent;
	r = husk_ttrpc_conn_new(agent->srv, fd, &c->conn, err);
	if (r < 0) {
		free(c);
		return r;
	}
	r = loop_add(agent->loop, husk_ttrpc_conn_fd(c->conn),
		     husk_ttrpc_conn_epoll_events(c->conn), on_conn, c, &c->src, err);
	if (r < 0) {
		husk_ttrpc_conn_free(c->conn);
		free(c);
		return r;
	}
	husk_ttrpc_conn_set_notify(c->conn, conn_notify, c);
	c->next = agent->conns;
	agent->conns = c;
	return 0;
}

/*
 * Out of fds, a pending connection would wake the level-triggered loop
 * forever: give up the spare fd, accept the client and close it at once
 * (it sees a reset rather than a hang), then take the spare back.
 * Returns false when nothing was pending (accept reports EMFILE before it
 * looks at the queue).
 */
static bool refuse_one(struct agent *agent)
{
	int fd;

	agent->spare_fd = safe_close(agent->spare_fd);
	fd = agent_listen_accept(agent->listen_fd);
	if (fd >= 0) {
		log_error("accept: out of file descriptors: connection refused");
		close(fd);
	}
	agent->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0;
}

static void on_listen(struct agent_loop *loop, struct loop_source *src, uint32_t events,
		      void *data)
{
	struct agent *agent = data;

	if (events & (EPOLLERR | EPOLLHUP)) {
		log_error("listening socket failed: cannot serve any more");
		agent_request_shutdown(agent, 1);
		return;
	}
	for (;;) {
		struct husk_error err = {};
		int fd = agent_listen_accept(agent->listen_fd);

		if (fd == -EAGAIN || fd == -EINTR)
			return;
		if (fd == -EMFILE || fd == -ENFILE) {
			if (!refuse_one(agent))
				return;
			continue;
		}
		if (fd < 0) {
			log_error("accept: %s", strerror(-fd));
			return;
		}
		if (conn_add(agent, fd, &err) < 0)
			log_error("new connection: %s", err.msg);
	}
}

int agent_server_start(struct agent *agent, struct husk_error *err)
{
	int r;

	r = husk_ttrpc_server_new(agent_methods, agent_n_methods, agent, &agent->srv, err);
	if (r < 0)
		return r;
	agent->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (agent->spare_fd < 0)
		return husk_error_seterrno(err, errno, "open /dev/null");
	agent->listen_fd = agent_listen_open(&agent->cfg.listen, err);
	if (agent->listen_fd < 0)
		return agent->listen_fd;
	return loop_add(agent->loop, agent->listen_fd, EPOLLIN, on_listen, agent,
			&agent->listen_src, err);
}

void agent_server_stop(struct agent *agent)
{
	while (agent->conns)
		conn_close(agent->conns);
	loop_remove(agent->loop, agent->listen_src);
	agent->listen_src = NULL;
	agent->listen_fd = safe_close(agent->listen_fd);
	agent->spare_fd = safe_close(agent->spare_fd);
	husk_ttrpc_server_free(agent->srv);
	agent->srv = NULL;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void agent_server_flush(struct agent *agent, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;

	for (struct agent_conn *c = agent->conns; c; c = c->next) {
		while (husk_ttrpc_conn_flush(c->conn, NULL) == -EAGAIN) {
			struct pollfd p = { .fd = husk_ttrpc_conn_fd(c->conn), .events = POLLOUT };
			long left = deadline - now_ms();

			if (left <= 0 || poll(&p, 1, (int)left) <= 0)
				break;
		}
	}
}
