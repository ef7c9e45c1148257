/* ext4_i.h - the ext4 builder's private header, and the map of the module.
 *
 * The root partition is built by libext2fs in memory. All metadata goes
 * through libext2fs into a memio page store (ext4_memio.c); file data never
 * does. A regular file gets its blocks with ext2fs_fallocate(FORCE_INIT) for
 * every data segment of the source (holes stay holes) and each resulting
 * extent becomes a REGION_FILE mapping the partition bytes to the source
 * file. After ext2fs_close_free() every page of the store becomes a
 * REGION_PACKED region (REGION_MEM when it does not pack smaller).
 *
 *   ext4_build.c   orchestration: ext4_build() (census, mkfs, the tree,
 *                  close, regions), error translation, the ENOSPC report
 *   ext4_size.c    the census of the tree (inodes, blocks, hard links) and
 *                  the size it needs: ext4_size_needed(), the inode count
 *   ext4_mkfs.c    what mke2fs does before the files: ext2fs_initialize,
 *                  superblock fields, tables, reserved inodes, lost+found,
 *                  bad-block and resize inodes, journal
 *   ext4_dir.c     directories: the entries, leaf packing and the htree
 *                  plan (ext4_dir_plan), writing them, the tree walk
 *   ext4_inode.c   inodes: init, hold/commit, files, symlinks, specials
 *   ext4_xattr.c   extended attributes: their cost, where they go, setting
 *   ext4_extent.c  file data: the hole walk (ext4_data_walk), allocation,
 *                  extents to REGION_FILE, the store's pages to regions
 *   ext4_memio.c   the page store (packed but for a hot set) and its
 *                  io_manager
 *   ext4_alloc.c   the blocks a reader depends on, for the hole map
 *   ext4_check.c   the tree's limits checked before the build (ext4_check)
 *
 * One model: the size estimate (ext4_size.c) and the build use the same
 * functions for what they both need to know: ext4_dir_plan() for the blocks
 * of a directory, ext4_xattr_in_block() for where attributes go,
 * ext4_data_walk() for the data segments of a file. Only what libext2fs
 * decides alone (extent tree blocks, group metadata, the journal) is
 * estimated.
 *
 * Build order follows mke2fs: initialize, identity, tables, inode tables
 * marked zeroed, reserved inodes, lost+found, bad-block inode, resize inode,
 * journal, then the tree, then close.
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
 *
 * Internal functions return 0 or -errno; libext2fs codes are translated by
 * ext4_err() where they are met, with a message naming what failed.
 */
#ifndef RPIFS_EXT4_I_H
#define RPIFS_EXT4_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/stat.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "ext4_build.h"
#include "ext4_memio.h"

#define BS              4096u           /* block size: mke2fs's ext4 default */
#define LOG_BS          2               /* s_log_block_size for 4096 */
#define INODE_SIZE      256u
#define EXTRA_ISIZE     (sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE)
#define EXT4_MIN_BLOCKS 2048u          /* ext2fs_initialize refuses fewer */
#define LPF_BLOCKS      4               /* lost+found: 16 KiB, as mke2fs */
#define FLEX_LOG        4               /* 16 groups per flex group */
#define RESERVED_PCT    5               /* root-reserved blocks, as mke2fs */
#define HASH_VERSION    EXT2_HASH_HALF_MD4      /* s_def_hash_version */
#define DX_ROOT_LIMIT   ((BS - 32 - sizeof(struct ext2_dx_tail)) / 8)
#define DX_NODE_LIMIT   ((BS - 8 - sizeof(struct ext2_dx_tail)) / 8)
#define LEAF_USABLE     (BS - sizeof(struct ext2_dir_entry_tail))
#define DOTS_LEN        (2 * EXT2_DIR_REC_LEN(2))   /* "." and ".." */
#define EXTENT_MAX      32768u          /* blocks in one initialised extent */
#define EXTENTS_PER_BLK ((BS - 12) / 12)

static inline uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* ext4 "extra" time word: two epoch bits (seconds above 32 bits) and the
 * nanoseconds, as the kernel's ext4_encode_extra_time(). */
static inline uint32_t xtime_extra(int64_t sec, long nsec)
{
	uint32_t epoch = (uint32_t)(((sec - (int64_t)(int32_t)sec) >> 32) &
				    EXT4_EPOCH_MASK);

	return epoch | ((uint32_t)nsec << EXT4_EPOCH_BITS);
}

/* ---- ext4_build.c ---- */

