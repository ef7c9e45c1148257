/* holes.h - the hole map: which bytes of an image a reader depends on.
 *
 * A hole is a byte range whose content no reader of the image depends on,
 * so that a copy may leave whatever the target held there (bmaptool copy,
 * cp --sparse, SEEK_HOLE): the space before partition 1 after the MBR,
 * FAT32's free clusters, ext4's free blocks (a sparse source file's holes
 * are among them: ext4 leaves them unallocated), the inode-table blocks
 * past each group's last inode in use, the disk's tail after partition 2.
 * Everything else is data, zeros included where they carry meaning (a FAT
 * entry of zero means "free", a bitmap's zeros, the journal).
 *
 * The builders declare what they allocated (holes_add_data(): FAT32's
 * reserved sectors, both FATs and every used cluster; ext4's allocated
 * blocks; the MBR); holes_finalize() adds every byte the region map does
 * not serve as zeros. So every hole reads as zeros from the map, and the
 * map never asks a source file anything (nothing to fail when a file
 * changes or vanishes): a sparse source's holes are holes of the image
 * where ext4 left them unallocated at build time (ext4_data_walk). In
 * FAT32, where a file has no holes, its zeros are file content: data.
 *
 * After holes_finalize() the map is immutable: holes_extent() may run on
 * any number of threads. Written overlay blocks are not in it (the engine's
 * rpifs_gen_extent() adds them).
 */
#ifndef RPIFS_HOLES_H
#define RPIFS_HOLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "regions.h"

struct holes_run {
	uint64_t start, end;            /* data bytes [start, end) */
};

struct holes {
	struct holes_run *v;            /* after finalize: sorted, disjoint, not adjacent */
	size_t n, cap;
	uint64_t size;                  /* the disk's size, set by finalize */
	uint64_t data_bytes;            /* sum of the runs, set by finalize */
	bool final;
};

void holes_init(struct holes *h);
void holes_free(struct holes *h);

/* Declare [start, start+len) as data, zeros or not (builders: what their
 * filesystem allocated). Any order, overlaps allowed. 0 or -ENOMEM. */
int holes_add_data(struct holes *h, uint64_t start, uint64_t len);

/* Sort and merge the declared runs, add every byte map serves as other than
 * zeros (map finalized; a run past its size is clipped). 0 or -errno. */
int holes_finalize(struct holes *h, const struct regions *map);

/* At off (< size): is it data, and how far does the run of that kind go
 * from off: to the end of the run, at most *len (> 0 on input). */
void holes_extent(const struct holes *h, uint64_t off, uint64_t *len, bool *data);

#endif
