#!/usr/bin/env bash
# rpifs --dump-regions ROOTFS: the layout it prints is the image a mount
# serves. Checked against the mounted disk.img and sfdisk's table:
#   - the regions tile the disk: sorted, contiguous, from 0 to disk.img's size;
#   - every "file" region holds exactly the named source file's bytes at the
#     printed offset; every "zero" region reads as zeros;
#   - the MBR is at 0, FAT32 regions lie in partition 1, ext4 regions in
#     partition 2;
#   - there are memory, zero and file regions (this tree's ext4 metadata is
#     within the raw budget: packed pages are ext4_bigdir's);
# and with SOURCE_DATE_EPOCH the dump is the same twice. Bad use (a MNT as
# well, a missing ROOTFS) is refused with a message and status 2/1.
. "$TESTS_DIR/lib.sh"
need sfdisk python3

root=$T/root
mkdir -p "$root/boot/overlays" "$root/etc" "$root/usr/lib"
echo "console=serial0,115200 root=/dev/mmcblk0p2 rootwait" > "$root/boot/cmdline.txt"
echo "arm_64bit=1" > "$root/boot/config.txt"
head -c 300000 /dev/urandom > "$root/boot/kernel8.img"
head -c 5000 /dev/urandom > "$root/boot/overlays/x.dtbo"
echo host > "$root/etc/hostname"
head -c 2000000 /dev/urandom > "$root/usr/lib/big.so"
truncate -s 3M "$root/usr/lib/sparse"
printf 'middle' | dd of="$root/usr/lib/sparse" bs=1 seek=1500000 conv=notrunc status=none

export SOURCE_DATE_EPOCH=1700000000
"$RPIFS" --dump-regions "$root" > "$T/dump1" 2>"$T/err" || { cat "$T/err"; fail "--dump-regions exited $?"; }
"$RPIFS" --dump-regions "$root" > "$T/dump2" 2>/dev/null || fail "second --dump-regions failed"
cmp -s "$T/dump1" "$T/dump2" || fail "two dumps of one tree differ"

rpifs_mount "$root" "$T/mnt" --read-only
img=$T/mnt/disk.img
p1s=$(part_start "$img" 1); p1z=$(part_size "$img" 1)
p2s=$(part_start "$img" 2); p2z=$(part_size "$img" 2)

python3 - "$T/dump1" "$img" "$root" "$p1s" "$p1z" "$p2s" "$p2z" <<'PY' || fail "the dump does not describe disk.img"
import os, re, sys
dump, img, root = sys.argv[1:4]
p1s, p1z, p2s, p2z = map(int, sys.argv[4:8])
size = os.stat(img).st_size
errs, pos, kinds = [], 0, {}
def err(m):
    errs.append(m)
with open(img, "rb") as f:
    for line in open(dump):
        if line.startswith("#"):
            continue
        m = re.match(r"\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(.*)$", line.rstrip("\n"))
        if not m:
            err(f"unparsable line: {line!r}")
            continue
        start, end, length, kind, what = int(m[1]), int(m[2]), int(m[3]), m[4], m[5]
        kinds[kind] = kinds.get(kind, 0) + 1
        if start != pos:
            err(f"region at {start} does not follow the previous end {pos}")
        if end - start != length or length <= 0:
            err(f"region {start}-{end}: length {length}")
        pos = end
        if what.startswith("FAT32") or what.startswith("FAT #"):
            if not (p1s <= start and end <= p1s + p1z):
                err(f"{what} at {start}-{end} outside partition 1")
        if what.startswith("ext4"):
            if not (p2s <= start and end <= p2s + p2z):
                err(f"{what} at {start}-{end} outside partition 2")
        if what == "MBR" and start != 0:
            err(f"MBR at {start}")
        f.seek(start)
        data = f.read(length)
        if kind == "zero" and data.count(0) != length:
            err(f"zero region {start}-{end} ({what}) holds non-zero bytes")
        if kind == "file":
            fm = re.match(r".*: (.+) @ (\d+)$", what)
            if not fm:
                err(f"file region without a source: {what!r}")
                continue
            with open(os.path.join(root, fm[1]), "rb") as s:
                s.seek(int(fm[2]))
                want = s.read(length)
            if data != want:
                err(f"file region {start}-{end} differs from {fm[1]} @ {fm[2]}")
if pos != size:
    err(f"regions end at {pos}, disk.img is {size} bytes")
for k in ("memory", "zero", "file"):
    if not kinds.get(k):
        err(f"no {k} region")
for e in errs[:20]:
    print(e, file=sys.stderr)
print(f"# {sum(kinds.values())} regions checked: {kinds}", file=sys.stderr)
sys.exit(1 if errs else 0)
PY
for p in boot/kernel8.img boot/overlays/x.dtbo usr/lib/big.so usr/lib/sparse; do
	grep -q ": $p @ " "$T/dump1" || fail "no region names $p"
done

# Bad use.
set +e
"$RPIFS" --dump-regions "$root" "$T/mnt2" >/dev/null 2>"$T/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "ROOTFS only" "$T/err" || fail "--dump-regions ROOTFS MNT: status $rc, $(cat "$T/err")"
set +e
"$RPIFS" --dump-regions "$T/nonexistent" >/dev/null 2>"$T/err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "nonexistent" "$T/err" || fail "--dump-regions of a missing tree: status $rc, $(cat "$T/err")"
note "ok"
