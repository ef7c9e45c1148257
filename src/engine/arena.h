/* arena.h - bump allocation in big blocks, freed all at once.
 *
 * The scanned tree keeps its nodes, names, children arrays, symlink targets
 * and extended attributes in arenas: one malloc per block instead of one
 * per object, no allocator header or size-class rounding per object, and
 * tree_free() releases a million-entry tree with a few hundred free()s.
 * Nothing is freed on its own: memory given up early (a node a device table
 * replaced, a children array that grew) stays until arena_free().
 *
 * Thread model: an arena is used by one thread at a time. The scan gives
 * each thread its own and moves its blocks into the tree's with
 * arena_adopt() (under the caller's lock) when the thread ends.
 */
#ifndef RPIFS_ARENA_H
#define RPIFS_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *blocks;     /* newest first */
	char *cur, *end;                /* free space of blocks (the newest) */
};

/* size bytes aligned to align (a power of two, at most 16), or NULL.
 * The bytes are zero. */
void *arena_alloc(struct arena *a, size_t size, size_t align);
/* A copy of the len bytes at s with a '\0' after them, or NULL. */
char *arena_strndup(struct arena *a, const char *s, size_t len);
/* Move all of from's blocks into into; from is left empty. */
void arena_adopt(struct arena *into, struct arena *from);
/* Bytes taken from the system (blocks and their headers). */
size_t arena_bytes(const struct arena *a);
void arena_free(struct arena *a);

#endif
