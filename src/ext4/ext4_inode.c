/* ext4_inode.c - inodes: init, hold and commit, and the non-directories.
 *
 * An inode is assembled in memory (union inode_buf) and written once: while
 * it is held, libext2fs's own writes of it are dropped (ext4_held_write).
 * Regular files get their data in ext4_extent.c, attributes in
 * ext4_xattr.c; directories are ext4_dir.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <et/com_err.h>

#include "ext4_i.h"
#include "log.h"


/* libext2fs writes an inode after every change of its extent tree
 * (update_path) and at the end of ext2fs_fallocate: each write reads the
 * inode table block, checksums the inode and stores the block again. While
 * an inode is assembled in memory (ext4_inode_hold), its writes are of our own
 * buffer, which already holds the change: they are dropped, and
 * ext4_inode_commit() writes the finished inode once. Writes of any other
 * buffer go through. */
errcode_t ext4_held_write(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode *inode)
{
	const struct build *b = fs->priv_data;

	if (b->held && inode == b->held && ino == b->held_ino)
		return 0;
	return EXT2_ET_CALLBACK_NOTHANDLED;
}

/* Owner, mode, times and link count from st. The caller sets size, flags
 * and i_block.
 *
 * Times: mtime always, to the nanosecond. atime and ctime are not part of
 * the tree's identity (reading a file re-times its atime, copying a tree
 * re-times every ctime, and the tree digest covers neither), so by default
 * they, and crtime, equal mtime: the same tree always gives the same bytes.
 * With keep_atime_ctime they come from the source (crtime = ctime: lstat has
 * no birth time). */
