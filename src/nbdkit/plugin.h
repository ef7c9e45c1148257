/* plugin.h - the nbdkit plugin's two halves: its configuration (config.c:
 * key=value parameters into engine options) and the server (plugin.c). */
#ifndef RPIFS_NBDKIT_PLUGIN_H
#define RPIFS_NBDKIT_PLUGIN_H

#include <stdbool.h>
#include "rpifs.h"

/* What the keys chose, beyond the engine's options. */
struct plugin_conf {
	struct rpifs_opts o;        /* rpifs_opts_init() defaults, then the keys */
	char *rootfs;               /* absolute (nbdkit changes to / when forking) */
	char *overlay;              /* absolute, or NULL */
	char *devices;              /* devices=FILE, absolute, or NULL */
	char *strs[3];              /* boot-dir, boot-label, root-label copies */
	struct rpifs_idmap idmap[64]; /* idmap= keys (o.idmap points here) */
};

extern struct plugin_conf plugin_conf;

/* nbdkit's .config: one key=value; -1 after nbdkit_error naming the key. */
int plugin_config(const char *key, const char *value);
/* nbdkit's .config_complete: the keys together (rootfs given, sizes
 * consistent, SOURCE_DATE_EPOCH); -1 after nbdkit_error. */
int plugin_config_complete(void);
void plugin_config_free(void);

#define PLUGIN_CONFIG_HELP \
"rootfs=ROOTFS        (required) the Raspberry Pi root filesystem tree\n" \
"boot-dir=DIR         directory served as partition 1 (default: boot)\n" \
"boot-size=SIZE       partition 1 size (default: 256M)\n" \
"boot-label=LABEL     FAT volume label (default: BOOT)\n" \
"root-size=SIZE       partition 2 size (default: content + free)\n" \
"root-label=LABEL     ext4 label (default: rootfs)\n" \
"free=PERCENT         free space in the root filesystem (default: 25)\n" \
"size=SIZE            whole disk size (default: a power of two)\n" \
"align=SIZE           partition alignment (default: 4M)\n" \
"disk-id=0xID         MBR disk id (default: from boot/cmdline.txt)\n" \
"label=dos|gpt        partition table (default: gpt when cmdline.txt or\n" \
"                     etc/fstab names a GPT PARTUUID, else dos)\n" \
"root-owner=BOOL      every ext4 file owned by root:root (default: false)\n" \
"idmap=HOST:IMAGE:COUNT  host ids HOST.. show as IMAGE.. (owners, ACLs,\n" \
"                     capabilities; repeatable; default: ROOTFS.rpifs/idmap)\n" \
"devices=FILE         device table: nodes and fifos added to the image\n" \
"ext4=BOOL            build partition 2's filesystem (default: true)\n" \
"readonly=BOOL        refuse writes (default: false)\n" \
"overlay=FILE         one persistent overlay shared by all connections\n" \
"                     (default: each connection writes to its own, in memory)\n" \
"overlay-reset=BOOL   discard the blocks in the overlay FILE\n" \
"inotify=BOOL         watch the tree with inotify (default: true; false:\n" \
"                     stat every entry on each open)\n" \
"Exports: disk (default: the SD-card image), root (partition 2, ext4),\n" \
"boot (partition 1, FAT32)."

#endif
