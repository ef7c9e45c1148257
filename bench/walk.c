/* walk.c - the bare walk: the least any correct tool must read to image a
 * tree, as fast as rpifs's scan could read it (bench item 1's limit).
 *
 *   walk ROOT [THREADS]
 *
 * Every directory is listed with getdents64; every entry, in inode order,
 * gets one statx (STATX_BASIC_STATS | STATX_BTIME, what rpifs asks for),
 * llistxattr and an lgetxattr of each listed name; symlinks a readlinkat
 * (an image holds their targets). Nothing is kept, digested or laid out:
 * what is left of rpifs's start-to-first-byte time beyond this is rpifs's
 * own.
 *
 * The design is rpifs's scan (src/engine/tree_walk.c, tree.c) without its
 * bookkeeping: one thread per CPU, at most 4 (THREADS overrides); one
 * last-in-first-out stack of directories under one mutex, so each thread
 * stays depth first; a directory is opened below the root's fd by its
 * relative path; each thread has a private cwd (unshare(CLONE_FS)),
 * changes into the directory it lists and reads the xattrs by name (there
 * is no llistxattrat). Buffers are 64 KiB (the largest xattr value), so a
 * list or a value takes one call, where rpifs asks the size first.
 * Invariant: the walk is over when the stack is empty and no thread is
 * inside a visit.
 *
 * Prints "entries N directories D xattrs X seconds S". Exit 1 on any error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 4
#define BUF (64 * 1024)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t more = PTHREAD_COND_INITIALIZER;
static char **stack;
static size_t n, cap;
static unsigned busy;
static int root_fd;
static unsigned long entries, dirs, xattrs;

static void die(const char *what, const char *path)
{
	fprintf(stderr, "walk: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

/* Called with lock held. */
static void push(char *path)
{
	if (n == cap) {
		cap = cap ? 2 * cap : 256;
		stack = realloc(stack, cap * sizeof(*stack));
		if (!stack)
			die("memory", "");
	}
	stack[n++] = path;
}

struct ent {
	unsigned long long ino;
	char *name;
};

static int by_ino(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

struct worker {
	struct ent *ents;               /* the directory being visited */
	size_t nents, capents;
	char dents[BUF];
	char list[BUF];
	char value[BUF];
	char **subdirs;
	size_t nsub, capsub;
	unsigned long entries, dirs, xattrs;
};

static void entry(struct worker *w, int fd, const char *dir, const char *name)
{
	struct statx sx;

	if (statx(fd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx) < 0)
		die("statx", name);
	w->entries++;
	ssize_t len = llistxattr(name, w->list, BUF);
	if (len < 0 && errno != ENOTSUP && errno != ENODATA)
		die("llistxattr", name);
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(w->list + i) + 1) {
		if (lgetxattr(name, w->list + i, w->value, BUF) < 0 && errno != ENODATA)
			die("lgetxattr", name);
		w->xattrs++;
	}
	if (S_ISLNK(sx.stx_mode)) {
		if (readlinkat(fd, name, w->value, BUF) < 0)
			die("readlinkat", name);
	} else if (S_ISDIR(sx.stx_mode)) {
		size_t dl = strlen(dir), nl = strlen(name);
		char *p = malloc(dl + nl + 2);

		if (!p)
			die("memory", name);
		if (dl) {
			memcpy(p, dir, dl);
			p[dl++] = '/';
		}
		memcpy(p + dl, name, nl + 1);
		if (w->nsub == w->capsub) {
			w->capsub = w->capsub ? 2 * w->capsub : 64;
			w->subdirs = realloc(w->subdirs, w->capsub * sizeof(*w->subdirs));
			if (!w->subdirs)
				die("memory", name);
		}
		w->subdirs[w->nsub++] = p;
	}
}

