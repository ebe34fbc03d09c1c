// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * One vsock stream between a guest port and a host unix socket: the
 * virtio-vsock state machine, credit in both directions, and the host
 * socket I/O.  Guest headers arrive here already decoded and checked for
 * addressing; everything else about them is checked here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vsockd-int.h"

#define HOST_PORT_FIRST (1u << 30)
#define HOST_PORT_END	(1u << 31)

static unsigned bucket_of(uint32_t host_port, uint32_t guest_port)
{
	uint32_t h = host_port * 0x9e3779b1u ^ guest_port * 0x85ebca6bu;

	return (h >> 16 ^ h) % VSOCKD_HASH_BUCKETS;
}

struct conn *conn_lookup(struct vsockd *d, uint32_t host_port, uint32_t guest_port)
{
	struct list_node *head = &d->buckets[bucket_of(host_port, guest_port)];
	struct list_node *pos, *tmp;

	list_for_each_safe(pos, tmp, head) {
		struct conn *c = list_entry(pos, struct conn, hash);

		if (c->host_port == host_port && c->guest_port == guest_port)
			return c;
	}
	return NULL;
}

static void conn_set_key(struct vsockd *d, struct conn *c, uint32_t host_port,
			 uint32_t guest_port)
{
	c->host_port = host_port;
	c->guest_port = guest_port;
	c->keyed = true;
	list_add_tail(&d->buckets[bucket_of(host_port, guest_port)], &c->hash);
}

static struct conn *conn_new(struct vsockd *d, int fd, enum conn_state state)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	list_init(&c->hash);
	list_init(&c->ctl);
	list_init(&c->data);
	c->watch.kind = WATCH_CONN;
	c->state = state;
	c->fd = fd;
	c->buf_alloc = d->cfg.buf_alloc;
	list_add_tail(&d->conns, &c->all);
	d->nconns++;
	return c;
}

