/* qemu.h - `rpifs qemu`: boot disk.img under qemu-system-aarch64 -M raspi3b. */
#ifndef RPIFS_QEMU_H
#define RPIFS_QEMU_H

#include <stddef.h>

/* argv[0] is "qemu". Returns the process exit status. */
int qemu_main(int argc, char **argv);

/* What config.txt in boot_dir asks the firmware to load (kernel=,
 * device_tree=), resolved to files: for tests and --dry-run. */
struct boot_config {
	char kernel[4096];
	char dtb[4096];
	char cmdline[4096];
};
int boot_config_read(const char *boot_dir, struct boot_config *bc);

#endif
