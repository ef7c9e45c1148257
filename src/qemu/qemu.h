/* qemu.h - `rpifs qemu`: boot disk.img under qemu-system-aarch64 -M raspi3b. */
#ifndef RPIFS_QEMU_H
#define RPIFS_QEMU_H

#include <stddef.h>

/* argv[0] is "qemu". Returns the process exit status. */
int qemu_main(int argc, char **argv);

/* What config.txt in boot_dir asks the firmware of board QB (qemu_board.h)
 * to load (config_txt.h), resolved to files; initrd is "" without an
 * initramfs line. */
struct qemu_board;
struct boot_config {
	char kernel[4096];
	char initrd[4096];
	char dtb[4096];
	char cmdline[4096];
};
int boot_config_read(const char *boot_dir, const struct qemu_board *qb, struct boot_config *bc);

#endif
