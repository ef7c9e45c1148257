/* test_image_diff.c - image_diff() (src/engine/image.c), checked against a
 * byte comparison of the two images.
 *
 * One temporary tree (boot files for the FAT32 partition, others for ext4),
 * image a built from it and read whole into memory; then the tree is edited
 * and image b built from it. Every byte where a and b differ must lie in a
 * range image_diff() reports (a byte outside them would be a stale page in a
 * reader's cache). Where the layout stays the same (a file's bytes change,
 * not its size) the ranges must also be tight: each holds a differing byte,
 * and the unchanged files' data is not in them. An unchanged tree gives no
 * range. The ranges are ascending and not adjacent.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "generation.h"
#include "image.h"

#define DISK (64 * MIB)
#define MAXR 4096

static char base[] = "/tmp/rpifs-imgdiff.XXXXXX";

struct ranges {
	size_t n;
	uint64_t off[MAXR], len[MAXR];
};

static int collect(void *ctx, uint64_t off, uint64_t len)
{
	struct ranges *r = ctx;

	if (r->n == MAXR)
		return -E2BIG;
	r->off[r->n] = off;
	r->len[r->n] = len;
	r->n++;
	return 0;
}

/* ROOT/rel with len bytes: byte i is (seed + i * 7 + i / 251). */
static void mkfile(const char *rel, size_t len, unsigned seed)
{
	char p[512];
	uint8_t *b = malloc(len + 1);

	must(b != NULL, "malloc");
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 7 + i / 251);
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

static void build(struct image *img)
{
	struct rpifs_opts ro;
	struct image_opts o;
	char root[512];

	snprintf(root, sizeof(root), "%s/root", base);
	rpifs_opts_init(&ro);
	ro.rootfs = root;
	ro.boot_size = 40 * MIB;
	ro.size = DISK;
	ro.disk_id = 0x1a2b3c4d;
	ro.watch = false;
	image_opts_from(&o, &ro);
	must(image_build(img, &o) == 0, "image_build");
	must(img->size == DISK, "image size");
}

static uint8_t *read_all(struct image *img)
{
	uint8_t *b = malloc(DISK);

	must(b != NULL, "malloc");
	must(image_read(img, b, DISK, 0) == 0, "image_read");
	return b;
}

/* The byte range [off, off+len) of the file rel in image img, or false. */
static bool file_extent(struct image *img, const char *rel, uint64_t *off, uint64_t *len)
{
	struct srcfiles *sf = &img->tree.files;

	for (size_t i = 0; i < img->map.n; i++) {
		const struct region *g = &img->map.v[i];

		char path[4096];

		if (g->kind == REGION_FILE && g->file_off == 0 &&
		    tree_path_into(sf->v[g->file_id], path, sizeof(path)) >= 0 &&
		    !strcmp(path, rel)) {
			*off = g->start;
			*len = g->len;
			return true;
		}
	}
	return false;
}

static bool in_ranges(const struct ranges *r, uint64_t off, uint64_t len)
{
	for (size_t i = 0; i < r->n; i++)
		if (off < r->off[i] + r->len[i] && r->off[i] < off + len)
			return true;
	return false;
}

/* snap: image a's bytes; b: the new image; r: image_diff(a, b). */
static void compare(const uint8_t *snap, struct image *b, const struct ranges *r,
		    bool tight, const char *what)
{
	static uint8_t chunk[1 << 20];
	uint64_t uncovered = 0, first_uncovered = 0, differing = 0;
	bool *hit = calloc(r->n + 1, sizeof(*hit));
	size_t k = 0;

	must(hit != NULL, "calloc");
	for (size_t i = 0; i < r->n; i++) {
		CHECK(r->len[i] > 0 && r->off[i] + r->len[i] <= DISK, "%s: range %zu out of the disk",
		      what, i);
		if (i)
			CHECK(r->off[i] > r->off[i - 1] + r->len[i - 1],
			      "%s: ranges %zu and %zu overlap, touch or are not ascending", what,
			      i - 1, i);
	}
	for (uint64_t off = 0; off < DISK; off += sizeof(chunk)) {
		must(image_read(b, chunk, sizeof(chunk), off) == 0, "image_read b");
		for (uint64_t blk = 0; blk < sizeof(chunk); blk += 4096) {
			if (!memcmp(chunk + blk, snap + off + blk, 4096))
				continue;
			for (uint64_t i = blk; i < blk + 4096; i++) {
				uint64_t pos = off + i;

				if (chunk[i] == snap[pos])
					continue;
				differing++;
				while (k < r->n && r->off[k] + r->len[k] <= pos)
					k++;
				if (k < r->n && r->off[k] <= pos) {
					hit[k] = true;
				} else if (!uncovered++) {
					first_uncovered = pos;
				}
			}
		}
	}
	CHECK(uncovered == 0, "%s: %" PRIu64 " differing bytes outside the ranges, the first at %"
	      PRIu64, what, uncovered, first_uncovered);
	if (tight)
		for (size_t i = 0; i < r->n; i++)
			CHECK(hit[i], "%s: range [%" PRIu64 ", +%" PRIu64 ") holds no difference",
			      what, r->off[i], r->len[i]);
	uint64_t reported = 0;

	for (size_t i = 0; i < r->n; i++)
		reported += r->len[i];
	printf("# %s: %zu ranges, %" PRIu64 " bytes reported, %" PRIu64 " bytes differ\n",
	       what, r->n, reported, differing);
	free(hit);
}

