/* tree_check.c - has the source tree changed since it was scanned?
 *
 * tree_unchanged() runs on every open of disk.img that finds no handle open,
 * so it sits between the user and the first byte of the image: one fstatat
 * per entry, no readdir and no xattr read. On a tree of thousands of entries
 * the stats are spread over a few threads (each directory's entries are
 * checked by one thread):
 *
 *   - the root's and every top-level directory's own entries are one unit
 *     each, checked without descending;
 *   - every directory two levels down is one unit, checked recursively.
 *
 * Units are taken largest first from a shared counter. A unit's directory
 * is opened by its path of at most two components (never beyond PATH_MAX)
 * with O_NOFOLLOW; a directory swapped for a symlink or another directory is
 * caught by the stat of that directory in its parent's unit, so the answer
 * never depends on which thread ran first. Any error means "changed".
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tree.h"

/* Below this many entries one thread is quicker than starting others. */
#define PARALLEL_MIN_NODES 4096
#define MAX_THREADS 4

struct unit {
	const struct tree_node *dir;
	bool deep;              /* check the whole subtree */
	uint64_t weight;        /* entries it stats */
};

struct check {
	int root_fd;
	struct unit *units;
	size_t nunits;
	atomic_size_t next;
	atomic_bool changed;
};

static bool same(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	       a->st_mode == b->st_mode && a->st_size == b->st_size &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The entries of dir (open as fd), and below them when deep. */
static bool dir_unchanged(int fd, const struct tree_node *dir, bool deep,
			  const atomic_bool *stop)
{
	for (size_t i = 0; i < dir->nkids; i++) {
		const struct tree_node *k = dir->kids[i];
		struct stat st;

		if (stop && atomic_load_explicit(stop, memory_order_relaxed))
			return false;
		if (fstatat(fd, k->name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !same(&st, &k->st))
			return false;
		if (deep && S_ISDIR(k->st.st_mode)) {
			int sub = openat(fd, k->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			bool ok;

			if (sub < 0)
				return false;
			ok = dir_unchanged(sub, k, true, stop);
			close(sub);
			if (!ok)
				return false;
		}
	}
	return true;
}

static uint64_t subtree_size(const struct tree_node *n)
{
	uint64_t s = n->nkids;

	for (size_t i = 0; i < n->nkids; i++)
		if (S_ISDIR(n->kids[i]->st.st_mode))
			s += subtree_size(n->kids[i]);
	return s;
}

static bool unit_unchanged(struct check *c, const struct unit *u)
{
	const struct tree_node *d = u->dir;
	char path[2 * 256 + 2];
	bool ok;
	int fd;

	if (!d->parent)
		return dir_unchanged(c->root_fd, d, false, &c->changed);
	if (d->parent->parent)
		snprintf(path, sizeof(path), "%s/%s", d->parent->name, d->name);
	else
		snprintf(path, sizeof(path), "%s", d->name);
	fd = openat(c->root_fd, path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = dir_unchanged(fd, d, u->deep, &c->changed);
	close(fd);
	return ok;
}

static void *worker(void *arg)
{
	struct check *c = arg;
	size_t i;

	while ((i = atomic_fetch_add(&c->next, 1)) < c->nunits &&
	       !atomic_load(&c->changed))
		if (!unit_unchanged(c, &c->units[i]))
			atomic_store(&c->changed, true);
	return NULL;
}

static int cmp_weight(const void *a, const void *b)
{
	const struct unit *x = a, *y = b;

	return x->weight < y->weight ? 1 : x->weight > y->weight ? -1 : 0;
}

static int add_unit(struct check *c, size_t *cap, const struct tree_node *d, bool deep)
{
	if (c->nunits == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct unit *v = realloc(c->units, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->units = v;
		*cap = nc;
	}
	c->units[c->nunits++] = (struct unit){
		d, deep, deep ? subtree_size(d) : d->nkids
	};
	return 0;
}

/* The units of the first two levels, largest first. */
static int make_units(struct check *c, const struct tree_node *root)
{
	size_t cap = 0;

	if (add_unit(c, &cap, root, false) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < root->nkids; i++) {
		const struct tree_node *a = root->kids[i];

		if (!S_ISDIR(a->st.st_mode))
			continue;
		if (add_unit(c, &cap, a, false) < 0)
			return -ENOMEM;
		for (size_t j = 0; j < a->nkids; j++)
			if (S_ISDIR(a->kids[j]->st.st_mode) &&
			    add_unit(c, &cap, a->kids[j], true) < 0)
				return -ENOMEM;
	}
	qsort(c->units, c->nunits, sizeof(*c->units), cmp_weight);
	return 0;
}

static unsigned thread_count(const struct tree *t)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (t->nodes < PARALLEL_MIN_NODES || cpus < 2)
		return 1;
	return cpus > MAX_THREADS ? MAX_THREADS : (unsigned)cpus;
}

bool tree_unchanged(const struct tree *t)
{
	struct check c = { .root_fd = -1 };
	pthread_t th[MAX_THREADS];
	unsigned nth = thread_count(t), started = 0;
	struct stat st;
	bool ok = false;

	if (!t->root)
		return false;
	c.root_fd = open(t->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c.root_fd < 0)
		return false;
	if (fstat(c.root_fd, &st) < 0 || !same(&st, &t->root->st))
		goto out;
	if (nth == 1) {
		ok = dir_unchanged(c.root_fd, t->root, true, NULL);
		goto out;
	}
	if (make_units(&c, t->root) < 0)
		goto out;
	/* A thread that cannot be started only means fewer helpers. */
	for (unsigned i = 1; i < nth; i++)
		if (pthread_create(&th[started], NULL, worker, &c) == 0)
			started++;
	worker(&c);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	ok = !atomic_load(&c.changed);
out:
	free(c.units);
	close(c.root_fd);
	return ok;
}
