/* test_ext4_dir.c - ext4 directory packing, without FUSE.
 *
 * 1. ext4_dir_split: record lengths, names that exactly fill a block (the
 *    next one opens a new block), empty directories, first fit.
 * 2. ext4_dir_plan: the htree threshold (one block: linear; one record
 *    more: an htree of 1 + leaves blocks, leaves in hash order), spare
 *    blocks of lost+found stay linear.
 * 3. The plan (what the size estimate counts) against the build: for a
 *    range of name counts and lengths, a directory of a scanned tree goes
 *    through ext4_build(); libext2fs then reads the image back: the
 *    directory has the planned number of blocks, the index flag iff the
 *    plan is an htree, and each block holds the planned number of entries
 *    (one- and two-level htrees, and a linear lost+found of several blocks,
 *    included).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <et/com_err.h>

#include "check.h"
#include "ext4_i.h"
#include "regions.h"
#include "tree.h"

/* n entries named "<i, zero-padded to len>" (len >= 5), kept in *store. */
static struct dent *names(size_t n, size_t len, char **store)
{
	struct dent *e = calloc(n + 1, sizeof(*e));
	char *s = calloc(n + 1, len + 1);
	size_t i;

	must(e && s, "calloc");
	for (i = 0; i < n; i++) {
		char *p = s + i * (len + 1);

		snprintf(p, len + 1, "%0*zu", (int)len, i);
		e[i] = (struct dent){ .name = p, .len = (uint8_t)len, .type = EXT2_FT_REG_FILE };
	}
	*store = s;
	return e;
}

static void test_split(void)
{
	size_t starts[512];
	struct dent *e;
	char *s;

	CHECK(EXT2_DIR_REC_LEN(1) == 12 && EXT2_DIR_REC_LEN(4) == 12 &&
	      EXT2_DIR_REC_LEN(5) == 16 && EXT2_DIR_REC_LEN(12) == 20 &&
	      EXT2_DIR_REC_LEN(255) == 264, "record lengths");
	CHECK(LEAF_USABLE == 4084 && DOTS_LEN == 24, "leaf room %zu, dots %zu",
	      (size_t)LEAF_USABLE, (size_t)DOTS_LEN);
	CHECK(ext4_dir_split(NULL, 0, DOTS_LEN, NULL) == 1, "empty linear: one block");
	CHECK(ext4_dir_split(NULL, 0, 0, NULL) == 0, "no entries: no leaf");

	/* Linear: 24 + 203 * 20 = 4084, exactly a block. */
	e = names(204, 12, &s);
	CHECK(ext4_dir_split(e, 203, DOTS_LEN, starts) == 1, "203 x 20 bytes fill block 0");
	CHECK(ext4_dir_split(e, 204, DOTS_LEN, starts) == 2 && starts[0] == 0 &&
	      starts[1] == 203, "the 204th name opens block 1 (starts %zu %zu)",
	      starts[0], starts[1]);
	/* A leaf: 264 + 191 * 20 = 4084. */
	e[0].len = 255;
	CHECK(ext4_dir_split(e, 192, 0, starts) == 1 && starts[0] == 0,
	      "255 + 191 x 12 bytes fill a leaf");
	CHECK(ext4_dir_split(e, 193, 0, starts) == 2 && starts[1] == 192,
	      "the next name opens leaf 1 (%zu)", starts[1]);
	free(e);
	free(s);

	/* First fit in order, for mixed lengths: every block holds at most
	 * LEAF_USABLE bytes, and the next block's first record would not
	 * have fitted. */
	e = names(3000, 255, &s);
	for (size_t i = 0; i < 3000; i++)
		e[i].len = (uint8_t)(1 + (i * 7919) % 255);
	{
		size_t nb = ext4_dir_split(e, 3000, 0, NULL), k;
		size_t *st = malloc(nb * sizeof(*st));

		must(st != NULL, "malloc");
		CHECK(ext4_dir_split(e, 3000, 0, st) == nb, "count without and with starts");
		for (k = 0; k < nb; k++) {
			size_t t = k + 1 < nb ? st[k + 1] : 3000, used = 0, i;

			for (i = st[k]; i < t; i++)
				used += EXT2_DIR_REC_LEN(e[i].len);
			CHECK(used <= LEAF_USABLE, "leaf %zu holds %zu bytes", k, used);
			if (k + 1 < nb)
				CHECK(used + EXT2_DIR_REC_LEN(e[t].len) > LEAF_USABLE,
				      "leaf %zu: entry %zu would have fitted", k, t);
		}
		free(st);
	}
	free(e);
	free(s);
}

