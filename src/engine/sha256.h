/* sha256.h - SHA-256 (FIPS 180-4), for the checksums of disk.img.bmap that
 * bmaptool verifies while it writes. */
#ifndef RPIFS_SHA256_H
#define RPIFS_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;           /* bytes hashed so far */
	uint8_t buf[64];
	size_t nbuf;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *p, size_t n);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* out: 64 lower-case hex digits and a NUL. */
void sha256_hex(const uint8_t dig[32], char out[65]);

#endif
