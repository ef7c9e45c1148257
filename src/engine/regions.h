/* regions.h - a virtual disk as a sorted list of byte regions.
 *
 * Modelled on nbdkit's common/regions. Builders add regions in any order;
 * regions_finalize() sorts them in place and refuses overlaps. After that the
 * map is immutable and regions_read() may run from any number of threads
 * without locks.
 *
 * Invariant after finalize: v[i].start + v[i].len <= v[i+1].start, the last
 * region ends at or before size, no region has len 0. The bytes between
 * regions (the gaps) read as zeros: they are not stored, because a
 * million-file tree leaves a gap after nearly every file's last block and
 * storing them doubled the map. regions_piece() hands a walker the gap as
 * a zero region (what RW_GAP), so the disk still reads as a tiling.
 */
#ifndef RPIFS_REGIONS_H
#define RPIFS_REGIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum region_kind {
	REGION_ZERO,    /* reads as zeros */
	REGION_MEM,     /* bytes from a buffer built at layout time */
	REGION_FILE,    /* bytes from a source file, read on demand */
	REGION_PACKED,  /* a page from a pagepack record (mem), decoded on
			 * read: the region's bytes are the page's from its
			 * start, so len <= PAGEPACK_PAGE */
};

/* What a region holds, for people: `rpifs --dump-regions` prints it, and
 * overlap errors name both sides. One byte, in the padding after kind. */
enum region_what {
	RW_GAP,            /* filled by finalize: bytes no builder claimed */
	RW_MBR,            /* sector 0: the partition table (gpt: protective) */
	RW_GPT,            /* gpt: the primary header and entries (LBA 1..33) */
	RW_GPT_BACKUP,     /* gpt: the backup entries and header (last 33 sectors) */
	RW_FAT_BOOT,       /* FAT32 boot sector + FSInfo */
	RW_FAT_BACKUP,     /* their backup copy (sector 6) */
	RW_FAT_TABLE1,     /* the first FAT (only the entries in use) */
	RW_FAT_TABLE2,     /* the second FAT, the same bytes */
	RW_FAT_DIRS,       /* FAT32 directory clusters */
	RW_FAT_FILE,       /* a FAT32 file's clusters */
	RW_EXT4_META,      /* an ext4 metadata page (superblocks, GDT, bitmaps,
			    * inode tables, directory blocks, xattr blocks...) */
	RW_EXT4_FILE,      /* an ext4 file's data extent */
	RW_COUNT
};

/* 32 bytes: a million-file tree has a million regions. */
struct region {
	uint64_t start;                 /* offset 0 */
	uint64_t len;                   /* offset 8 */
	union {                         /* offset 16 */
		const uint8_t *mem;     /* REGION_MEM: the bytes */
		uint64_t file_off;      /* REGION_FILE: offset in the source file */
	};
	uint32_t file_id;               /* offset 24: REGION_FILE: srcfiles id */
	uint8_t kind;                   /* offset 28: enum region_kind */
	uint8_t what;                   /* offset 29: enum region_what */
};

struct regions {
	struct region *v;
	size_t n, cap;
	uint64_t size;          /* disk size, set by finalize */
	bool final;
	void **owned;           /* buffers freed with the map */
	size_t nowned, capowned;
};

/* Reads file bytes for REGION_FILE: must fill all len bytes or fail. */
typedef int (*regions_file_reader)(void *ctx, uint32_t id, void *buf,
				   size_t len, uint64_t off);

void regions_init(struct regions *r);
void regions_free(struct regions *r);

/* Hand a malloc'd buffer to the map; it is freed by regions_free().
 * Returns buf, or NULL (and frees buf) when out of memory. */
void *regions_own(struct regions *r, void *buf);

int regions_add_mem(struct regions *r, uint64_t start, uint64_t len,
		    const void *mem, enum region_what what);
/* A pagepack record (pagepack.h) whose page's first len bytes are the
 * region's. */
int regions_add_packed(struct regions *r, uint64_t start, uint64_t len,
		       const void *rec, enum region_what what);
int regions_add_file(struct regions *r, uint64_t start, uint64_t len,
		     uint32_t id, uint64_t off, enum region_what what);
int regions_add_zero(struct regions *r, uint64_t start, uint64_t len,
		     enum region_what what);

/* "ext4 metadata", "FAT #1"... */
const char *regions_what_name(enum region_what what);

/* Sort in place and check. -EINVAL (logged, naming both regions) when two
 * regions overlap or one ends past size. The extra memory is the regions
 * outside the longest sorted run (see regions.c), not a copy of the map. */
int regions_finalize(struct regions *r, uint64_t size);

/* Index of the first region that ends after byte off: the region holding
 * off, or the one after the gap off lies in (n when off is in the tail). */
size_t regions_find(const struct regions *r, uint64_t off);
/* The piece of the disk holding byte off, given i = regions_find(off) or a
 * walker's cursor that has not passed off: &v[i] when v[i] holds off, else
 * *gap, filled in as the whole gap before v[i] (or before size) as a zero
 * region, what RW_GAP. A walker moves i on when it passes v[i]'s end. */
const struct region *regions_piece(const struct regions *r, size_t i, uint64_t off,
				   struct region *gap);

/* Names a source file id for regions_dump (NULL: print the id). */
typedef const char *(*regions_file_namer)(void *ctx, uint32_t id);

/* One line per region, in disk order: start, end, length, kind, what, and
 * for file regions the source file and the offset in it. */
void regions_dump(const struct regions *r, FILE *f, regions_file_namer name, void *ctx);

/* Read len bytes at off (clipped to size by the caller). Returns 0 or -errno. */
int regions_read(const struct regions *r, void *buf, size_t len, uint64_t off,
		 regions_file_reader reader, void *ctx);

#endif
