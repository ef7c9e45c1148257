#!/usr/bin/env bash
# rpifs flash to a block device (a loop device over a file of random
# bytes, the stand-in for an SD card): O_EXCL, BLKGETSIZE64, the partition
# table re-read; then the same checks as on a file, and the backing file
# holds what the device was given.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
. "$TESTS_DIR/flash/lib_flash.sh"
need_root
need e2fsck debugfs sfdisk fsck.fat mcopy python3 losetup

LOOP=
trap '[ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null || true; cleanup' EXIT

flash_fixture "$T/root" "$T/snap.json"
# A small disk: the test writes it a few times.
O=(--size 128M --boot-size 40M)
rpifs_mount "$T/root" "$T/mnt" "${O[@]}"
img=$T/mnt/disk.img
size=$(stat -c %s "$img")
# A card a little larger than the image.
random_file "$T/orig" $((size + (8 << 20)))
cp "$T/orig" "$T/card"
LOOP=$(losetup -f --show "$T/card") || skip "no loop device"
"$RPIFS" flash --yes "${O[@]}" "$T/root" "$LOOP" 2>"$T/log" || { cat "$T/log" >&2; fail "flash failed"; }
grep -q "verified" "$T/log" || { cat "$T/log" >&2; fail "no summary"; }
check_target "$LOOP" "$img" "$T/orig" "$T/root" "$T/snap.json"
losetup -d "$LOOP"; LOOP=
# Beyond the image the card is untouched.
cmp -s <(tail -c $((8 << 20)) "$T/orig") <(tail -c $((8 << 20)) "$T/card") ||
	fail "bytes past the image were written"
echo ok
