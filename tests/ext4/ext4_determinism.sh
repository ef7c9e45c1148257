#!/usr/bin/env bash
# The ext4 partition is a function of the tree: two mounts seconds apart give
# the same bytes (no clock reaches the image: superblock, journal,
# lost+found and the other inodes libext2fs creates all take their times
# from the tree or SOURCE_DATE_EPOCH), reading the whole image in between
# (which re-times the sources' atimes) changes nothing, and neither does a
# copy of the tree (cp -a: every ctime new). Without SOURCE_DATE_EPOCH the
# superblock's creation time is the tree's newest mtime.
. "$TESTS_DIR/lib.sh"
. "$TESTS_DIR/ext4/lib_ext4.sh"
need_root
need dumpe2fs sha256sum python3
unset SOURCE_DATE_EPOCH

python3 "$E4/mktree.py" "$T/root" || fail "fixture generator failed"
# No mtime in the future, so the newest mtime is an ordinary date.
find "$T/root" -newermt '2030-01-01' -exec touch -h -d '2024-05-06 07:08:09.123456789 UTC' {} +

part_sum() {   # part_sum MNT: sha256 of partition 2
	local img=$1/disk.img s z
	s=$(part_start "$img" 2); z=$(part_size "$img" 2)
	dd if="$img" bs=1M iflag=skip_bytes,count_bytes skip="$s" count="$z" \
		status=none | sha256sum | cut -d' ' -f1
}

rpifs_mount "$T/root" "$T/m1"
a=$(part_sum "$T/m1")
created=$(TZ=UTC dumpe2fs -h "$T/m1/disk.img?offset=$(part_start "$T/m1/disk.img" 2)" \
	2>/dev/null | sed -n 's/^Filesystem created: *//p')
rpifs_umount "$T/m1"
newest=$(find "$T/root" -printf '%T@\n' | sort -n | tail -1)
want=$(TZ=UTC date -d "@${newest%.*}" '+%a %b %e %H:%M:%S %Y')
[ "$created" = "$want" ] ||
	fail "superblock created '$created', want the newest mtime ($want)"
sleep 2
rpifs_mount "$T/root" "$T/m2"
b=$(part_sum "$T/m2")
rpifs_umount "$T/m2"
[ "$a" = "$b" ] || fail "partition 2 differs between two mounts 2 s apart"
cp -a "$T/root" "$T/copy"
rpifs_mount "$T/copy" "$T/m3"
c=$(part_sum "$T/m3")
rpifs_umount "$T/m3"
[ "$a" = "$c" ] || fail "partition 2 differs for a copy of the tree"
note "partition 2: $a"
