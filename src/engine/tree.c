/* tree.c - scan the source tree into memory (see tree.h).
 *
 * The walk uses directory fds and *at() calls with AT_SYMLINK_NOFOLLOW, so
 * depth is not limited by PATH_MAX and no symlink is ever followed. There is
 * no l*xattr call relative to a directory fd: the scan gives itself a private
 * cwd (unshare(CLONE_FS)), changes into each directory once and reads the
 * xattrs by name; without that it goes through "/proc/self/fd/DIRFD/NAME".
 * One statx() per entry gives both the stat and the birth time. Nothing is
 * opened for writing. The change check of an open is in tree_check.c.
 *
 * Directories are visited on up to TREE_WALK_MAX_THREADS threads through a
 * tree walk (tree_walk.c): a visit lists one directory, stats and reads
 * each entry and queues the subdirectories; each thread has its own cwd,
 * path buffer, newest mtime and arena (adopted by the tree's when the thread
 * ends); node and byte counts are atomic. A visit fills only its own
 * directory's node and children: the children are allocated as the listing
 * is read, their array once it is complete (exactly sized). Source files get their
 * ids afterwards, in tree order (register_files), so the tree and the image
 * are the same whichever thread scanned what.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "devtable.h"
#include "idmap.h"
#include "log.h"
#include "tree.h"
#include "tree_walk.h"
#include "tree_watch.h"
#include "vector.h"

/* One per scanning thread. */
struct scan {
	struct tree *t;
	const struct tree_scan_opts *opts;
	bool check_read;        /* not root: check every file is readable */
	struct timespec last_progress;
	bool own_cwd;           /* this thread has its own cwd: xattrs by name */
	struct tree_watch *watch; /* shared by the threads, or NULL */
	const struct tree_node *cwd_dir; /* the directory that cwd is, or NULL */
	int64_t newest_mtime;
	char *path;             /* relative path of the current node, for messages
				 * (the walk's buffer: TREE_PATH_MAX bytes) */
	struct arena *arena;    /* where this thread's nodes go: own, or (before
				 * and after the walk) the tree's */
	struct arena own;       /* a scanning thread's: adopted by the tree's
				 * when the thread ends */
	struct tree_node **kids; /* a listing being read (reused) */
	size_t kids_cap;
	_Alignas(8) char dents[32768];  /* getdents64 buffer, as readdir's */
};

void tree_free(struct tree *t)
{
	/* The watch's helper thread reads the nodes: stop it first. */
	tree_watch_free(t->watch);
	srcfiles_free(&t->files);
	arena_free(&t->arena);
	free(t->root_path);
	memset(t, 0, sizeof(*t));
}

struct tree_node *tree_node_new(struct arena *a, const char *name, size_t len)
{
	struct tree_node *n = arena_alloc(a, sizeof(*n) + len + 1, _Alignof(struct tree_node));

	if (n)
		memcpy(n->name, name, len);     /* the '\0' is the arena's zero */
	return n;
}

void tree_stat_set(struct tree_stat *ts, const struct stat *st, const struct timespec *btime)
{
	ts->st_dev = st->st_dev;
	ts->st_ino = st->st_ino;
	ts->st_size = st->st_size;
	ts->st_mode = st->st_mode;
	ts->st_uid = st->st_uid;
	ts->st_gid = st->st_gid;
	ts->st_nlink = (uint32_t)st->st_nlink;
	ts->st_mtim = (struct tree_time){ st->st_mtim.tv_sec, (uint32_t)st->st_mtim.tv_nsec };
	ts->st_ctim = (struct tree_time){ st->st_ctim.tv_sec, (uint32_t)st->st_ctim.tv_nsec };
	ts->st_atim = (struct tree_time){ st->st_atim.tv_sec, (uint32_t)st->st_atim.tv_nsec };
	ts->st_btime = btime ? (struct tree_time){ btime->tv_sec, (uint32_t)btime->tv_nsec } :
		       (struct tree_time){ 0, 0 };
}

static int cmp_kids(const void *a, const void *b)
{
	const struct tree_node *x = *(struct tree_node *const *)a;
	const struct tree_node *y = *(struct tree_node *const *)b;

	return strcmp(x->name, y->name);
}

