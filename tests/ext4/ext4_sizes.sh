#!/usr/bin/env bash
# Sizes: a --root-size below the need is refused, naming the need; a
# filesystem of exactly that size holds the tree (the estimate is enough on
# its own); a 140 MiB file spans several extents; 2 GiB, 32 GiB and 256 GiB
# filesystems are e2fsck-clean and the daemon's memory does not grow with
# the image (metadata pages only: no per-block arrays); --root-owner owns
# everything by 0:0.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
need_root
need e2fsck debugfs sfdisk python3

python3 "$E4/mktree.py" "$T/root" --big || fail "fixture generator failed"

# Too small: refused, naming the size needed.
mkdir -p "$T/small"
if "$RPIFS" --root-size 8M "$T/root" "$T/small" 2>"$T/err"; then
	_MOUNTS+=("$T/small")
	fail "--root-size 8M accepted for a 160 MiB tree"
fi
need_mib=$(sed -n 's/.*too small.*needs at least \([0-9]*\) MiB.*/\1/p' "$T/err")
[ -n "$need_mib" ] || { cat "$T/err" >&2; fail "no size in the too-small message"; }

# Exactly the size ext4_size_needed asks for: the build must fit.
# (Snapshot just before: every scan re-times the directories it reads.)
$COMPARE snap "$T/root" "$T/snap.json" --skip boot || fail "snapshot failed"
mount_logged "$T/root" "$T/tight" "$T/log" --root-size "${need_mib}M" --root-owner
img=$T/tight/disk.img
off=$(part_start "$img" 2)
ext4_fsck "$img" "$off"
debugfs -R 'ex /files/big-140M' "$img?offset=$off" 2>/dev/null |
	awk 'NR > 1 { n++ } END { exit !(n >= 2) }' ||
	fail "a 140 MiB file should need two extents or more"
extract_part "$img" 2 "$T/part.img"
rpifs_umount "$T/tight"
kmount "$T/part.img" "$T/k"
out=$($COMPARE kernel "$T/snap.json" "$T/k" --root-owner) ||
	{ echo "$out" >&2; fail "--root-owner image differs from the source"; }
note "--root-size ${need_mib}M --root-owner: $out"
used=$(df -k --output=used,size "$T/k" | tail -1)
note "tight filesystem: used/size (KiB) $used"
kumount "$T/k"
rm -f "$T/part.img"

declare -A hwm
for size in 2G 32G 256G; do
	rpifs_mount "$T/root" "$T/m$size" --size "$size"
	hwm[$size]=$(daemon_hwm "$T/m$size")    # the build, before any read
	img=$T/m$size/disk.img
	ext4_fsck "$img" "$(part_start "$img" 2)"
	rpifs_umount "$T/m$size"
	note "--size $size: daemon peak RSS ${hwm[$size]} kB"
done
# Per-group metadata (bitmaps, descriptors, the resize inode's reserved
# descriptor blocks) grows with the size; nothing per block may.
[ "${hwm[32G]}" -lt $((64 * 1024)) ] || fail "32 GiB image: peak RSS ${hwm[32G]} kB"
[ "${hwm[256G]}" -lt $((128 * 1024)) ] || fail "256 GiB image: peak RSS ${hwm[256G]} kB"
