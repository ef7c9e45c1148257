/* holes.c - the hole map (see holes.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "holes.h"
#include "vector.h"

void holes_init(struct holes *h)
{
	memset(h, 0, sizeof(*h));
}

void holes_free(struct holes *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

int holes_add_data(struct holes *h, uint64_t start, uint64_t len)
{
	if (h->final)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (start + len < start)
		return -EOVERFLOW;
	if (VEC_RESERVE(h->v, h->cap, h->n + 1, 64) < 0)
		return -ENOMEM;
	h->v[h->n++] = (struct holes_run){ start, start + len };
	return 0;
}

static int cmp_run(const void *a, const void *b)
{
	const struct holes_run *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Append [start, end) to the sorted output, merging with its last run when
 * they touch or overlap (start is never below the last run's start). */
static int emit(struct holes_run **v, size_t *n, size_t *cap, uint64_t start, uint64_t end)
{
	if (*n && start <= (*v)[*n - 1].end) {
		if (end > (*v)[*n - 1].end)
			(*v)[*n - 1].end = end;
		return 0;
	}
	if (VEC_RESERVE(*v, *cap, *n + 1, 256) < 0)
		return -ENOMEM;
	(*v)[(*n)++] = (struct holes_run){ start, end };
	return 0;
}

int holes_finalize(struct holes *h, const struct regions *map)
{
	struct holes_run *v = NULL;
	size_t n = 0, cap = 0, i = 0, j = 0;
	int ret = 0;

	if (h->final || !map->final)
		return -EINVAL;
	/* The builders declare a few ascending runs each: sorting them is
	 * cheap. The map is sorted already: one merge of the two lists, linear
	 * in the regions (a million-file tree has a million). */
	if (h->n)
		qsort(h->v, h->n, sizeof(*h->v), cmp_run);
	while (i < h->n || j < map->n) {
		const struct region *g = j < map->n ? &map->v[j] : NULL;

		if (g && g->kind == REGION_ZERO) {
			j++;
			continue;
		}
		if (g && (i == h->n || g->start < h->v[i].start)) {
			ret = emit(&v, &n, &cap, g->start, g->start + g->len);
			j++;
		} else {
			uint64_t end = h->v[i].end < map->size ? h->v[i].end : map->size;

			if (h->v[i].start < end)
				ret = emit(&v, &n, &cap, h->v[i].start, end);
			i++;
		}
		if (ret < 0) {
			free(v);
			return ret;
		}
	}
	free(h->v);
	h->v = v;
	h->n = n;
	h->cap = cap;
	h->size = map->size;
	h->data_bytes = 0;
	for (i = 0; i < n; i++)
		h->data_bytes += v[i].end - v[i].start;
	h->final = true;
	return 0;
}

void holes_extent(const struct holes *h, uint64_t off, uint64_t *len, bool *data)
{
	size_t lo = 0, hi = h->n;
	uint64_t end;

	/* The first run that ends after off: lo. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->v[mid].end <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < h->n && h->v[lo].start <= off) {
		*data = true;
		end = h->v[lo].end;
	} else {
		*data = false;
		end = lo < h->n ? h->v[lo].start : h->size;
	}
	if (end - off < *len)
		*len = end - off;
}
