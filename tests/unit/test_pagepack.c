/* test_pagepack.c - the metadata page codec: round trips of the zero page,
 * inode-table-like pages (small records), pages with a repeated or zero
 * chunk, random dense pages (kept raw), and sub-range reads at every
 * alignment against the page. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "pagepack.h"

static unsigned seed = 4242;

static uint32_t rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

/* Pack page (must give a record), check size, whole and sub-range decode. */
static size_t round_trip(const uint8_t *page, const char *what)
{
	uint8_t *rec = NULL, out[PAGEPACK_PAGE];
	size_t len = 0, off, n;
	int ret = pagepack_pack(page, &rec, &len);

	CHECK(ret == 0, "%s: pack returned %d", what, ret);
	if (ret)
		return 0;
	CHECK(len < PAGEPACK_PAGE && pagepack_size(rec) == len, "%s: size %zu", what, len);
	memset(out, 0xa5, sizeof(out));
	pagepack_unpack(rec, out);
	CHECK(!memcmp(out, page, PAGEPACK_PAGE), "%s: unpacked page differs", what);
	/* Every start offset, with lengths around chunk boundaries. */
	for (off = 0; off < PAGEPACK_PAGE; off += 1 + (off % 61 == 0 ? 0 : 6)) {
		static const size_t lens[] = { 1, 3, 4, 255, 256, 257, 1000, 4096 };

		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
			n = lens[k];
			if (n > PAGEPACK_PAGE - off)
				n = PAGEPACK_PAGE - off;
			memset(out, 0x5a, sizeof(out));
			pagepack_read(rec, out, off, n);
			if (memcmp(out, page + off, n)) {
				CHECK(!"sub-range differs", "%s: [%zu, +%zu)", what, off, n);
				free(rec);
				return len;
			}
			CHECK(n == PAGEPACK_PAGE || out[n] == 0x5a, "%s: wrote past the range", what);
		}
	}
	/* Every alignment of a short read: each byte offset 0..PAGE-1. */
	for (off = 0; off + 8 <= PAGEPACK_PAGE; off++) {
		pagepack_read(rec, out, off, 8);
		if (memcmp(out, page + off, 8)) {
			CHECK(!"8-byte read differs", "%s: at %zu", what, off);
			break;
		}
	}
	pagepack_read(rec, out, 17, 0);     /* zero length: nothing */
	free(rec);
	return len;
}

/* 16 "inodes" of one directory: same mode/owner/times/flags/extent header,
 * different sizes, block numbers and checksums. */
static void inode_page(uint8_t *page, unsigned used)
{
	memset(page, 0, PAGEPACK_PAGE);
	for (unsigned i = 0; i < used; i++) {
		uint8_t *in = page + i * 256;
		uint32_t w;

		w = 0x81a4; memcpy(in + 0, &w, 2);          /* mode */
		w = rnd(); memcpy(in + 4, &w, 4);           /* size */
		w = 1700000000; memcpy(in + 8, &w, 4);      /* atime */
		memcpy(in + 12, &w, 4);
		memcpy(in + 16, &w, 4);
		w = 1; memcpy(in + 26, &w, 2);              /* links */
		w = 8; memcpy(in + 28, &w, 4);              /* blocks */
		w = 0x80000; memcpy(in + 32, &w, 4);        /* flags: extents */
		w = 0xf30a; memcpy(in + 40, &w, 2);         /* extent header */
		w = 1; memcpy(in + 42, &w, 2);
		w = 4; memcpy(in + 44, &w, 2);
		w = 1; memcpy(in + 52, &w, 2);              /* ee_len */
		w = 40000 + i; memcpy(in + 60, &w, 4);      /* ee_start */
		w = rnd(); memcpy(in + 124, &w, 2);         /* checksum lo */
		w = 32; memcpy(in + 128, &w, 2);            /* extra isize */
		w = rnd(); memcpy(in + 130, &w, 2);         /* checksum hi */
	}
}

int main(void)
{
	uint8_t page[PAGEPACK_PAGE], *rec = NULL;
	size_t len, n;
	int ret;

	memset(page, 0, sizeof(page));
	CHECK(round_trip(page, "zero page") == 6);

	inode_page(page, 16);
	n = round_trip(page, "16 inodes");
	/* At most 6 16-bit words differ per inode, one mask for all of
	 * them. */
	CHECK(n > 0 && n <= 6 + 16 + 30 * 2 + 16 + 15 * 6 * 2,
	      "16 inodes: %zu bytes", n);
	inode_page(page, 5);
	round_trip(page, "5 inodes, then zeros");

	/* The same chunk repeated: chunks 1..15 are absent deltas. */
	for (n = 0; n < PAGEPACK_CHUNK; n++)
		page[n] = (uint8_t)rnd();
	for (n = 1; n < PAGEPACK_PAGE / PAGEPACK_CHUNK; n++)
		memcpy(page + n * PAGEPACK_CHUNK, page, PAGEPACK_CHUNK);
	CHECK(round_trip(page, "repeated chunk") <= 6 + 16 + PAGEPACK_CHUNK);

	/* Sparse words anywhere, including the page's last byte. */
	for (int k = 0; k < 200; k++) {
		memset(page, 0, sizeof(page));
		for (int j = rnd() % 300; j > 0; j--)
			page[rnd() % PAGEPACK_PAGE] = (uint8_t)(rnd() | 1);
		page[PAGEPACK_PAGE - 1] = (uint8_t)k;
		round_trip(page, "sparse");
	}

	/* Dense random pages cannot be packed smaller: keep raw. */
	for (int k = 0; k < 20; k++) {
		for (n = 0; n < PAGEPACK_PAGE; n++)
			page[n] = (uint8_t)(rnd() | 1);
		rec = NULL;
		ret = pagepack_pack(page, &rec, &len);
		CHECK(ret == 1 && rec == NULL, "dense page: pack returned %d", ret);
	}
	/* Dense but with zero words: still raw or a smaller record, never
	 * wrong. */
	for (int k = 0; k < 50; k++) {
		for (n = 0; n < PAGEPACK_PAGE; n += 4) {
			uint32_t w = rnd() % 5 ? rnd() | 1 : 0;

			memcpy(page + n, &w, 4);
		}
		rec = NULL;
		ret = pagepack_pack(page, &rec, &len);
		CHECK(ret == 0 || ret == 1, "half-dense: %d", ret);
		if (ret == 0) {
			free(rec);
			round_trip(page, "half-dense");
		}
	}
	return check_done();
}
