/* build_board.h - board profiles, read from data/boards/NAME.conf.
 *
 * A profile says what differs between boards: the firmware files the boot
 * ROM needs, the device tree, the serial consoles, extra config.txt lines.
 * Format: "key=value" lines, '#' comments; "config=" may repeat.
 * kernel_config= names the kernel fragment `build kernel` uses for the board
 * when --config is not given (NAME-minimal: data/NAME-minimal.config).
 */
#ifndef RPIFS_BUILD_BOARD_H
#define RPIFS_BUILD_BOARD_H

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
	char *kernel_config;                /* "rpi4-minimal", or NULL */
};

/* 0, or -ENOENT for an unknown board (reported, with the known ones), or
 * -EINVAL for a malformed profile (reported). */
int build_board_load(const char *name, struct board *b);
void build_board_free(struct board *b);

#endif
