/* test_ext4_memio.c - the memio page store and io_manager.
 *
 * Byte counts (count < 0), block size changes, partial pages, zero pages
 * never stored, zeroout/discard dropping pages (both the page walk and the
 * table scan), the hash table under many inserts and deletions against a
 * reference, ascending traversal with stealing, the store outliving the
 * channel, packing: many pages re-read after eviction, byte for byte, with
 * never more than MEMIO_HOT raw pages alive, and a real filesystem:
 * ext2fs_initialize + close through memio, then ext2fs_open of the same
 * store reads it back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ext2fs/ext2fs.h>
#include <et/com_err.h>

#include "check.h"
#include "ext4_memio.h"
#include "pagepack.h"


static io_channel open_chan(struct memio_store *s)
{
	char name[64];
	io_channel ch = NULL;

	CHECK(memio_io_manager->open(memio_name(s, name, sizeof(name)),
				     IO_FLAG_RW, &ch) == 0);
	return ch;
}

static int all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

static void test_basic(void)
{
	struct memio_store *s = memio_store_new(1 << 20, MEMIO_RAW_BUDGET);
	io_channel ch = open_chan(s);
	uint8_t buf[8192], out[8192];

	CHECK(ch->flags & CHANNEL_FLAGS_DISCARD_ZEROES);
	/* The superblock: 1024 bytes at byte 1024 with 1024-byte blocks. */
	memset(buf, 0xab, 1024);
	CHECK(io_channel_set_blksize(ch, 1024) == 0);
	CHECK(io_channel_write_blk64(ch, 1, -1024, buf) == 0);
	CHECK(memio_store_pages(s) == 1);
	/* Read back with 4096-byte blocks: page 0 holds it at 1024. */
	CHECK(io_channel_set_blksize(ch, 4096) == 0);
	CHECK(io_channel_read_blk64(ch, 0, 1, out) == 0);
	CHECK(all_zero(out, 1024));
	CHECK(out[1024] == 0xab && out[2047] == 0xab);
	CHECK(all_zero(out + 2048, 2048));
	/* Blocks across pages, positive count. */
	memset(buf, 0x11, sizeof(buf));
	CHECK(io_channel_write_blk64(ch, 3, 2, buf) == 0);
	CHECK(memio_store_pages(s) == 3);
	CHECK(io_channel_read_blk64(ch, 2, 2, out) == 0);
	CHECK(all_zero(out, 4096) && out[4096] == 0x11 && out[8191] == 0x11);
	/* Unaligned byte write spanning two pages, via write_byte. */
	CHECK(io_channel_write_byte(ch, 4096 * 10 - 3, 6, "ABCDEF") == 0);
	CHECK(io_channel_read_blk64(ch, 9, 2, out) == 0);
	CHECK(memcmp(out + 4093, "ABCDEF", 6) == 0);
	CHECK(memio_store_pages(s) == 5);
	/* Zeros over an absent page store nothing; over a page drop it. */
	memset(buf, 0, sizeof(buf));
	CHECK(io_channel_write_blk64(ch, 100, 1, buf) == 0);
	CHECK(memio_store_pages(s) == 5);
	CHECK(io_channel_write_byte(ch, 4096 * 10 - 3, 6, buf) == 0);
	CHECK(memio_store_pages(s) == 3);
	/* Out of range. */
	CHECK(io_channel_read_blk64(ch, 256, 1, out) != 0);
	CHECK(io_channel_write_blk64(ch, 255, 2, buf) != 0);
	/* zeroout, small range: page walk; partial page keeps the rest. */
	CHECK(io_channel_set_blksize(ch, 1024) == 0);
	CHECK(io_channel_zeroout(ch, 1, 1) == 0);    /* the 0xab bytes */
	CHECK(memio_store_pages(s) == 2);
	CHECK(io_channel_set_blksize(ch, 4096) == 0);
	CHECK(io_channel_discard(ch, 3, 1) == 0);
	CHECK(memio_store_pages(s) == 1);
	CHECK(io_channel_read_blk64(ch, 3, 2, out) == 0);
	CHECK(all_zero(out, 4096) && out[4096] == 0x11);
	/* Close: the store lives on. */
	CHECK(io_channel_close(ch) == 0);
	CHECK(memio_store_pages(s) == 1);
	memio_store_free(s);
}

struct walk {
	struct memio_store *s;
	const uint8_t *ref;
	uint64_t last;
	size_t seen;
	int ok;
};

/* Pages must come in ascending order, with the right bytes; stealing the
 * page being visited is allowed. */
