/* ext4_build.c - the ext4 root partition: ext4_build(), the orchestration.
 *
 * Pass 1 (ext4_census, shared with the size estimate) counts inodes and hard
 * links; then mkfs (ext4_mkfs.c), the tree (ext4_dir.c), close, and the
 * store's pages and the files' extents become regions (ext4_extent.c). The
 * map of the module is in ext4_i.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <et/com_err.h>

#include "ext4_i.h"
#include "log.h"

static pthread_once_t et_once = PTHREAD_ONCE_INIT;

static void et_init(void)
{
	initialize_ext2_error_table();
}

void ext4_init_errors(void)
{
	pthread_once(&et_once, et_init);
}

/* libext2fs error -> -errno. Codes below 256 are errno values already. */
int ext4_err(errcode_t err)
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

char *ext4_path(const struct tree_node *n)
{
	char *p = tree_path(n);

	return p ? p : (char *)"?";
}

void ext4_free_path(char *p)
{
	if (p && strcmp(p, "?"))
		free(p);
}

/* ---- ext4_build ------------------------------------------------------------ */

/* Say why the build ran out of room. The estimate models the tree as the
 * build lays it out (ext4_i.h) and adds a margin for what libext2fs decides
 * alone; a partition of the estimated size that still does not fit means an
 * inode count asked for beyond the estimate's (opts->inodes) or a defect in
 * the model: said as an internal error. */
static void report_enospc(const struct build *b)
{
	uint64_t need = 0;

	if (ext4_size_needed(b->t, b->skip, b->o->hash_seed, &need))
		need = 0;
	if (need < EXT4_MIN_BLOCKS * BS)
		need = EXT4_MIN_BLOCKS * BS;
	if (need > b->o->part_size) {
		log_error("ext4: the root partition (%llu MiB) is too small for "
			  "the tree: at least %llu MiB needed",
			  (unsigned long long)(b->o->part_size >> 20),
			  (unsigned long long)((need + (1 << 20) - 1) >> 20));
	} else {
		log_error("ext4: internal error: the tree does not fit in the root "
			  "partition (%llu MiB) although the size estimate (%llu MiB) "
			  "said it would; give a larger --root-size (and report this)",
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
	ext4_init_errors();
	if (!t || !t->root || !opts || !out || !S_ISDIR(t->root->st.st_mode))
		return -EINVAL;
	if (opts->part_size / BS < EXT4_MIN_BLOCKS) {
		ret = -ENOSPC;          /* ext2fs_initialize would refuse it */
		goto out;
	}

	/* Pass 1: inode count and hard-link counts. */
	ret = ext4_census(t, skip, opts->hash_seed, &b.links, true, &c);
	if (ret)
		goto out;
	inodes = ext4_choose_inodes(opts, &c);
	if (inodes < c.nodes + EXT2_GOOD_OLD_FIRST_INO + 1) {
		log_error("ext4: %llu inodes requested, the tree needs %llu",
			  (unsigned long long)inodes,
			  (unsigned long long)(c.nodes + EXT2_GOOD_OLD_FIRST_INO + 1));
		ret = -ENOSPC;
		goto out;
	}

	b.store = memio_store_new(opts->part_size, MEMIO_RAW_BUDGET);
	if (!b.store) {
		ret = -ENOMEM;
		goto out;
	}
	ret = ext4_fs_init(&b, inodes);
	if (ret)
		goto out;

	/* A lost+found directory of the tree replaces the synthesised one;
	 * anything else called lost+found cannot be reconciled (ext4_check()
	 * says so). */
	lpf_node = tree_child(t->root, "lost+found");
	ret = ext4_system_inodes(&b, lpf_node == NULL);
	if (ret)
		goto out;

	/* Pass 2: the tree. */
	ret = ext4_build_dir(&b, t->root, EXT2_ROOT_INO, EXT2_ROOT_INO);
	if (ret)
		goto out;

	ret = ext4_declare_data(&b);
	if (ret)
		goto out;
	b.fs->now = ext4_write_time(&b);       /* s_wtime: see ext4_fs_init */
	err = ext2fs_close_free(&b.fs);
	if (err) {
		log_error("ext4: writing the filesystem metadata: %s",
			  error_message(err));
		ret = ext4_err(err);
		goto out;
	}

	ret = ext4_store_to_regions(&b, &meta);
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
	return ret;
}