/* Free space the guest advertised; a bogus fwd_cnt never gives more than buf_alloc. */
static uint32_t peer_free(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static bool conn_can_send_data(const struct conn *c)
{
	return c->state == CONN_ESTABLISHED && !c->rd_eof &&
	       !(c->peer_shutdown & VSOCK_SHUTDOWN_RCV) && peer_free(c) > 0;
}

static void queue_ctl(struct vsockd *d, struct conn *c, unsigned bit)
{
	c->ctl_pending |= bit;
	if (!list_linked(&c->ctl))
		list_add_tail(&d->ctl_list, &c->ctl);
}

/* Register exactly the epoll events the connection needs now. */
static void conn_update_poll(struct vsockd *d, struct conn *c)
{
	struct epoll_event ev = { .data.ptr = &c->watch };
	uint32_t want = 0;

	if (c->hup) {
		/* HUP is level-triggered and cannot be masked: stop watching. */
		if (c->registered)
			epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		c->registered = false;
		return;
	}
	if (c->state == CONN_HYBRID_LINE)
		want = EPOLLIN;
	else if (c->state != CONN_LOCAL_INIT) {
		if (!c->readable && conn_can_send_data(c))
			want |= EPOLLIN;
		if (c->backlog_len)
			want |= EPOLLOUT;
	}
	if (c->registered && want == c->events)
		return;
	ev.events = want;
	if (epoll_ctl(d->epfd, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
		      c->fd, &ev) < 0) {
		vsockd_log(d, VSOCKD_LOG_INFO, "epoll_ctl on host port %u: %m",
			   c->host_port);
		return;
	}
	c->registered = true;
	c->events = want;
}

void conn_update(struct vsockd *d, struct conn *c)
{
	bool wants_data;

	if (c->dead)
		return;
	wants_data = (c->readable || c->hup) && conn_can_send_data(c);
	if (wants_data && !list_linked(&c->data))
		list_add_tail(&d->data_list, &c->data);
	else if (!wants_data && list_linked(&c->data))
		list_del(&c->data);
	conn_update_poll(d, c);
}

void conn_destroy(struct vsockd *d, struct conn *c)
{
	if (c->dead)
		return;
	vsockd_log(d, VSOCKD_LOG_DEBUG, "closed host port %u <-> guest port %u",
		   c->host_port, c->guest_port);
	c->dead = true;
	if (c->registered)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->fd = safe_close(c->fd);
	list_del(&c->hash);
	list_del(&c->ctl);
	list_del(&c->data);
	list_del(&c->all);
	free(c->backlog);
	c->backlog = NULL;
	/* Freed after the current epoll batch, which may still name it. */
	list_add_tail(&d->graveyard, &c->all);
	d->nconns--;
}

void conn_reset(struct vsockd *d, struct conn *c)
{
	if (c->keyed && (c->state != CONN_LOCAL_INIT || c->request_sent))
		vsockd_queue_rst(d, c->host_port, c->guest_port);
	conn_destroy(d, c);
}

void conn_drop_all(struct vsockd *d)
{
	struct list_node *pos, *tmp;

	list_for_each_safe(pos, tmp, &d->conns)
		conn_destroy(d, list_entry(pos, struct conn, all));
}

void conn_reap(struct vsockd *d)
{
	struct list_node *pos, *tmp;

	list_for_each_safe(pos, tmp, &d->graveyard) {
		list_del(pos);
		free(list_entry(pos, struct conn, all));
	}
}

uint64_t conn_next_deadline(const struct vsockd *d)
{
	const struct list_node *pos;
	uint64_t next = 0;

	for (pos = d->conns.next; pos != &d->conns; pos = pos->next) {
		const struct conn *c = list_entry(pos, struct conn, all);

		if (c->deadline && (!next || c->deadline < next))
			next = c->deadline;
	}
	return next;
}

void conn_expire(struct vsockd *d, uint64_t now)
{
	struct list_node *pos, *tmp;

	list_for_each_safe(pos, tmp, &d->conns) {
		struct conn *c = list_entry(pos, struct conn, all);

		if (!c->deadline || c->deadline > now)
			continue;
		if (c->state == CONN_LOCAL_INIT)
			vsockd_log(d, VSOCKD_LOG_INFO,
				   "guest port %u did not answer the connection request",
				   c->guest_port);
		else if (c->state == CONN_HYBRID_LINE)
			vsockd_log(d, VSOCKD_LOG_DEBUG, "host client sent no CONNECT line in time");
		conn_reset(d, c);
	}
}

/* ---- credit: guest -> host ---- */

/* Tell the guest about freed space once its view of our buffer runs low. */
static void conn_maybe_credit(struct vsockd *d, struct conn *c)
{
	uint32_t unacked = c->rx_cnt - c->fwd_cnt_sent;
	uint32_t guest_sees_free = unacked >= c->buf_alloc ? 0 : c->buf_alloc - unacked;

	if (c->fwd_cnt != c->fwd_cnt_sent && guest_sees_free < c->buf_alloc / 4)
		queue_ctl(d, c, CTL_CREDIT);
}

/* Both directions are finished: the RST completes the guest's close. */
static bool conn_check_done(struct vsockd *d, struct conn *c)
{
	if (c->backlog_len)
		return false;
	if ((c->peer_shutdown & VSOCK_SHUTDOWN_SEND) && !c->shut_wr && !c->hup) {
		shutdown(c->fd, SHUT_WR);
		c->shut_wr = true;
	}
	if (c->peer_shutdown == VSOCK_SHUTDOWN_BOTH ||
	    ((c->peer_shutdown & VSOCK_SHUTDOWN_SEND) && c->rd_eof)) {
		conn_reset(d, c);
		return true;
	}
	return false;
}

static int backlog_append(struct conn *c, const struct virtq_chain *chain,
			  uint64_t off, uint32_t len)
{
	uint32_t tail, first;

	if (!c->backlog) {
		c->backlog = malloc(c->buf_alloc);
		if (!c->backlog)
			return -ENOMEM;
		c->backlog_head = 0;
	}
	tail = (c->backlog_head + c->backlog_len) % c->buf_alloc;
	first = c->buf_alloc - tail < len ? c->buf_alloc - tail : len;
	virtq_chain_read(chain, off, c->backlog + tail, first);
	virtq_chain_read(chain, off + first, c->backlog, len - first);
	c->backlog_len += len;
	return 0;
}

static int host_send(struct conn *c, struct iovec *iov, unsigned niov, size_t *sent)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = niov };
	ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

	*sent = 0;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	*sent = n;
	return 0;
}

