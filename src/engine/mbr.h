/* mbr.h - the DOS partition table, written by libfdisk into memory. */
#ifndef RPIFS_MBR_H
#define RPIFS_MBR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mbr_part {
	uint64_t start;         /* bytes, multiple of 512 */
	uint64_t size;          /* bytes, multiple of 512 */
	uint8_t type;           /* 0x0c, 0x83 ... */
	bool bootable;
};

/* Write the first sector of a disk of disk_size bytes holding parts[n]
 * (n <= 4) with identifier disk_id (!= 0) into sector. 0 or -errno. */
int mbr_build(uint64_t disk_size, uint32_t disk_id,
	      const struct mbr_part *parts, size_t n, uint8_t sector[512]);

#endif
