/* ext4_dir.c - directories: entries, leaf packing, the htree, the tree walk.
 *
 * Directories are written here rather than through ext2fs_link (which
 * rescans the whole directory for every name): every child's inode number is
 * known before its parent's blocks are written, so each directory is packed
 * once, in the tree's sorted order. A directory that needs more than one
 * block gets an htree index (one or two levels), as the kernel would give it.
 *
 * The plan (ext4_dir_entries, ext4_dir_split, ext4_dir_plan) is pure: the
 * size estimate counts a directory's blocks with it, the build writes by it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <et/com_err.h>

#include "ext4_i.h"
#include "log.h"
#include "vector.h"

static uint8_t dirent_type(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:  return EXT2_FT_REG_FILE;
	case S_IFDIR:  return EXT2_FT_DIR;
	case S_IFCHR:  return EXT2_FT_CHRDEV;
	case S_IFBLK:  return EXT2_FT_BLKDEV;
	case S_IFIFO:  return EXT2_FT_FIFO;
	case S_IFSOCK: return EXT2_FT_SOCK;
	case S_IFLNK:  return EXT2_FT_SYMLINK;
	default:       return EXT2_FT_UNKNOWN;
	}
}

/* ---- the plan ---------------------------------------------------------------- */

int ext4_dir_entries(const struct tree *t, const struct tree_node *skip,
		     const struct tree_node *d, struct dent **e, size_t *cap, size_t *n,
		     size_t *nsub, size_t *min_blocks)
{
	size_t nk = d == skip ? 0 : d->nkids, i;
	bool lpf = d == t->root && !tree_child(t->root, "lost+found");
	struct dent *v;
	int ret;

	*n = *nsub = 0;
	/* A lost+found from the tree keeps room for e2fsck too. */
	*min_blocks = d->parent == t->root && !strcmp(d->name, "lost+found") ?
		      LPF_BLOCKS : 1;
	ret = VEC_RESERVE(*e, *cap, nk + 1, 64);
	if (ret < 0)
		return ret;
	v = *e;
	for (i = 0; i < nk; i++) {
		const struct tree_node *k = d->kids[i];
		size_t len = strlen(k->name);

		if (len == 0 || len > EXT2_NAME_LEN) {
			char *p = ext4_path(k);

			log_error("ext4: /%s: name longer than %d bytes", p,
				  EXT2_NAME_LEN);
			ext4_free_path(p);
			return -ENAMETOOLONG;
		}
		/* The synthesised lost+found sorts among the kids. */
		if (lpf && strcmp("lost+found", k->name) < 0) {
			v[(*n)++] = (struct dent){ .name = "lost+found", .len = 10,
						   .type = EXT2_FT_DIR };
			(*nsub)++;
			lpf = false;
		}
		if (S_ISDIR(k->st.st_mode))
			(*nsub)++;
		v[(*n)++] = (struct dent){ .name = k->name, .len = (uint8_t)len,
			.type = dirent_type(k->st.st_mode), .node = k };
	}
	if (lpf) {
		v[(*n)++] = (struct dent){ .name = "lost+found", .len = 10,
					   .type = EXT2_FT_DIR };
		(*nsub)++;
	}
	return 0;
}

size_t ext4_dir_split(const struct dent *e, size_t n, unsigned used0, size_t *starts)
{
	size_t i, blocks = used0 ? 1 : 0;
	unsigned used = used0 ? used0 : LEAF_USABLE;

	if (used0 && starts)
		starts[0] = 0;
	for (i = 0; i < n; i++) {
		unsigned rl = EXT2_DIR_REC_LEN(e[i].len);

		if (used + rl > LEAF_USABLE) {
			if (starts)
				starts[blocks] = i;
			blocks++;
			used = 0;
		}
		used += rl;
	}
	return blocks;
}

static int cmp_dent_hash(const void *pa, const void *pb)
{
	const struct dent *a = pa, *b = pb;
	int c;

	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	c = memcmp(a->name, b->name, a->len < b->len ? a->len : b->len);
	return c ? c : (int)a->len - (int)b->len;
}

/* Sort he[0..n) into cmp_dent_hash's order: a stable LSD radix sort on
 * (hash, minor), a byte a pass, then each run of equal (hash, minor) (a
 * 64-bit collision: practically never) by name. qsort took most of the
 * census's time on large directories. tmp: n entries of scratch. */