/* Build a, snapshot it, edit, build b, diff: the checks above. */
static void edit_case(void (*edit)(void), const char *changed, bool tight, const char *what)
{
	struct image a, b;
	struct ranges *r = calloc(1, sizeof(*r));
	uint8_t *snap;
	uint64_t off, len;

	must(r != NULL, "calloc");
	build(&a);
	snap = read_all(&a);
	usleep(20000);          /* past the timer tick of a's scan */
	edit();
	build(&b);
	CHECK(image_diff(&a, &b, collect, r) == 0, "%s: image_diff", what);
	if (changed)
		CHECK(file_extent(&b, changed, &off, &len) && in_ranges(r, off, len),
		      "%s: the changed file's data is not reported", what);
	if (tight) {
		/* Unchanged files, in both partitions: their data is not reported. */
		static const char *const same[] = { "boot/kernel.img", "usr/lib/big" };

		for (size_t i = 0; i < 2; i++) {
			if (changed && !strcmp(changed, same[i]))
				continue;
			CHECK(file_extent(&b, same[i], &off, &len) && !in_ranges(r, off, len),
			      "%s: %s's data is reported", what, same[i]);
		}
	}
	compare(snap, &b, r, tight, what);
	free(snap);
	free(r);
	image_free(&a);
	image_free(&b);
}

static void no_edit(void) {}
static void edit_root_bytes(void) { mkfile("etc/data", 20000, 99); }
static void edit_boot_bytes(void) { mkfile("boot/config.txt", 3000, 77); }
static void edit_root_size(void) { mkfile("etc/data", 70000, 5); }
static void edit_boot_size(void) { mkfile("boot/config.txt", 9000, 6); }
static void edit_new_file(void) { mkfile("etc/new", 5000, 8); }

int main(void)
{
	must(mkdtemp(base) != NULL, "mkdtemp");
	mkdir_rel("");
	mkdir_rel("boot");
	mkdir_rel("etc");
	mkdir_rel("usr");
	mkdir_rel("usr/lib");
	mkfile("boot/config.txt", 3000, 1);
	mkfile("boot/kernel.img", 300000, 2);
	mkfile("etc/data", 20000, 3);
	mkfile("etc/hostname", 4, 4);
	mkfile("usr/lib/big", 1000000, 5);

	/* Identical trees: no range at all. */
	{
		struct image a, b;
		struct ranges *r = calloc(1, sizeof(*r));

		must(r != NULL, "calloc");
		build(&a);
		build(&b);
		CHECK(image_diff(&a, &b, collect, r) == 0 && r->n == 0,
		      "unchanged tree: %zu ranges, the first [%" PRIu64 ", +%" PRIu64 ")", r->n,
		      r->n ? r->off[0] : 0, r->n ? r->len[0] : 0);
		free(r);
		image_free(&a);
		image_free(&b);
	}
	edit_case(no_edit, NULL, true, "no edit");
	edit_case(edit_root_bytes, "etc/data", true, "ext4 file, new bytes");
	edit_case(edit_boot_bytes, "boot/config.txt", true, "FAT file, new bytes");
	edit_case(edit_root_size, "etc/data", false, "ext4 file, new size");
	edit_case(edit_boot_size, "boot/config.txt", false, "FAT file, new size");
	edit_case(edit_new_file, "etc/new", false, "ext4, a new file");
	return finish(base);
}
