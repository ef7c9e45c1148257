/* pagepack.c - a compact encoding of a 4 KiB metadata page (see pagepack.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pagepack.h"

#define NCHUNK  (PAGEPACK_PAGE / PAGEPACK_CHUNK)
#define NWORD   (PAGEPACK_CHUNK / 4)

_Static_assert(NCHUNK <= 16, "the present/xored masks are 16 bits");
_Static_assert(NWORD <= 64, "a chunk's word mask is 64 bits");

#define HDR     6u                      /* present, xored, same */

/* A chunk as words; memcpy keeps every access aligned and alias-safe. */
static void load(uint32_t *w, const uint8_t *p)
{
	memcpy(w, p, PAGEPACK_CHUNK);
}

static unsigned nonzero(const uint32_t *w)
{
	unsigned i, n = 0;

	for (i = 0; i < NWORD; i++)
		n += w[i] != 0;
	return n;
}

int pagepack_pack(const uint8_t *page, uint8_t **rec, size_t *len)
{
	/* The size is checked before each chunk is appended and stays
	 * under a page: one page of stack holds any record. */
	uint8_t out[PAGEPACK_PAGE];
	uint32_t prev[NWORD], cur[NWORD], dx[NWORD];
	uint16_t present = 0, xored = 0, same = 0;
	uint64_t last = 0;              /* the mask of the last present chunk */
	size_t n = HDR;
	unsigned c, i;

	memset(prev, 0, sizeof(prev));
	for (c = 0; c < NCHUNK; c++) {
		const uint32_t *src;
		uint64_t mask = 0;

		load(cur, page + c * PAGEPACK_CHUNK);
		for (i = 0; i < NWORD; i++)
			dx[i] = cur[i] ^ prev[i];
		/* Ties go to the plain chunk: it decodes without the chain. */
		if (c && nonzero(dx) < nonzero(cur)) {
			src = dx;
			xored |= (uint16_t)(1u << c);
		} else {
			src = cur;
		}
		for (i = 0; i < NWORD; i++)
			if (src[i])
				mask |= 1ull << i;
		if (mask) {
			/* Inodes of one directory differ in the same words
			 * (size, extent start, checksum): the mask repeats. */
			size_t mlen = mask == last ? 0 : 8;

			present |= (uint16_t)(1u << c);
			if (n + mlen + 4u * (unsigned)__builtin_popcountll(mask) >=
			    PAGEPACK_PAGE)
				return 1;
			if (mlen)
				memcpy(out + n, &mask, 8);
			else
				same |= (uint16_t)(1u << c);
			n += mlen;
			last = mask;
			for (i = 0; i < NWORD; i++)
				if (src[i]) {
					memcpy(out + n, &src[i], 4);
					n += 4;
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
	uint64_t mask = 0;
	size_t n = HDR;
	unsigned c;

	memcpy(&present, rec, 2);
	memcpy(&same, rec + 4, 2);
	for (c = 0; c < NCHUNK; c++) {
		if (!(present & (1u << c)))
			continue;
		if (!(same & (1u << c))) {
			memcpy(&mask, rec + n, 8);
			n += 8;
		}
		n += 4u * (unsigned)__builtin_popcountll(mask);
	}
	return n;
}

/* Invariant: after step c of the loop, cur holds chunk c decoded. */
void pagepack_read(const uint8_t *rec, void *buf, size_t off, size_t len)
{
	uint32_t cur[NWORD];
	uint16_t present, xored, same;
	uint64_t last = 0;
	uint8_t *o = buf;
	size_t n = HDR, end = off + len;
	unsigned c;

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
			uint64_t mask;

			if (!(same & (1u << c))) {
				memcpy(&last, rec + n, 8);
				n += 8;
			}
			mask = last;
			while (mask) {
				unsigned w = (unsigned)__builtin_ctzll(mask);
				uint32_t v;

				memcpy(&v, rec + n, 4);
				n += 4;
				cur[w] ^= v;
				mask &= mask - 1;
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