static void sort_by_hash(struct dent *he, size_t n, struct dent *tmp)
{
	struct dent *src = he, *dst = tmp, *swap;
	size_t count[256], i, j;
	unsigned pass;

	for (pass = 0; pass < 8; pass++) {
		unsigned shift = (pass & 3) * 8;
		size_t sum = 0;

		memset(count, 0, sizeof(count));
		for (i = 0; i < n; i++)
			count[((pass < 4 ? src[i].minor : src[i].hash) >> shift) & 0xff]++;
		for (i = 0; i < 256; i++) {
			size_t c = count[i];

			count[i] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			dst[count[((pass < 4 ? src[i].minor : src[i].hash) >> shift) & 0xff]++] =
				src[i];
		swap = src;
		src = dst;
		dst = swap;
	}
	/* Eight passes: the result is back in he. */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && he[j - 1].hash == he[j].hash &&
			    he[j - 1].minor == he[j].minor &&
			    cmp_dent_hash(&he[j - 1], &he[j]) > 0; j--) {
			struct dent t = he[j];

			he[j] = he[j - 1];
			he[j - 1] = t;
		}
}

int ext4_dir_plan(const struct dent *e, size_t n, size_t min_blocks,
		  const uint32_t hash_seed[4], struct dir_plan *p)
{
	size_t i;

	p->nleaves = p->nidx = 0;
	p->nblocks = ext4_dir_split(e, n, DOTS_LEN, NULL);
	if (p->nblocks > 1 && min_blocks <= 1) {
		if (VEC_RESERVE(p->he, p->he_cap, n, 64) < 0 ||
		    VEC_RESERVE(p->tmp, p->tmp_cap, n, 64) < 0 ||
		    VEC_RESERVE(p->starts, p->starts_cap, n, 64) < 0)
			return -ENOMEM;
		memcpy(p->he, e, n * sizeof(*p->he));
		for (i = 0; i < n; i++) {
			errcode_t err = ext2fs_dirhash2(HASH_VERSION, p->he[i].name,
							p->he[i].len, NULL, 0, hash_seed,
							&p->he[i].hash, &p->he[i].minor);

			if (err) {
				log_error("ext4: hashing a name: %s", error_message(err));
				return ext4_err(err);
			}
		}
		sort_by_hash(p->he, n, p->tmp);
		/* Leaves, and second-level index blocks when the root cannot
		 * index every leaf. When even two levels are not enough
		 * (largedir territory) the directory stays linear: valid,
		 * only slower to search. */
		p->nleaves = ext4_dir_split(p->he, n, 0, p->starts);
		if (p->nleaves > DX_ROOT_LIMIT)
			p->nidx = div_up(p->nleaves, DX_NODE_LIMIT);
		if (p->nidx > DX_ROOT_LIMIT)
			p->nleaves = p->nidx = 0;
		else
			p->nblocks = 1 + p->nidx + p->nleaves;
	}
	if (p->nblocks < min_blocks)
		p->nblocks = min_blocks;
	return 0;
}

void ext4_dir_plan_free(struct dir_plan *p)
{
	free(p->he);
	free(p->tmp);
	free(p->starts);
	memset(p, 0, sizeof(*p));
}

/* ---- writing ----------------------------------------------------------------- */

/* Fill buf with a leaf block holding e[s..t): the last record stretches to
 * the checksum tail; an empty block holds one unused record. */
static void dir_fill_leaf(ext2_filsys fs, uint8_t *buf, const struct dent *e,
			  size_t s, size_t t)
{
	struct ext2_dir_entry *de = NULL;
	unsigned off = 0, last = 0;
	size_t i;

	memset(buf, 0, BS);
	for (i = s; i < t; i++) {
		de = (struct ext2_dir_entry *)(void *)(buf + off);
		de->inode = e[i].ino;
		ext2fs_set_rec_len(fs, EXT2_DIR_REC_LEN(e[i].len), de);
		ext2fs_dirent_set_name_len(de, e[i].len);
		ext2fs_dirent_set_file_type(de, e[i].type);
		memcpy(de->name, e[i].name, e[i].len);
		last = off;
		off += EXT2_DIR_REC_LEN(e[i].len);
	}
	if (!de) {
		de = (struct ext2_dir_entry *)(void *)buf;
		last = 0;
	}
	ext2fs_set_rec_len(fs, LEAF_USABLE - last, de);
	ext2fs_initialize_dirent_tail(fs, EXT2_DIRENT_TAIL(buf, BS));
}

static int dir_write_block(struct build *b, ext2_ino_t ino, blk64_t pblk,
			   uint8_t *buf)
{
	errcode_t err = ext2fs_write_dir_block4(b->fs, pblk, buf, 0, ino);

	if (err) {
		log_error("ext4: writing block %llu of directory inode %u: %s",
			  (unsigned long long)pblk, ino, error_message(err));
		return ext4_err(err);
	}
	return 0;
}

/* Leaf k's index hash: its first entry's hash, with the low bit set when
 * the previous leaf ends with the same hash (a collision run continues). */
