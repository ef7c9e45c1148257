#!/usr/bin/env bash
# A tree holding a file dated in the future (2040) without SOURCE_DATE_EPOCH:
# the superblock times used to be "the newest mtime, clamped to now", so
# disk.img changed every second. Two mounts seconds apart must give the same
# bytes, and e2fsck -fn must stay quiet about the superblock (it reports a
# last write or mount time in the future).
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
need_root
need e2fsck dumpe2fs sha256sum
unset SOURCE_DATE_EPOCH

mkdir -p "$T/root/boot" "$T/root/etc" "$T/root/var"
echo 'console=tty1' > "$T/root/boot/cmdline.txt"
echo 'rpi' > "$T/root/etc/hostname"
echo 'from the future' > "$T/root/var/future"
find "$T/root" -exec touch -h -d '2024-05-06 07:08:09 UTC' {} +
touch -d '2040-01-02 03:04:05 UTC' "$T/root/var/future"

img_sum() {   # img_sum MNT: sha256 of disk.img
	sha256sum < "$1/disk.img" | cut -d' ' -f1
}

rpifs_mount "$T/root" "$T/m1"
a=$(img_sum "$T/m1")
off=$(part_start "$T/m1/disk.img" 2)
ext4_fsck "$T/m1/disk.img" "$off"
TZ=UTC dumpe2fs -h "$T/m1/disk.img?offset=$off" 2>/dev/null |
	grep -E '^(Filesystem created|Last mount time|Last write time|Last checked):' >&2
rpifs_umount "$T/m1"
sleep 3
rpifs_mount "$T/root" "$T/m2"
b=$(img_sum "$T/m2")
rpifs_umount "$T/m2"
[ "$a" = "$b" ] || fail "disk.img differs between two mounts 3 s apart ($a, $b)"
note "disk.img: $a"
