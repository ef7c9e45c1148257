#!/usr/bin/env bash
# The hole map through the mount: a SEEK_DATA/SEEK_HOLE walk of disk.img.
# Every hole reads as zeros; the data bytes are at least what the layout
# serves as non-zero (--dump-regions) and at most what the filesystems
# count as used (the MBR; FAT32's reserved sectors, both FATs and used
# clusters; ext4's used blocks); the map is the same across two mounts; a
# block written into a hole becomes data, exactly one block. A copy made by
# `cp --sparse=always`, its holes then filled with random bytes (what a
# card keeps there), checks clean and holds the tree.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
. "$TESTS_DIR/image/holes_lib.sh"
need python3 sfdisk e2fsck debugfs dumpe2fs fsck.fat mcopy

holes_tree "$T/root"
rpifs_mount "$T/root" "$T/mnt"
img=$T/mnt/disk.img
size=$(stat -c %s "$img")
data=$($HOLES walk "$img" "$T/a.json") || fail "walk of disk.img: $data"
note "disk.img: $size bytes, $data bytes of data"

# At least every byte served as non-zero.
nonzero=$("$RPIFS" --dump-regions "$T/root" 2>/dev/null |
	awk '!/^#/ && $4 != "zero" { s += $3 } END { print s + 0 }')
[ "$nonzero" -gt 0 ] && [ "$data" -ge "$nonzero" ] ||
	fail "data $data < the $nonzero bytes --dump-regions serves as non-zero"
# At most what the filesystems use.
p1=$(part_start "$img" 1); p2=$(part_start "$img" 2); z2=$(part_size "$img" 2)
read -r fatmeta cluster < <($HOLES fat "$img" "$p1")
dd if="$img" of="$T/p1.img" bs=1M iflag=skip_bytes,count_bytes skip="$p1" \
	count="$(part_size "$img" 1)" status=none
used=$(fsck.fat -n "$T/p1.img" | sed -n 's|.* \([0-9]*\)/[0-9]* clusters$|\1|p')
dd if="$img" of="$T/p2.img" bs=1M iflag=skip_bytes,count_bytes skip="$p2" count="$z2" status=none
blocks=$(dumpe2fs -h "$T/p2.img" 2>/dev/null | sed -n 's/^Block count: *//p')
free=$(dumpe2fs -h "$T/p2.img" 2>/dev/null | sed -n 's/^Free blocks: *//p')
bound=$((512 + fatmeta + used * cluster + (blocks - free) * 4096))
note "bounds: non-zero $nonzero <= data $data <= used $bound (FAT meta $fatmeta, $used" \
	"clusters of $cluster, ext4 $((blocks - free)) blocks)"
[ "$data" -le "$bound" ] || fail "data $data > the $bound bytes the filesystems use"
[ "$data" -lt $((size / 4)) ] || fail "data $data is most of the $size-byte image"
# The tail of partition 2 (ext4's free blocks) and the gap before p1 are holes.
python3 - "$T/a.json" "$p1" "$size" <<'PY' || fail "a known hole is data"
import json, sys
m = json.load(open(sys.argv[1])); p1, size = int(sys.argv[2]), int(sys.argv[3])
def data(o): return any(s <= o < e for s, e in m["runs"])
assert data(0) and not data(512) and not data(p1 - 1) and data(p1), "MBR, gap, p1"
assert not data(size - 1), "the last byte"
PY

# The same map from a second mount.
rpifs_mount "$T/root" "$T/mnt2"
$HOLES walk "$T/mnt2/disk.img" "$T/b.json" >/dev/null || fail "walk of the second mount"
cmp -s "$T/a.json" "$T/b.json" || fail "two mounts of one tree, two hole maps"
rpifs_umount "$T/mnt2"

# cp --sparse=always, garbage in the holes: still clean, still the tree.
cp --sparse=always "$img" "$T/copy.img"
cmp "$img" "$T/copy.img" || fail "cp --sparse=always copy differs"
note "cp --sparse=always: $(du -k "$T/copy.img" | cut -f1) KiB allocated"
g=$($HOLES garbage "$T/copy.img" "$T/a.json" 1)
note "$g bytes of garbage written to its holes"
check_target "$T/copy.img" "$T/root"

# A block written into a hole is data: exactly that block.
blk=$(python3 -c "import json; m=json.load(open('$T/a.json')); print(-(-m['runs'][-1][1] // 4096) + 2)")
[ $((blk * 4096 + 8192)) -le "$size" ] || fail "no hole after the last run"
printf 'written' | dd of="$img" bs=1 seek=$((blk * 4096 + 100)) conv=notrunc status=none
data2=$($HOLES walk "$img" "$T/c.json") || fail "walk after a write: $data2"
[ "$data2" -eq $((data + 4096)) ] || fail "after a 7-byte write into a hole: $data2 data bytes, want $((data + 4096))"
python3 -c "
import json; m = json.load(open('$T/c.json'))
assert [$blk * 4096, $blk * 4096 + 4096] in m['runs'], m['runs'][-3:]" ||
	fail "the written block is not its own data run"