static uint32_t leaf_hash(const struct dent *e, const struct dir_plan *h,
			  size_t k)
{
	size_t s = h->starts[k];
	uint32_t hv = e[s].hash;

	if (s > 0 && e[s - 1].hash == hv)
		hv |= 1;
	return hv;
}

static void dx_put(uint8_t *entries, size_t i, uint32_t hash, uint32_t blk)
{
	struct ext2_dx_entry *d = (struct ext2_dx_entry *)(void *)entries + i;

	if (i)
		d->hash = ext2fs_cpu_to_le32(hash);
	d->block = ext2fs_cpu_to_le32(blk);
}

static void dx_countlimit(uint8_t *at, size_t limit, size_t count)
{
	struct ext2_dx_countlimit *c = (struct ext2_dx_countlimit *)(void *)at;

	c->limit = ext2fs_cpu_to_le16((uint16_t)limit);
	c->count = ext2fs_cpu_to_le16((uint16_t)count);
}

/* Write an htree directory: block 0 the root, blocks 1..nidx the second
 * level (if any), then the leaves. */
static int dir_write_htree(struct build *b, ext2_ino_t ino, ext2_ino_t parent,
			   const struct dent *e, size_t n,
			   const struct dir_plan *h, const blk64_t *pblk,
			   uint8_t *buf)
{
	size_t leaf0 = 1 + h->nidx, k, j;
	struct ext2_dir_entry *de;
	struct ext2_dx_root_info *ri;
	int ret;

	/* Root: ".", ".." stretching to the block end, then the index. */
	memset(buf, 0, BS);
	de = (struct ext2_dir_entry *)(void *)buf;
	de->inode = ino;
	ext2fs_set_rec_len(b->fs, 12, de);
	ext2fs_dirent_set_name_len(de, 1);
	ext2fs_dirent_set_file_type(de, EXT2_FT_DIR);
	de->name[0] = '.';
	de = (struct ext2_dir_entry *)(void *)(buf + 12);
	de->inode = parent;
	ext2fs_set_rec_len(b->fs, BS - 12, de);
	ext2fs_dirent_set_name_len(de, 2);
	ext2fs_dirent_set_file_type(de, EXT2_FT_DIR);
	de->name[0] = de->name[1] = '.';
	ri = (struct ext2_dx_root_info *)(void *)(buf + 24);
	ri->hash_version = b->fs->super->s_def_hash_version;
	ri->info_length = 8;
	ri->indirect_levels = h->nidx ? 1 : 0;
	if (!h->nidx) {
		dx_countlimit(buf + 32, DX_ROOT_LIMIT, h->nleaves);
		for (k = 0; k < h->nleaves; k++)
			dx_put(buf + 32, k, leaf_hash(e, h, k),
			       (uint32_t)(leaf0 + k));
	} else {
		dx_countlimit(buf + 32, DX_ROOT_LIMIT, h->nidx);
		for (j = 0; j < h->nidx; j++)
			dx_put(buf + 32, j, leaf_hash(e, h, j * DX_NODE_LIMIT),
			       (uint32_t)(1 + j));
	}
	ret = dir_write_block(b, ino, pblk[0], buf);
	if (ret)
		return ret;

	/* Second level: each node indexes up to DX_NODE_LIMIT leaves behind
	 * a fake empty record spanning the block. */
	for (j = 0; j < h->nidx; j++) {
		size_t k0 = j * DX_NODE_LIMIT, cnt = h->nleaves - k0;

		if (cnt > DX_NODE_LIMIT)
			cnt = DX_NODE_LIMIT;
		memset(buf, 0, BS);
		de = (struct ext2_dir_entry *)(void *)buf;
		ext2fs_set_rec_len(b->fs, BS, de);
		dx_countlimit(buf + 8, DX_NODE_LIMIT, cnt);
		for (k = 0; k < cnt; k++)
			dx_put(buf + 8, k, leaf_hash(e, h, k0 + k),
			       (uint32_t)(leaf0 + k0 + k));
		ret = dir_write_block(b, ino, pblk[1 + j], buf);
		if (ret)
			return ret;
	}

	for (k = 0; k < h->nleaves; k++) {
		size_t s = h->starts[k];
		size_t t = k + 1 < h->nleaves ? h->starts[k + 1] : n;

		dir_fill_leaf(b->fs, buf, e, s, t);
		ret = dir_write_block(b, ino, pblk[leaf0 + k], buf);
		if (ret)
			return ret;
	}
	return 0;
}

/* Write a linear directory: ".", ".." and e[0..n) in nblocks blocks, as
 * ext4_dir_split() packs them (lost+found keeps empty blocks for e2fsck). */
