/* pagepack.h - a compact encoding of a 4 KiB metadata page.
 *
 * The page is 16 chunks of 256 bytes, the ext4 inode size rpifs uses
 * (ext4_memio.c asserts that the two agree): an inode-table page is 16
 * inodes. Neighbouring inodes of one directory share mode, owner, times,
 * flags and the extent header, so a chunk XORed with the chunk before it
 * leaves only a few non-zero 16-bit words (size, extent start, checksum).
 * Each chunk is stored as the mask of its non-zero words (after the XOR,
 * or as it is when that has fewer) followed by those words; those inodes
 * differ in the same words, so a mask equal to the one before is not
 * repeated. A page of such inodes packs to about 14 B per inode (16-bit
 * words measured smaller than 32-bit ones: see doc/DEVELOPMENT.md).
 *
 * Record layout (native byte order: records never leave the process):
 *   uint16_t present   bit c: chunk c has words below
 *   uint16_t xored     bit c: chunk c is a delta against chunk c - 1
 *   uint16_t same      bit c: chunk c's mask is the previous present
 *                      chunk's, and is not stored again
 *   per present chunk, in order: the 128-bit mask as uint64_t[2] (bit w
 *   of the chunk's 16-bit word w in mask[w / 64] bit w % 64; unless
 *   same), then popcount(mask) uint16_t words (word w of the chunk for
 *   each set bit w, ascending)
 * An absent chunk has no non-zero word: it is zeros, or (xored) the same
 * bytes as the chunk before it. The encoding is a function of the page
 * alone: equal pages give equal records.
 *
 * A record is only made when it is smaller than the page (dense pages,
 * such as directory blocks full of names, are kept raw by the caller).
 */
#ifndef RPIFS_PAGEPACK_H
#define RPIFS_PAGEPACK_H

#include <stddef.h>
#include <stdint.h>

#define PAGEPACK_PAGE  4096u
#define PAGEPACK_CHUNK 256u            /* = the ext4 inode size */

/* Encode page. Returns 0 with *rec a malloc'd record of *len bytes
 * (*len < PAGEPACK_PAGE), 1 when the encoding would not be smaller than
 * the page (keep it raw; *rec untouched), or -ENOMEM. */
int pagepack_pack(const uint8_t *page, uint8_t **rec, size_t *len);

/* The record's size in bytes (what pagepack_pack returned in *len). */
size_t pagepack_size(const uint8_t *rec);

/* Decode the whole page into page[PAGEPACK_PAGE]. */
void pagepack_unpack(const uint8_t *rec, uint8_t *page);

/* Decode bytes [off, off + len) of the page into buf; off + len must not
 * exceed PAGEPACK_PAGE. Decodes only the chunks up to the last one asked
 * for (a chunk depends on the chunks before it). */
void pagepack_read(const uint8_t *rec, void *buf, size_t off, size_t len);

#endif