static void test_plan(void)
{
	static const uint32_t seed[4] = { 1, 2, 3, 4 };
	struct dir_plan p = { 0 };
	struct dent *e;
	char *s;
	size_t i;

	e = names(1000, 12, &s);
	CHECK(ext4_dir_plan(e, 203, 1, seed, &p) == 0 && p.nblocks == 1 && !p.nleaves,
	      "203 names: one linear block (%zu blocks, %zu leaves)", p.nblocks, p.nleaves);
	ext4_dir_plan_free(&p);
	/* 204 x 20 bytes fit one leaf (no dots there): root + 1 leaf. */
	CHECK(ext4_dir_plan(e, 204, 1, seed, &p) == 0 && p.nleaves == 1 &&
	      p.nidx == 0 && p.nblocks == 1 + p.nleaves,
	      "204 names: an htree (%zu blocks, %zu leaves)", p.nblocks, p.nleaves);
	for (i = 1; p.he && i < 204; i++)
		CHECK(p.he[i - 1].hash < p.he[i].hash || (p.he[i - 1].hash == p.he[i].hash &&
		      p.he[i - 1].minor < p.he[i].minor), "leaves in hash order at %zu", i);
	ext4_dir_plan_free(&p);
	/* All 1000: every name once, in (hash, minor) order. */
	CHECK(ext4_dir_plan(e, 1000, 1, seed, &p) == 0 && p.nleaves > 1, "1000 names");
	{
		char seen[1000] = { 0 };

		for (i = 0; p.he && i < 1000; i++) {
			seen[atoi(p.he[i].name)]++;
			if (i)
				CHECK(p.he[i - 1].hash < p.he[i].hash ||
				      (p.he[i - 1].hash == p.he[i].hash &&
				       p.he[i - 1].minor < p.he[i].minor), "hash order at %zu", i);
		}
		for (i = 0; i < 1000; i++)
			CHECK(seen[i] == 1, "name %zu sorted %d times", i, seen[i]);
	}
	ext4_dir_plan_free(&p);
	/* lost+found: spare blocks, linear even when it needs more than one. */
	CHECK(ext4_dir_plan(NULL, 0, LPF_BLOCKS, seed, &p) == 0 && p.nblocks == LPF_BLOCKS &&
	      !p.nleaves, "empty lost+found: %u linear blocks", LPF_BLOCKS);
	ext4_dir_plan_free(&p);
	CHECK(ext4_dir_plan(e, 1000, LPF_BLOCKS, seed, &p) == 0 && !p.nleaves &&
	      p.nblocks == ext4_dir_split(e, 1000, DOTS_LEN, NULL),
	      "full lost+found: linear, %zu blocks", p.nblocks);
	ext4_dir_plan_free(&p);
	free(e);
	free(s);
}

/* Entries (inode != 0) in each of the directory's blocks, read back. */
static int count_entries(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode *in,
			 size_t nblocks, size_t *count)
{
	uint8_t buf[BS];
	size_t k;

	for (k = 0; k < nblocks; k++) {
		blk64_t pblk = 0;
		unsigned off = 0;

		count[k] = 0;
		if (ext2fs_bmap2(fs, ino, in, NULL, 0, k, NULL, &pblk) || !pblk ||
		    ext2fs_read_dir_block4(fs, pblk, buf, 0, ino))
			return -1;
		while (off < BS) {
			struct ext2_dir_entry *de = (struct ext2_dir_entry *)(void *)(buf + off);
			unsigned rl = 0;

			if (ext2fs_get_rec_len(fs, de, &rl) || rl < 8)
				return -1;
			if (de->inode)
				count[k]++;
			off += rl;
		}
	}
	return 0;
}

/* Build a tree whose /dir holds n empty files with names of length len;
 * compare the directory in the image with the plan. */
