/* vector.c - the growth rule of vector.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include "vector.h"

int vec_reserve(void **v, size_t *cap, size_t need, size_t elem, size_t first)
{
	size_t nc = *cap ? *cap : (first ? first : 1);
	void *p;

	if (need <= *cap)
		return 0;
	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return -EOVERFLOW;
		nc *= 2;
	}
	if (nc > SIZE_MAX / elem)
		return -EOVERFLOW;
	p = realloc(*v, nc * elem);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = nc;
	return 0;
}
