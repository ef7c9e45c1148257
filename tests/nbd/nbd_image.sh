#!/usr/bin/env bash
# nbdkit rpifs serves the bytes the FUSE mount serves: the disk export equals
# MNT/disk.img byte for byte (default options and a set of layout keys), the
# root export equals partition 2 (e2fsck -fn clean), the boot export
# partition 1 (fsck.fat -n clean), and nbdinfo --list shows the three
# exports with their descriptions.
. "$TESTS_DIR/nbd/nbd_lib.sh"
need e2fsck fsck.fat sfdisk blkid

make_tree "$T/root"

# The FUSE disk.img with the mount's options vs the disk export with the
# plugin's keys of the same names.
check_same() {
	local name=$1 fuse_opts=$2; shift 2
	rpifs_mount "$T/root" "$T/mnt" $fuse_opts
	cp "$T/mnt/disk.img" "$T/fuse-$name.img"
	rpifs_umount "$T/mnt"
	serve "$T/root" "$@" -- 'nbdcopy "$uri" '"$T/nbd-$name.img" ||
		fail "$name: nbdkit/nbdcopy failed"
	cmp "$T/fuse-$name.img" "$T/nbd-$name.img" ||
		fail "$name: the disk export differs from the FUSE disk.img"
}
check_same default ""
check_same keys "--boot-size 40M --disk-id 0x0badcafe --root-label nbdroot --boot-label NBDBOOT --free 40 --align 1M --root-owner" \
	boot-size=40M disk-id=0x0badcafe root-label=nbdroot boot-label=NBDBOOT free=40 align=1M root-owner=true
cmp -s "$T/fuse-default.img" "$T/fuse-keys.img" && fail "the keys changed nothing"
sfdisk -d "$T/nbd-keys.img" | grepq 'label-id: 0x0badcafe' || fail "disk-id=0x0badcafe not in the MBR"

# A tree from elsewhere (boot/firmware, labels in fstab and cmdline.txt):
# the plugin detects and names it as the mount does, with no keys.
mkdir -p "$T/deb/boot/firmware" "$T/deb/etc"
echo "arm_64bit=1" > "$T/deb/boot/firmware/config.txt"
echo "root=LABEL=RASPIROOT rootwait" > "$T/deb/boot/firmware/cmdline.txt"
printf 'LABEL=RASPIROOT / ext4 rw 0 1\nLABEL=RASPIFIRM /boot/firmware vfat rw 0 2\n' > "$T/deb/etc/fstab"
rpifs_mount "$T/deb" "$T/mnt"
cp "$T/mnt/disk.img" "$T/fuse-deb.img"
rpifs_umount "$T/mnt"
serve "$T/deb" -- 'nbdcopy "$uri" '"$T/nbd-deb.img" || fail "deb: nbdkit/nbdcopy failed"
cmp "$T/fuse-deb.img" "$T/nbd-deb.img" || fail "deb: the disk export differs from the FUSE disk.img"
extract_part "$T/nbd-deb.img" 1 "$T/p1"
[ "$(blkid -p -o value -s LABEL "$T/p1")" = RASPIFIRM ] || fail "deb: FAT label over NBD"
rm -f "$T/fuse-deb.img" "$T/nbd-deb.img" "$T/p1"

# Partition exports, against the partitions of the disk export.
img=$T/nbd-default.img
extract_part "$img" 1 "$T/p1"
extract_part "$img" 2 "$T/p2"
serve "$T/root" -- 'nbdcopy "nbd+unix:///root?socket=$unixsocket" '"$T/root.img"' &&
	nbdcopy "nbd+unix:///boot?socket=$unixsocket" '"$T/boot.img" || fail "nbdcopy of root/boot failed"
cmp "$T/p2" "$T/root.img" || fail "the root export differs from partition 2"
cmp "$T/p1" "$T/boot.img" || fail "the boot export differs from partition 1"
e2fsck -fn "$T/root.img" >"$T/e2fsck.out" 2>&1 || { cat "$T/e2fsck.out"; fail "e2fsck -fn on the root export"; }
fsck.fat -n "$T/boot.img" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "fsck.fat -n on the boot export"; }

# The export list.
serve "$T/root" -- 'nbdinfo --list --json "$uri"' > "$T/list.json" || fail "nbdinfo --list"
python3 - "$T/list.json" <<'PY' || fail "export list"
import json, sys
ex = {e["export-name"]: e for e in json.load(open(sys.argv[1]))["exports"]}
assert sorted(ex) == ["boot", "disk", "root"], sorted(ex)
assert "ext4" in ex["root"]["description"], ex["root"]
assert "FAT32" in ex["boot"]["description"], ex["boot"]
assert "SD-card" in ex["disk"]["description"], ex["disk"]
PY
# The default export (an empty name) is the disk.
serve "$T/root" -- 'nbdinfo --size "nbd+unix://?socket=$unixsocket"' > "$T/size" || fail "nbdinfo --size"
[ "$(cat "$T/size")" = "$(stat -c %s "$img")" ] || fail "default export size $(cat "$T/size")"
# An unknown export is refused.
serve "$T/root" -- 'nbdinfo "nbd+unix:///nope?socket=$unixsocket"' >/dev/null 2>&1 &&
	fail "export nope was served"
exit 0
