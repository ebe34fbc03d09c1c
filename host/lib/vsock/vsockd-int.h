/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internals shared by the engine's two halves: vsockd.c (event loop,
 * vhost-user socket, rings) and vsock-conn.c (the per-connection state
 * machine, credit and host sockets).
 */
#ifndef HUSK_VSOCKD_INT_H
#define HUSK_VSOCKD_INT_H

#include <stdarg.h>

#include "list.h"
#include "virtq.h"
#include "vsock-pkt.h"
#include "vsockd.h"
#include "vu-dev.h"
#include "vu-msg.h"
#include "hybrid.h"

enum watch_kind {
	WATCH_VU_LISTEN,
	WATCH_VU_CONN,
	WATCH_UDS_LISTEN,
	WATCH_KICK,
	WATCH_CONN,
};

/* What an epoll event points at. */
struct watch {
	enum watch_kind kind;
	unsigned ring;		/* WATCH_KICK */
};

enum conn_state {
	CONN_HYBRID_LINE,	/* host client connected, CONNECT line pending */
	CONN_LOCAL_INIT,	/* REQUEST to the guest, awaiting RESPONSE */
	CONN_ESTABLISHED,
	CONN_CLOSING,		/* host side gone, SHUTDOWN sent, awaiting RST */
};

/* Control packets a connection owes the guest, sent in this order. */
enum {
	CTL_REQUEST = 1 << 0,
	CTL_RESPONSE = 1 << 1,
	CTL_CREDIT = 1 << 2,
	CTL_SHUTDOWN = 1 << 3,
};

struct conn {
	struct list_node all;		/* d->conns, then d->graveyard */
	struct list_node hash;		/* bucket, once keyed */
	struct list_node ctl;		/* d->ctl_list while ctl_pending */
	struct list_node data;		/* d->data_list while it can send RW */
	struct watch watch;
	enum conn_state state;
	int fd;				/* host unix socket */
	uint32_t events;		/* registered epoll events */
	bool registered;
	bool dead;
	bool keyed;
	uint32_t host_port, guest_port;
	uint64_t deadline;		/* monotonic ms, 0 for none */

	unsigned ctl_pending;
	bool request_sent;
	uint32_t shutdown_flags;	/* what we told (or will tell) the guest */
	uint32_t peer_shutdown;		/* sticky bits from the guest */

	/* guest -> host: our receive side */
	uint32_t buf_alloc;
	uint32_t rx_cnt;		/* payload bytes taken from the guest */
	uint32_t fwd_cnt;		/* payload bytes written to the host socket */
	uint32_t fwd_cnt_sent;		/* fwd_cnt as last told to the guest */
	uint8_t *backlog;		/* ring buffer of buf_alloc bytes, lazily */
	uint32_t backlog_head, backlog_len;

	/* host -> guest: the guest's receive side */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;		/* payload bytes sent to the guest */
	bool readable;			/* host socket has data we did not take */
	bool rd_eof;			/* host socket read returned 0 */
	bool hup;			/* host peer closed both directions */
	bool shut_wr;

	char line[HYBRID_LINE_MAX];
	size_t line_len;
};

struct rst_key {
	uint32_t host_port, guest_port;
};

#define VSOCKD_HASH_BUCKETS 256

struct vsockd {
	struct vsockd_config cfg;
	char *vhost_user_path, *uds_path;
	int epfd;
	int vu_listen_fd, vu_fd, uds_listen_fd;
	bool vu_created, uds_created, vu_gone;
	bool broken_seen;		/* the current breakage was logged */
	/* A guest can trigger INFO lines at will: cap them per window. */
	uint64_t log_window_start;
	unsigned log_lines, log_suppressed;
	struct watch w_vu_listen, w_vu_conn, w_uds_listen, w_kick[VU_VSOCK_NQUEUES];
	unsigned kick_gen_seen[VU_VSOCK_NQUEUES];
	bool was_running[VU_VSOCK_NQUEUES];

	struct vu_reader reader;
	struct vu_dev dev;

	struct list_node conns, graveyard, ctl_list, data_list;
	struct list_node buckets[VSOCKD_HASH_BUCKETS];
	unsigned nconns;
	uint32_t next_host_port;

	/* RSTs for flows that have no connection (any more). */
	struct rst_key *rstq;
	unsigned rstq_head, rstq_len, rstq_cap;
};

/* vsockd.c */
void vsockd_log(struct vsockd *d, enum vsockd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t vsockd_now_ms(void);
void vsockd_queue_rst(struct vsockd *d, uint32_t host_port, uint32_t guest_port);

/* vsock-conn.c */
struct conn *conn_lookup(struct vsockd *d, uint32_t host_port, uint32_t guest_port);
void conn_destroy(struct vsockd *d, struct conn *c);
void conn_reset(struct vsockd *d, struct conn *c);
void conn_drop_all(struct vsockd *d);
void conn_reap(struct vsockd *d);
void conn_update(struct vsockd *d, struct conn *c);
void conn_expire(struct vsockd *d, uint64_t now);
uint64_t conn_next_deadline(const struct vsockd *d);

void conn_accept_hybrid(struct vsockd *d);
void conn_host_event(struct vsockd *d, struct conn *c, uint32_t events);
void conn_tx_packet(struct vsockd *d, const struct vsock_hdr *hdr,
		    const struct virtq_chain *chain);

/* Fill one rx chain for c: a control packet or RW data.  Returns the
 * bytes written (header included), 0 if c had nothing after all. */
size_t conn_emit_ctl(struct vsockd *d, struct conn *c, const struct virtq_chain *chain);
size_t conn_emit_data(struct vsockd *d, struct conn *c, const struct virtq_chain *chain);

#endif
