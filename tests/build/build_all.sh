#!/usr/bin/env bash
# The real build: `rpifs build all` with Debian's linux-source-6.1 (the
# rpi3-minimal kernel), a minbase bookworm rootfs, raspi-firmware from the
# host's Debian mirror, config. Then each stage's output is checked, a
# second run must find every stage up to date, and, when the mount works,
# the served image's MBR disk id must equal cmdline.txt's PARTUUID and both
# partitions must pass fsck.
#
# Everything is cached under $BUILD_ROOT/cache, for reuse by later runs and
# by other suites (the boot test):
#   cache/linux-source-6.1/   the unpacked tree (+ .unpacked marker beside it)
#   cache/kernel/             kbuild output (O=); reused when up to date
#   cache/rootfs/             the built tree; cache/rootfs.rpifs/ its state
. "$TESTS_DIR/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot)"
need debootstrap qemu-aarch64-static aarch64-linux-gnu-gcc make bison flex bc python3
tarball=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -1)
[ -n "$tarball" ] || skip "linux-source-6.1 not installed"

CACHE=$BUILD_ROOT/cache
SRC=$CACHE/linux-source-6.1
KB=$CACHE/kernel
R=$CACHE/rootfs
mkdir -p "$CACHE"

if [ ! -e "$SRC.unpacked" ] || [ "$tarball" -nt "$SRC.unpacked" ]; then
	note "unpacking $tarball"
	rm -rf "$SRC" "$SRC.unpacked"
	tar -xf "$tarball" -C "$CACHE"
	touch "$SRC.unpacked"
fi
src_sums=$(cd "$SRC" && find . -newer "$SRC.unpacked" | head -5)

start=$(date +%s)
nice -n 10 "$RPIFS" build all "$R" --src "$SRC" --build-dir "$KB" --variant minbase \
	2>&1 | tee "$T/out" || fail "rpifs build all failed"
[ "${PIPESTATUS[0]}" = 0 ] || fail "rpifs build all exited ${PIPESTATUS[0]}"
note "build all took $(( $(date +%s) - start )) s"
for st in rootfs kernel firmware config; do
	grep -qE "^\[[1-4]/4\] $st: (done in|up to date)" "$T/out" || fail "no result line for $st"
	[ -s "$R.rpifs/logs/$st.log" ] || fail "no log for $st"
done

# The source tree was not written to.
[ -z "$(cd "$SRC" && find . -newer "$SRC.unpacked" | head -5)" ] ||
	fail "the kernel tree was modified: $(cd "$SRC" && find . -newer "$SRC.unpacked" | head -5)"
[ ! -e "$SRC/.config" ] || fail "a .config in the source tree"
: "$src_sums"

# Kernel: files, every fragment symbol (bar those 6.1 lacks), modules.
rel=$(cat "$R.rpifs/kernel-release")
for f in "vmlinuz-$rel" "System.map-$rel" "config-$rel" broadcom/bcm2837-rpi-3-b.dtb \
	 broadcom/bcm2837-rpi-zero-2-w.dtb broadcom/bcm2711-rpi-4-b.dtb; do
	[ -s "$R/boot/$f" ] || fail "boot/$f missing"
done
# An arm64 kernel Image: "ARM\x64" magic at offset 56.
[ "$(dd if="$R/boot/vmlinuz-$rel" bs=1 skip=56 count=4 status=none)" = "$(printf 'ARM\x64')" ] ||
	fail "vmlinuz-$rel is not an arm64 Image"
# Symbols 6.1 does not have or drops: reported, not fatal.
known_refused="CONFIG_HID_SUPPORT CONFIG_DRM_FBDEV_EMULATION"
missing=()
while IFS= read -r line; do
	case $line in CONFIG_*=*) ;; *) continue ;; esac
	sym=${line%%=*}
	grep -qxF -- "$line" "$R/boot/config-$rel" && continue
	case " $known_refused " in *" $sym "*) continue ;; esac
	missing+=("$line")
