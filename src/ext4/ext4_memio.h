/* ext4_memio.h - a libext2fs io_manager that keeps every written block in
 * memory (a page store keyed by byte offset; a missing page reads as zeros).
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

struct memio_store;

/* Create a store for a device of size bytes. */
struct memio_store *memio_store_new(uint64_t size);
void memio_store_free(struct memio_store *s);

/* The io_manager; open it with a name from memio_name(). */
extern io_manager memio_io_manager;
/* The device name that makes memio_io_manager's open use store s
 * (writes "memio:<pointer>" into buf). */
const char *memio_name(struct memio_store *s, char *buf, size_t len);

/* Pages in ascending offset order: calls fn for each stored page.
 * A page's bytes stay valid until memio_store_free(). */
int memio_store_foreach(struct memio_store *s,
			int (*fn)(void *ctx, uint64_t off, const uint8_t *page),
			void *ctx);
size_t memio_store_pages(const struct memio_store *s);
/* Move page ownership to the caller's region map (see ext4_build.c). */
void *memio_store_steal(struct memio_store *s, uint64_t off);

#endif
