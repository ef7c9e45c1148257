/* ext4_build.c - the ext4 root partition, built by libext2fs in memory.
 *
 * All metadata goes through libext2fs into a memio page store (see
 * ext4_memio.c); file data never does. A regular file gets its blocks with
 * ext2fs_fallocate(FORCE_INIT) for every data segment of the source (holes
 * stay holes) and each resulting extent becomes a REGION_FILE mapping the
 * partition bytes to the source file. After ext2fs_close_free() every page
 * of the store becomes a REGION_MEM region.
 *
 * Build order follows mke2fs: initialize, identity, tables, inode tables
 * marked zeroed, reserved inodes, lost+found, bad-block inode, resize inode,
 * journal, then the tree, then close.
 *
 * Directories are written here rather than through ext2fs_link (which
 * rescans the whole directory for every name): every child's inode number is
 * known before its parent's blocks are written, so each directory is packed
 * once, in the tree's sorted order. A directory that needs more than one
 * block gets an htree index (one or two levels), as the kernel would give it.
 *
 * Determinism: the partition is a function of the tree and opts. No
 * time(NULL) reaches it: fs->now carries opts->fs_time into everything
 * libext2fs stamps; inodes of the tree carry the source's mtime (atime and
 * ctime too only with opts->keep_atime_ctime, since reads and copies change
 * them); UUID and hash seed come from opts; the hash signedness flag is
 * fixed (signed, as on x86) so the image does not depend on the host's char
 * type; inode and block allocation follow the tree's sorted order.
 *
 * libext2fs is not thread-safe: everything here runs before the mount, on
 * one thread, and no ext2_filsys outlives ext4_build().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <et/com_err.h>

#include "ext4_build.h"
#include "ext4_memio.h"
#include "log.h"

#define BS              4096u           /* block size: mke2fs's ext4 default */
#define LOG_BS          2               /* s_log_block_size for 4096 */
#define INODE_SIZE      256u
#define LPF_BLOCKS      4               /* lost+found: 16 KiB, as mke2fs */
#define FLEX_LOG        4               /* 16 groups per flex group */
#define RESERVED_PCT    5               /* root-reserved blocks, as mke2fs */
#define DX_ROOT_LIMIT   ((BS - 32 - sizeof(struct ext2_dx_tail)) / 8)
#define DX_NODE_LIMIT   ((BS - 8 - sizeof(struct ext2_dx_tail)) / 8)
#define LEAF_USABLE     (BS - sizeof(struct ext2_dir_entry_tail))
#define EXTENT_MAX      32768u          /* blocks in one initialised extent */
#define EXTENTS_PER_BLK ((BS - 12) / 12)

/* ---- small helpers ------------------------------------------------------ */

static pthread_once_t et_once = PTHREAD_ONCE_INIT;

static void et_init(void)
{
	initialize_ext2_error_table();
}

