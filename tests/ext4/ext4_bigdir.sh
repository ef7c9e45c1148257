#!/usr/bin/env bash
# Large directories: 20 000 names in one directory are laid out as an htree
# (the time is printed, not asserted: speed is bench/'s job, and this test
# also runs under valgrind); 9 000 names of 255 bytes need a two-level htree. e2fsck finds nothing, the kernel lists
# every name and finds each one by lookup (a wrong hash or index would make
# lookups fail), and can add names to the htree. The tree is large enough
# for its ext4 metadata to be served from packed pages (pagepack.h).
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
need_root
need e2fsck debugfs sfdisk python3

mkdir -p "$T/root/big" "$T/root/long" "$T/root/small"
python3 - "$T/root" <<'PY'
import os, sys
r = sys.argv[1]
for i in range(20000):
    open(os.path.join(r, "big", "file_%05d" % i), "w").close()
for i in range(9000):
    open(os.path.join(r, "long", "%05d-" % i + "L" * 249), "w").close()
for i in range(3):
    open(os.path.join(r, "small", "s%d" % i), "w").close()
PY

start=$(date +%s.%N)
mount_logged "$T/root" "$T/mnt" "$T/log"
end=$(date +%s.%N)

# 29 000 inodes and these directories pass the ext4 store's raw budget
# (ext4_memio.h): the metadata below is served from packed pages, so this
# test is the image-level check of that path (e2fsck, debugfs, the kernel).
# The build time is read from this run's log: the server builds ext4 after
# it has mounted (rpifs.h, defer_ext4), so its log line goes to syslog.
"$RPIFS" --dump-regions "$T/root" > "$T/dump" 2>"$T/dumplog" ||
	{ cat "$T/dumplog" >&2; fail "--dump-regions exited $?"; }
secs=$(sed -n 's/.*built in \([0-9.]*\) s.*/\1/p' "$T/dumplog")
note "ext4 layout of 29 000 entries: ${secs:-?} s (mount: $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s)"
[ -n "$secs" ] || fail "no build time in the log"
grep -q " packed " "$T/dump" || fail "no packed ext4 metadata page in this tree's layout"

img=$T/mnt/disk.img
off=$(part_start "$img" 2)
ext4_fsck "$img" "$off"
extract_part "$img" 2 "$T/part.img"

# The index: flags and depth as the kernel would make them.
debugfs -R 'stat /big' "$T/part.img" 2>/dev/null | grepq 'Flags: 0x81000' ||
	fail "/big is not an indexed extent directory"
debugfs -R 'htree_dump /big' "$T/part.img" 2>/dev/null | grepq 'Indirect levels: 0' || fail "/big: expected a one-level htree"
debugfs -R 'htree_dump /long' "$T/part.img" 2>/dev/null | grepq 'Indirect levels: 1' || fail "/long: expected a two-level htree"
debugfs -R 'stat /small' "$T/part.img" 2>/dev/null | grepq 'Flags: 0x80000$' ||
	fail "/small (one block) should stay linear"

kmount "$T/part.img" "$T/k"
python3 - "$T/root" "$T/k" <<'PY' || fail "kernel listing or lookups differ"
import os, sys
src, img = sys.argv[1:]
for d in ("big", "long", "small"):
    want = sorted(os.listdir(os.path.join(src, d)))
    got = sorted(os.listdir(os.path.join(img, d)))
    if want != got:
        sys.exit("%s: listing differs (%d vs %d names)" % (d, len(want), len(got)))
    for n in want:                      # a fresh mount: real htree lookups
        os.stat(os.path.join(img, d, n))
    if os.path.exists(os.path.join(img, d, "file_99999")):
        sys.exit("lookup of a missing name succeeded")
print("listings equal, every name found by lookup")
PY
kumount "$T/k"

cp "$T/part.img" "$T/rw.img"
kmount "$T/rw.img" "$T/w" rw
for i in $(seq 1 2000); do : > "$T/w/big/added_$i"; : > "$T/w/long/added_$i"; done
rm -f "$T/w/big/file_1"*
kumount "$T/w"
ext4_fsck "$T/rw.img" 0
