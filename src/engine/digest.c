/* digest.c - a stable 128-bit-state digest (two lanes of FNV-1a 64 with
 * different offsets, mixed with splitmix64 at the end).
 *
 * Only stability matters: the value seeds identifiers in the image, so the
 * algorithm is frozen. Do not change it without a reason worth changing every
 * image's identifiers.
 */
#include <string.h>
#include "digest.h"

#define FNV_PRIME 0x100000001b3ull

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void digest_init(struct digest *d)
{
	d->h[0] = 0xcbf29ce484222325ull;
	d->h[1] = 0x84222325cbf29ce4ull;
}

void digest_bytes(struct digest *d, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		d->h[0] = (d->h[0] ^ b[i]) * FNV_PRIME;
		d->h[1] = (d->h[1] ^ (unsigned char)(b[i] + 0x5b)) * FNV_PRIME;
	}
}

void digest_u64(struct digest *d, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	digest_bytes(d, b, sizeof(b));
}

void digest_str(struct digest *d, const char *s)
{
	size_t n = strlen(s);

	digest_u64(d, n);
	digest_bytes(d, s, n);
}

uint64_t digest_final(const struct digest *d)
{
	return mix(d->h[0] ^ mix(d->h[1]));
}

uint64_t digest_derive(const struct digest *d, const char *purpose)
{
	struct digest c = *d;

	digest_str(&c, purpose);
	return digest_final(&c);
}

void digest_fill(const struct digest *d, const char *purpose, void *out, size_t n)
{
	unsigned char *o = out;
	uint64_t x = digest_derive(d, purpose);

	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0 && i)
			x = mix(x);
		o[i] = (unsigned char)(x >> (8 * (i % 8)));
	}
}

void digest_uuid(const struct digest *d, const char *purpose, uint8_t out[16])
{
	digest_fill(d, purpose, out, 16);
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}
