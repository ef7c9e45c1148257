#!/usr/bin/env bash
# The partition table, read by sfdisk: dos label, the disk id, partition 1 at
# 4 MiB, type c, bootable, 256 MiB; partition 2 type 83 right after it up to
# the end; the disk size a power of two. Then the options that change it.
. "$TESTS_DIR/lib.sh"
need sfdisk python3

mkdir -p "$T/root/boot" "$T/root/etc"
echo "arm_64bit=1" > "$T/root/boot/config.txt"
echo "hello" > "$T/root/etc/hostname"

# check_table IMG ID P1START P1SIZE [DISKSIZE]
check_table() {
	sfdisk -J "$1" > "$T/table.json" || return 1
	python3 - "$@" <<'PY'
import json, os, sys
img, want_id, p1s, p1z = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
want_size = int(sys.argv[5]) if len(sys.argv) > 5 else None
t = json.load(open(os.environ["T"] + "/table.json"))["partitiontable"]
size = os.stat(img).st_size
errs = []
def check(c, m):
    if not c: errs.append(m)
check(t["label"] == "dos", f"label {t['label']}")
check(t["id"] == want_id, f"id {t['id']} != {want_id}")
p = t["partitions"]
check(len(p) == 2, f"{len(p)} partitions")
a, b = p[0], p[1]
check(a["start"] * 512 == p1s, f"p1 start {a['start']*512} != {p1s}")
check(a["size"] * 512 == p1z, f"p1 size {a['size']*512} != {p1z}")
check(a["type"] == "c", f"p1 type {a['type']}")
check(a.get("bootable") is True, "p1 not bootable")
check(b["type"] == "83", f"p2 type {b['type']}")
check(b["start"] * 512 >= p1s + p1z, "p2 overlaps p1")
check(b["start"] * 512 % p1s == 0, f"p2 start {b['start']*512} not aligned to {p1s}")
check(not b.get("bootable"), "p2 bootable")
check((b["start"] + b["size"]) * 512 == size, f"p2 ends at {(b['start']+b['size'])*512}, disk {size}")
if want_size is None:
    check(size & (size - 1) == 0, f"disk size {size} not a power of two")
else:
    check(size == want_size, f"disk size {size} != {want_size}")
for e in errs: print("  " + e)
sys.exit(1 if errs else 0)
PY
}

# Default: derived id, 4 MiB / 256 MiB, power-of-two size.
rpifs_mount "$T/root" "$T/m1"
id=$(sfdisk -J "$T/m1/disk.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["id"])')
[ "$id" != 0x00000000 ] || fail "disk id is 0"
check_table "$T/m1/disk.img" "$id" $((4 << 20)) $((256 << 20)) || fail "default table"
# The MBR signature and sector 0 as a disk tool sees it.
sig=$(dd if="$T/m1/disk.img" bs=1 skip=510 count=2 status=none | od -An -tx1 | tr -d ' \n')
[ "$sig" = 55aa ] || fail "MBR signature $sig"
rpifs_umount "$T/m1"

# --disk-id, --align, --boot-size.
rpifs_mount "$T/root" "$T/m2" --disk-id 0xdeadbeef --align 8M --boot-size 64M
check_table "$T/m2/disk.img" 0xdeadbeef $((8 << 20)) $((64 << 20)) || fail "--disk-id/--align/--boot-size"
rpifs_umount "$T/m2"

# The id in boot/cmdline.txt wins over the derived one.
echo "console=ttyAMA0 root=PARTUUID=0badf00d-02 rootwait" > "$T/root/boot/cmdline.txt"
rpifs_mount "$T/root" "$T/m3"
check_table "$T/m3/disk.img" 0x0badf00d $((4 << 20)) $((256 << 20)) || fail "id from cmdline.txt"
rpifs_umount "$T/m3"

# --size forces the disk size (not a power of two on request).
rpifs_mount "$T/root" "$T/m4" --size 600M
check_table "$T/m4/disk.img" 0x0badf00d $((4 << 20)) $((256 << 20)) $((600 << 20)) || fail "--size 600M"
rpifs_umount "$T/m4"

# --size too small: refused with the size needed, nothing mounted.
mkdir -p "$T/m5"
if "$RPIFS" --size 100M "$T/root" "$T/m5" 2>"$T/err"; then
	fusermount3 -u "$T/m5"; fail "--size 100M accepted"
fi
grep -q -- "--size 100 MiB is too small: the image needs at least" "$T/err" || { cat "$T/err"; fail "no size-needed message"; }
note "ok"
