/* ext4_extent.c - file data: the hole walk, block allocation, and the
 * partition's bytes as regions.
 *
 * A regular file gets blocks for each data segment of its source
 * (ext4_data_walk: SEEK_DATA/SEEK_HOLE through the safe open) and each of
 * its extents becomes a REGION_FILE; after the close, each page of the
 * metadata store becomes a region: REGION_MEM while the store stayed
 * within its raw budget (ext4_memio.h) or for a page that does not pack
 * smaller, else REGION_PACKED. No metadata page may lie inside a data extent:
 * regions_finalize() refuses overlapping regions and logs both, so no
 * list of the data extents is kept for that (it cost 16 B per file).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <et/com_err.h>

#include "ext4_i.h"
#include "log.h"
#include "vector.h"

/* ---- extents ------------------------------------------------------------ */

/* Calls fn for every leaf extent of ino (whose inode is *inode), in
 * logical order. */
int ext4_for_each_extent(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode *inode,
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
		return ext4_err(err);
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
		ret = ext4_err(err);
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
int ext4_alloc_blocks(struct build *b, ext2_ino_t ino, union inode_buf *ib,
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
		ret = ext4_err(err);
		if (ret != -ENOSPC)
			log_error("ext4: allocating %zu blocks for inode %u: %s",
				  nblocks, ino, error_message(err));
		goto out;
	}
	ret = ext4_for_each_extent(b->fs, ino, INODE(ib), blkmap_fn, &m);
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
		      uint64_t first, uint64_t last, blk64_t *goal, const struct tree_node *n)
{
	errcode_t err;

	if (last <= first)
		return 0;
	err = ext2fs_fallocate(b->fs, EXT2_FALLOCATE_FORCE_INIT, ino, INODE(ib),
			       *goal, first, last - first);
	*goal = ~0ULL;
	if (err) {
		int ret = ext4_err(err);

		if (ret != -ENOSPC) {
			char *path = ext4_path(n);

			log_error("ext4: allocating blocks for /%s: %s", path, error_message(err));
			ext4_free_path(path);
		}
		return ret;
	}
	return 0;
}

/* ---- the hole walk ------------------------------------------------------------- */

int ext4_data_walk(const struct tree *t, const struct tree_node *n, bool warn,
		   int (*fn)(void *ctx, uint64_t first, uint64_t last), void *ctx)
{
	uint64_t size = (uint64_t)n->st.st_size, end = div_up(size, BS);
	struct stat st;
	off_t data, hole;
	int fd, ret = 0;

	/* A file with as many bytes allocated as its size has no hole worth
	 * keeping: skip the open and the SEEK_DATA walk (a quarter of the
	 * mount's time on a Debian tree). Content is the same either way. */
	if (!n->sparse || n->file == SRCFILE_NONE)
		return fn(ctx, 0, end);
	/* The reads' own open: below the root, no symlink followed, and the
	 * file that was scanned (a swapped directory symlink cannot lead the
	 * walk out of the tree). A source that cannot be opened is allocated
	 * densely (reads of it then fail and are logged by srcfile, as they
	 * would anyway). */
	fd = srcfiles_open(&t->files, n->file, &st);
	if (fd < 0) {
		if (warn) {
			char *path = ext4_path(n);

			log_warn("ext4: /%s: %s; allocating it without holes", path,
				 fd == -ESTALE ? "not the file that was scanned" : strerror(-fd));
			ext4_free_path(path);
		}
		return fn(ctx, 0, end);
	}
	for (data = 0; (uint64_t)data < size; data = hole) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0) {
			/* ENXIO: only a hole is left. Otherwise no SEEK_DATA
			 * here: everything is data. */
			if (errno != ENXIO)
				ret = fn(ctx, 0, end);
			break;
		}
		if ((uint64_t)data >= size)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		ret = fn(ctx, (uint64_t)data / BS, div_up((uint64_t)hole, BS));
		if (ret)
			break;
	}
	close(fd);
	return ret;
}

struct falloc_ctx {
	struct build *b;
	ext2_ino_t ino;
	union inode_buf *ib;
	blk64_t goal;
	const struct tree_node *n;     /* for messages */
};

static int falloc_fn(void *ctx, uint64_t first, uint64_t last)
{
	struct falloc_ctx *fc = ctx;

	return file_alloc(fc->b, fc->ino, fc->ib, first, last, &fc->goal, fc->n);
}

/* Allocate the file's data: one fallocate per data segment of the source
 * (ext4_data_walk), so holes stay holes; then map its extents. */
int ext4_file_data(struct build *b, ext2_ino_t ino, union inode_buf *ib,
		   const struct tree_node *n)
{
	struct falloc_ctx fc = { b, ino, ib, first_goal(b->fs, ino),
				 n };
	struct filemap fm = { b, n, (uint64_t)n->st.st_size };
	int ret;

	ret = ext4_data_walk(b->t, n, true, falloc_fn, &fc);
	if (!ret)
		ret = ext4_for_each_extent(b->fs, ino, INODE(ib), filemap_fn, &fm);
	return ret;
}

/* ---- the store becomes regions -------------------------------------------- */

struct pages_ctx {
	struct build *b;
	uint64_t bytes;
};

/* Each page of the store becomes one region, its data handed over as it
 * is (a pagepack record, or a raw page: the store stayed within its raw
 * budget, or the page does not pack smaller): no copy, so the peak memory
 * is the store itself. */
static int page_fn(void *ctx, uint64_t off, const uint8_t *data, size_t plen)
{
	struct pages_ctx *pc = ctx;
	struct build *b = pc->b;
	uint8_t *buf;

	(void)data;
	buf = memio_store_steal(b->store, off);
	if (!regions_own(b->out, buf))
		return -ENOMEM;
	pc->bytes += plen ? plen : MEMIO_PAGE;
	if (plen)
		return regions_add_packed(b->out, b->o->part_start + off, MEMIO_PAGE,
					  buf, RW_EXT4_META);
	return regions_add_mem(b->out, b->o->part_start + off, MEMIO_PAGE, buf,
			       RW_EXT4_META);
}

int ext4_store_to_regions(struct build *b, uint64_t *bytes)
{
	struct pages_ctx pc = { .b = b };
	int ret;

	ret = memio_store_pack(b->store);
	if (!ret)
		ret = memio_store_foreach(b->store, page_fn, &pc);
	*bytes = pc.bytes;
	return ret;
}
