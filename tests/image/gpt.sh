#!/usr/bin/env bash
# --label gpt: the GPT libfdisk writes, read by tools nobody here wrote.
# sfdisk -J: label gpt, Microsoft basic data at 4 MiB (256 MiB, "boot"),
# Linux filesystem after it ending before the backup GPT ("rootfs"), the
# disk a power of two; sgdisk -v: both headers, their CRCs, the entries;
# blkid: PTTYPE/PTUUID of the disk, each partition's filesystem; fsck.fat
# -n and e2fsck -fn clean. Determinism: two mounts (and another
# SOURCE_DATE_EPOCH-free clock) give one sha256; another tree other GUIDs.
# A tree whose cmdline.txt says root=PARTUUID=<uuid> is gpt with no option,
# partition 2 carrying that GUID (fstab's boot entry: partition 1's). The
# contradictions: an MBR PARTUUID with --label gpt, a GPT one with --label
# dos. --dump-regions names the GPT and its backup; rpifs export and flash
# write the backup (sgdisk -v of the file); nbdkit label=gpt serves the same bytes.
. "$TESTS_DIR/lib.sh"
need sfdisk sgdisk blkid fsck.fat e2fsck python3

mkdir -p "$T/root/boot" "$T/root/etc"
echo "arm_64bit=1" > "$T/root/boot/config.txt"
echo "console=ttyAMA0 root=LABEL=rootfs rootwait" > "$T/root/boot/cmdline.txt"
echo "hello" > "$T/root/etc/hostname"

