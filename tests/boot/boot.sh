#!/usr/bin/env bash
# End to end: qemu-system-aarch64 -M raspi3b boots disk.img served by rpifs.
#
# A busybox tree (Debian's busybox-static, arm64) whose init prints a marker
# read from the tree and writes a file; the kernel is the rpi3-minimal one
# that the build suite makes once per run (BUILD_ROOT/cache/rootfs/boot).
#  1. boot: the marker appears; the guest's write is visible afterwards
#     through the mount (debugfs on disk.img);
#  2. edit the marker in the tree, boot again without remounting: the new
#     marker appears;
#  3. with --overlay FILE: the guest's write survives a remount;
#  4. the tree is byte-identical after all boots;
#  5. dd iflag=direct and qemu-img compare agree with a reference copy;
#  6. rpifs qemu --nbd boots the same tree through nbdkit (when built);
#  7. a flashed copy: rpifs flash onto a file of random bytes the size of
#     the image (the garbage left in its holes checked against a fresh
#     mount), then rpifs qemu --image FILE boots it: the holes' garbage does
#     not matter; the guest's write lands in the file;
#  8. two guests at once from one nbdkit server (when built): each writes a
#     file of its own name, remounts / read-only (the journal checkpointed),
#     waits until the other has written too (the host tells it on the
#     console), drops its caches and lists / again from the server: its own
#     file, not the other's (each connection its own overlay); a third
#     connection (nbdcopy, debugfs) sees neither;
#  9. a Debian-like tree (boot/firmware, LABEL= in cmdline.txt and fstab,
#     an initramfs named in config.txt's [pi3] section that finds the root
#     by its label) boots with no flags;
# 10. a Raspberry Pi OS-like tree (boot/firmware, root=PARTUUID=...-02)
#     boots with no flags, and blkid shows the disk id it asked for;
# 11. the Zero 2 W: --board rpi02w is qemu's raspi3ap (512 MiB) with the
#     Zero 2 W device tree (the guest's model says so).
. "$TESTS_DIR/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (FUSE here, dpkg architecture)"
need qemu-system-aarch64 qemu-img debugfs dpkg-deb apt-get

CACHE=$BUILD_ROOT/cache
R=$T/root
# busybox, the kernel, the device tree, config.txt, cmdline.txt, sbin/init
# (root=PARTUUID=7e57b007-02); shared with bench item 8
rc=0
"$TESTS_DIR/../scripts/busybox-tree" "$CACHE" "$R" 2>"$T/tree.err" || rc=$?
[ $rc = 0 ] || fail "$(cat "$T/tree.err")"
K=$(ls "$CACHE"/rootfs/boot/vmlinuz-* | head -1)
BB=$CACHE/busybox-static-arm64/bin/busybox
echo one > "$R/etc/marker"
cp -p "$R/etc/marker" "$T/marker.orig"
before=$(tree_sums "$R")

boot() {   # boot LOG [rpifs qemu options...]: boot the mounted image
	local log=$1; shift
	timeout 300 "$RPIFS" qemu --timeout 240 "$@" "$R" >"$log" 2>&1 </dev/null || true
	grep -q "RPIFS-DONE" "$log" || { tail -40 "$log"; fail "the guest did not reach the end of init"; }
}

rpifs_mount "$R" "$T/mnt"
img=$T/mnt/disk.img
[ "$(sfdisk -J "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["id"])')" = 0x7e57b007 ] ||
	fail "disk id is not the cmdline.txt PARTUUID"
p2=$(part_start "$img" 2)

start=$(date +%s.%N)
boot "$T/boot1.log" --image "$img"
note "boot 1: $(echo "$(date +%s.%N) - $start" | bc) s"
grep -q "RPIFS-MARKER: one" "$T/boot1.log" || fail "marker 'one' not printed"
grep -q "rpifs: qemu: qemu-system-aarch64 -M raspi3b" "$T/boot1.log" || fail "the qemu command was not printed"
got=$(debugfs -R 'cat /guest-file' "$img?offset=$p2" 2>/dev/null)
[ "$got" = "guest-wrote-this one" ] || fail "guest write not visible through the mount (got '$got')"
e2fsck -fn "$img?offset=$p2" >"$T/fsck" 2>&1 || { cat "$T/fsck"; fail "e2fsck after boot"; }

