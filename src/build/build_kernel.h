/* build_kernel.h - `rpifs build kernel`: cross-build and install a kernel.
 *
 * Three steps, each skipped when up to date:
 *   configure  make O=BUILD allnoconfig with KCONFIG_ALLCONFIG=fragment (the
 *              shipped rpi3-minimal or the user's file), or defconfig; every requested
 *              symbol is checked in .config; refused ones are reported
 *   compile    make O=BUILD Image dtbs [modules]
 *   install    Image, System.map, config, dtbs, modules (+ depmod) into ROOTFS
 * BUILD holds its own stamps (.rpifs-config, .rpifs-build) so a build
 * directory shared between trees (--build-dir) is reused, not recompiled.
 */
#ifndef RPIFS_BUILD_KERNEL_H
#define RPIFS_BUILD_KERNEL_H

#include "build_opts.h"

int build_kernel_check(struct build_opts *o);
int build_kernel_run(struct build_opts *o, int index, int count);

#endif
