/* test_regions.c - region map: finalize sorts in place and refuses overlaps,
 * gaps read as zeros, find/piece and read agree with a flat reference buffer
 * at every offset. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "pagepack.h"
#include "regions.h"


/* "file" i holds bytes (i * 37 + off) & 0xff */
static int reader(void *ctx, uint32_t id, void *buf, size_t len, uint64_t off)
{
	uint8_t *b = buf;

	(void)ctx;
	for (size_t k = 0; k < len; k++)
		b[k] = (uint8_t)(id * 37 + off + k);
	return 0;
}

/* A packed page reads as its page, at every offset and across its
 * neighbours (a memory page before, zeros after), and it overlaps like any
 * other region. */
static void test_packed(void)
{
	static uint8_t page[PAGEPACK_PAGE], mem[PAGEPACK_PAGE];
	uint8_t ref[3 * PAGEPACK_PAGE], got[3 * PAGEPACK_PAGE], *rec = NULL;
	size_t len = 0, off, n;
	struct regions r;

	for (n = 0; n < PAGEPACK_PAGE; n++) {
		page[n] = n % 256 < 64 ? (uint8_t)(n % 256) : n % 256 == 100 ? (uint8_t)(n / 256 + 1) : 0;
		mem[n] = (uint8_t)(n * 7 + 1);
	}
	must(pagepack_pack(page, &rec, &len) == 0, "pack");
	regions_init(&r);
	CHECK(regions_own(&r, rec) == rec);
	CHECK(regions_add_mem(&r, 0, PAGEPACK_PAGE, mem, RW_GAP) == 0);
	CHECK(regions_add_packed(&r, PAGEPACK_PAGE, PAGEPACK_PAGE, rec, RW_EXT4_META) == 0);
	CHECK(regions_add_packed(&r, 0, PAGEPACK_PAGE + 1, rec, RW_EXT4_META) == -EINVAL);
	CHECK(regions_finalize(&r, sizeof(ref)) == 0);
	memcpy(ref, mem, PAGEPACK_PAGE);
	memcpy(ref + PAGEPACK_PAGE, page, PAGEPACK_PAGE);
	memset(ref + 2 * PAGEPACK_PAGE, 0, PAGEPACK_PAGE);
	for (off = 0; off < sizeof(ref); off += 5) {
		n = off % 3 ? 9 : sizeof(ref) - off;
		if (n > sizeof(ref) - off)
			n = sizeof(ref) - off;
		CHECK(regions_read(&r, got, n, off, reader, NULL) == 0);
		if (memcmp(got, ref + off, n)) {
			CHECK(!"packed region read differs", "at %zu+%zu", off, n);
			break;
		}
	}
	regions_free(&r);

	/* A packed page inside a file region is refused, like any overlap. */
	must(pagepack_pack(page, &rec, &len) == 0, "pack");
	regions_init(&r);
	CHECK(regions_own(&r, rec) == rec);
	CHECK(regions_add_file(&r, 0, 3 * PAGEPACK_PAGE, 1, 0, RW_EXT4_FILE) == 0);
	CHECK(regions_add_packed(&r, PAGEPACK_PAGE, PAGEPACK_PAGE, rec, RW_EXT4_META) == 0);
	CHECK(regions_finalize(&r, 1 << 20) == -EINVAL);
	regions_free(&r);
}

static void test_overlap(void)
{
	struct regions r;
	static const uint8_t m[16];

	regions_init(&r);
	CHECK(regions_add_mem(&r, 100, 16, m, RW_GAP) == 0);
	CHECK(regions_add_file(&r, 110, 10, 1, 0, RW_GAP) == 0);
	CHECK(regions_finalize(&r, 1000) == -EINVAL);
	regions_free(&r);

	/* An overlap between two sorted runs. */
	regions_init(&r);
	CHECK(regions_add_mem(&r, 0, 16, m, RW_GAP) == 0);
	CHECK(regions_add_mem(&r, 200, 16, m, RW_GAP) == 0);
	CHECK(regions_add_file(&r, 100, 10, 1, 0, RW_GAP) == 0);
	CHECK(regions_add_file(&r, 210, 10, 1, 0, RW_GAP) == 0);
	CHECK(regions_finalize(&r, 1000) == -EINVAL);
	regions_free(&r);

	regions_init(&r);
	CHECK(regions_add_mem(&r, 990, 16, m, RW_GAP) == 0);
	CHECK(regions_finalize(&r, 1000) == -EINVAL);   /* past the end */
	regions_free(&r);
}

