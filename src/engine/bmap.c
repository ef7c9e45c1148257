/* bmap.c - the hole map in bmaptool's format 2.0 (disk.img.bmap):
 * rpifs_gen_bmap_size() and rpifs_gen_bmap() of rpifs.h.
 *
 * A block of 4 KiB is mapped when any of its bytes is data
 * (rpifs_gen_extent). Each range of mapped blocks carries the sha256 of its
 * bytes (the last block of an image whose size is not a multiple of 4 KiB
 * only up to the end), and the file the sha256 of itself with that field
 * all "0": what `bmaptool copy` verifies while it writes.
 *
 * The text is made in two steps so that its length is known cheaply: the
 * ranges come from the hole map (no image byte read) and every checksum
 * has a fixed width, written first as zeros (the "skeleton"). Filling in
 * the checksums reads every mapped byte: done once, on the first
 * rpifs_gen_bmap(). Both are cached in the generation, for the overlay
 * version they were made from: a write makes them stale.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "generation.h"
#include "log.h"
#include "sha256.h"
#include "vector.h"

#define BMAP_BLOCK 4096u
#define SUM_HEX 64
#define RANGE_TAG "<Range chksum=\""
/* Checksumming more than this says so first: it takes a while. */
#define BMAP_NOTICE_BYTES (64 * MIB)

struct text {
	char *s;
	size_t n, cap;
	int err;
};

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (t->err)
		return;
	va_start(ap, fmt);
	k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (k < 0 || VEC_RESERVE(t->s, t->cap, t->n + (size_t)k + 1, 4096) < 0) {
		t->err = -ENOMEM;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(t->s + t->n, (size_t)k + 1, fmt, ap);
	va_end(ap);
	t->n += (size_t)k;
}

