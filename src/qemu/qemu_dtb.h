/* qemu_dtb.h - the device tree as qemu's raspi machine needs it. */
#ifndef RPIFS_QEMU_DTB_H
#define RPIFS_QEMU_DTB_H

#include <stddef.h>
#include "qemu_board.h"

/* When QB has a fixup (qb->dtb_node/dtb_prop) and DTB has that property,
 * write a copy of DTB without it to a new temporary file, its path in OUT
 * (the caller unlinks it), and return 1; 0 when nothing needs changing
 * (OUT empty); -errno on a file that is not a device tree (reported). */
int qemu_dtb_fixup(const struct qemu_board *qb, const char *dtb, char *out, size_t len);

#endif
