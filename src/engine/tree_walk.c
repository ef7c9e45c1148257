/* tree_walk.c - directories of a tree visited on several threads (see
 * tree_walk.h).
 *
 * The stack is last in, first out: a worker usually pops what it pushed
 * last, a subdirectory of the directory it just visited, so the walk stays
 * depth first per thread (warm dentries, short stacks). One mutex guards
 * the stack, the busy count and the result; a visit runs without it.
 * Invariant: the walk is over exactly when the stack is empty and busy is
 * 0, or when result is non-zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "srcfile.h"
#include "tree_walk.h"
#include "vector.h"

struct tree_walk {
	pthread_mutex_t lock;
	pthread_cond_t more;            /* pushed, or the walk is over */
	struct tree_node **v;           /* the stack */
	size_t n, cap;
	unsigned busy;                  /* workers inside a visit */
	int result;                     /* first non-zero visit result */
	int root_fd;
	int open_flags;
	const struct tree_walk_ops *ops;
	void *ctx;
};

struct worker {
	struct tree_walk *w;
	bool first;
	void *wctx;                     /* ops->start's state */
	char path[TREE_PATH_MAX];
};

void *tree_walk_ctx(struct tree_walk *w)
{
	return w->ctx;
}

bool tree_walk_stopping(struct tree_walk *w)
{
	return __atomic_load_n(&w->result, __ATOMIC_RELAXED) != 0;
}

/* Called with w->lock held. */
static void finish(struct tree_walk *w, int ret)
{
	if (ret && !w->result)
		__atomic_store_n(&w->result, ret, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&w->more);
}

int tree_walk_push_subdirs(struct tree_walk *w, const struct tree_node *dir)
{
	size_t k = 0;

	for (size_t i = 0; i < dir->nkids; i++)
		k += S_ISDIR(dir->kids[i]->st.st_mode) ? 1 : 0;
	if (!k)
		return 0;
	pthread_mutex_lock(&w->lock);
	if (VEC_RESERVE(w->v, w->cap, w->n + k, 64) < 0) {
		pthread_mutex_unlock(&w->lock);
		return -ENOMEM;
	}
	/* Reversed, so that the first in name order is popped first. */
	for (size_t i = dir->nkids; i-- > 0;)
		if (S_ISDIR(dir->kids[i]->st.st_mode))
			w->v[w->n++] = dir->kids[i];
	if (k > 1)
		pthread_cond_broadcast(&w->more);
	else
		pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static int visit_one(struct worker *wk, struct tree_node *d)
{
	struct tree_walk *w = wk->w;
	long plen = tree_path_into(d, wk->path, TREE_PATH_MAX);
	struct stat st;
	int fd, ret;

	if (plen < 0) {
		wk->path[0] = '\0';
		return w->ops->visit(w, wk->wctx, d, (int)plen, wk->path, 0);
	}
	fd = srcfile_open_beneath(w->root_fd, plen ? wk->path : ".",
				  w->open_flags | O_DIRECTORY);
	/* The node was filled from the parent's listing; what is opened now
	 * must be that directory. */
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != d->st.st_dev ||
			st.st_ino != d->st.st_ino)) {
		close(fd);
		fd = -ESTALE;
	}
	ret = w->ops->visit(w, wk->wctx, d, fd, wk->path, (size_t)plen);
	if (fd >= 0)
		close(fd);
	return ret;
}

static void *worker(void *arg)
{
	struct worker *wk = arg;
	struct tree_walk *w = wk->w;
	int ret = 0;

	if (w->ops->start && !(wk->wctx = w->ops->start(w->ctx, wk->first))) {
		pthread_mutex_lock(&w->lock);
		finish(w, -ENOMEM);
		pthread_mutex_unlock(&w->lock);
		return NULL;
	}
	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct tree_node *d;

		while (!w->n && w->busy && !w->result)
			pthread_cond_wait(&w->more, &w->lock);
		if (w->result || !w->n)
			break;
		d = w->v[--w->n];
		w->busy++;
		pthread_mutex_unlock(&w->lock);
		ret = visit_one(wk, d);
		pthread_mutex_lock(&w->lock);
		w->busy--;
		if (ret || (!w->n && !w->busy))
			finish(w, ret);
	}
	pthread_mutex_unlock(&w->lock);
	if (w->ops->end)
		w->ops->end(w->ctx, wk->wctx);
	return NULL;
}

static unsigned thread_count(unsigned threads)
{
	long cpus;

	if (threads)
		return threads < TREE_WALK_MAX_THREADS ? threads : TREE_WALK_MAX_THREADS;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus < 2 ? 1 : cpus > TREE_WALK_MAX_THREADS ? TREE_WALK_MAX_THREADS :
	       (unsigned)cpus;
}

int tree_walk_run(int root_fd, struct tree_node *root, unsigned threads, int open_flags,
		  const struct tree_walk_ops *ops, void *ctx)
{
	struct tree_walk w = {
		.root_fd = root_fd, .open_flags = open_flags, .ops = ops, .ctx = ctx,
	};
	struct worker *wk;
	pthread_t th[TREE_WALK_MAX_THREADS];
	unsigned nth = thread_count(threads), started = 0;
	int ret;

	wk = calloc(nth, sizeof(*wk));
	w.v = malloc(64 * sizeof(*w.v));
	if (!wk || !w.v) {
		free(wk);
		free(w.v);
		return -ENOMEM;
	}
	w.cap = 64;
	w.v[w.n++] = root;
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.more, NULL);
	for (unsigned i = 0; i < nth; i++)
		wk[i] = (struct worker){ .w = &w, .first = i == 0 };
	/* A helper that cannot be started only means fewer threads. */
	for (unsigned i = 1; i < nth; i++)
		if (pthread_create(&th[started], NULL, worker, &wk[started + 1]) == 0)
			started++;
	worker(&wk[0]);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	ret = w.result;
	pthread_cond_destroy(&w.more);
	pthread_mutex_destroy(&w.lock);
	free(w.v);
	free(wk);
	return ret;
}
