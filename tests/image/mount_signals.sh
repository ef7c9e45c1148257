#!/usr/bin/env bash
# SIGINT, SIGTERM and fusermount3 -u each unmount cleanly (exit 0, the mount
# point empty again); the mount is private to the user unless -o allow_other.
. "$TESTS_DIR/lib.sh"
need setpriv

mkdir -p "$T/root/boot" "$T/mnt"
echo "arm_64bit=1" > "$T/root/boot/config.txt"

mounted() { grep -qF " $T/mnt " /proc/self/mountinfo; }
wait_mounted() {
	for _ in $(seq 100); do mounted && return 0; sleep 0.1; done
	fail "not mounted after 10 s"
}

for sig in INT TERM; do
	"$RPIFS" -f "$T/root" "$T/mnt" 2>"$T/log" &
	pid=$!
	_MOUNTS+=("$T/mnt")
	wait_mounted
	kill -s "$sig" "$pid"
	rc=0; wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$T/log"; fail "SIG$sig: exit status $rc"; }
	! mounted || fail "SIG$sig: still mounted"
	[ -z "$(ls -A "$T/mnt")" ] || fail "SIG$sig: mount point not empty"
done

# SIGTERM while a reader still holds disk.img and disk.img.bmap open: the
# kernel never sends those handles' RELEASE, and the daemon must still exit
# 0 and free them (the valgrind suite runs this case with leak checking).
"$RPIFS" -f "$T/root" "$T/mnt" 2>"$T/log" &
pid=$!
wait_mounted
exec 3<"$T/mnt/disk.img" 4<"$T/mnt/disk.img.bmap"
head -c 512 <&3 | od -An -tx1 | tail -1 | grepq "55 aa" || fail "held open: MBR not read"
head -c 100 <&4 | grepq "xml" || fail "held open: disk.img.bmap not read"
kill -s TERM "$pid"
rc=0; wait "$pid" || rc=$?
exec 3<&- 4<&-
[ "$rc" -eq 0 ] || { cat "$T/log"; fail "SIGTERM with disk.img open: exit status $rc"; }
! mounted || fail "SIGTERM with disk.img open: still mounted"

"$RPIFS" -f "$T/root" "$T/mnt" 2>"$T/log" &
pid=$!
wait_mounted
fusermount3 -u "$T/mnt"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/log"; fail "fusermount3 -u: exit status $rc"; }
! mounted || fail "fusermount3 -u: still mounted"

# Access: only the mounting user (root here) may read, unless allow_other.
chmod 755 "$T"
rpifs_mount "$T/root" "$T/mnt"
if setpriv --reuid=65534 --regid=65534 --clear-groups head -c 1 "$T/mnt/disk.img" >/dev/null 2>&1; then
	fail "another user could read the image without -o allow_other"
fi
rpifs_umount "$T/mnt"
rpifs_mount "$T/root" "$T/mnt" -o allow_other
setpriv --reuid=65534 --regid=65534 --clear-groups head -c 512 "$T/mnt/disk.img" | od -An -tx1 | tail -1 | grepq "55 aa" ||
	fail "another user could not read the image with -o allow_other"
rpifs_umount "$T/mnt"
note "ok"