static int dir_write_linear(struct build *b, ext2_ino_t ino, ext2_ino_t parent,
			    const struct dent *e, size_t n, size_t nblocks,
			    const blk64_t *pblk, uint8_t *buf)
{
	struct dent *all;
	size_t *starts, nb, k, m = n + 2;
	int ret = 0;

	all = malloc(m * sizeof(*all));
	starts = malloc((n + 1) * sizeof(*starts));
	if (!all || !starts) {
		ret = -ENOMEM;
		goto out;
	}
	all[0] = (struct dent){ .name = ".", .len = 1, .type = EXT2_FT_DIR,
				.ino = ino };
	all[1] = (struct dent){ .name = "..", .len = 2, .type = EXT2_FT_DIR,
				.ino = parent };
	if (n)
		memcpy(all + 2, e, n * sizeof(*e));
	/* starts[] index e; in all, block 0 begins with the dots. */
	nb = ext4_dir_split(e, n, DOTS_LEN, starts);
	for (k = 0; k < nblocks && !ret; k++) {
		if (k < nb)
			dir_fill_leaf(b->fs, buf, all, k ? starts[k] + 2 : 0,
				      k + 1 < nb ? starts[k + 1] + 2 : m);
		else
			dir_fill_leaf(b->fs, buf, all, 0, 0);
		ret = dir_write_block(b, ino, pblk[k], buf);
	}
out:
	free(all);
	free(starts);
	return ret;
}

/* Write directory inode ino (attributes from st, xattrs from xa) holding
 * kids e[0..n) in name order, as ext4_dir_plan() lays it out. nsub:
 * subdirectories among them (for the link count). */
int ext4_dir_create(struct build *b, ext2_ino_t ino, ext2_ino_t parent,
		    const struct tree_stat *st, const struct tree_node *xa,
		    const struct dent *e, size_t n, size_t nsub, size_t min_blocks)
{
	struct dir_plan p = { 0 };
	uint32_t links = 2 + (uint32_t)nsub;
	blk64_t *pblk = NULL;
	uint8_t *buf = NULL;
	union inode_buf ib;
	errcode_t err;
	int ret;

	/* dir_nlink: a directory with too many subdirectories counts 1. */
	if (2 + nsub > EXT2_LINK_MAX)
		links = 1;
	ret = ext4_dir_plan(e, n, min_blocks, b->fs->super->s_hash_seed, &p);
	if (ret)
		goto out;
	ext4_inode_init(b, &ib, st, links);
	err = ext2fs_inode_size_set(b->fs, INODE(&ib), (uint64_t)p.nblocks * BS);
	if (err) {
		ret = ext4_err(err);
		goto out;
	}
	ret = ext4_inode_init_extents(b, ino, &ib);
	if (ret)
		goto out;
	if (p.nleaves)
		ib.in.i_flags |= EXT2_INDEX_FL;
	ext4_inode_hold(b, ino, &ib);
	ret = ext4_alloc_blocks(b, ino, &ib, p.nblocks, &pblk);
	ret = ext4_inode_commit(b, ino, &ib, ret);
	if (!ret)
		ret = ext4_set_xattrs(b, ino, xa);
	if (ret)
		goto out;
	buf = malloc(BS);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	if (p.nleaves) {
		ret = dir_write_htree(b, ino, parent, p.he, n, &p, pblk, buf);
		b->htrees++;
	} else {
		ret = dir_write_linear(b, ino, parent, e, n, p.nblocks, pblk, buf);
	}
	b->ndirs++;
out:
	ext4_dir_plan_free(&p);
	free(pblk);
	free(buf);
	return ret;
}

/* ---- the tree walk ------------------------------------------------------------ */

/* Build directory node d as inode ino inside parent: create every child's
 * inode, write d's blocks, then recurse into the subdirectories. */
int ext4_build_dir(struct build *b, const struct tree_node *d, ext2_ino_t ino,
		   ext2_ino_t parent)
{
	struct dent *e = NULL;
	size_t cap = 0, n = 0, nsub, min_blocks, i;
	int ret;

	ret = ext4_dir_entries(b->t, b->skip, d, &e, &cap, &n, &nsub, &min_blocks);
	for (i = 0; i < n && !ret; i++) {
		const struct tree_node *k = e[i].node;

		if (!k)
			e[i].ino = b->lpf_ino;
		else if (S_ISDIR(k->st.st_mode))
			ret = ext4_inode_new(b, ino, S_IFDIR, &e[i].ino);
		else
			ret = ext4_make_nondir(b, ino, k, &e[i].ino);
	}
	if (!ret)
		ret = ext4_dir_create(b, ino, parent, &d->st, d, e, n, nsub, min_blocks);
	for (i = 0; i < n && !ret; i++)
		if (e[i].node && S_ISDIR(e[i].node->st.st_mode))
			ret = ext4_build_dir(b, e[i].node, e[i].ino, ino);
	free(e);
	return ret;
}
