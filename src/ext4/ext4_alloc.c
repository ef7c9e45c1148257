/* ext4_alloc.c - the blocks of the ext4 partition a reader depends on, for
 * the hole map (holes.h): ext4_declare_data().
 *
 * Data is every block allocated in the block bitmap (superblocks, group
 * descriptors, reserved GDT blocks, bitmaps, inode tables, the journal,
 * directories, extent and xattr blocks, file data), zeros included:
 *
 *  - the journal's body is data although it is all zeros: with an empty
 *    journal (s_start 0) nothing reads it, but after a crash jbd2's replay
 *    scans it for transactions of the expected sequence, and a card that
 *    held this very image before (same UUID, so the same checksum seed,
 *    same first sequence) would have stale transactions there that pass.
 *    mke2fs zeroes it for the same reason (lazy_journal_init=0).
 *  - bitmaps of groups flagged BLOCK_UNINIT/INODE_UNINIT are never written
 *    or read, but cost a block each: kept as data, no special case.
 *
 * The one exception: the inode-table blocks past the last inode in use in
 * each group. The group descriptors say so (bg_itable_unused, which
 * ext2fs_set_gdt_csum() sets at close from the inode bitmap just as
 * computed here, and INODE_ZEROED, set by ext4_fs_init): e2fsck's inode
 * scan stops at that mark, the kernel's inode readahead too, and a new
 * inode in a block with no other inode in use is zeroed in memory, not
 * read (__ext4_get_inode_loc). The kernel's lazyinit skips INODE_ZEROED
 * groups. So nobody reads those blocks before writing them whole.
 *
 * Runs on the build's fs before ext2fs_close_free() (which changes no
 * allocation), on a copy of its block bitmap.
 */
#include <errno.h>
#include "ext4_i.h"
#include "holes.h"
#include "log.h"

/* Inodes in use in group g: the index (1-based) of its last one, 0 for
 * none, as ext2fs_set_gdt_csum() finds it. */
static uint32_t last_inode_in_group(ext2_filsys fs, dgrp_t g)
{
	uint32_t ipg = fs->super->s_inodes_per_group;
	ext2_ino_t first = (ext2_ino_t)g * ipg + 1, ino;

	for (ino = first + ipg - 1; ino >= first; ino--)
		if (ext2fs_test_inode_bitmap2(fs->inode_map, ino))
			return ino - first + 1;
	return 0;
}

int ext4_declare_data(struct build *b)
{
	ext2_filsys fs = b->fs;
	ext2fs_block_bitmap map = NULL;
	blk64_t end = ext2fs_blocks_count(fs->super) - 1, start, hole;
	uint32_t ipb = BS / EXT2_INODE_SIZE(fs->super);
	errcode_t err;
	dgrp_t g;
	int ret = 0;

	if (!b->o->holes)
		return 0;
	err = ext2fs_copy_bitmap(fs->block_map, &map);
	if (err) {
		log_error("ext4: copying the block bitmap: %s", error_message(err));
		return ext4_err(err);
	}
	if (ext2fs_has_group_desc_csum(fs)) {
		for (g = 0; g < fs->group_desc_count; g++) {
			uint32_t used = div_up(last_inode_in_group(fs, g), ipb);
			blk64_t it = ext2fs_inode_table_loc(fs, g);

			if (!(ext2fs_bg_flags(fs, g) & EXT2_BG_INODE_ZEROED) || !it ||
			    used >= fs->inode_blocks_per_group)
				continue;
			ext2fs_unmark_block_bitmap_range2(map, it + used,
							  fs->inode_blocks_per_group - used);
		}
	}
	for (start = fs->super->s_first_data_block; start <= end; start = hole) {
		if (ext2fs_find_first_set_block_bitmap2(map, start, end, &start))
			break;          /* ENOENT: no block in use after start */
		if (ext2fs_find_first_zero_block_bitmap2(map, start, end, &hole))
			hole = end + 1;
		ret = holes_add_data(b->o->holes, b->o->part_start + start * BS,
				     (hole - start) * BS);
		if (ret < 0)
			break;
	}
	ext2fs_free_block_bitmap(map);
	return ret;
}
