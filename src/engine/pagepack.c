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

/* Bit counts by hand: without -mpopcnt __builtin_popcountll is a libgcc
 * call, which perf showed among the packer's costs. */
static unsigned popcount64(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

static unsigned popcount(const uint64_t *m)
{
	unsigned i, n = 0;

	for (i = 0; i < NMASK; i++)
		n += popcount64(m[i]);
	return n;
}

/* The non-zero 16-bit lanes of v as 4 bits (lane k -> bit k), without a
 * branch: a lane's two bytes are ORed into its low byte, adding 0xff
 * carries into bit 8 exactly when that byte is not zero (0xff + 0xff <
 * 0x10000: never into the next lane), and one multiply gathers the four
 * lane bits (at 0, 16, 32, 48) into bits 48..51; the product's other terms
 * land at bits 3, 18, 19, 33, 34 and 35, none of them adjacent, so nothing
 * carries into 48..51. */
static uint64_t lanes_nonzero(uint64_t v)
{
	uint64_t t = (v | (v >> 8)) & 0x00ff00ff00ff00ffull;

	t = ((t + 0x00ff00ff00ff00ffull) >> 8) & 0x0001000100010001ull;
	return (t * 0x0001000200040008ull) >> 48;
}

_Static_assert(sizeof(word) == 2, "lanes_nonzero works on 16-bit words");

/* lanes_nonzero's bit k is lane k counted from the value's low end; a
 * word's index in memory is that on little-endian machines and 3 - k on
 * big-endian ones. */
static uint64_t lane_order(uint64_t nib)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (nib & 1) << 3 | (nib & 2) << 1 | (nib & 4) >> 1 | (nib & 8) >> 3;
#else
	return nib;
#endif
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
		for (i = 0; i < NWORD / 4; i++) {
			uint64_t vc, vp;

			/* Lanes in memory order: word 4i + k is bit k of
			 * the nibble, on either byte order. */
			memcpy(&vc, cur + 4 * i, 8);
			memcpy(&vp, prev + 4 * i, 8);
			mc[i / 16] |= lane_order(lanes_nonzero(vc)) << (i % 16 * 4);
			md[i / 16] |= lane_order(lanes_nonzero(vc ^ vp)) << (i % 16 * 4);
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
