/* build_board.h - board profiles, read from data/boards/NAME.conf.
 *
 * A profile says what differs between boards: the firmware files the boot
 * ROM needs, the device tree, the serial consoles, extra config.txt lines.
 * Format: "key=value" lines, '#' comments; "config=" may repeat.
 *
 * Optional keys, for a board like the Pi 5:
 *   eeprom=yes        the boot ROM reads its firmware from the board's
 *                     EEPROM: firmware= may be left out (nothing to fetch)
 *   kernel_name=NAME  `build kernel` installs the kernel as boot/NAME (not
 *                     boot/vmlinuz-VERSION); config.txt says kernel=NAME
 *   kernel_src=TEXT   the board needs a particular kernel tree: `build
 *                     kernel` refuses a --src that has no source for dtb=,
 *                     and says TEXT (where to get one, which --config)
 *   label=gpt|mbr     the partition table `build config` names partitions
 *                     by: gpt writes PARTUUID=<uuid> into cmdline.txt and
 *                     etc/fstab (default mbr: PARTUUID=<disk id>-NN)
 *
 * kernel_config= names the kernel fragment `build kernel` uses for the board
 * when --config is not given (NAME-minimal: data/NAME-minimal.config).
 */
#ifndef RPIFS_BUILD_BOARD_H
#define RPIFS_BUILD_BOARD_H

#include <stdbool.h>

#define BOARD_MAX_FILES 16
#define BOARD_MAX_CONFIG 16

struct board {
	char *name;
	char *description;
	char *firmware[BOARD_MAX_FILES];    /* required on the boot partition */
	int n_firmware;
	char *dtb;                          /* relative to boot/: broadcom/... */
	char *console;                      /* "ttyS1,115200 ttyAMA0,115200" */
	char *config[BOARD_MAX_CONFIG];     /* extra config.txt lines */
	int n_config;
	bool eeprom;                        /* firmware in EEPROM: none needed */
	bool gpt;                           /* label=gpt */
	char *kernel_name;                  /* "kernel_2712.img", or NULL */
	char *kernel_src;                   /* hint when --src lacks the dtb */
	char *kernel_config;                /* "rpi4-minimal", or NULL */
};

/* 0, or -ENOENT for an unknown board (reported, with the known ones), or
 * -EINVAL for a malformed profile (reported). */
int build_board_load(const char *name, struct board *b);
void build_board_free(struct board *b);

#endif
