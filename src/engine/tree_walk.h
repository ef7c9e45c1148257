/* tree_walk.h - visit the directories of a tree on several threads.
 *
 * Both the scan (tree.c) and the change check of an open (tree_check.c)
 * visit every directory once and spend their time in syscalls on its
 * entries. A walk hands directories out one at a time from a shared stack,
 * so the threads stay busy however lopsided the tree is (a Debian tree
 * keeps two thirds of its entries under /usr/share).
 *
 * Each worker pops a directory, opens it below the root (never following a
 * symlink: srcfile_open_beneath), checks that it is still the directory
 * recorded in its node (st_dev, st_ino), and calls visit(), which may push
 * that directory's subdirectories. The walk ends when the stack is empty
 * and no worker is visiting, or when a visit returns non-zero: that value
 * is the walk's result and the other workers stop at their next pop.
 *
 * Nodes are only read by the walk; a visit owns the node it was given (and
 * may fill it) until it returns. Which thread visits which directory is not
 * defined: a visit must not depend on it.
 */
#ifndef RPIFS_TREE_WALK_H
#define RPIFS_TREE_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include "tree.h"

/* The longest relative path a walk builds (beyond PATH_MAX: opened
 * component by component). */
#define TREE_PATH_MAX 8192
/* At most this many threads take part, the caller included. */
#define TREE_WALK_MAX_THREADS 4

struct tree_walk;

struct tree_walk_ops {
	/* Per-worker state, created and destroyed on the worker's own thread
	 * (first is true for the calling thread). NULL from start is an
	 * out-of-memory error. Either may be NULL. */
	void *(*start)(void *ctx, bool first);
	void (*end)(void *ctx, void *wctx);
	/* Visit dir, open as fd with the walk's open flags; fd < 0 is the
	 * -errno of the open (-ESTALE: another directory stands there now).
	 * path holds dir's relative path ("" for the root), plen bytes, in a
	 * buffer of TREE_PATH_MAX bytes that belongs to this worker: visit may
	 * append to it. 0 to go on; anything else ends the walk. */
	int (*visit)(struct tree_walk *w, void *wctx, struct tree_node *dir, int fd,
		     char *path, size_t plen);
};

/* Walk from root (whose st is its identity) below root_fd with up to
 * threads threads (0: one per CPU, at most TREE_WALK_MAX_THREADS); open_flags
 * are srcfile_open_beneath() flags (O_DIRECTORY is added). Returns 0, the
 * first non-zero visit result, or -errno of the walk itself. */
int tree_walk_run(int root_fd, struct tree_node *root, unsigned threads, int open_flags,
		  const struct tree_walk_ops *ops, void *ctx);
/* Queue every subdirectory of dir (S_ISDIR in its node's st), in name order. */
int tree_walk_push_subdirs(struct tree_walk *w, const struct tree_node *dir);
/* True once the walk is ending: a long visit may stop early. */
bool tree_walk_stopping(struct tree_walk *w);
/* The ctx given to tree_walk_run. */
void *tree_walk_ctx(struct tree_walk *w);

#endif
