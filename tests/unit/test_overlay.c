/* test_overlay.c - the copy-on-write overlay (src/engine/overlay.c), in memory
 * and file-backed, against a reference copy of the disk.
 *
 * The "image" is a pattern computed from the offset (the base reader). Random
 * writes at unaligned offsets, within a block, across 4 KiB blocks and over
 * the last, partial block land in the overlay and in the reference; a read is
 * the base's bytes patched by overlay_read() and must equal the reference
 * everywhere (blocks never written read through to the base). The block count
 * is the number of distinct blocks written. A file overlay reopened keeps its
 * blocks; opened for another layout id or disk size it is refused (-ESTALE),
 * with a corrupt header too (-EINVAL); reset discards its blocks.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "overlay.h"

/* Not a multiple of 4096: the last block is partial. */
#define DISK ((uint64_t)3 * 1024 * 1024 + 1234)
#define NBLOCKS ((DISK + OVERLAY_BLOCK - 1) / OVERLAY_BLOCK)

static unsigned base_calls;

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 131 + (off >> 12) * 7 + 1);
}

static int base_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	uint8_t *b = buf;

	(void)ctx;
	base_calls++;
	if (off + len > DISK)
		return -EIO;    /* the overlay must never ask past the disk */
	for (size_t i = 0; i < len; i++)
		b[i] = pattern(off + i);
	return 0;
}

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* What a reader of the image sees at [off, off+len): base, then overlay. */
static int read_through(struct overlay *ov, uint8_t *buf, size_t len, uint64_t off)
{
	base_read(NULL, buf, len, off);
	return overlay_read(ov, buf, len, off);
}

/* The whole disk through the overlay equals ref, in reads of varied sizes
 * and alignments. */
static void check_all(struct overlay *ov, const uint8_t *ref, const char *what)
{
	static uint8_t buf[3 * OVERLAY_BLOCK + 100];
	uint64_t off = 0;
	int bad = 0;

	while (off < DISK && !bad) {
		size_t len = 1 + rnd() % sizeof(buf);

		if (len > DISK - off)
			len = (size_t)(DISK - off);
		CHECK(read_through(ov, buf, len, off) == 0, "%s: read at %" PRIu64, what, off);
		if (memcmp(buf, ref + off, len)) {
			CHECK(0, "%s: bytes differ in [%" PRIu64 ", +%zu)", what, off, len);
			bad = 1;
		}
		off += len;
	}
}

static void do_write(struct overlay *ov, uint8_t *ref, bool *touched, uint64_t off,
		     size_t len, uint8_t seed)
{
	uint8_t *data = malloc(len);

	must(data != NULL, "malloc");
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(seed + i * 3);
	CHECK(overlay_write(ov, data, len, off, base_read, NULL) == 0,
	      "write %zu at %" PRIu64, len, off);
	memcpy(ref + off, data, len);
	for (uint64_t b = off / OVERLAY_BLOCK; b * OVERLAY_BLOCK < off + len; b++)
		touched[b] = true;
	free(data);
}

static uint64_t count_touched(const bool *touched)
{
	uint64_t n = 0;

	for (uint64_t b = 0; b < NBLOCKS; b++)
		n += touched[b];
	return n;
}

/* Writes of every shape; the reference and the touched blocks follow. */
static void exercise(struct overlay *ov, uint8_t *ref, bool *touched, const char *what)
{
	uint8_t one = 0x5a;

	/* Within one block, unaligned; a partial block is completed from base. */
	base_calls = 0;
	do_write(ov, ref, touched, 4096 + 100, 10, 1);
	CHECK(base_calls == 1, "%s: a partial block reads base once (%u)", what, base_calls);
	/* A whole aligned block needs no base. */
	base_calls = 0;
	do_write(ov, ref, touched, 5 * 4096, 4096, 2);
	CHECK(base_calls == 0, "%s: a whole block needs no base (%u)", what, base_calls);
	/* Across three blocks, starting and ending mid-block. */
	do_write(ov, ref, touched, 9 * 4096 - 7, 2 * 4096 + 20, 3);
	/* A second write into an already written block keeps the first one's bytes. */
	base_calls = 0;
	do_write(ov, ref, touched, 4096 + 2000, 3, 4);
	CHECK(base_calls == 0, "%s: a present block is not re-read from base", what);
	/* The first byte, the last byte, the last (partial) block whole. */
	do_write(ov, ref, touched, 0, 1, 5);
	do_write(ov, ref, touched, DISK - 1, 1, 6);
	do_write(ov, ref, touched, (NBLOCKS - 2) * OVERLAY_BLOCK + 17,
		 (size_t)(DISK - (NBLOCKS - 2) * OVERLAY_BLOCK - 17), 7);
	/* Random ones. */
	for (int i = 0; i < 200; i++) {
		uint64_t off = rnd() % DISK;
		size_t len = 1 + (size_t)(rnd() % (3 * OVERLAY_BLOCK));

		if (len > DISK - off)
			len = (size_t)(DISK - off);
		do_write(ov, ref, touched, off, len, (uint8_t)i);
	}
	/* Past the end: refused, nothing stored. */
	CHECK(overlay_write(ov, &one, 1, DISK, base_read, NULL) == -ENOSPC,
	      "%s: write at the end", what);
	CHECK(overlay_write(ov, &one, 2, DISK - 1, base_read, NULL) == -ENOSPC,
	      "%s: write across the end", what);
	CHECK(overlay_blocks(ov) == count_touched(touched), "%s: %" PRIu64 " blocks, want %"
	      PRIu64, what, overlay_blocks(ov), count_touched(touched));
	check_all(ov, ref, what);
}

