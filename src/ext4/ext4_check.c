/* ext4_check.c - what the tree asks of ext4 that ext4 cannot give, found
 * before the build.
 *
 * A server builds ext4 after it has mounted (rpifs_opts.defer_ext4): an
 * error of the build then fails partition 2's reads instead of the command.
 * So the limits a tree can break are checked here first, while the command
 * can still refuse it, naming the file: more hard links to one file than
 * ext4 counts, a symlink target longer than a block, extended attributes
 * that cannot fit in an inode and its one block. Names longer than ext4's
 * 255 bytes are refused by the size estimate's census already (layout).
 * The build keeps its own checks: this one is the early word, not the only
 * one. The warnings about the input (a label cut to 16 bytes, a lost+found
 * that is not a directory) are said here only, before the mount, for
 * every build. The xattr bound is the sure one (more bytes than the inode body and
 * a block hold together); a set under it that libext2fs still cannot place
 * is the build's to report.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ext4_i.h"
#include "log.h"

/* Bytes of attributes no inode can hold: its body's room plus one block
 * less the block's header and the 4-byte end of its entry list. */
#define XATTR_MAX (XATTR_ROOM + BS - sizeof(struct ext2_ext_attr_header) - 4)

static int refuse(const struct tree_node *n, int err, const char *fmt, unsigned v)
{
	char *p = ext4_path(n);

	log_error(fmt, p, v);
	ext4_free_path(p);
	return err;
}

/* Pass 1: every limit of one node, and hard links counted. */
static int check_dir(const struct tree_node *d, const struct tree_node *skip,
		     struct hl_map *links)
{
	int ret;

	if (ext4_xattr_bytes(d) > XATTR_MAX)
		return refuse(d, -E2BIG, "ext4: /%s: extended attributes larger than ext4 "
			      "can store for one inode (%u bytes)", BS);
	if (d == skip)
		return 0;
	for (size_t i = 0; i < d->nkids; i++) {
		const struct tree_node *k = d->kids[i];

		if (S_ISDIR(k->st.st_mode)) {
			ret = check_dir(k, skip, links);
			if (ret)
				return ret;
			continue;
		}
		if (is_multilink(k)) {
			bool seen = ext4_hl_find(links, k->st.st_dev, k->st.st_ino);

			ret = ext4_hl_add(links, k->st.st_dev, k->st.st_ino);
			if (ret)
				return ret;
			if (seen)
				continue;       /* one inode: checked at its first name */
		}
		if (S_ISLNK(k->st.st_mode) && k->link && strlen(k->link) >= BS)
			return refuse(k, -ENAMETOOLONG, "ext4: /%s: symlink target longer "
				      "than a block (%u bytes)", BS);
		if (ext4_xattr_bytes(k) > XATTR_MAX)
			return refuse(k, -E2BIG, "ext4: /%s: extended attributes larger than "
				      "ext4 can store for one inode (%u bytes)", BS);
	}
	return 0;
}

/* Pass 2, only when a count is over: the first name of such a file. */
static const struct tree_node *over_linked(const struct tree_node *d,
					   const struct tree_node *skip,
					   struct hl_map *links)
{
	if (d == skip)
		return NULL;
	for (size_t i = 0; i < d->nkids; i++) {
		const struct tree_node *k = d->kids[i], *x;
		struct hl_ent *e;

		if (S_ISDIR(k->st.st_mode)) {
			if ((x = over_linked(k, skip, links)))
				return x;
		} else if (is_multilink(k) &&
			   (e = ext4_hl_find(links, k->st.st_dev, k->st.st_ino)) &&
			   e->count > EXT2_LINK_MAX) {
			return k;
		}
	}
	return NULL;
}

int ext4_check(const struct tree *t, const struct tree_node *skip,
	       const struct ext4_opts *o)
{
	struct hl_map links = { 0 };
	const struct tree_node *n;
	int ret;

	if (!t || !t->root)
		return -EINVAL;
	/* The build's warnings, said here: after a deferred mount the build
	 * runs detached and its log goes to syslog, not to the command. */
	if (o->label && o->label[ext4_label_len(o->label)])
		log_warn("ext4 label \"%s\" cut to %zu bytes", o->label,
			 ext4_label_len(o->label));
	n = tree_child(t->root, "lost+found");
	if (n && !S_ISDIR(n->st.st_mode))
		log_warn("ext4: /lost+found is not a directory; the filesystem will have none");
	ret = check_dir(t->root, skip, &links);
	if (ret == 0 && (n = over_linked(t->root, skip, &links))) {
		struct hl_ent *e = ext4_hl_find(&links, n->st.st_dev, n->st.st_ino);
		char *p = ext4_path(n);

		log_error("ext4: /%s has %u hard links; ext4 allows %u", p, e->count,
			  EXT2_LINK_MAX);
		ext4_free_path(p);
		ret = -EMLINK;
	}
	free(links.v);
	return ret;
}
