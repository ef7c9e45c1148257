/* qemu_machine.h - does a qemu binary have a board's -M machine? */
#ifndef RPIFS_QEMU_MACHINE_H
#define RPIFS_QEMU_MACHINE_H

#include "qemu_board.h"

#include <stdbool.h>

/* Ask *QEMU (`QEMU -machine help`) whether it has QB's machine, for boards
 * newer than the qemu of the oldest supported host (raspi4b: 9.0; Debian
 * bookworm ships 7.2). 0 when it has it, or cannot tell (the binary does
 * not answer as qemu does: its own run will say what is wrong). When it
 * lacks it and the user did not choose it (!given), the wrapper
 * scripts/trixie-qemu leaves in its default place is asked too and, if it
 * has the machine, *QEMU becomes its path (said). Else -ENOTSUP, reported
 * with how to get a qemu that has it. */
int qemu_machine_check(const char **qemu, bool given, const struct qemu_board *qb);

#endif
