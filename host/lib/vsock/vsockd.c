// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The event loop: the vhost-user socket from QEMU, the two kick eventfds,
 * the hybrid-vsock listener and every host connection share one epoll
 * instance.  Rings are walked here; what a packet means is vsock-conn.c's
 * business.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vsockd-int.h"

#define DEFAULT_MAX_CONNS	1023
#define DEFAULT_BUF_ALLOC	(64 * 1024)
#define DEFAULT_REQUEST_MS	2000
#define DEFAULT_LINE_MS		5000
#define MAX_EVENTS		64

/* INFO lines per window before the rest are counted instead of written. */
#define LOG_BURST		50
#define LOG_WINDOW_MS		10000

/* Hostile guests must not be able to fill the host's disk through our log. */
static bool log_allowed(struct vsockd *d)
{
	uint64_t now = vsockd_now_ms();

	if (now - d->log_window_start >= LOG_WINDOW_MS) {
		unsigned suppressed = d->log_suppressed;

		d->log_window_start = now;
		d->log_lines = 0;
		d->log_suppressed = 0;
		if (suppressed)
			vsockd_log(d, VSOCKD_LOG_INFO, "%u log lines suppressed", suppressed);
	}
	if (d->log_lines >= LOG_BURST) {
		d->log_suppressed++;
		return false;
	}
	d->log_lines++;
	return true;
}

void vsockd_log(struct vsockd *d, enum vsockd_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!d->cfg.log || (level == VSOCKD_LOG_INFO && !log_allowed(d)))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->cfg.log(d->cfg.log_opaque, level, msg);
}

uint64_t vsockd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A full queue drops the RST: the guest then times out instead. */
void vsockd_queue_rst(struct vsockd *d, uint32_t host_port, uint32_t guest_port)
{
	if (d->rstq_len == d->rstq_cap)
		return;
	d->rstq[(d->rstq_head + d->rstq_len) % d->rstq_cap] =
		(struct rst_key){ host_port, guest_port };
	d->rstq_len++;
}

/* tx is not consumed while the RST queue could not take a reply per packet. */
static bool rstq_has_room(const struct vsockd *d)
{
	return d->rstq_len < d->rstq_cap / 2;
}

static void device_break(struct vsockd *d, const char *why)
{
	vu_dev_set_broken(&d->dev);
	if (d->broken_seen)
		return;
	d->broken_seen = true;
	vsockd_log(d, VSOCKD_LOG_INFO,
		   "guest broke the vsock device (%s): dropping %u connections until the driver restarts",
		   why, d->nconns);
	conn_drop_all(d);
	d->rstq_len = 0;
}

/* ---- rings ---- */

static void process_tx(struct vsockd *d)
{
	struct virtq *vq = &d->dev.vring[VU_VSOCK_TX].vq;
	struct virtq_chain chain;
	bool pushed = false;

	while (vu_dev_ring_running(&d->dev, VU_VSOCK_TX) && rstq_has_room(d)) {
		uint8_t raw[VSOCK_HDR_SIZE];
		const char *why = NULL;
		struct vsock_hdr hdr;
		int r;

		r = virtq_pop(vq, &d->dev.mem, false,
			      VSOCK_HDR_SIZE + VSOCK_MAX_PAYLOAD, &chain, &why);
		if (r < 0) {
			device_break(d, why);
			return;
		}
		if (r == 0)
			break;
		/* One copy of the header; it is never read from the guest again. */
		if (virtq_chain_read(&chain, 0, raw, sizeof(raw)) == sizeof(raw)) {
			vsock_hdr_decode(raw, &hdr);
			if (hdr.src_cid == d->dev.guest_cid && hdr.dst_cid == VSOCK_HOST_CID)
				conn_tx_packet(d, &hdr, &chain);
			else
				vsockd_log(d, VSOCKD_LOG_DEBUG,
					   "dropped packet from cid %llu to cid %llu",
					   (unsigned long long)hdr.src_cid,
					   (unsigned long long)hdr.dst_cid);
		}
		virtq_push(vq, chain.head, 0);
		pushed = true;
	}
	if (pushed)
		vu_dev_notify(&d->dev, VU_VSOCK_TX);
}