static void human(char *buf, size_t n, uint64_t bytes)
{
	static const char *const unit[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%" PRIu64 " bytes", bytes);
	else
		snprintf(buf, n, "%.1f %s", v, unit[u]);
}

/* Call fn for each range [first, last] of mapped blocks, ascending and
 * not adjacent. */
static int for_each_range(struct rpifs_gen *g, int (*fn)(void *, uint64_t, uint64_t),
			  void *ctx)
{
	uint64_t size = rpifs_gen_size(g), off = 0, first = 0, last = 0;
	bool open = false;
	int ret;

	while (off < size) {
		uint64_t len = size - off;
		bool data;

		ret = rpifs_gen_extent(g, off, &len, &data);
		if (ret < 0)
			return ret;
		if (data) {
			uint64_t a = off / BMAP_BLOCK, b = (off + len - 1) / BMAP_BLOCK;

			if (open && a <= last + 1) {
				last = b;
			} else {
				if (open && (ret = fn(ctx, first, last)) < 0)
					return ret;
				first = a;
				last = b;
				open = true;
			}
		}
		off += len;
	}
	return open ? fn(ctx, first, last) : 0;
}

/* The mapped ranges, from one walk of the map (a write meanwhile must not
 * make the count and the list disagree). */
struct ranges {
	uint64_t (*v)[2];
	size_t n, cap;
	uint64_t blocks;
};

static int add_range(void *ctx, uint64_t first, uint64_t last)
{
	struct ranges *r = ctx;

	if (VEC_RESERVE(r->v, r->cap, r->n + 1, 64) < 0)
		return -ENOMEM;
	r->v[r->n][0] = first;
	r->v[r->n][1] = last;
	r->n++;
	r->blocks += last - first + 1;
	return 0;
}

static void put_range(struct text *t, uint64_t first, uint64_t last)
{
	static const char zeros[SUM_HEX + 1] =
		"0000000000000000000000000000000000000000000000000000000000000000";

	if (first == last)
		put(t, "        " RANGE_TAG "%s\"> %" PRIu64 " </Range>\n", zeros, first);
	else
		put(t, "        " RANGE_TAG "%s\"> %" PRIu64 "-%" PRIu64 " </Range>\n", zeros,
		    first, last);
}

/* The text with every checksum zero. */
static int skeleton(struct rpifs_gen *g, struct text *t)
{
	uint64_t size = rpifs_gen_size(g);
	uint64_t blocks = (size + BMAP_BLOCK - 1) / BMAP_BLOCK, mapped;
	struct ranges r = { 0 };
	char hs[32], hm[32];
	int ret;

	ret = for_each_range(g, add_range, &r);
	if (ret < 0) {
		free(r.v);
		return ret;
	}
	mapped = r.blocks;
	human(hs, sizeof(hs), size);
	human(hm, sizeof(hm), mapped * BMAP_BLOCK);
	put(t, "<?xml version=\"1.0\" ?>\n"
	    "<!-- The block map of disk.img, made by rpifs " RPIFS_VERSION " for one\n"
	    "     generation of the image: the blocks holding data (partition table,\n"
	    "     file system metadata, the journal, directories, files). The other\n"
	    "     blocks are free space no reader depends on: `bmaptool copy`\n"
	    "     writes only the mapped ones, and checks each range's checksum. -->\n\n"
	    "<bmap version=\"2.0\">\n"
	    "    <!-- Image size in bytes: %s -->\n"
	    "    <ImageSize> %" PRIu64 " </ImageSize>\n\n"
	    "    <!-- Size of a block in bytes -->\n"
	    "    <BlockSize> %u </BlockSize>\n\n"
	    "    <!-- Count of blocks in the image file -->\n"
	    "    <BlocksCount> %" PRIu64 " </BlocksCount>\n\n"
	    "    <!-- Count of mapped blocks: %s or %.1f%% -->\n"
	    "    <MappedBlocksCount> %" PRIu64 " </MappedBlocksCount>\n\n"
	    "    <!-- Type of checksum used in this file -->\n"
	    "    <ChecksumType> sha256 </ChecksumType>\n\n"
	    "    <!-- The checksum of this bmap file. When it is calculated, the value of\n"
	    "         the checksum has be zero (all ASCII \"0\" symbols).  -->\n"
	    "    <BmapFileChecksum> %0*d </BmapFileChecksum>\n\n"
	    "    <!-- The block map which consists of elements which may either be a\n"
	    "         range of blocks or a single block. The 'chksum' attribute\n"
	    "         (if present) is the checksum of this blocks range. -->\n"
	    "    <BlockMap>\n", hs, size, BMAP_BLOCK, blocks, hm,
	    blocks ? (double)mapped * 100.0 / (double)blocks : 0.0, mapped, SUM_HEX, 0);
	for (size_t i = 0; i < r.n; i++)
		put_range(t, r.v[i][0], r.v[i][1]);
	free(r.v);
	put(t, "    </BlockMap>\n</bmap>\n");
	return t->err;
}

/* The next range of the text from *p: its first and last block, and where
 * its checksum goes; *p moves past it. False at the end. The ranges are
 * read back from the skeleton, not walked again: a write meanwhile must not
 * make the checksums land on other ranges. */
static bool next_range(char **p, char **sum, uint64_t *first, uint64_t *last)
{
	char *q = strstr(*p, RANGE_TAG), *end;

	if (!q)
		return false;
	*sum = q + strlen(RANGE_TAG);
	q = *sum + SUM_HEX + 2;                 /* past the value and "> */
	*first = strtoull(q, &end, 10);
	*last = *end == '-' ? strtoull(end + 1, &end, 10) : *first;
	*p = end;
	return true;
}

/* sha256 of blocks [first, last] (clipped to the image) into sum. */
static int sum_range(struct rpifs_gen *g, uint8_t *buf, uint64_t first, uint64_t last,
		     char *sum)
{
	uint64_t off = first * BMAP_BLOCK, end = (last + 1) * BMAP_BLOCK;
	uint64_t size = rpifs_gen_size(g);
	uint8_t dig[32];
	char hex[SUM_HEX + 1];
	struct sha256 s;
	int ret;

	if (end > size)
		end = size;
	sha256_init(&s);
	while (off < end) {
		size_t n = end - off < MIB ? (size_t)(end - off) : MIB;

		ret = rpifs_gen_read(g, buf, n, off);
		if (ret < 0) {
			log_error("disk.img.bmap: reading the image at %" PRIu64 ": %s", off,
				  strerror(-ret));
			return ret;
		}
		sha256_update(&s, buf, n);
		off += n;
	}
	sha256_final(&s, dig);
	sha256_hex(dig, hex);
	memcpy(sum, hex, SUM_HEX);
	return 0;
}

/* Fill in the ranges' checksums, then the file's. */
static int fill_sums(struct rpifs_gen *g, char *text, size_t len)
{
	uint64_t first, last, mapped = 0;
	char hex[SUM_HEX + 1], *p, *sum, *field;
	uint8_t dig[32], *buf;
	struct sha256 s;
	double t0 = log_ms();
	int ret = 0;

	for (p = text; next_range(&p, &sum, &first, &last);)
		mapped += (last - first + 1) * BMAP_BLOCK;
	if (mapped > BMAP_NOTICE_BYTES)
		log_info("disk.img.bmap: checksumming %" PRIu64 " MiB of data (generation %u)",
			 mapped >> 20, g->id);
	buf = malloc(MIB);
	if (!buf)
		return -ENOMEM;
	for (p = text; ret == 0 && next_range(&p, &sum, &first, &last);)
		ret = sum_range(g, buf, first, last, sum);
	free(buf);
	if (ret < 0)
		return ret;
	sha256_init(&s);
	sha256_update(&s, text, len);
	sha256_final(&s, dig);
	sha256_hex(dig, hex);
	field = strstr(text, "<BmapFileChecksum> ");
	if (!field)
		return -EIO;    /* cannot be: the skeleton has it */
	memcpy(field + strlen("<BmapFileChecksum> "), hex, SUM_HEX);
	if (mapped > BMAP_NOTICE_BYTES)
		log_info("disk.img.bmap: %" PRIu64 " MiB checksummed in %.1f s", mapped >> 20,
			 (log_ms() - t0) / 1000);
	return 0;
}

/* Make g's cached text current (skeleton, or with sums when summed). Under
 * bmap_lock. */
static int bmap_update(struct rpifs_gen *g, bool summed)
{
	uint64_t v = overlay_version(g->ov);
	struct text t = { 0 };
	int ret;

	if (!g->bmap || g->bmap_version != v) {
		ret = skeleton(g, &t);
		if (ret < 0) {
			free(t.s);
			return ret;
		}
		free(g->bmap);
		g->bmap = t.s;
		g->bmap_len = t.n;
		g->bmap_version = v;
		g->bmap_summed = false;
	}
	if (summed && !g->bmap_summed) {
		ret = fill_sums(g, g->bmap, g->bmap_len);
		if (ret < 0) {
			/* Half filled: start over next time. */
			free(g->bmap);
			g->bmap = NULL;
			return ret;
		}
		g->bmap_summed = true;
	}
	return 0;
}

int rpifs_gen_bmap_size(struct rpifs_gen *g, size_t *len)
{
	int ret;

	pthread_mutex_lock(&g->bmap_lock);
	ret = bmap_update(g, false);
	*len = ret < 0 ? 0 : g->bmap_len;
	pthread_mutex_unlock(&g->bmap_lock);
	return ret;
}

int rpifs_gen_bmap(struct rpifs_gen *g, char **text, size_t *len)
{
	int ret;

	*text = NULL;
	*len = 0;
	pthread_mutex_lock(&g->bmap_lock);
	ret = bmap_update(g, true);
	if (ret == 0) {
		*text = malloc(g->bmap_len + 1);
		if (*text) {
			memcpy(*text, g->bmap, g->bmap_len + 1);
			*len = g->bmap_len;
		} else {
			ret = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&g->bmap_lock);
	return ret;
}
