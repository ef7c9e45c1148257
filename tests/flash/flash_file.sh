#!/usr/bin/env bash
# rpifs flash to a regular file that held random bytes: the partition table,
# fsck.fat and e2fsck clean, every file of the tree on the target (mtools,
# debugfs), the mounted disk.img's bytes on its data ranges and the old
# bytes left in its holes (no reader depends on them). The same from an
# IMAGE (the mounted disk.img, holes from SEEK_DATA) and with --no-verify;
# the read-back catches a corrupted byte; the tree is never modified.
# The same random target written without rpifs flash: `cp --sparse=always`
# of disk.img then `qemu-img convert -n` (qemu-img zeroes the copy's holes:
# disk.img byte for byte); and `qemu-img convert -n --target-is-zero` from
# disk.img itself, which skips its holes: the garbage stays there, checked,
# and the target checks clean and holds the tree.
# (bmaptool copy onto random bytes: image/bmap.sh, its loop device.)
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
. "$TESTS_DIR/flash/lib_flash.sh"
need_root
need e2fsck debugfs sfdisk fsck.fat mcopy python3 qemu-img

flash_fixture "$T/root" "$T/snap.json"
before=$(tree_sums "$T/root")
# A small disk: the test writes it a few times.
O=(--size 128M --boot-size 40M)
rpifs_mount "$T/root" "$T/mnt" "${O[@]}"
img=$T/mnt/disk.img
size=$(stat -c %s "$img")

# 1. From the tree, with the read-back.
random_file "$T/orig" "$size"
cp "$T/orig" "$T/target"
"$RPIFS" flash --yes "${O[@]}" "$T/root" "$T/target" 2>"$T/log" || { cat "$T/log" >&2; fail "flash failed"; }
grep -q "wrote .* MiB of data .*, verified" "$T/log" || { cat "$T/log" >&2; fail "no summary"; }
[ "$(stat -c %s "$T/target")" = "$size" ] || fail "target size $(stat -c %s "$T/target")"
check_target "$T/target" "$img" "$T/orig" "$T/root" "$T/snap.json"
# Holes were skipped: most of a mostly empty disk still holds the old bytes.
[ "${CHECKED_HOLE:-0}" -gt $((size / 2)) ] || fail "only $CHECKED_HOLE hole bytes left alone"

# 2. From an image file (the mount's disk.img), --no-verify, to a new file:
#    the same bytes where the image has data; a new file is sparse.
"$RPIFS" flash --yes --no-verify -q "$img" "$T/new" 2>"$T/log" ||
	{ cat "$T/log" >&2; fail "flash IMAGE failed"; }
[ ! -s "$T/log" ] || { cat "$T/log" >&2; fail "-q printed something"; }
truncate -s 0 "$T/zero"; truncate -s "$size" "$T/zero"
out=$(python3 "$FL/ranges.py" check "$img" "$T/new" "$T/zero") || fail "IMAGE flash differs"
note "from IMAGE: $out"

# 3. The read-back compares what is on the target with what was written.
#    The byte: in ext4's superblock (data whatever the hole map says).
if RPIFS_FLASH_TEST_CORRUPT=$(($(part_start "$img" 2) + 1100)) "$RPIFS" flash --yes "${O[@]}" "$T/root" \
	"$T/target" 2>"$T/log"; then
	cat "$T/log" >&2; fail "a corrupted byte passed the verify"
fi
grep -q "verify failed: the .* bytes at [0-9]* read back differ" "$T/log" ||
	{ cat "$T/log" >&2; fail "no verify message"; }

# 4. Layout options as for the mount; an IMAGE takes none.
"$RPIFS" flash --yes -q --size 96M --boot-size 40M --disk-id 0x12345678 "$T/root" "$T/opt" ||
	fail "flash with layout options failed"
[ "$(stat -c %s "$T/opt")" = $((96 << 20)) ] || fail "--size 96M not applied"
sfdisk -d "$T/opt" | grepq '^label-id: 0x12345678$' || fail "--disk-id not applied"
if "$RPIFS" flash --yes --size 1G "$img" "$T/x" 2>"$T/log"; then fail "IMAGE took --size"; fi
grep -q "layout options .* apply to a ROOTFS directory only" "$T/log" || fail "no message"
[ ! -e "$T/x" ] || fail "$T/x created"

# 5. Without rpifs: cp --sparse=always, then qemu-img convert -n onto the
#    random bytes. qemu-img cannot know what the target holds, so it writes
#    zeros over the copy's holes: disk.img byte for byte, no garbage left.
cp --sparse=always "$img" "$T/sparse.img"
cp "$T/orig" "$T/target"
qemu-img convert -n -f raw -O raw "$T/sparse.img" "$T/target" || fail "qemu-img convert -n failed"
cmp "$img" "$T/target" || fail "cp --sparse=always + qemu-img convert -n: the target is not disk.img"
rm -f "$T/sparse.img"
#    To leave garbage in the holes, qemu-img must skip them: --target-is-zero
#    (untrue of this target, on purpose). Not from the cp copy: cp makes a
#    hole of every zero block, the free entries of the FATs and zeroed ext4
#    tables too, which are data; garbage there breaks fsck.fat and e2fsck.
#    From disk.img itself, whose SEEK_DATA holes are the hole map; -S 16M (the
#    most) so that a run of zeros inside data is written, not skipped. The
#    target: disk.img on its data, the old random bytes on every hole.
cp "$T/orig" "$T/target"
qemu-img convert -n --target-is-zero -S 16M -f raw -O raw "$img" "$T/target" ||
	fail "qemu-img convert -n --target-is-zero failed"
[ "$(stat -c %s "$T/target")" = "$size" ] || fail "target size $(stat -c %s "$T/target")"
check_target "$T/target" "$img" "$T/orig" "$T/root" "$T/snap.json"
[ "${CHECKED_HOLE:-0}" -gt $((size / 2)) ] || fail "qemu-img: only $CHECKED_HOLE hole bytes kept their garbage"

[ "$(tree_sums "$T/root")" = "$before" ] || fail "the tree was modified"
echo ok
