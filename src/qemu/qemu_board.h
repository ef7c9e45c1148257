/* qemu_board.h - the boards rpifs qemu can boot: qemu's machine for each
 * board profile (data/boards/NAME.conf), its memory, and the device trees
 * the firmware would pick when config.txt names none. */
#ifndef RPIFS_QEMU_BOARD_H
#define RPIFS_QEMU_BOARD_H

#include <stdbool.h>

struct qemu_board {
	const char *name;           /* the profile's name: rpi3, rpi02w, rpi4 */
	const char *machine;        /* qemu -M */
	const char *memory;         /* qemu -m: the raspi machines take only theirs */
	const char *min_qemu;       /* the first qemu with the machine, for messages */
	const char *dtbs[4];        /* mainline names first, NULL-terminated */
	/* config.txt's model filters the board answers to (the firmware's
	 * documentation: [pi3] is the 3B/3B+/3A+; [pi0] and [pi0w] include
	 * the Zero 2 W), NULL-terminated: config_txt_read()'s MODELS. */
	const char *models[4];
	/* The board's boot ROM reads an MBR only (the Pi 3, the Zero 2 W): a
	 * gpt card would not boot on the real board. */
	bool mbr_only;
	/* A property qemu's machine cannot serve, dropped from the copy of
	 * the device tree qemu gets (qemu_dtb.c), or NULL. */
	const char *dtb_node, *dtb_prop;
};

/* The board called NAME, or NULL (a message lists the known ones). */
const struct qemu_board *qemu_board_find(const char *name);

#endif
