/* regions.c - the region map of the virtual disk (see regions.h). */
#include <errno.h>
#include <inttypes.h>
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

/* The description rides in the padding after kind: a region stays 40 bytes
 * (a million-file tree has a million regions). */
_Static_assert(sizeof(struct region) <= 40, "struct region grew");

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
			      .what = (uint8_t)what, .u.mem = mem };
	return push(r, &reg);
}

int regions_add_packed(struct regions *r, uint64_t start, uint64_t len,
		       const void *rec, enum region_what what)
{
	struct region reg = { .start = start, .len = len, .kind = REGION_PACKED,
			      .what = (uint8_t)what, .u.mem = rec };

	if (len > PAGEPACK_PAGE)
		return -EINVAL;
	return push(r, &reg);
}

int regions_add_file(struct regions *r, uint64_t start, uint64_t len,
		     uint32_t id, uint64_t off, enum region_what what)
{
	struct region reg = { .start = start, .len = len, .kind = REGION_FILE,
			      .what = (uint8_t)what, .u.file = { .id = id, .off = off } };
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
 * file extents in allocation order, its metadata pages in offset order):
 * merging the runs is linear, where sorting a million regions is not. More
 * runs than this and the map is sorted instead. */
#define MAX_RUNS 16

struct runs {
	size_t head[MAX_RUNS], end[MAX_RUNS];
	size_t k;
};

/* Split v[0..n) into increasing runs; false if there are too many. */
static bool find_runs(const struct region *v, size_t n, struct runs *rs)
{
	rs->k = 0;
	for (size_t i = 0; i < n; i++) {
		if (i && v[i].start >= v[i - 1].start)
			continue;
		if (rs->k == MAX_RUNS)
			return false;
		if (rs->k)
			rs->end[rs->k - 1] = i;
		rs->head[rs->k++] = i;
	}
	if (rs->k)
		rs->end[rs->k - 1] = n;
	return true;
}

/* The next region in start order, or NULL when all runs are consumed. */
static const struct region *next_region(const struct region *v, struct runs *rs)
{
	size_t best = MAX_RUNS;

	for (size_t j = 0; j < rs->k; j++)
		if (rs->head[j] < rs->end[j] &&
		    (best == MAX_RUNS || v[rs->head[j]].start < v[rs->head[best]].start))
			best = j;
	return best == MAX_RUNS ? NULL : &v[rs->head[best]++];
}

int regions_finalize(struct regions *r, uint64_t size)
{
	struct region *v = NULL;
	const struct region *g, *prev = NULL;
	struct runs rs;
	size_t n = 0, cap;
	uint64_t pos = 0;
	int ret = 0;

	if (r->final)
		return -EINVAL;
	if (!find_runs(r->v, r->n, &rs)) {
		qsort(r->v, r->n, sizeof(*r->v), cmp_start);
		rs = (struct runs){ .head = { 0 }, .end = { r->n }, .k = 1 };
	}
	/* Worst case every region is preceded by a gap, plus the tail. */
	cap = 2 * r->n + 1;
	v = malloc(cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	while ((g = next_region(r->v, &rs))) {
		if (g->start < pos) {
			char a[128], b[128];

			describe(prev, a, sizeof(a));
			describe(g, b, sizeof(b));
			log_error("layout: region %s overlaps %s", b, a);
			ret = -EINVAL;
			goto out;
		}
		if (g->start + g->len > size) {
			char b[128];

			describe(g, b, sizeof(b));
			log_error("layout: region %s ends past the disk size %" PRIu64, b, size);
			ret = -EINVAL;
			goto out;
		}
		if (g->start > pos)
			v[n++] = (struct region){ .start = pos, .len = g->start - pos,
						  .kind = REGION_ZERO };
		v[n++] = *g;
		pos = g->start + g->len;
		prev = g;
	}
	if (pos < size)
		v[n++] = (struct region){ .start = pos, .len = size - pos, .kind = REGION_ZERO };
	free(r->v);
	r->v = v;
	r->n = n;
	r->cap = cap;
	v = NULL;
	r->size = size;
	r->final = true;
out:
	free(v);
	return ret;
}

void regions_dump(const struct regions *r, FILE *f, regions_file_namer name, void *ctx)
{
	fprintf(f, "# %-14s %-14s %-12s %-6s %s\n", "start", "end", "length", "kind", "what");
	for (size_t i = 0; i < r->n; i++) {
		const struct region *g = &r->v[i];
		const char *path = NULL;

		fprintf(f, "%16" PRIu64 " %14" PRIu64 " %12" PRIu64 " %-6s %s", g->start,
			g->start + g->len, g->len, kind_name[g->kind], regions_what_name(g->what));
		if (g->kind == REGION_FILE) {
			if (name)
				path = name(ctx, g->u.file.id);
			if (path)
				fprintf(f, ": %s", path);
			else
				fprintf(f, ": file #%" PRIu32, g->u.file.id);
			fprintf(f, " @ %" PRIu64, g->u.file.off);
		}
		fputc('\n', f);
	}
}

size_t regions_find(const struct regions *r, uint64_t off)
{
	size_t lo = 0, hi = r->n;

	/* Invariant: v[lo].start <= off < v[hi].start (v[n].start = size). */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->v[mid].start <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int regions_read(const struct regions *r, void *buf, size_t len, uint64_t off,
		 regions_file_reader reader, void *ctx)
{
	uint8_t *out = buf;
	size_t i;
	int ret;

	if (!r->final || off > r->size || len > r->size - off)
		return -EINVAL;
	if (len == 0)
		return 0;
	for (i = regions_find(r, off); len > 0; i++) {
		const struct region *g = &r->v[i];
		uint64_t in = off - g->start;
		size_t n = g->len - in < len ? (size_t)(g->len - in) : len;

		switch (g->kind) {
		case REGION_ZERO:
			memset(out, 0, n);
			break;
		case REGION_MEM:
			memcpy(out, g->u.mem + in, n);
			break;
		case REGION_PACKED:
			pagepack_read(g->u.mem, out, (size_t)in, n);
			break;
		case REGION_FILE:
			ret = reader(ctx, g->u.file.id, out, n, g->u.file.off + in);
			if (ret < 0)
				return ret;
			break;
		}
		out += n;
		off += n;
		len -= n;
	}
	return 0;
}
