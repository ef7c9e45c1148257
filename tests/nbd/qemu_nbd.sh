#!/usr/bin/env bash
# rpifs qemu --nbd: nbdkit (the rpifs plugin) serves ROOTFS on a Unix
# socket and qemu gets -drive file=nbd+unix:///disk?socket=SOCK. A stand-in
# qemu (--qemu) copies the drive it was given with nbdcopy: the bytes equal
# the FUSE disk.img. Where /dev/fuse does not exist (a mount namespace
# with an empty /dev), rpifs qemu says so and serves over NBD by itself.
# (The real boot through NBD is in tests/boot/boot.sh, slow suite.)
. "$TESTS_DIR/nbd/nbd_lib.sh"
# rpifs qemu runs nbdkit itself; under TSan it would never exit (nbd_lib.sh).
[ -z "$NBD_SAN" ] || skip "a sanitizer build: nbdkit hangs at exit with the runtime preloaded"

make_tree "$T/root"
mkdir -p "$T/root/boot/broadcom"
echo dtb > "$T/root/boot/broadcom/bcm2837-rpi-3-b.dtb"
touch -d @1690000000 "$T/root/boot/broadcom/bcm2837-rpi-3-b.dtb" "$T/root/boot/broadcom"

rpifs_mount "$T/root" "$T/mnt"
cp "$T/mnt/disk.img" "$T/fuse.img"
rpifs_umount "$T/mnt"

# The stand-in: find -drive's file=, copy it to $OUT.
cat > "$T/fakeqemu" <<'SH'
#!/bin/sh
unset LD_PRELOAD
while [ $# -gt 0 ]; do
	[ "$1" = -drive ] && drive=$2
	shift
done
uri=${drive#file=}
uri=${uri%%,*}
echo "fakeqemu: drive $uri"
case $uri in nbd+unix://*) ;; *) echo "fakeqemu: not an NBD drive"; exit 3;; esac
nbdcopy "$uri" "$OUT"
SH
chmod +x "$T/fakeqemu"

# --dry-run prints both commands.
rpifs_qemu --nbd --dry-run "$T/root" >"$T/dry" 2>&1 || { cat "$T/dry"; fail "--nbd --dry-run"; }
# The plugin detects the boot directory as the mount does: no key unless
# --boot-dir (or another mount option) is given, which is passed as a key.
grep -q "rpifs: qemu: nbd: nbdkit .*nbdkit-rpifs-plugin.so rootfs=$T/root\$" "$T/dry" ||
	{ cat "$T/dry"; fail "--dry-run: no nbdkit command"; }
rpifs_qemu --nbd --dry-run --boot-dir boot --root-label R1 "$T/root" >"$T/dry" 2>&1 || { cat "$T/dry"; fail "--nbd --dry-run --boot-dir"; }
grep -q "nbdkit-rpifs-plugin.so rootfs=$T/root boot-dir=boot root-label=R1\$" "$T/dry" ||
	{ cat "$T/dry"; fail "--dry-run: --boot-dir/--root-label not passed as keys"; }
grep -q "file=nbd+unix:///disk?socket=DIR/sock,if=sd,format=raw" "$T/dry" ||
	{ cat "$T/dry"; fail "--dry-run: no nbd drive"; }
rpifs_qemu --nbd --image "$T/fuse.img" "$T/root" >/dev/null 2>&1 && fail "--nbd with --image accepted"

OUT=$T/nbd.img rpifs_qemu --nbd --qemu "$T/fakeqemu" "$T/root" >"$T/run" 2>&1 ||
	{ cat "$T/run"; fail "rpifs qemu --nbd"; }
cmp "$T/fuse.img" "$T/nbd.img" || fail "qemu's NBD drive differs from the FUSE disk.img"
for d in /tmp/rpifs-nbd.*/pid; do
	if [ -e "$d" ]; then fail "nbdkit's pidfile $d left behind"; fi
done

# No /dev/fuse: the fallback, with its message.
if unshare -m true 2>/dev/null; then
	OUT=$T/fallback.img unshare -m bash -c '
		set -e
		mount -t tmpfs none /dev
		mknod -m 666 /dev/null c 1 3
		mknod -m 666 /dev/urandom c 1 9
		exec "$0" qemu --qemu "$1" "$2"' "$RPIFS" "$T/fakeqemu" "$T/root" >"$T/fb" 2>&1 ||
		{ cat "$T/fb"; fail "rpifs qemu without /dev/fuse"; }
	grep -q "FUSE cannot mount here: serving ROOTFS over NBD" "$T/fb" ||
		{ cat "$T/fb"; fail "no message about the NBD fallback"; }
	cmp "$T/fuse.img" "$T/fallback.img" || fail "the fallback's drive differs from disk.img"
else
	note "unshare -m not permitted: fallback not checked"
fi
exit 0
