/* test_arena.c - bump allocation in blocks (src/engine/arena.c):
 *   - every allocation is aligned as asked, zero, and overlaps no other
 *     (each is filled with its own byte and checked at the end);
 *   - one bigger than a quarter block gets a block of its own and does not
 *     abandon the current block: the next small one follows the last;
 *   - arena_adopt() moves the blocks (the bytes count moves with them, the
 *     memory stays valid) and the adopting arena keeps bumping where it was;
 *   - arena_strndup() copies and terminates.
 */
#include <stdint.h>
#include <string.h>
#include "arena.h"
#include "check.h"

#define N 20000

struct rec {
	uint8_t *p;
	size_t len;
};

static struct rec recs[N];

int main(void)
{
	struct arena a = { 0 }, b = { 0 };
	size_t total = 0;

	for (size_t i = 0; i < N; i++) {
		size_t len = 1 + (i * 7919) % 300, align = (size_t)1 << (i % 5);
		uint8_t *p = arena_alloc(i % 2 ? &a : &b, len, align);

		must(p != NULL, "arena_alloc");
		CHECK(((uintptr_t)p & (align - 1)) == 0, "%zu: aligned to %zu", i, align);
		for (size_t k = 0; k < len; k++)
			CHECK(p[k] == 0, "%zu: zero", i);
		memset(p, (int)(i & 0xff), len);
		recs[i] = (struct rec){ p, len };
		total += len;
	}
	/* A big one between two small ones. */
	uint8_t *s1 = arena_alloc(&a, 16, 8), *big = arena_alloc(&a, 1 << 20, 16),
		*s2 = arena_alloc(&a, 16, 8);

	must(s1 && big && s2, "arena_alloc");
	CHECK(s2 == s1 + 16, "the current block was abandoned for a big allocation");
	memset(big, 0xee, 1 << 20);
	CHECK(arena_bytes(&a) >= total / 2 + (1 << 20), "bytes: %zu", arena_bytes(&a));

	size_t ab = arena_bytes(&a), bb = arena_bytes(&b);
	uint8_t *s3;

	arena_adopt(&a, &b);
	CHECK(!b.blocks && arena_bytes(&b) == 0, "adopted arena left empty");
	CHECK(arena_bytes(&a) == ab + bb, "adopted bytes: %zu", arena_bytes(&a));
	s3 = arena_alloc(&a, 8, 8);
	CHECK(s3 == s2 + 16, "the adopting arena moved off its block");

	char *str = arena_strndup(&a, "name and more", 4);

	CHECK(str && !strcmp(str, "name"), "strndup");
	for (size_t i = 0; i < N; i++)
		for (size_t k = 0; k < recs[i].len; k++)
			if (recs[i].p[k] != (uint8_t)(i & 0xff)) {
				CHECK(0, "%zu: overwritten", i);
				break;
			}
	arena_free(&a);
	arena_free(&b);
	CHECK(!a.blocks && !a.cur, "freed");
	return check_done();
}