static void fresh(uint8_t *ref, bool *touched)
{
	base_read(NULL, ref, DISK, 0);
	memset(touched, 0, NBLOCKS * sizeof(*touched));
}

static void test_memory(uint8_t *ref, bool *touched)
{
	static const uint8_t id[16] = { 1 };
	struct overlay *ov = NULL;

	fresh(ref, touched);
	must(overlay_open(&ov, NULL, DISK, id, false) == 0, "overlay_open (memory)");
	CHECK(!overlay_persistent(ov));
	CHECK(overlay_blocks(ov) == 0);
	check_all(ov, ref, "memory, empty");    /* everything reads through */
	exercise(ov, ref, touched, "memory");
	CHECK(overlay_sync(ov) == 0);
	overlay_close(ov);
}

static void test_file(const char *dir, uint8_t *ref, bool *touched)
{
	static const uint8_t id[16] = { 2, 3 }, other[16] = { 2, 4 };
	struct overlay *ov = NULL;
	char path[512];
	uint64_t blocks;
	int fd;

	snprintf(path, sizeof(path), "%s/overlay", dir);
	fresh(ref, touched);
	must(overlay_open(&ov, path, DISK, id, false) == 0, "overlay_open (file)");
	CHECK(overlay_persistent(ov));
	CHECK(overlay_blocks(ov) == 0);
	exercise(ov, ref, touched, "file");
	CHECK(overlay_sync(ov) == 0);
	blocks = overlay_blocks(ov);
	overlay_close(ov);

	/* Reopened: the same blocks, the same bytes. */
	ov = NULL;
	CHECK(overlay_open(&ov, path, DISK, id, false) == 0, "reopen");
	if (ov) {
		CHECK(overlay_blocks(ov) == blocks, "reopen: %" PRIu64 " blocks, want %" PRIu64,
		      overlay_blocks(ov), blocks);
		check_all(ov, ref, "file, reopened");
		overlay_close(ov);
	}

	/* Another image's blocks are never served. */
	ov = NULL;
	CHECK(overlay_open(&ov, path, DISK, other, false) == -ESTALE, "other layout id");
	CHECK(ov == NULL);
	CHECK(overlay_open(&ov, path, DISK + 4096, id, false) == -ESTALE, "other disk size");
	CHECK(overlay_open(&ov, path, DISK * 64, id, false) == -ESTALE,
	      "other disk size (a bitmap of another size)");
	/* The refusals left the file alone. */
	CHECK(overlay_open(&ov, path, DISK, id, false) == 0, "reopen after refusals");
	if (ov) {
		CHECK(overlay_blocks(ov) == blocks);
		overlay_close(ov);
	}

	/* A corrupt header. */
	fd = open(path, O_RDWR);
	must(fd >= 0, path);
	must(pwrite(fd, "X", 1, 30) == 1, "corrupt");   /* inside layout_id */
	close(fd);
	ov = NULL;
	CHECK(overlay_open(&ov, path, DISK, id, false) == -EINVAL, "corrupt header");

	/* Reset: a new, empty overlay for the new layout; reads go to base. */
	CHECK(overlay_open(&ov, path, DISK, other, true) == 0, "reset");
	if (ov) {
		CHECK(overlay_blocks(ov) == 0, "reset keeps %" PRIu64 " blocks",
		      overlay_blocks(ov));
		fresh(ref, touched);
		check_all(ov, ref, "file, reset");
		do_write(ov, ref, touched, 12345, 10000, 9);
		overlay_close(ov);
		ov = NULL;
		CHECK(overlay_open(&ov, path, DISK, other, false) == 0, "reopen after reset");
		if (ov) {
			CHECK(overlay_blocks(ov) == count_touched(touched));
			check_all(ov, ref, "file, reset, reopened");
			overlay_close(ov);
		}
	}
}

int main(void)
{
	char dir[] = "/tmp/rpifs-overlay.XXXXXX";
	uint8_t *ref = malloc(DISK);
	bool *touched = malloc(NBLOCKS * sizeof(*touched));

	must(ref && touched, "malloc");
	must(mkdtemp(dir) != NULL, "mkdtemp");
	test_memory(ref, touched);
	test_file(dir, ref, touched);
	free(ref);
	free(touched);
	return finish(dir);
}
