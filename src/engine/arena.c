/* arena.c - bump allocation in big blocks (see arena.h).
 *
 * Blocks are ARENA_BLOCK bytes; a request bigger than a quarter of that
 * gets a block of its own, put behind the current one so that the current
 * block's free space is not abandoned. Blocks come from calloc (fresh pages
 * from mmap, already zero: the zeroing costs nothing until touched).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"

#define ARENA_BLOCK (256u << 10)

struct arena_block {
	struct arena_block *next;
	size_t size;                    /* of the whole block, header included */
	_Alignas(16) char data[];
};

static struct arena_block *block_new(size_t data)
{
	struct arena_block *b;

	if (data > SIZE_MAX - sizeof(*b))
		return NULL;
	b = calloc(1, sizeof(*b) + data);
	if (b)
		b->size = sizeof(*b) + data;
	return b;
}

void *arena_alloc(struct arena *a, size_t size, size_t align)
{
	uintptr_t p = ((uintptr_t)a->cur + (align - 1)) & ~(uintptr_t)(align - 1);
	struct arena_block *b;

	if (a->cur && p <= (uintptr_t)a->end && size <= (uintptr_t)a->end - p) {
		a->cur = (char *)(p + size);
		return (void *)p;
	}
	if (size > ARENA_BLOCK / 4) {
		/* Its own block, behind the current one. */
		if (!(b = block_new(size)))
			return NULL;
		if (a->blocks) {
			b->next = a->blocks->next;
			a->blocks->next = b;
		} else {
			a->blocks = b;  /* no current block: none to keep */
		}
		return b->data;
	}
	if (!(b = block_new(ARENA_BLOCK - sizeof(*b))))
		return NULL;
	b->next = a->blocks;
	a->blocks = b;
	a->cur = b->data + size;
	a->end = (char *)b + b->size;
	return b->data;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *d = len + 1 ? arena_alloc(a, len + 1, 1) : NULL;

	if (d)
		memcpy(d, s, len);     /* the '\0' is the arena's zero */
	return d;
}

void arena_adopt(struct arena *into, struct arena *from)
{
	struct arena_block *last = from->blocks;

	if (!last)
		return;
	while (last->next)
		last = last->next;
	/* from's blocks go behind into's current one: into keeps bumping
	 * where it was. */
	if (into->blocks) {
		last->next = into->blocks->next;
		into->blocks->next = from->blocks;
	} else {
		into->blocks = from->blocks;
		into->cur = from->cur;
		into->end = from->end;
	}
	memset(from, 0, sizeof(*from));
}

size_t arena_bytes(const struct arena *a)
{
	size_t n = 0;

	for (const struct arena_block *b = a->blocks; b; b = b->next)
		n += b->size;
	return n;
}

void arena_free(struct arena *a)
{
	struct arena_block *b = a->blocks, *next;

	for (; b; b = next) {
		next = b->next;
		free(b);
	}
	memset(a, 0, sizeof(*a));
}