int tree_put_child(struct tree *t, struct tree_node *dir, struct tree_node *k)
{
	size_t lo = 0, hi = dir->nkids;
	struct tree_node **kids;

	while (lo < hi) {       /* the first child named after k */
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(dir->kids[mid]->name, k->name);

		if (c == 0) {
			dir->kids[mid] = k;     /* the old one stays in the arena */
			k->parent = dir;
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* A new array, exactly sized: the old one stays in the arena (a device
	 * table adds a few nodes; the scan's arrays are never grown). */
	kids = arena_alloc(&t->arena, (dir->nkids + 1) * sizeof(*kids), _Alignof(void *));
	if (!kids)
		return -ENOMEM;
	if (dir->nkids) {
		memcpy(kids, dir->kids, lo * sizeof(*kids));
		memcpy(kids + lo + 1, dir->kids + lo, (dir->nkids - lo) * sizeof(*kids));
	}
	kids[lo] = k;
	dir->kids = kids;
	dir->nkids++;
	k->parent = dir;
	return 1;
}

static void progress(struct scan *s, bool final)
{
	struct timespec now;

	if (!s->opts->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!final && (now.tv_sec - s->last_progress.tv_sec) * 1000000000L +
	    (now.tv_nsec - s->last_progress.tv_nsec) < 250000000L)
		return;
	s->last_progress = now;
	fprintf(stderr, "\rrpifs: scanning %s: %" PRIu64 " entries, %" PRIu64 " MiB%s",
		s->t->root_path, __atomic_load_n(&s->t->nodes, __ATOMIC_RELAXED),
		__atomic_load_n(&s->t->data_bytes, __ATOMIC_RELAXED) >> 20, final ? "\n" : "");
}

static ssize_t x_list(const char *p, bool follow, char *l, size_t n)
{
	return follow ? listxattr(p, l, n) : llistxattr(p, l, n);
}

static ssize_t x_get(const char *p, bool follow, const char *name, void *v, size_t n)
{
	return follow ? getxattr(p, name, v, n) : lgetxattr(p, name, v, n);
}

/* Read all xattrs of path p into n; follow only for the root's /proc path. */
static int read_xattrs(struct scan *s, const char *p, bool follow, struct tree_node *n)
{
	char *list = NULL;
	ssize_t len;
	int ret = 0;

	len = x_list(p, follow, NULL, 0);
	if (len < 0) {
		if (errno == ENOTSUP || errno == ENODATA)
			return 0;
		ret = -errno;
		log_error("%s/%s: listing extended attributes: %s", s->t->root_path,
			  s->path, strerror(errno));
		return ret;
	}
	if (len == 0)
		return 0;
	list = malloc((size_t)len);
	if (!list)
		return -ENOMEM;
	len = x_list(p, follow, list, (size_t)len);
	if (len < 0) {
		ret = -errno;
		goto out;
	}
	/* Count, then fetch each value; names in a stable (sorted) order. */
	size_t count = 0;
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1)
		count++;
	if (count > UINT16_MAX) {
		ret = -E2BIG;
		goto out;
	}
	n->xattrs = arena_alloc(s->arena, count * sizeof(*n->xattrs), _Alignof(struct xattr));
	if (!n->xattrs) {
		ret = -ENOMEM;
		goto out;
	}
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(list + i) + 1) {
		const char *xn = list + i;
		ssize_t vl = x_get(p, follow, xn, NULL, 0);
		struct xattr *x;

		if (vl < 0) {
			if (errno == ENODATA)
				continue;
			ret = -errno;
			log_error("%s/%s: reading extended attribute %s: %s",
				  s->t->root_path, s->path, xn, strerror(errno));
			goto out;
		}
		x = &n->xattrs[n->nxattrs];
		x->name = arena_strndup(s->arena, xn, strlen(xn));
		x->value = arena_alloc(s->arena, vl ? (size_t)vl : 1, 1);
		if (!x->name || !x->value) {
			ret = -ENOMEM;
			goto out;
		}
		vl = x_get(p, follow, xn, x->value, (size_t)vl);
		if (vl < 0) {
			ret = -errno;
			goto out;
		}
		x->len = (size_t)vl;
		n->nxattrs++;
	}
	for (size_t a = 1; a < n->nxattrs; a++)
		for (size_t b = a; b > 0 && strcmp(n->xattrs[b - 1].name, n->xattrs[b].name) > 0; b--) {
			struct xattr tmp = n->xattrs[b];
			n->xattrs[b] = n->xattrs[b - 1];
			n->xattrs[b - 1] = tmp;
		}
out:
	free(list);
	return ret;
}

static void digest_node(struct digest *d, const struct tree_node *n)
{
	digest_str(d, n->name);
	digest_u64(d, n->st.st_mode);
	digest_u64(d, n->st.st_uid);
	digest_u64(d, n->st.st_gid);
	digest_u64(d, S_ISDIR(n->st.st_mode) ? 0 : (uint64_t)n->st.st_size);
	digest_u64(d, (uint64_t)n->st.st_mtim.tv_sec);
	digest_u64(d, (uint64_t)n->st.st_mtim.tv_nsec);
	digest_u64(d, S_ISCHR(n->st.st_mode) || S_ISBLK(n->st.st_mode) ? n->rdev : 0);
	if (S_ISLNK(n->st.st_mode) && n->link)
		digest_str(d, n->link);
	for (size_t i = 0; i < n->nxattrs; i++) {
		digest_str(d, n->xattrs[i].name);
		digest_u64(d, n->xattrs[i].len);
		digest_bytes(d, n->xattrs[i].value, n->xattrs[i].len);
	}
}

/* Open a directory to read it. O_NOATIME: scanning must not touch the tree;
 * only the owner (or root) may ask for it, so retry without. -1 and errno. */
static int open_dir(int dirfd, const char *path, int flags)
{
	int fl = O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags;
	int fd = openat(dirfd, path, fl | O_NOATIME);

	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, path, fl);
	return fd;
}

