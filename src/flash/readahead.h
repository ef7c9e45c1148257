/* readahead.h - a source's bytes, chunk by chunk in offset order, read
 * ahead by a few threads.
 *
 * Writing a card is a read of the image (thousands of source files, cold,
 * and the metadata computed on the way) and a write of the target. Done in
 * one thread the two add up; here READAHEAD_THREADS threads read the next
 * chunks into a ring of READAHEAD_SLOTS buffers while the caller's thread
 * consumes them in order, so the time is that of the slower side, and the
 * reads of many small files overlap (a disk answers a queue faster than
 * one request at a time).
 *
 * Thread model: the readers only call source_read() (thread-safe: the
 * engine's reads are) into their own slot; the consumer callback runs on
 * the caller's thread only, in offset order. One mutex guards the ring's
 * state; a slot is the readers' until marked ready, the consumer's until
 * consumed.
 */
#ifndef RPIFS_FLASH_READAHEAD_H
#define RPIFS_FLASH_READAHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "source.h"

#define READAHEAD_THREADS 4
#define READAHEAD_SLOTS 8       /* x FLASH_CHUNK bytes of buffers */

struct readahead_chunk {
	uint64_t off;
	size_t len;             /* at most FLASH_CHUNK */
	bool data;              /* false: a hole, buf holds zeros */
	const void *buf;        /* FLASH_ALIGN-aligned */
};

/* 0 to go on; anything else stops the run and is returned. */
typedef int (*readahead_fn)(void *ctx, const struct readahead_chunk *c);

/* Call fn for each chunk of s in offset order: the data ranges only
 * (source_data_ranges at FLASH_ALIGN), or with holes every byte of the
 * image (the holes as zero chunks). 0, fn's non-zero result, or -errno
 * from a read (logged by source_read). */
int readahead_run(struct source *s, bool holes, readahead_fn fn, void *ctx);

#endif