static const char *namer(void *ctx, uint32_t id)
{
	(void)ctx;
	return id == 7 ? "boot/kernel8.img" : NULL;
}

/* Descriptions survive finalize; the dump prints one line per region with
 * its description, the gaps as free, and file regions with their source. */
static void test_dump(void)
{
	struct regions r;
	static const uint8_t m[512];
	char *out = NULL;
	size_t outlen = 0;
	FILE *f;

	regions_init(&r);
	CHECK(regions_add_mem(&r, 0, 512, m, RW_MBR) == 0);
	CHECK(regions_add_file(&r, 4096, 100, 7, 3, RW_FAT_FILE) == 0);
	CHECK(regions_add_file(&r, 8192, 100, 8, 0, RW_EXT4_FILE) == 0);
	CHECK(regions_finalize(&r, 16384) == 0);
	/* The gaps are not stored: the three regions, in order. */
	CHECK(r.n == 3);
	CHECK(r.v[0].what == RW_MBR && r.v[1].what == RW_FAT_FILE && r.v[2].what == RW_EXT4_FILE);
	f = open_memstream(&out, &outlen);
	CHECK(f != NULL);
	if (f) {
		regions_dump(&r, f, namer, NULL);
		fclose(f);
		CHECK(strstr(out, "memory MBR\n") != NULL);
		CHECK(strstr(out, "zero   free\n") != NULL);
		CHECK(strstr(out, "file   FAT32 file data: boot/kernel8.img @ 3\n") != NULL);
		CHECK(strstr(out, "file   ext4 file data: file #8 @ 0\n") != NULL);
		if (failures)
			fputs(out, stderr);
		free(out);
	}
	CHECK(!strcmp(regions_what_name(RW_EXT4_META), "ext4 metadata"));
	CHECK(!strcmp(regions_what_name(RW_COUNT), "?"));
	regions_free(&r);
}

/* runs == 0: the regions are added in a shuffled order (sorted by
 * finalize); runs > 0: dealt round-robin into that many groups, each in
 * increasing order, added group after group (the merge of sorted runs,
 * which finalize uses up to 16 runs, beyond that it sorts). */
