#!/usr/bin/env bash
# A tree nobody here wrote, as a new user would bring it: Debian's own
# Raspberry Pi recipe (image-specs' raspi_3_bookworm package set, made with
# mmdebstrap: linux-image-arm64, raspi-firmware, initramfs-tools,
# systemd-sysv, dosfstools, ssh; raspi-firmware is in non-free-firmware), whose raspi-firmware hooks fill
# /boot/firmware (config.txt naming vmlinuz-* and "initramfs initrd.img-*
# followkernel", cmdline.txt with root=LABEL=RASPIROOT and console=ttyS1) and
# whose /etc/fstab mounts LABEL=RASPIROOT and LABEL=RASPIFIRM.
#
# `rpifs qemu ROOTFS` with no flags boots it under qemu raspi3b to "login:"
# (on ttyS1, the mini UART: serial1): boot/firmware detected, labels from the
# fstab, the initramfs from config.txt. Then the same mount is checked with
# tools nobody here wrote: fsck.fat, e2fsck, blkid labels.
#
# RPIFS_LONG=1 only (the bootstrap: 5-15 min under qemu-user, ~400 MB of
# packages; the boot ~90 s); the tree is cached in BUILD_ROOT/cache.
. "$TESTS_DIR/lib.sh"
[ "${RPIFS_LONG:-0}" = 1 ] || skip "RPIFS_LONG=1 only (a Debian bootstrap with a kernel under qemu-user)"
[ "$(id -u)" = 0 ] || skip "needs root (FUSE here, mmdebstrap)"
need mmdebstrap qemu-system-aarch64 e2fsck fsck.fat blkid sfdisk

R=${BUILD_ROOT:-$T}/cache/debian-raspi3-bookworm
if [ ! -f "$R.ok" ]; then
	mirror=$(host_mirror)
	[ -n "$mirror" ] || skip "no Debian mirror in the host's apt configuration"
	rm -rf "$R"
	mkdir -p "${R%/*}"
	start=$(date +%s)
	# image-specs' raspi_3 settings of raspi-firmware (its defaults are
	# root=/dev/mmcblk0p2 and console=tty0): the root by label, the
	# console on the mini UART (ttyS1), then its hook writes cmdline.txt.
	fw_defaults='sed -i -e "s|^#ROOTPART=.*|ROOTPART=LABEL=RASPIROOT|" -e "s|^#CONSOLES=.*|CONSOLES=\"ttyS1,115200\"|" "$1/etc/default/raspi-firmware"' 
	# image-specs' raspi_3_bookworm: the fstab and raspi-firmware's
	# defaults (ROOTPART=LABEL=RASPIROOT) before the kernel's hooks run;
	# the hooks run again at the end so that /boot/firmware is complete
	# whatever order dpkg configured the packages in.
	mmdebstrap --architectures=arm64 --variant=apt --components=main,non-free-firmware \
		--include=linux-image-arm64,raspi-firmware,initramfs-tools,systemd-sysv,dosfstools,ssh \
		--setup-hook='mkdir -p "$1/boot/firmware" "$1/etc"' \
		--setup-hook='printf "LABEL=RASPIROOT / ext4 rw 0 1\nLABEL=RASPIFIRM /boot/firmware vfat rw 0 2\n" > "$1/etc/fstab"' \
		--customize-hook="$fw_defaults" \
		--customize-hook='for v in "$1"/lib/modules/*; do chroot "$1" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "${v##*/}"; done' \
		--customize-hook='echo rpi3-debian > "$1/etc/hostname"' \
		bookworm "$R" "$mirror" >"$T/mmdebstrap.log" 2>&1 ||
		{ tail -30 "$T/mmdebstrap.log" >&2; fail "mmdebstrap of the Debian raspi tree failed"; }
	touch "$R.ok"
	note "mmdebstrap: $(( $(date +%s) - start )) s, $(find "$R" | wc -l) entries"
fi
F=$R/boot/firmware
[ -f "$F/config.txt" ] && [ -f "$F/cmdline.txt" ] || fail "raspi-firmware did not fill boot/firmware"
note "config.txt: $(grep -v '^#' "$F/config.txt" | grep . | tr '\n' ' ')"
note "cmdline.txt: $(cat "$F/cmdline.txt")"
grepq 'LABEL=RASPIROOT' < "$F/cmdline.txt" || fail "cmdline.txt does not name LABEL=RASPIROOT"
grepq '^initramfs ' < "$F/config.txt" || fail "config.txt has no initramfs line"
before=$(tree_sums "$R")

# 1. No flags: rpifs qemu mounts the tree itself and boots it to login:.
start=$(date +%s)
timeout 900 "$RPIFS" qemu --timeout 600 --until "login:" "$R" >"$T/boot.log" 2>&1 </dev/null ||
	{ tail -60 "$T/boot.log"; fail "Debian's raspi tree did not boot to login: with no flags"; }
note "boot to login: $(( $(date +%s) - start )) s"
grepq 'boot partition from boot/firmware' < "$T/boot.log" || fail "the mount did not say it chose boot/firmware"
grepq -- '-initrd ' < "$T/boot.log" || fail "no -initrd from config.txt"

# 2. The same image, checked with tools nobody here wrote; and a boot of a
# materialised copy of it for the time to login: against the mount's.
rpifs_mount "$R" "$T/mnt"
img=$T/mnt/disk.img
cp --sparse=always "$img" "$T/copy.img"
start=$(date +%s)
timeout 900 "$RPIFS" qemu --timeout 600 --until "login:" --image "$T/copy.img" "$R" \
	>"$T/boot-copy.log" 2>&1 </dev/null || { tail -40 "$T/boot-copy.log"; fail "the materialised copy did not boot"; }
note "boot of a materialised copy to login: $(( $(date +%s) - start )) s"
rm -f "$T/copy.img"
p1=$(part_start "$img" 1) p2=$(part_start "$img" 2)
[ "$(blkid -p -o value -s LABEL -O "$p1" "$img")" = RASPIFIRM ] || fail "FAT label is not RASPIFIRM"
[ "$(blkid -p -o value -s LABEL -O "$p2" "$img")" = RASPIROOT ] || fail "ext4 label is not RASPIROOT"
e2fsck -fn "$img?offset=$p2" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "e2fsck"; }
extract_part "$img" 1 "$T/p1.img"
fsck.fat -n "$T/p1.img" >"$T/fsckfat" 2>&1 || { cat "$T/fsckfat"; fail "fsck.fat"; }
rpifs_umount "$T/mnt"
[ "$before" = "$(tree_sums "$R")" ] || fail "the tree changed"
note "ok"