/* Make cwd the directory dir (open as dirfd) unless it already is. */
static bool in_dir(struct scan *s, int dirfd, const struct tree_node *dir)
{
	if (!s->own_cwd)
		return false;
	if (s->cwd_dir != dir) {
		if (fchdir(dirfd) < 0) {
			s->cwd_dir = NULL;
			return false;
		}
		s->cwd_dir = dir;
	}
	return true;
}

/* Host ids to image ids (idmap.h), in the node's stat and attributes, so
 * that everything after the scan sees image ids only. An id outside the
 * map is logged naming the file (the first few) and counted: tree_scan()
 * then fails. */
static int map_ids(struct scan *s, struct tree_node *n, const char *path)
{
	const struct tree_scan_opts *o = s->opts;
	uint32_t uid, gid, bad;
	const char *what = "owner";
	int ret;

	if (!o->nidmap)
		return 0;
	bad = (uint32_t)n->st.st_uid;
	if (idmap_map(o->idmap, o->nidmap, bad, &uid) < 0)
		goto unmapped;
	bad = (uint32_t)n->st.st_gid;
	if (idmap_map(o->idmap, o->nidmap, bad, &gid) < 0) {
		what = "group";
		goto unmapped;
	}
	for (size_t i = 0; i < n->nxattrs; i++) {
		struct xattr *x = &n->xattrs[i];
		size_t len = x->len;

		ret = idmap_xattr(o->idmap, o->nidmap, x->name, x->value, &len, &bad);
		if (ret == -ERANGE) {
			what = x->name;
			goto unmapped;
		}
		if (ret < 0) {
			log_error("%s/%s: extended attribute %s: not a valid value "
				  "(%zu bytes)", s->t->root_path, path, x->name, x->len);
			return ret;
		}
		x->len = len;
	}
	n->st.st_uid = uid;
	n->st.st_gid = gid;
	return 0;
unmapped:
	if (__atomic_fetch_add(&s->t->unmapped, 1, __ATOMIC_RELAXED) < 10)
		log_error("%s/%s: id %" PRIu32 " (%s) is outside the id map", s->t->root_path,
			  path, bad, what);
	return 0;
}