static void test_random(unsigned seed, int runs)
{
	enum { SIZE = 1 << 16 };
	struct regions r;
	uint8_t *ref = calloc(SIZE, 1), *mem = malloc(SIZE), *got = malloc(SIZE);
	uint64_t pos = 0;
	uint32_t id = 0;

	srand(seed);
	for (size_t i = 0; i < SIZE; i++)
		mem[i] = (uint8_t)rand();
	regions_init(&r);
	/* Random regions with random gaps, added in a shuffled order. */
	struct { uint64_t s, l; int kind; uint32_t id; } rs[400];
	int n = 0;
	while (n < 400) {
		uint64_t gap = (uint64_t)(rand() % 3 ? 0 : rand() % 300);
		uint64_t len = 1 + (uint64_t)(rand() % 500);

		if (pos + gap + len > SIZE)
			break;
		pos += gap;
		rs[n].s = pos; rs[n].l = len; rs[n].kind = rand() % 3; rs[n].id = id++;
		for (uint64_t k = 0; k < len; k++)
			ref[pos + k] = rs[n].kind == 0 ? 0 : rs[n].kind == 1 ? mem[pos + k] :
				       (uint8_t)(rs[n].id * 37 + k + 5);
		pos += len;
		n++;
	}
	if (runs == 0) {
		for (int i = n - 1; i > 0; i--) {
			int j = rand() % (i + 1);
			__typeof__(rs[0]) t = rs[i]; rs[i] = rs[j]; rs[j] = t;
		}
	} else {
		__typeof__(rs[0]) dealt[400];
		int k = 0;

		for (int g = 0; g < runs; g++)
			for (int i = g; i < n; i += runs)
				dealt[k++] = rs[i];
		memcpy(rs, dealt, sizeof(rs[0]) * (size_t)n);
	}
	for (int i = 0; i < n; i++) {
		if (rs[i].kind == 0)
			CHECK(regions_add_zero(&r, rs[i].s, rs[i].l, RW_GAP) == 0);
		else if (rs[i].kind == 1)
			CHECK(regions_add_mem(&r, rs[i].s, rs[i].l, mem + rs[i].s, RW_GAP) == 0);
		else
			CHECK(regions_add_file(&r, rs[i].s, rs[i].l, rs[i].id, 5, RW_GAP) == 0);
	}
	CHECK(regions_finalize(&r, SIZE) == 0);
	/* Invariants: sorted, disjoint, no empty region, within SIZE; every
	 * region added is there (none merged away, none invented). */
	CHECK(r.n == (size_t)n);
	for (size_t i = 0; i + 1 < r.n; i++)
		CHECK(r.v[i].start + r.v[i].len <= r.v[i + 1].start && r.v[i].len > 0);
	CHECK(r.n && r.v[r.n - 1].start + r.v[r.n - 1].len <= SIZE);
	/* find() + piece(): every offset lies in its piece, a region or the
	 * whole gap around it (bounded by its neighbours), and the pieces tile
	 * the disk. */
	for (uint64_t off = 0; off < SIZE; off += 7) {
		size_t k = regions_find(&r, off);
		struct region gap;
		const struct region *g = regions_piece(&r, k, off, &gap);

		CHECK(g->start <= off && off < g->start + g->len);
		if (g == &gap) {
			CHECK(gap.kind == REGION_ZERO && gap.what == RW_GAP);
			CHECK(k == r.n || r.v[k].start == gap.start + gap.len);
			CHECK(k == 0 || r.v[k - 1].start + r.v[k - 1].len == gap.start);
		} else {
			CHECK(g == &r.v[k]);
		}
	}
	{
		uint64_t off = 0;
		size_t k = 0, pieces = 0;
		struct region gap;

		while (off < SIZE) {
			const struct region *g = regions_piece(&r, k, off, &gap);

			CHECK(g->start == off && g->len > 0);
			if (g != &gap)
				k++;
			off = g->start + g->len;
			pieces++;
		}
		CHECK(off == SIZE && k == r.n && pieces >= r.n);
	}
	/* read(): random ranges equal the reference, including the last byte. */
	for (int t = 0; t < 2000; t++) {
		uint64_t off = (uint64_t)rand() % SIZE;
		size_t len = (size_t)rand() % (SIZE - off + 1);

		CHECK(regions_read(&r, got, len, off, reader, NULL) == 0);
		if (memcmp(got, ref + off, len)) {
			failures++;
			fprintf(stderr, "seed %u: read %zu at %llu differs\n", seed, len,
				(unsigned long long)off);
			break;
		}
	}
	CHECK(regions_read(&r, got, 1, SIZE, reader, NULL) == -EINVAL);
	CHECK(regions_read(&r, got, 0, SIZE, reader, NULL) == 0);
	regions_free(&r);
	free(ref);
	free(mem);
	free(got);
}

int main(void)
{
	test_overlap();
	test_packed();
	test_dump();
	for (unsigned s = 1; s <= 20; s++)
		test_random(s, 0);
	for (int runs = 1; runs <= 18; runs++)
		test_random(100 + (unsigned)runs, runs);
	return check_done();
}