# check_gpt IMG [P2UUID [P1UUID]]: the table as sfdisk -J reads it.
check_gpt() {
	sfdisk -J "$1" > "$T/table.json" || return 1
	python3 - "$@" <<'PY'
import json, os, sys
img = sys.argv[1]
want2 = sys.argv[2].upper() if len(sys.argv) > 2 and sys.argv[2] else None
want1 = sys.argv[3].upper() if len(sys.argv) > 3 else None
t = json.load(open(os.environ["T"] + "/table.json"))["partitiontable"]
size = os.stat(img).st_size
errs = []
def check(c, m):
    if not c: errs.append(m)
check(t["label"] == "gpt", f"label {t['label']}")
p = t["partitions"]
check(len(p) == 2, f"{len(p)} partitions")
a, b = p[0], p[1]
check(a["start"] * 512 == 4 << 20, f"p1 start {a['start']*512}")
check(a["size"] * 512 == 256 << 20, f"p1 size {a['size']*512}")
check(a["type"] == "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", f"p1 type {a['type']}")
check(b["type"] == "0FC63DAF-8483-4772-8E79-3D69D8477DE4", f"p2 type {b['type']}")
check(a.get("name") == "boot" and b.get("name") == "rootfs", f"names {a.get('name')} {b.get('name')}")
check(b["start"] * 512 == (4 + 256) << 20, f"p2 start {b['start']*512}")
end = (b["start"] + b["size"]) * 512
check(end <= size - 33 * 512, f"p2 ends at {end}, into the backup GPT (disk {size})")
check(end > size - 33 * 512 - 4096, f"p2 ends at {end}, more than 4 KiB before the backup GPT")
check(t["lastlba"] == size // 512 - 34, f"last usable LBA {t['lastlba']}")
check(size & (size - 1) == 0, f"disk size {size} not a power of two")
check(a["uuid"] != b["uuid"], "one GUID for both partitions")
if want2: check(b["uuid"] == want2, f"p2 uuid {b['uuid']} != {want2}")
if want1: check(a["uuid"] == want1, f"p1 uuid {a['uuid']} != {want1}")
print(t["id"], a["uuid"], b["uuid"])
for e in errs: print("  " + e, file=sys.stderr)
sys.exit(1 if errs else 0)
PY
}

# check_fs IMG: sgdisk -v, blkid, fsck of both partitions.
check_fs() {
	sgdisk -v "$1" > "$T/sgdisk" 2>&1 || { cat "$T/sgdisk"; fail "sgdisk -v $1"; }
	grepq "No problems found" < "$T/sgdisk" || { cat "$T/sgdisk"; fail "sgdisk -v: problems in $1"; }
	blkid -p -o export "$1" > "$T/blkid" || fail "blkid $1"
	grepq -x PTTYPE=gpt < "$T/blkid" || { cat "$T/blkid"; fail "blkid: not PTTYPE=gpt"; }
	extract_part "$1" 1 "$T/p1"
	extract_part "$1" 2 "$T/p2"
	[ "$(blkid -p -o value -s TYPE "$T/p1")" = vfat ] || fail "partition 1 is not vfat for blkid"
	[ "$(blkid -p -o value -s TYPE "$T/p2")" = ext4 ] || fail "partition 2 is not ext4 for blkid"
	fsck.fat -n "$T/p1" > "$T/fsck" 2>&1 || { cat "$T/fsck"; fail "fsck.fat -n of partition 1"; }
	e2fsck -fn "$T/p2" > "$T/fsck" 2>&1 || { cat "$T/fsck"; fail "e2fsck -fn of partition 2"; }
	rm -f "$T/p1" "$T/p2"
}

# 1. --label gpt: the table, the checkers, the disk's GUID as blkid sees it.
rpifs_mount "$T/root" "$T/m1" --label gpt
ids1=$(check_gpt "$T/m1/disk.img") || fail "--label gpt table"
check_fs "$T/m1/disk.img"
ptuuid=$(blkid -p -o value -s PTUUID "$T/m1/disk.img")
[ "${ptuuid^^}" = "${ids1%% *}" ] || fail "blkid PTUUID $ptuuid, sfdisk ${ids1%% *}"
sum1=$(sha256sum < "$T/m1/disk.img")
cp "$T/m1/disk.img" "$T/mount.img"
rpifs_umount "$T/m1"

# 2. The same tree again, under another clock: the same bytes.
rpifs_mount "$T/root" "$T/m2" --label gpt
[ "$(sha256sum < "$T/m2/disk.img")" = "$sum1" ] || fail "two mounts of one tree differ"
rpifs_umount "$T/m2"
# SOURCE_DATE_EPOCH changes ext4's times, not one byte of either GPT copy.
SOURCE_DATE_EPOCH=1234567890 rpifs_mount "$T/root" "$T/m2" --label gpt
cmp -n 17408 "$T/m2/disk.img" "$T/mount.img" || fail "SOURCE_DATE_EPOCH changed the primary GPT"
cmp -i $(($(stat -c %s "$T/mount.img") - 16896)) "$T/m2/disk.img" "$T/mount.img" ||
	fail "SOURCE_DATE_EPOCH changed the backup GPT"
rpifs_umount "$T/m2"
if command -v faketime >/dev/null; then
	mkdir -p "$T/m2"
	faketime '2031-01-01 00:00:00' "$RPIFS" --label gpt "$T/root" "$T/m2" || fail "mount under faketime"
	_MOUNTS+=("$T/m2")
	[ "$(sha256sum < "$T/m2/disk.img")" = "$sum1" ] || fail "the clock changed the bytes"
	rpifs_umount "$T/m2"
fi

# 3. Another tree: other GUIDs.
echo "other" > "$T/root/etc/hostname"
rpifs_mount "$T/root" "$T/m3" --label gpt
ids3=$(check_gpt "$T/m3/disk.img") || fail "table of another tree"
for i in 1 2 3; do
	[ "$(cut -d' ' -f$i <<< "$ids1")" != "$(cut -d' ' -f$i <<< "$ids3")" ] ||
		fail "another tree, the same GUID #$i: $ids1 / $ids3"
done
rpifs_umount "$T/m3"
echo "hello" > "$T/root/etc/hostname"

# 4. The dos default is untouched; --dump-regions names both GPT copies.
rpifs_mount "$T/root" "$T/m4"
sfdisk -J "$T/m4/disk.img" | grepq '"label": "dos"' || fail "the default is not dos"
rpifs_umount "$T/m4"
"$RPIFS" --label gpt --dump-regions "$T/root" > "$T/regions" 2>/dev/null || fail "--dump-regions"
size=$(stat -c %s "$T/mount.img")
grepq -E "^ +512 +17408 +16896 memory GPT$" < "$T/regions" || { cat "$T/regions"; fail "no primary GPT region"; }
grepq -E "^ +$((size - 16896)) +$size +16896 memory GPT backup$" < "$T/regions" ||
	{ tail -3 "$T/regions"; fail "no backup GPT region at the end"; }

# 5. A tree naming GPT partitions: gpt with no option, their GUIDs.
U2=0d2a1b1c-6a5e-4d3b-9c1e-2b3a4c5d6e7f U1=a0a1a2a3-a4a5-46a7-88a9-aaabacadaeaf
mkdir -p "$T/pi5/boot/firmware" "$T/pi5/etc"
echo "arm_64bit=1" > "$T/pi5/boot/firmware/config.txt"
echo "console=serial0,115200 root=PARTUUID=$U2 rootfstype=ext4 rootwait" > "$T/pi5/boot/firmware/cmdline.txt"
printf 'PARTUUID=%s /boot/firmware vfat defaults 0 2\nPARTUUID=%s / ext4 defaults 0 1\n' "$U1" "$U2" > "$T/pi5/etc/fstab"
mkdir -p "$T/m5"
"$RPIFS" "$T/pi5" "$T/m5" 2> "$T/log" || { cat "$T/log"; fail "mount of a tree naming GPT PARTUUIDs"; }
_MOUNTS+=("$T/m5")
grepq "partition table gpt: $T/pi5/.*names a GPT partition" < "$T/log" || { cat "$T/log"; fail "no notice of gpt chosen"; }
check_gpt "$T/m5/disk.img" "$U2" "$U1" > /dev/null || fail "GUIDs from the tree"
check_fs "$T/m5/disk.img"
rpifs_umount "$T/m5"

# 6. Contradictions: refused, naming file:line and the option, nothing mounted.
mkdir -p "$T/m6"
if "$RPIFS" --label dos "$T/pi5" "$T/m6" 2> "$T/err"; then
	fusermount3 -u "$T/m6"; fail "--label dos with a GPT PARTUUID accepted"
fi
grepq -e "$T/pi5/etc/fstab:2: PARTUUID=$U2 is a GPT partition's id, but --label dos" < "$T/err" ||
	{ cat "$T/err"; fail "no message for --label dos"; }
echo "root=PARTUUID=1a2b3c4d-02 rootwait" > "$T/root/boot/cmdline.txt"
if "$RPIFS" --label gpt "$T/root" "$T/m6" 2> "$T/err"; then
	fusermount3 -u "$T/m6"; fail "--label gpt with an MBR PARTUUID accepted"
fi
grepq -e "$T/root/boot/cmdline.txt:1: root=PARTUUID=1a2b3c4d-02 is an MBR partition's id.*--label gpt" < "$T/err" ||
	{ cat "$T/err"; fail "no message for --label gpt"; }
"$RPIFS" --label fat "$T/root" "$T/m6" 2> "$T/err" && fail "--label fat accepted"
grepq -e "--label fat: dos or gpt" < "$T/err" || { cat "$T/err"; fail "no message for --label fat"; }
echo "console=ttyAMA0 root=LABEL=rootfs rootwait" > "$T/root/boot/cmdline.txt"

# 7. rpifs export to a file, rpifs flash onto random bytes: the backup GPT
# is written (sgdisk -v; flash skips holes, so junk there would show).
# (The tree's mtimes changed above: the mount's bytes again.)
rpifs_mount "$T/root" "$T/m7" --label gpt
cp "$T/m7/disk.img" "$T/mount.img"
rpifs_umount "$T/m7"
head -c "$size" /dev/urandom > "$T/target"
"$RPIFS" flash --yes --label gpt "$T/root" "$T/target" 2> "$T/log" || { cat "$T/log"; fail "rpifs flash --label gpt"; }
check_fs "$T/target"
"$RPIFS" export --label gpt "$T/root" "$T/export.img" 2> "$T/log" || { cat "$T/log"; fail "rpifs export --label gpt"; }
check_fs "$T/export.img"
cmp "$T/export.img" "$T/mount.img" || fail "the exported image differs from the mount's"
# --align 4K: partition 1 right after the primary entries (sector 40).
"$RPIFS" export -q --label gpt --align 4K "$T/root" "$T/a4k.img" || fail "rpifs export --label gpt --align 4K"
check_fs "$T/a4k.img"
[ "$(part_start "$T/a4k.img" 1)" = 20480 ] || fail "--align 4K: partition 1 at $(part_start "$T/a4k.img" 1)"
rm -f "$T/a4k.img"*

# 8. nbdkit label=gpt: the mount's bytes.
PLUGIN=${NBDKIT_PLUGIN:-$BUILD_ROOT/src/nbdkit/nbdkit-rpifs-plugin.so}
# A sanitizer build's plugin needs its runtime preloaded into nbdkit
# (tests/nbd/nbd_lib.sh does that for the nbd suite): compared in the
# release build only.
if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null && [ -f "$PLUGIN" ] &&
	! ldd "$PLUGIN" | grepq 'libasan\|libtsan'; then
	nbdkit -U - "$PLUGIN" rootfs="$T/root" label=gpt --run "nbdcopy \"\$uri\" $T/nbd.img" ||
		fail "nbdkit label=gpt"
	cmp "$T/nbd.img" "$T/mount.img" || fail "nbdkit label=gpt differs from the mount"
	if nbdkit -U - "$PLUGIN" rootfs="$T/root" label=fat --run true 2> "$T/err"; then
		fail "nbdkit label=fat accepted"
	fi
	grepq "label=fat: dos or gpt" < "$T/err" || { cat "$T/err"; fail "no message for label=fat"; }
else
	note "nbdkit or its plugin missing, or the plugin is a sanitizer build: the NBD part skipped"
fi
note "ok"