/* Write what the backlog holds; -errno when the host side is gone. */
static int backlog_flush(struct conn *c)
{
	while (c->backlog_len) {
		uint32_t first = c->buf_alloc - c->backlog_head;
		struct iovec iov[2];
		unsigned niov = 1;
		size_t sent;
		int r;

		iov[0].iov_base = c->backlog + c->backlog_head;
		iov[0].iov_len = first < c->backlog_len ? first : c->backlog_len;
		if (first < c->backlog_len) {
			iov[1].iov_base = c->backlog;
			iov[1].iov_len = c->backlog_len - first;
			niov = 2;
		}
		r = host_send(c, iov, niov, &sent);
		if (r < 0)
			return r;
		if (!sent)
			return 0;
		c->backlog_head = (c->backlog_head + sent) % c->buf_alloc;
		c->backlog_len -= sent;
		c->fwd_cnt += sent;
	}
	free(c->backlog);	/* idle connections hold no buffer */
	c->backlog = NULL;
	return 0;
}

static void conn_guest_data(struct vsockd *d, struct conn *c,
			    const struct virtq_chain *chain, uint32_t len)
{
	size_t sent = 0;
	int r = 0;

	if (len == 0)
		return;
	/* The guest may fill what we last advertised, no more; that also
	 * bounds the backlog, since fwd_cnt_sent <= fwd_cnt. */
	if ((uint64_t)(uint32_t)(c->rx_cnt - c->fwd_cnt_sent) + len > c->buf_alloc) {
		vsockd_log(d, VSOCKD_LOG_INFO,
			   "guest port %u overran its credit on host port %u: reset",
			   c->guest_port, c->host_port);
		conn_reset(d, c);
		return;
	}
	c->rx_cnt += len;
	if (!c->backlog_len) {
		/* Straight from guest memory when nothing is queued ahead. */
		struct iovec iov[VIRTQ_MAX_SEGS];
		unsigned n = virtq_chain_iov(chain, VSOCK_HDR_SIZE, len, iov, VIRTQ_MAX_SEGS);

		r = host_send(c, iov, n, &sent);
		c->fwd_cnt += sent;
	}
	if (r == 0 && sent < len)
		r = backlog_append(c, chain, VSOCK_HDR_SIZE + sent, len - sent);
	if (r < 0) {
		vsockd_log(d, VSOCKD_LOG_DEBUG, "host port %u: write: %s",
			   c->host_port, strerror(-r));
		conn_reset(d, c);
		return;
	}
	conn_maybe_credit(d, c);
}

/* ---- connection set-up ---- */

static int connect_host_port(struct vsockd *d, uint32_t port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	int n;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", d->uds_path, port);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A full backlog answers EAGAIN: the guest sees a refusal. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return TAKE_FD(fd);
}

static void guest_request(struct vsockd *d, const struct vsock_hdr *hdr, struct conn *c)
{
	int fd;

	if (c) {
		/* A second REQUEST for a live flow: the guest lost track of it. */
		conn_reset(d, c);
		return;
	}
	if (d->nconns >= d->cfg.max_conns) {
		vsockd_log(d, VSOCKD_LOG_INFO,
			   "connection limit (%u) reached: refusing guest port %u -> host port %u",
			   d->cfg.max_conns, hdr->src_port, hdr->dst_port);
		vsockd_queue_rst(d, hdr->dst_port, hdr->src_port);
		return;
	}
	fd = connect_host_port(d, hdr->dst_port);
	if (fd < 0) {
		vsockd_log(d, VSOCKD_LOG_INFO, "guest connect to host port %u: %s_%u: %s",
			   hdr->dst_port, d->uds_path, hdr->dst_port, strerror(-fd));
		vsockd_queue_rst(d, hdr->dst_port, hdr->src_port);
		return;
	}
	c = conn_new(d, fd, CONN_ESTABLISHED);
	if (!c) {
		safe_close(fd);
		vsockd_queue_rst(d, hdr->dst_port, hdr->src_port);
		return;
	}
	conn_set_key(d, c, hdr->dst_port, hdr->src_port);
	c->peer_buf_alloc = hdr->buf_alloc;
	c->peer_fwd_cnt = hdr->fwd_cnt;
	queue_ctl(d, c, CTL_RESPONSE);
	vsockd_log(d, VSOCKD_LOG_DEBUG, "guest port %u connected to host port %u",
		   hdr->src_port, hdr->dst_port);
	conn_update(d, c);
}

