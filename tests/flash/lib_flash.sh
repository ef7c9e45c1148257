# tests/flash/lib_flash.sh - helpers of the flash tests. Source after lib.sh
# and ext4/lib_ext4.sh (which pins SOURCE_DATE_EPOCH).

FL=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# random_file PATH BYTES: a target that held something else before.
random_file() {
	head -c "$2" /dev/urandom > "$1" || fail "cannot fill $1"
}

# flash_fixture ROOT SNAP: the ext4 fixture tree (every kind of entry, a
# boot/ for partition 1) and its snapshot, taken before anything reads it.
flash_fixture() {
	python3 "$TESTS_DIR/ext4/mktree.py" "$1" >/dev/null || fail "fixture generator failed"
	$COMPARE snap "$1" "$2" --skip boot || fail "snapshot failed"
}

# check_target TARGET IMG ORIG ROOT SNAP: TARGET, written from ROOT, holds
# the image IMG (a mounted disk.img): the same partition table, FAT32 clean
# with every boot file, ext4 clean with every entry, IMG's bytes on IMG's
# data ranges and ORIG's (the old bytes) on its holes.
check_target() {
	local tgt=$1 img=$2 orig=$3 root=$4 snap=$5 off1 off2 out
	# sfdisk -d names the device: compare without it.
	[ "$(sfdisk -d "$tgt" | sed -e '/^device:/d' -e 's/^.* : start=/: start=/')" = \
	  "$(sfdisk -d "$img" | sed -e '/^device:/d' -e 's/^.* : start=/: start=/')" ] ||
		fail "partition table differs"
	off1=$(part_start "$tgt" 1); off2=$(part_start "$tgt" 2)
	extract_part "$tgt" 1 "$T/p1.img"
	fsck.fat -n "$T/p1.img" >"$T/fsck" 2>&1 || { cat "$T/fsck" >&2; fail "fsck.fat -n failed"; }
	ext4_fsck "$tgt" "$off2"
	rm -rf "$T/bootout"; mkdir -p "$T/bootout"
	mcopy -s -n -m -i "$T/p1.img" '::/*' "$T/bootout/" || fail "mcopy -s failed"
	diff -r "$root/boot" "$T/bootout" >&2 || fail "partition 1 differs from boot/"
	rm -f "$T/p1.img"
	extract_part "$tgt" 2 "$T/p2.img"
	out=$($COMPARE debugfs "$snap" "$T/p2.img") ||
		{ echo "$out" >&2; fail "ext4 on $tgt differs from the tree"; }
	note "debugfs: $out"
	rm -f "$T/p2.img"
	out=$(python3 "$FL/ranges.py" check "$img" "$tgt" "$orig") ||
		fail "$tgt is not the image on its data ranges, or a hole was written"
	note "ranges: $out (data, hole bytes)"
	CHECKED_HOLE=${out#* }
}
