#!/usr/bin/env bash
# rpifs flash refuses, before writing a byte, each with a message: a
# mounted loop device, a loop device with a mounted partition, a device
# smaller than the image, a directory, a character device, a target inside
# the tree, bad arguments, and without --yes when there is no terminal to
# ask on. The target's sha256 is unchanged each time.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
need_root
need losetup mkfs.ext4 sha256sum

trap 'cleanup_loops' EXIT
# The loop devices over this test's files (newloop runs in a subshell: no
# list to keep).
cleanup_loops() {
	local f l
	umount "$T/m" 2>/dev/null || true
	for f in "$T/big" "$T/small"; do
		for l in $(losetup -n -O NAME -j "$f" 2>/dev/null); do losetup -d "$l" || true; done
	done
	cleanup
}
newloop() { losetup -f --show "$@" || skip "no loop device"; }

cp -a "$SRC_ROOT/examples/minimal-rootfs" "$T/root"
before=$(tree_sums "$T/root")

# refuse TARGET PATTERN ARGS...: rpifs flash ARGS must fail, print
# PATTERN, and leave TARGET's bytes as they were.
refuse() {
	local tgt=$1 pat=$2 sum=""; shift 2
	if [ -f "$tgt" ] || [ -b "$tgt" ]; then sum=$(sha256sum < "$tgt"); fi
	if "$RPIFS" flash "$@" >"$T/out" 2>&1 </dev/null; then
		cat "$T/out" >&2; fail "rpifs flash $* succeeded"
	fi
	grep -qE -- "$pat" "$T/out" || { cat "$T/out" >&2; fail "rpifs flash $*: no message '$pat'"; }
	grep -q "nothing was written\|required\|too many\|unrecognized\|not a size" "$T/out" ||
		{ cat "$T/out" >&2; fail "rpifs flash $*: does not say nothing was written"; }
	[ -z "$sum" ] || [ "$(sha256sum < "$tgt")" = "$sum" ] || fail "$tgt was written: $*"
	note "refused: $(grep -m1 error "$T/out")"
}

# A mounted loop device (the whole device is a filesystem).
truncate -s 1G "$T/big"
L1=$(newloop "$T/big")
mkfs.ext4 -q -F "$L1" || fail "mkfs.ext4"
mkdir -p "$T/m"; mount -o ro "$L1" "$T/m" || fail "mount $L1"
refuse "$L1" "DEVICE $L1: .* is mounted on $T/m: unmount it first" --yes "$T/root" "$L1"
umount "$T/m"

# A loop device with a mounted partition (where the kernel makes loop
# partitions: not in every container).
sfdisk -q --no-reread "$L1" <<< ",64M,L" || fail "sfdisk"
losetup -d "$L1"; L1=$(newloop -P "$T/big")
p1=/sys/class/block/$(basename "$L1")/$(basename "$L1")p1/dev
if [ -e "$p1" ]; then
	# Without udev (a container) the node may be missing: make one.
	mknod "$T/p1" b "$(cut -d: -f1 "$p1")" "$(cut -d: -f2 "$p1")" || fail "mknod"
	mkfs.ext4 -q -F "$T/p1" || fail "mkfs.ext4 p1"
	mount -o ro "$T/p1" "$T/m" || fail "mount ${L1}p1"
	refuse "$L1" "DEVICE $L1: $(basename "$L1")p1 is mounted on $T/m" --yes "$T/root" "$L1"
	umount "$T/m"
else
	note "$L1: the kernel made no partition device: mounted partition not checked"
fi

# A device smaller than the image.
truncate -s 16M "$T/small"
L2=$(newloop "$T/small")
refuse "$L2" "DEVICE $L2: too small: 16777216 bytes .* use a larger card" --yes "$T/root" "$L2"

# Not a block device or a regular file.
refuse /dev/null "DEVICE /dev/null: neither a block device nor a regular file \(a character device\)" \
	--yes "$T/root" /dev/null
mkdir "$T/dir"
refuse "$T/dir" "DEVICE $T/dir: neither a block device nor a regular file \(a directory\)" \
	--yes "$T/root" "$T/dir"
refuse "$T/root/x.img" "DEVICE $T/root/x.img is inside ROOTFS" --yes "$T/root" "$T/root/x.img"
[ ! -e "$T/root/x.img" ] || fail "x.img created in the tree"

# No --yes and no terminal (stdin /dev/null): a file holding data, a device.
head -c 1M /dev/urandom > "$T/old"
refuse "$T/old" "DEVICE $T/old: no terminal to ask for confirmation on: pass --yes" \
	"$T/root" "$T/old"
refuse "$L1" "DEVICE $L1: no terminal to ask for confirmation on" "$T/root" "$L1"

# Bad command lines.
refuse "$T/old" "IMAGE and DEVICE are required" --yes "$T/root"
refuse "$T/old" "unrecognized option" --frobnicate "$T/root" "$T/old"
refuse "$T/old" "--size 12X: not a size" --size 12X "$T/root" "$T/old"
if "$RPIFS" flash --yes "$T/nope" "$T/new" 2>"$T/out"; then fail "missing source accepted"; fi
grep -q "$T/nope: No such file or directory" "$T/out" || fail "no message for a missing source"
[ ! -e "$T/new" ] || fail "$T/new created for a missing source"

[ "$(tree_sums "$T/root")" = "$before" ] || fail "the tree was modified"
echo ok
