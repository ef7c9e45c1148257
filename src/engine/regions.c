/* regions.c - the region map of the virtual disk (see regions.h). */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "pagepack.h"
#include "regions.h"
#include "vector.h"

static const char *const kind_name[] = { "zero", "memory", "file", "packed" };

static const char *const what_name[RW_COUNT] = {
	[RW_GAP] = "free",
	[RW_MBR] = "MBR",
	[RW_GPT] = "GPT",
	[RW_GPT_BACKUP] = "GPT backup",
	[RW_FAT_BOOT] = "FAT32 boot sector + FSInfo",
	[RW_FAT_BACKUP] = "FAT32 backup boot sector + FSInfo",
	[RW_FAT_TABLE1] = "FAT #1",
	[RW_FAT_TABLE2] = "FAT #2",
	[RW_FAT_DIRS] = "FAT32 directories",
	[RW_FAT_FILE] = "FAT32 file data",
	[RW_EXT4_META] = "ext4 metadata",
	[RW_EXT4_FILE] = "ext4 file data",
};

/* A million-file tree has a million regions: keep them at 32 bytes. */
_Static_assert(sizeof(struct region) == 32, "struct region grew");
_Static_assert(offsetof(struct region, file_id) == 24, "struct region layout");
_Static_assert(RW_COUNT <= 256 && REGION_PACKED <= 255, "kind and what are bytes");

const char *regions_what_name(enum region_what what)
{
	return what < RW_COUNT && what_name[what] ? what_name[what] : "?";
}

void regions_init(struct regions *r)
{
	memset(r, 0, sizeof(*r));
}

void regions_free(struct regions *r)
{
	for (size_t i = 0; i < r->nowned; i++)
		free(r->owned[i]);
	free(r->owned);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

void *regions_own(struct regions *r, void *buf)
{
	if (!buf)
		return NULL;
	if (VEC_RESERVE(r->owned, r->capowned, r->nowned + 1, 64) < 0) {
		free(buf);
		return NULL;
	}
	r->owned[r->nowned++] = buf;
	return buf;
}

static int push(struct regions *r, const struct region *reg)
{
	if (r->final)
		return -EINVAL;
	if (reg->len == 0)
		return 0;
	if (reg->start + reg->len < reg->start)
		return -EOVERFLOW;
	if (VEC_RESERVE(r->v, r->cap, r->n + 1, 256) < 0)
		return -ENOMEM;
	r->v[r->n++] = *reg;
	return 0;
}

int regions_add_mem(struct regions *r, uint64_t start, uint64_t len, const void *mem,
		    enum region_what what)
{
	struct region reg = { .start = start, .len = len, .kind = REGION_MEM,
			      .what = (uint8_t)what, .mem = mem };
	return push(r, &reg);
}

int regions_add_packed(struct regions *r, uint64_t start, uint64_t len,
		       const void *rec, enum region_what what)
{
	struct region reg = { .start = start, .len = len, .kind = REGION_PACKED,
			      .what = (uint8_t)what, .mem = rec };

	if (len > PAGEPACK_PAGE)
		return -EINVAL;
	return push(r, &reg);
}

int regions_add_file(struct regions *r, uint64_t start, uint64_t len,
		     uint32_t id, uint64_t off, enum region_what what)
{
	struct region reg = { .start = start, .len = len, .kind = REGION_FILE,
			      .what = (uint8_t)what, .file_id = id, .file_off = off };
	return push(r, &reg);
}

int regions_add_zero(struct regions *r, uint64_t start, uint64_t len,
		     enum region_what what)
{
	struct region reg = { .start = start, .len = len, .kind = REGION_ZERO,
			      .what = (uint8_t)what };
	return push(r, &reg);
}

static int cmp_start(const void *a, const void *b)
{
	const struct region *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void describe(const struct region *g, char *buf, size_t n)
{
	snprintf(buf, n, "%s (%s) [%" PRIu64 ", %" PRIu64 ")", regions_what_name(g->what),
		 kind_name[g->kind], g->start, g->start + g->len);
}

/* The builders add regions in a few increasing runs (the MBR, FAT32, ext4's
 * file extents in allocation order, its metadata pages in offset order). The
 * longest run (ext4's file extents: one a file) stays where it is; the
 * others are copied aside, sorted, and merged with it from the back, so the
 * extra memory is the short runs, not a second map. More runs than this and
 * the map is sorted in place instead. */
#define MAX_RUNS 16

/* Split v[0..n) into increasing runs: the longest one in *head, *len.
 * False if there are more than MAX_RUNS. */
static bool longest_run(const struct region *v, size_t n, size_t *head, size_t *len)
{
	size_t runs = 0, start = 0;

	*head = *len = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i > 0 && i < n && v[i].start >= v[i - 1].start)
			continue;
		if (i > start && i - start > *len) {
			*head = start;
			*len = i - start;
		}
		if (i < n && ++runs > MAX_RUNS)
			return false;
		start = i;
	}
	return true;
}