/* libext2fs error -> -errno. */
int ext4_err(errcode_t err);
/* Make error_message() know libext2fs's codes (once, thread-safe). */
void ext4_init_errors(void);
/* A node's path for messages; never NULL. Free with ext4_free_path(). */
char *ext4_path(const struct tree_node *n);
void ext4_free_path(char *p);

/* ---- ext4_size.c: hard links (st_dev, st_ino) -> ext4 inode ---- */

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

struct hl_ent *ext4_hl_find(struct hl_map *m, dev_t dev, ino_t ino);
int ext4_hl_add(struct hl_map *m, dev_t dev, ino_t ino);

static inline bool is_multilink(const struct tree_node *n)
{
	return !S_ISDIR(n->st.st_mode) && n->st.st_nlink > 1;
}

/* ---- the build context ---- */

struct build {
	const struct tree *t;
	const struct tree_node *skip;
	const struct ext4_opts *o;
	struct regions *out;
	ext2_filsys fs;
	struct memio_store *store;
	struct hl_map links;
	ext2_ino_t lpf_ino;             /* synthesised lost+found, or 0 */
	struct ext2_inode *held;        /* inode assembled in memory, or NULL */
	ext2_ino_t held_ino;
	void (*old_stats)(ext2_filsys, blk64_t, int);
	void (*old_stats_range)(ext2_filsys, blk64_t, blk_t, int);
	uint64_t nfiles, ndirs, nlinks, nother, data_blocks, htrees;
};

/* A whole on-disk inode. */
union inode_buf {
	struct ext2_inode_large in;
	uint8_t raw[INODE_SIZE];
};

#define INODE(ib) ((struct ext2_inode *)&(ib)->in)

/* ---- ext4_size.c: the census ---- */

struct census {
	uint64_t nodes;         /* inodes the tree needs */
	uint64_t blocks;        /* data, directory, symlink, xattr, extent blocks */
};

/* Count the tree into c; hard links go into links (every occurrence
 * counted when count_links, for the link counts of the build). */
int ext4_census(const struct tree *t, const struct tree_node *skip,
		const uint8_t hash_seed[16], struct hl_map *links, bool count_links,
		struct census *c);
/* The inode count for opts and census c. */
uint64_t ext4_choose_inodes(const struct ext4_opts *o, const struct census *c);

/* ---- ext4_mkfs.c ---- */

int ext4_fs_init(struct build *b, uint64_t inodes);
/* How many bytes of label go into the superblock's 16: as mke2fs, cut at
 * 16 without splitting a UTF-8 character. ext4_check() warns when it cuts. */
size_t ext4_label_len(const char *label);
/* The superblock's last write time: opts->write_time, else fs->now's. */
time_t ext4_write_time(const struct build *b);
int ext4_system_inodes(struct build *b, bool want_lpf);

/* ---- ext4_alloc.c ---- */

/* Declare the partition's data to opts->holes (if set): the allocated
 * blocks but the inode-table blocks past each group's last inode in use. */
int ext4_declare_data(struct build *b);

/* ---- ext4_dir.c ---- */

/* A directory entry (32 bytes: an htree's sort moves them). */
struct dent {
	const char *name;
	const struct tree_node *node;   /* NULL: the synthesised lost+found */
	ext2_ino_t ino;
	uint32_t hash, minor;
	uint8_t len;
	uint8_t type;
};

/* The entries of directory d (no "." or ".."), in name order, inodes 0:
 * its kids (none if d is skip) and, in the root of a tree without one, the
 * synthesised lost+found. nsub: subdirectories among them; min_blocks: the
 * directory's least size (lost+found keeps spare blocks for e2fsck).
 * -ENAMETOOLONG (logged) for a name ext4 cannot hold. The entries go to
 * *e, grown as needed (*cap: its capacity), so that an array kept across
 * calls is reused; free(*e) once done. */
int ext4_dir_entries(const struct tree *t, const struct tree_node *skip,
		     const struct tree_node *d, struct dent **e, size_t *cap, size_t *n,
		     size_t *nsub, size_t *min_blocks);

/* Split e[0..n) into leaf blocks of LEAF_USABLE bytes of records, each
 * record taking EXT2_DIR_REC_LEN(len), first fit in order. used0: bytes
 * block 0 already holds ("." and ".." of a linear directory: DOTS_LEN), or
 * 0 (block 0 opens with e[0]). Returns the number of blocks; starts[k] (if
 * given) is the first entry of block k. */