static int walk_fn(void *vc, uint64_t off, const uint8_t *data, size_t plen)
{
	struct walk *w = vc;
	uint8_t *p, page[4096];

	if (w->seen && off <= w->last)
		w->ok = 0;
	w->last = off;
	w->seen++;
	if (plen)
		pagepack_unpack(data, page);
	else
		memcpy(page, data, sizeof(page));
	if (page[0] != w->ref[off / 4096] || page[4095] != w->ref[off / 4096])
		w->ok = 0;
	p = memio_store_steal(w->s, off);
	if (p != data)
		w->ok = 0;
	free(p);
	return 0;
}

/* Many pages, random writes and zeroouts, checked against a reference. */
static void test_table(void)
{
	enum { NP = 20000 };
	struct memio_store *s = memio_store_new((uint64_t)NP * 4096, MEMIO_RAW_BUDGET);
	io_channel ch = open_chan(s);
	uint8_t *ref = calloc(NP, 1), buf[4096];
	struct walk w;
	size_t i, n = 0;
	unsigned seed = 12345;
	int round;

	CHECK(ref != NULL);
	CHECK(io_channel_set_blksize(ch, 4096) == 0);
	for (round = 0; round < 200000; round++) {
		size_t p;

		seed = seed * 1103515245 + 12345;
		p = (seed >> 8) % NP;
		if ((seed & 7) == 0) {
			/* zeroout of a short run (page walk), or of half the
			 * device (table scan) */
			size_t len = (seed & 0x300) ? 3 : NP / 2;

			if (p + len > NP)
				len = NP - p;
			CHECK(io_channel_zeroout(ch, p, len) == 0);
			memset(ref + p, 0, len);
		} else {
			uint8_t v = (uint8_t)(seed >> 24);

			memset(buf, v, sizeof(buf));
			CHECK(io_channel_write_blk64(ch, p, 1, buf) == 0);
			ref[p] = v;
		}
	}
	for (i = 0; i < NP; i++) {
		CHECK(io_channel_read_blk64(ch, i, 1, buf) == 0);
		if (buf[0] != ref[i] || buf[4095] != ref[i]) {
			CHECK(!"page content differs from the reference");
			break;
		}
		n += ref[i] != 0;
	}
	CHECK(memio_store_pages(s) == n);
	CHECK(io_channel_close(ch) == 0);

	w = (struct walk){ s, ref, 0, 0, 1 };
	CHECK(memio_store_foreach(s, walk_fn, &w) == 0);
	CHECK(w.ok);
	CHECK(w.seen == n);
	CHECK(memio_store_pages(s) == 0);
	free(ref);
	memio_store_free(s);
}

/* Raw pages alive in the store (plen 0 from foreach). */
static int count_raw(void *vc, uint64_t off, const uint8_t *data, size_t plen)
{
	size_t *n = vc;

	(void)off;
	(void)data;
	*n += !plen;
	return 0;
}

struct cmp {
	const uint8_t *ref;
	size_t seen;
	int ok;
};

static int cmp_fn(void *vc, uint64_t off, const uint8_t *data, size_t plen)
{
	struct cmp *c = vc;
	uint8_t page[4096];

	if (plen)
		pagepack_unpack(data, page);
	else
		memcpy(page, data, sizeof(page));
	if (memcmp(page, c->ref + off, sizeof(page)))
		c->ok = 0;
	c->seen++;
	return 0;
}

/* Inode-table-like pages written and rewritten in pieces (byte writes,
 * partial zeroouts), in ascending sweeps and at random, over many more
 * pages than the hot set: every read matches a reference; raw pages never
 * outnumber MEMIO_HOT once the store has passed its raw budget (or the
 * budget, before), and a store within its budget is never packed. */