# Edit the tree, boot again without remounting.
echo two > "$R/etc/marker"
# (--until stops qemu, exit 0, as soon as the console prints the text)
timeout 300 "$RPIFS" qemu --timeout 240 --until "RPIFS-MARKER: two" --image "$img" "$R" \
	>"$T/boot2.log" 2>&1 </dev/null || { tail -30 "$T/boot2.log"; fail "the edited marker was not served"; }
grep -q 'saw "RPIFS-MARKER: two"' "$T/boot2.log" || fail "--until did not report"
rpifs_umount "$T/mnt"

# A persistent overlay keeps the guest's write across a remount.
boot "$T/boot3.log" --overlay "$T/overlay"
grep -q "RPIFS-MARKER: two" "$T/boot3.log" || fail "boot with --overlay"
rpifs_mount "$R" "$T/mnt" --overlay "$T/overlay"
got=$(debugfs -R 'cat /guest-file' "$img?offset=$p2" 2>/dev/null)
[ "$got" = "guest-wrote-this two" ] || fail "guest write lost across remount with --overlay (got '$got')"

# The same tree over NBD (rpifs qemu --nbd: nbdkit with the rpifs plugin on
# a Unix socket), where the plugin is built; the guest's writes go to the
# connection's own overlay.
if [ -f "$BUILD_ROOT/src/nbdkit/nbdkit-rpifs-plugin.so" ] && command -v nbdkit >/dev/null; then
	boot "$T/boot4.log" --nbd
	grep -q "RPIFS-MARKER: two" "$T/boot4.log" || fail "boot over NBD (--nbd)"
	grep -q "file=nbd+unix:///disk?socket=" "$T/boot4.log" || fail "--nbd: the drive is not NBD"
fi

# A flashed copy boots: rpifs flash onto a file of random bytes (what a used
# card holds), then rpifs qemu --image FILE. A fresh mount (the one above
# holds the guest's write) checks that the garbage is still in the holes.
size=$(stat -c %s "$img")
head -c "$size" /dev/urandom > "$T/card.orig"
cp "$T/card.orig" "$T/card.img"
start=$(date +%s.%N)
"$RPIFS" flash --yes -q "$R" "$T/card.img" || fail "rpifs flash $R card.img failed"
note "flash: $(echo "$(date +%s.%N) - $start" | bc) s"
rpifs_mount "$R" "$T/mnt2"
out=$(python3 "$TESTS_DIR/flash/ranges.py" check "$T/mnt2/disk.img" "$T/card.img" "$T/card.orig") ||
	fail "the flashed card is not the image on its data, or a hole was written"
rpifs_umount "$T/mnt2"
note "flashed card: $out (data, hole bytes of garbage)"
[ "${out#* }" -gt $((size / 2)) ] || fail "only ${out#* } bytes of garbage in the holes"
rm -f "$T/card.orig"
start=$(date +%s.%N)
boot "$T/boot5.log" --image "$T/card.img"
note "boot of the flashed card: $(echo "$(date +%s.%N) - $start" | bc) s"
grep -q "RPIFS-MARKER: two" "$T/boot5.log" || fail "the flashed card: marker 'two' not printed"
got=$(debugfs -R 'cat /guest-file' "$T/card.img?offset=$p2" 2>/dev/null)
[ "$got" = "guest-wrote-this two" ] || fail "guest write not on the flashed card (got '$got')"
rm -f "$T/card.img"