/* Sort r->v by start. 0 or -ENOMEM. */
static int sort_regions(struct regions *r)
{
	struct region *v = r->v, *side;
	size_t head, len, m, w, i, j;

	if (!longest_run(v, r->n, &head, &len)) {
		qsort(v, r->n, sizeof(*v), cmp_start);
		return 0;
	}
	m = r->n - len;
	if (m == 0)
		return 0;
	side = malloc(m * sizeof(*side));
	if (!side)
		return -ENOMEM;
	memcpy(side, v, head * sizeof(*v));
	memcpy(side + head, v + head + len, (r->n - head - len) * sizeof(*v));
	memmove(v, v + head, len * sizeof(*v));
	qsort(side, m, sizeof(*side), cmp_start);
	/* Merge from the back: the write index never falls below the read
	 * index of the run in place (w = i + j + 1 >= i + 1). */
	for (i = len, j = m, w = r->n; j > 0;) {
		if (i > 0 && v[i - 1].start > side[j - 1].start)
			v[--w] = v[--i];
		else
			v[--w] = side[--j];
	}
	free(side);
	return 0;
}

int regions_finalize(struct regions *r, uint64_t size)
{
	const struct region *prev = NULL;
	int ret;

	if (r->final)
		return -EINVAL;
	ret = sort_regions(r);
	if (ret)
		return ret;
	for (size_t i = 0; i < r->n; i++) {
		const struct region *g = &r->v[i];

		if (prev && g->start < prev->start + prev->len) {
			char a[128], b[128];

			describe(prev, a, sizeof(a));
			describe(g, b, sizeof(b));
			log_error("layout: region %s overlaps %s", b, a);
			return -EINVAL;
		}
		if (g->start + g->len > size) {
			char b[128];

			describe(g, b, sizeof(b));
			log_error("layout: region %s ends past the disk size %" PRIu64, b, size);
			return -EINVAL;
		}
		prev = g;
	}
	r->size = size;
	r->final = true;
	return 0;
}

void regions_dump(const struct regions *r, FILE *f, regions_file_namer name, void *ctx)
{
	struct region gap;
	uint64_t off = 0;
	size_t i = 0;

	/* The gaps are printed as the zero regions they read as ("free"). */
	fprintf(f, "# %-14s %-14s %-12s %-6s %s\n", "start", "end", "length", "kind", "what");
	while (off < r->size) {
		const struct region *g = regions_piece(r, i, off, &gap);
		const char *path = NULL;

		if (g != &gap)
			i++;
		off = g->start + g->len;
		fprintf(f, "%16" PRIu64 " %14" PRIu64 " %12" PRIu64 " %-6s %s", g->start,
			g->start + g->len, g->len, kind_name[g->kind], regions_what_name(g->what));
		if (g->kind == REGION_FILE) {
			if (name)
				path = name(ctx, g->file_id);
			if (path)
				fprintf(f, ": %s", path);
			else
				fprintf(f, ": file #%" PRIu32, g->file_id);
			fprintf(f, " @ %" PRIu64, g->file_off);
		}
		fputc('\n', f);
	}
}

size_t regions_find(const struct regions *r, uint64_t off)
{
	size_t lo = 0, hi = r->n;

	/* Ends ascend (the regions are sorted and disjoint): the first region
	 * with end > off. Invariant: v[i].end <= off for i < lo, > off for i >= hi. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->v[mid].start + r->v[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct region *regions_piece(const struct regions *r, size_t i, uint64_t off,
				   struct region *gap)
{
	if (i < r->n && r->v[i].start <= off)
		return &r->v[i];
	*gap = (struct region){ .kind = REGION_ZERO, .what = RW_GAP };
	gap->start = i ? r->v[i - 1].start + r->v[i - 1].len : 0;
	gap->len = (i < r->n ? r->v[i].start : r->size) - gap->start;
	return gap;
}

int regions_read(const struct regions *r, void *buf, size_t len, uint64_t off,
		 regions_file_reader reader, void *ctx)
{
	uint8_t *out = buf;
	struct region gap;
	size_t i;
	int ret;

	if (!r->final || off > r->size || len > r->size - off)
		return -EINVAL;
	if (len == 0)
		return 0;
	for (i = regions_find(r, off); len > 0;) {
		const struct region *g = regions_piece(r, i, off, &gap);
		uint64_t in = off - g->start;
		size_t n = g->len - in < len ? (size_t)(g->len - in) : len;

		switch ((enum region_kind)g->kind) {
		case REGION_ZERO:
			memset(out, 0, n);
			break;
		case REGION_MEM:
			memcpy(out, g->mem + in, n);
			break;
		case REGION_PACKED:
			pagepack_read(g->mem, out, (size_t)in, n);
			break;
		case REGION_FILE:
			ret = reader(ctx, g->file_id, out, n, g->file_off + in);
			if (ret < 0)
				return ret;
			break;
		}
		out += n;
		off += n;
		len -= n;
		if (g != &gap && off == g->start + g->len)
			i++;
	}
	return 0;
}