/* Next thing owed to the guest: RSTs, then control packets, then data. */
static size_t emit_one(struct vsockd *d, const struct virtq_chain *chain, bool *progress)
{
	struct conn *c;
	size_t len;

	*progress = true;
	if (d->rstq_len) {
		struct rst_key k = d->rstq[d->rstq_head];
		struct vsock_hdr h = {
			.src_cid = VSOCK_HOST_CID, .dst_cid = d->dev.guest_cid,
			.src_port = k.host_port, .dst_port = k.guest_port,
			.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST,
		};
		uint8_t raw[VSOCK_HDR_SIZE];

		d->rstq_head = (d->rstq_head + 1) % d->rstq_cap;
		d->rstq_len--;
		vsock_hdr_encode(&h, raw);
		virtq_chain_write(chain, 0, raw, sizeof(raw));
		return VSOCK_HDR_SIZE;
	}
	if (!list_empty(&d->ctl_list)) {
		c = list_first_entry(&d->ctl_list, struct conn, ctl);
		len = conn_emit_ctl(d, c, chain);
		conn_update(d, c);
		return len;
	}
	/* A header-only buffer cannot carry data: wait for the next one. */
	if (!list_empty(&d->data_list) && chain->total > VSOCK_HDR_SIZE) {
		/* Round robin: one packet, then to the back of the line. */
		c = list_first_entry(&d->data_list, struct conn, data);
		list_del(&c->data);
		len = conn_emit_data(d, c, chain);
		conn_update(d, c);
		return len;
	}
	*progress = false;
	return 0;
}

static void process_rx(struct vsockd *d)
{
	struct virtq *vq = &d->dev.vring[VU_VSOCK_RX].vq;
	struct virtq_chain chain;
	bool pushed = false;

	while (vu_dev_ring_running(&d->dev, VU_VSOCK_RX)) {
		const char *why = NULL;
		bool progress;
		size_t len;
		int r;

		if (!d->rstq_len && list_empty(&d->ctl_list) && list_empty(&d->data_list))
			break;
		r = virtq_pop(vq, &d->dev.mem, true, UINT32_MAX, &chain, &why);
		if (r < 0) {
			device_break(d, why);
			return;
		}
		if (r == 0)
			break;
		if (chain.total < VSOCK_HDR_SIZE) {
			device_break(d, "rx buffer smaller than a packet header");
			return;
		}
		len = emit_one(d, &chain, &progress);
		if (!len) {
			virtq_unpop(vq);
			if (!progress)
				break;
			continue;
		}
		virtq_push(vq, chain.head, len);
		pushed = true;
	}
	if (pushed)
		vu_dev_notify(&d->dev, VU_VSOCK_RX);
}

/* ---- vhost-user ---- */

