/* test_holes.c - the hole map (src/engine/holes.c) and rpifs_gen_extent().
 *
 * 1. Random maps: holes_finalize() of random regions and declared runs
 *    against a byte reference (data = declared, or served as other than
 *    zeros), holes_extent() at every offset: the kind, the run as long as
 *    it goes, capped by *len.
 * 2. A real image (FAT32 boot files, ext4 files, a sparse file): every
 *    hole reads as zeros; the MBR, the ext4 superblock, FAT #1 (zeros
 *    included) and the files are data; the space before partition 1 and
 *    the free space of both filesystems are holes; a sparse file's hole
 *    costs no data; a block written into a hole becomes data (one block,
 *    exactly), and the bmap follows it.
 * 3. Threads: walks and bmaps of one generation while another thread
 *    writes into holes (also run under ThreadSanitizer: the NBD front-end
 *    asks block status from many threads).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "generation.h"
#include "holes.h"
#include "image.h"

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state % n;
}

#define SIZE 4096

static void test_random(void)
{
	static const uint8_t mem[SIZE];

	for (int iter = 0; iter < 300; iter++) {
		struct regions r;
		struct holes h;
		bool ref[SIZE] = { false };
		uint64_t pos = 0, total = 0;

		regions_init(&r);
		holes_init(&h);
		/* Regions side by side with random gaps, random kinds. */
		while (pos < SIZE) {
			uint64_t gap = rnd(3) ? rnd(64) : 0, len = 1 + rnd(128);
			int kind = (int)rnd(3);

			pos += gap;
			if (pos >= SIZE)
				break;
			if (len > SIZE - pos)
				len = SIZE - pos;
			if (kind == 0)
				CHECK(regions_add_zero(&r, pos, len, RW_GAP) == 0);
			else if (kind == 1)
				CHECK(regions_add_mem(&r, pos, len, mem, RW_GAP) == 0);
			else
				CHECK(regions_add_file(&r, pos, len, 1, 0, RW_GAP) == 0);
			for (uint64_t i = pos; kind && i < pos + len; i++)
				ref[i] = true;
			pos += len;
		}
		/* Declared runs in any order, overlapping, some past the end. */
		for (int k = (int)rnd(8); k > 0; k--) {
			uint64_t s = rnd(SIZE + 100), len = rnd(300);

			CHECK(holes_add_data(&h, s, len) == 0);
			for (uint64_t i = s; i < s + len && i < SIZE; i++)
				ref[i] = true;
		}
		CHECK(regions_finalize(&r, SIZE) == 0);
		CHECK(holes_finalize(&h, &r) == 0);
		for (uint64_t i = 0; i < SIZE; i++)
			total += ref[i];
		CHECK(h.data_bytes == total, "%" PRIu64 " data bytes, want %" PRIu64,
		      h.data_bytes, total);
		for (size_t k = 1; k < h.n; k++)
			CHECK(h.v[k - 1].end < h.v[k].start, "runs not merged");
		for (uint64_t off = 0; off < SIZE; off++) {
			uint64_t len = SIZE - off, cap = 1 + rnd(50), run = 0;
			bool d;

			holes_extent(&h, off, &len, &d);
			while (off + run < SIZE && ref[off + run] == ref[off])
				run++;
			CHECK(d == ref[off], "kind at %" PRIu64, off);
			CHECK(len == run, "run at %" PRIu64 ": %" PRIu64 ", want %" PRIu64,
			      off, len, run);
			len = cap;
			holes_extent(&h, off, &len, &d);
			CHECK(len == (run < cap ? run : cap), "capped run at %" PRIu64, off);
		}
		regions_free(&r);
		holes_free(&h);
	}
}

/* ---- a real image ---------------------------------------------------------- */

#define DISK (64 * MIB)
static char base[] = "/tmp/rpifs-holes.XXXXXX";

static void mkfile(const char *rel, size_t len, unsigned seed)
{
	char p[512];
	uint8_t *b = malloc(len + 1);

	must(b != NULL, "malloc");
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 7 + i / 251 + 1) | 1;
	snprintf(p, sizeof(p), "%s/root/%s", base, rel);
	put_bytes(p, b, len);
	free(b);
}

static void mkdir_rel(const char *rel)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/root/%s", base, rel);
	must(mkdir(p, 0755) == 0, p);
}

/* A file of 3 MiB whose middle MiB is a hole (where the filesystem makes
 * one: else the test of it is skipped). */