static bool host_port_in_use(struct vsockd *d, uint32_t port)
{
	struct list_node *pos;

	for (pos = d->conns.next; pos != &d->conns; pos = pos->next)
		if (list_entry(pos, struct conn, all)->host_port == port)
			return true;
	return false;
}

/* Round-robin in [2^30, 2^31), skipping ports in use (Firecracker's scheme). */
static uint32_t alloc_host_port(struct vsockd *d)
{
	uint32_t port;

	do {
		port = d->next_host_port++;
		if (d->next_host_port >= HOST_PORT_END)
			d->next_host_port = HOST_PORT_FIRST;
	} while (host_port_in_use(d, port));
	return port;
}

void conn_accept_hybrid(struct vsockd *d)
{
	for (;;) {
		int fd = accept4(d->uds_listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				vsockd_log(d, VSOCKD_LOG_INFO, "accept on %s: %m", d->uds_path);
			return;
		}
		if (d->nconns >= d->cfg.max_conns) {
			vsockd_log(d, VSOCKD_LOG_INFO,
				   "connection limit (%u) reached: refusing a host client",
				   d->cfg.max_conns);
			safe_close(fd);
			continue;
		}
		c = conn_new(d, fd, CONN_HYBRID_LINE);
		if (!c) {
			safe_close(fd);
			continue;
		}
		c->deadline = vsockd_now_ms() + d->cfg.line_timeout_ms;
		conn_update(d, c);
	}
}

/*
 * Consume the CONNECT line and nothing after it: bytes past the newline
 * are the client's stream data and stay in the socket.
 */
static void conn_read_line(struct vsockd *d, struct conn *c)
{
	char peek[HYBRID_LINE_MAX];
	size_t want = sizeof(c->line) - c->line_len, take;
	char *nl;
	ssize_t n;
	uint32_t port;
	int r;

	n = recv(c->fd, peek, want, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_destroy(d, c);
		return;
	}
	nl = memchr(peek, '\n', n);
	take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
	n = recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT);
	if (n != (ssize_t)take) {
		conn_destroy(d, c);
		return;
	}
	c->line_len += take;
	r = hybrid_find_line(c->line, c->line_len, &take);
	if (r == 0)
		return;
	if (r < 0 || hybrid_parse_connect(c->line, take, &port) < 0) {
		vsockd_log(d, VSOCKD_LOG_INFO, "host client sent a malformed CONNECT line");
		conn_destroy(d, c);
		return;
	}
	if (!vu_dev_ring_running(&d->dev, VU_VSOCK_RX)) {
		/* No driver yet (still booting): refuse now so the client can retry. */
		vsockd_log(d, VSOCKD_LOG_DEBUG, "guest port %u: device not started", port);
		conn_destroy(d, c);
		return;
	}
	conn_set_key(d, c, alloc_host_port(d), port);
	c->state = CONN_LOCAL_INIT;
	c->deadline = vsockd_now_ms() + d->cfg.request_timeout_ms;
	queue_ctl(d, c, CTL_REQUEST);
	vsockd_log(d, VSOCKD_LOG_DEBUG, "host client connecting to guest port %u from host port %u",
		   port, c->host_port);
}

