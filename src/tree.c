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
 * Two passes. The first scans down to UNIT_DEPTH on the calling thread and
 * leaves the directories found there as units; the units are then scanned
 * on up to MAX_THREADS threads (each with its own cwd, path buffer and
 * newest mtime; node and byte counts are atomic). Each unit fills only its
 * own subtree. Source files get their ids afterwards, in tree order
 * (register_files), so the tree and the image are the same whichever
 * thread scanned what.
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
#include "log.h"
#include "tree.h"

/* Directories this deep are scanned as separate units, on several threads
 * (the sequential first pass stats them and leaves them for later). */
#define UNIT_DEPTH 2
#define MAX_THREADS 4
/* The deepest relative path the scan takes (beyond PATH_MAX: *at() calls). */
#define SCAN_PATH_MAX 8192

struct units {
	struct tree_node **v;
	size_t n, cap;
	atomic_size_t next;
	atomic_int error;       /* first -errno of a unit; the others stop */
};

/* One per scanning thread. */
struct scan {
	struct tree *t;
	const struct tree_scan_opts *opts;
	bool check_read;        /* not root: check every file is readable */
	struct timespec last_progress;
	bool own_cwd;           /* this thread has its own cwd: xattrs by name */
	const struct tree_node *cwd_dir; /* the directory that cwd is, or NULL */
	struct units *defer;    /* first pass: where UNIT_DEPTH directories go */
	int64_t newest_mtime;
	char path[SCAN_PATH_MAX]; /* relative path of the current node, for messages */
};

static void free_node(struct tree_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		free_node(n->kids[i]);
	free(n->kids);
	for (size_t i = 0; i < n->nxattrs; i++) {
		free(n->xattrs[i].name);
		free(n->xattrs[i].value);
	}
	free(n->xattrs);
	free(n->link);
	free(n->name);
	free(n);
}

void tree_free(struct tree *t)
{
	free_node(t->root);
	srcfiles_free(&t->files);
	free(t->root_path);
	memset(t, 0, sizeof(*t));
}

