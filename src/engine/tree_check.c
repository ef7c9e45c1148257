/* tree_check.c - has the source tree changed since it was scanned?
 *
 * tree_unchanged() runs on every open of disk.img that finds no handle open,
 * so it sits between the user and the first byte of the image: one fstatat
 * per entry, no readdir and no xattr read. The directories are visited by
 * a tree walk (tree_walk.c) on a few threads once the tree is large enough
 * to repay starting them; each visit stats one directory's entries against
 * the scan and queues its subdirectories.
 *
 * A directory is opened by its path with no symlink followed and must be
 * the scanned one (st_dev, st_ino): a directory swapped for a symlink or for
 * another directory is also caught by the stat of it in its parent's visit,
 * so the answer never depends on which thread ran first. Any error means
 * "changed".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tree.h"
#include "tree_walk.h"

/* Below this many entries one thread is quicker than starting others. */
#define PARALLEL_MIN_NODES 4096

/* The walk's result when something changed. */
#define CHANGED 1

bool tree_stat_same(const struct stat *a, const struct tree_stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	       ((a->st_mode ^ b->st_mode) & S_IFMT) == 0 && a->st_size == b->st_size &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       (uint32_t)a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       (uint32_t)a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The entries of dir (open as fd), then its subdirectories queued. */
static int check_dir(struct tree_walk *w, void *wctx, struct tree_node *dir, int fd,
		     char *path, size_t plen)
{
	if (fd < 0)
		return CHANGED;
	for (size_t i = 0; i < dir->nkids; i++) {
		const struct tree_node *k = dir->kids[i];
		struct stat st;

		if (tree_walk_stopping(w))
			return 0;
		if (k->virt)    /* from the device table: nothing to stat */
			continue;
		if (fstatat(fd, k->name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !tree_stat_same(&st, &k->st))
			return CHANGED;
	}
	return tree_walk_push_subdirs(w, dir) < 0 ? CHANGED : 0;
}

static const struct tree_walk_ops check_ops = { .visit = check_dir };

bool tree_unchanged(const struct tree *t)
{
	return tree_unchanged_n(t, 0);
}

bool tree_unchanged_n(const struct tree *t, unsigned threads)
{
	struct stat st;
	int root_fd;
	bool ok;

	if (!t->root)
		return false;
	root_fd = open(t->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return false;
	/* The walk hands visits writable nodes (for the scan); this one only
	 * reads them. */
	ok = fstat(root_fd, &st) == 0 && tree_stat_same(&st, &t->root->st) &&
	     tree_walk_run(root_fd, (struct tree_node *)t->root,
			   t->nodes < PARALLEL_MIN_NODES ? 1 : threads,
			   O_PATH, &check_ops, NULL) == 0;
	close(root_fd);
	return ok;
}
