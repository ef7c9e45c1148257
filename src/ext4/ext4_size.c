/* ext4_size.c - the census of the tree and the size it needs.
 *
 * The census walks the tree as the build will lay it out: a directory's
 * blocks come from ext4_dir_plan(), an inode's xattr block from
 * ext4_xattr_in_block(), a file's data blocks from ext4_data_walk(), the
 * functions the build itself uses. What libext2fs decides alone is
 * estimated here, on the safe side: extent tree blocks, group metadata
 * (bitmaps, inode tables, descriptors and their backups), the journal, and
 * a margin for allocation splits. ext4_build() runs the same census as its
 * pass 1 (inode count, hard-link counts).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ext4_i.h"

/* ---- hard links: (st_dev, st_ino) -> ext4 inode ------------------------- */

static size_t hl_hash(dev_t dev, ino_t ino, size_t cap)
{
	uint64_t h = ((uint64_t)dev * 0x9E3779B97F4A7C15ull) ^
		     ((uint64_t)ino * 0xC2B2AE3D27D4EB4Full);

	return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

struct hl_ent *ext4_hl_find(struct hl_map *m, dev_t dev, ino_t ino)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = hl_hash(dev, ino, m->cap); m->v[i].count;
	     i = (i + 1) & (m->cap - 1))
		if (m->v[i].dev == dev && m->v[i].ino == ino)
			return &m->v[i];
	return NULL;
}

int ext4_hl_add(struct hl_map *m, dev_t dev, ino_t ino)
{
	struct hl_ent *e = ext4_hl_find(m, dev, ino);
	size_t i;

	if (e) {
		e->count++;
		return 0;
	}
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 256, k;
		struct hl_ent *nv = calloc(ncap, sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		for (k = 0; k < m->cap; k++) {
			if (!m->v[k].count)
				continue;
			for (i = hl_hash(m->v[k].dev, m->v[k].ino, ncap);
			     nv[i].count; i = (i + 1) & (ncap - 1))
				;
			nv[i] = m->v[k];
		}
		free(m->v);
		m->v = nv;
		m->cap = ncap;
	}
	for (i = hl_hash(dev, ino, m->cap); m->v[i].count;
	     i = (i + 1) & (m->cap - 1))
		;
	m->v[i] = (struct hl_ent){ .dev = dev, .ino = ino, .count = 1 };
	m->n++;
	return 0;
}

/* ---- the census ------------------------------------------------------------ */

/* Extent tree blocks for a file of `blocks` blocks in `segments` pieces:
 * four extents fit in the inode. Allow for splits at group boundaries. */
static uint64_t extent_blocks(uint64_t blocks, uint64_t segments)
{
	uint64_t ext = segments + 2 * div_up(blocks, EXTENT_MAX);

	if (ext <= 4)
		return 0;
	return div_up(ext, EXTENTS_PER_BLK) + 1;
}

struct data_count {
	uint64_t blocks, segments;
	uint64_t end;           /* end of the segments so far */
};

/* One segment of ext4_data_walk(): a block two segments share counts once. */
static int data_count_fn(void *ctx, uint64_t first, uint64_t last)
{
	struct data_count *dc = ctx;

	if (first == 0)         /* the first segment, or the whole file */
		*dc = (struct data_count){ 0, 0, 0 };
	if (first < dc->end)
		first = dc->end;
	if (last > first)
		dc->blocks += last - first;
	if (last > dc->end)
		dc->end = last;
	dc->segments++;
	return 0;
}

/* The walk's state: what it counts into, and scratch arrays reused from
 * one directory to the next. */
struct walk {
	const struct tree *t;
	const struct tree_node *skip;
	uint32_t seed[4];               /* as s_hash_seed holds it */
	struct hl_map *links;
	bool count_links;
	struct census *c;
	struct dent *e;
	size_t ecap;
	struct dir_plan plan;
};

/* Blocks of directory d: those ext4_dir_create() writes, by the same plan,
 * and its extent tree. */
static int dir_blocks(struct walk *w, const struct tree_node *d, uint64_t *blocks)
{
	size_t n, nsub, min_blocks;
	int ret;

	ret = ext4_dir_entries(w->t, w->skip, d, &w->e, &w->ecap, &n, &nsub, &min_blocks);
	if (!ret)
		ret = ext4_dir_plan(w->e, n, min_blocks, w->seed, &w->plan);
	if (ret)
		return ret;
	*blocks = w->plan.nblocks + extent_blocks(w->plan.nblocks, 1);
	return 0;
}

static int walk_dir(struct walk *w, const struct tree_node *d)
{
	struct census *c = w->c;
	uint64_t blocks;
	size_t i;
	int ret;

	ret = dir_blocks(w, d, &blocks);
	if (ret)
		return ret;
	c->nodes++;
	c->blocks += blocks + ext4_xattr_in_block(d);
	if (d == w->skip)
		return 0;
	for (i = 0; i < d->nkids; i++) {
		const struct tree_node *k = d->kids[i];

		if (S_ISDIR(k->st.st_mode)) {
			ret = walk_dir(w, k);
			if (ret)
				return ret;
			continue;
		}
		if (is_multilink(k)) {
			bool seen = ext4_hl_find(w->links, k->st.st_dev,
						 k->st.st_ino) != NULL;

			if (w->count_links || !seen) {
				ret = ext4_hl_add(w->links, k->st.st_dev, k->st.st_ino);
				if (ret)
					return ret;
			}
			if (seen)
				continue;       /* one inode, one data mapping */
		}
		c->nodes++;
		c->blocks += ext4_xattr_in_block(k);
		if (S_ISREG(k->st.st_mode) && k->st.st_size > 0) {
			struct data_count dc = { 0, 0, 0 };

			ret = ext4_data_walk(w->t, k, false, data_count_fn, &dc);
			if (ret)
				return ret;
			c->blocks += dc.blocks + extent_blocks(dc.blocks, dc.segments);
		} else if (S_ISLNK(k->st.st_mode) && k->link &&
			   strlen(k->link) >= sizeof(((struct ext2_inode *)0)->i_block)) {
			c->blocks++;
		}
	}
	return 0;
}

