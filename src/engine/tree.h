/* tree.h - the scanned source tree.
 *
 * tree_scan() walks ROOTFS once (lstat, readlink, xattrs; never reads file
 * data and never writes) and builds an in-memory tree. Children are sorted by
 * byte-wise name so everything derived from the tree is deterministic.
 * The tree is immutable once scanned (but for tree_node.warned, which
 * srcfile.c sets atomically).
 *
 * Memory: every node, name, children array, symlink target and extended
 * attribute lives in the tree's arena (arena.h), freed by tree_free() only;
 * a regular file's source record is its node (srcfile.h), its path rebuilt
 * from the parents when needed (tree_path). A million-file tree costs about
 * 144 bytes per file here: the node and its name (128 for a 7-byte name),
 * its slot in the parent's children array and its srcfiles slot (8 each).
 */
#ifndef RPIFS_TREE_H
#define RPIFS_TREE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/stat.h>
#include "arena.h"
#include "srcfile.h"
#include "digest.h"
#include "rpifs.h"

struct xattr {
	char *name;             /* full name, e.g. "security.capability" */
	void *value;
	size_t len;
};

/* A time as the tree keeps it: struct timespec's fields in 12 bytes, not 16
 * (a million entries times four times). */
struct tree_time {
	int64_t tv_sec;
	uint32_t tv_nsec;
} __attribute__((packed, aligned(4)));

/* What the scan keeps of an entry's statx(): only the fields rpifs uses,
 * named as in struct stat so that code reads the same. 88 bytes against
 * struct stat's 144. The block count is kept as tree_node.sparse, the
 * device number of a device node as tree_node.rdev. */
struct tree_stat {
	uint64_t st_dev;
	uint64_t st_ino;
	int64_t st_size;
	uint32_t st_mode;
	uint32_t st_uid;
	uint32_t st_gid;
	uint32_t st_nlink;
	struct tree_time st_mtim;
	struct tree_time st_ctim;
	struct tree_time st_atim;
	struct tree_time st_btime;  /* birth time of a regular file, {0,0} if
				     * unknown or not a regular file */
};

/* One entry of the tree, 120 bytes and its name, allocated from the tree's
 * arena (arena.h): nothing in a node is freed on its own.
 * Invariants, by type (st.st_mode):
 *   directory:    kids[nkids], sorted by strcmp, exactly sized; file unused
 *   regular file: file (its srcfiles id, SRCFILE_NONE until registered);
 *                 nkids reads as the id, so test S_ISDIR first; kids unused
 *   symlink:      link (its target), nkids 0
 *   char/block device: rdev, nkids 0
 *   others:       nkids 0, kids/link/rdev zero. */
struct tree_node {
	struct tree_node *parent;
	union {
		struct tree_node **kids;    /* directories */
		char *link;                 /* symlinks */
		uint64_t rdev;              /* character and block devices */
	};
	struct xattr *xattrs;
	struct tree_stat st;            /* statx() at scan time */
	union {
		uint32_t nkids;             /* directories */
		uint32_t file;              /* regular files: srcfiles id */
	};
	uint16_t nxattrs;
	bool virt : 1;          /* added by a device table (devtable.h): not in
				 * the source, the change check skips it */
	bool sparse : 1;        /* a regular file with fewer blocks allocated
				 * than its size: it may have holes */
	uint8_t warned;         /* srcfile.c (atomic): a change was logged */
	char name[];            /* component name; "" for the root */
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
	struct arena arena;     /* the nodes and all they point to */
	uint64_t nregular;      /* scan only (atomic): regular files seen */
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
 * mtime of a stat taken now against the scan's. Not the permission bits: a
 * chmod moves ctime, and a device table may have set them (devtable.h). */
bool tree_stat_same(const struct stat *now, const struct tree_stat *scan);
/* The scan's record of a stat (and birth time, may be NULL). */
void tree_stat_set(struct tree_stat *ts, const struct stat *st,
		   const struct timespec *btime);

/* A new node called name in t's arena, zero but for its name; NULL when out
 * of memory. It lives until tree_free(). */
struct tree_node *tree_node_new(struct arena *a, const char *name, size_t len);
/* Put k (not yet in a tree, from t's arena) among dir's children in name
 * order; a child of the same name is replaced (its memory stays in the
 * arena until tree_free()). 1 added, 0 replaced, -ENOMEM. The caller keeps
 * t->nodes. */
int tree_put_child(struct tree *t, struct tree_node *dir, struct tree_node *k);

/* The child of dir called name, or NULL. */
struct tree_node *tree_child(const struct tree_node *dir, const char *name);
/* Look up a relative path from dir ("a/b", "../c", "/abs" is relative to the
 * tree root), following symlinks inside the tree (at most 40). Returns NULL
 * if the path leaves the tree or does not exist. */
struct tree_node *tree_lookup(const struct tree *t, const struct tree_node *dir,
			      const char *path);
/* Path of node relative to the root ("" for the root). malloc'd. */
char *tree_path(const struct tree_node *node);
/* The same into buf of size bytes: its length, or -ENAMETOOLONG. */
long tree_path_into(const struct tree_node *node, char *buf, size_t size);
/* True if node is anc or below it. */
bool tree_is_under(const struct tree_node *node, const struct tree_node *anc);

#endif