/* Fill node n (name already set) from dirfd/name. plen = length of
 * s->path for the parent; on return s->path is restored to that length.
 * A directory's own entries are left for its visit. */
static int scan_entry(struct scan *s, int dirfd, struct tree_node *n, size_t plen)
{
	size_t nl = strlen(n->name);
	struct timespec bt;
	struct stat st;
	int ret = 0;

	if (plen + nl + 2 >= TREE_PATH_MAX) {
		log_error("%s: path too deep below %s", n->name, s->t->root_path);
		return -ENAMETOOLONG;
	}
	if (plen)
		s->path[plen++] = '/';
	memcpy(s->path + plen, n->name, nl + 1);

	ret = srcfile_stat(dirfd, n->name, AT_SYMLINK_NOFOLLOW, &st, &bt);
	if (ret < 0) {
		log_error("%s/%s: %s", s->t->root_path, s->path, strerror(-ret));
		goto out;
	}
	tree_stat_set(&n->st, &st, S_ISREG(st.st_mode) ? &bt : NULL);
	if (S_ISREG(st.st_mode)) {
		n->file = SRCFILE_NONE;         /* registered by register_files() */
		n->sparse = (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size;
	} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		n->rdev = st.st_rdev;
	}
	if (s->opts->xattrs) {
		char p[64 + NAME_MAX];

		/* There is no llistxattrat(): either change into the directory
		 * (this thread's own cwd; once per directory, as the entries of
		 * a directory are scanned in a row except for its subdirectories)
		 * and use the name, or go through /proc/self/fd, which costs a
		 * walk of proc's magic links. */
		if (in_dir(s, dirfd, n->parent))
			snprintf(p, sizeof(p), "%s", n->name);
		else
			snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", dirfd, n->name);
		ret = read_xattrs(s, p, false, n);
		if (ret < 0)
			goto out;
	}
	if ((ret = map_ids(s, n, s->path)) < 0)
		goto out;
	/* Counters shared by the scanning threads. */
	__atomic_fetch_add(&s->t->nodes, 1, __ATOMIC_RELAXED);
	if (n->st.st_mtim.tv_sec > s->newest_mtime)
		s->newest_mtime = n->st.st_mtim.tv_sec;

	if (S_ISLNK(n->st.st_mode)) {
		size_t cap = (size_t)n->st.st_size + 1;
		ssize_t l;

		n->link = arena_alloc(s->arena, cap, 1);
		if (!n->link) {
			ret = -ENOMEM;
			goto out;
		}
		l = readlinkat(dirfd, n->name, n->link, cap);
		if (l < 0 || (size_t)l >= cap) {
			ret = l < 0 ? -errno : -EAGAIN;
			log_error("%s/%s: reading symlink: %s", s->t->root_path, s->path,
				  l < 0 ? strerror(errno) : "it changed during the scan");
			goto out;
		}
		n->link[l] = '\0';
	} else if (S_ISREG(n->st.st_mode)) {
		if (s->check_read && faccessat(dirfd, n->name, R_OK, AT_EACCESS) < 0) {
			ret = -errno;
			log_error("%s/%s: cannot read it (%s): run rpifs as root or as the "
				  "owner of the tree", s->t->root_path, s->path, strerror(errno));
			goto out;
		}
		__atomic_fetch_add(&s->t->data_bytes, (uint64_t)n->st.st_size, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->t->nregular, 1, __ATOMIC_RELAXED);
	}
	progress(s, false);
out:
	s->path[plen ? plen - 1 : 0] = '\0';
	return ret;
}

/* The walk's visit: list directory dir (open as fd; closed by the walk),
 * fill its children and queue its subdirectories. */
