/* cli_layout.c - the layout options (--boot-size, --size, --disk-id, ...)
 * and SOURCE_DATE_EPOCH, parsed into struct rpifs_opts: one parser for
 * every program that builds an image from ROOTFS (the mount, `rpifs
 * flash`, `rpifs export`), so that the same options give the same bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "log.h"

const char cli_layout_help[] =
"      --boot-dir DIR       boot directory inside ROOTFS (default: boot/firmware\n"
"                           if it holds config.txt, else boot)\n"
"      --boot-size SIZE     partition 1 size (default: 256M)\n"
"      --boot-label LABEL   FAT volume label, at most 11 characters (default:\n"
"                           the LABEL= of the boot directory in etc/fstab,\n"
"                           else BOOT)\n"
"      --root-size SIZE     partition 2 size (default: content + --free)\n"
"      --root-label LABEL   ext4 label (default: the LABEL= of / in etc/fstab\n"
"                           or root= in cmdline.txt, else rootfs)\n"
"      --free PERCENT       free space in the root filesystem (default: 25)\n"
"      --size SIZE          whole disk size (default: rounded up to a power\n"
"                           of two, as qemu's raspi3b requires)\n"
"      --align SIZE         partition alignment (default: 4M)\n"
"      --disk-id 0xID       MBR disk identifier (default: the PARTUUID= in\n"
"                           cmdline.txt or etc/fstab, else derived from the\n"
"                           tree)\n"
"      --label dos|gpt      partition table (default: gpt when cmdline.txt or\n"
"                           etc/fstab names a GPT PARTUUID=<uuid>, else dos;\n"
"                           the Pi 3 and Zero 2 W boot from dos only)\n"
"      --root-owner         make every file in ext4 owned by root:root\n"
"      --idmap HOST:IMAGE:COUNT\n"
"                           host ids HOST.. show as IMAGE.. in ext4 (owners,\n"
"                           ACLs, file capabilities; repeatable): for trees\n"
"                           made in a user namespace (default: the map\n"
"                           ROOTFS.rpifs/idmap that rpifs build left)\n"
"      --devices FILE       device nodes and fifos for the image, from a\n"
"                           device table (genext2fs/makedevs format), the\n"
"                           tree untouched\n";

/* The --idmap ranges: a program parses its options once. */
#define CLI_IDMAP_MAX 64
static struct rpifs_idmap cli_idmap[CLI_IDMAP_MAX];

static int size_arg(const char *opt, const char *val, uint64_t *out)
{
	if (rpifs_parse_size(val, out) < 0) {
		log_error("%s %s: not a size (examples: 256M, 2G, 1048576)", opt, val);
		return -EINVAL;
	}
	return 0;
}

int cli_layout_opt(struct rpifs_opts *o, int c, const char *arg, unsigned *given)
{
	uint64_t v;
	char *end;

	switch (c) {
	case CLI_OPT_BOOT_DIR: o->boot_dir = arg; break;
	case CLI_OPT_BOOT_LABEL: o->boot_label = arg; break;
	case CLI_OPT_ROOT_LABEL: o->root_label = arg; break;
	case CLI_OPT_ROOT_OWNER: o->root_owner = true; break;
	case CLI_OPT_NO_EXT4: o->ext4 = false; break;
	case CLI_OPT_DEVICES: o->devices = arg; break;
	case CLI_OPT_LABEL:
		if (rpifs_parse_label(arg, &o->label) < 0) {
			log_error("--label %s: dos or gpt", arg);
			return -EINVAL;
		}
		break;
	case CLI_OPT_IDMAP:
		if (o->nidmap == CLI_IDMAP_MAX || (o->nidmap && o->idmap != cli_idmap)) {
			log_error("--idmap %s: at most %d ranges", arg, CLI_IDMAP_MAX);
			return -EINVAL;
		}
		if (rpifs_parse_idmap(arg, &cli_idmap[o->nidmap]) < 0) {
			log_error("--idmap %s: not HOST:IMAGE:COUNT (decimal ids, COUNT > 0, "
				  "within 32 bits), e.g. 100000:0:65536", arg);
			return -EINVAL;
		}
		o->idmap = cli_idmap;
		o->nidmap++;
		break;
	case CLI_OPT_BOOT_SIZE:
		if (size_arg("--boot-size", arg, &o->boot_size) < 0)
			return -EINVAL;
		break;
	case CLI_OPT_ROOT_SIZE:
		if (size_arg("--root-size", arg, &o->root_size) < 0)
			return -EINVAL;
		break;
	case CLI_OPT_SIZE:
		if (size_arg("--size", arg, &o->size) < 0)
			return -EINVAL;
		break;
	case CLI_OPT_ALIGN:
		if (size_arg("--align", arg, &o->align) < 0)
			return -EINVAL;
		if (o->align < 4096 || o->align % 4096) {
			log_error("--align %s: must be a multiple of 4 KiB", arg);
			return -EINVAL;
		}
		break;
	case CLI_OPT_FREE:
		errno = 0;
		v = strtoull(arg, &end, 10);
		if (errno || *end || v > 90) {
			log_error("--free %s: a percentage from 0 to 90", arg);
			return -EINVAL;
		}
		o->free_percent = (unsigned)v;
		break;
	case CLI_OPT_DISK_ID:
		errno = 0;
		v = strtoull(arg, &end, 16);
		if (errno || *end || v == 0 || v > UINT32_MAX) {
			log_error("--disk-id %s: a non-zero 32-bit hex number, e.g. "
				  "0x1234abcd", arg);
			return -EINVAL;
		}
		o->disk_id = (uint32_t)v;
		break;
	default:
		return 0;
	}
	if (given)
		(*given)++;
	return 1;
}

int cli_layout_finish(struct rpifs_opts *o)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");

	if (o->boot_size < 33 << 20) {
		log_error("--boot-size must be at least 33M (FAT32 needs 65525 clusters)");
		return -EINVAL;
	}
	if (sde && *sde) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(sde, &end, 10);
		if (errno || *end || v < 0) {
			log_error("SOURCE_DATE_EPOCH=%s: not a number of seconds", sde);
			return -EINVAL;
		}
		o->source_date_epoch = v;
	}
	return 0;
}
