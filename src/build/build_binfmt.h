/* build_binfmt.h - make the kernel run arm64 programs through qemu.
 *
 * debootstrap's second stage runs the new tree's arm64 programs in a
 * chroot. That works through binfmt_misc with qemu-user-static's entry,
 * whose F flag makes the kernel open the interpreter at registration, so
 * nothing has to be copied into the tree. Running qemu-aarch64-static by
 * hand does NOT work: every program the first shell starts fails with
 * "Exec format error".
 */
#ifndef RPIFS_BUILD_BINFMT_H
#define RPIFS_BUILD_BINFMT_H

#include <stdbool.h>
#include "build_stage.h"

/* Is this host arm64 (no emulation needed)? */
bool build_binfmt_native(void);
/* Programs and packages needed; reports what is missing. 0 or -ENOENT. */
int build_binfmt_check_tools(void);
/* Without privileges: is qemu-aarch64 registered, enabled, with flag F?
 * Only root can change that: the message says what root must run. 0 or
 * -ENOENT / -EPROTO (reported). */
int build_binfmt_check_registered(void);
/* Mount binfmt_misc if needed, enable qemu-aarch64 (update-binfmts) when
 * it is not, verify the entry (enabled, F flag). 0 or -errno (reported). */
int build_binfmt_ensure(struct stage *s);

#endif