static void check_built(const char *scratch, const char *dir, size_t n, size_t len)
{
	char root[512], path[1024], img[600];
	struct tree_scan_opts so = { .xattrs = false, .threads = 1 };
	struct ext4_opts o = { .label = "t", .fs_time = 1700000000 };
	const struct tree_node *d;
	struct dent *e = NULL;
	size_t ecap = 0, ne, nsub, minb, i, k, *count = NULL, *want = NULL;
	struct dir_plan p = { 0 };
	struct regions map;
	struct tree t;
	uint64_t need = 0, off;
	uint32_t seed[4];
	ext2_filsys fs = NULL;
	ext2_ino_t ino;
	struct ext2_inode in;
	static uint8_t buf[1 << 16];
	int fd;

	snprintf(root, sizeof(root), "%s/t-%s-%zu-%zu", scratch, dir, n, len);
	snprintf(path, sizeof(path), "%s/%s", root, dir);
	must(mkdir(root, 0755) == 0 && mkdir(path, 0755) == 0, root);
	for (i = 0; i < n; i++) {
		char name[2048];

		snprintf(name, sizeof(name), "%s/%0*zu", path, (int)(len & 0xff), i);
		put(name, "");
	}
	must(tree_scan(&t, root, &so) == 0, "tree_scan");
	regions_init(&map);
	memset(o.uuid, 0x42, sizeof(o.uuid));
	memset(o.hash_seed, 0x17, sizeof(o.hash_seed));
	must(ext4_size_needed(&t, NULL, o.hash_seed, &need) == 0, "ext4_size_needed");
	o.part_size = (need + need / 4 + 4095) & ~4095ull;
	if (o.part_size < EXT4_MIN_BLOCKS * BS)
		o.part_size = EXT4_MIN_BLOCKS * BS;
	must(ext4_build(&t, NULL, &o, &map) == 0, "ext4_build");
	must(regions_finalize(&map, o.part_size) == 0, "regions_finalize");

	snprintf(img, sizeof(img), "%s.img", root);
	fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	must(fd >= 0 && ftruncate(fd, (off_t)o.part_size) == 0, img);
	for (off = 0; off < o.part_size;) {
		struct region gap;
		const struct region *g = regions_piece(&map, regions_find(&map, off), off,
						       &gap);
		uint64_t end = g->start + g->len;
		size_t m = end - off < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);

		if (g->kind == REGION_ZERO) {
			off = end;
			continue;
		}
		must(regions_read(&map, buf, m, off, NULL, NULL) >= 0 &&
		     pwrite(fd, buf, m, (off_t)off) == (ssize_t)m, "image");
		off += m;
	}
	close(fd);

	/* The plan, as the estimate and the build make it. */
	d = tree_child(t.root, dir);
	must(d != NULL, dir);
	memcpy(seed, o.hash_seed, sizeof(seed));
	must(ext4_dir_entries(&t, NULL, d, &e, &ecap, &ne, &nsub, &minb) == 0 && ne == n,
	     "ext4_dir_entries");
	must(ext4_dir_plan(e, ne, minb, seed, &p) == 0, "ext4_dir_plan");
	want = calloc(p.nblocks, sizeof(*want));
	count = calloc(p.nblocks, sizeof(*count));
	must(want && count, "calloc");
	if (p.nleaves) {
		want[0] = 2;                    /* the root: ".", ".." */
		for (k = 0; k < p.nleaves; k++)
			want[1 + p.nidx + k] = (k + 1 < p.nleaves ? p.starts[k + 1] : ne) -
					       p.starts[k];
	} else {
		size_t *st = calloc(ne + 1, sizeof(*st));
		size_t nb = ext4_dir_split(e, ne, DOTS_LEN, st);

		must(st != NULL, "calloc");
		for (k = 0; k < nb; k++)
			want[k] = (k + 1 < nb ? st[k + 1] : ne) - st[k] + (k ? 0 : 2);
		free(st);
	}

	/* The directory as built. */
	must(ext2fs_open(img, 0, 0, 0, unix_io_manager, &fs) == 0, "ext2fs_open");
	must(ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, dir, &ino) == 0 &&
	     ext2fs_read_inode(fs, ino, &in) == 0, "the directory in the image");
	CHECK(EXT2_I_SIZE(&in) == p.nblocks * BS, "/%s, %zu names of %zu bytes: %u blocks built, "
	      "%zu planned", dir, n, len, (unsigned)(EXT2_I_SIZE(&in) / BS), p.nblocks);
	CHECK(!!(in.i_flags & EXT2_INDEX_FL) == !!p.nleaves, "/%s, %zu names of %zu bytes: "
	      "index flag %d, plan %s", dir, n, len, !!(in.i_flags & EXT2_INDEX_FL),
	      p.nleaves ? "htree" : "linear");
	if (EXT2_I_SIZE(&in) == p.nblocks * BS) {
		CHECK(count_entries(fs, ino, &in, p.nblocks, count) == 0,
		      "reading the blocks of /%s", dir);
		for (k = 0; k < p.nblocks; k++)
			CHECK(count[k] == want[k], "/%s, %zu names of %zu bytes: block %zu "
			      "holds %zu entries, %zu planned", dir, n, len, k, count[k], want[k]);
	}
	ext2fs_close_free(&fs);
	ext4_dir_plan_free(&p);
	free(e);
	free(want);
	free(count);
	regions_free(&map);
	tree_free(&t);
	unlink(img);
}

int main(void)
{
	static const size_t counts[] = { 0, 1, 100, 202, 203, 204, 205, 400, 1500 };
	static const size_t lens[] = { 5, 12, 60, 255 };
	char scratch[] = "/tmp/test_ext4_dir.XXXXXX";

	initialize_ext2_error_table();
	test_split();
	test_plan();
	must(mkdtemp(scratch) != NULL, "mkdtemp");
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++)
			check_built(scratch, "d", counts[i], lens[j]);
	check_built(scratch, "d", 8000, 255);   /* more leaves than the root indexes */
	/* lost+found stays linear, with spare blocks; full, it packs blocks. */
	check_built(scratch, "lost+found", 0, 5);
	check_built(scratch, "lost+found", 400, 4);
	check_built(scratch, "lost+found", 1500, 12);
	return finish(scratch);
}