# Two guests at once on one nbdkit server, each connection its own overlay.
if [ -f "$BUILD_ROOT/src/nbdkit/nbdkit-rpifs-plugin.so" ] && command -v nbdkit >/dev/null &&
	command -v nbdcopy >/dev/null; then
	sock=$T/nbd.sock
	uri="nbd+unix:///disk?socket=$sock"
	nbdkit -f --exit-with-parent -U "$sock" -P "$T/nbdkit.pid" \
		"$BUILD_ROOT/src/nbdkit/nbdkit-rpifs-plugin.so" rootfs="$R" 2>"$T/nbdkit.log" &
	nbdkit_pid=$!
	trap 'kill "$nbdkit_pid" 2>/dev/null || true; cleanup' EXIT
	for _ in $(seq 300); do [ -s "$T/nbdkit.pid" ] && break; sleep 0.1; done
	[ -s "$T/nbdkit.pid" ] || { cat "$T/nbdkit.log" >&2; fail "nbdkit did not serve"; }
	# The console's input: "go" once both guests have written (given up
	# once both qemus have ended).
	feed_go() {
		for _ in $(seq 1200); do
			[ ! -e "$T/guests.done" ] || return 0
			grep -q "RPIFS-WROTE" "$T/guest1.log" && grep -q "RPIFS-WROTE" "$T/guest2.log" &&
				{ echo go; return; }
			sleep 0.25
		done
	}
	start=$(date +%s.%N)
	pids=()
	for g in 1 2; do
		feed_go | timeout 300 "$RPIFS" qemu --timeout 240 --append rpifs_two --image "$uri" "$R" \
			>"$T/guest$g.log" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	touch "$T/guests.done"
	note "two guests: $(echo "$(date +%s.%N) - $start" | bc) s"
	for g in 1 2; do
		grep -q "RPIFS-DONE" "$T/guest$g.log" || { tail -40 "$T/guest$g.log"; fail "guest $g did not finish"; }
		grep -q "file=$uri,if=sd" "$T/guest$g.log" || fail "guest $g: the drive is not $uri"
		! grep -q "RPIFS-NO-GO" "$T/guest$g.log" || fail "guest $g was not told to go on"
		name[g]=$(sed -n 's/^RPIFS-WROTE: \(guest-[0-9a-f-]*\).*/\1/p' "$T/guest$g.log")
		ls[g]=$(grep "^RPIFS-LS:" "$T/guest$g.log")
		[ -n "${name[g]}" ] && [ -n "${ls[g]}" ] || { tail -20 "$T/guest$g.log"; fail "guest $g: no name or no listing"; }
	done
	[ "${name[1]}" != "${name[2]}" ] || fail "both guests wrote ${name[1]}"
	for g in 1 2; do
		o=$((3 - g))
		note "guest $g wrote ${name[g]}; ${ls[g]}"
		[[ " ${ls[g]} " == *" ${name[g]} "* ]] || fail "guest $g lost its own file ${name[g]}"
		[[ " ${ls[g]} " != *" ${name[o]} "* ]] || fail "guest $g sees guest $o's file ${name[o]}"
	done
	# A third connection: neither guest's file.
	nbdcopy "$uri" "$T/third.img" || fail "nbdcopy of the disk export"
	debugfs -R 'ls /' "$T/third.img?offset=$p2" >"$T/third.ls" 2>/dev/null || fail "debugfs ls / of the third copy"
	grep -q "etc" "$T/third.ls" || { cat "$T/third.ls"; fail "debugfs listed nothing"; }
	! grep -q "guest-" "$T/third.ls" || { cat "$T/third.ls"; fail "a third connection sees a guest's file"; }
	rm -f "$T/third.img"
	kill "$nbdkit_pid"; wait "$nbdkit_pid" || true
	trap cleanup EXIT
fi

# Direct I/O and qemu-img agree with a reference copy.
dd if="$img" of="$T/ref.img" bs=4M status=none
dd if="$img" iflag=direct bs=1M status=none | cmp - "$T/ref.img" || fail "dd iflag=direct differs"
qemu-img compare -f raw -F raw "$img" "$T/ref.img" >/dev/null || fail "qemu-img compare differs"
rpifs_umount "$T/mnt"

