/* target.h - the DEVICE `rpifs flash` writes: a block device (an SD card)
 * or a regular file. Every check runs before a byte is written: not
 * mounted, no mounted partition, not held by device-mapper/RAID, not the
 * disk of / or of a swap area, large enough, opened exclusively. */
#ifndef RPIFS_FLASH_TARGET_H
#define RPIFS_FLASH_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct target {
	const char *path;
	int fd;                 /* -1 until opened (a new file: after confirming) */
	bool blk;               /* a block device, else a regular file */
	bool exists;            /* a file: it existed */
	bool direct;            /* fd has O_DIRECT */
	uint64_t size;          /* the device's size; a file's current size */
	char name[64];          /* the block device's kernel name: sdb, loop0 */
};

/* Check path as a target for an image of a tree at rootfs (NULL: an image
 * file src_path): everything but the size. Opens a block device or an
 * existing file (O_EXCL for a device: the kernel refuses it while mounted).
 * 0 or -errno, logged: what is wrong and how to fix it. */
int target_open(struct target *t, const char *path, const char *rootfs,
		const char *src_path);
/* Refuse a device smaller than the image. 0 or -ENOSPC, logged. */
int target_check_size(struct target *t, uint64_t image_size);
/* Is what is on it at stake (a device, a non-empty file)? */
bool target_holds_data(const struct target *t);
/* Model, size and the current partition table, for the confirmation. */
void target_describe(struct target *t, FILE *f);
/* Create a new file, set a file's size to the image's (holes are not
 * written: a new file stays sparse). 0 or -errno, logged. */
int target_prepare(struct target *t, uint64_t image_size);

/* len bytes at off; buf aligned to 4 KiB; off aligned to 4 KiB. Falls back
 * from O_DIRECT when the device refuses it. 0 or -errno, logged. */
int target_pwrite(struct target *t, const void *buf, size_t len, uint64_t off);
int target_pread(struct target *t, void *buf, size_t len, uint64_t off);
/* Everything on the medium; its page cache dropped so that reads come
 * from the device; a device's partitions re-read. 0 or -errno, logged. */
int target_sync(struct target *t);
void target_close(struct target *t);

#endif
