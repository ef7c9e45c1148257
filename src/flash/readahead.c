/* readahead.c - chunks read ahead by a few threads, consumed in order (see
 * readahead.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "flash.h"
#include "log.h"
#include "readahead.h"

struct job {
	uint64_t off;
	size_t len;
	bool data;
};

struct ra {
	struct source *s;
	struct job *jobs;
	size_t njobs, cap;
	char *buf[READAHEAD_SLOTS];

	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t next;            /* lock: the next job a reader claims */
	size_t consumed;        /* lock: jobs the consumer is done with */
	size_t ready[READAHEAD_SLOTS]; /* lock: job index + 1 a slot holds, 0: none */
	int err;                /* lock: a reader's error, or -ECANCELED: stop */
};

static int add_job(struct ra *ra, uint64_t off, uint64_t len, bool data)
{
	while (len) {
		size_t n = len < FLASH_CHUNK ? (size_t)len : FLASH_CHUNK;

		if (ra->njobs == ra->cap) {
			size_t cap = ra->cap ? 2 * ra->cap : 256;
			struct job *j = realloc(ra->jobs, cap * sizeof(*j));

			if (!j)
				return -ENOMEM;
			ra->jobs = j;
			ra->cap = cap;
		}
		ra->jobs[ra->njobs++] = (struct job){ off, n, data };
		off += n;
		len -= n;
	}
	return 0;
}

static int add_data(void *ctx, uint64_t off, uint64_t len)
{
	return add_job(ctx, off, len, true);
}

/* Every byte: the extents as they come, holes included. */
static int add_all(struct ra *ra)
{
	uint64_t off = 0;
	int ret;

	while (off < ra->s->size) {
		uint64_t len;
		bool data;

		if ((ret = source_extent(ra->s, off, &len, &data)) < 0 ||
		    (ret = add_job(ra, off, len, data)) < 0)
			return ret;
		off += len;
	}
	return 0;
}

static void *reader(void *arg)
{
	struct ra *ra = arg;

	pthread_mutex_lock(&ra->lock);
	while (!ra->err && ra->next < ra->njobs) {
		size_t j = ra->next++, slot = j % READAHEAD_SLOTS;
		const struct job *jb = &ra->jobs[j];
		int ret = 0;

		/* The slot is free once the consumer is done with job j - SLOTS. */
		while (!ra->err && j >= ra->consumed + READAHEAD_SLOTS)
			pthread_cond_wait(&ra->cond, &ra->lock);
		if (ra->err)
			break;
		pthread_mutex_unlock(&ra->lock);
		if (jb->data)
			ret = source_read(ra->s, ra->buf[slot], jb->len, jb->off);
		else
			memset(ra->buf[slot], 0, jb->len);
		pthread_mutex_lock(&ra->lock);
		if (ret < 0 && !ra->err)
			ra->err = ret;
		ra->ready[slot] = j + 1;
		pthread_cond_broadcast(&ra->cond);
	}
	pthread_mutex_unlock(&ra->lock);
	return NULL;
}

int readahead_run(struct source *s, bool holes, readahead_fn fn, void *ctx)
{
	struct ra ra = { .s = s };
	pthread_t th[READAHEAD_THREADS];
	size_t nth = 0;
	int ret;

	pthread_mutex_init(&ra.lock, NULL);
	pthread_cond_init(&ra.cond, NULL);
	ret = holes ? add_all(&ra) : source_data_ranges(s, FLASH_ALIGN, add_data, &ra);
	if (ret < 0)
		goto out;
	for (size_t i = 0; i < READAHEAD_SLOTS; i++)
		if (posix_memalign((void **)&ra.buf[i], FLASH_ALIGN, FLASH_CHUNK)) {
			ra.buf[i] = NULL;
			log_error("out of memory");
			ret = -ENOMEM;
			goto out;
		}
	for (; nth < READAHEAD_THREADS && nth < ra.njobs; nth++)
		if (pthread_create(&th[nth], NULL, reader, &ra)) {
			if (nth == 0) {
				log_error("cannot start a reading thread");
				ret = -EAGAIN;
				goto out;
			}
			break;
		}
	for (size_t j = 0; j < ra.njobs && ret == 0; j++) {
		size_t slot = j % READAHEAD_SLOTS;
		struct readahead_chunk c;

		pthread_mutex_lock(&ra.lock);
		while (!ra.err && ra.ready[slot] != j + 1)
			pthread_cond_wait(&ra.cond, &ra.lock);
		ret = ra.err;
		pthread_mutex_unlock(&ra.lock);
		if (ret)
			break;
		c = (struct readahead_chunk){ ra.jobs[j].off, ra.jobs[j].len, ra.jobs[j].data,
					      ra.buf[slot] };
		ret = fn(ctx, &c);
		pthread_mutex_lock(&ra.lock);
		ra.consumed = j + 1;
		ra.ready[slot] = 0;
		pthread_cond_broadcast(&ra.cond);
		pthread_mutex_unlock(&ra.lock);
	}
out:
	/* Stop the readers (they may be waiting for a slot) and wait for them. */
	pthread_mutex_lock(&ra.lock);
	if (!ra.err)
		ra.err = -ECANCELED;
	pthread_cond_broadcast(&ra.cond);
	pthread_mutex_unlock(&ra.lock);
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < READAHEAD_SLOTS; i++)
		free(ra.buf[i]);
	free(ra.jobs);
	pthread_cond_destroy(&ra.cond);
	pthread_mutex_destroy(&ra.lock);
	return ret;
}
