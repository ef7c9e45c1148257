/* parttable.c - the partition table, dos or gpt, written by libfdisk into
 * a memfd (parttable.h).
 *
 * libfdisk wants a device: a sparse memfd of the full disk size costs
 * nothing and lets it check every partition against the real size (and
 * put gpt's backup header at the real last sector). Only the table's own
 * sectors are kept: sector 0 (dos), or the head and the tail (gpt).
 *
 * libfdisk makes gpt's disk GUID and partition GUIDs at random: every one
 * is set here from the caller's, so the same table gives the same bytes.
 * Nothing else in its gpt is random or from the clock (the protective MBR
 * is zeroed, the headers hold LBAs, sizes and CRCs).
 */
#include <errno.h>
#include <inttypes.h>
#include <libfdisk/libfdisk.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "log.h"
#include "parttable.h"

uint64_t parttable_head_bytes(enum pt_label label)
{
	return label == PT_GPT ? PT_GPT_HEAD_BYTES : 512;
}

uint64_t parttable_tail_bytes(enum pt_label label)
{
	return label == PT_GPT ? PT_GPT_TAIL_BYTES : 0;
}

void parttable_uuid_str(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5], u[6],
		 u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static const char *label_name(enum pt_label label)
{
	return label == PT_GPT ? "gpt" : "dos";
}

/* The disk's identifier: dos's 32 bits, gpt's GUID. */
static int set_disk_id(struct fdisk_context *cxt, const struct parttable *t)
{
	char idbuf[40];
	int ret;

	if (t->label == PT_GPT)
		parttable_uuid_str(t->disk_guid, idbuf);
	else    /* libfdisk parses the id with base 0: the "0x" is required. */
		snprintf(idbuf, sizeof(idbuf), "0x%08" PRIx32, t->disk_id);
	ret = fdisk_set_disklabel_id_from_string(cxt, idbuf);
	if (ret < 0)
		log_error("%s: setting disk id %s: %s", label_name(t->label), idbuf,
			  strerror(-ret));
	return ret;
}

static int add_part(struct fdisk_context *cxt, const struct parttable *t, size_t i)
{
	const struct pt_part *p = &t->parts[i];
	struct fdisk_label *lb = fdisk_get_label(cxt, NULL);
	struct fdisk_partition *pa = fdisk_new_partition();
	struct fdisk_parttype *type = NULL;
	char code[40];
	int ret;

	if (!pa)
		return -ENOMEM;
	if (t->label == PT_GPT)
		snprintf(code, sizeof(code), "%s", p->gpt_type);
	else
		snprintf(code, sizeof(code), "%x", p->dos_type);
	type = fdisk_label_parse_parttype(lb, code);
	fdisk_partition_set_partno(pa, i);
	fdisk_partition_set_start(pa, p->start / 512);
	fdisk_partition_set_size(pa, p->size / 512);
	/* Without this libfdisk aligns the end and the size changes. */
	fdisk_partition_size_explicit(pa, 1);
	fdisk_partition_set_type(pa, type);
	if (t->label == PT_GPT) {
		char uuid[37];

		parttable_uuid_str(p->uuid, uuid);
		ret = fdisk_partition_set_uuid(pa, uuid);
		if (ret == 0 && p->name)
			ret = fdisk_partition_set_name(pa, p->name);
		if (ret < 0)
			goto out;
	}
	ret = fdisk_add_partition(cxt, pa, NULL);
	if (ret < 0) {
		log_error("%s: adding partition %zu (start %" PRIu64 ", size %" PRIu64
			  " bytes): %s", label_name(t->label), i + 1, p->start, p->size,
			  strerror(-ret));
		goto out;
	}
	if (t->label == PT_DOS && p->bootable)
		ret = fdisk_toggle_partition_flag(cxt, i, DOS_FLAG_ACTIVE);
out:
	fdisk_unref_parttype(type);
	fdisk_unref_partition(pa);
	return ret;
}

int parttable_build(const struct parttable *t, uint8_t *head, uint8_t *tail)
{
	struct fdisk_context *cxt = NULL;
	uint64_t hb = parttable_head_bytes(t->label), tb = parttable_tail_bytes(t->label);
	int fd, ret;

	if ((t->label == PT_DOS && t->disk_id == 0) || t->n > PT_MAX_PARTS ||
	    t->disk_size % 512 || t->disk_size < hb + tb || (tb && !tail))
		return -EINVAL;
	fd = memfd_create("rpifs-parttable", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)t->disk_size) < 0) {
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
		log_error("%s: assigning the device: %s", label_name(t->label), strerror(-ret));
		goto out;
	}
	fdisk_disable_dialogs(cxt, 1);
	/* gpt: the first usable LBA right after the primary entries (34), as
	 * sgdisk makes it, not libfdisk's 1 MiB grain: partition 1 may start
	 * anywhere --align puts it. */
	if (t->label == PT_GPT)
		fdisk_set_first_lba(cxt, hb / 512);
	ret = fdisk_create_disklabel(cxt, label_name(t->label));
	if (ret < 0) {
		log_error("%s: creating the label: %s", label_name(t->label), strerror(-ret));
		goto out;
	}
	ret = set_disk_id(cxt, t);
	if (ret < 0)
		goto out;
	for (size_t i = 0; i < t->n; i++) {
		ret = add_part(cxt, t, i);
		if (ret < 0)
			goto out;
	}
	ret = fdisk_write_disklabel(cxt);
	if (ret < 0) {
		log_error("%s: writing the label: %s", label_name(t->label), strerror(-ret));
		goto out;
	}
	if (pread(fd, head, hb, 0) != (ssize_t)hb ||
	    (tb && pread(fd, tail, tb, (off_t)(t->disk_size - tb)) != (ssize_t)tb)) {
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