# Trees laid out as distributions lay them out, booted with no flags.
#  9. Debian-like: boot files in boot/firmware; config.txt names the kernel
#     and "initramfs initrd.cpio followkernel" in a [pi3] section (a [pi4]
#     one names a file that does not exist); cmdline.txt root=LABEL=RASPIROOT,
#     fstab LABEL=RASPIROOT / and LABEL=RASPIFIRM /boot/firmware; the
#     initramfs's /init finds LABEL=RASPIROOT (busybox findfs) and switches
#     to it, as a distro's initramfs does.
D=$T/debian-like
mkdir -p "$D"
cp -a "$R/." "$D/"
mkdir -p "$D/boot/firmware"
mv "$D/boot/Image" "$D/boot/broadcom" "$D/boot/firmware/"
rm -f "$D/boot/config.txt" "$D/boot/cmdline.txt"
cp "$K" "$D/boot/vmlinuz-rpifs"        # what stays in ext4's /boot
printf 'LABEL=RASPIROOT / ext4 rw 0 1\nLABEL=RASPIFIRM /boot/firmware vfat rw 0 2\n' > "$D/etc/fstab"
mkdir -p "$T/ird/bin" "$T/ird/dev" "$T/ird/proc" "$T/ird/newroot"
cp "$BB" "$T/ird/bin/busybox"
cat > "$T/ird/init" <<'INIT'
#!/bin/busybox sh
b=/bin/busybox
$b mount -t devtmpfs devtmpfs /dev
$b mount -t proc proc /proc
echo "RPIFS-INITRAMFS: $($b uname -r)"
for i in $($b seq 100); do dev=$($b findfs LABEL=RASPIROOT 2>/dev/null) && break; $b sleep 0.1; done
echo "RPIFS-INITRAMFS-ROOT: $dev"
$b mount -t ext4 "$dev" /newroot || echo "RPIFS-INITRAMFS-NOROOT"
$b umount /proc
$b umount /dev
exec $b switch_root /newroot /sbin/init
INIT
chmod 755 "$T/ird/init"
(cd "$T/ird" && find . | cpio -o -H newc --quiet) > "$D/boot/firmware/initrd.cpio"
cat > "$D/boot/firmware/config.txt" <<'CFG'
[pi4]
kernel=absent-pi4.img
initramfs absent-pi4.cpio followkernel
[pi3]
initramfs initrd.cpio followkernel
[all]
arm_64bit=1
kernel=Image
CFG
echo "console=ttyAMA0,115200 root=LABEL=RASPIROOT rw rootwait" > "$D/boot/firmware/cmdline.txt"
timeout 300 "$RPIFS" qemu --timeout 240 --until "RPIFS-MARKER: " "$D" \
	>"$T/boot-debian.log" 2>&1 </dev/null || { tail -30 "$T/boot-debian.log"; fail "the Debian-like tree did not boot with no flags"; }
grepq "boot partition from boot/firmware" < "$T/boot-debian.log" || fail "boot/firmware not detected"
grepq -- "-initrd $D/boot/firmware/initrd.cpio" < "$T/boot-debian.log" || fail "config.txt's [pi3] initramfs not passed as -initrd"
grepq "RPIFS-INITRAMFS-ROOT: /dev/mmcblk0p2" < "$T/boot-debian.log" ||
	{ grep RPIFS "$T/boot-debian.log"; fail "the initramfs did not find LABEL=RASPIROOT on partition 2"; }
! grepq "RPIFS-INITRAMFS-NOROOT" < "$T/boot-debian.log" || fail "the initramfs did not mount partition 2"