static int epoll_add(struct vsockd *d, int fd, struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/*
 * Follow ring changes: watch new kick fds, and drop every connection when
 * a ring starts a new driver session (the guest's sockets are gone).  A
 * stop alone keeps them: QEMU also stops the rings for a VM pause, and
 * resumes them where they were.
 */
static void sync_rings(struct vsockd *d)
{
	bool new_session = false;

	if (!d->dev.broken)
		d->broken_seen = false;	/* a new start cleared the verdict */
	for (unsigned i = 0; i < VU_VSOCK_NQUEUES; i++) {
		struct vu_vring *vr = &d->dev.vring[i];
		bool running = vu_dev_ring_running(&d->dev, i);

		if (vr->kick_gen != d->kick_gen_seen[i]) {
			d->kick_gen_seen[i] = vr->kick_gen;
			/* A closed fd left epoll by itself. */
			if (vr->kick_fd >= 0 && epoll_add(d, vr->kick_fd, &d->w_kick[i], EPOLLIN) < 0)
				vsockd_log(d, VSOCKD_LOG_INFO, "cannot watch kick fd of ring %u: %m", i);
		}
		if (running && !d->was_running[i] && !vr->resumed)
			new_session = true;
		if (running != d->was_running[i])
			vsockd_log(d, VSOCKD_LOG_DEBUG, "ring %u %s", i,
				   !running ? "stopped" : vr->resumed ? "resumed" : "started");
		d->was_running[i] = running;
	}
	if (new_session && d->nconns) {
		vsockd_log(d, VSOCKD_LOG_INFO, "guest driver restarted: dropping %u connections",
			   d->nconns);
		conn_drop_all(d);
		d->rstq_len = 0;
	}
}

static void vu_disconnect(struct vsockd *d, const char *why)
{
	vsockd_log(d, VSOCKD_LOG_INFO, "QEMU disconnected (%s)", why);
	conn_drop_all(d);
	d->rstq_len = 0;
	vu_dev_release(&d->dev);
	vu_reader_reset(&d->reader);
	d->vu_fd = safe_close(d->vu_fd);
	d->vu_gone = true;
}

static void handle_vu_message(struct vsockd *d, struct vu_msg *msg)
{
	uint32_t request = msg->request;
	struct vu_msg reply;
	const char *why = NULL;
	bool has_reply;
	int r;

	r = vu_dev_handle(&d->dev, msg, &reply, &has_reply, &why);
	vsockd_log(d, VSOCKD_LOG_DEBUG, "vhost-user %s%s", vu_request_name(request),
		   r < 0 ? " (rejected)" : "");
	if (r < 0)
		vsockd_log(d, VSOCKD_LOG_INFO, "vhost-user %s: %s", vu_request_name(request),
			   why ? why : strerror(-r));
	if (has_reply && vu_msg_send_reply(d->vu_fd, &reply) < 0) {
		vu_disconnect(d, "reply failed");
		return;
	}
	if (d->dev.broken)
		device_break(d, why ? why : "bad ring");
	sync_rings(d);
}

static void vu_readable(struct vsockd *d)
{
	struct vu_msg msg;
	int r;

	while (!d->vu_gone) {
		r = vu_reader_recv(&d->reader, d->vu_fd, &msg);
		if (r == 0)
			return;
		if (r < 0) {
			vu_disconnect(d, r == -EPIPE ? "end of file" : strerror(-r));
			return;
		}
		handle_vu_message(d, &msg);
	}
}

static void vu_accept(struct vsockd *d)
{
	int fd = accept4(d->vu_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (d->vu_fd >= 0 || d->vu_gone) {
		vsockd_log(d, VSOCKD_LOG_INFO, "refusing a second vhost-user connection");
		safe_close(fd);
		return;
	}
	if (epoll_add(d, fd, &d->w_vu_conn, EPOLLIN) < 0) {
		safe_close(fd);
		return;
	}
	d->vu_fd = fd;
	vsockd_log(d, VSOCKD_LOG_INFO, "QEMU connected");
}

static void kick(struct vsockd *d, unsigned ring)
{
	int fd = d->dev.vring[ring].kick_fd;
	uint64_t v;

	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
		/* A broken eventfd leaves us relying on the next message. */
	}
	if (ring == VU_VSOCK_TX)
		process_tx(d);
	/* An rx kick means new buffers; a tx kick may have queued replies. */
	process_rx(d);
}

static void handle_event(struct vsockd *d, struct watch *w, uint32_t events)
{
	switch (w->kind) {
	case WATCH_VU_LISTEN:
		vu_accept(d);
		break;
	case WATCH_VU_CONN:
		vu_readable(d);
		break;
	case WATCH_UDS_LISTEN:
		conn_accept_hybrid(d);
		break;
	case WATCH_KICK:
		kick(d, w->ring);
		break;
	case WATCH_CONN: {
		struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, watch));

		if (!c->dead)
			conn_host_event(d, c, events);
		break;
	}
	}
}

int vsockd_dispatch(struct vsockd *d, int timeout_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int n, next = vsockd_timeout_ms(d);

	if (d->vu_gone)
		return -EPIPE;
	if (next >= 0 && (timeout_ms < 0 || next < timeout_ms))
		timeout_ms = next;
	n = epoll_wait(d->epfd, ev, MAX_EVENTS, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n && !d->vu_gone; i++)
		handle_event(d, ev[i].data.ptr, ev[i].events);
	conn_expire(d, vsockd_now_ms());
	/* Host events queue packets; a drained RST queue lets tx resume. */
	process_tx(d);
	process_rx(d);
	conn_reap(d);
	return d->vu_gone ? -EPIPE : n;
}

int vsockd_timeout_ms(const struct vsockd *d)
{
	uint64_t next = conn_next_deadline(d), now;

	if (!next)
		return -1;
	now = vsockd_now_ms();
	return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}

int vsockd_fd(const struct vsockd *d)
{
	return d->epfd;
}

bool vsockd_device_broken(const struct vsockd *d)
{
	return d->dev.broken;
}

unsigned vsockd_conn_count(const struct vsockd *d)
{
	return d->nconns;
}

/* ---- set-up ---- */