done < "$SRC_ROOT/data/rpi3-minimal.config"
[ ${#missing[@]} -eq 0 ] || fail "fragment symbols not in .config: ${missing[*]}"
for sym in $known_refused; do
	grep -q "refused: $sym=" "$R.rpifs/logs/kernel.log" ||
		grep -q "up to date" <(grep "kernel:" "$T/out") || fail "$sym not reported as refused"
done
if grep -qx "CONFIG_MODULES=y" "$R/boot/config-$rel"; then
	[ -s "$R/lib/modules/$rel/modules.dep" ] || fail "modules enabled but no modules.dep"
	[ ! -L "$R/lib/modules/$rel/build" ] || fail "host build/ link left in lib/modules"
fi

# Rootfs: an arm64 Debian tree with our files.
[ -s "$R/etc/debian_version" ] || fail "no etc/debian_version"
python3 - "$R/usr/bin/dpkg" <<'PY' || fail "usr/bin/dpkg is not an arm64 ELF"
import struct, sys
h = open(sys.argv[1], "rb").read(20)
assert h[:4] == b"\x7fELF" and struct.unpack("<H", h[18:20])[0] == 183
PY
[ "$(cat "$R/etc/hostname")" = rpi ] || fail "hostname: $(cat "$R/etc/hostname")"
[ "$(readlink "$R/etc/systemd/system/getty.target.wants/serial-getty@ttyAMA0.service")" = \
  /lib/systemd/system/serial-getty@.service ] || fail "no serial getty link"
grep -q "non-free-firmware" "$R/etc/apt/sources.list" || fail "sources.list lacks non-free-firmware"
[ ! -e "$R/debootstrap" ] || fail "debootstrap's scratch dir left in the tree"
# Nothing of rpifs's own inside ROOTFS.
[ -z "$(find "$R" -xdev \( -name '*.rpifs-tmp' -o -name '*.rpifs-old' -o -name 'kbuild' \) -print -quit)" ] ||
	fail "rpifs files inside ROOTFS"

# Firmware and config.
for f in bootcode.bin start.elf fixup.dat; do [ -s "$R/boot/$f" ] || fail "boot/$f missing"; done
grep -qx "arm_64bit=1" "$R/boot/config.txt" || fail "config.txt: arm_64bit"
grep -qx "kernel=vmlinuz-$rel" "$R/boot/config.txt" || fail "config.txt: kernel"
grep -qx "device_tree=broadcom/bcm2837-rpi-3-b.dtb" "$R/boot/config.txt" || fail "config.txt: dtb"
grep -qx "enable_uart=1" "$R/boot/config.txt" || fail "config.txt: uart"
[ "$(wc -l < "$R/boot/cmdline.txt")" = 1 ] || fail "cmdline.txt: not one line"
id=$(sed -nE 's/.*root=PARTUUID=([0-9a-f]{8})-02 .*/\1/p' "$R/boot/cmdline.txt")
[ -n "$id" ] && [ "$id" != 00000000 ] || fail "cmdline.txt: $(cat "$R/boot/cmdline.txt")"
grep -q "console=ttyAMA0,115200" "$R/boot/cmdline.txt" || fail "cmdline.txt: no qemu console"
grep -q "^PARTUUID=$id-02 *\/ " "$R/etc/fstab" || fail "fstab root is not PARTUUID=$id-02: $(cat "$R/etc/fstab")"
grep -q "^PARTUUID=$id-01 *\/boot *vfat" "$R/etc/fstab" || fail "fstab has no /boot"

# Second run: every stage up to date, quickly.
start=$(date +%s)
"$RPIFS" build all "$R" --src "$SRC" --build-dir "$KB" --variant minbase >"$T/out2" 2>&1 ||
	{ cat "$T/out2"; fail "second build all failed"; }
for st in rootfs kernel firmware config; do
	grep -qE "^\[[1-4]/4\] $st: up to date" "$T/out2" || { cat "$T/out2"; fail "$st not up to date on the second run"; }
done
[ $(( $(date +%s) - start )) -lt 60 ] || fail "an up-to-date build all took over a minute"

# The served image: disk id from cmdline.txt, both file systems clean.
if [ -e /dev/fuse ] && command -v sfdisk >/dev/null && command -v fsck.fat >/dev/null; then
	mkdir -p "$T/mnt"
	if "$RPIFS" "$R" "$T/mnt" 2>"$T/mount.err"; then
		_MOUNTS+=("$T/mnt")
		img=$T/mnt/disk.img
		got=$(sfdisk -J "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["id"])')
		[ "$got" = "0x$id" ] || fail "image disk id $got, cmdline.txt says $id"
		extract_part "$img" 1 "$T/p1.img"
		fsck.fat -n "$T/p1.img" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "fsck.fat -n on partition 1"; }
		off=$(part_start "$img" 2)
		e2fsck -fn "$img?offset=$off" >"$T/e2fsck.out" 2>&1 || { cat "$T/e2fsck.out"; fail "e2fsck -fn on partition 2"; }
		rpifs_umount "$T/mnt"
		_MOUNTS=()
	else
		note "rpifs mount not available ($(head -1 "$T/mount.err")): image checks skipped"
	fi
fi
echo ok
