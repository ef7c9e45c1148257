#!/usr/bin/env bash
# The Raspberry Pi 5 profile (--board rpi5), without a kernel build or the
# network: `build config` writes config.txt (kernel=kernel_2712.img, the
# bcm2712 device tree, UART0 on), cmdline.txt with the GPT partition UUID of
# the root (version 4, stable for the tree, kept from cmdline.txt) and the
# Pi 5's consoles, and etc/fstab naming / and /boot by the same UUIDs;
# `build firmware` has nothing to fetch; `build kernel` refuses a tree
# without bcm2712 support before building anything; `rpifs qemu` refuses
# the board.
. "$TESTS_DIR/lib.sh"
need python3

R=$T/root
mkdir -p "$R/boot/broadcom" "$R/etc"
printf 'Image' > "$R/boot/kernel_2712.img"
printf 'dtb' > "$R/boot/broadcom/bcm2712-rpi-5-b.dtb"
# As `build rootfs` writes it (MBR names): `build config` converts it.
fstab_mbr() {
	cat > "$1/etc/fstab" <<-EOT
	# Written by \`rpifs build rootfs\`.
	PARTUUID=0badcafe-02  /             ext4   defaults,noatime         0      1
	PARTUUID=0badcafe-01  /boot         vfat   defaults,noatime,nofail  0      0
	EOT
}
fstab_mbr "$R"

run() { "$RPIFS" build "$@" >"$T/out" 2>&1 || { cat "$T/out"; fail "rpifs build $* failed"; }; }
has() { grep -qxF -- "$2" "$R/boot/$1" || { cat "$R/boot/$1"; fail "$1 lacks the line '$2'"; }; }
# expect_fail PATTERN ARGS...: rpifs ARGS fails (non-zero) and says PATTERN.
expect_fail() {
	local pat=$1; shift
	if "$RPIFS" "$@" >"$T/out" 2>&1; then cat "$T/out"; fail "rpifs $* succeeded"; fi
	grep -qE -- "$pat" "$T/out" || { cat "$T/out"; fail "rpifs $*: no message matching '$pat'"; }
}
# root_uuid DIR, fstab_uuid DIR MOUNTPOINT: the UUIDs the files name.
root_uuid() { sed -nE 's/.*root=PARTUUID=([^ ]*) .*/\1/p' "$1/boot/cmdline.txt"; }
fstab_uuid() { awk -v m="$2" '$2 == m { sub(/^PARTUUID=/, "", $1); print $1 }' "$1/etc/fstab"; }
# is_v4 UUID: an RFC 4122 version 4 UUID in lower case, by Python's uuid.
is_v4() {
	python3 -c 'import sys, uuid; s = sys.argv[1]; u = uuid.UUID(s)
sys.exit(0 if str(u) == s and u.version == 4 and u.variant == uuid.RFC_4122 else 1)' "$1"
}

# config.txt: the board's kernel by its name, its device tree, UART0.
run config "$R" --board rpi5
has config.txt "arm_64bit=1"
has config.txt "kernel=kernel_2712.img"
has config.txt "device_tree=broadcom/bcm2712-rpi-5-b.dtb"
has config.txt "dtparam=uart0=on"
! grep -q "warning" "$T/out" || fail "unexpected warning: $(cat "$T/out")"

# cmdline.txt: one line, the header UART and the debug connector (the last
# is /dev/console), root by the GPT partition UUID.
[ "$(wc -l < "$R/boot/cmdline.txt")" = 1 ] || fail "cmdline.txt is not one line"
grep -qE '^console=ttyAMA0,115200 console=ttyAMA10,115200 root=PARTUUID=[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} rootfstype=ext4 rootwait$' \
	"$R/boot/cmdline.txt" || fail "cmdline.txt: $(cat "$R/boot/cmdline.txt")"
root1=$(root_uuid "$R")
is_v4 "$root1" || fail "root PARTUUID $root1 is not a version 4 UUID"

