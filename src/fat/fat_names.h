/* fat_names.h - FAT directory names: 8.3 short names and VFAT long names.
 *
 * Pure functions, no I/O: unit-tested and fuzzed on their own.
 */
#ifndef RPIFS_FAT_NAMES_H
#define RPIFS_FAT_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAT_NTRES_LOWER_BASE 0x08
#define FAT_NTRES_LOWER_EXT  0x10
#define FAT_LFN_MAX_UNITS    255
#define FAT_LFN_SLOTS_MAX    20     /* ceil(255 / 13) */

/* If name is a valid 8.3 name whose base and extension are each all lower or
 * all upper case, store its 11-byte short form in sfn (space padded, upper
 * case) and the NTRes case bits in *ntres, and return true: it needs no long
 * name. A leading 0xE5 byte is stored as 0x05. */
bool fat_name_is_short(const char *name, uint8_t sfn[11], uint8_t *ntres);

/* The Windows-style basis name for a long name: upper case, invalid and
 * non-ASCII characters as '_', leading dots and spaces dropped, base <= 8
 * and extension <= 3 characters. *lossy is set when a ~n tail is required. */
void fat_name_basis(const char *name, uint8_t sfn[11], bool *lossy);

/* Apply tail ~n (1 <= n <= 999999) to a basis name, shortening the base. */
void fat_name_tail(const uint8_t basis[11], unsigned n, uint8_t out[11]);

/* VFAT checksum of an 11-byte short name. */
uint8_t fat_lfn_checksum(const uint8_t sfn[11]);

/* Convert a UTF-8 name to UTF-16LE units. Returns the number of units, or
 * -EILSEQ for invalid UTF-8 / -ENAMETOOLONG above 255 units. */
int fat_utf8_to_utf16(const char *name, uint16_t *out, size_t max);

/* Encode the long-name slots for a name of n UTF-16 units (1..255) into
 * slots (32 bytes each, in on-disk order: the highest ordinal first).
 * Returns the number of slots. */
int fat_lfn_encode(const uint16_t *units, int n, uint8_t csum,
		   uint8_t slots[][32]);

#endif