void ext4_inode_init(const struct build *b, union inode_buf *ib,
		     const struct tree_stat *st, uint32_t links)
{
	struct ext2_inode_large *in = &ib->in;
	uint32_t uid = b->o->root_owner ? 0 : st->st_uid;
	uint32_t gid = b->o->root_owner ? 0 : st->st_gid;
	const struct tree_time *at = &st->st_mtim, *ct = &st->st_mtim;

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
int ext4_inode_init_extents(struct build *b, ext2_ino_t ino,
			    union inode_buf *ib)
{
	ext2_extent_handle_t h;
	errcode_t err;

	err = ext2fs_extent_open2(b->fs, ino, (struct ext2_inode *)&ib->in, &h);
	if (err) {
		log_error("ext4: extent tree for inode %u: %s", ino,
			  error_message(err));
		return ext4_err(err);
	}
	ext2fs_extent_free(h);
	return 0;
}

int ext4_inode_write(struct build *b, ext2_ino_t ino, union inode_buf *ib)
{
	errcode_t err = ext2fs_write_inode_full(b->fs, ino, INODE(ib), INODE_SIZE);

	if (err) {
		log_error("ext4: writing inode %u: %s", ino, error_message(err));
		return ext4_err(err);
	}
	return 0;
}

/* Assemble inode ino in *ib: until ext4_inode_commit(), libext2fs's writes of
 * *ib are dropped (ext4_held_write). The extent calls must be given *ib. */
void ext4_inode_hold(struct build *b, ext2_ino_t ino, union inode_buf *ib)
{
	b->held = INODE(ib);
	b->held_ino = ino;
}

/* End the hold; if ret is 0 (the assembly worked), write the inode. */
int ext4_inode_commit(struct build *b, ext2_ino_t ino, union inode_buf *ib, int ret)
{
	b->held = NULL;
	return ret ? ret : ext4_inode_write(b, ino, ib);
}

int ext4_inode_new(struct build *b, ext2_ino_t dir, mode_t mode,
		   ext2_ino_t *ino)
{
	errcode_t err = ext2fs_new_inode(b->fs, dir, (int)mode, NULL, ino);

	if (err)
		return ext4_err(err);
	ext2fs_inode_alloc_stats2(b->fs, *ino, +1, S_ISDIR(mode));
	return 0;
}

/* ---- non-directory inodes -------------------------------------------------- */

static int make_file(struct build *b, ext2_ino_t ino, const struct tree_node *n,
		     uint32_t links)
{
	union inode_buf ib;
	errcode_t err;
	int ret;

	ext4_inode_init(b, &ib, &n->st, links);
	err = ext2fs_inode_size_set(b->fs, INODE(&ib), (uint64_t)n->st.st_size);
	if (err)
		return ext4_err(err);
	/* A file with data gets its empty extent tree from the first extent
	 * open on it (ext2fs_fallocate's, or ext4_for_each_extent's when the file is
	 * all holes), which initialises an all-zero i_block: only the flag is
	 * set here, saving an open per file. */
	if (n->st.st_size)
		ib.in.i_flags |= EXT4_EXTENTS_FL;
	else if ((ret = ext4_inode_init_extents(b, ino, &ib)))
		return ret;
	if (n->st.st_size && n->file == SRCFILE_NONE) {
		char *p = ext4_path(n);

		log_error("ext4: /%s has data but no source file id", p);
		ext4_free_path(p);
		return -EINVAL;
	}
	if (n->st.st_size) {
		b->nfiles++;
		ext4_inode_hold(b, ino, &ib);
		ret = ext4_file_data(b, ino, &ib, n);
	}
	ret = ext4_inode_commit(b, ino, &ib, ret);
	if (!ret)
		ret = ext4_set_xattrs(b, ino, n);
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

	ext4_inode_init(b, &ib, &n->st, links);
	ib.in.i_size = (uint32_t)len;
	if (len < sizeof(ib.in.i_block)) {
		/* Fast symlink: the target lives in i_block. */
		if (len)
			memcpy(ib.in.i_block, n->link, len);
		ret = ext4_inode_write(b, ino, &ib);
		if (!ret)
			ret = ext4_set_xattrs(b, ino, n);
		return ret;
	}
	if (len >= BS) {
		char *p = ext4_path(n);

		log_error("ext4: /%s: symlink target longer than a block", p);
		ext4_free_path(p);
		return -ENAMETOOLONG;
	}
	/* Slow symlink: one block, which is metadata (it goes to the store). */
	ret = ext4_inode_init_extents(b, ino, &ib);
	if (ret)
		goto out;
	ext4_inode_hold(b, ino, &ib);
	ret = ext4_alloc_blocks(b, ino, &ib, 1, &pblk);
	ret = ext4_inode_commit(b, ino, &ib, ret);
	if (!ret)
		ret = ext4_set_xattrs(b, ino, n);
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
		ret = ext4_err(err);
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
	unsigned maj = major(n->rdev), min = minor(n->rdev);
	int ret;

	ext4_inode_init(b, &ib, &n->st, links);
	if (S_ISCHR(n->st.st_mode) || S_ISBLK(n->st.st_mode)) {
		if (maj < 256 && min < 256) {
			ib.in.i_block[0] = maj * 256 + min;
		} else {
			ib.in.i_block[1] = (min & 0xff) | (maj << 8) |
					   ((min & ~0xffu) << 12);
		}
	}
	ret = ext4_inode_write(b, ino, &ib);
	if (!ret)
		ret = ext4_set_xattrs(b, ino, n);
	return ret;
}

/* Create (or, for a further hard link, find) the inode of non-directory n
 * in directory dir. */
int ext4_make_nondir(struct build *b, ext2_ino_t dir,
		     const struct tree_node *n, ext2_ino_t *ino)
{
	struct hl_ent *hl = NULL;
	uint32_t links = 1;
	int ret;

	if (is_multilink(n)) {
		hl = ext4_hl_find(&b->links, n->st.st_dev, n->st.st_ino);
		if (!hl)
			return -EIO;    /* counted in pass 1: cannot happen */
		if (hl->e_ino) {
			*ino = hl->e_ino;
			b->nlinks++;
			return 0;
		}
		links = hl->count;
		if (links > EXT2_LINK_MAX) {
			char *p = ext4_path(n);

			log_error("ext4: /%s has %u hard links; ext4 allows %u",
				  p, links, EXT2_LINK_MAX);
			ext4_free_path(p);
			return -EMLINK;
		}
	}
	ret = ext4_inode_new(b, dir, n->st.st_mode, ino);
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
		char *p = ext4_path(n);

		log_error("ext4: /%s: unsupported file type %#o", p,
			  (unsigned)(n->st.st_mode & S_IFMT));
		ext4_free_path(p);
		return -EINVAL;
	}
	}
}

