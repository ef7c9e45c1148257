/* mbr.c - the DOS partition table, written by libfdisk into a memfd.
 *
 * libfdisk wants a device: a sparse memfd of the full disk size costs
 * nothing and lets it check every partition against the real size. Only
 * sector 0 is kept.
 */
#include <errno.h>
#include <inttypes.h>
#include <libfdisk/libfdisk.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "log.h"
#include "mbr.h"

int mbr_build(uint64_t disk_size, uint32_t disk_id, const struct mbr_part *parts,
	      size_t n, uint8_t sector[512])
{
	struct fdisk_context *cxt = NULL;
	struct fdisk_label *lb;
	char idbuf[16];
	int fd, ret;

	if (disk_id == 0 || n > 4 || disk_size % 512)
		return -EINVAL;
	fd = memfd_create("rpifs-mbr", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)disk_size) < 0) {
		ret = -errno;
		goto out;
	}
	cxt = fdisk_new_context();
	if (!cxt) {
		ret = -ENOMEM;
		goto out;
	}
	ret = fdisk_assign_device_by_fd(cxt, fd, "disk.img", 0);
	if (ret < 0) {
		log_error("mbr: assigning the device: %s", strerror(-ret));
		goto out;
	}
	fdisk_disable_dialogs(cxt, 1);
	ret = fdisk_create_disklabel(cxt, "dos");
	if (ret < 0) {
		log_error("mbr: creating the label: %s", strerror(-ret));
		goto out;
	}
	/* libfdisk parses the id with base 0: the "0x" is required. */
	snprintf(idbuf, sizeof(idbuf), "0x%08" PRIx32, disk_id);
	ret = fdisk_set_disklabel_id_from_string(cxt, idbuf);
	if (ret < 0) {
		log_error("mbr: setting disk id %s: %s", idbuf, strerror(-ret));
		goto out;
	}
	lb = fdisk_get_label(cxt, NULL);
	for (size_t i = 0; i < n; i++) {
		struct fdisk_partition *pa = fdisk_new_partition();
		struct fdisk_parttype *type;
		char code[8];

		if (!pa) {
			ret = -ENOMEM;
			goto out;
		}
		snprintf(code, sizeof(code), "%x", parts[i].type);
		type = fdisk_label_parse_parttype(lb, code);
		fdisk_partition_set_partno(pa, i);
		fdisk_partition_set_start(pa, parts[i].start / 512);
		fdisk_partition_set_size(pa, parts[i].size / 512);
		/* Without this libfdisk aligns the end and the size changes. */
		fdisk_partition_size_explicit(pa, 1);
		fdisk_partition_set_type(pa, type);
		ret = fdisk_add_partition(cxt, pa, NULL);
		fdisk_unref_parttype(type);
		fdisk_unref_partition(pa);
		if (ret < 0) {
			log_error("mbr: adding partition %zu (start %" PRIu64 ", size %" PRIu64
				  " bytes): %s", i + 1, parts[i].start, parts[i].size,
				  strerror(-ret));
			goto out;
		}
		if (parts[i].bootable) {
			ret = fdisk_toggle_partition_flag(cxt, i, DOS_FLAG_ACTIVE);
			if (ret < 0)
				goto out;
		}
	}
	ret = fdisk_write_disklabel(cxt);
	if (ret < 0) {
		log_error("mbr: writing the label: %s", strerror(-ret));
		goto out;
	}
	if (pread(fd, sector, 512, 0) != 512) {
		ret = -EIO;
		goto out;
	}
	ret = 0;
out:
	if (cxt) {
		/* nosync = 1: 0 would call sync() for the whole machine. */
		fdisk_deassign_device(cxt, 1);
		fdisk_unref_context(cxt);
	}
	close(fd);
	return ret;
}
