#!/bin/bash
# fat_fsck.sh - partition 1 copied out of disk.img passes `fsck.fat -n`
# with nothing to report (only its version line and the summary line), for
# the full fixture (512-byte clusters), an empty filesystem (no boot
# directory, custom label) and 4 KiB clusters (--boot-size 300M). Also
# checks the boot sector / FSInfo fields fsck.fat does not insist on, and
# that the partition's bytes do not depend on TZ.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/image/fat_fixture.sh"
need fsck.fat sfdisk python3 mdir

# fsck_strict P1 CLUSTERS: fsck.fat -n must say exactly
#   fsck.fat 4.2 (2021-01-31)
#   P1: N files, M/CLUSTERS clusters
fsck_strict() {
	local out n
	out=$(fsck.fat -n "$1" 2>&1) || fail "fsck.fat -n exited $?: $out"
	n=$(printf '%s\n' "$out" | wc -l)
	[ "$n" -eq 2 ] || fail "fsck.fat said more than version + summary:"$'\n'"$out"
	printf '%s\n' "$out" | sed -n 1p | grep -Eq '^fsck\.fat [0-9.]+ \([0-9-]+\)$' ||
		fail "unexpected first line: $out"
	printf '%s\n' "$out" | sed -n 2p |
		grep -Eq "^$1: [0-9]+ files, [0-9]+/$2 clusters\$" ||
		fail "unexpected summary (want .../$2 clusters): $out"
	note "$(printf '%s\n' "$out" | sed -n 2p)"
}