/* The guest accepted a host client's connection: tell the client. */
static void conn_guest_accepted(struct vsockd *d, struct conn *c)
{
	char ok[32];
	size_t len = hybrid_format_ok(ok, sizeof(ok), c->host_port);

	if (send(c->fd, ok, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len) {
		conn_reset(d, c);
		return;
	}
	c->state = CONN_ESTABLISHED;
	c->deadline = 0;
	vsockd_log(d, VSOCKD_LOG_DEBUG, "guest port %u accepted host port %u",
		   c->guest_port, c->host_port);
}

static void conn_host_eof(struct vsockd *d, struct conn *c);

/* ---- host socket events ---- */

void conn_host_event(struct vsockd *d, struct conn *c, uint32_t events)
{
	if (c->state == CONN_HYBRID_LINE) {
		conn_read_line(d, c);
		if (!c->dead)
			conn_update(d, c);
		return;
	}
	if (events & EPOLLERR) {
		conn_reset(d, c);
		return;
	}
	if ((events & EPOLLOUT) && c->backlog_len) {
		if (backlog_flush(c) < 0) {
			conn_reset(d, c);
			return;
		}
		conn_maybe_credit(d, c);
		if (conn_check_done(d, c))
			return;
	}
	if (events & EPOLLIN)
		c->readable = true;
	if (events & EPOLLHUP) {
		if (c->state == CONN_LOCAL_INIT) {
			conn_reset(d, c);
			return;
		}
		/* Whatever is still buffered is read before we report the close. */
		c->hup = true;
		c->readable = true;
		if (c->rd_eof) {
			c->shutdown_flags |= VSOCK_SHUTDOWN_BOTH;
			c->state = CONN_CLOSING;
			c->deadline = vsockd_now_ms() + d->cfg.request_timeout_ms;
			queue_ctl(d, c, CTL_SHUTDOWN);
		} else if (c->peer_shutdown & VSOCK_SHUTDOWN_RCV) {
			conn_host_eof(d, c);	/* the guest takes no data anyway */
			if (c->dead)
				return;
		}
	}
	conn_update(d, c);
}

/* ---- packets from the guest ---- */

static void conn_peer_shutdown(struct vsockd *d, struct conn *c, uint32_t flags)
{
	c->peer_shutdown |= flags;
	conn_check_done(d, c);
}

void conn_tx_packet(struct vsockd *d, const struct vsock_hdr *hdr,
		    const struct virtq_chain *chain)
{
	struct conn *c = conn_lookup(d, hdr->dst_port, hdr->src_port);
	uint64_t present = chain->total - VSOCK_HDR_SIZE;

	if (hdr->len > present || hdr->type != VSOCK_TYPE_STREAM ||
	    hdr->op == VSOCK_OP_INVALID || hdr->op > VSOCK_OP_CREDIT_REQUEST ||
	    (hdr->op == VSOCK_OP_SHUTDOWN && (hdr->flags & ~VSOCK_SHUTDOWN_BOTH)) ||
	    (hdr->op != VSOCK_OP_RW && hdr->len)) {
		vsockd_log(d, VSOCKD_LOG_DEBUG,
			   "malformed packet op %u type %u len %u from guest port %u",
			   hdr->op, hdr->type, hdr->len, hdr->src_port);
		if (hdr->op == VSOCK_OP_RST)
			return;
		if (c)
			conn_reset(d, c);
		else
			vsockd_queue_rst(d, hdr->dst_port, hdr->src_port);
		return;
	}
	if (hdr->op == VSOCK_OP_REQUEST) {
		guest_request(d, hdr, c);
		return;
	}
	if (!c || c->state == CONN_HYBRID_LINE) {
		/* Never answer an RST with an RST. */
		if (hdr->op != VSOCK_OP_RST)
			vsockd_queue_rst(d, hdr->dst_port, hdr->src_port);
		return;
	}
	if (hdr->op == VSOCK_OP_RST) {
		if (c->state == CONN_LOCAL_INIT)
			vsockd_log(d, VSOCKD_LOG_DEBUG, "guest port %u refused host port %u",
				   c->guest_port, c->host_port);
		conn_destroy(d, c);
		return;
	}
	c->peer_buf_alloc = hdr->buf_alloc;
	c->peer_fwd_cnt = hdr->fwd_cnt;
	switch (hdr->op) {
	case VSOCK_OP_RESPONSE:
		if (c->state != CONN_LOCAL_INIT || !c->request_sent) {
			conn_reset(d, c);
			return;
		}
		conn_guest_accepted(d, c);
		break;
	case VSOCK_OP_RW:
		if (c->state != CONN_ESTABLISHED ||
		    (c->peer_shutdown & VSOCK_SHUTDOWN_SEND)) {
			conn_reset(d, c);
			return;
		}
		conn_guest_data(d, c, chain, hdr->len);
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		if (c->state == CONN_LOCAL_INIT) {
			conn_reset(d, c);
			return;
		}
		queue_ctl(d, c, CTL_CREDIT);
		break;
	case VSOCK_OP_SHUTDOWN:
		if (c->state == CONN_LOCAL_INIT) {
			conn_reset(d, c);
			return;
		}
		conn_peer_shutdown(d, c, hdr->flags);
		break;
	default:	/* CREDIT_UPDATE: the credit fields above are all it says */
		break;
	}
	conn_update(d, c);
}

/* ---- packets to the guest ---- */

static void fill_hdr(struct vsockd *d, struct conn *c, struct vsock_hdr *h,
		     uint16_t op, uint32_t len)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID, .dst_cid = d->dev.guest_cid,
		.src_port = c->host_port, .dst_port = c->guest_port,
		.len = len, .type = VSOCK_TYPE_STREAM, .op = op,
		.buf_alloc = c->buf_alloc, .fwd_cnt = c->fwd_cnt,
	};
	c->fwd_cnt_sent = c->fwd_cnt;
}

