/* source.h - what `rpifs flash` and `rpifs export` copy from: the bytes of
 * an image and where its data lies. Two kinds: a ROOTFS tree, built into an
 * image by the engine (source_tree.c), or an existing image file IMAGE
 * (source_image.c). A copy asks for runs (data or hole) and reads data.
 *
 * A hole is a range whose bytes no reader of the image depends on: a copy
 * may skip it and leave whatever the target held there. */
#ifndef RPIFS_FLASH_SOURCE_H
#define RPIFS_FLASH_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "rpifs.h"

struct source {
	const char *path;       /* ROOTFS or IMAGE, for messages */
	bool tree;              /* a ROOTFS built by the engine */
	uint64_t size;          /* the image's size in bytes */
	/* tree */
	struct rpifs *r;
	struct rpifs_gen *g;
	/* image file */
	int fd;
	bool seek_data;         /* its filesystem answers SEEK_DATA */
};

/* Open path: a directory is a ROOTFS (built with the layout options o; o's
 * strings must outlive s), a regular file or block device an IMAGE (then no
 * layout option may be given: layout_given counts them). 0 or -errno,
 * logged with the path and what to do. */
int source_open(struct source *s, const char *path, struct rpifs_opts *o,
		unsigned layout_given);
void source_close(struct source *s);

/* The run at off (< size): *len its length from off (> 0, up to the end),
 * *data whether it holds data. 0 or -errno, logged. */
int source_extent(struct source *s, uint64_t off, uint64_t *len, bool *data);
/* len bytes at off (within size). 0 or -errno, logged. */
int source_read(struct source *s, void *buf, size_t len, uint64_t off);

/* The data ranges, rounded out to multiples of gran (a power of two) and
 * merged, clipped to the size: calls fn for each; stops at the first
 * non-zero return and returns it. */
typedef int (*source_range_fn)(void *ctx, uint64_t off, uint64_t len);
int source_data_ranges(struct source *s, uint64_t gran, source_range_fn fn, void *ctx);

#endif
