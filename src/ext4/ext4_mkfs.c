/* ext4_mkfs.c - what mke2fs does before the files: ext2fs_initialize with
 * mke2fs's ext4 features, the superblock's identity and times, group
 * tables, reserved inodes, lost+found, the bad-block and resize inodes and
 * the journal.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <et/com_err.h>

#include "ext4_i.h"
#include "log.h"

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
time_t ext4_write_time(const struct build *b)
{
	if (b->o->write_time > 0)
		return (time_t)b->o->write_time;
	return b->o->fs_time > 0 ? (time_t)b->o->fs_time : 1;
}

size_t ext4_label_len(const char *label)
{
	size_t n = strlen(label);

	if (n > EXT2_LABEL_LEN) {
		n = EXT2_LABEL_LEN;
		while (n && ((unsigned char)label[n] & 0xC0) == 0x80)
			n--;
	}
	return n;
}

int ext4_fs_init(struct build *b, uint64_t inodes)
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
		if (ext4_err(err) != -ENOSPC)
			log_error("ext4: initialising the filesystem: %s",
				  error_message(err));
		return ext4_err(err);
	}
	fs = b->fs;
	fs->priv_data = b;
	fs->write_inode = ext4_held_write;
	/* Everything libext2fs time-stamps from now on uses fs->now; 0 would
	 * mean "the current time", so the epoch itself becomes 1 s. */
	fs->now = b->o->fs_time > 0 ? (time_t)b->o->fs_time : 1;
	fs->super->s_mkfs_time = fs->super->s_lastcheck = (uint32_t)fs->now;
	/* Past 2106 the high bytes matter. */
	fs->super->s_mkfs_time_hi = fs->super->s_lastcheck_hi =
		(uint8_t)((uint64_t)fs->now >> 32);
	/* The flush at close stamps the low 32 bits of s_wtime with fs->now:
	 * ext4_build() sets fs->now to this before closing. */
	fs->super->s_wtime = (uint32_t)ext4_write_time(b);
	fs->super->s_wtime_hi = (uint8_t)((uint64_t)ext4_write_time(b) >> 32);
	fs->super->s_checkinterval = 0;
	fs->super->s_max_mnt_count = -1;
	fs->super->s_kbytes_written = 1;
	memcpy(fs->super->s_uuid, b->o->uuid, sizeof(fs->super->s_uuid));
	ext2fs_init_csum_seed(fs);
	fs->super->s_def_hash_version = HASH_VERSION;
	memcpy(fs->super->s_hash_seed, b->o->hash_seed,
	       sizeof(fs->super->s_hash_seed));
	fs->super->s_flags &= ~(EXT2_FLAGS_UNSIGNED_HASH | EXT2_FLAGS_SIGNED_HASH);
	fs->super->s_flags |= EXT2_FLAGS_SIGNED_HASH;
	fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
	memset(fs->super->s_volume_name, 0, sizeof(fs->super->s_volume_name));
	if (b->o->label)
		memcpy(fs->super->s_volume_name, b->o->label, ext4_label_len(b->o->label));
	ext2fs_mark_super_dirty(fs);

	err = ext2fs_allocate_tables(fs);
	if (err) {
		log_error("ext4: allocating group tables: %s", error_message(err));
		return ext4_err(err);
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
			return ext4_err(err);
		}
		if (!ib.in.i_mode && !ib.in.i_links_count &&
		    inos[i] != EXT2_BAD_INO)
			continue;       /* not created (no journal) */
		ib.in.i_atime = ib.in.i_mtime = ib.in.i_ctime =
			ib.in.i_crtime = (uint32_t)now;
		ib.in.i_atime_extra = ib.in.i_mtime_extra =
			ib.in.i_ctime_extra = ib.in.i_crtime_extra =
			xtime_extra(now, 0);
		if (ext4_inode_write(b, inos[i], &ib))
			return -EIO;
	}
	return 0;
}

/* mke2fs's steps between the tables and the files: reserved inodes with
 * valid checksums, lost+found, bad-block inode, resize inode, journal. */
int ext4_system_inodes(struct build *b, bool want_lpf)
{
	ext2_filsys fs = b->fs;
	union inode_buf ib;
	struct ext2fs_journal_params jp;
	struct tree_stat st;
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
		ret = ext4_inode_new(b, EXT2_ROOT_INO, S_IFDIR, &b->lpf_ino);
		if (!ret)
			ret = ext4_dir_create(b, b->lpf_ino, EXT2_ROOT_INO, &st, NULL,
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
	if (ext4_err(err) != -ENOSPC)
		log_error("ext4: %s: %s", what, error_message(err));
	return ext4_err(err);
}

