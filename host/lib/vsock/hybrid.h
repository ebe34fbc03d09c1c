/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hybrid-vsock handshake on the host unix socket (Firecracker form):
 * the client writes "CONNECT <port>\n" and, once the guest accepted, reads
 * "OK <host port>\n"; raw stream bytes follow in both directions.
 */
#ifndef HUSK_VSOCK_HYBRID_H
#define HUSK_VSOCK_HYBRID_H

#include <stddef.h>
#include <stdint.h>

/* Longest CONNECT line accepted, newline included. */
#define HYBRID_LINE_MAX 64

/*
 * Look for a complete line in the first len bytes of buf.  Returns 1 with
 * *line_len (newline included), 0 when more bytes are needed, -EMSGSIZE
 * when no newline can come within HYBRID_LINE_MAX.
 */
int hybrid_find_line(const char *buf, size_t len, size_t *line_len);

/*
 * Parse one line (newline included): "connect" in any letter case, one
 * space, a decimal u32 with no sign or leading junk, then "\n".  Returns 0
 * with *port or -EINVAL.
 */
int hybrid_parse_connect(const char *line, size_t len, uint32_t *port);

/* "OK <port>\n" into buf; returns its length. */
size_t hybrid_format_ok(char *buf, size_t size, uint32_t host_port);

#endif
