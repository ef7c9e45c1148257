/* build_config.h - `rpifs build config`: boot/config.txt and cmdline.txt.
 *
 * cmdline.txt carries root=PARTUUID=DISKID-02; `rpifs ROOTFS MNT` reads the
 * disk id back from it and writes it into the image's MBR, so the two always
 * agree. This stage chooses the id: --disk-id, else the one cmdline.txt
 * already has (stable across runs), else one derived from ROOTFS's path.
 * Both read cmdline.txt with the engine's cmdline_disk_id() (cmdline.h).
 */
#ifndef RPIFS_BUILD_CONFIG_H
#define RPIFS_BUILD_CONFIG_H

#include <stdint.h>
#include "build_opts.h"

/* The disk id this ROOTFS uses (never 0). */
uint32_t build_config_disk_id(const struct build_opts *o);

/* A board with label=gpt (the Pi 5) names its partitions by GPT partition
 * UUIDs instead: root=PARTUUID=<uuid> in cmdline.txt, the same for / and
 * /boot in etc/fstab. The root's (partition 2) is the one cmdline.txt
 * already names, else derived from ROOTFS's path; the boot partition's
 * (partition 1) is derived from the root's. Lower case, 36 characters. */
#define BUILD_UUID_LEN 37
void build_config_gpt_uuids(const struct build_opts *o, char root[BUILD_UUID_LEN],
			    char boot[BUILD_UUID_LEN]);

/* What `build rootfs` names / and /boot by in etc/fstab: the GPT UUIDs
 * when cmdline.txt names the root by one (a Pi 5 tree), else the MBR disk
 * id's PARTUUID=XXXXXXXX-02 and -01. */
void build_config_fstab_names(const struct build_opts *o, char root[64], char boot[64]);

int build_config_check(struct build_opts *o);
int build_config_run(struct build_opts *o, int index, int count);

#endif
