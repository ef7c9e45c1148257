#!/bin/bash
# fat_content.sh - every file of the boot directory comes back out of
# partition 1 byte-identical and under its exact name, read by mtools
# (mcopy/mdir) and by an independent reader (fat_read.py, which also
# checks LFN checksums, "." / ".." and chains). The fixture
# (fat_fixture.sh) has long, mixed-case, dotted, non-ASCII and colliding
# names, 1 000 files in one directory, 8 levels, empty files and
# directories, a 100 MiB file, symlinks, a fifo and names FAT cannot hold;
# what cannot be stored must be named in a warning.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/image/fat_fixture.sh"
need mcopy mdir sfdisk python3

make_fat_fixture "$T/root" 100
make_fat_expected "$T/root" "$T/exp"
# Built far from UTC: FAT times must still be UTC.
TZ=Asia/Tokyo fat_mount "$T/warn" "$T/root" "$T/mnt"
img=$T/mnt/disk.img
off=$(part_start "$img" 1)

# 1. Every skipped entry is named in a warning, and nothing else is skipped.
for s in "${FAT_SKIPPED[@]}"; do
	grep -aF -- "$s: " "$T/warn" | grepq 'not put on the FAT32' ||
		fail "no warning naming $s"
done
n=$(grep -c 'not put on the FAT32' "$T/warn")
[ "$n" -eq "${#FAT_SKIPPED[@]}" ] || fail "$n entries skipped, want ${#FAT_SKIPPED[@]}"

# 2. mcopy gets everything back. mtools 4.0.32 turns each half of a UTF-16
#    surrogate pair into '_' (it does the same when it writes such a name
#    itself), so the emoji name is compared by step 3 instead.
mkdir -p "$T/out"
TZ=UTC mcopy -s -n -m -i "$img@@$off" '::/*' "$T/out/" ||
	fail "mcopy -s failed"
emoji='😀 smile.txt'
[ -f "$T/out/__ smile.txt" ] || fail "mcopy did not give the emoji file back at all"
cmp -s "$T/exp/$emoji" "$T/out/__ smile.txt" || fail "emoji file content differs"
rm -f "$T/out/__ smile.txt"
diff -r -x "$emoji" "$T/exp" "$T/out" >&2 || fail "mcopy output differs from boot/"
nexp=$(find "$T/exp" -mindepth 1 ! -name "$emoji" | wc -l)
nout=$(find "$T/out" -mindepth 1 | wc -l)
[ "$nexp" -eq "$nout" ] || fail "$nout entries extracted, want $nexp"
[ "$(find "$T/out/many" -type f | wc -l)" -eq 1000 ] || fail "many/ lost files"
[ -f "$T/out/d1/d2/d3/d4/d5/d6/d7/d8/leaf.txt" ] || fail "8 levels deep lost"
[ -d "$T/out/emptydir" ] && [ -z "$(ls -A "$T/out/emptydir")" ] || fail "emptydir"
[ "$(stat -c %s "$T/out/big.bin")" -eq $((100 << 20)) ] || fail "big.bin size"
note "mcopy: $nout entries identical to boot/ (plus the emoji file)"

# 3. The independent reader: names (emoji included), sizes, sha256, label.
python3 "$TESTS_DIR/image/fat_read.py" "$img" "$off" > "$T/got.lst" ||
	fail "fat_read.py rejected the filesystem"
{ printf 'label\tBOOT\n'; python3 "$TESTS_DIR/image/fat_read.py" --tree "$T/exp"; } |
	sort > "$T/exp.lst"
diff "$T/exp.lst" "$T/got.lst" >&2 || fail "fat_read listing differs from boot/"
note "fat_read: $(wc -l < "$T/got.lst") entries match"

# 4. mdir: the label, 8.3 names without a long name, unique short names.
mdir -i "$img@@$off" ::/ > "$T/mdir" 2>&1 || fail "mdir failed"
grep -q '^ Volume in drive : is BOOT *$' "$T/mdir" || fail "label not listed"
# config.txt needs no long name: stored CONFIG.TXT with the lower-case bits,
# which mdir shows as "config   txt" with no long-name column.
grep -Eq '^config +txt +[0-9]+ [0-9-]+ +[0-9:]+ *$' "$T/mdir" ||
	fail "config.txt is not a plain 8.3 entry: $(grep -i config "$T/mdir")"
grep -Eq '^MIXEDC~1 TXT .* MixedCase\.Txt$' "$T/mdir" || fail "MixedCase.Txt short name"
grep -Eq '^HIDDEN~1 +[0-9]+ .* \.hidden$' "$T/mdir" || fail ".hidden short name"
grep -Eq '^~1 +[0-9]+ .* \.\.\.$' "$T/mdir" || fail "... short name"
mdir -i "$img@@$off" ::/collide > "$T/mcoll" 2>&1 || fail "mdir collide"
awk 'NR > 3 && /^[^ ]/ && $1 != "." && $1 != ".." { print $1 "." $2 }' "$T/mcoll" |
	sort > "$T/short"
[ "$(wc -l < "$T/short")" -eq 22 ] || fail "collide/: $(wc -l < "$T/short") short names, want 22"
[ -z "$(uniq -di "$T/short")" ] || fail "duplicate short names: $(uniq -di "$T/short")"
grep -q '^COLLID~1.DAT$' "$T/short" || fail "literal COLLID~1.DAT lost its name"
grep -q '^collid~2.dat$' "$T/short" || fail "literal collid~2.dat lost its name"
grep -q '^COLLID~3.DAT$' "$T/short" && grep -q '^COLLI~22.DAT$' "$T/short" ||
	fail "tails are not ~3 .. ~22: $(tr '\n' ' ' < "$T/short")"

# 5. Times are UTC whatever TZ rpifs ran under, 2-second resolution,
#    clamped to FAT's 1980..2107 (mtools 4.0.32 mis-converts 2107-12-31
#    into a Unix time, so that one is checked on mdir's raw display).
[ "$(TZ=UTC stat -c %y "$T/out/stamp.txt")" = "2020-02-29 13:37:42.000000000 +0000" ] ||
	fail "stamp.txt time $(TZ=UTC stat -c %y "$T/out/stamp.txt"), want 13:37:42 UTC"
[ "$(TZ=UTC stat -c %y "$T/out/old.txt")" = "1980-01-01 00:00:00.000000000 +0000" ] ||
	fail "old.txt not clamped to 1980"
mdir -i "$img@@$off" ::/future.txt 2>&1 | grepq '2107-12-31  23:59' ||
	fail "future.txt not clamped to 2107-12-31 23:59:58"
echo "ok"