size_t conn_emit_ctl(struct vsockd *d, struct conn *c, const struct virtq_chain *chain)
{
	uint8_t raw[VSOCK_HDR_SIZE];
	struct vsock_hdr h;

	if (c->ctl_pending & CTL_REQUEST) {
		c->ctl_pending &= ~CTL_REQUEST;
		c->request_sent = true;
		fill_hdr(d, c, &h, VSOCK_OP_REQUEST, 0);
	} else if (c->ctl_pending & CTL_RESPONSE) {
		c->ctl_pending &= ~CTL_RESPONSE;
		fill_hdr(d, c, &h, VSOCK_OP_RESPONSE, 0);
	} else if (c->ctl_pending & CTL_CREDIT) {
		c->ctl_pending &= ~CTL_CREDIT;
		fill_hdr(d, c, &h, VSOCK_OP_CREDIT_UPDATE, 0);
	} else if (c->ctl_pending & CTL_SHUTDOWN) {
		c->ctl_pending &= ~CTL_SHUTDOWN;
		fill_hdr(d, c, &h, VSOCK_OP_SHUTDOWN, 0);
		h.flags = c->shutdown_flags;
	} else {
		return 0;
	}
	if (!c->ctl_pending)
		list_del(&c->ctl);
	vsock_hdr_encode(&h, raw);
	virtq_chain_write(chain, 0, raw, sizeof(raw));
	return VSOCK_HDR_SIZE;
}

/* The host socket reached EOF: tell the guest we will send no more. */
static void conn_host_eof(struct vsockd *d, struct conn *c)
{
	c->rd_eof = true;
	c->readable = false;
	if (conn_check_done(d, c))
		return;
	c->shutdown_flags |= VSOCK_SHUTDOWN_SEND;
	if (c->hup) {
		c->shutdown_flags |= VSOCK_SHUTDOWN_RCV;
		c->state = CONN_CLOSING;
		c->deadline = vsockd_now_ms() + d->cfg.request_timeout_ms;
	}
	queue_ctl(d, c, CTL_SHUTDOWN);
}

size_t conn_emit_data(struct vsockd *d, struct conn *c, const struct virtq_chain *chain)
{
	struct iovec iov[VIRTQ_MAX_SEGS];
	uint8_t raw[VSOCK_HDR_SIZE];
	struct msghdr mh = { .msg_iov = iov };
	uint64_t room = chain->total - VSOCK_HDR_SIZE;
	uint32_t credit = peer_free(c);
	struct vsock_hdr h;
	ssize_t n;

	if (room > VSOCK_MAX_PAYLOAD)
		room = VSOCK_MAX_PAYLOAD;
	if (room > credit)
		room = credit;
	if (room == 0)
		return 0;
	mh.msg_iovlen = virtq_chain_iov(chain, VSOCK_HDR_SIZE, room, iov, VIRTQ_MAX_SEGS);
	n = recvmsg(c->fd, &mh, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR) {
			c->readable = false;
		} else {
			vsockd_log(d, VSOCKD_LOG_DEBUG, "host port %u: read: %m", c->host_port);
			conn_reset(d, c);
		}
		return 0;
	}
	if (n == 0) {
		conn_host_eof(d, c);
		return 0;
	}
	fill_hdr(d, c, &h, VSOCK_OP_RW, n);
	c->tx_cnt += n;
	vsock_hdr_encode(&h, raw);
	virtq_chain_write(chain, 0, raw, sizeof(raw));
	return VSOCK_HDR_SIZE + n;
}
