/* tree.h - the scanned source tree.
 *
 * tree_scan() walks ROOTFS once (lstat, readlink, xattrs; never reads file
 * data and never writes) and builds an in-memory tree. Children are sorted by
 * byte-wise name so everything derived from the tree is deterministic.
 * The tree is immutable once scanned.
 */
#ifndef RPIFS_TREE_H
#define RPIFS_TREE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/stat.h>
#include "srcfile.h"
#include "digest.h"
#include "rpifs.h"

struct xattr {
	char *name;             /* full name, e.g. "security.capability" */
	void *value;
	size_t len;
};

struct tree_node {
	char *name;             /* component name; "" for the root */
	struct stat st;         /* lstat() at scan time */
	struct tree_node *parent;
	struct tree_node **kids;/* directories only; sorted by strcmp */
	size_t nkids;
	char *link;             /* symlink target, else NULL */
	struct xattr *xattrs;
	size_t nxattrs;
	uint32_t file;          /* srcfiles id of a regular file, else SRCFILE_NONE */
	struct timespec btime;  /* birth time of a regular file, {0,0} if unknown */
	bool virt;              /* added by a device table (devtable.h): not in
				 * the source, the change check skips it */
};

struct tree_watch;

struct tree {
	char *root_path;        /* as given by the user */
	struct tree_node *root;
	struct srcfiles files;
	uint64_t nodes;         /* all nodes including the root */
	uint64_t data_bytes;    /* sum of regular file sizes */
	int64_t newest_mtime;   /* seconds; for default timestamps */
	struct digest digest;   /* over names, types, modes, owners, sizes, mtimes, links, xattrs */
	struct tree_watch *watch; /* inotify watches (tree_watch.h), or NULL */
	uint64_t unmapped;      /* scan only (atomic): entries with an id outside
				 * tree_scan_opts.idmap */
};

struct tree_scan_opts {
	bool xattrs;            /* read extended attributes (default true) */
	bool progress;          /* print a progress line on a tty */
	unsigned threads;       /* scanning threads; 0: one per CPU, at most 4 */
	bool watch;             /* watch every directory with inotify as it is
				 * scanned: t->watch (tree_watch.h) */
	const struct rpifs_idmap *idmap; /* host ids to image ids (idmap.h): owners, */
	size_t nidmap;          /* ACLs, capabilities; 0: ids as they are */
	const struct devtable *devices; /* nodes added after the scan, or NULL */
};

/* Returns 0 or -errno; errors are logged naming the path. */
int tree_scan(struct tree *t, const char *root_path,
	      const struct tree_scan_opts *opts);
void tree_free(struct tree *t);

/* Quick change check: true when every scanned entry still has the same
 * inode, type, size and change time (ctime moves with any change of data,
 * mode, owner, xattrs, or, for a directory, its entries) -- a few syscalls
 * per entry, no readdir, no xattr reads. False means "rescan": some entry
 * changed or cannot be checked. */
bool tree_unchanged(const struct tree *t);
/* The same on at most threads threads (0: as many as repay starting them). */
bool tree_unchanged_n(const struct tree *t, unsigned threads);
/* What the change check compares: inode, device, type, size, ctime and
 * mtime. Not the permission bits: a chmod moves ctime, and a device table
 * may have set them (devtable.h). */
bool tree_stat_same(const struct stat *a, const struct stat *b);

/* Free n and everything below it. */
void tree_node_free(struct tree_node *n);
/* Put k (not yet in a tree) among dir's children in name order; a child of
 * the same name is freed and replaced. 1 added, 0 replaced, -ENOMEM. The
 * caller keeps t->nodes. */
int tree_put_child(struct tree_node *dir, struct tree_node *k);

/* The child of dir called name, or NULL. */
struct tree_node *tree_child(const struct tree_node *dir, const char *name);
/* Look up a relative path from dir ("a/b", "../c", "/abs" is relative to the
 * tree root), following symlinks inside the tree (at most 40). Returns NULL
 * if the path leaves the tree or does not exist. */
struct tree_node *tree_lookup(const struct tree *t, const struct tree_node *dir,
			      const char *path);
/* Path of node relative to the root ("" for the root). malloc'd. */
char *tree_path(const struct tree_node *node);
/* True if node is anc or below it. */
bool tree_is_under(const struct tree_node *node, const struct tree_node *anc);

#endif
