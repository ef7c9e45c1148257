/* overlay.h - copy-on-write blocks written to disk.img.
 *
 * Writes never reach the source tree: they land here, in 4 KiB blocks, and
 * reads patch the image's bytes with them. Blocks live in memory, or with
 * --overlay FILE in a sparse file that survives remounts:
 *
 *   FILE = header (4 KiB) | presence bitmap (rounded to 4 KiB) | blocks
 *
 * where block b is stored at data_offset + b * 4096. The header records the
 * disk size and the layout id of the image the blocks belong to: an overlay
 * is refused for any other layout, so stale blocks never land on a new one.
 *
 * Thread model: overlay_read/overlay_write/overlay_sync may be called from
 * any thread; a rwlock inside serialises writers against readers.
 */
#ifndef RPIFS_OVERLAY_H
#define RPIFS_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OVERLAY_BLOCK 4096u

struct overlay;

/* Fills buf with len bytes of the underlying image at off. */
typedef int (*overlay_base_reader)(void *ctx, void *buf, size_t len, uint64_t off);

/* path NULL: in memory. Otherwise open or create FILE for a disk of
 * disk_size bytes whose layout is layout_id; reset discards its blocks.
 * A file for another layout or disk size, or a corrupt one, is refused
 * (-ESTALE / -EINVAL) with a message that says how to reset it. */
int overlay_open(struct overlay **ov, const char *path, uint64_t disk_size,
		 const uint8_t layout_id[16], bool reset);
void overlay_close(struct overlay *ov);

/* Blocks written so far. */
uint64_t overlay_blocks(const struct overlay *ov);
bool overlay_persistent(const struct overlay *ov);

/* buf already holds the image's bytes for [off, off+len): replace the bytes
 * of every block present in the overlay. */
int overlay_read(struct overlay *ov, void *buf, size_t len, uint64_t off);
/* Store len bytes at off; partial blocks are completed from base. */
int overlay_write(struct overlay *ov, const void *buf, size_t len, uint64_t off,
		  overlay_base_reader base, void *ctx);
/* Make a persistent overlay durable (fdatasync). No-op in memory. */
int overlay_sync(struct overlay *ov);

/* The first block in [b, end) that is present (present true) or absent
 * (false) in the overlay; end if there is none. */
uint64_t overlay_find(struct overlay *ov, uint64_t b, uint64_t end, bool present);
/* Counts the overlay_write() calls: a cache of anything derived from the
 * overlay's blocks is stale when this moved. */
uint64_t overlay_version(const struct overlay *ov);

#endif
