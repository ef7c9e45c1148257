/* build_firmware.h - `rpifs build firmware`: the VideoCore boot files.
 *
 * The board profile lists the files the boot ROM and the GPU firmware need
 * on the FAT partition (Pi 3: bootcode.bin, start.elf, fixup.dat). They come
 * from --from (a directory, a .deb, an archive) or from Debian's
 * raspi-firmware package, fetched with `apt-get download` through a private
 * apt configuration (the host's may lack non-free-firmware), and unpacked
 * with libarchive into a scratch directory. The directory holding every
 * required file is then copied into ROOTFS/boot, with overlays/ if present.
 */
#ifndef RPIFS_BUILD_FIRMWARE_H
#define RPIFS_BUILD_FIRMWARE_H

#include "build_opts.h"

int build_firmware_check(struct build_opts *o);
int build_firmware_run(struct build_opts *o, int index, int count);

#endif