# fstab: / by the same UUID, /boot by another one, no MBR name left.
[ "$(fstab_uuid "$R" /)" = "$root1" ] || { cat "$R/etc/fstab"; fail "fstab's / is not $root1"; }
boot1=$(fstab_uuid "$R" /boot)
is_v4 "$boot1" || { cat "$R/etc/fstab"; fail "fstab's /boot $boot1 is not a version 4 UUID"; }
[ "$boot1" != "$root1" ] || fail "/ and /boot have one UUID"
! grep -q 0badcafe "$R/etc/fstab" || { cat "$R/etc/fstab"; fail "MBR names left in fstab"; }

# No firmware files were asked for (the Pi 5's firmware is in its EEPROM).
for f in bootcode.bin start.elf start4.elf fixup.dat fixup4.dat; do
	[ ! -e "$R/boot/$f" ] || fail "$f on the boot partition"
done

# Deterministic: up to date on a second run; the same UUIDs when
# cmdline.txt is gone (derived from the path again); another tree, other
# UUIDs.
run config "$R" --board rpi5
grep -q "config: up to date" "$T/out" || { cat "$T/out"; fail "second run not up to date"; }
rm "$R/boot/cmdline.txt"
fstab_mbr "$R"
run config "$R" --board rpi5
[ "$(root_uuid "$R")" = "$root1" ] || fail "derived root UUID changed: $root1 -> $(root_uuid "$R")"
[ "$(fstab_uuid "$R" /boot)" = "$boot1" ] || fail "derived boot UUID changed"
cp -a "$R" "$T/other"
rm "$T/other/boot/cmdline.txt"
"$RPIFS" build config "$T/other" --board rpi5 >"$T/out" 2>&1 || { cat "$T/out"; fail "config of $T/other"; }
[ "$(root_uuid "$T/other")" != "$root1" ] || fail "two trees got one root UUID"

# A UUID cmdline.txt already names is kept (lower-cased); the boot
# partition's follows it, and fstab agrees.
mine=0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9
echo "console=ttyAMA10,115200 root=PARTUUID=$mine rootwait" > "$R/boot/cmdline.txt"
run config "$R" --board rpi5
lower=${mine,,}
[ "$(root_uuid "$R")" = "$lower" ] || fail "cmdline's UUID not kept: $(root_uuid "$R")"
[ "$(fstab_uuid "$R" /)" = "$lower" ] || { cat "$R/etc/fstab"; fail "fstab's / is not $lower"; }
boot2=$(fstab_uuid "$R" /boot)
[ "$boot2" != "$boot1" ] && is_v4 "$boot2" || fail "boot UUID did not follow the root's: $boot2"
run config "$R" --board rpi5 --force
[ "$(fstab_uuid "$R" /boot)" = "$boot2" ] || fail "boot UUID not stable"

# Another board on the same tree goes back to MBR names, in step.
run config "$R" --board rpi4 --kernel kernel_2712.img
id=$(sed -nE 's/.*root=PARTUUID=([0-9a-f]{8})-02 .*/\1/p' "$R/boot/cmdline.txt")
[ -n "$id" ] || fail "rpi4: no MBR root: $(cat "$R/boot/cmdline.txt")"
[ "$(fstab_uuid "$R" /)" = "$id-02" ] && [ "$(fstab_uuid "$R" /boot)" = "$id-01" ] ||
	{ cat "$R/etc/fstab"; fail "fstab not back to disk id $id"; }

# The mount: GPT with these UUIDs once it reads them (rpifs --label gpt).
run config "$R" --board rpi5
if "$RPIFS" --help 2>&1 | grepq -- "--label"; then
	rpifs_mount "$R" "$T/mnt"
	sfdisk -J "$T/mnt/disk.img" > "$T/pt.json"
	python3 - "$T/pt.json" "$(root_uuid "$R")" "$(fstab_uuid "$R" /boot)" <<-'EOF' ||
	import json, sys
	pt = json.load(open(sys.argv[1]))["partitiontable"]
	assert pt["label"] == "gpt", pt["label"]
	uu = [p["uuid"].lower() for p in pt["partitions"]]
	assert uu[1] == sys.argv[2] and uu[0] == sys.argv[3], uu
	EOF
		{ cat "$T/pt.json"; fail "disk.img's partitions are not the tree's GPT UUIDs"; }
	rpifs_umount "$T/mnt"
else
	note "rpifs has no --label yet: the GPT mount of this tree is not checked"
fi