static void visit(struct worker *w, char *dir)
{
	int fd = openat(root_fd, *dir ? dir : ".",
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || fchdir(fd) < 0)
		die("opening directory", dir);
	w->dirs++;
	w->nsub = 0;
	for (;;) {
		ssize_t len = getdents64(fd, w->dents, sizeof(w->dents));

		if (len < 0)
			die("getdents64", dir);
		if (len == 0)
			break;
		for (ssize_t off = 0; off < len;) {
			struct dirent64 *e = (struct dirent64 *)(w->dents + off);

			off += e->d_reclen;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (w->nents == w->capents) {
				w->capents = w->capents ? 2 * w->capents : 256;
				w->ents = realloc(w->ents, w->capents * sizeof(*w->ents));
				if (!w->ents)
					die("memory", dir);
			}
			w->ents[w->nents].ino = e->d_ino;
			w->ents[w->nents++].name = strdup(e->d_name);
			if (!w->ents[w->nents - 1].name)
				die("memory", dir);
		}
	}
	/* In inode order: the inode table is then read forward, which is what
	 * a cold walk waits for (in getdents's hash order the cold walk was
	 * slower than rpifs's, which stats in name order). */
	qsort(w->ents, w->nents, sizeof(*w->ents), by_ino);
	for (size_t i = 0; i < w->nents; i++) {
		entry(w, fd, dir, w->ents[i].name);
		free(w->ents[i].name);
	}
	w->nents = 0;
	close(fd);
	free(dir);
	if (w->nsub) {
		pthread_mutex_lock(&lock);
		for (size_t i = w->nsub; i-- > 0;)
			push(w->subdirs[i]);
		pthread_cond_broadcast(&more);
		pthread_mutex_unlock(&lock);
	}
}

static void *run(void *arg)
{
	struct worker *w = arg;

	if (unshare(CLONE_FS) < 0)
		die("unshare(CLONE_FS)", "");
	pthread_mutex_lock(&lock);
	for (;;) {
		while (!n && busy)
			pthread_cond_wait(&more, &lock);
		if (!n)
			break;
		char *d = stack[--n];
		busy++;
		pthread_mutex_unlock(&lock);
		visit(w, d);
		pthread_mutex_lock(&lock);
		if (!--busy && !n)
			pthread_cond_broadcast(&more);
	}
	entries += w->entries;
	dirs += w->dirs;
	xattrs += w->xattrs;
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	pthread_t th[MAX_THREADS];
	struct worker *w;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nth = cpus < 2 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (unsigned)cpus;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: walk ROOT [THREADS]\n");
		return 2;
	}
	if (argc == 3)
		nth = (unsigned)atoi(argv[2]);
	if (nth < 1 || nth > MAX_THREADS)
		nth = nth < 1 ? 1 : MAX_THREADS;
	root_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		die("opening", argv[1]);
	w = calloc(nth, sizeof(*w));
	if (!w)
		die("memory", "");
	struct statx sx;

	/* The root is an entry too: its stat and xattrs (its mode, owner and
	 * ACLs are the image's root directory's). */
	if (statx(root_fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &sx) < 0)
		die("statx", argv[1]);
	ssize_t len = llistxattr(argv[1], w[0].list, BUF);
	if (len < 0 && errno != ENOTSUP && errno != ENODATA)
		die("llistxattr", argv[1]);
	for (ssize_t i = 0; i < len; i += (ssize_t)strlen(w[0].list + i) + 1)
		if (lgetxattr(argv[1], w[0].list + i, w[0].value, BUF) < 0 && errno != ENODATA)
			die("lgetxattr", argv[1]);
	entries = 1;
	push(strdup(""));
	for (unsigned i = 1; i < nth; i++)
		if (pthread_create(&th[i], NULL, run, &w[i]))
			die("pthread_create", "");
	run(&w[0]);
	for (unsigned i = 1; i < nth; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("entries %lu directories %lu xattrs %lu threads %u seconds %.6f\n", entries,
	       dirs, xattrs, nth, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
