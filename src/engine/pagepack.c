/* pagepack.c - a compact encoding of a 4 KiB metadata page (see pagepack.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pagepack.h"

typedef uint16_t word;                  /* the unit a mask bit stands for */

#define NCHUNK  (PAGEPACK_PAGE / PAGEPACK_CHUNK)
#define NWORD   (PAGEPACK_CHUNK / sizeof(word))
#define NMASK   (NWORD / 64)            /* 64-bit words of a chunk's mask */
#define MASKSZ  (NMASK * 8)

_Static_assert(NCHUNK <= 16, "the present/xored/same masks are 16 bits");
_Static_assert(NWORD % 64 == 0, "a chunk's mask is whole 64-bit words");

#define HDR     6u                      /* present, xored, same */

static unsigned popcount(const uint64_t *m)
{
	unsigned i, n = 0;

	for (i = 0; i < NMASK; i++)
		n += (unsigned)__builtin_popcountll(m[i]);
	return n;
}

int pagepack_pack(const uint8_t *page, uint8_t **rec, size_t *len)
{
	/* The size is checked before each chunk is appended and stays
	 * under a page: one page of stack holds any record. */
	uint8_t out[PAGEPACK_PAGE];
	word prev[NWORD], cur[NWORD];
	uint16_t present = 0, xored = 0, same = 0;
	uint64_t last[NMASK];           /* the mask of the last present chunk */
	size_t n = HDR;
	unsigned c, i, k;

	memset(prev, 0, sizeof(prev));
	memset(last, 0, sizeof(last));
	for (c = 0; c < NCHUNK; c++) {
		uint64_t mc[NMASK] = { 0 }, md[NMASK] = { 0 }, *mask;
		word x = 0;             /* XORed into each word stored */
		size_t mlen;

		/* memcpy: aligned, alias-safe access to the chunk's words.
		 * One pass finds the non-zero words of the chunk (mc) and of
		 * its delta against the chunk before (md). */
		memcpy(cur, page + c * PAGEPACK_CHUNK, PAGEPACK_CHUNK);
		for (i = 0; i < NWORD; i++) {
			mc[i / 64] |= (uint64_t)(cur[i] != 0) << (i % 64);
			md[i / 64] |= (uint64_t)(cur[i] != prev[i]) << (i % 64);
		}
		/* Ties go to the plain chunk. */
		mask = mc;
		if (c && popcount(md) < popcount(mc)) {
			mask = md;
			xored |= (uint16_t)(1u << c);
			x = (word)~0;
		}
		if (!popcount(mask)) {
			memcpy(prev, cur, sizeof(prev));
			continue;
		}
		/* Inodes of one directory differ in the same words (size,
		 * extent start, checksum): the mask repeats. */
		mlen = memcmp(mask, last, MASKSZ) ? MASKSZ : 0;
		if (n + mlen + sizeof(word) * popcount(mask) >= PAGEPACK_PAGE)
			return 1;
		present |= (uint16_t)(1u << c);
		if (mlen)
			memcpy(out + n, mask, MASKSZ);
		else
			same |= (uint16_t)(1u << c);
		n += mlen;
		memcpy(last, mask, MASKSZ);
		for (k = 0; k < NMASK; k++) {
			uint64_t m = mask[k];

			while (m) {
				unsigned w = k * 64 + (unsigned)__builtin_ctzll(m);
				word v = cur[w] ^ (prev[w] & x);

				memcpy(out + n, &v, sizeof(word));
				n += sizeof(word);
				m &= m - 1;
			}
		}
		memcpy(prev, cur, sizeof(prev));
	}
	memcpy(out, &present, 2);
	memcpy(out + 2, &xored, 2);
	memcpy(out + 4, &same, 2);
	*rec = malloc(n);
	if (!*rec)
		return -ENOMEM;
	memcpy(*rec, out, n);
	*len = n;
	return 0;
}

size_t pagepack_size(const uint8_t *rec)
{
	uint16_t present, same;
	uint64_t mask[NMASK] = { 0 };
	size_t n = HDR;
	unsigned c;

	memcpy(&present, rec, 2);
	memcpy(&same, rec + 4, 2);
	for (c = 0; c < NCHUNK; c++) {
		if (!(present & (1u << c)))
			continue;
		if (!(same & (1u << c))) {
			memcpy(mask, rec + n, MASKSZ);
			n += MASKSZ;
		}
		n += sizeof(word) * popcount(mask);
	}
	return n;
}

/* Invariant: after step c of the loop, cur holds chunk c decoded. */
void pagepack_read(const uint8_t *rec, void *buf, size_t off, size_t len)
{
	word cur[NWORD];
	uint16_t present, xored, same;
	uint64_t mask[NMASK] = { 0 };
	uint8_t *o = buf;
	size_t n = HDR, end = off + len;
	unsigned c, k;

	if (!len)
		return;
	memcpy(&present, rec, 2);
	memcpy(&xored, rec + 2, 2);
	memcpy(&same, rec + 4, 2);
	memset(cur, 0, sizeof(cur));
	for (c = 0; c * PAGEPACK_CHUNK < end; c++) {
		size_t cs = c * PAGEPACK_CHUNK, ce = cs + PAGEPACK_CHUNK, a, b;

		if (!(xored & (1u << c)))
			memset(cur, 0, sizeof(cur));
		if (present & (1u << c)) {
			if (!(same & (1u << c))) {
				memcpy(mask, rec + n, MASKSZ);
				n += MASKSZ;
			}
			for (k = 0; k < NMASK; k++) {
				uint64_t m = mask[k];

				while (m) {
					unsigned w = k * 64 + (unsigned)__builtin_ctzll(m);
					word v;

					memcpy(&v, rec + n, sizeof(word));
					n += sizeof(word);
					cur[w] ^= v;
					m &= m - 1;
				}
			}
		}
		if (ce <= off)
			continue;
		a = off > cs ? off : cs;
		b = end < ce ? end : ce;
		memcpy(o + (a - off), (const uint8_t *)cur + (a - cs), b - a);
	}
}

void pagepack_unpack(const uint8_t *rec, uint8_t *page)
{
	pagepack_read(rec, page, 0, PAGEPACK_PAGE);
}
