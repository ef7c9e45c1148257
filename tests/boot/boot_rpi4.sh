#!/usr/bin/env bash
# The Raspberry Pi 4 (BCM2711) under qemu -M raspi4b, with the SD image as
# its root.
#
#  - the rpi4-minimal kernel, from Debian's linux-source-6.1 by
#    `rpifs build kernel --board rpi4` (no --config: the board's profile
#    picks it), built once into BUILD_ROOT/cache/kernel-rpi4;
#  - a qemu that has raspi4b (9.0 or later; bookworm's is 7.2): Debian
#    trixie's, from scripts/trixie-qemu, cached in BUILD_ROOT/cache/trixie-qemu
#    (or $RPIFS_TRIXIE_QEMU_DIR);
#  - boot.sh's busybox tree: its init prints the device tree's model (must be
#    "Raspberry Pi 4 Model B"), MemTotal and a marker read from the tree,
#    writes a file, remounts / read-only. root=PARTUUID=7e57b004-02: the
#    card's name differs between qemu and the board (below).
#
# What raspi4b does with the SD card (qemu 10.0): it is not on EMMC2, the
# Pi 4's card slot, but on the Arasan SDHCI at 0x7e300000 (qemu routes the
# card to it or to sdhost by pin function, as on a Pi 3), which the mainline
# device tree gives to the Wi-Fi with an mmc-pwrseq-simple whose reset line
# is on the firmware's GPIO expander. qemu's firmware does not answer the
# expander's GPIO calls ("raspberrypi-exp-gpio ... Failed to get GPIO 0
# config"), so that controller never probes: only EMMC2 comes up, empty, and
# the kernel waits for its root forever. Boot 1 shows this with the device
# tree passed as it is (--dtb-as-is, up to "Waiting for root device").
# Boot 2 is `rpifs qemu --board rpi4` with no such flag: rpifs passes qemu a
# copy without that mmc-pwrseq (qemu_dtb.c); the card is mmcblk0 and the
# ext4 root on partition 2 mounts. The guest's write must be visible
# through the mount afterwards (debugfs), both file systems must pass
# fsck, and the tree's own device tree is unchanged.
#
# Boot 3: the same tree naming its root by a GPT partition UUID: a GPT card
# (chosen by the mount from the tree) boots the same way.
#
# RPIFS_LONG=1 only: the kernel build is ~10 min on 2 cores, the trixie tree
# ~1.5 min (measured figures: doc/DEVELOPMENT.md). Cached, a run is ~1 min.
. "$TESTS_DIR/lib.sh"
[ "${RPIFS_LONG:-0}" = 1 ] || skip "RPIFS_LONG=1 only (a kernel build and a Debian trixie qemu tree)"
[ "$(id -u)" = 0 ] || skip "needs root (FUSE here, dpkg architecture, mmdebstrap)"
need aarch64-linux-gnu-gcc make bison flex bc mmdebstrap debugfs e2fsck fsck.fat dpkg-deb apt-get sfdisk
tarball=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -1)
[ -n "$tarball" ] || skip "linux-source-6.1 not installed"

CACHE=$BUILD_ROOT/cache
SRC=$CACHE/linux-source-6.1
KB=$CACHE/kernel-rpi4
KR=$CACHE/kernel-rpi4-root     # what `build kernel` installs into (boot/)
mkdir -p "$CACHE" "$KR"

# The kernel tree, unpacked as the build suite does (shared with it).
if [ ! -e "$SRC.unpacked" ] || [ "$tarball" -nt "$SRC.unpacked" ]; then
	note "unpacking $tarball"
	rm -rf "$SRC" "$SRC.unpacked"
	tar -xf "$tarball" -C "$CACHE"
	touch "$SRC.unpacked"
fi
start=$(date +%s)
nice -n 10 "$RPIFS" build kernel "$KR" --src "$SRC" --build-dir "$KB" --board rpi4 \
	>"$T/kernel.out" 2>&1 || { tail -30 "$T/kernel.out"; fail "rpifs build kernel --board rpi4 failed"; }
note "kernel: $(grep -E 'kernel: (done|up to date)' "$T/kernel.out" | tail -1) ($(( $(date +%s) - start )) s)"
# The board's profile chose rpi4-minimal: EMMC2's driver is in.
grepq -x "CONFIG_MMC_SDHCI_IPROC=y" < "$KB/.config" ||
	fail "--board rpi4 without --config did not build rpi4-minimal (no MMC_SDHCI_IPROC)"
rel=$(cat "$KR.rpifs/kernel-release")
K=$KR/boot/vmlinuz-$rel
DTB=$KR/boot/broadcom/bcm2711-rpi-4-b.dtb
[ -s "$K" ] && [ -s "$DTB" ] || fail "no $K or $DTB after the kernel build"