# check_fields P1 PART_START: what fsck.fat tolerates but the spec and the
# Pi firmware want.
check_fields() {
	python3 - "$1" "$2" <<'PY' || fail "boot sector / FSInfo fields wrong"
import struct, sys
b = open(sys.argv[1], "rb").read(1 << 20)
start = int(sys.argv[2])
s = lambda o: b[o * 512:(o + 1) * 512]
bs, fi = s(0), s(1)
err = []
def want(what, got, exp):
    if got != exp:
        err.append("%s: %r, want %r" % (what, got, exp))
want("jump", bs[0], 0xEB)
want("55 AA", bs[510:512], b"\x55\xaa")
want("bytes/sector", struct.unpack_from("<H", bs, 11)[0], 512)
want("reserved", struct.unpack_from("<H", bs, 14)[0], 32)
want("FATs", bs[16], 2)
want("RootEntCnt", struct.unpack_from("<H", bs, 17)[0], 0)
want("TotSec16", struct.unpack_from("<H", bs, 19)[0], 0)
want("media", bs[21], 0xF8)
want("FATSz16", struct.unpack_from("<H", bs, 22)[0], 0)
want("HiddSec", struct.unpack_from("<I", bs, 28)[0], start // 512)
want("RootClus", struct.unpack_from("<I", bs, 44)[0], 2)
want("FSInfo", struct.unpack_from("<H", bs, 48)[0], 1)
want("BkBootSec", struct.unpack_from("<H", bs, 50)[0], 6)
want("BootSig", bs[66], 0x29)
want("FilSysType", bs[82:90], b"FAT32   ")
want("backup boot sector", s(6), bs)
want("FSInfo copy", s(7), fi)
want("FSInfo lead", struct.unpack_from("<I", fi, 0)[0], 0x41615252)
want("FSInfo struc", struct.unpack_from("<I", fi, 484)[0], 0x61417272)
want("FSInfo trail", struct.unpack_from("<I", fi, 508)[0], 0xAA550000)
spc, rsvd = bs[13], 32
fatsz, tot = struct.unpack_from("<I", bs, 36)[0], struct.unpack_from("<I", bs, 32)[0]
clusters = (tot - rsvd - 2 * fatsz) // spc
with open(sys.argv[1], "rb") as f:
    f.seek(rsvd * 512)
    fat = f.read(fatsz * 512)
want("FAT[0]", struct.unpack_from("<I", fat, 0)[0], 0x0FFFFFF8)
want("FAT[1]", struct.unpack_from("<I", fat, 4)[0], 0x0FFFFFFF)
used = sum(1 for c in range(2, clusters + 2) if struct.unpack_from("<I", fat, 4 * c)[0])
want("FSInfo free count", struct.unpack_from("<I", fi, 488)[0], clusters - used)
want("FSInfo next free", struct.unpack_from("<I", fi, 492)[0],
     used + 2 if used < clusters else 0xFFFFFFFF)
for e in err:
    print("FAIL " + e, file=sys.stderr)
sys.exit(1 if err else 0)
PY
}

# 1. The full fixture, default 256 MiB partition (516 190 clusters of 512
#    bytes, as mkfs.fat makes), mounted under a TZ far from UTC.
make_fat_fixture "$T/root" 20
TZ=Asia/Tokyo fat_mount "$T/warn1" "$T/root" "$T/mnt"
img=$T/mnt/disk.img
extract_part "$img" 1 "$T/p1.img"
fsck_strict "$T/p1.img" 516190
check_fields "$T/p1.img" "$(part_start "$img" 1)"
sum1=$(sha256sum < "$T/p1.img")
rpifs_umount "$T/mnt"

# Same tree, another TZ: the same bytes.
TZ=America/Los_Angeles fat_mount "$T/warn2" "$T/root" "$T/mnt"
extract_part "$img" 1 "$T/p1b.img"
[ "$(sha256sum < "$T/p1b.img")" = "$sum1" ] ||
	fail "partition 1 differs between two mounts of the same tree (TZ?)"
[ "$(grep warning: "$T/warn1")" = "$(grep warning: "$T/warn2")" ] ||
	fail "warnings differ between two mounts"
rpifs_umount "$T/mnt"
rm -f "$T/p1.img" "$T/p1b.img"

# 2. No boot directory: an empty filesystem that still has its label.
mkdir -p "$T/empty/etc"
echo x > "$T/empty/etc/hostname"
fat_mount "$T/warn3" "$T/empty" "$T/mnt2" --boot-label 'my-boot'
extract_part "$T/mnt2/disk.img" 1 "$T/e1.img"
fsck_strict "$T/e1.img" 516190
check_fields "$T/e1.img" "$(part_start "$T/mnt2/disk.img" 1)"
mdir -i "$T/e1.img" ::/ 2>&1 | grepq '^ Volume in drive : is MY-BOOT *$' ||
	fail "label MY-BOOT not listed by mdir: $(mdir -i "$T/e1.img" ::/ 2>&1)"
[ "$(python3 "$TESTS_DIR/image/fat_read.py" "$T/e1.img" 0)" = "$(printf 'label\tMY-BOOT')" ] ||
	fail "empty filesystem is not empty"
rpifs_umount "$T/mnt2"
rm -f "$T/e1.img"

# 3. 4 KiB clusters: 300 MiB gives 8 sectors per cluster, 76 646 clusters.
#    With SOURCE_DATE_EPOCH (2020-09-13 12:26:40 UTC): newer times are
#    clamped to it, older ones kept.
rm -f "$T/root/boot/big.bin"
SOURCE_DATE_EPOCH=1600000000 fat_mount "$T/warn4" "$T/root" "$T/mnt3" --boot-size 300M
extract_part "$T/mnt3/disk.img" 1 "$T/p3.img"
fsck_strict "$T/p3.img" 76646
check_fields "$T/p3.img" "$(part_start "$T/mnt3/disk.img" 1)"
python3 "$TESTS_DIR/image/fat_read.py" "$T/p3.img" 0 | grep -v '^label' > "$T/got.lst" ||
	fail "fat_read failed on the 4 KiB-cluster filesystem"
make_fat_expected "$T/root" "$T/exp"
python3 "$TESTS_DIR/image/fat_read.py" --tree "$T/exp" > "$T/exp.lst"
diff "$T/exp.lst" "$T/got.lst" >&2 || fail "4 KiB-cluster content differs"
mdir -i "$T/p3.img" ::/config.txt 2>&1 | grepq ' 2020-09-13  12:26 ' ||
	fail "config.txt not clamped to SOURCE_DATE_EPOCH: $(mdir -i "$T/p3.img" ::/config.txt 2>&1)"
mdir -i "$T/p3.img" ::/stamp.txt 2>&1 | grepq ' 2020-02-29  13:37 ' ||
	fail "stamp.txt (older than SOURCE_DATE_EPOCH) changed"
rpifs_umount "$T/mnt3"
echo "ok"
