#!/usr/bin/env bash
# The plugin answers base:allocation from the engine's hole map: the data
# runs of the disk export are the runs a SEEK_DATA/SEEK_HOLE walk of the
# FUSE disk.img finds, byte for byte, and the root export's are the same
# runs inside partition 2; every hole reads zeros; a block written into a
# hole on a connection is data on that connection's map; nbdcopy's copy
# (which skips holes) equals disk.img.
. "$TESTS_DIR/nbd/nbd_lib.sh"
need sfdisk cmp

make_tree "$T/root"
head -c 1048576 /dev/urandom > "$T/root/usr/bin/sparse"
truncate -s 5M "$T/root/usr/bin/sparse"

rpifs_mount "$T/root" "$T/mnt"
fuse_data=$(python3 "$TESTS_DIR/image/holes.py" walk "$T/mnt/disk.img" "$T/fuse.json") ||
	fail "SEEK_DATA walk of disk.img"
cp "$T/mnt/disk.img" "$T/fuse.img"
rpifs_umount "$T/mnt"

map="$NBDPY $TESTS_DIR/nbd/nbd_map.py"
serve "$T/root" -- "$map"' "$uri" '"$T/nbd.json"' --write > '"$T/data"' &&
	'"$map"' "nbd+unix:///root?socket=$unixsocket" '"$T/root.json"' > /dev/null &&
	nbdcopy "$uri" '"$T/nbd.img" || fail "nbd_map / nbdcopy failed"
nbd_data=$(cat "$T/data")
[ "$nbd_data" = "$fuse_data" ] || fail "data bytes: NBD $nbd_data, FUSE $fuse_data"
cmp -s "$T/nbd.json" "$T/fuse.json" || fail "the NBD map differs from the SEEK_DATA map"
size=$(stat -c %s "$T/fuse.img")
[ "$fuse_data" -lt $((size / 2)) ] || fail "no holes to speak of: $fuse_data of $size bytes"
cmp "$T/nbd.img" "$T/fuse.img" || fail "nbdcopy's copy differs from disk.img"

# The root export: the disk's runs inside partition 2, shifted.
start=$(sfdisk -J "$T/fuse.img" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]; print(p["partitions"][1]["start"] * p.get("sectorsize", 512), p["partitions"][1]["size"] * p.get("sectorsize", 512))')
python3 - "$T/fuse.json" "$T/root.json" $start <<'PY' || fail "the root export's map is not partition 2's"
import json, sys
disk, root = json.load(open(sys.argv[1]))["runs"], json.load(open(sys.argv[2]))["runs"]
start, size = int(sys.argv[3]), int(sys.argv[4])
want = [[max(s, start) - start, min(e, start + size) - start]
        for s, e in disk if e > start and s < start + size]
sys.exit(0 if want == root else "root export map %s... != %s..." % (root[:4], want[:4]))
PY
note "data: $nbd_data of $size bytes, $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["runs"]))' "$T/nbd.json") runs, same as SEEK_DATA"
echo ok
