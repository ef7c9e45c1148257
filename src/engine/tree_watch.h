/* tree_watch.h - know that a scanned tree is unchanged without a stat of
 * every entry.
 *
 * tree_unchanged() costs one stat per entry on every open of disk.img that
 * finds no handle open: 8 ms for the 6 300 entries of a Debian tree, about
 * a second for a million. With tree_scan_opts.watch the scan puts an
 * inotify watch on each directory just before it lists it: whatever
 * changes before the watch, the listing and the stats that follow see;
 * whatever changes after it queues an event. tree_watch_quiet() then
 * answers "unchanged" by draining the queue: no event since the scan (or
 * since the last tree_watch_clean()), nothing changed.
 *
 * What inotify does not see, the watch does not trust:
 *  - a filesystem other than the local ones listed in tree_watch.c (NFS,
 *    CIFS, FUSE, overlayfs, ...: changes made elsewhere raise no event
 *    here): no watch;
 *  - an entry with hard links outside the tree, or a file bind-mounted
 *    onto it (a change through the other name raises its event elsewhere):
 *    it is stat'ed on each tree_watch_quiet();
 *  - a write through mmap() to a file whose descriptor was already closed
 *    raises no event: it is served after the next change that does, or
 *    always with rpifs --no-inotify.
 * A watch that cannot be set up (the limit fs.inotify.max_user_watches, no
 * inotify) is not used: tree_watch_quiet() says false and the caller checks
 * every entry, as without a watch.
 *
 * Thread model: tree_watch_add() and tree_watch_mount_point() may be called
 * by the scan's threads at once; everything else by one thread at a time
 * (the scan's caller, then the server under its lock).
 */
#ifndef RPIFS_TREE_WATCH_H
#define RPIFS_TREE_WATCH_H

#include <stdbool.h>
#include "tree.h"

struct tree_watch;

/* For the scan. A watch for the tree whose root directory is open as
 * root_fd (NULL: none can be had, e.g. not a local filesystem). */
struct tree_watch *tree_watch_new(int root_fd);
/* Watch the directory at path (relative to the caller's cwd) before it is
 * listed. A failure only makes the watch unusable. */
void tree_watch_add(struct tree_watch *w, const char *path);
/* Directory fd is a mount point inside the tree: it must be local too. */
void tree_watch_mount_point(struct tree_watch *w, int fd);
/* The scan of t is complete (t->watch is w): list the entries the events
 * do not cover. False if the watch cannot be used (then free it). */
bool tree_watch_finish(struct tree_watch *w, const struct tree *t);

/* For the server. True when the tree is certainly as scanned; false (NULL
 * included) means "check every entry". */
bool tree_watch_quiet(struct tree_watch *w);
/* After a false tree_watch_quiet() the caller checked every entry and found
 * the tree unchanged: the events drained by that call were spurious. */
void tree_watch_clean(struct tree_watch *w);
void tree_watch_free(struct tree_watch *w);

#endif
