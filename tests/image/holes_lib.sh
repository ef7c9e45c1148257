# tests/image/holes_lib.sh - the tree and the target check of seek_holes.sh and
# bmap.sh. Source after lib.sh and ext4/lib_ext4.sh.

HOLES="python3 $TESTS_DIR/image/holes.py"

# holes_tree DIR: boot files (FAT32), ext4 files large and small, a sparse
# file, a symlink, nested directories; and its snapshot DIR.json for
# compare.py (taken before any mount reads it).
holes_tree() {
	local d=$1 i
	mkdir -p "$d/boot/overlays" "$d/etc" "$d/usr/lib/deep/er" "$d/var/log"
	echo "arm_64bit=1" > "$d/boot/config.txt"
	echo "console=serial0,115200 root=PARTUUID=0badcafe-02 rootwait" > "$d/boot/cmdline.txt"
	head -c 700000 /dev/urandom > "$d/boot/kernel8.img"
	head -c 5000 /dev/urandom > "$d/boot/overlays/a.dtbo"
	echo pi > "$d/etc/hostname"
	head -c 3000000 /dev/urandom > "$d/usr/lib/big.so"
	for i in $(seq 1 200); do echo "file $i" > "$d/usr/lib/deep/er/f$i"; done
	ln -s ../lib/big.so "$d/usr/lib/link.so"
	# 4 MiB, data only in its first and last MiB
	head -c 1048576 /dev/urandom > "$d/var/log/sparse"
	truncate -s 3M "$d/var/log/sparse"
	head -c 1048576 /dev/urandom >> "$d/var/log/sparse"
	$COMPARE snap "$d" "$d.json" --skip boot || fail "snapshot of $d failed"
}

# check_target IMG TREE: both partitions of IMG check clean (fsck.fat -n,
# e2fsck -fn) and hold TREE (mtools for boot/, debugfs for the rest).
check_target() {
	local img=$1 tree=$2 p1 z1 p2 z2 out rc=0
	p1=$(part_start "$img" 1); z1=$(part_size "$img" 1)
	p2=$(part_start "$img" 2); z2=$(part_size "$img" 2)
	rm -rf "$T/ct"; mkdir -p "$T/ct/fat"
	dd if="$img" of="$T/ct/p1.img" bs=1M iflag=skip_bytes,count_bytes skip="$p1" \
		count="$z1" status=none
	out=$(fsck.fat -n "$T/ct/p1.img" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] && ! printf '%s\n' "$out" | grep -v -E '^fsck.fat |files, .* clusters$' |
		grep -q . || { echo "$out" >&2; fail "fsck.fat -n on $img: exit $rc"; }
	ext4_fsck "$img" "$p2"
	dd if="$img" of="$T/ct/p2.img" bs=1M iflag=skip_bytes,count_bytes skip="$p2" \
		count="$z2" status=none
	out=$($COMPARE debugfs "$tree.json" "$T/ct/p2.img") ||
		{ echo "$out" >&2; fail "$img: partition 2 differs from the tree"; }
	TZ=UTC mcopy -s -n -m -i "$T/ct/p1.img" '::/*' "$T/ct/fat/" || fail "mcopy -s failed"
	diff -r "$tree/boot" "$T/ct/fat" >&2 || fail "$img: partition 1 differs from boot/"
	rm -rf "$T/ct"
}
