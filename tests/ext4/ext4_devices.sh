#!/usr/bin/env bash
# Device nodes from a device table (--devices FILE, nbdkit devices=FILE).
#
# A tree with an empty /dev (what an unprivileged build leaves: mknod is
# refused in a user namespace) and a Buildroot-style table: the image's
# ext4, seen by the kernel (loop mount of a copy of partition 2: stat) and
# by debugfs, holds the nodes with their type, mode, owner and device
# numbers, a fifo, the ranges expanded, /tmp 1777 and /etc/shadow
# root:shadow 0640 from d and f lines; e2fsck -fn clean; the same bytes on
# a second mount and through nbdkit's devices=; the tree untouched (no node
# created in it); a bad table is refused naming the file and line.
. "$TESTS_DIR/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (FUSE, loop mount)"
need debugfs e2fsck losetup
export SOURCE_DATE_EPOCH=1700000000

R=$T/rootfs
mkdir -p "$R"/{boot,dev,etc,tmp}
echo "console=serial0,115200 root=PARTUUID=de71ce00-02 rootwait" > "$R/boot/cmdline.txt"
echo "root:*:19000:0:99999:7:::" > "$R/etc/shadow"
chmod 644 "$R/etc/shadow"
cat > "$T/devices.txt" <<'TABLE'
# <name>      <type> <mode> <uid> <gid> <major> <minor> <start> <inc> <count>
/dev          d      755    0     0     -       -       -       -     -
/dev/console  c      600    0     0     5       1       -       -     -
/dev/null     c      666    0     0     1       3
/dev/ttyAMA   c      660    0     5     204     64      0       1     2
/dev/mmcblk0  b      660    0     6     179     0
/dev/initctl  p      600    0     0     -       -
/tmp          d      1777   0     0     -       -
/etc/shadow   f      640    0     42    -       -
TABLE
before=$(tree_sums "$R")

rpifs_mount "$R" "$T/mnt" --devices "$T/devices.txt"
sum1=$(sha256sum < "$T/mnt/disk.img")
root_part "$T/mnt/disk.img" "$T/p2.img"
rpifs_umount "$T/mnt"

devnum() { debugfs -R "stat $1" "$T/p2.img" 2>/dev/null |
	sed -n 's/.*Device major\/minor number: *\([0-9]*\):\([0-9]*\).*/\1:\2/p'; }
[ "$(devnum /dev/console)" = "05:01" ] || [ "$(devnum /dev/console)" = "5:1" ] ||
	fail "debugfs: /dev/console is $(devnum /dev/console)"

loop_mount "$T/p2.img" "$T/p2"
st() { stat -c '%F %a %u:%g %t:%T' "$T/p2/$1"; }
check() { [ "$(st "$1")" = "$2" ] || fail "$1: '$(st "$1")', want '$2'"; }
check dev/console   "character special file 600 0:0 5:1"
check dev/null      "character special file 666 0:0 1:3"
check dev/ttyAMA0   "character special file 660 0:5 cc:40"
check dev/ttyAMA1   "character special file 660 0:5 cc:41"
check dev/mmcblk0   "block special file 660 0:6 b3:0"
check dev/initctl   "fifo 600 0:0 0:0"
check tmp           "directory 1777 0:0 0:0"
check etc/shadow    "regular file 640 0:42 0:0"
[ ! -e "$T/p2/dev/ttyAMA2" ] || fail "the range made a third ttyAMA"
umount "$T/p2"

# The same bytes again, and through the nbdkit plugin's devices= key.
rpifs_mount "$R" "$T/mnt" --devices "$T/devices.txt"
[ "$(sha256sum < "$T/mnt/disk.img")" = "$sum1" ] || fail "a second mount gives other bytes"
rpifs_umount "$T/mnt"
plugin=$BUILD_ROOT/src/nbdkit/nbdkit-rpifs-plugin.so
if [ -f "$plugin" ] && command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null &&
   ! ldd "$plugin" | grepq libasan; then
	nbdkit -U - "$plugin" "$R" devices="$T/devices.txt" --run "nbdcopy \"\$uri\" $T/nbd.img" ||
		fail "nbdkit devices="
	[ "$(sha256sum < "$T/nbd.img")" = "$sum1" ] || fail "nbdkit devices= gives other bytes"
	rm -f "$T/nbd.img"
fi
[ "$before" = "$(tree_sums "$R")" ] || fail "the tree changed"
[ -z "$(find "$R" -type c -o -type b -o -type p)" ] || fail "a node was created in the tree"

# A bad table: a message with file and line, a non-zero exit, no mount.
printf '/dev/console c 600 0 0 5 1\n/dev/tty c 600 0 0 five 0\n' > "$T/bad.txt"
mkdir -p "$T/m2"
if "$RPIFS" --devices "$T/bad.txt" "$R" "$T/m2" >"$T/err" 2>&1; then
	fusermount3 -u "$T/m2" || true
	fail "a bad table was accepted"
fi
grep -q "$T/bad.txt:2: major 'five'" "$T/err" || { cat "$T/err"; fail "no message naming bad.txt:2"; }
if "$RPIFS" --devices "$T/none.txt" "$R" "$T/m2" >"$T/err" 2>&1; then
	fusermount3 -u "$T/m2" || true
	fail "a missing table was accepted"
fi
grep -q "none.txt: cannot read the device table" "$T/err" || { cat "$T/err"; fail "no message for a missing table"; }
note "ok"