# 10. Raspberry Pi OS-like: boot/firmware, root=PARTUUID=...-02, fstab
#     PARTUUID -01/-02, no initramfs: boots with no flags; blkid shows the
#     disk id the tree asked for.
O=$T/rpios-like
mkdir -p "$O"
cp -a "$R/." "$O/"
mkdir -p "$O/boot/firmware"
mv "$O/boot/Image" "$O/boot/broadcom" "$O/boot/config.txt" "$O/boot/firmware/"
rm -f "$O/boot/cmdline.txt"
printf 'PARTUUID=c0ffee42-01 /boot/firmware vfat defaults 0 2\nPARTUUID=c0ffee42-02 / ext4 defaults,noatime 0 1\n' > "$O/etc/fstab"
echo "console=serial0,115200 console=ttyAMA0,115200 root=PARTUUID=c0ffee42-02 rootfstype=ext4 fsck.repair=yes rootwait" \
	> "$O/boot/firmware/cmdline.txt"
timeout 300 "$RPIFS" qemu --timeout 240 --until "RPIFS-MARKER: " "$O" \
	>"$T/boot-rpios.log" 2>&1 </dev/null || { tail -30 "$T/boot-rpios.log"; fail "the Raspberry Pi OS-like tree did not boot with no flags"; }
rpifs_mount "$O" "$T/mnt-o"
[ "$(blkid -p -o value -s PTUUID "$T/mnt-o/disk.img")" = c0ffee42 ] || fail "blkid: the disk id is not c0ffee42"
[ "$(partx -g -o UUID -n 2 "$T/mnt-o/disk.img")" = c0ffee42-02 ] || fail "partx: partition 2's PARTUUID is not c0ffee42-02"
rpifs_umount "$T/mnt-o"

# 11. Zero 2 W: rpifs qemu --board rpi02w boots the same kernel (its SoC is
#     the Pi 3's) with the Zero 2 W device tree on qemu's raspi3ap (512 MiB),
#     the tree naming no device tree: the board's default is picked.
Z=$T/zero2w
mkdir -p "$Z"
cp -a "$R/." "$Z/"
cp "$CACHE/rootfs/boot/broadcom/bcm2837-rpi-zero-2-w.dtb" "$Z/boot/broadcom/" ||
	fail "no bcm2837-rpi-zero-2-w.dtb in the kernel build's dtbs"
printf 'arm_64bit=1\nkernel=Image\n[pi3]\ndevice_tree=broadcom/bcm2837-rpi-3-b.dtb\n[all]\n' > "$Z/boot/config.txt"
timeout 300 "$RPIFS" qemu --board rpi02w --timeout 240 --until "RPIFS-MARKER: " "$Z" \
	>"$T/boot-zero.log" 2>&1 </dev/null || { tail -30 "$T/boot-zero.log"; fail "the Zero 2 W (raspi3ap) did not boot"; }
grepq -- "-M raspi3ap -m 512M" < "$T/boot-zero.log" || fail "--board rpi02w: not -M raspi3ap -m 512M"
grepq -- "-dtb $Z/boot/broadcom/bcm2837-rpi-zero-2-w.dtb" < "$T/boot-zero.log" ||
	fail "--board rpi02w: not the Zero 2 W device tree (config.txt's [pi3] section must not apply)"
grepq "RPIFS-MODEL: Raspberry Pi Zero 2 W" < "$T/boot-zero.log" ||
	{ grep RPIFS "$T/boot-zero.log"; fail "the guest's device tree is not the Zero 2 W's"; }
mem=$(sed -n 's/^RPIFS-MEM: \([0-9]*\).*/\1/p' "$T/boot-zero.log" | head -1)
[ -n "$mem" ] && [ "$mem" -lt 524288 ] || fail "the Zero 2 W guest has $mem KiB (more than 512 MiB)"
grepq "RPIFS-MODEL: Raspberry Pi 3 Model B" < "$T/boot1.log" || fail "boot 1 was not a Pi 3 B"

cp -p "$T/marker.orig" "$R/etc/marker"   # undo our own edit, times included
[ "$before" = "$(tree_sums "$R")" ] || fail "the tree changed during the boots"
note "ok"
