/* ext4_memio.h - a libext2fs io_manager that keeps every written block in
 * memory (a page store keyed by byte offset; a missing page reads as zeros).
 * Pages are kept packed (pagepack.h) but for a bounded hot set of raw ones.
 *
 * libext2fs writes all ext4 metadata through it; file data never passes
 * through it (files are allocated with ext2fs_fallocate and mapped to the
 * source files instead). After ext2fs_close_free() the store lives on and
 * its pages become memory regions of the disk.
 */
#ifndef RPIFS_EXT4_MEMIO_H
#define RPIFS_EXT4_MEMIO_H

#include <stdint.h>
#include <stddef.h>
#include <ext2fs/ext2_io.h>

#define MEMIO_PAGE 4096u
/* Once packing has started, at most this many raw pages that pack smaller
 * are alive (1 MiB). */
#define MEMIO_HOT  256u
/* The ext4 build's raw budget: a store of at most this many pages (8 MiB)
 * is never packed. Packing costs ~2 us a page, a tenth of the ext4 build
 * of a Debian tree (about 2 000 pages), and saves memory only where there
 * are many pages. */
#define MEMIO_RAW_BUDGET 2048u

struct memio_store;

/* Create a store for a device of size bytes. Its pages stay raw while
 * there are at most raw_budget of them; past that, every page is packed
 * once and from then on only MEMIO_HOT stay raw. */
struct memio_store *memio_store_new(uint64_t size, size_t raw_budget);
void memio_store_free(struct memio_store *s);

/* The io_manager; open it with a name from memio_name(). */
extern io_manager memio_io_manager;
/* The device name that makes memio_io_manager's open use store s
 * (writes "memio:<pointer>" into buf). */
const char *memio_name(struct memio_store *s, char *buf, size_t len);

/* Pack every hot page that packs smaller (after the build, before the
 * pages are handed over); a store that stayed within its raw budget stays
 * raw. Returns 0 or -ENOMEM. */
int memio_store_pack(struct memio_store *s);
/* Pages in ascending offset order: calls fn for each stored page with its
 * data: a pagepack record of plen bytes, or (plen 0) the raw page of
 * MEMIO_PAGE bytes. The data stays valid until memio_store_free() or the
 * next store access (which may pack or unpack it). */
int memio_store_foreach(struct memio_store *s,
			int (*fn)(void *ctx, uint64_t off, const uint8_t *data,
				  size_t plen),
			void *ctx);
size_t memio_store_pages(const struct memio_store *s);
/* Move a page's data (as foreach gave it) to the caller's region map (see
 * ext4_extent.c). */
void *memio_store_steal(struct memio_store *s, uint64_t off);

#endif
