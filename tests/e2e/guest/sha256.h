/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef HUSK_TEST_SHA256_H
#define HUSK_TEST_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t used;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
/* Finish and write the lowercase hex digest. */
void sha256_hex(struct sha256 *s, char out[65]);

#endif