static int scan_dir(struct tree_walk *w, void *wctx, struct tree_node *dir, int fd,
		    char *path, size_t plen)
{
	struct scan *s = wctx;
	size_t nk = 0;
	int ret = 0;

	s->path = path;
	if (fd < 0) {
		log_error("%s/%s: cannot open directory: %s", s->t->root_path, path,
			  fd == -ESTALE ? "it was replaced during the scan" : strerror(-fd));
		return fd;
	}
	if (s->watch) {
		/* Before the listing: a change after this is an event, a change
		 * before it is in what the listing and the stats see. */
		char p[64];

		if (dir->parent && dir->st.st_dev != dir->parent->st.st_dev)
			tree_watch_mount_point(s->watch, fd);
		if (in_dir(s, fd, dir))
			snprintf(p, sizeof(p), ".");
		else
			snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		tree_watch_add(s->watch, p);
	}
	/* getdents64 on the walk's own fd: opendir() would add a dup, an fstat,
	 * two fcntls and a close per directory (a third of the scan's syscalls
	 * per directory). Nothing else uses the fd's offset: the stats and
	 * opens below take it as a dirfd. */
	for (;;) {
		ssize_t len = getdents64(fd, s->dents, sizeof(s->dents));

		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0) {
			ret = -errno;
			log_error("%s/%s: reading directory: %s", s->t->root_path, s->path,
				  strerror(errno));
			goto out;
		}
		if (len == 0)
			break;
		for (ssize_t off = 0; off < len;) {
			const struct dirent64 *e = (const struct dirent64 *)(s->dents + off);
			struct tree_node *k;

			off += e->d_reclen;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if ((ret = VEC_RESERVE(s->kids, s->kids_cap, nk + 1, 256)) < 0)
				goto out;
			k = tree_node_new(s->arena, e->d_name, strlen(e->d_name));
			if (!k) {
				ret = -ENOMEM;
				goto out;
			}
			k->parent = dir;
			s->kids[nk++] = k;
		}
	}
	/* The children array sized once the listing is complete: no slack. */
	if (nk > UINT32_MAX - 1) {
		ret = -EOVERFLOW;
		goto out;
	}
	if (nk) {
		dir->kids = arena_alloc(s->arena, nk * sizeof(*dir->kids), _Alignof(void *));
		if (!dir->kids) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(dir->kids, s->kids, nk * sizeof(*dir->kids));
		dir->nkids = (uint32_t)nk;
		qsort(dir->kids, dir->nkids, sizeof(*dir->kids), cmp_kids);
	}
	for (size_t i = 0; i < dir->nkids && !tree_walk_stopping(w); i++) {
		ret = scan_entry(s, fd, dir->kids[i], plen);
		if (ret < 0)
			goto out;
	}
	ret = tree_walk_push_subdirs(w, dir);
out:
	return ret;
}

/* The digest walks the finished tree in its sorted order, so it does not
 * depend on readdir order. */
static void digest_tree(struct digest *d, const struct tree_node *n)
{
	uint32_t nk = S_ISDIR(n->st.st_mode) ? n->nkids : 0;

	digest_node(d, n);
	digest_u64(d, nk);
	for (size_t i = 0; i < nk; i++)
		digest_tree(d, n->kids[i]);
}

/* What the scanning threads share: the caller's struct scan, which they
 * copy and never write, and the newest mtime, which each merges in as it
 * ends (while others may still be copying the prototype). */
struct scan_ctx {
	const struct scan *proto;
	int64_t newest_mtime;   /* atomic */
	pthread_mutex_t lock;   /* the tree's arena, adopting a thread's */
};

/* A scanning thread's own struct scan, a copy of the caller's. Helpers
 * share the caller's cwd until they unshare it. */
static void *scan_start(void *ctx, bool first)
{
	const struct scan_ctx *c = ctx;
	struct scan *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	*s = *c->proto;
	memset(&s->own, 0, sizeof(s->own));
	s->arena = &s->own;
	s->kids = NULL;
	s->kids_cap = 0;
	s->cwd_dir = NULL;
	s->newest_mtime = INT64_MIN;
	if (!first)
		s->own_cwd = s->own_cwd && unshare(CLONE_FS) == 0;
	return s;
}