static int listen_unix(const char *path, int *out, struct husk_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return husk_error_set(err, ENAMETOOLONG, "socket path %s is too long", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "socket for %s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return husk_error_seterrno(err, errno, "bind %s", path);
	if (listen(fd, 128) < 0) {
		int r = husk_error_seterrno(err, errno, "listen on %s", path);

		unlink(path);
		return r;
	}
	*out = TAKE_FD(fd);
	return 0;
}

static void apply_defaults(struct vsockd_config *cfg)
{
	if (!cfg->max_conns)
		cfg->max_conns = DEFAULT_MAX_CONNS;
	if (!cfg->buf_alloc)
		cfg->buf_alloc = DEFAULT_BUF_ALLOC;
	if (!cfg->request_timeout_ms)
		cfg->request_timeout_ms = DEFAULT_REQUEST_MS;
	if (!cfg->line_timeout_ms)
		cfg->line_timeout_ms = DEFAULT_LINE_MS;
}

static bool cid_reserved(uint64_t cid)
{
	return cid <= VSOCK_HOST_CID || cid >= UINT32_MAX;
}

int vsockd_new(const struct vsockd_config *cfg, struct vsockd **out,
	       struct husk_error *err)
{
	struct vsockd *d;
	int r;

	if (!cfg->vhost_user_path || !cfg->uds_path)
		return husk_error_set(err, EINVAL, "vsockd: both socket paths are required");
	if (cid_reserved(cfg->guest_cid))
		return husk_error_set(err, EINVAL, "guest CID %llu is reserved",
				      (unsigned long long)cfg->guest_cid);
	d = calloc(1, sizeof(*d));
	if (!d)
		return husk_error_set(err, ENOMEM, "vsockd: out of memory");
	d->cfg = *cfg;
	apply_defaults(&d->cfg);
	d->epfd = d->vu_listen_fd = d->vu_fd = d->uds_listen_fd = -1;
	list_init(&d->conns);
	list_init(&d->graveyard);
	list_init(&d->ctl_list);
	list_init(&d->data_list);
	for (unsigned i = 0; i < VSOCKD_HASH_BUCKETS; i++)
		list_init(&d->buckets[i]);
	d->next_host_port = 1u << 30;
	vu_reader_init(&d->reader);
	vu_dev_init(&d->dev, cfg->guest_cid);
	d->w_vu_listen.kind = WATCH_VU_LISTEN;
	d->w_vu_conn.kind = WATCH_VU_CONN;
	d->w_uds_listen.kind = WATCH_UDS_LISTEN;
	for (unsigned i = 0; i < VU_VSOCK_NQUEUES; i++)
		d->w_kick[i] = (struct watch){ .kind = WATCH_KICK, .ring = i };

	d->rstq_cap = 2 * d->cfg.max_conns + 64;
	d->rstq = calloc(d->rstq_cap, sizeof(*d->rstq));
	d->vhost_user_path = strdup(cfg->vhost_user_path);
	d->uds_path = strdup(cfg->uds_path);
	if (!d->rstq || !d->vhost_user_path || !d->uds_path) {
		r = husk_error_set(err, ENOMEM, "vsockd: out of memory");
		goto fail;
	}
	d->cfg.vhost_user_path = d->vhost_user_path;
	d->cfg.uds_path = d->uds_path;
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0) {
		r = husk_error_seterrno(err, errno, "epoll_create1");
		goto fail;
	}
	r = listen_unix(d->vhost_user_path, &d->vu_listen_fd, err);
	if (r < 0)
		goto fail;
	d->vu_created = true;
	r = listen_unix(d->uds_path, &d->uds_listen_fd, err);
	if (r < 0)
		goto fail;
	d->uds_created = true;
	r = epoll_add(d, d->vu_listen_fd, &d->w_vu_listen, EPOLLIN);
	if (r == 0)
		r = epoll_add(d, d->uds_listen_fd, &d->w_uds_listen, EPOLLIN);
	if (r < 0) {
		husk_error_seterrno(err, -r, "epoll_ctl");
		goto fail;
	}
	*out = d;
	return 0;
fail:
	vsockd_free(d);
	return r;
}

void vsockd_free(struct vsockd *d)
{
	if (!d)
		return;
	conn_drop_all(d);
	conn_reap(d);
	vu_dev_release(&d->dev);
	vu_reader_reset(&d->reader);
	safe_close(d->vu_fd);
	safe_close(d->vu_listen_fd);
	safe_close(d->uds_listen_fd);
	safe_close(d->epfd);
	if (d->vu_created)
		unlink(d->vhost_user_path);
	if (d->uds_created)
		unlink(d->uds_path);
	free(d->vhost_user_path);
	free(d->uds_path);
	free(d->rstq);
	free(d);
}
