/* qemu_board.c - the boards rpifs qemu can boot (qemu_board.h).
 *
 * Facts from qemu's hw/arm/raspi.c and raspi4b.c: raspi3b is a Pi 3 Model B
 * with 1 GiB, raspi3ap a 3 A+ with 512 MiB (the Zero 2 W's SoC and memory:
 * BCM2710A1 is a BCM2837), raspi4b (qemu 9.0 and later; Debian bookworm
 * has 7.2) a Pi 4 B with 2 GiB. Each refuses any other -m. */
#include <stddef.h>
#include <string.h>
#include "log.h"
#include "qemu_board.h"

static const struct qemu_board boards[] = {
	{ "rpi3", "raspi3b", "1G", "2.12",
	  { "broadcom/bcm2837-rpi-3-b.dtb", "bcm2837-rpi-3-b.dtb", "bcm2710-rpi-3-b.dtb",
	    NULL },
	  { "pi3", NULL }, true },
	{ "rpi02w", "raspi3ap", "512M", "5.2",
	  { "broadcom/bcm2837-rpi-zero-2-w.dtb", "bcm2837-rpi-zero-2-w.dtb",
	    "bcm2710-rpi-zero-2-w.dtb", NULL },
	  { "pi02", "pi0", "pi0w", NULL }, true },
	{ "rpi4", "raspi4b", "2G", "9.0",
	  { "broadcom/bcm2711-rpi-4-b.dtb", "bcm2711-rpi-4-b.dtb", NULL },
	  { "pi4", NULL }, false,
	  /* raspi4b's card is on this controller, whose Wi-Fi power sequence
	   * needs the firmware GPIO expander qemu lacks (qemu_dtb.c). */
	  "/soc/mmc@7e300000", "mmc-pwrseq" },
};

const struct qemu_board *qemu_board_find(const char *name)
{
	for (size_t i = 0; i < sizeof(boards) / sizeof(boards[0]); i++)
		if (!strcmp(boards[i].name, name))
			return &boards[i];
	log_error("qemu: no qemu machine for board '%s': rpi3 (raspi3b), rpi02w "
		  "(raspi3ap), rpi4 (raspi4b, qemu 9.0 or later)%s", name,
		  !strcmp(name, "rpi5") ? "; qemu has no Raspberry Pi 5 (BCM2712) model: check its"
		  " card with `rpifs ROOTFS MNT` (MNT/disk.img) and boot it on the board" : "");
	return NULL;
}
