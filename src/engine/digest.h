/* digest.h - a small, stable 64-bit digest used to derive identifiers.
 *
 * Disk id, volume id, UUIDs and hash seeds are derived from the scanned tree
 * so the same input always yields the same image. This is not a
 * cryptographic hash; it only has to be stable across hosts and releases
 * (changing it changes every image: don't).
 */
#ifndef RPIFS_DIGEST_H
#define RPIFS_DIGEST_H

#include <stddef.h>
#include <stdint.h>

struct digest {
	uint64_t h[2];
};

void digest_init(struct digest *d);
void digest_bytes(struct digest *d, const void *p, size_t n);
void digest_u64(struct digest *d, uint64_t v);
void digest_str(struct digest *d, const char *s);   /* includes the length */
uint64_t digest_final(const struct digest *d);
/* A value derived from d and a purpose string ("disk-id", "ext4-uuid" ...). */
uint64_t digest_derive(const struct digest *d, const char *purpose);
/* Fill out[n] with bytes derived from d and purpose. */
void digest_fill(const struct digest *d, const char *purpose, void *out, size_t n);
/* An RFC 4122 version 4 UUID (the version and variant bits set, as mke2fs's
 * and sgdisk's random ones have) derived from d and purpose: stable, never
 * random. The ext4 UUID, the GPT GUIDs, the build's PARTUUIDs. */
void digest_uuid(const struct digest *d, const char *purpose, uint8_t out[16]);

#endif
