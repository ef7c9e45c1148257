/* devtable.h - device nodes and fifos added to the image from a table.
 *
 * An unprivileged build cannot mknod (refused in a user namespace), and a
 * tree copied by a user loses its device nodes. A device table names the
 * nodes the image needs without creating them in the tree, in the format
 * of genext2fs, makedevs and Buildroot's device_table.txt:
 *
 *   # path    type mode uid gid major minor [start inc count]
 *   /dev/console c 600  0   0   5     1
 *   /dev/ttyS    c 660  0   5   4     64    0     1   4   (ttyS0..ttyS3)
 *   /dev/initctl p 600  0   0   -     -
 *   /tmp         d 1777 0   0   -     -
 *
 * Types: c and b (device nodes) and p (fifo) add an entry, replacing one of
 * the same name in the tree; d and f change the mode and owner of a
 * directory or regular file the tree holds (Buildroot tables use them for
 * /tmp, /etc/shadow). Ids are the image's (no --idmap applies). With
 * start/inc/count, count nodes NAME<start>... with minor, minor+inc, ...
 * A node's parent must be a directory of the tree. The table is read once,
 * checked whole, and applied to every scan (tree.c) before the digest, so
 * the entries are part of the image's identity.
 */
#ifndef RPIFS_DEVTABLE_H
#define RPIFS_DEVTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct devtable_entry {
	char *path;             /* relative to the tree root, no leading '/' */
	mode_t mode;            /* type bits | permission bits */
	uint32_t uid, gid;
	dev_t rdev;             /* c and b only */
	unsigned line;          /* in the table, for messages */
};

struct devtable {
	char *file;             /* the table's path, for messages */
	struct devtable_entry *e;
	size_t n;
};

/* Parse file into t (ranges expanded). 0, or -errno with a message naming
 * the file, the line and the problem. */
int devtable_load(struct devtable *t, const char *file);
void devtable_free(struct devtable *t);

struct tree;
/* Apply t to a scanned tree: add or replace the nodes, change the modes.
 * 0 or -errno (a parent not in the tree, a d/f entry the tree lacks or of
 * another type), logged naming the table line. */
int devtable_apply(const struct devtable *t, struct tree *tree);

#endif