static int cmp_kids(const void *a, const void *b)
{
	const struct tree_node *x = *(struct tree_node *const *)a;
	const struct tree_node *y = *(struct tree_node *const *)b;

	return strcmp(x->name, y->name);
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
	n->xattrs = calloc(count, sizeof(*n->xattrs));
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
		x->name = strdup(xn);
		x->value = malloc(vl ? (size_t)vl : 1);
		if (!x->name || !x->value) {
			free(x->name);
			free(x->value);
			ret = -ENOMEM;
			goto out;
		}
		vl = x_get(p, follow, xn, x->value, (size_t)vl);
		if (vl < 0) {
			ret = -errno;
			free(x->name);
			free(x->value);
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
	digest_u64(d, S_ISCHR(n->st.st_mode) || S_ISBLK(n->st.st_mode) ? n->st.st_rdev : 0);
	if (n->link)
		digest_str(d, n->link);
	for (size_t i = 0; i < n->nxattrs; i++) {
		digest_str(d, n->xattrs[i].name);
		digest_u64(d, n->xattrs[i].len);
		digest_bytes(d, n->xattrs[i].value, n->xattrs[i].len);
	}
}

static int scan_dir(struct scan *s, int dirfd, struct tree_node *dir, size_t plen,
		    unsigned depth);

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

/* Fill node n (name already set) from dirfd/name; n is depth levels below
 * the root (1 for the root's entries). plen = length of s->path for the
 * parent; on return s->path is restored to that length. */
static int scan_entry(struct scan *s, int dirfd, struct tree_node *n, size_t plen,
		      unsigned depth)
{
	size_t nl = strlen(n->name);
	struct timespec bt;
	int ret = 0;

	if (plen + nl + 2 >= sizeof(s->path)) {
		log_error("%s: path too deep below %s", n->name, s->t->root_path);
		return -ENAMETOOLONG;
	}
	if (plen)
		s->path[plen++] = '/';
	memcpy(s->path + plen, n->name, nl + 1);

	ret = srcfile_stat(dirfd, n->name, AT_SYMLINK_NOFOLLOW, &n->st, &bt);
	if (ret < 0) {
		log_error("%s/%s: %s", s->t->root_path, s->path, strerror(-ret));
		goto out;
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
	/* Counters shared by the scanning threads. */
	__atomic_fetch_add(&s->t->nodes, 1, __ATOMIC_RELAXED);
	if (n->st.st_mtim.tv_sec > s->newest_mtime)
		s->newest_mtime = n->st.st_mtim.tv_sec;

	if (S_ISLNK(n->st.st_mode)) {
		size_t cap = (size_t)n->st.st_size + 1;
		ssize_t l;

		n->link = malloc(cap);
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
		n->btime = bt;  /* registered in order by register_files() */
	} else if (S_ISDIR(n->st.st_mode) && s->defer && depth == UNIT_DEPTH) {
		struct units *u = s->defer;

		if (u->n == u->cap) {
			size_t nc = u->cap ? u->cap * 2 : 64;
			struct tree_node **v = realloc(u->v, nc * sizeof(*v));

			if (!v) {
				ret = -ENOMEM;
				goto out;
			}
			u->v = v;
			u->cap = nc;
		}
		u->v[u->n++] = n;
	} else if (S_ISDIR(n->st.st_mode)) {
		int fd = open_dir(dirfd, n->name, O_NOFOLLOW);

		if (fd < 0) {
			ret = -errno;
			log_error("%s/%s: cannot open directory: %s", s->t->root_path, s->path,
				  strerror(errno));
			goto out;
		}
		ret = scan_dir(s, fd, n, plen + nl, depth);
		close(fd);
		if (ret < 0)
			goto out;
	}
	progress(s, false);
out:
	s->path[plen ? plen - 1 : 0] = '\0';
	return ret;
}

/* Scan the directory open as fd (taken: closed by the caller) into dir,
 * which is depth levels below the root. */
static int scan_dir(struct scan *s, int fd, struct tree_node *dir, size_t plen,
		    unsigned depth)
{
	int dfd = dup(fd);
	DIR *d;
	struct dirent *e;
	size_t cap = 0;
	int ret = 0;

	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	while ((errno = 0, e = readdir(d))) {
		struct tree_node *k;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (dir->nkids == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct tree_node **v = realloc(dir->kids, nc * sizeof(*v));

			if (!v) {
				ret = -ENOMEM;
				goto out;
			}
			dir->kids = v;
			cap = nc;
		}
		k = calloc(1, sizeof(*k));
		if (!k || !(k->name = strdup(e->d_name))) {
			free(k);
			ret = -ENOMEM;
			goto out;
		}
		k->parent = dir;
		k->file = SRCFILE_NONE;
		dir->kids[dir->nkids++] = k;
	}
	if (errno) {
		ret = -errno;
		log_error("%s/%s: reading directory: %s", s->t->root_path, s->path,
			  strerror(errno));
		goto out;
	}
	if (dir->nkids)
		qsort(dir->kids, dir->nkids, sizeof(*dir->kids), cmp_kids);
	for (size_t i = 0; i < dir->nkids; i++) {
		ret = scan_entry(s, fd, dir->kids[i], plen, depth + 1);
		if (ret < 0)
			goto out;
	}
out:
	closedir(d);
	return ret;
}

/* The digest walks the finished tree in its sorted order, so it does not
 * depend on readdir order. */
static void digest_tree(struct digest *d, const struct tree_node *n)
{
	digest_node(d, n);
	digest_u64(d, n->nkids);
	for (size_t i = 0; i < n->nkids; i++)
		digest_tree(d, n->kids[i]);
}

struct unit_worker {
	const struct scan *proto;
	struct units *u;
	int root_fd;
	bool main_thread;       /* its cwd is already private */
	int64_t newest_mtime;
};

/* Scan units from the shared counter until none is left or one failed.
 * Each unit is a directory UNIT_DEPTH levels down, already stat'ed by the
 * first pass, opened here by its path of UNIT_DEPTH names (each at most
 * NAME_MAX: never near PATH_MAX) without following a symlink. */
static void *unit_worker(void *arg)
{
	struct unit_worker *w = arg;
	struct scan *s = malloc(sizeof(*s));
	size_t i;

	if (!s) {
		atomic_store(&w->u->error, -ENOMEM);
		return NULL;
	}
	*s = *w->proto;
	s->defer = NULL;
	s->cwd_dir = NULL;
	s->newest_mtime = INT64_MIN;
	/* Threads share the creator's cwd: a helper needs one of its own. */
	if (!w->main_thread)
		s->own_cwd = s->own_cwd && unshare(CLONE_FS) == 0;
	while ((i = atomic_fetch_add(&w->u->next, 1)) < w->u->n &&
	       !atomic_load(&w->u->error)) {
		struct tree_node *d = w->u->v[i];
		size_t plen;
		int fd, ret;

		plen = (size_t)snprintf(s->path, sizeof(s->path), "%s/%s", d->parent->name, d->name);
		fd = open_dir(w->root_fd, s->path, O_NOFOLLOW);
		if (fd < 0) {
			ret = -errno;
			log_error("%s/%s: cannot open directory: %s", s->t->root_path, s->path,
				  strerror(errno));
		} else {
			ret = scan_dir(s, fd, d, plen, UNIT_DEPTH);
			close(fd);
		}
		if (ret < 0) {
			int none = 0;

			atomic_compare_exchange_strong(&w->u->error, &none, ret);
		}
	}
	w->newest_mtime = s->newest_mtime;
	free(s);
	return NULL;
}

/* Scan the deferred directories on up to MAX_THREADS threads (the caller
 * is one). Which thread scans a unit changes nothing in the tree: every
 * unit fills only its own subtree, and the source files are registered
 * afterwards in tree order. */
static int scan_units(struct scan *s, struct units *u, int root_fd)
{
	struct unit_worker w[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nth = cpus > MAX_THREADS ? MAX_THREADS : cpus > 1 ? (unsigned)cpus : 1;
	unsigned started = 0;

	if (!u->n)
		return 0;
	if (nth > u->n)
		nth = (unsigned)u->n;
	for (unsigned i = 0; i < nth; i++)
		w[i] = (struct unit_worker){ s, u, root_fd, i == 0, INT64_MIN };
	/* A helper that cannot be started only means fewer threads. */
	for (unsigned i = 1; i < nth; i++)
		if (pthread_create(&th[started], NULL, unit_worker, &w[started + 1]) == 0)
			started++;
	unit_worker(&w[0]);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i <= started; i++)
		if (w[i].newest_mtime > s->newest_mtime)
			s->newest_mtime = w[i].newest_mtime;
	return atomic_load(&u->error);
}

/* Give every regular file its source id, in tree order (sorted names,
 * depth first): the ids, and so the image, do not depend on which thread
 * scanned what. */
static int register_dir(struct tree *t, struct tree_node *dir, char *path, size_t plen)
{
	for (size_t i = 0; i < dir->nkids; i++) {
		struct tree_node *k = dir->kids[i];
		size_t nl = strlen(k->name), l = plen;
		int ret = 0;

		if (!S_ISREG(k->st.st_mode) && !S_ISDIR(k->st.st_mode))
			continue;
		/* The scan refused deeper paths already. */
		if (l + nl + 2 > SCAN_PATH_MAX)
			return -ENAMETOOLONG;
		if (l)
			path[l++] = '/';
		memcpy(path + l, k->name, nl + 1);
		if (S_ISREG(k->st.st_mode))
			ret = srcfiles_add(&t->files, path, &k->st, &k->btime, &k->file);
		else
			ret = register_dir(t, k, path, l + nl);
		path[plen] = '\0';
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int register_files(struct tree *t)
{
	char *path = malloc(SCAN_PATH_MAX);
	int ret;

	if (!path)
		return -ENOMEM;
	path[0] = '\0';
	ret = register_dir(t, t->root, path, 0);
	free(path);
	return ret;
}

int tree_scan(struct tree *t, const char *root_path, const struct tree_scan_opts *opts)
{
	static const struct tree_scan_opts defaults = { .xattrs = true };
	struct scan *s = NULL;
	struct units units = { 0 };
	int fd = -1, pfd = -1, cwd, ret;

	memset(t, 0, sizeof(*t));
	t->files.root_fd = -1;
	s = calloc(1, sizeof(*s));
	t->root_path = strdup(root_path);
	t->root = calloc(1, sizeof(*t->root));
	if (!s || !t->root_path || !t->root || !(t->root->name = strdup(""))) {
		ret = -ENOMEM;
		goto out;
	}
	s->t = t;
	s->opts = opts ? opts : &defaults;
	s->check_read = geteuid() != 0;
	t->root->file = SRCFILE_NONE;

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
	if (fstat(fd, &t->root->st) < 0) {
		ret = -errno;
		goto out;
	}
	if (s->opts->xattrs) {
		char p[64];

		/* The root's own xattrs, through its fd (the root is a directory). */
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		ret = read_xattrs(s, p, true, t->root);
		if (ret < 0)
			goto out;
	}
	t->nodes = 1;
	s->newest_mtime = t->root->st.st_mtim.tv_sec;
	/* A private cwd for this thread (unshare(CLONE_FS) affects only the
	 * caller), restored afterwards: relative paths given by the user, such
	 * as --overlay FILE, still mean what they meant. */
	cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	s->own_cwd = cwd >= 0 && unshare(CLONE_FS) == 0;
	/* First pass: everything down to UNIT_DEPTH; then the units. */
	s->defer = &units;
	ret = scan_dir(s, fd, t->root, 0, 0);
	if (!ret)
		ret = scan_units(s, &units, fd);
	if (cwd >= 0) {
		if (fchdir(cwd) < 0)
			log_warn("cannot return to the working directory: %s", strerror(errno));
		close(cwd);
	}
	if (ret < 0)
		goto out;
	t->newest_mtime = s->newest_mtime;
	ret = register_files(t);
	if (ret < 0)
		goto out;
	progress(s, true);
	digest_init(&t->digest);
	digest_tree(&t->digest, t->root);
out:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	free(s);
	free(units.v);
	if (ret < 0)
		tree_free(t);
	return ret;
}

struct tree_node *tree_child(const struct tree_node *dir, const char *name)
{
	size_t lo = 0, hi = dir->nkids;

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
			if (k->link) {
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

char *tree_path(const struct tree_node *node)
{
	size_t len = 0;
	const struct tree_node *n;
	char *buf, *p;

	for (n = node; n->parent; n = n->parent)
		len += strlen(n->name) + 1;
	if (len)
		len--;          /* no leading '/' */
	buf = malloc(len + 1);
	if (!buf)
		return NULL;
	p = buf + len;
	*p = '\0';
	for (n = node; n->parent; n = n->parent) {
		size_t l = strlen(n->name);

		p -= l;
		memcpy(p, n->name, l);
		if (p > buf)
			*--p = '/';
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
