#!/usr/bin/env bash
# Two mounts of one tree give one sha256 of disk.img, whatever TZ, the mount
# point or the time of day; a copy of the tree elsewhere gives the same image;
# SOURCE_DATE_EPOCH changes it only through the timestamps it clamps.
. "$TESTS_DIR/lib.sh"
need sha256sum

mkdir -p "$T/root/boot/sub" "$T/root/etc"
echo "arm_64bit=1" > "$T/root/boot/config.txt"
echo "a long name" > "$T/root/boot/Some Long Name.txt"
echo "x" > "$T/root/boot/sub/file"
echo "h" > "$T/root/etc/hostname"
touch -d '2024-03-01 12:00:00 UTC' "$T/root/boot/config.txt"

rpifs_mount "$T/root" "$T/m1"
a=$(sha256sum < "$T/m1/disk.img")
rpifs_umount "$T/m1"
TZ=Asia/Kolkata rpifs_mount "$T/root" "$T/other-place"
b=$(TZ=Pacific/Honolulu sha256sum < "$T/other-place/disk.img")
rpifs_umount "$T/other-place"
[ "$a" = "$b" ] || fail "sha256 differs between two mounts ($a / $b)"

cp -a "$T/root" "$T/copy"
rpifs_mount "$T/copy" "$T/m3"
c=$(sha256sum < "$T/m3/disk.img")
rpifs_umount "$T/m3"
[ "$a" = "$c" ] || fail "a copy of the tree (cp -a) gives another image"

SOURCE_DATE_EPOCH=1500000000 rpifs_mount "$T/root" "$T/m4"
d=$(sha256sum < "$T/m4/disk.img")
rpifs_umount "$T/m4"
[ "$a" != "$d" ] || fail "SOURCE_DATE_EPOCH changed nothing"
SOURCE_DATE_EPOCH=1500000000 TZ=America/New_York rpifs_mount "$T/root" "$T/m5"
e=$(sha256sum < "$T/m5/disk.img")
rpifs_umount "$T/m5"
[ "$d" = "$e" ] || fail "SOURCE_DATE_EPOCH image not reproducible"
note "ok: $a"
