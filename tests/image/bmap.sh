#!/usr/bin/env bash
# MNT/disk.img.bmap: `bmaptool copy MNT/disk.img TARGET` finds it by name,
# verifies its checksums and writes only the mapped blocks. The target, a
# loop device (as root) or a file pre-filled with random bytes, keeps that
# garbage in the holes and still checks clean (fsck.fat -n, e2fsck -fn) and
# holds the tree (mtools, debugfs). The bmap maps every data byte of the
# SEEK_DATA walk, is the same for two mounts, follows a write to disk.img
# (a stale copy of it is refused by bmaptool: its checksums are real), and
# a bmap edited by hand is refused (the file checksum).
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
. "$TESTS_DIR/image/holes_lib.sh"
need python3 sfdisk e2fsck debugfs fsck.fat mcopy bmaptool

holes_tree "$T/root"
rpifs_mount "$T/root" "$T/mnt"
img=$T/mnt/disk.img
size=$(stat -c %s "$img")
bmap=$T/mnt/disk.img.bmap
[ -f "$bmap" ] || fail "no disk.img.bmap in the mount"
cp "$bmap" "$T/a.bmap"
[ "$(stat -c %s "$T/a.bmap")" -eq "$(stat -c %s "$bmap")" ] ||
	fail "disk.img.bmap: its size ($(stat -c %s "$bmap")) is not its length"
mapped=$($HOLES bmap "$T/a.bmap" "$T/bmap.json")
data=$($HOLES walk "$img" "$T/walk.json")
note "disk.img: $size bytes, $data data, $mapped mapped by the bmap"
# Every data byte lies in a mapped block; mapped blocks hold data.
python3 - "$T/walk.json" "$T/bmap.json" <<'PY' || fail "the bmap and the walk disagree"
import json, sys
w = json.load(open(sys.argv[1]))["runs"]; b = json.load(open(sys.argv[2]))["runs"]
for s, e in w:
    assert any(bs <= s and e <= be for bs, be in b), ("data run not mapped", s, e)
for bs, be in b:
    assert any(s < be and bs < e for s, e in w), ("mapped range without data", bs, be)
PY

# The same bmap from a second mount of the tree.
rpifs_mount "$T/root" "$T/mnt2"
cmp -s "$T/a.bmap" "$T/mnt2/disk.img.bmap" || fail "two mounts, two bmaps"
rpifs_umount "$T/mnt2"

# bmaptool copy to a file, then garbage in the holes.
bmaptool copy "$img" "$T/file.img" 2> "$T/log" || { cat "$T/log" >&2; fail "bmaptool copy failed"; }
grep -q "discovered bmap file" "$T/log" || { cat "$T/log" >&2; fail "bmaptool did not find disk.img.bmap"; }
cmp "$img" "$T/file.img" || fail "bmaptool's copy differs from disk.img"
$HOLES garbage "$T/file.img" "$T/bmap.json" 2 >/dev/null
check_target "$T/file.img" "$T/root"

# bmaptool copy to a loop device holding random bytes (as root).
if [ "$(id -u)" -eq 0 ] && command -v losetup >/dev/null && loop=$(losetup -f 2>/dev/null); then
	head -c "$size" /dev/urandom > "$T/dev.img"
	loop=$(losetup -f --show "$T/dev.img") || fail "losetup"
	bmaptool copy "$img" "$loop" 2> "$T/log" ||
		{ losetup -d "$loop"; cat "$T/log" >&2; fail "bmaptool copy to $loop failed"; }
	losetup -d "$loop"
	check_target "$T/dev.img" "$T/root"
	python3 - "$T/dev.img" "$T/bmap.json" <<'PY' || fail "the loop device's holes lost their garbage"
import json, os, sys
m = json.load(open(sys.argv[2])); f = os.open(sys.argv[1], os.O_RDONLY)
end = m["runs"][-1][1]
assert os.pread(f, 4096, end + 4096) != bytes(4096), "bmaptool wrote the holes"
PY
else
	note "not root or no loop device: the loop-device copy is skipped"
fi

# A bmap edited by hand is refused (its own checksum).
sed 's|<Range chksum="\(.\)|<Range chksum="X|' "$T/a.bmap" > "$T/bad.bmap"
if bmaptool copy --bmap "$T/bad.bmap" "$img" "$T/x.img" 2>/dev/null; then
	fail "bmaptool accepted an edited bmap"
fi

# Writes to disk.img, one into data, one into a hole: the bmap follows
# (the hole's block mapped, new checksums); the old one no longer matches
# the image, and bmaptool says so.
last=$(python3 -c "import json; print(json.load(open('$T/walk.json'))['runs'][-1][0])")
printf 'written' | dd of="$img" bs=1 seek=$((last + 100)) conv=notrunc status=none
printf 'written' | dd of="$img" bs=1 seek=$((size - 4096 * 3)) conv=notrunc status=none
cp "$bmap" "$T/b.bmap"
$HOLES bmap "$T/b.bmap" "$T/b.json" >/dev/null
python3 -c "
import json; r = json.load(open('$T/b.json'))['runs']
assert [$size - 4096 * 3, $size - 4096 * 2] in r, r[-2:]" || fail "the written hole block is not mapped"
if bmaptool copy --bmap "$T/a.bmap" "$img" "$T/x.img" 2>/dev/null; then
	fail "bmaptool copied with a stale bmap: its checksums do not cover the data"
fi
bmaptool copy "$img" "$T/y.img" 2> "$T/log" || { cat "$T/log" >&2; fail "bmaptool copy after a write"; }
cmp "$img" "$T/y.img" || fail "the copy after a write differs from disk.img"