/* libext2fs error -> -errno. Codes below 256 are errno values already. */
static int err2errno(errcode_t err)
{
	if (err > 0 && err < 256)
		return -(int)err;
	switch (err) {
	case EXT2_ET_NO_MEMORY:
		return -ENOMEM;
	case EXT2_ET_BLOCK_ALLOC_FAIL:
	case EXT2_ET_INODE_ALLOC_FAIL:
	case EXT2_ET_DIR_NO_SPACE:
	case EXT2_ET_TOOSMALL:
	case EXT2_ET_TOO_MANY_INODES:
	case EXT2_ET_EA_NO_SPACE:
	case EXT2_ET_RES_GDT_BLOCKS:
		return -ENOSPC;
	case EXT2_ET_EA_KEY_NOT_FOUND:
	case EXT2_ET_EA_BAD_NAME_LEN:
	case EXT2_ET_EA_BAD_VALUE_SIZE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* ext4 "extra" time word: two epoch bits (seconds above 32 bits) and the
 * nanoseconds, as the kernel's ext4_encode_extra_time(). */
static uint32_t xtime_extra(int64_t sec, long nsec)
{
	uint32_t epoch = (uint32_t)(((sec - (int64_t)(int32_t)sec) >> 32) &
				    EXT4_EPOCH_MASK);

	return epoch | ((uint32_t)nsec << EXT4_EPOCH_BITS);
}

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

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* A node's path for messages; never NULL. Free with free_path(). */
static char *path_of(const struct tree_node *n)
{
	char *p = tree_path(n);

	return p ? p : (char *)"?";
}

static void free_path(char *p)
{
	if (p && strcmp(p, "?"))
		free(p);
}

/* ---- hard links: (st_dev, st_ino) -> ext4 inode ------------------------- */

struct hl_ent {
	dev_t dev;
	ino_t ino;
	uint32_t count;         /* occurrences in the filesystem's tree */
	ext2_ino_t e_ino;       /* 0 until the first occurrence is created */
};

struct hl_map {
	struct hl_ent *v;       /* open addressing; count == 0 means empty */
	size_t cap, n;
};

static size_t hl_hash(dev_t dev, ino_t ino, size_t cap)
{
	uint64_t h = ((uint64_t)dev * 0x9E3779B97F4A7C15ull) ^
		     ((uint64_t)ino * 0xC2B2AE3D27D4EB4Full);

	return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static struct hl_ent *hl_find(struct hl_map *m, dev_t dev, ino_t ino)
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

static int hl_add(struct hl_map *m, dev_t dev, ino_t ino)
{
	struct hl_ent *e = hl_find(m, dev, ino);
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

static bool is_multilink(const struct tree_node *n)
{
	return !S_ISDIR(n->st.st_mode) && n->st.st_nlink > 1;
}

/* ---- the build context --------------------------------------------------- */

struct dext {                   /* one data extent, in fs blocks */
	uint64_t pblk, len;
};

struct build {
	const struct tree *t;
	const struct tree_node *skip;
	const struct ext4_opts *o;
	struct regions *out;
	ext2_filsys fs;
	struct memio_store *store;
	struct hl_map links;
	ext2_ino_t lpf_ino;             /* synthesised lost+found, or 0 */
	struct dext *dx;                /* data extents, for the overlap check */
	size_t ndx, capdx;
	struct ext2_inode *held;        /* inode assembled in memory, or NULL */
	ext2_ino_t held_ino;
	void (*old_stats)(ext2_filsys, blk64_t, int);
	void (*old_stats_range)(ext2_filsys, blk64_t, blk_t, int);
	uint64_t nfiles, ndirs, nlinks, nother, data_blocks, htrees;
};

/* A directory entry to be written. */
struct dent {
	const char *name;
	uint8_t len;
	uint8_t type;
	ext2_ino_t ino;
	uint32_t hash, minor;
};

/* Freed blocks read as zeros: drop their pages so a later data extent on the
 * same block does not collide with a stale metadata page. */
static void on_block_stats(ext2_filsys fs, blk64_t blk, int inuse)
{
	struct build *b = fs->priv_data;

	if (b->old_stats)
		b->old_stats(fs, blk, inuse);
	if (inuse < 0)
		io_channel_discard(fs->io, blk, 1);
}

static void on_block_stats_range(ext2_filsys fs, blk64_t blk, blk_t num,
				 int inuse)
{
	struct build *b = fs->priv_data;

	if (b->old_stats_range)
		b->old_stats_range(fs, blk, num, inuse);
	if (inuse < 0)
		io_channel_discard(fs->io, blk, num);
}

/* libext2fs writes an inode after every change of its extent tree
 * (update_path) and at the end of ext2fs_fallocate: each write reads the
 * inode table block, checksums the inode and stores the block again. While
 * an inode is assembled in memory (inode_hold), its writes are of our own
 * buffer, which already holds the change: they are dropped, and
 * inode_commit() writes the finished inode once. Writes of any other
 * buffer go through. */
static errcode_t held_write(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode *inode)
{
	const struct build *b = fs->priv_data;

	if (b->held && inode == b->held && ino == b->held_ino)
		return 0;
	return EXT2_ET_CALLBACK_NOTHANDLED;
}

static int dx_push(struct build *b, uint64_t pblk, uint64_t len)
{
	if (b->ndx == b->capdx) {
		size_t nc = b->capdx ? b->capdx * 2 : 1024;
		struct dext *nv = realloc(b->dx, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		b->dx = nv;
		b->capdx = nc;
	}
	b->dx[b->ndx++] = (struct dext){ pblk, len };
	return 0;
}

/* A whole on-disk inode. */
union inode_buf {
	struct ext2_inode_large in;
	uint8_t raw[INODE_SIZE];
};

#define INODE(ib) ((struct ext2_inode *)&(ib)->in)

/* ---- extents ------------------------------------------------------------ */

/* Calls fn for every leaf extent of ino (whose inode is *inode), in
 * logical order. */
static int for_each_extent(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode *inode,
			   int (*fn)(void *ctx, const struct ext2fs_extent *e),
			   void *ctx)
{
	ext2_extent_handle_t h = NULL;
	struct ext2fs_extent e;
	errcode_t err;
	int ret = 0;

	err = ext2fs_extent_open2(fs, ino, inode, &h);
	if (err) {
		log_error("ext4: opening the extent tree of inode %u: %s",
			  ino, error_message(err));
		return err2errno(err);
	}
	err = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &e);
	while (!err) {
		if ((e.e_flags & EXT2_EXTENT_FLAGS_LEAF) &&
		    !(e.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT)) {
			/* FORCE_INIT makes every extent initialised; an
			 * uninitialised one would read as zeros in the guest. */
			if (e.e_flags & EXT2_EXTENT_FLAGS_UNINIT) {
				log_error("ext4: inode %u has an uninitialised extent",
					  ino);
				ret = -EIO;
				goto out;
			}
			ret = fn(ctx, &e);
			if (ret)
				goto out;
		}
		err = ext2fs_extent_get(h, EXT2_EXTENT_NEXT, &e);
	}
	if (err != EXT2_ET_EXTENT_NO_NEXT && err != EXT2_ET_NO_CURRENT_NODE) {
		log_error("ext4: walking the extents of inode %u: %s", ino,
			  error_message(err));
		ret = err2errno(err);
	}
out:
	ext2fs_extent_free(h);
	return ret;
}

/* Logical -> physical block list, for directories and long symlinks. */
struct blkmap {
	blk64_t *pblk;
	size_t n;
};

static int blkmap_fn(void *ctx, const struct ext2fs_extent *e)
{
	struct blkmap *m = ctx;
	uint32_t i;

	for (i = 0; i < e->e_len; i++)
		if (e->e_lblk + i < m->n)
			m->pblk[e->e_lblk + i] = e->e_pblk + i;
	return 0;
}

/* Where ext2fs_find_inode_goal() starts an inode that has no blocks yet:
 * the first block of its flex group. Passed to ext2fs_fallocate() for an
 * inode's first allocation, it spares the library an extent-tree open and
 * walk per file; the blocks chosen are the same. */
static blk64_t first_goal(ext2_filsys fs, ext2_ino_t ino)
{
	dgrp_t group = ext2fs_group_of_ino(fs, ino);
	unsigned log_flex = fs->super->s_log_groups_per_flex;

	if (log_flex)
		group &= ~((1u << log_flex) - 1);
	return ext2fs_group_first_block2(fs, group);
}

/* Allocate nblocks blocks to ino, held in memory as *ib with an empty
 * extent tree, and return their physical numbers in *pblk (malloc'd). */
static int alloc_blocks(struct build *b, ext2_ino_t ino, union inode_buf *ib,
			size_t nblocks, blk64_t **pblk)
{
	struct blkmap m = { NULL, nblocks };
	errcode_t err;
	size_t i;
	int ret;

	m.pblk = calloc(nblocks, sizeof(*m.pblk));
	if (!m.pblk)
		return -ENOMEM;
	err = ext2fs_fallocate(b->fs, EXT2_FALLOCATE_FORCE_INIT, ino, INODE(ib),
			       first_goal(b->fs, ino), 0, nblocks);
	if (err) {
		ret = err2errno(err);
		if (ret != -ENOSPC)
			log_error("ext4: allocating %zu blocks for inode %u: %s",
				  nblocks, ino, error_message(err));
		goto out;
	}
	ret = for_each_extent(b->fs, ino, INODE(ib), blkmap_fn, &m);
	if (ret)
		goto out;
	for (i = 0; i < nblocks; i++) {
		if (!m.pblk[i]) {
			log_error("ext4: inode %u: block %zu not mapped", ino, i);
			ret = -EIO;
			goto out;
		}
	}
	*pblk = m.pblk;
	m.pblk = NULL;
out:
	free(m.pblk);
	return ret;
}

/* ---- inodes ---------------------------------------------------------------- */

/* Owner, mode, times and link count from st. The caller sets size, flags
 * and i_block.
 *
 * Times: mtime always, to the nanosecond. atime and ctime are not part of
 * the tree's identity (reading a file re-times its atime, copying a tree
 * re-times every ctime, and the tree digest covers neither), so by default
 * they, and crtime, equal mtime: the same tree always gives the same bytes.
 * With keep_atime_ctime they come from the source (crtime = ctime: lstat has
 * no birth time). */
static void inode_init(const struct build *b, union inode_buf *ib,
		       const struct stat *st, uint32_t links)
{
	struct ext2_inode_large *in = &ib->in;
	uint32_t uid = b->o->root_owner ? 0 : st->st_uid;
	uint32_t gid = b->o->root_owner ? 0 : st->st_gid;
	const struct timespec *at = &st->st_mtim, *ct = &st->st_mtim;

	if (b->o->keep_atime_ctime) {
		at = &st->st_atim;
		ct = &st->st_ctim;
	}
	memset(ib, 0, sizeof(*ib));
	in->i_mode = (uint16_t)st->st_mode;
	in->i_uid = (uint16_t)uid;
	ext2fs_set_i_uid_high(*in, uid >> 16);
	in->i_gid = (uint16_t)gid;
	ext2fs_set_i_gid_high(*in, gid >> 16);
	in->i_links_count = (uint16_t)links;
	in->i_extra_isize = sizeof(struct ext2_inode_large) -
			    EXT2_GOOD_OLD_INODE_SIZE;
	in->i_atime = (uint32_t)at->tv_sec;
	in->i_atime_extra = xtime_extra(at->tv_sec, at->tv_nsec);
	in->i_mtime = (uint32_t)st->st_mtim.tv_sec;
	in->i_mtime_extra = xtime_extra(st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	in->i_ctime = (uint32_t)ct->tv_sec;
	in->i_ctime_extra = xtime_extra(ct->tv_sec, ct->tv_nsec);
	in->i_crtime = in->i_ctime;
	in->i_crtime_extra = in->i_ctime_extra;
}

/* Give the inode an empty extent tree (sets EXT4_EXTENTS_FL). */
static int inode_init_extents(struct build *b, ext2_ino_t ino,
			      union inode_buf *ib)
{
	ext2_extent_handle_t h;
	errcode_t err;

	err = ext2fs_extent_open2(b->fs, ino, (struct ext2_inode *)&ib->in, &h);
	if (err) {
		log_error("ext4: extent tree for inode %u: %s", ino,
			  error_message(err));
		return err2errno(err);
	}
	ext2fs_extent_free(h);
	return 0;
}

static int inode_write(struct build *b, ext2_ino_t ino, union inode_buf *ib)
{
	errcode_t err = ext2fs_write_inode_full(b->fs, ino, INODE(ib), INODE_SIZE);

	if (err) {
		log_error("ext4: writing inode %u: %s", ino, error_message(err));
		return err2errno(err);
	}
	return 0;
}

/* Assemble inode ino in *ib: until inode_commit(), libext2fs's writes of
 * *ib are dropped (held_write). The extent calls must be given *ib. */
static void inode_hold(struct build *b, ext2_ino_t ino, union inode_buf *ib)
{
	b->held = INODE(ib);
	b->held_ino = ino;
}

/* End the hold; if ret is 0 (the assembly worked), write the inode. */
static int inode_commit(struct build *b, ext2_ino_t ino, union inode_buf *ib, int ret)
{
	b->held = NULL;
	return ret ? ret : inode_write(b, ino, ib);
}

static int inode_new(struct build *b, ext2_ino_t dir, mode_t mode,
		     ext2_ino_t *ino)
{
	errcode_t err = ext2fs_new_inode(b->fs, dir, (int)mode, NULL, ino);

	if (err)
		return err2errno(err);
	ext2fs_inode_alloc_stats2(b->fs, *ino, +1, S_ISDIR(mode));
	return 0;
}

/* Bytes one attribute takes where libext2fs stores it, inode body or
 * block: entry header and name without its namespace prefix (libext2fs's
 * ea_names table), and the value, each rounded to 4; a POSIX ACL shrinks
 * to ext4's format (4-byte entries, 8 for named users and groups). */
static size_t xattr_cost(const struct xattr *x)
{
	static const char *const prefix[] = {
		"gnu.", "system.posix_acl_default", "system.posix_acl_access",
		"system.richacl", "security.", "trusted.", "system.", "user.",
	};
	size_t nl = strlen(x->name), vl = x->len;

	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (!strncmp(x->name, prefix[i], strlen(prefix[i]))) {
			nl -= strlen(prefix[i]);
			break;
		}
	if (!strncmp(x->name, "system.posix_acl_", 17) && vl >= 4 &&
	    (vl - 4) % 8 == 0) {
		const uint8_t *v = x->value;

		vl = 4;
		for (size_t o = 4; o < x->len; o += 8) {
			unsigned tag = v[o] | (unsigned)v[o + 1] << 8;

			vl += tag == 0x02 || tag == 0x08 ? 8 : 4;   /* ACL_USER, ACL_GROUP */
		}
	}
	return EXT2_EXT_ATTR_LEN(nl) + EXT2_EXT_ATTR_SIZE(vl);
}

/* The order to set n's attributes in. libext2fs puts each new attribute in
 * the inode body if it still fits there, else in the one xattr block, so
 * the order decides the packing. The kernel packs in creation order, which
 * the scan cannot see: in name order, an attribute set a real ext4 with
 * 256-byte inodes holds can overflow the block (a 60-byte value the kernel
 * put in the inode body, sorted after bigger ones that filled it). So the
 * subset that fills the inode body best (a 0/1 knapsack over its few dozen
 * bytes) goes first, then the rest, each part in name order: whatever fits
 * anywhere fits this way, since the block gets the least. Deterministic. */
static int xattr_order(const struct tree_node *n, size_t room, size_t *order)
{
	size_t k = n->nxattrs, i, c, o = 0;
	size_t *best = calloc(room + 1, sizeof(*best));
	uint8_t *take = calloc(k * (room + 1), 1);     /* take[i][c] */
	bool *first = calloc(k, sizeof(*first));

	if (!best || !take || !first) {
		free(best);
		free(take);
		free(first);
		return -ENOMEM;
	}
	for (i = 0; i < k; i++) {
		size_t w = xattr_cost(&n->xattrs[i]);

		for (c = room; c >= w; c--)     /* w >= 16: no wrap */
			if (best[c - w] + w > best[c]) {
				best[c] = best[c - w] + w;
				take[i * (room + 1) + c] = 1;
			}
	}
	for (i = k, c = room; i-- > 0;)
		if (take[i * (room + 1) + c]) {
			first[i] = true;
			c -= xattr_cost(&n->xattrs[i]);
		}
	for (i = 0; i < k; i++)
		if (first[i])
			order[o++] = i;
	for (i = 0; i < k; i++)
		if (!first[i])
			order[o++] = i;
	free(best);
	free(take);
	free(first);
	return 0;
}

/* Extended attributes, including POSIX ACLs: ext2fs_xattr_set translates
 * system.posix_acl_* from the Linux xattr format to ext4's. */
static int set_xattrs(struct build *b, ext2_ino_t ino,
		      const struct tree_node *n)
{
	struct ext2_xattr_handle *h = NULL;
	struct ext2_inode_large inode;
	errcode_t err, cerr;
	const char *what = "opening";
	const char *name = "";
	size_t i, room = 0, *order;
	int ret;

	if (!n || !n->nxattrs)
		return 0;
	/* The inode body's room for attributes, as ext2fs_xattr_set counts
	 * it: after the extra fields, less the magic and the end marker. */
	err = ext2fs_read_inode_full(b->fs, ino, (struct ext2_inode *)&inode,
				     sizeof(inode));
	if (!err) {
		size_t extra = inode.i_extra_isize ? inode.i_extra_isize :
			       b->fs->super->s_want_extra_isize;

		if (INODE_SIZE > EXT2_GOOD_OLD_INODE_SIZE + extra + 8)
			room = INODE_SIZE - EXT2_GOOD_OLD_INODE_SIZE - extra - 8;
	}
	order = malloc(n->nxattrs * sizeof(*order));
	if (!order)
		return -ENOMEM;
	ret = xattr_order(n, room, order);
	if (ret < 0) {
		free(order);
		return ret;
	}
	if (!err)
		err = ext2fs_xattrs_open(b->fs, ino, &h);
	if (!err) {
		what = "reading";
		err = ext2fs_xattrs_read(h);
	}
	for (i = 0; !err && i < n->nxattrs; i++) {
		const struct xattr *x = &n->xattrs[order[i]];

		what = "setting";
		name = x->name;
		err = ext2fs_xattr_set(h, name, x->value, x->len);
	}
	free(order);
	if (h) {
		cerr = ext2fs_xattrs_close(&h);
		if (!err) {
			what = "writing";
			err = cerr;
		}
	}
	if (err) {
		char *p = path_of(n);

		/* Not a full filesystem: one inode's attributes must fit in
		 * the inode plus one block (no ea_inode feature). */
		if (err == EXT2_ET_EA_NO_SPACE)
			log_error("ext4: /%s: extended attributes larger than "
				  "ext4 can store for one inode (%u bytes)", p, BS);
		else
			log_error("ext4: %s extended attribute %s of /%s: %s",
				  what, name, p, error_message(err));
		free_path(p);
		return err == EXT2_ET_EA_NO_SPACE ? -E2BIG : err2errno(err);
	}
	return 0;
}

/* ---- regular files -------------------------------------------------------- */

struct filemap {
	struct build *b;
	const struct tree_node *n;
	uint64_t size;
};

/* Map one extent of a regular file to its source. The last block of a
 * file is partial: the region stops at the file size and the rest of the
 * block is a zero gap. */
static int filemap_fn(void *ctx, const struct ext2fs_extent *e)
{
	struct filemap *fm = ctx;
	struct build *b = fm->b;
	uint64_t foff = e->e_lblk * (uint64_t)BS;
	uint64_t len = (uint64_t)e->e_len * BS;
	int ret;

	if (foff >= fm->size) {
		log_error("ext4: inode extent past the end of a file");
		return -EIO;
	}
	if (len > fm->size - foff)
		len = fm->size - foff;
	ret = dx_push(b, e->e_pblk, e->e_len);
	if (ret)
		return ret;
	ret = regions_add_file(b->out, b->o->part_start + e->e_pblk * BS, len,
			       fm->n->file, foff, RW_EXT4_FILE);
	if (ret)
		return ret;
	b->data_blocks += e->e_len;
	return 0;
}

/* Allocate blocks [first, last) of the file's logical space; *goal is
 * first_goal() for the inode's first allocation, then ~0 (the library looks
 * next to the blocks already allocated). */
static int file_alloc(struct build *b, ext2_ino_t ino, union inode_buf *ib,
		      uint64_t first, uint64_t last, blk64_t *goal, const char *path)
{
	errcode_t err;

	if (last <= first)
		return 0;
	err = ext2fs_fallocate(b->fs, EXT2_FALLOCATE_FORCE_INIT, ino, INODE(ib),
			       *goal, first, last - first);
	*goal = ~0ULL;
	if (err) {
		int ret = err2errno(err);

		if (ret != -ENOSPC)
			log_error("ext4: allocating blocks for /%s: %s", path,
				  error_message(err));
		return ret;
	}
	return 0;
}

/* Allocate the file's data: one fallocate per data segment of the source,
 * so holes stay holes. A source that cannot be opened is allocated densely
 * (reads of it then fail and are logged by srcfile, as they would anyway). */
static int file_data(struct build *b, ext2_ino_t ino, union inode_buf *ib,
		     const struct tree_node *n)
{
	const struct srcfile *sf = &b->t->files.v[n->file];
	uint64_t size = (uint64_t)n->st.st_size, end = div_up(size, BS);
	struct filemap fm = { b, n, size };
	blk64_t goal = first_goal(b->fs, ino);
	struct stat st;
	off_t data, hole;
	int fd, ret = 0;

	/* A file with as many bytes allocated as its size has no hole worth
	 * keeping: skip the open and the SEEK_DATA walk (a quarter of the
	 * mount's time on a Debian tree). Content is the same either way. */
	if ((uint64_t)n->st.st_blocks * 512 >= size) {
		fd = -1;
		ret = file_alloc(b, ino, ib, 0, end, &goal, sf->path);
		goto map;
	}
	fd = srcfiles_open(&b->t->files, n->file, &st);
	if (fd < 0) {
		log_warn("ext4: /%s: %s; allocating it without holes", sf->path,
			 fd == -ESTALE ? "not the file that was scanned" : strerror(-fd));
		ret = file_alloc(b, ino, ib, 0, end, &goal, sf->path);
		goto map;
	}
	for (data = 0; (uint64_t)data < size; data = hole) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)     /* only a hole is left */
				break;
			/* No SEEK_DATA here: everything is data. */
			ret = file_alloc(b, ino, ib, 0, end, &goal, sf->path);
			goto map;
		}
		if ((uint64_t)data >= size)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		ret = file_alloc(b, ino, ib, (uint64_t)data / BS,
				 div_up((uint64_t)hole, BS), &goal, sf->path);
		if (ret)
			goto map;
	}
map:
	if (fd >= 0)
		close(fd);
	if (!ret)
		ret = for_each_extent(b->fs, ino, INODE(ib), filemap_fn, &fm);
	return ret;
}

/* ---- non-directory inodes -------------------------------------------------- */

static int make_file(struct build *b, ext2_ino_t ino, const struct tree_node *n,
		     uint32_t links)
{
	union inode_buf ib;
	errcode_t err;
	int ret;

	inode_init(b, &ib, &n->st, links);
	err = ext2fs_inode_size_set(b->fs, INODE(&ib), (uint64_t)n->st.st_size);
	if (err)
		return err2errno(err);
	/* A file with data gets its empty extent tree from the first extent
	 * open on it (ext2fs_fallocate's, or for_each_extent's when the file is
	 * all holes), which initialises an all-zero i_block: only the flag is
	 * set here, saving an open per file. */
	if (n->st.st_size)
		ib.in.i_flags |= EXT4_EXTENTS_FL;
	else if ((ret = inode_init_extents(b, ino, &ib)))
		return ret;
	if (n->st.st_size && n->file == SRCFILE_NONE) {
		char *p = path_of(n);

		log_error("ext4: /%s has data but no source file id", p);
		free_path(p);
		return -EINVAL;
	}
	if (n->st.st_size) {
		b->nfiles++;
		inode_hold(b, ino, &ib);
		ret = file_data(b, ino, &ib, n);
	}
	ret = inode_commit(b, ino, &ib, ret);
	if (!ret)
		ret = set_xattrs(b, ino, n);
	return ret;
}

static int make_symlink(struct build *b, ext2_ino_t ino,
			const struct tree_node *n, uint32_t links)
{
	size_t len = n->link ? strlen(n->link) : 0;
	union inode_buf ib;
	blk64_t *pblk = NULL;
	uint8_t *buf = NULL;
	errcode_t err;
	int ret;

	inode_init(b, &ib, &n->st, links);
	ib.in.i_size = (uint32_t)len;
	if (len < sizeof(ib.in.i_block)) {
		/* Fast symlink: the target lives in i_block. */
		if (len)
			memcpy(ib.in.i_block, n->link, len);
		ret = inode_write(b, ino, &ib);
		if (!ret)
			ret = set_xattrs(b, ino, n);
		return ret;
	}
	if (len >= BS) {
		char *p = path_of(n);

		log_error("ext4: /%s: symlink target longer than a block", p);
		free_path(p);
		return -ENAMETOOLONG;
	}
	/* Slow symlink: one block, which is metadata (it goes to the store). */
	ret = inode_init_extents(b, ino, &ib);
	if (ret)
		goto out;
	inode_hold(b, ino, &ib);
	ret = alloc_blocks(b, ino, &ib, 1, &pblk);
	ret = inode_commit(b, ino, &ib, ret);
	if (!ret)
		ret = set_xattrs(b, ino, n);
	if (ret)
		goto out;
	buf = calloc(1, BS);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(buf, n->link, len);
	err = io_channel_write_blk64(b->fs->io, pblk[0], 1, buf);
	if (err) {
		log_error("ext4: writing a symlink block: %s", error_message(err));
		ret = err2errno(err);
	}
out:
	free(buf);
	free(pblk);
	return ret;
}

static int make_special(struct build *b, ext2_ino_t ino,
			const struct tree_node *n, uint32_t links)
{
	union inode_buf ib;
	unsigned maj = major(n->st.st_rdev), min = minor(n->st.st_rdev);
	int ret;

	inode_init(b, &ib, &n->st, links);
	if (S_ISCHR(n->st.st_mode) || S_ISBLK(n->st.st_mode)) {
		if (maj < 256 && min < 256) {
			ib.in.i_block[0] = maj * 256 + min;
		} else {
			ib.in.i_block[1] = (min & 0xff) | (maj << 8) |
					   ((min & ~0xffu) << 12);
		}
	}
	ret = inode_write(b, ino, &ib);
	if (!ret)
		ret = set_xattrs(b, ino, n);
	return ret;
}

/* Create (or, for a further hard link, find) the inode of non-directory n
 * in directory dir. */
static int make_nondir(struct build *b, ext2_ino_t dir,
		       const struct tree_node *n, ext2_ino_t *ino)
{
	struct hl_ent *hl = NULL;
	uint32_t links = 1;
	int ret;

	if (is_multilink(n)) {
		hl = hl_find(&b->links, n->st.st_dev, n->st.st_ino);
		if (!hl)
			return -EIO;    /* counted in pass 1: cannot happen */
		if (hl->e_ino) {
			*ino = hl->e_ino;
			b->nlinks++;
			return 0;
		}
		links = hl->count;
		if (links > EXT2_LINK_MAX) {
			char *p = path_of(n);

			log_error("ext4: /%s has %u hard links; ext4 allows %u",
				  p, links, EXT2_LINK_MAX);
			free_path(p);
			return -EMLINK;
		}
	}
	ret = inode_new(b, dir, n->st.st_mode, ino);
	if (ret)
		return ret;
	if (hl)
		hl->e_ino = *ino;
	switch (n->st.st_mode & S_IFMT) {
	case S_IFREG:
		return make_file(b, *ino, n, links);
	case S_IFLNK:
		b->nother++;
		return make_symlink(b, *ino, n, links);
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		b->nother++;
		return make_special(b, *ino, n, links);
	default: {
		char *p = path_of(n);

		log_error("ext4: /%s: unsupported file type %#o", p,
			  (unsigned)(n->st.st_mode & S_IFMT));
		free_path(p);
		return -EINVAL;
	}
	}
}

/* ---- directories -------------------------------------------------------- */

/* Split e[0..n) into blocks of at most usable bytes of records. Returns the
 * number of blocks; starts[k] (if given) is the first entry of block k. */
static size_t dir_split(const struct dent *e, size_t n, unsigned usable,
			size_t *starts)
{
	size_t i, blocks = 0;
	unsigned used = usable;

	for (i = 0; i < n; i++) {
		unsigned rl = EXT2_DIR_REC_LEN(e[i].len);

		if (used + rl > usable) {
			if (starts)
				starts[blocks] = i;
			blocks++;
			used = 0;
		}
		used += rl;
	}
	return blocks;
}

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
		return err2errno(err);
	}
	return 0;
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

/* The layout of an htree directory over kids e[0..n) (no "." or ".."). */
struct htree {
	size_t nleaves, nidx;   /* nidx: second-level index blocks, 0 or more */
	size_t *starts;         /* first entry of each leaf */
};

/* Plan the htree over kids e[0..n) (sorted by hash, no "." or ".."):
 * leaves, and second-level index blocks when the root cannot index every
 * leaf. -EFBIG when even two levels are not enough (largedir territory). */
static int htree_plan(const struct dent *e, size_t n, struct htree *h)
{
	h->nidx = 0;
	h->starts = malloc(n * sizeof(*h->starts));
	if (!h->starts)
		return -ENOMEM;
	h->nleaves = dir_split(e, n, LEAF_USABLE, h->starts);
	if (h->nleaves > DX_ROOT_LIMIT) {
		h->nidx = div_up(h->nleaves, DX_NODE_LIMIT);
		if (h->nidx > DX_ROOT_LIMIT)
			return -EFBIG;
	}
	return 0;
}

/* Leaf k's index hash: its first entry's hash, with the low bit set when
 * the previous leaf ends with the same hash (a collision run continues). */
static uint32_t leaf_hash(const struct dent *e, const struct htree *h,
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
			   const struct htree *h, const blk64_t *pblk,
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

/* Write a linear directory: ".", ".." and e[0..n) in at least min_blocks
 * blocks (lost+found keeps empty blocks for e2fsck to use). */
static int dir_write_linear(struct build *b, ext2_ino_t ino, ext2_ino_t parent,
			    const struct dent *e, size_t n, size_t nblocks,
			    const blk64_t *pblk, uint8_t *buf)
{
	struct dent *all;
	size_t *starts, nb, k, m = n + 2;
	int ret = 0;

	all = malloc(m * sizeof(*all));
	starts = malloc(m * sizeof(*starts));
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
	nb = dir_split(all, m, LEAF_USABLE, starts);
	for (k = 0; k < nblocks && !ret; k++) {
		if (k < nb)
			dir_fill_leaf(b->fs, buf, all, starts[k],
				      k + 1 < nb ? starts[k + 1] : m);
		else
			dir_fill_leaf(b->fs, buf, all, 0, 0);
		ret = dir_write_block(b, ino, pblk[k], buf);
	}
out:
	free(all);
	free(starts);
	return ret;
}

/* Blocks of a linear directory holding ".", ".." and e[0..n). */
static size_t linear_blocks(const struct dent *e, size_t n)
{
	size_t used = 24, blocks = 1, i;

	for (i = 0; i < n; i++) {
		unsigned rl = EXT2_DIR_REC_LEN(e[i].len);

		if (used + rl > LEAF_USABLE) {
			blocks++;
			used = 0;
		}
		used += rl;
	}
	return blocks;
}

/* Write directory inode ino (attributes from st, xattrs from xa) holding
 * kids e[0..n) in name order. nsub: subdirectories among them (for the link
 * count). A directory that fits one block stays linear, a larger one gets an
 * htree, as the kernel would do; lost+found (min_blocks > 1) stays linear
 * with spare empty blocks, as mke2fs makes it. */
static int dir_create(struct build *b, ext2_ino_t ino, ext2_ino_t parent,
		      const struct stat *st, const struct tree_node *xa,
		      const struct dent *e, size_t n, size_t nsub,
		      size_t min_blocks)
{
	struct htree h = { 0, 0, NULL };
	struct dent *he = NULL;         /* e sorted by hash, for the htree */
	size_t nblocks = linear_blocks(e, n), i;
	uint32_t links = 2 + (uint32_t)nsub;
	blk64_t *pblk = NULL;
	uint8_t *buf = NULL;
	union inode_buf ib;
	errcode_t err;
	int ret = 0;

	/* dir_nlink: a directory with too many subdirectories counts 1. */
	if (2 + nsub > EXT2_LINK_MAX)
		links = 1;
	if (nblocks > 1 && min_blocks <= 1) {
		he = malloc(n * sizeof(*he));
		if (!he) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(he, e, n * sizeof(*he));
		for (i = 0; i < n; i++) {
			err = ext2fs_dirhash2(b->fs->super->s_def_hash_version,
					      he[i].name, he[i].len,
					      b->fs->encoding, 0,
					      b->fs->super->s_hash_seed,
					      &he[i].hash, &he[i].minor);
			if (err) {
				log_error("ext4: hashing a name: %s",
					  error_message(err));
				ret = err2errno(err);
				goto out;
			}
		}
		qsort(he, n, sizeof(*he), cmp_dent_hash);
		ret = htree_plan(he, n, &h);
		if (ret == -EFBIG) {
			/* Valid, only slower to search. */
			h.nleaves = 0;
			ret = 0;
		}
		if (ret)
			goto out;
		if (h.nleaves)
			nblocks = 1 + h.nidx + h.nleaves;
	}
	if (nblocks < min_blocks)
		nblocks = min_blocks;

	inode_init(b, &ib, st, links);
	err = ext2fs_inode_size_set(b->fs, INODE(&ib), (uint64_t)nblocks * BS);
	if (err) {
		ret = err2errno(err);
		goto out;
	}
	ret = inode_init_extents(b, ino, &ib);
	if (ret)
		goto out;
	if (h.nleaves)
		ib.in.i_flags |= EXT2_INDEX_FL;
	inode_hold(b, ino, &ib);
	ret = alloc_blocks(b, ino, &ib, nblocks, &pblk);
	ret = inode_commit(b, ino, &ib, ret);
	if (!ret)
		ret = set_xattrs(b, ino, xa);
	if (ret)
		goto out;
	buf = malloc(BS);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	if (h.nleaves) {
		ret = dir_write_htree(b, ino, parent, he, n, &h, pblk, buf);
		b->htrees++;
	} else {
		ret = dir_write_linear(b, ino, parent, e, n, nblocks, pblk, buf);
	}
	b->ndirs++;
out:
	free(h.starts);
	free(he);
	free(pblk);
	free(buf);
	return ret;
}

/* Build directory node d as inode ino inside parent: create every child's
 * inode, write d's blocks, then recurse into the subdirectories. */
static int build_dir(struct build *b, const struct tree_node *d,
		     ext2_ino_t ino, ext2_ino_t parent)
{
	bool empty = d == b->skip;
	size_t nk = empty ? 0 : d->nkids;
	size_t n = 0, nsub = 0, i, min_blocks = 1;
	struct dent *e = NULL;
	ext2_ino_t *kino = NULL;
	bool lpf = d == b->t->root && b->lpf_ino;
	int ret = 0;

	e = calloc(nk + 1, sizeof(*e));
	kino = calloc(nk + 1, sizeof(*kino));
	if (!e || !kino) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nk; i++) {
		const struct tree_node *k = d->kids[i];
		size_t len = strlen(k->name);

		if (len == 0 || len > EXT2_NAME_LEN) {
			char *p = path_of(k);

			log_error("ext4: /%s: name longer than %d bytes", p,
				  EXT2_NAME_LEN);
			free_path(p);
			ret = -ENAMETOOLONG;
			goto out;
		}
		/* The synthesised lost+found sorts among the kids. */
		if (lpf && strcmp("lost+found", k->name) < 0) {
			e[n++] = (struct dent){ .name = "lost+found", .len = 10,
				.type = EXT2_FT_DIR, .ino = b->lpf_ino };
			nsub++;
			lpf = false;
		}
		if (S_ISDIR(k->st.st_mode)) {
			ret = inode_new(b, ino, S_IFDIR, &kino[i]);
			nsub++;
		} else {
			ret = make_nondir(b, ino, k, &kino[i]);
		}
		if (ret)
			goto out;
		e[n++] = (struct dent){ .name = k->name, .len = (uint8_t)len,
			.type = dirent_type(k->st.st_mode), .ino = kino[i] };
	}
	if (lpf) {
		e[n++] = (struct dent){ .name = "lost+found", .len = 10,
			.type = EXT2_FT_DIR, .ino = b->lpf_ino };
		nsub++;
	}
	/* A lost+found from the tree keeps room for e2fsck too. */
	if (d->parent == b->t->root && !strcmp(d->name, "lost+found"))
		min_blocks = LPF_BLOCKS;
	ret = dir_create(b, ino, parent, &d->st, d, e, n, nsub, min_blocks);
	if (ret)
		goto out;
	for (i = 0; i < nk; i++) {
		if (!S_ISDIR(d->kids[i]->st.st_mode))
			continue;
		ret = build_dir(b, d->kids[i], kino[i], ino);
		if (ret)
			goto out;
	}
out:
	free(e);
	free(kino);
	return ret;
}

/* ---- the tree walk shared by sizing and building ------------------------- */

struct census {
	uint64_t nodes;         /* inodes the tree needs */
	uint64_t blocks;        /* data, directory, symlink, xattr, extent blocks */
};

/* Approximate in-inode xattr room: 256-byte inodes, 32 extra bytes. */
#define INODE_EA_ROOM   (INODE_SIZE - EXT2_GOOD_OLD_INODE_SIZE - 32 - 4)

static uint64_t xattr_blocks(const struct tree_node *n)
{
	size_t i, sz = 0;

	for (i = 0; i < n->nxattrs; i++)
		sz += 16 + ((strlen(n->xattrs[i].name) + 3) & ~3u) +
		      ((n->xattrs[i].len + 3) & ~(size_t)3);
	if (!sz || sz + 4 <= INODE_EA_ROOM)
		return 0;
	return div_up(sz + 32, BS);
}

/* Blocks of data a file will get: SEEK_DATA segments for a file that looks
 * sparse (fewer blocks than its size), else its size. */
static uint64_t file_blocks(const struct tree *t, const struct tree_node *n,
			    uint64_t *segments)
{
	uint64_t size = (uint64_t)n->st.st_size, blocks = 0, last = 0;
	off_t data, hole;
	int fd;

	*segments = 1;
	if ((uint64_t)n->st.st_blocks * 512 >= size || n->file == SRCFILE_NONE)
		return div_up(size, BS);
	fd = openat(t->files.root_fd, t->files.v[n->file].path,
		    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return div_up(size, BS);
	*segments = 0;
	for (data = 0; (uint64_t)data < size; data = hole) {
		uint64_t a, z;

		data = lseek(fd, data, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0) {
			blocks = div_up(size, BS);
			*segments = 1;
			break;
		}
		if ((uint64_t)data >= size)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		a = (uint64_t)data / BS;
		z = div_up((uint64_t)hole, BS);
		if (a < last)       /* segments sharing a block */
			a = last;
		if (z > a)
			blocks += z - a;
		last = z;
		(*segments)++;
	}
	close(fd);
	return blocks;
}

/* Extent tree blocks for a file of `blocks` blocks in `segments` pieces:
 * four extents fit in the inode. Allow for splits at group boundaries. */
static uint64_t extent_blocks(uint64_t blocks, uint64_t segments)
{
	uint64_t ext = segments + 2 * div_up(blocks, EXTENT_MAX);

	if (ext <= 4)
		return 0;
	return div_up(ext, EXTENTS_PER_BLK) + 1;
}

/* Blocks of directory d (with extra entries of total record length). */
static uint64_t dir_blocks(const struct tree_node *d, bool empty, size_t extra)
{
	uint64_t used = 24 + extra, leaves;
	size_t i;

	if (!empty)
		for (i = 0; i < d->nkids; i++)
			used += EXT2_DIR_REC_LEN(strlen(d->kids[i]->name));
	if (used <= LEAF_USABLE)
		return 1;
	/* Leaves lose up to one record each to packing; the index adds a
	 * root and one block per DX_NODE_LIMIT leaves. */
	leaves = div_up(used, LEAF_USABLE - EXT2_DIR_REC_LEN(EXT2_NAME_LEN)) + 1;
	return leaves + 1 + div_up(leaves, DX_NODE_LIMIT) +
	       extent_blocks(leaves, 1);
}

static int census_walk(const struct tree *t, const struct tree_node *skip,
		       const struct tree_node *d, struct hl_map *links,
		       bool count_links, struct census *c)
{
	bool empty = d == skip;
	size_t i;
	int ret;

	c->nodes++;
	c->blocks += dir_blocks(d, empty, d == t->root ?
				EXT2_DIR_REC_LEN(10) : 0);
	c->blocks += xattr_blocks(d);
	if (empty)
		return 0;
	for (i = 0; i < d->nkids; i++) {
		const struct tree_node *k = d->kids[i];

		if (S_ISDIR(k->st.st_mode)) {
			ret = census_walk(t, skip, k, links, count_links, c);
			if (ret)
				return ret;
			continue;
		}
		if (is_multilink(k)) {
			bool seen = hl_find(links, k->st.st_dev,
					    k->st.st_ino) != NULL;

			if (count_links || !seen) {
				ret = hl_add(links, k->st.st_dev, k->st.st_ino);
				if (ret)
					return ret;
			}
			if (seen)
				continue;       /* one inode, one data mapping */
		}
		c->nodes++;
		c->blocks += xattr_blocks(k);
		if (S_ISREG(k->st.st_mode) && k->st.st_size > 0) {
			uint64_t seg, fb = file_blocks(t, k, &seg);

			c->blocks += fb + extent_blocks(fb, seg);
		} else if (S_ISLNK(k->st.st_mode) && k->link &&
			   strlen(k->link) >= sizeof(((struct ext2_inode *)0)->i_block)) {
			c->blocks++;
		}
	}
	return 0;
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
		     uint64_t *bytes)
{
	struct hl_map links = { NULL, 0, 0 };
	struct census c = { 0, 0 };
	int ret;

	ret = census_walk(t, skip, t->root, &links, false, &c);
	free(links.v);
	if (ret)
		return ret;
	*bytes = fs_bytes(&c, min_inodes(c.nodes));
	return 0;
}

/* ---- filesystem setup ------------------------------------------------------ */

static uint64_t choose_inodes(const struct ext4_opts *o, const struct census *c)
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

static int fs_init(struct build *b, uint64_t inodes)
{
	struct ext2_super_block param;
	char name[64];
	errcode_t err;
	ext2_filsys fs;
	dgrp_t g;
	uint64_t blocks = b->o->part_size / BS;

	memset(&param, 0, sizeof(param));
	ext2fs_blocks_count_set(&param, blocks);
	ext2fs_r_blocks_count_set(&param, blocks * RESERVED_PCT / 100);
	param.s_log_block_size = LOG_BS;
	param.s_log_cluster_size = LOG_BS;
	param.s_rev_level = EXT2_DYNAMIC_REV;
	param.s_inode_size = INODE_SIZE;
	param.s_inodes_count = (uint32_t)inodes;
	param.s_log_groups_per_flex = FLEX_LOG;
	param.s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
	/* Reserved GDT blocks (for online resize) are written pages in the
	 * store: mke2fs reserves for 1024x growth, which makes memory grow with
	 * the image size. An SD card ends at 2 TiB (SDXC): reserve for that. */
	{
		uint64_t groups = div_up(blocks, 8 * BS);
		uint64_t per_block = BS / EXT2_MIN_DESC_SIZE_64BIT;
		uint64_t max_groups = div_up((2ull << 40) / BS, 8 * BS);
		uint64_t have = div_up(groups, per_block), want = div_up(max_groups, per_block);

		if (want > have && want - have <= BS / 4)
			param.s_reserved_gdt_blocks = (uint16_t)(want - have);
	}
	param.s_min_extra_isize = param.s_want_extra_isize =
		sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
	param.s_max_mnt_count = -1;
	param.s_errors = EXT2_ERRORS_CONTINUE;
	param.s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
	/* mke2fs's ext4: base features plus the ext4 set; no inline_data
	 * (small files would move into metadata) and no orphan_file (older
	 * guest e2fsck refuses it). */
	ext2fs_set_feature_journal(&param);
	ext2fs_set_feature_xattr(&param);
	ext2fs_set_feature_resize_inode(&param);
	ext2fs_set_feature_dir_index(&param);
	ext2fs_set_feature_filetype(&param);
	ext2fs_set_feature_extents(&param);
	ext2fs_set_feature_64bit(&param);
	ext2fs_set_feature_flex_bg(&param);
	ext2fs_set_feature_sparse_super(&param);
	ext2fs_set_feature_large_file(&param);
	ext2fs_set_feature_huge_file(&param);
	ext2fs_set_feature_dir_nlink(&param);
	ext2fs_set_feature_extra_isize(&param);
	ext2fs_set_feature_metadata_csum(&param);

	err = ext2fs_initialize(memio_name(b->store, name, sizeof(name)),
				EXT2_FLAG_64BITS, &param, memio_io_manager,
				&b->fs);
	if (err) {
		if (err2errno(err) != -ENOSPC)
			log_error("ext4: initialising the filesystem: %s",
				  error_message(err));
		return err2errno(err);
	}
	fs = b->fs;
	fs->priv_data = b;
	fs->write_inode = held_write;
	/* Everything libext2fs time-stamps from now on uses fs->now; 0 would
	 * mean "the current time", so the epoch itself becomes 1 s. */
	fs->now = b->o->fs_time > 0 ? (time_t)b->o->fs_time : 1;
	fs->super->s_mkfs_time = fs->super->s_lastcheck =
		fs->super->s_wtime = (uint32_t)fs->now;
	/* Past 2106 the high bytes matter (closefs rewrites only the low
	 * 32 bits of s_wtime, from the same fs->now). */
	fs->super->s_mkfs_time_hi = fs->super->s_lastcheck_hi =
		fs->super->s_wtime_hi = (uint8_t)((uint64_t)fs->now >> 32);
	fs->super->s_checkinterval = 0;
	fs->super->s_max_mnt_count = -1;
	fs->super->s_kbytes_written = 1;
	memcpy(fs->super->s_uuid, b->o->uuid, sizeof(fs->super->s_uuid));
	ext2fs_init_csum_seed(fs);
	fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
	memcpy(fs->super->s_hash_seed, b->o->hash_seed,
	       sizeof(fs->super->s_hash_seed));
	fs->super->s_flags &= ~(EXT2_FLAGS_UNSIGNED_HASH | EXT2_FLAGS_SIGNED_HASH);
	fs->super->s_flags |= EXT2_FLAGS_SIGNED_HASH;
	fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
	memset(fs->super->s_volume_name, 0, sizeof(fs->super->s_volume_name));
	if (b->o->label) {
		size_t n = strlen(b->o->label), max = sizeof(fs->super->s_volume_name);

		/* 16 bytes, as mke2fs: say so (as the FAT label does), and
		 * do not cut a UTF-8 character in two. */
		if (n > max) {
			n = max;
			while (n && ((unsigned char)b->o->label[n] & 0xC0) == 0x80)
				n--;
			log_warn("ext4 label \"%s\" cut to %zu bytes", b->o->label, n);
		}
		memcpy(fs->super->s_volume_name, b->o->label, n);
	}
	ext2fs_mark_super_dirty(fs);

	err = ext2fs_allocate_tables(fs);
	if (err) {
		log_error("ext4: allocating group tables: %s", error_message(err));
		return err2errno(err);
	}
	/* The store reads as zeros, so every inode table is already zeroed:
	 * say so, or the guest's lazyinit thread rewrites them all. */
	for (g = 0; g < fs->group_desc_count; g++) {
		ext2fs_bg_flags_set(fs, g, EXT2_BG_INODE_ZEROED);
		ext2fs_group_desc_csum_set(fs, g);
	}
	ext2fs_set_block_alloc_stats_callback(fs, on_block_stats,
					      &b->old_stats);
	ext2fs_set_block_alloc_stats_range_callback(fs, on_block_stats_range,
						    &b->old_stats_range);
	return 0;
}

/* libext2fs stamps the inodes it creates (bad-block, resize, journal) with
 * the low 32 bits of fs->now only: give them the full encoding, as every
 * other inode has, so a fs_time past 2038 decodes right. */
static int fix_system_times(struct build *b)
{
	static const ext2_ino_t inos[] = { EXT2_BAD_INO, EXT2_RESIZE_INO,
					   EXT2_JOURNAL_INO };
	int64_t now = (int64_t)b->fs->now;
	union inode_buf ib;
	errcode_t err;
	size_t i;

	for (i = 0; i < sizeof(inos) / sizeof(inos[0]); i++) {
		err = ext2fs_read_inode_full(b->fs, inos[i],
					     (struct ext2_inode *)&ib.in,
					     INODE_SIZE);
		if (err) {
			log_error("ext4: reading inode %u: %s", inos[i],
				  error_message(err));
			return err2errno(err);
		}
		if (!ib.in.i_mode && !ib.in.i_links_count &&
		    inos[i] != EXT2_BAD_INO)
			continue;       /* not created (no journal) */
		ib.in.i_atime = ib.in.i_mtime = ib.in.i_ctime =
			ib.in.i_crtime = (uint32_t)now;
		ib.in.i_atime_extra = ib.in.i_mtime_extra =
			ib.in.i_ctime_extra = ib.in.i_crtime_extra =
			xtime_extra(now, 0);
		if (inode_write(b, inos[i], &ib))
			return -EIO;
	}
	return 0;
}

/* mke2fs's steps between the tables and the files: reserved inodes with
 * valid checksums, lost+found, bad-block inode, resize inode, journal. */
static int fs_system_inodes(struct build *b, bool want_lpf)
{
	ext2_filsys fs = b->fs;
	union inode_buf ib;
	struct ext2fs_journal_params jp;
	struct stat st;
	ext2_ino_t ino;
	errcode_t err;
	const char *what;
	int ret;

	/* Reserved inodes must carry valid checksums (metadata_csum). */
	memset(&ib, 0, sizeof(ib));
	for (ino = 1; ino < EXT2_FIRST_INO(fs->super); ino++) {
		err = ext2fs_write_inode_full(fs, ino,
					      (struct ext2_inode *)&ib.in,
					      INODE_SIZE);
		if (err) {
			what = "writing reserved inodes";
			goto fail;
		}
	}
	/* The root's inode number is fixed; its blocks come with the tree. */
	ext2fs_inode_alloc_stats2(fs, EXT2_ROOT_INO, +1, 1);

	if (want_lpf) {
		/* As mke2fs: the first free inode, mode 0700, 16 KiB. */
		memset(&st, 0, sizeof(st));
		st.st_mode = S_IFDIR | 0700;
		st.st_atim.tv_sec = st.st_mtim.tv_sec = st.st_ctim.tv_sec =
			fs->now;
		ret = inode_new(b, EXT2_ROOT_INO, S_IFDIR, &b->lpf_ino);
		if (!ret)
			ret = dir_create(b, b->lpf_ino, EXT2_ROOT_INO, &st, NULL,
					 NULL, 0, 0, LPF_BLOCKS);
		if (ret)
			return ret;
	}

	for (ino = EXT2_ROOT_INO + 1; ino < EXT2_FIRST_INO(fs->super); ino++)
		ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
	ext2fs_mark_ib_dirty(fs);

	ext2fs_mark_inode_bitmap2(fs->inode_map, EXT2_BAD_INO);
	ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
	err = ext2fs_update_bb_inode(fs, NULL);
	if (err) {
		what = "creating the bad-block inode";
		goto fail;
	}
	err = ext2fs_create_resize_inode(fs);
	if (err) {
		what = "creating the resize inode";
		goto fail;
	}
	err = ext2fs_get_journal_params(&jp, fs);
	if (err) {
		/* Too small for a journal: mke2fs goes without one. */
		ext2fs_clear_feature_journal(fs->super);
		return fix_system_times(b);
	}
	/* NO_MNT_CHECK: the device name is not a path to probe. */
	err = ext2fs_add_journal_inode3(fs, &jp, ~0ULL,
					EXT2_MKJOURNAL_NO_MNT_CHECK);
	if (err) {
		what = "creating the journal";
		goto fail;
	}
	return fix_system_times(b);
fail:
	if (err2errno(err) != -ENOSPC)
		log_error("ext4: %s: %s", what, error_message(err));
	return err2errno(err);
}

/* ---- the store becomes regions -------------------------------------------- */

static int cmp_dext(const void *pa, const void *pb)
{
	const struct dext *a = pa, *b = pb;

	return a->pblk < b->pblk ? -1 : a->pblk > b->pblk;
}

struct pages_ctx {
	struct build *b;
	size_t cur;                     /* data extent cursor */
	uint64_t bytes;
};

/* Each page of the store becomes one memory region, its buffer handed
 * over as it is: no copy, so the peak memory is the store itself. (Runs of
 * pages could be coalesced into one region, at the price of a copy; the
 * region count stays small either way: one per metadata page.) */
static int page_fn(void *ctx, uint64_t off, const uint8_t *page)
{
	struct pages_ctx *pc = ctx;
	struct build *b = pc->b;
	uint64_t blk = off / BS;
	uint8_t *buf;

	(void)page;
	/* Invariant: no metadata page inside a data extent. Both lists are
	 * ascending, so one cursor suffices. */
	while (pc->cur < b->ndx &&
	       b->dx[pc->cur].pblk + b->dx[pc->cur].len <= blk)
		pc->cur++;
	if (pc->cur < b->ndx && b->dx[pc->cur].pblk <= blk) {
		log_error("ext4: metadata page at block %llu inside a data extent "
			  "(blocks %llu+%llu)", (unsigned long long)blk,
			  (unsigned long long)b->dx[pc->cur].pblk,
			  (unsigned long long)b->dx[pc->cur].len);
		return -EIO;
	}
	buf = memio_store_steal(b->store, off);
	if (!regions_own(b->out, buf))
		return -ENOMEM;
	pc->bytes += MEMIO_PAGE;
	return regions_add_mem(b->out, b->o->part_start + off, MEMIO_PAGE, buf, RW_EXT4_META);
}

static int store_to_regions(struct build *b, uint64_t *bytes)
{
	struct pages_ctx pc = { .b = b };
	int ret;

	if (b->ndx)
		qsort(b->dx, b->ndx, sizeof(*b->dx), cmp_dext);
	ret = memio_store_foreach(b->store, page_fn, &pc);
	*bytes = pc.bytes;
	return ret;
}

/* ---- ext4_build ------------------------------------------------------------ */

static void report_enospc(const struct build *b)
{
	uint64_t need = 0;

	if (ext4_size_needed(b->t, b->skip, &need))
		need = 0;
	if (need > b->o->part_size) {
		log_error("ext4: the root partition (%llu MiB) is too small for "
			  "the tree: at least %llu MiB needed",
			  (unsigned long long)(b->o->part_size >> 20),
			  (unsigned long long)((need + (1 << 20) - 1) >> 20));
	} else {
		/* The estimate said it would fit: the estimate is wrong. */
		log_error("ext4: the tree does not fit in the root partition "
			  "(%llu MiB) although %llu MiB were estimated to be "
			  "enough; give a larger --root-size (and report this)",
			  (unsigned long long)(b->o->part_size >> 20),
			  (unsigned long long)((need + (1 << 20) - 1) >> 20));
	}
}

int ext4_build(const struct tree *t, const struct tree_node *skip,
	       const struct ext4_opts *opts, struct regions *out)
{
	struct build b = { .t = t, .skip = skip, .o = opts, .out = out };
	struct census c = { 0, 0 };
	const struct tree_node *lpf_node;
	uint64_t inodes, meta = 0;
	struct timespec t0, t1;
	errcode_t err;
	int ret;

	/* Only for the log line: no clock reaches the image. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_once(&et_once, et_init);
	if (!t || !t->root || !opts || !out || !S_ISDIR(t->root->st.st_mode))
		return -EINVAL;
	if (opts->part_size / BS < 2048) {
		ret = -ENOSPC;          /* ext2fs_initialize would refuse it */
		goto out;
	}

	/* Pass 1: inode count and hard-link counts. */
	ret = census_walk(t, skip, t->root, &b.links, true, &c);
	if (ret)
		goto out;
	inodes = choose_inodes(opts, &c);
	if (inodes < c.nodes + EXT2_GOOD_OLD_FIRST_INO + 1) {
		log_error("ext4: %llu inodes requested, the tree needs %llu",
			  (unsigned long long)inodes,
			  (unsigned long long)(c.nodes + EXT2_GOOD_OLD_FIRST_INO + 1));
		ret = -ENOSPC;
		goto out;
	}

	b.store = memio_store_new(opts->part_size);
	if (!b.store) {
		ret = -ENOMEM;
		goto out;
	}
	ret = fs_init(&b, inodes);
	if (ret)
		goto out;

	/* A lost+found directory of the tree replaces the synthesised one;
	 * anything else called lost+found cannot be reconciled. */
	lpf_node = tree_child(t->root, "lost+found");
	if (lpf_node && !S_ISDIR(lpf_node->st.st_mode)) {
		log_warn("ext4: /lost+found is not a directory; the "
			 "filesystem will have none");
	}
	ret = fs_system_inodes(&b, lpf_node == NULL);
	if (ret)
		goto out;

	/* Pass 2: the tree. */
	ret = build_dir(&b, t->root, EXT2_ROOT_INO, EXT2_ROOT_INO);
	if (ret)
		goto out;

	err = ext2fs_close_free(&b.fs);
	if (err) {
		log_error("ext4: writing the filesystem metadata: %s",
			  error_message(err));
		ret = err2errno(err);
		goto out;
	}

	ret = store_to_regions(&b, &meta);
	if (ret)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("ext4: %llu MiB, %llu inodes: %llu files with data, %llu "
		 "directories (%llu indexed), %llu other, %llu extra links; "
		 "%llu KiB metadata in memory, %llu MiB of file data mapped; "
		 "built in %.2f s",
		 (unsigned long long)(opts->part_size >> 20),
		 (unsigned long long)inodes, (unsigned long long)b.nfiles,
		 (unsigned long long)b.ndirs, (unsigned long long)b.htrees,
		 (unsigned long long)b.nother, (unsigned long long)b.nlinks,
		 (unsigned long long)(meta >> 10),
		 (unsigned long long)(b.data_blocks * BS >> 20),
		 (double)(t1.tv_sec - t0.tv_sec) +
		 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
out:
	if (ret == -ENOSPC)
		report_enospc(&b);
	if (b.fs)
		ext2fs_free(b.fs);
	memio_store_free(b.store);
	free(b.links.v);
	free(b.dx);
	return ret;
}