static void test_packing(size_t budget)
{
	enum { NP = 4 * MEMIO_HOT, SIZE = NP * 4096 };
	struct memio_store *s = memio_store_new(SIZE, budget);
	io_channel ch = open_chan(s);
	uint8_t *ref = calloc(SIZE, 1), *buf = malloc(SIZE);
	unsigned seed = 777;
	size_t raw, np, i;
	struct cmp c;
	int round;
	/* The most raw pages there may be; a store within its budget is all raw. */
	size_t most = budget >= NP ? NP : budget > MEMIO_HOT ? budget : MEMIO_HOT;

	must(ref && buf, "memory");
	CHECK(io_channel_set_blksize(ch, 4096) == 0);
	for (round = 0; round < 40000; round++) {
		uint64_t off;
		size_t len, k;

		seed = seed * 1103515245 + 12345;
		if (round < 2 * NP * 16) {
			/* Sweeps: 256-byte "inodes" in ascending order. */
			off = (uint64_t)(round % (NP * 16)) * 256;
			len = 256;
		} else {
			off = (seed >> 4) % SIZE;
			len = 1 + (seed >> 12) % 700;
			if (len > SIZE - off)
				len = SIZE - off;
		}
		if (round >= 2 * NP * 16 && (seed & 15) == 0) {
			/* zeroout of whole 1 KiB blocks */
			off -= off % 1024;
			len = 1024 * (1 + (seed >> 20) % 6);
			if (len > SIZE - off)
				len = SIZE - off;
			CHECK(io_channel_set_blksize(ch, 1024) == 0);
			CHECK(io_channel_zeroout(ch, off / 1024, len / 1024) == 0);
			CHECK(io_channel_set_blksize(ch, 4096) == 0);
			memset(ref + off, 0, len);
			continue;
		}
		/* Inode-like: a shared header, a few words that differ. */
		for (k = 0; k < len; k++) {
			size_t at = (off + k) % 256;

			buf[k] = at < 64 ? (uint8_t)(0x40 + at) :
				 at % 64 < 4 ? (uint8_t)(seed >> (at % 4 * 8)) : 0;
		}
		CHECK(io_channel_write_byte(ch, off, (int)len, buf) == 0);
		memcpy(ref + off, buf, len);
		if (round % 1000 == 0) {
			raw = 0;
			memio_store_foreach(s, count_raw, &raw);
			CHECK(raw <= most, "%zu raw pages, budget %zu", raw, budget);
		}
	}
	/* Everything read back, through the io_manager (unpacking again). */
	for (i = 0; i < NP; i++) {
		CHECK(io_channel_read_blk64(ch, i, 1, buf) == 0);
		if (memcmp(buf, ref + i * 4096, 4096)) {
			CHECK(!"page differs from the reference after eviction");
			break;
		}
	}
	raw = 0;
	memio_store_foreach(s, count_raw, &raw);
	CHECK(raw <= most, "%zu raw pages, budget %zu", raw, budget);
	np = memio_store_pages(s);
	CHECK(memio_store_pack(s) == 0);
	raw = 0;
	memio_store_foreach(s, count_raw, &raw);
	if (budget >= NP)
		CHECK(raw == np, "%zu of %zu pages raw within the budget", raw, np);
	else
		CHECK(raw == 0, "%zu raw pages after memio_store_pack", raw);
	CHECK(memio_store_pages(s) == np);
	/* And through foreach, as the regions get them. */
	c = (struct cmp){ ref, 0, 1 };
	CHECK(memio_store_foreach(s, cmp_fn, &c) == 0);
	CHECK(c.ok && c.seen == np);
	CHECK(io_channel_close(ch) == 0);
	free(ref);
	free(buf);
	memio_store_free(s);
}

/* A real filesystem through memio, read back by ext2fs_open. */
static void test_fs(void)
{
	struct memio_store *s = memio_store_new(64 << 20, MEMIO_RAW_BUDGET);
	struct ext2_super_block param;
	ext2_filsys fs = NULL;
	char name[64];
	size_t pages;

	memset(&param, 0, sizeof(param));
	ext2fs_blocks_count_set(&param, (64 << 20) / 4096);
	param.s_log_block_size = 2;
	param.s_rev_level = 1;
	param.s_inode_size = 256;
	ext2fs_set_feature_64bit(&param);
	ext2fs_set_feature_extents(&param);
	memio_name(s, name, sizeof(name));
	CHECK(ext2fs_initialize(name, EXT2_FLAG_64BITS, &param,
				memio_io_manager, &fs) == 0);
	if (!fs)
		return;
	strcpy((char *)fs->super->s_volume_name, "memio-test");
	CHECK(ext2fs_allocate_tables(fs) == 0);
	CHECK(ext2fs_close_free(&fs) == 0);
	pages = memio_store_pages(s);
	CHECK(pages > 0 && pages < 64);      /* metadata only, never 16384 */
	CHECK(ext2fs_open(name, 0, 0, 0, memio_io_manager, &fs) == 0);
	if (fs) {
		CHECK(strcmp((char *)fs->super->s_volume_name, "memio-test") == 0);
		CHECK(ext2fs_blocks_count(fs->super) == 16384);
		ext2fs_close_free(&fs);
	}
	CHECK(memio_store_pages(s) == pages); /* reading wrote nothing */
	memio_store_free(s);
}

int main(void)
{
	initialize_ext2_error_table();
	test_basic();
	test_table();
	test_packing(0);
	test_packing(MEMIO_HOT);
	test_packing(3 * MEMIO_HOT);    /* passed mid-sweep */
	test_packing(SIZE_MAX);         /* never passed: all raw */
	test_fs();
	return check_done();
}
