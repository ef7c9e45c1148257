/* tree_watch.c - inotify watches on every directory of a scanned tree (see
 * tree_watch.h).
 *
 * The scan adds the watches, one per directory before listing it, from its
 * threads (one inotify instance; inotify_add_watch is a syscall on a shared
 * descriptor). Afterwards tree_watch_finish() lists the entries whose
 * changes would raise their events outside the watched directories. From
 * then on:
 *
 *   unchanged since the scan (or the last clean state)  <=>  no event
 *   queued, and no listed outside entry changed
 *
 * which is what tree_watch_quiet() tests. Events are drained, never kept:
 * their kind does not matter, any event means "check".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include "log.h"
#include "tree_watch.h"
#include "vector.h"

/* Filesystems whose every change is made, and so reported, on this host.
 * Network and stacked ones (NFS, CIFS, FUSE, 9p, overlayfs) can change
 * behind inotify's back. */
static const unsigned long LOCAL_FS[] = {
	EXT4_SUPER_MAGIC,       /* ext2, ext3, ext4 */
	XFS_SUPER_MAGIC,
	BTRFS_SUPER_MAGIC,
	TMPFS_MAGIC,
	RAMFS_MAGIC,
	F2FS_SUPER_MAGIC,
	0x2fc12fc1,             /* zfs */
	0xca451a4e,             /* bcachefs */
	0x3153464a,             /* jfs */
	REISERFS_SUPER_MAGIC,
};

/* IN_DONT_FOLLOW is not set: the scan adds "." or a /proc/self/fd link. */
#define WATCH_MASK (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | \
		    IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct outside {
	const struct tree_node *n;
	char *path;             /* relative to the root */
};

struct tree_watch {
	int fd;                 /* inotify */
	int root_fd;            /* O_PATH, the tree's root */
	atomic_int error;       /* first errno of a failed add, 0 if none */
	atomic_uint watches;
	bool dirty;             /* something changed since the last clean state */
	struct outside *out;
	size_t nout, capout;
};

static bool local_fs(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return false;
	for (size_t i = 0; i < sizeof(LOCAL_FS) / sizeof(LOCAL_FS[0]); i++)
		if ((unsigned long)sf.f_type == LOCAL_FS[i])
			return true;
	return false;
}

struct tree_watch *tree_watch_new(int root_fd)
{
	struct tree_watch *w;

	if (!local_fs(root_fd))
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	w->root_fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
	if (w->fd < 0 || w->root_fd < 0) {
		log_debug("inotify: %s: every open checks every entry", strerror(errno));
		if (w->fd >= 0)
			close(w->fd);
		if (w->root_fd >= 0)
			close(w->root_fd);
		free(w);
		return NULL;
	}
	return w;
}

static void set_error(struct tree_watch *w, int err)
{
	int none = 0;

	atomic_compare_exchange_strong(&w->error, &none, err);
}

void tree_watch_add(struct tree_watch *w, const char *path)
{
	if (!w || atomic_load_explicit(&w->error, memory_order_relaxed))
		return;
	if (inotify_add_watch(w->fd, path, WATCH_MASK) < 0)
		set_error(w, errno);
	else
		atomic_fetch_add_explicit(&w->watches, 1, memory_order_relaxed);
}

void tree_watch_mount_point(struct tree_watch *w, int fd)
{
	if (w && !local_fs(fd))
		set_error(w, EXDEV);
}

static int add_outside(struct tree_watch *w, const struct tree_node *n)
{
	if (VEC_RESERVE(w->out, w->capout, w->nout + 1, 16) < 0)
		return -ENOMEM;
	w->out[w->nout].n = n;
	w->out[w->nout].path = tree_path(n);
	if (!w->out[w->nout].path)
		return -ENOMEM;
	w->nout++;
	return 0;
}

/* Non-directories with more than one name, and files on another device
 * than their directory (bind mounts): candidates for the outside list. */
struct link_ent {
	dev_t dev;
	ino_t ino;
	const struct tree_node *n;
};

struct links {
	struct link_ent *v;
	size_t n, cap;
};

static int collect(struct tree_watch *w, const struct tree_node *d, struct links *l)
{
	for (size_t i = 0; i < d->nkids; i++) {
		const struct tree_node *k = d->kids[i];
		int ret = 0;

		if (S_ISDIR(k->st.st_mode))
			ret = collect(w, k, l);
		else if (k->st.st_dev != d->st.st_dev)
			ret = add_outside(w, k);
		else if (k->st.st_nlink > 1) {
			if (VEC_RESERVE(l->v, l->cap, l->n + 1, 64) < 0)
				return -ENOMEM;
			l->v[l->n++] = (struct link_ent){ k->st.st_dev, k->st.st_ino, k };
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int cmp_link(const void *pa, const void *pb)
{
	const struct link_ent *a = pa, *b = pb;

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return 0;
}

bool tree_watch_finish(struct tree_watch *w, const struct tree *t)
{
	struct links l = { 0 };
	size_t i, j;
	int ret, err = atomic_load(&w->error);

	if (err) {
		log_debug("inotify: %s after %u watches%s: every open checks every entry",
			  err == EXDEV ? "a mount point inside the tree is not local" :
			  strerror(err), atomic_load(&w->watches), err == ENOSPC ?
			  " (the limit is fs.inotify.max_user_watches)" : "");
		return false;
	}
	ret = collect(w, t->root, &l);
	if (ret == 0 && l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_link);
	/* An inode with more names than the tree holds can change through a
	 * name outside it: one name of it is stat'ed on every open. */
	for (i = 0; ret == 0 && i < l.n; i = j) {
		for (j = i + 1; j < l.n && !cmp_link(&l.v[i], &l.v[j]); j++)
			;
		if ((nlink_t)(j - i) < l.v[i].n->st.st_nlink)
			ret = add_outside(w, l.v[i].n);
	}
	free(l.v);
	if (ret < 0)
		return false;
	log_debug("inotify: %u directories watched, %zu entries stat'ed on open",
		  atomic_load(&w->watches), w->nout);
	return true;
}

/* Read every queued event; any at all (an overflow included) or a read
 * error makes the watch dirty. */
static void drain(struct tree_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));

		if (n > 0) {
			w->dirty = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN)
			w->dirty = true;
		return;
	}
}

bool tree_watch_quiet(struct tree_watch *w)
{
	if (!w)
		return false;
	drain(w);
	for (size_t i = 0; !w->dirty && i < w->nout; i++) {
		struct stat st;

		if (fstatat(w->root_fd, w->out[i].path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !tree_stat_same(&st, &w->out[i].n->st))
			w->dirty = true;
	}
	return !w->dirty;
}

void tree_watch_clean(struct tree_watch *w)
{
	if (w)
		w->dirty = false;
}

void tree_watch_free(struct tree_watch *w)
{
	if (!w)
		return;
	close(w->fd);
	close(w->root_fd);
	for (size_t i = 0; i < w->nout; i++)
		free(w->out[i].path);
	free(w->out);
	free(w);
}
