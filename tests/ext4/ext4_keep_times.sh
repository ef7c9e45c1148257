#!/usr/bin/env bash
# The builder alone, through tests/ext4/ext4_image.c (no FUSE):
#  - keep_atime_ctime: atime and ctime (and crtime = ctime) come from the
#    source, to the nanosecond, as mke2fs -d keeps them; every entry equal
#    through the kernel and debugfs, e2fsck clean;
#  - by default they equal mtime, and a copy of the tree (cp -a: new ctimes)
#    gives the same bytes;
#  - a partition smaller than ext4_size_needed fails with ENOSPC and a
#    message naming the size needed.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
need_root
need e2fsck debugfs python3
EXT4_IMAGE=${1:?usage: ext4_keep_times.sh PATH_TO_ext4_image}

python3 "$E4/mktree.py" "$T/root" || fail "fixture generator failed"
$COMPARE snap "$T/root" "$T/snap.json" --skip boot || fail "snapshot failed"
"$EXT4_IMAGE" --keep-times --skip boot "$T/root" "$T/keep.img" >"$T/out" ||
	fail "ext4_image --keep-times failed"
ext4_fsck "$T/keep.img" 0
out=$($COMPARE debugfs "$T/snap.json" "$T/keep.img" --source-times) ||
	{ echo "$out" >&2; fail "debugfs view differs (source times)"; }
note "debugfs, source times: $out"
kmount "$T/keep.img" "$T/k"
out=$($COMPARE kernel "$T/snap.json" "$T/k" --source-times) ||
	{ echo "$out" >&2; fail "kernel view differs (source times)"; }
note "kernel, source times: $out"
kumount "$T/k"

# Default: times from mtime only; a copy of the tree is the same image.
"$EXT4_IMAGE" --skip boot "$T/root" "$T/a.img" >/dev/null || fail "ext4_image failed"
cp -a "$T/root" "$T/copy"
sleep 1
"$EXT4_IMAGE" --skip boot "$T/copy" "$T/b.img" >/dev/null || fail "ext4_image failed"
cmp -s "$T/a.img" "$T/b.img" || fail "a copy of the tree (new ctimes) gives other bytes"
out=$($COMPARE debugfs "$T/snap.json" "$T/a.img") ||
	{ echo "$out" >&2; fail "debugfs view differs (default times)"; }

# Below the estimate: ENOSPC, with the size needed in the message.
need=$(sed -n 's/^needed //p' "$T/out")
rc=0
"$EXT4_IMAGE" --skip boot --size $((need / 2 / 4096 * 4096)) "$T/root" "$T/small.img" \
	>/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 2 ] || { cat "$T/err" >&2; fail "half the estimate: exit $rc, want 2 (ENOSPC)"; }
grep -q 'too small for the tree: at least [0-9]* MiB needed' "$T/err" ||
	{ cat "$T/err" >&2; fail "ENOSPC message without the size needed"; }
note "half the estimate: $(head -1 "$T/err")"