# Errors: the kernel by its name is required; --disk-id means MBR.
mkdir -p "$T/nokernel/boot"
printf 'Image' > "$T/nokernel/boot/vmlinuz-6.1.0"
expect_fail "no kernel kernel_2712.img in $T/nokernel/boot.*rpifs build kernel --board rpi5" \
	build config "$T/nokernel" --board rpi5
[ ! -e "$T/nokernel/boot/config.txt" ] || fail "config.txt written without the kernel"
expect_fail "--disk-id: board rpi5 names its partitions by GPT partition UUIDs" \
	build config "$R" --board rpi5 --disk-id 0x1234abcd

# Firmware: nothing to fetch, and no mirror asked for (an unreachable one
# would fail a fetch).
before=$(ls "$R/boot")
run firmware "$R" --board rpi5 --mirror http://127.0.0.1:9/debian
grep -q "nothing to fetch for board rpi5" "$T/out" || { cat "$T/out"; fail "firmware: no 'nothing to fetch'"; }
[ "$(ls "$R/boot")" = "$before" ] || fail "firmware changed boot/: $(ls "$R/boot")"

# Kernel: a tree without bcm2712 (a mainline-like tree: no bcm2712 device
# tree source) is refused before anything is configured or built.
K=$T/linux
mkdir -p "$K/arch/arm64/boot/dts/broadcom" "$K/arch/arm64/configs"
touch "$K/Makefile" "$K/Kconfig" "$K/arch/arm64/Kconfig"
printf 'VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n' > "$K/Makefile"
printf '/dts-v1/;\n' > "$K/arch/arm64/boot/dts/broadcom/bcm2837-rpi-3-b.dts"
printf 'CONFIG_ARM64=y\n' > "$K/arch/arm64/configs/defconfig"
KB=$T/kbuild
expect_fail "has no arch/arm64/boot/dts/broadcom/bcm2712-rpi-5-b.dts.*Board rpi5 needs a kernel tree with bcm2712 support: the Raspberry Pi kernel tree, https://github.com/raspberrypi/linux.*--config bcm2712_defconfig" \
	build kernel "$R" --board rpi5 --src "$K" --build-dir "$KB"
[ ! -e "$KB" ] || fail "kernel build dir created for a refused tree"
# `build all` checks every stage before the first: the refusal comes
# before any debootstrap (as root; a user's rootfs check wants a
# subordinate uid range first, build_noroot's business).
if [ "$(id -u)" = 0 ]; then
	expect_fail "Board rpi5 needs a kernel tree with bcm2712 support" \
		build all "$T/fresh" --board rpi5 --src "$K" --build-dir "$KB" \
		--mirror http://127.0.0.1:9/debian
	[ ! -e "$T/fresh" ] || fail "build all created $T/fresh"
fi
# With the device tree, the Pi 3 fragment is refused too; a NAME_defconfig
# must be the tree's.
printf '/dts-v1/;\n' > "$K/arch/arm64/boot/dts/broadcom/bcm2712-rpi-5-b.dts"
expect_fail "--config rpi3-minimal is the Pi 3 .* fragment.*--config bcm2712_defconfig" \
	build kernel "$R" --board rpi5 --src "$K" --build-dir "$KB" --config rpi3-minimal
# Without --config, the profile's kernel_config= (bcm2712_defconfig) is asked
# of the tree.
expect_fail "--config bcm2712_defconfig: no arch/arm64/configs/bcm2712_defconfig in --src $K" \
	build kernel "$R" --board rpi5 --src "$K" --build-dir "$KB"
expect_fail "--config bcm2712_defconfig: no arch/arm64/configs/bcm2712_defconfig in --src $K" \
	build kernel "$R" --board rpi5 --src "$K" --build-dir "$KB" --config bcm2712_defconfig
[ ! -e "$KB" ] || fail "kernel build dir created for a refused config"

# qemu has no Pi 5 (usage error, exit 2).
set +e; "$RPIFS" qemu --board rpi5 "$R" >"$T/out" 2>&1; rc=$?; set -e
[ "$rc" = 2 ] && grepq "qemu has no Raspberry Pi 5 (BCM2712) model" < "$T/out" ||
	{ cat "$T/out"; fail "rpifs qemu --board rpi5: not refused clearly ($rc)"; }
echo ok