size_t ext4_dir_split(const struct dent *e, size_t n, unsigned used0, size_t *starts);

/* The layout of a directory over kids e[0..n) (no "." or ".."). */
struct dir_plan {
	size_t nblocks;         /* blocks of the directory */
	size_t nleaves, nidx;   /* htree: leaves, second-level index blocks;
				 * nleaves == 0: linear */
	size_t *starts;         /* htree: first entry of each leaf in he */
	struct dent *he;        /* htree: e sorted by hash */
	struct dent *tmp;       /* scratch of the sort */
	size_t starts_cap, he_cap, tmp_cap;
};

/* Plan the directory: one block if the entries fit, else an htree (one or
 * two levels) as the kernel would give it, linear when even two levels
 * cannot index it; at least min_blocks blocks (lost+found: linear with
 * spare empty blocks). The size estimate and the build both call this.
 * p starts zeroed ({ 0 }); planning again with the same p reuses its
 * arrays; ext4_dir_plan_free() frees them. */
int ext4_dir_plan(const struct dent *e, size_t n, size_t min_blocks,
		  const uint32_t hash_seed[4], struct dir_plan *p);
void ext4_dir_plan_free(struct dir_plan *p);

int ext4_dir_create(struct build *b, ext2_ino_t ino, ext2_ino_t parent,
		    const struct tree_stat *st, const struct tree_node *xa,
		    const struct dent *e, size_t n, size_t nsub, size_t min_blocks);
int ext4_build_dir(struct build *b, const struct tree_node *d, ext2_ino_t ino,
		   ext2_ino_t parent);

/* ---- ext4_inode.c ---- */

errcode_t ext4_held_write(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode *inode);
void ext4_inode_init(const struct build *b, union inode_buf *ib,
		     const struct tree_stat *st, uint32_t links);
int ext4_inode_init_extents(struct build *b, ext2_ino_t ino, union inode_buf *ib);
int ext4_inode_write(struct build *b, ext2_ino_t ino, union inode_buf *ib);
void ext4_inode_hold(struct build *b, ext2_ino_t ino, union inode_buf *ib);
int ext4_inode_commit(struct build *b, ext2_ino_t ino, union inode_buf *ib, int ret);
int ext4_inode_new(struct build *b, ext2_ino_t dir, mode_t mode, ext2_ino_t *ino);
int ext4_make_nondir(struct build *b, ext2_ino_t dir, const struct tree_node *n,
		     ext2_ino_t *ino);

/* ---- ext4_xattr.c ---- */

/* Room for attributes in the inode body, as ext2fs_xattr_set counts it:
 * after the extra fields, less the magic and the end marker. Every inode
 * of the build has i_extra_isize = EXTRA_ISIZE. */
#define XATTR_ROOM      (INODE_SIZE - EXT2_GOOD_OLD_INODE_SIZE - EXTRA_ISIZE - 8)

/* Does any of n's attributes go to the xattr block? */
bool ext4_xattr_in_block(const struct tree_node *n);
/* Bytes n's attributes take, wherever they go (ext4_check's bound). */
size_t ext4_xattr_bytes(const struct tree_node *n);
int ext4_set_xattrs(struct build *b, ext2_ino_t ino, const struct tree_node *n);

/* ---- ext4_extent.c ---- */

/* The data of regular file n: fn(ctx, first, last) for every segment
 * (blocks [first, last)) of the source holding data, in ascending order;
 * segments may share a block. The whole file [0, blocks) is one segment
 * when the file has as many bytes allocated as its size, has no source id,
 * cannot be opened (the safe open, srcfiles_open(); warned about when
 * warn), or cannot tell its holes; a segment from block 0 comes first or
 * covers the whole file. Both the size estimate and the build walk files
 * here. */
int ext4_data_walk(const struct tree *t, const struct tree_node *n, bool warn,
		   int (*fn)(void *ctx, uint64_t first, uint64_t last), void *ctx);
int ext4_for_each_extent(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode *inode,
			 int (*fn)(void *ctx, const struct ext2fs_extent *e), void *ctx);
int ext4_alloc_blocks(struct build *b, ext2_ino_t ino, union inode_buf *ib,
		      size_t nblocks, blk64_t **pblk);
int ext4_file_data(struct build *b, ext2_ino_t ino, union inode_buf *ib,
		   const struct tree_node *n);
int ext4_store_to_regions(struct build *b, uint64_t *bytes);

#endif
