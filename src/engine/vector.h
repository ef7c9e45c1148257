/* vector.h - growable arrays: one growth rule for the whole project.
 *
 * An array is a pointer, a count and a capacity the caller keeps in its own
 * struct (fields of any name). VEC_RESERVE makes room for `need` elements:
 * the capacity starts at `first` and doubles until it holds `need`; the
 * count is the caller's to advance. On failure nothing changes.
 *
 *	if ((ret = VEC_RESERVE(r->v, r->cap, r->n + 1, 256)) < 0)
 *		return ret;
 *	r->v[r->n++] = x;
 */
#ifndef RPIFS_VECTOR_H
#define RPIFS_VECTOR_H

#include <stddef.h>

/* 0, or -ENOMEM / -EOVERFLOW (the array is left as it was). */
int vec_reserve(void **v, size_t *cap, size_t need, size_t elem, size_t first);

#define VEC_RESERVE(v, cap, need, first) \
	vec_reserve((void **)&(v), &(cap), (need), sizeof(*(v)), (first))

#endif
