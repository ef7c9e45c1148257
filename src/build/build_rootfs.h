/* build_rootfs.h - `rpifs build rootfs`: a Debian arm64 tree in ROOTFS.
 *
 * debootstrap --foreign into a scratch directory next to ROOTFS (in
 * ROOTFS.rpifs/tmp), the second stage in a chroot under qemu through
 * binfmt_misc, then fstab, hostname and a serial getty; the finished tree is
 * renamed to ROOTFS. Needs root (chroot, device nodes, owners).
 */
#ifndef RPIFS_BUILD_ROOTFS_H
#define RPIFS_BUILD_ROOTFS_H

#include "build_opts.h"

int build_rootfs_check(struct build_opts *o);
int build_rootfs_run(struct build_opts *o, int index, int count);

#endif