# The qemu: trixie's, made once.
export RPIFS_TRIXIE_QEMU_DIR=${RPIFS_TRIXIE_QEMU_DIR:-$CACHE/trixie-qemu}
start=$(date +%s)
QEMU=$("$SRC_ROOT/scripts/trixie-qemu") || fail "scripts/trixie-qemu failed"
note "trixie qemu: $QEMU ($(( $(date +%s) - start )) s): $("$QEMU" --version | head -1)"
"$QEMU" -machine help | grepq '^raspi4b ' || fail "$QEMU has no raspi4b"

# boot.sh's busybox tree and init, with this kernel and device tree.
R=$T/root
"$SRC_ROOT/scripts/busybox-tree" "$CACHE" "$R" "$K" "$DTB" || fail "scripts/busybox-tree failed"
echo "console=ttyAMA0,115200 root=PARTUUID=7e57b004-02 rootfstype=ext4 rootwait" > "$R/boot/cmdline.txt"
echo pi4 > "$R/etc/marker"

cp "$DTB" "$T/dtb.orig"

rpifs_mount "$R" "$T/mnt"
img=$T/mnt/disk.img
size=$(stat -c %s "$img")
[ $((size & (size - 1))) = 0 ] || fail "disk.img is $size bytes: not a power of two (qemu's SD card needs one)"
[ "$(sfdisk -J "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["id"])')" = 0x7e57b004 ] ||
	fail "disk id is not the cmdline.txt PARTUUID"
p2=$(part_start "$img" 2)

# Boot 1, the mainline device tree as it is: the card's controller waits
# for its power sequence; only EMMC2 (no card) comes up.
timeout 200 "$RPIFS" qemu --board rpi4 --dtb-as-is --qemu "$QEMU" --timeout 120 --until "Waiting for root device" \
	--image "$img" "$R" >"$T/boot1.log" 2>&1 </dev/null || { tail -30 "$T/boot1.log"; fail "boot 1 did not get to the root wait"; }
grepq -- "-dtb $R/boot/broadcom/bcm2711-rpi-4-b.dtb" < "$T/boot1.log" || fail "boot 1: not the board's default device tree"
grepq "Machine model: Raspberry Pi 4 Model B" < "$T/boot1.log" || fail "boot 1: not the Pi 4 model"
grepq "SDHCI controller on fe340000.mmc" < "$T/boot1.log" || fail "boot 1: EMMC2 did not come up"
! grepq "SDHCI controller on fe300000.mmc" < "$T/boot1.log" ||
	note "boot 1: the Arasan SDHCI came up with the mainline device tree (qemu's firmware answers the GPIO expander now?)"
grepq "raspberrypi-exp-gpio.*Failed to get GPIO" < "$T/boot1.log" &&
	note "boot 1: qemu's firmware does not answer the GPIO expander: $(grep -m1 'raspberrypi-exp-gpio' "$T/boot1.log" | tr -d '\r')"

# Boot 2, as a user would: no --qemu (the host's lacks raspi4b: rpifs finds
# scripts/trixie-qemu's in $RPIFS_TRIXIE_QEMU_DIR), and rpifs gives qemu its
# copy of the device tree.
start=$(date +%s.%N)
rc=0
timeout 400 "$RPIFS" qemu --board rpi4 --timeout 300 --until "RPIFS-DONE" \
	--image "$img" "$R" >"$T/boot.log" 2>&1 </dev/null || rc=$?
note "boot to the marker: $(echo "$(date +%s.%N) - $start" | bc) s (status $rc)"
if [ "$rc" != 0 ]; then
	tail -40 "$T/boot.log"
	fail "the Pi 4 guest did not reach the end of its init (status $rc)"
fi
grepq -- "-M raspi4b -m 2G" < "$T/boot.log" || fail "not -M raspi4b -m 2G"
qemu-system-aarch64 -machine help 2>/dev/null | grepq '^raspi4b ' ||
	grepq "using $QEMU (made by scripts/trixie-qemu" < "$T/boot.log" ||
	fail "rpifs qemu without --qemu did not use the trixie qemu"
grepq "passing $R/boot/broadcom/bcm2711-rpi-4-b.dtb without mmc-pwrseq in /soc/mmc@7e300000" < "$T/boot.log" ||
	fail "rpifs qemu did not say it drops mmc-pwrseq"
grepq -- "-dtb /tmp/rpifs-dtb\." < "$T/boot.log" || fail "qemu did not get rpifs's copy of the device tree"
cmp -s "$T/dtb.orig" "$R/boot/broadcom/bcm2711-rpi-4-b.dtb" || fail "the tree's device tree changed"
grepq "RPIFS-MODEL: Raspberry Pi 4 Model B" < "$T/boot.log" ||
	{ grep RPIFS "$T/boot.log"; fail "the guest's device tree model is not the Pi 4's"; }