static bool mksparse(const char *rel)
{
	char p[512], buf[4096];
	struct stat st;
	int fd;

	memset(buf, 0x5a, sizeof(buf));
	snprintf(p, sizeof(p), "%s/root/%s", base, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	must(fd >= 0, p);
	for (off_t o = 0; o < 3 * (off_t)MIB; o += (off_t)sizeof(buf))
		if (o < (off_t)MIB || o >= 2 * (off_t)MIB)
			must(pwrite(fd, buf, sizeof(buf), o) == (ssize_t)sizeof(buf), p);
	must(fstat(fd, &st) == 0, p);
	close(fd);
	return (uint64_t)st.st_blocks * 512 < 3 * MIB;
}

static bool is_data(struct rpifs_gen *g, uint64_t off)
{
	uint64_t len = 1;
	bool d = false;

	CHECK(rpifs_gen_extent(g, off, &len, &d) == 0 && len == 1);
	return d;
}

/* Walk the image: every hole reads as zeros; runs alternate. */
static uint64_t walk(struct rpifs_gen *g, uint8_t *buf)
{
	uint64_t size = rpifs_gen_size(g), off = 0, data = 0;
	bool last = false;

	while (off < size) {
		uint64_t len = size - off;
		bool d;

		CHECK(rpifs_gen_extent(g, off, &len, &d) == 0 && len > 0);
		if (len == 0)
			break;
		CHECK(off == 0 || d != last, "two runs of one kind at %" PRIu64, off);
		last = d;
		if (d) {
			data += len;
		} else {
			for (uint64_t o = off; o < off + len; o += MIB) {
				size_t n = off + len - o < MIB ? (size_t)(off + len - o) : MIB;

				CHECK(rpifs_gen_read(g, buf, n, o) == 0);
				for (size_t i = 0; i < n; i++)
					if (buf[i]) {
						CHECK(0, "hole byte %" PRIu64 " is not zero", o + i);
						break;
					}
			}
		}
		off += len;
	}
	return data;
}

struct racer {
	struct rpifs_gen *g;
	bool writer;
	uint64_t hole;          /* writer: first block to write, then one per 2 */
};

static void *race(void *arg)
{
	struct racer *x = arg;
	uint8_t blk[4096];

	memset(blk, 0x3c, sizeof(blk));
	for (int i = 0; i < 40; i++) {
		if (x->writer) {
			CHECK(rpifs_gen_write(x->g, blk, sizeof(blk),
					      x->hole + (uint64_t)i * 2 * 4096) == 0);
			continue;
		}
		uint64_t off = 0, size = rpifs_gen_size(x->g);
		char *text = NULL;
		size_t len = 0;

		while (off < size) {
			uint64_t n = size - off;
			bool d;

			if (rpifs_gen_extent(x->g, off, &n, &d) < 0 || n == 0) {
				CHECK(0, "extent at %" PRIu64, off);
				break;
			}
			off += n;
		}
		if (i % 10 == 0) {
			CHECK(rpifs_gen_bmap(x->g, &text, &len) == 0 && text);
			free(text);
		}
	}
	return NULL;
}

static void test_threads(struct rpifs_gen *g, uint64_t hole)
{
	struct racer x[4];
	pthread_t t[4];

	for (int i = 0; i < 4; i++) {
		x[i] = (struct racer){ g, i == 0, hole };
		must(pthread_create(&t[i], NULL, race, &x[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	/* Each written block of the hole is a run of its own. */
	for (int i = 0; i < 40; i++)
		CHECK(is_data(g, hole + (uint64_t)i * 2 * 4096) &&
		      !is_data(g, hole + (uint64_t)i * 2 * 4096 + 4096));
}

static void test_image(void)
{
	struct rpifs_opts ro;
	struct rpifs *r;
	struct rpifs_gen *g;
	char root[512], *text = NULL;
	uint8_t *buf = malloc(MIB), blk[4096];
	uint64_t data, p2 = 0, p1 = 0, hole = 0;
	size_t len = 0, len2 = 0;
	bool sparse, drop;

	must(buf != NULL, "malloc");
	must(mkdtemp(base) != NULL, "mkdtemp");
	snprintf(root, sizeof(root), "%s/root", base);
	must(mkdir(root, 0755) == 0, root);
	mkdir_rel("boot");
	mkfile("boot/config.txt", 3000, 1);
	mkfile("boot/kernel8.img", 300000, 2);
	mkdir_rel("etc");
	mkfile("etc/hostname", 10, 3);
	mkfile("big", 2 * MIB + 5, 4);
	sparse = mksparse("sparse");

	rpifs_opts_init(&ro);
	ro.rootfs = root;
	ro.boot_size = 40 * MIB;
	ro.size = DISK;
	ro.watch = false;
	must(rpifs_new(&r, &ro) == 0, "rpifs_new");
	must(rpifs_build(r) == 0, "rpifs_build");
	g = rpifs_gen_open(r, &drop);
	p1 = g->img.p1_start;
	p2 = g->img.p2_start;

	data = walk(g, buf);
	CHECK(data == rpifs_gen_data_bytes(g));
	CHECK(data < DISK / 4, "%" PRIu64 " of %u bytes are data", data, (unsigned)DISK);
	CHECK(is_data(g, 0));                   /* the MBR */
	CHECK(!is_data(g, 512));                /* before partition 1 */
	CHECK(!is_data(g, p1 - 1));
	CHECK(is_data(g, p1));                  /* FAT32 boot sector */
	CHECK(is_data(g, p1 + 32 * 512 + 100000));      /* FAT #1, zeros */
	CHECK(!is_data(g, p2 - 1));             /* FAT32's free clusters */
	CHECK(is_data(g, p2 + 1024));           /* ext4 superblock */
	CHECK(!is_data(g, DISK - 1));           /* ext4's free tail */

	/* The sparse file: its hole is not allocated in ext4, so it costs the
	 * image no data (its 2 MiB of data are, once). */
	if (sparse) {
		uint64_t mapped = 0;

		for (size_t i = 0; i < g->img.map.n; i++) {
			const struct region *x = &g->img.map.v[i];

			if (x->kind == REGION_FILE && x->what == RW_EXT4_FILE &&
			    !strcmp(g->img.tree.files.v[x->file_id]->name, "sparse")) {
				mapped += x->len;
				CHECK(is_data(g, x->start) && is_data(g, x->start + x->len - 1));
			}
		}
		CHECK(mapped == 2 * MIB, "%" PRIu64 " bytes of the sparse file mapped", mapped);
	} else {
		fprintf(stderr, "# %s makes no holes: sparse-file check skipped\n", base);
	}

	/* The bmap's size is known before its checksums. */
	CHECK(rpifs_gen_bmap_size(g, &len) == 0 && len > 0);
	CHECK(rpifs_gen_bmap(g, &text, &len2) == 0 && len2 == len && text);
	CHECK(text && strstr(text, "<bmap version=\"2.0\">"));
	CHECK(text && strlen(text) == len2);
	free(text);

	/* A block written into a hole is data; its neighbours stay holes. */
	for (hole = DISK - 8 * 4096; is_data(g, hole); hole -= 4096)
		;
	memset(blk, 0xa5, sizeof(blk));
	CHECK(rpifs_gen_write(g, blk, 100, hole + 10) == 0);
	CHECK(is_data(g, hole) && is_data(g, hole + 4095));
	CHECK(!is_data(g, hole + 4096) && !is_data(g, hole - 1));
	CHECK(walk(g, buf) == data + 4096, "the written block counts once");
	{
		uint64_t l = DISK - hole;
		bool d;

		CHECK(rpifs_gen_extent(g, hole, &l, &d) == 0 && d && l == 4096);
	}
	/* The bmap follows the write: one range more (or longer), new text. */
	CHECK(rpifs_gen_bmap_size(g, &len2) == 0 && len2 > len);
	text = NULL;
	CHECK(rpifs_gen_bmap(g, &text, &len) == 0 && len == len2);
	free(text);

	/* A hole of 80 blocks, well before the written one. */
	for (hole = p2 + 8 * MIB; hole < DISK - MIB; hole += 4096) {
		uint64_t l = 81 * 4096;
		bool d;

		CHECK(rpifs_gen_extent(g, hole, &l, &d) == 0);
		if (!d && l == 81 * 4096)
			break;
	}
	CHECK(hole < DISK - MIB, "no hole of 80 blocks");
	if (hole < DISK - MIB)
		test_threads(g, hole);

	rpifs_gen_close(r, g);
	rpifs_free(r);
	free(buf);
}

int main(void)
{
	test_random();
	test_image();
	return finish(base);
}