int ext4_census(const struct tree *t, const struct tree_node *skip,
		const uint8_t hash_seed[16], struct hl_map *links, bool count_links,
		struct census *c)
{
	struct walk w = { .t = t, .skip = skip, .links = links,
			  .count_links = count_links, .c = c };
	int ret;

	memcpy(w.seed, hash_seed, sizeof(w.seed));
	ret = walk_dir(&w, t->root);
	free(w.e);
	ext4_dir_plan_free(&w.plan);
	return ret;
}

/* Inodes for a tree of `nodes` inodes: the tree, the reserved ones,
 * lost+found, and headroom for the system to grow. */
static uint64_t min_inodes(uint64_t nodes)
{
	uint64_t headroom = nodes / 4 > 1024 ? nodes / 4 : 1024;

	return nodes + EXT2_GOOD_OLD_FIRST_INO + 1 + headroom;
}

/* Filesystem metadata blocks for a filesystem of `blocks` blocks with
 * `inodes` inodes, journal excluded. */
static uint64_t fs_overhead(uint64_t blocks, uint64_t inodes)
{
	uint64_t groups = div_up(blocks, 8 * BS);
	uint64_t desc_blocks = div_up(groups, BS / EXT2_MIN_DESC_SIZE_64BIT);
	uint64_t max_blocks = blocks * 1024 < 0xffffffffull ?
			      blocks * 1024 : 0xffffffffull;
	uint64_t rsv = div_up(div_up(max_blocks, 8 * BS),
			      BS / EXT2_MIN_DESC_SIZE_64BIT);
	uint64_t backups = 0, g, p;

	rsv = rsv > desc_blocks ? rsv - desc_blocks : 0;
	if (rsv > BS / 4)
		rsv = BS / 4;
	/* sparse_super: groups 0, 1 and powers of 3, 5, 7 hold backups. */
	for (g = 0; g < groups; g++) {
		if (g <= 1) {
			backups++;
			continue;
		}
		for (p = 3; p <= 7; p += 2) {
			uint64_t x = g;

			while (x % p == 0)
				x /= p;
			if (x == 1) {
				backups++;
				break;
			}
		}
	}
	/* Per group: two bitmaps and whole inode table blocks; per backup
	 * group: superblock, descriptors, reserved descriptors; the resize
	 * inode's indirect block; bad-block inode and reserved inodes use no
	 * blocks. */
	return groups * 2 + div_up(div_up(inodes, groups) * INODE_SIZE, BS) * groups +
	       groups + backups * (1 + desc_blocks + rsv) + 2;
}

/* The size the filesystem needs for census c and `inodes` inodes. */
static uint64_t fs_bytes(const struct census *c, uint64_t inodes)
{
	uint64_t base = c->blocks + LPF_BLOCKS, blocks = base, prev = 0;
	int jb, i;

	/* Overhead depends on the size: iterate to a fixed point. */
	for (i = 0; i < 16 && blocks != prev; i++) {
		prev = blocks;
		blocks = base + fs_overhead(prev, inodes);
	}
	/* The journal grows with the filesystem: size it for a filesystem
	 * four times larger, which covers the free-space margin and the
	 * power-of-two rounding the image adds. */
	jb = ext2fs_default_journal_size(blocks * 4);
	if (jb > 0)
		blocks += (uint64_t)jb;
	/* Margin: allocation splits and rounding, 2 % + 1 MiB. */
	blocks += blocks / 50 + (1u << 20) / BS;
	return blocks * BS;
}

int ext4_size_needed(const struct tree *t, const struct tree_node *skip,
		     const uint8_t hash_seed[16], uint64_t *bytes)
{
	struct hl_map links = { NULL, 0, 0 };
	struct census c = { 0, 0 };
	int ret;

	ext4_init_errors();
	ret = ext4_census(t, skip, hash_seed, &links, false, &c);
	free(links.v);
	if (ret)
		return ret;
	*bytes = fs_bytes(&c, min_inodes(c.nodes));
	return 0;
}

uint64_t ext4_choose_inodes(const struct ext4_opts *o, const struct census *c)
{
	uint64_t min = min_inodes(c->nodes), blocks = o->part_size / BS;
	uint64_t need = fs_bytes(c, min) / BS, spare, ratio, n, cap;

	if (o->inodes)
		return o->inodes;
	/* mke2fs: one inode per 16 KiB (4 KiB below 512 MiB), but never let
	 * the extra inode tables eat more than half of the spare space. */
	ratio = o->part_size / (o->part_size < 512 * 1024 * 1024ull ?
				4096 : 16384);
	spare = blocks > need ? blocks - need : 0;
	n = min + spare / 2 * (BS / INODE_SIZE);
	if (n > ratio)
		n = ratio;
	if (n < min)
		n = min;
	/* One bitmap block per group: at most 32768 inodes a group (more
	 * only when the tree needs them: ext2fs_initialize then makes
	 * smaller groups). */
	cap = div_up(blocks, 8 * BS) * 8 * BS;
	if (n > cap)
		n = cap > min ? cap : min;
	if (n > 0xffffffffull - 1)
		n = 0xffffffffull - 1;
	return n;
}