static void scan_end(void *ctx, void *wctx)
{
	struct scan_ctx *c = ctx;
	struct scan *s = wctx;
	int64_t cur;

	if (!s)
		return;
	cur = __atomic_load_n(&c->newest_mtime, __ATOMIC_RELAXED);
	while (s->newest_mtime > cur &&
	       !__atomic_compare_exchange_n(&c->newest_mtime, &cur, s->newest_mtime,
					    false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	pthread_mutex_lock(&c->lock);
	arena_adopt(&s->t->arena, &s->own);
	pthread_mutex_unlock(&c->lock);
	free(s->kids);
	free(s);
}

static const struct tree_walk_ops scan_ops = {
	.start = scan_start,
	.end = scan_end,
	.visit = scan_dir,
};

/* Give every regular file its source id, in tree order (sorted names,
 * depth first): the ids, and so the image, do not depend on which thread
 * scanned what. */
static int register_dir(struct tree *t, struct tree_node *dir)
{
	for (size_t i = 0; i < dir->nkids; i++) {
		struct tree_node *k = dir->kids[i];
		int ret = 0;

		if (S_ISREG(k->st.st_mode))
			ret = srcfiles_add(&t->files, k);
		else if (S_ISDIR(k->st.st_mode))
			ret = register_dir(t, k);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void *digest_job(void *arg)
{
	struct tree *t = arg;

	digest_tree(&t->digest, t->root);
	return NULL;
}

static int register_files(struct tree *t)
{
	/* The table sized once: the scan counted the regular files (a device
	 * table adds none). */
	int ret = srcfiles_reserve(&t->files, t->nregular);

	return ret < 0 ? ret : register_dir(t, t->root);
}

int tree_scan(struct tree *t, const char *root_path, const struct tree_scan_opts *opts)
{
	static const struct tree_scan_opts defaults = { .xattrs = true };
	struct scan *s = NULL;
	struct scan_ctx ctx;
	struct stat st;
	pthread_t digest_thread;
	bool digest_started;
	int fd = -1, pfd = -1, cwd, ret;

	memset(t, 0, sizeof(*t));
	t->files.root_fd = -1;
	s = calloc(1, sizeof(*s));
	t->root_path = strdup(root_path);
	t->root = tree_node_new(&t->arena, "", 0);
	if (!s || !t->root_path || !t->root) {
		ret = -ENOMEM;
		goto out;
	}
	s->t = t;
	s->arena = &t->arena;
	s->opts = opts ? opts : &defaults;
	s->check_read = geteuid() != 0;

	fd = open_dir(AT_FDCWD, root_path, 0);
	if (fd < 0) {
		ret = -errno;
		log_error("%s: %s", root_path, errno == ENOTDIR ? "not a directory" :
			  strerror(errno));
		goto out;
	}
	pfd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0) {
		ret = -errno;
		goto out;
	}
	ret = srcfiles_init(&t->files, pfd);
	pfd = -1;
	if (ret < 0)
		goto out;
	if (s->opts->watch)
		s->watch = t->watch = tree_watch_new(t->files.root_fd);
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	tree_stat_set(&t->root->st, &st, NULL);
	if (s->opts->xattrs) {
		char p[64];

		/* The root's own xattrs, through its fd (the root is a directory). */
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		ret = read_xattrs(s, p, true, t->root);
		if (ret < 0)
			goto out;
	}
	if ((ret = map_ids(s, t->root, ".")) < 0)
		goto out;
	t->nodes = 1;
	s->newest_mtime = t->root->st.st_mtim.tv_sec;
	/* A private cwd for this thread (unshare(CLONE_FS) affects only the
	 * caller), restored afterwards: relative paths given by the user, such
	 * as --overlay FILE, still mean what they meant. */
	cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	s->own_cwd = cwd >= 0 && unshare(CLONE_FS) == 0;
	ctx = (struct scan_ctx){ s, s->newest_mtime, PTHREAD_MUTEX_INITIALIZER };
	ret = tree_walk_run(t->files.root_fd, t->root, s->opts->threads, O_RDONLY,
			    &scan_ops, &ctx);
	pthread_mutex_destroy(&ctx.lock);
	s->newest_mtime = ctx.newest_mtime;
	if (cwd >= 0) {
		if (fchdir(cwd) < 0)
			log_warn("cannot return to the working directory: %s", strerror(errno));
		close(cwd);
	}
	if (ret < 0)
		goto out;
	if (t->unmapped) {
		log_error("%s: %" PRIu64 " entr%s with ids outside the id map: give the "
			  "ranges with --idmap HOST:IMAGE:COUNT (repeatable), or fix the "
			  "owners in the tree", root_path, t->unmapped,
			  t->unmapped == 1 ? "y" : "ies");
		ret = -ERANGE;
		goto out;
	}
	/* Before the digest: the table's nodes are part of the image. */
	if (s->opts->devices && (ret = devtable_apply(s->opts->devices, t)) < 0)
		goto out;
	t->newest_mtime = s->newest_mtime;
	if (t->watch && !tree_watch_finish(t->watch, t)) {
		tree_watch_free(t->watch);
		t->watch = NULL;
	}
	/* The digest and the ids are two walks over the finished tree, each
	 * mostly cache misses (the nodes come from every scanning thread): run
	 * them side by side. The digest reads no field that registering writes
	 * (tree_node.file: digest_tree reads nkids of directories only). */
	digest_init(&t->digest);
	digest_started = pthread_create(&digest_thread, NULL, digest_job, t) == 0;
	if (!digest_started)
		digest_job(t);
	ret = register_files(t);
	if (digest_started)
		pthread_join(digest_thread, NULL);
	if (ret < 0)
		goto out;
	progress(s, true);
out:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	free(s);
	if (ret < 0)
		tree_free(t);
	return ret;
}

struct tree_node *tree_child(const struct tree_node *dir, const char *name)
{
	size_t lo = 0, hi = S_ISDIR(dir->st.st_mode) ? dir->nkids : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(dir->kids[mid]->name, name);

		if (c == 0)
			return dir->kids[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct tree_node *lookup(const struct tree *t, const struct tree_node *dir,
				const char *path, int *budget)
{
	const struct tree_node *cur = *path == '/' ? t->root : dir;
	const char *p = path;

	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t l = (size_t)(e - p);
		char name[NAME_MAX + 1];

		if (l == 0 || (l == 1 && p[0] == '.')) {
			/* nothing */
		} else if (l == 2 && p[0] == '.' && p[1] == '.') {
			if (!cur->parent)
				return NULL;    /* would leave the tree */
			cur = cur->parent;
		} else {
			struct tree_node *k;

			if (l > NAME_MAX || !S_ISDIR(cur->st.st_mode))
				return NULL;
			memcpy(name, p, l);
			name[l] = '\0';
			k = tree_child(cur, name);
			if (!k)
				return NULL;
			if (S_ISLNK(k->st.st_mode)) {
				if (--*budget < 0)
					return NULL;
				k = lookup(t, cur, k->link, budget);
				if (!k)
					return NULL;
			}
			cur = k;
		}
		p = *e ? e + 1 : e;
	}
	return (struct tree_node *)cur;
}

struct tree_node *tree_lookup(const struct tree *t, const struct tree_node *dir,
			      const char *path)
{
	int budget = 40;

	return lookup(t, dir, path, &budget);
}

long tree_path_into(const struct tree_node *node, char *buf, size_t size)
{
	size_t len = 0, at;
	const struct tree_node *n;

	for (n = node; n->parent; n = n->parent)
		len += strlen(n->name) + (n->parent->parent ? 1 : 0);
	if (len >= size)
		return -ENAMETOOLONG;
	buf[len] = '\0';
	at = len;
	for (n = node; n->parent; n = n->parent) {
		size_t l = strlen(n->name);

		at -= l;
		memcpy(buf + at, n->name, l);
		if (n->parent->parent)
			buf[--at] = '/';
	}
	return (long)len;
}

char *tree_path(const struct tree_node *node)
{
	size_t len = 0;
	const struct tree_node *n;
	char *buf;

	for (n = node; n->parent; n = n->parent)
		len += strlen(n->name) + 1;
	buf = malloc(len + 1);
	if (buf && tree_path_into(node, buf, len + 1) < 0) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

bool tree_is_under(const struct tree_node *node, const struct tree_node *anc)
{
	for (; node; node = node->parent)
		if (node == anc)
			return true;
	return false;
}
