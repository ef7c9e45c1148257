/* build_rootfs.h - `rpifs build rootfs`: a Debian arm64 tree in ROOTFS.
 *
 * debootstrap --foreign into a scratch directory next to ROOTFS (in
 * ROOTFS.rpifs/tmp), the second stage in a chroot under qemu through
 * binfmt_misc, then fstab, hostname and a serial getty; the finished tree is
 * renamed to ROOTFS. As root (chroot, device nodes, owners).
 *
 * As an ordinary user, mmdebstrap --mode=unshare instead, in a user
 * namespace with the user's subordinate ids; the configuration and the
 * rename run in such a namespace too, and ROOTFS.rpifs/idmap records the
 * map for the mount (build_userns.h). --mode root|unshare forces a way.
 */
#ifndef RPIFS_BUILD_ROOTFS_H
#define RPIFS_BUILD_ROOTFS_H

#include <stdbool.h>
#include "build_opts.h"

int build_rootfs_check(struct build_opts *o);
int build_rootfs_run(struct build_opts *o, int index, int count);
/* Is ROOTFS a tree made in a user namespace by this user (ROOTFS.rpifs/idmap),
 * or about to become one (this run's rootfs stage, as a user)? */
bool build_rootfs_userns_tree(const struct build_opts *o);

#endif