# raspi4b has 2 GiB, of which the guest sees the first bank below the
# VideoCore's (960 MiB; qemu 10.0.13, measured).
mem=$(sed -n 's/^RPIFS-MEM: \([0-9]*\).*/\1/p' "$T/boot.log" | head -1)
[ -n "$mem" ] && [ "$mem" -gt 786432 ] && [ "$mem" -le 2097152 ] ||
	fail "MemTotal $mem KiB: not a raspi4b"
grepq "SDHCI controller on fe300000.mmc" < "$T/boot.log" || fail "the Arasan SDHCI did not come up"
grepq "mmcblk0: p1 p2" < "$T/boot.log" || fail "the card is not mmcblk0 with two partitions"
grepq "EXT4-fs (mmcblk0p2): mounted filesystem" < "$T/boot.log" || fail "partition 2 of the card was not mounted"
grepq "VFS: Mounted root (ext4 filesystem) .*on device 179:2" < "$T/boot.log" ||
	fail "the kernel did not mount the card's partition 2 as root"
grepq "RPIFS-MARKER: pi4" < "$T/boot.log" || fail "marker not printed"
note "$(grep -E '^RPIFS-(MODEL|MEM)' "$T/boot.log" | tr -d '\r\0' | tr '\n' ' ')"
got=$(debugfs -R 'cat /guest-file' "$img?offset=$p2" 2>/dev/null)
[ "$got" = "guest-wrote-this pi4" ] || fail "guest write not visible through the mount (got '$got')"
e2fsck -fn "$img?offset=$p2" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "e2fsck after the boot"; }
extract_part "$img" 1 "$T/p1.img"
fsck.fat -n "$T/p1.img" >"$T/fsckfat" 2>&1 || { cat "$T/fsckfat"; fail "fsck.fat after the boot"; }
rpifs_umount "$T/mnt"

# Boot 3, a GPT card: the same tree naming its root by a GPT partition UUID
# makes the mount choose gpt by itself; the kernel (EFI_PARTITION) finds
# root=PARTUUID=<uuid> on it and mounts partition 2.
G=$T/gpt
cp -a "$R" "$G"
uuid=4c0ffee4-b007-4a11-8c4e-000000000002
echo "console=ttyAMA0,115200 root=PARTUUID=$uuid rootfstype=ext4 rootwait" > "$G/boot/cmdline.txt"
echo gpt4 > "$G/etc/marker"
rpifs_mount "$G" "$T/mnt"
sfdisk -J "$img" > "$T/gpt.json"
python3 - "$T/gpt.json" "$uuid" <<'PY' || { cat "$T/gpt.json"; fail "the GPT card's table"; }
import json, sys
t = json.load(open(sys.argv[1]))["partitiontable"]
assert t["label"] == "gpt", t["label"]
assert t["partitions"][1]["uuid"].lower() == sys.argv[2], t["partitions"][1]
assert t["partitions"][0]["type"].upper() == "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
PY
rc=0
timeout 400 "$RPIFS" qemu --board rpi4 --qemu "$QEMU" --timeout 300 --until "RPIFS-DONE" \
	--image "$img" "$G" >"$T/boot3.log" 2>&1 </dev/null || rc=$?
[ "$rc" = 0 ] || { tail -40 "$T/boot3.log"; fail "the Pi 4 guest did not boot the GPT card (status $rc)"; }
grepq "mmcblk0: p1 p2" < "$T/boot3.log" || fail "GPT card: not mmcblk0 with two partitions"
grepq "VFS: Mounted root (ext4 filesystem) .*on device 179:2" < "$T/boot3.log" ||
	fail "GPT card: the kernel did not mount partition 2 as root"
grepq "RPIFS-MARKER: gpt4" < "$T/boot3.log" || fail "GPT card: marker not printed"
p2=$(part_start "$img" 2)
got=$(debugfs -R 'cat /guest-file' "$img?offset=$p2" 2>/dev/null)
[ "$got" = "guest-wrote-this gpt4" ] || fail "GPT card: guest write not visible through the mount (got '$got')"
e2fsck -fn "$img?offset=$p2" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "e2fsck of the GPT card after the boot"; }
command -v sgdisk >/dev/null && { sgdisk -v "$img" > "$T/sgdisk" 2>&1 || { cat "$T/sgdisk"; fail "sgdisk -v of the GPT card"; }; }
rpifs_umount "$T/mnt"
note "GPT card booted: root=PARTUUID=$uuid"
note "ok"
