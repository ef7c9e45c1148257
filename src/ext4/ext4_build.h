/* ext4_build.h - the ext4 root partition, built by libext2fs in memory with
 * file data mapped to the source files. */
#ifndef RPIFS_EXT4_BUILD_H
#define RPIFS_EXT4_BUILD_H

#include <stdbool.h>
#include <stdint.h>
#include "tree.h"
#include "holes.h"
#include "regions.h"

struct ext4_opts {
	uint64_t part_start;        /* bytes from disk start */
	uint64_t part_size;         /* bytes */
	const char *label;          /* "rootfs" */
	uint8_t uuid[16];           /* derived from the tree */
	uint8_t hash_seed[16];      /* derived from the tree */
	int64_t fs_time;            /* the filesystem's own times (creation, last
	                             * check, inodes it makes): SOURCE_DATE_EPOCH
	                             * or the newest mtime */
	int64_t write_time;         /* the superblock's last write time, or 0:
	                             * fs_time (see image.c's ext4_times) */
	bool root_owner;            /* every inode owned by 0:0 */
	uint64_t inodes;            /* 0: tree nodes plus headroom */
	bool keep_atime_ctime;      /* atime and ctime from the source, as
	                             * mke2fs -d; default (false): atime, ctime
	                             * and crtime = mtime, so the partition is a
	                             * function of what the tree digest covers
	                             * (reads re-time atimes, copies re-time
	                             * ctimes) */
	struct holes *holes;        /* out, if set: the blocks a reader depends
	                             * on are declared here (ext4_alloc.c) */
};

/* Minimum partition size in bytes for the tree (skip's contents excluded:
 * skip becomes an empty directory), before any free-space margin. hash_seed:
 * the one ext4_build() will get (an htree's leaves follow the name hashes). */
int ext4_size_needed(const struct tree *t, const struct tree_node *skip,
		     const uint8_t hash_seed[16], uint64_t *bytes);

/* The limits of ext4 the tree breaks (skip's contents excluded), each
 * refused naming the file: too many hard links, a symlink target longer
 * than a block, extended attributes no inode can hold. What ext4_build()
 * would also refuse, found without building: a server checks before it
 * mounts and builds after. Also the warnings about the input (opts'
 * label cut, a lost+found that is no directory): call it before every
 * ext4_build(). 0 or -errno, logged. */
int ext4_check(const struct tree *t, const struct tree_node *skip,
	       const struct ext4_opts *opts);

/* Build the filesystem: skip (the boot directory, may be NULL) is created
 * as an empty directory. Regions go into out at opts->part_start. */
int ext4_build(const struct tree *t, const struct tree_node *skip,
	       const struct ext4_opts *opts, struct regions *out);

#endif
