/* image.h - the whole disk: scan, layout, region map, reads.
 *
 * image_build() scans ROOTFS, computes the layout (MBR, FAT32 partition 1,
 * ext4 partition 2, the disk size) and produces the region map. It is
 * called by one thread at a time (rpifs_build(), then a refresh under the
 * engine's lock, generation.c) and runs threads of its own, joined before it
 * returns: the scan lists the tree on up to 4 threads (tree_scan) and
 * digests it on one more, the MBR is built on a thread beside the FAT32 and
 * ext4 builds (which run one after the other on the caller's thread). The
 * result is immutable and image_read() is safe from any thread.
 *
 * A deferred build (image_build_tree's defer, for the first generation of a
 * server: its partition 1 is readable while partition 2 is being built)
 * returns once the partition table and FAT32 are built; image_build_rest(),
 * called when the image is where it will stay, builds ext4, the region map
 * and the hole map on a thread of its own. Until that thread is done,
 * image_read() of bytes outside partition 2 is answered from the early map
 * and of partition 2 waits for it; image_wait() waits, image_ready() asks.
 * What the thread writes (map, holes) is read by others only after
 * image_wait() or image_ready() said done (release/acquire).
 */
#ifndef RPIFS_IMAGE_H
#define RPIFS_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include "rpifs.h"
#include "tree.h"
#include "holes.h"
#include "regions.h"

#define MIB ((uint64_t)1024 * 1024)

/* The part of rpifs_opts (rpifs.h, where the defaults are) that decides the
 * image; generation.c fills it. */
struct image_opts {
	const char *rootfs;
	const char *boot_dir;       /* relative to rootfs; NULL or "": none */
	uint64_t align;             /* partition alignment, 4 MiB */
	uint64_t boot_size;         /* partition 1 size, 256 MiB */
	uint64_t size;              /* whole disk; 0 = automatic (power of two) */
	uint64_t root_size;         /* partition 2; 0 = automatic */
	unsigned free_percent;      /* automatic root size headroom, 25 */
	enum rpifs_label label;     /* dos, gpt or AUTO: from the tree (identity.h) */
	/* The options; NULL / 0: from the tree, else defaults (identity.h). */
	uint32_t disk_id;
	const char *boot_label;
	const char *root_label;
	bool root_owner;
	const struct rpifs_idmap *idmap; /* host -> image ids (idmap.h) */
	size_t nidmap;
	const struct devtable *devices; /* devtable.h, or NULL */
	bool ext4;                  /* build partition 2's filesystem */
	int64_t source_date_epoch;  /* -1 if unset */
	bool watch;                 /* scans watch the tree with inotify (tree_watch.h) */
};

struct image_pending;

struct image {
	struct tree tree;
	struct regions map;
	struct holes holes;         /* which bytes a reader depends on (holes.h) */
	uint64_t size;
	uint32_t disk_id;           /* dos */
	bool gpt;                   /* the label: gpt, else dos */
	uint8_t disk_guid[16];      /* gpt: the disk GUID, text order */
	uint8_t part_uuid[2][16];   /* gpt: partition 1's and 2's unique GUIDs */
	uint64_t p1_start, p1_size;
	uint64_t p2_start, p2_size;
	uint8_t layout_id[16];      /* tree digest + layout: names this image */
	struct image_pending *pend; /* a deferred build (image.c); NULL: none */
};

int image_build(struct image *img, const struct image_opts *opts);
/* The same from a tree already scanned; the image takes the tree over (on
 * failure too). */
int image_build_tree(struct image *img, struct tree *tree, const struct image_opts *opts,
		     bool defer);
/* A deferred build's second half, on its own thread: call it once the image
 * is at its final address (the thread keeps img). No-op for other images. */
void image_build_rest(struct image *img);
/* The data bytes of the hole map (holes.h). Never waits: until a deferred
 * build's second half is done (or after it failed), an estimate, less than
 * the disk: the early map's bytes plus ext4's size estimate. */
uint64_t image_data_bytes(const struct image *img);
/* Is the image complete (its build's second half done, failed or not)? */
bool image_ready(const struct image *img);
/* Wait for the second half: 0, or its -errno (then only bytes outside
 * partition 2 can be read). 0 at once for a build that was not deferred. */
int image_wait(const struct image *img);
/* Tests only: called on the second half's thread before it builds; a
 * negative return fails the build with it. NULL: none. */
extern int (*image_test_rest_hook)(void);
/* Scan opts->rootfs as image_build() would (for change detection). */
int image_scan(struct tree *tree, const struct image_opts *opts);
void image_free(struct image *img);
/* Read len bytes at off; off+len <= size. 0 or -errno (-EIO: the bytes are
 * partition 2's and its deferred build failed). */
int image_read(struct image *img, void *buf, size_t len, uint64_t off);
/* Do the bytes [off, off+len) all come from one source file? Then its id
 * and the offset in it (for srcfiles_splice()). */
bool image_file_span(const struct image *img, uint64_t off, size_t len, uint32_t *id,
		     uint64_t *file_off);

/* Call fn for every byte range whose bytes may differ between images a and
 * b (of the same size; ranges ascending, not adjacent): what a reader's
 * cached pages of a must lose before b is served. Equal are zero against
 * zero, memory against equal memory, and file bytes against the same
 * offset of the same, unchanged, source file (srcfile_same); everything
 * else may differ. Stops at fn's first non-zero return and returns it. */
int image_diff(const struct image *a, const struct image *b,
	       int (*fn)(void *ctx, uint64_t off, uint64_t len), void *ctx);

/* Parse "256M", "4MiB", "2G", "512" (bytes). 0 or -EINVAL. */
int parse_size(const char *s, uint64_t *out);

#endif
