#!/usr/bin/env bash
# `build config`: config.txt and cmdline.txt for each board; the disk id
# (explicit, kept, derived: never 0) is the one in root=PARTUUID=...-02 and
# in fstab. The mount reads the same id from cmdline.txt as the build
# (cmdline.h), also when resume=PARTUUID= comes before root=.
. "$TESTS_DIR/lib.sh"
need sfdisk

R=$T/root
mkdir -p "$R/boot/broadcom" "$R/etc"
printf dtb > "$R/boot/broadcom/bcm2837-rpi-3-b.dtb"
printf 'Image' > "$R/boot/vmlinuz-6.1.0-old"
printf 'Image' > "$R/boot/vmlinuz-6.1.99-test"
touch -d '2020-01-01' "$R/boot/vmlinuz-6.1.0-old"

run() { "$RPIFS" build "$@" >"$T/out" 2>&1 || { cat "$T/out"; fail "rpifs build $* failed"; }; }
has() { grep -qxF -- "$2" "$R/boot/$1" || { cat "$R/boot/$1"; fail "$1 lacks the line '$2'"; }; }

# check_cmdline CONSOLES: one line, root by PARTUUID of partition 2.
check_cmdline() {
	[ "$(wc -l < "$R/boot/cmdline.txt")" = 1 ] || fail "cmdline.txt is not one line"
	grep -qE "^${1}root=PARTUUID=[0-9a-f]{8}-02 rootfstype=ext4 rootwait$" "$R/boot/cmdline.txt" ||
		fail "cmdline.txt: $(cat "$R/boot/cmdline.txt")"
	! grep -q "PARTUUID=00000000" "$R/boot/cmdline.txt" || fail "disk id 0"
}
disk_id() { sed -E 's/.*root=PARTUUID=([0-9a-f]{8})-02.*/\1/' "$R/boot/cmdline.txt"; }

# rpi3 (the default): the newest vmlinuz-*, the mainline dtb, both UARTs.
run config "$R"
has config.txt "arm_64bit=1"
has config.txt "kernel=vmlinuz-6.1.99-test"
has config.txt "device_tree=broadcom/bcm2837-rpi-3-b.dtb"
has config.txt "enable_uart=1"
check_cmdline "console=ttyS1,115200 console=ttyAMA0,115200 "
id1=$(disk_id)
! grep -q "warning" "$T/out" || fail "unexpected warning: $(cat "$T/out")"

# Up to date; the derived id is stable, and kept from cmdline.txt.
run config "$R"
grep -q "config: up to date" "$T/out" || fail "second run not up to date"
rm "$R/boot/cmdline.txt"
run config "$R"
[ "$(disk_id)" = "$id1" ] || fail "derived disk id changed: $id1 -> $(disk_id)"

# rpi4 and rpi02w profiles; a missing dtb is a warning, not an error.
run config "$R" --board rpi4
has config.txt "device_tree=broadcom/bcm2711-rpi-4-b.dtb"
has config.txt "arm_64bit=1"
check_cmdline "console=ttyS1,115200 "
grep -q "warning: .*bcm2711-rpi-4-b.dtb is missing" "$T/out" || fail "no missing-dtb warning"
run config "$R" --board rpi02w
has config.txt "device_tree=broadcom/bcm2837-rpi-zero-2-w.dtb"
[ "$(disk_id)" = "$id1" ] || fail "disk id changed with the board"

# --disk-id, --kernel, --console; fstab written by rpifs follows the id.
cat > "$R/etc/fstab" <<EOT
# Written by \`rpifs build rootfs\`.
PARTUUID=$id1-02  /      ext4  defaults  0 1
PARTUUID=$id1-01  /boot  vfat  defaults  0 0
EOT
run config "$R" --disk-id 0x1234ABCD --kernel vmlinuz-6.1.0-old --console "ttyAMA0,115200"
has config.txt "kernel=vmlinuz-6.1.0-old"
has cmdline.txt "console=ttyAMA0,115200 root=PARTUUID=1234abcd-02 rootfstype=ext4 rootwait"
grep -q "^PARTUUID=1234abcd-02 " "$R/etc/fstab" && grep -q "^PARTUUID=1234abcd-01 " "$R/etc/fstab" ||
	{ cat "$R/etc/fstab"; fail "fstab not updated to the new disk id"; }
run config "$R"
[ "$(disk_id)" = 1234abcd ] || fail "explicit disk id not kept: $(disk_id)"

# A kernel `build kernel` recorded wins over the newest file.
printf '6.1.0-old' > "$R.rpifs/kernel-release"
run config "$R" --force
has config.txt "kernel=vmlinuz-6.1.0-old"

# Another tree gets another derived id.
mkdir -p "$T/other/boot"; printf 'x' > "$T/other/boot/Image"
"$RPIFS" build config "$T/other" >/dev/null 2>&1 || fail "config of $T/other failed"
grep -qx "kernel=Image" "$T/other/boot/config.txt" || fail "Image not picked"
[ "$(sed -E 's/.*PARTUUID=([0-9a-f]{8}).*/\1/' "$T/other/boot/cmdline.txt")" != "$id1" ] || fail "same id for two trees"

# resume=PARTUUID= before root=: the disk id of the mounted disk.img is the
# one the config stage keeps and writes (root='s), not resume='s. Mounted
# before the stage runs (it rewrites the line), then after.
mkdir -p "$T/resume/boot"; printf 'x' > "$T/resume/boot/Image"
echo "console=ttyAMA0 resume=PARTUUID=aaaaaaaa-03 root=PARTUUID=12345678-02 rootwait" \
	> "$T/resume/boot/cmdline.txt"
rpifs_mount "$T/resume" "$T/mnt"
mount_id=$(sfdisk --disk-id "$T/mnt/disk.img")
rpifs_umount "$T/mnt"
"$RPIFS" build config "$T/resume" >"$T/out" 2>&1 || { cat "$T/out"; fail "config of $T/resume failed"; }
build_id=$(sed -E 's/.*root=PARTUUID=([0-9a-f]{8})-02.*/\1/' "$T/resume/boot/cmdline.txt")
[ "$build_id" = 12345678 ] || fail "build config wrote disk id $build_id, not root='s 12345678"
[ "$mount_id" = "0x$build_id" ] ||
	fail "disk.img has disk id $mount_id, build config wrote $build_id (resume= before root=)"
rpifs_mount "$T/resume" "$T/mnt"
[ "$(sfdisk --disk-id "$T/mnt/disk.img")" = 0x12345678 ] || fail "disk id changed after build config"
rpifs_umount "$T/mnt"

# Errors.
mkdir -p "$T/nokernel/boot"
"$RPIFS" build config "$T/nokernel" >"$T/out" 2>&1 && fail "config without a kernel succeeded"
grep -q "no kernel in $T/nokernel/boot (vmlinuz-\*, Image, kernel8.img)" "$T/out" || { cat "$T/out"; fail "no message"; }
[ ! -e "$T/nokernel/boot/config.txt" ] || fail "config.txt written without a kernel"
"$RPIFS" build config "$R" --kernel nope >"$T/out" 2>&1 && fail "--kernel nope succeeded"
grep -q -- "--kernel nope: no such file in $R/boot" "$T/out" || { cat "$T/out"; fail "no message"; }
echo ok
