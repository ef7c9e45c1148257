#!/usr/bin/env bash
# Copy-on-write: writes land in the overlay, never in the tree; O_DIRECT
# 512-byte writes at any sector; --read-only; a persistent --overlay across
# remounts, refused for a changed tree or when corrupt, --overlay-reset.
. "$TESTS_DIR/lib.sh"
need python3

mkdir -p "$T/root/boot" "$T/root/etc"
echo "arm_64bit=1" > "$T/root/boot/config.txt"
head -c 200000 /dev/urandom > "$T/root/boot/kernel.img"
head -c 300000 /dev/urandom > "$T/root/etc/data"
before=$(tree_sums "$T/root")

rpifs_mount "$T/root" "$T/mnt"
dd if="$T/mnt/disk.img" of="$T/ref.img" bs=4M status=none
# Random writes (O_DIRECT, 512-byte sectors; buffered, odd offsets), checked
# against the reference with the same writes applied.
python3 - "$T/mnt/disk.img" "$T/ref.img" <<'PY' || fail "writes not read back"
import mmap, os, random, sys
img, ref = sys.argv[1:3]
size = os.stat(ref).st_size
rnd = random.Random(7)
fd = os.open(img, os.O_RDWR | os.O_DIRECT)
fb = os.open(img, os.O_RDWR)
fr = os.open(ref, os.O_RDWR)
buf = mmap.mmap(-1, 65536)
for i in range(400):
    if i % 2:
        sec = rnd.randrange(size // 512)
        n = min(rnd.choice([512, 1024, 4096, 65536]), size - sec * 512)
        data = rnd.randbytes(n)
        buf[:n] = data
        assert os.pwritev(fd, [memoryview(buf)[:n]], sec * 512) == n
        os.pwrite(fr, data, sec * 512)
    else:
        off = rnd.randrange(size - 10000)
        data = rnd.randbytes(rnd.randrange(1, 10000))
        assert os.pwrite(fb, data, off) == len(data)
        os.pwrite(fr, data, off)
os.fsync(fb)
bad = 0
for _ in range(500):
    off = rnd.randrange(size); n = rnd.randrange(1, 200000)
    if os.pread(fb, n, off) != os.pread(fr, n, off): bad += 1
# Past the end: a disk does not grow.
try:
    os.pwrite(fb, b"x", size); bad += 1
except OSError:
    pass
os.close(fb); os.close(fd)
# A new open (same generation) still sees the writes.
fb = os.open(img, os.O_RDONLY)
for _ in range(200):
    off = rnd.randrange(size); n = rnd.randrange(1, 100000)
    if os.pread(fb, n, off) != os.pread(fr, n, off): bad += 1
sys.exit(1 if bad else 0)
PY
rpifs_umount "$T/mnt"
[ "$before" = "$(tree_sums "$T/root")" ] || fail "the tree changed after writes"

# --read-only refuses writes.
rpifs_mount "$T/root" "$T/mnt" --read-only
if python3 -c "import os,sys; os.open(sys.argv[1], os.O_RDWR)" "$T/mnt/disk.img" 2>"$T/err"; then
	fail "--read-only: opened for writing"
fi
grep -q "Read-only file system" "$T/err" || { cat "$T/err"; fail "--read-only: not EROFS"; }
rpifs_umount "$T/mnt"

# A persistent overlay survives a remount.
ov=$T/overlay.bin
rpifs_mount "$T/root" "$T/mnt" --overlay "$ov"
printf 'PERSISTENT-MARK' | dd of="$T/mnt/disk.img" bs=1 seek=$((300 << 20)) conv=notrunc status=none
rpifs_umount "$T/mnt"
rpifs_mount "$T/root" "$T/mnt" --overlay "$ov"
got=$(dd if="$T/mnt/disk.img" bs=1 skip=$((300 << 20)) count=15 status=none)
[ "$got" = PERSISTENT-MARK ] || fail "overlay lost the write across a remount (got '$got')"
rpifs_umount "$T/mnt"
[ "$(stat -c %b "$ov")" -lt 1000 ] || fail "the overlay file is not sparse ($(stat -c %b "$ov") blocks)"

# A changed tree: the overlay is refused (its blocks belong to the old image).
echo "changed" > "$T/root/etc/new-file"
mkdir -p "$T/m2"
if "$RPIFS" --overlay "$ov" "$T/root" "$T/m2" 2>"$T/err"; then
	fusermount3 -u "$T/m2"; fail "a stale overlay was accepted"
fi
grep -q "belong to another image.*--overlay-reset" "$T/err" || { cat "$T/err"; fail "no stale-overlay message"; }
rpifs_mount "$T/root" "$T/mnt" --overlay "$ov" --overlay-reset
got=$(dd if="$T/mnt/disk.img" bs=1 skip=$((300 << 20)) count=15 status=none)
[ "$got" != PERSISTENT-MARK ] || fail "--overlay-reset kept the old blocks"
rpifs_umount "$T/mnt"

# A corrupt overlay is refused with a clear message.
printf 'garbage' | dd of="$ov" bs=1 seek=0 conv=notrunc status=none
if "$RPIFS" --overlay "$ov" "$T/root" "$T/m2" 2>"$T/err"; then
	fusermount3 -u "$T/m2"; fail "a corrupt overlay was accepted"
fi
grep -q "not an rpifs overlay, or corrupt" "$T/err" || { cat "$T/err"; fail "no corrupt-overlay message"; }
rm -f "$T/root/etc/new-file"
note "ok"
