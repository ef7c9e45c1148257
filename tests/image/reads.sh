#!/usr/bin/env bash
# Random-offset, random-length reads through the mount equal the same ranges
# of a reference copy (the whole image copied out once with dd), including
# reads across region boundaries, at the end of the disk and past it, and
# O_DIRECT reads.
. "$TESTS_DIR/lib.sh"
need python3

mkdir -p "$T/root/boot/overlays" "$T/root/usr/share"
head -c 3000001 /dev/urandom > "$T/root/boot/kernel8.img"
head -c 513 /dev/urandom > "$T/root/boot/overlays/a.dtbo"
: > "$T/root/boot/empty"
for i in $(seq 1 50); do head -c $((i * 997)) /dev/urandom > "$T/root/boot/f$i.bin"; done
head -c 5000000 /dev/urandom > "$T/root/usr/share/big"
rpifs_mount "$T/root" "$T/mnt"
dd if="$T/mnt/disk.img" of="$T/ref.img" bs=4M status=none
python3 - "$T/mnt/disk.img" "$T/ref.img" <<'PY'
import mmap, os, random, sys
img, ref = sys.argv[1], sys.argv[2]
size = os.stat(ref).st_size
assert os.stat(img).st_size == size, "sizes differ"
fi = os.open(img, os.O_RDONLY); fr = os.open(ref, os.O_RDONLY)
rnd = random.Random(1234)
bad = 0
def check(off, n):
    global bad
    a = os.pread(fi, n, off); b = os.pread(fr, n, off)
    if a != b:
        bad += 1
        print(f"mismatch at {off}+{n}: got {len(a)} bytes")
for _ in range(3000):
    off = rnd.randrange(size)
    n = rnd.choice([1, 511, 512, 4096, 65536, 131073, 1 << 20, rnd.randrange(1, 3 << 20)])
    check(off, n)
# Boundaries: every partition edge and the end of the disk.
for off in (0, 510, 4 << 20, (4 << 20) - 1, (260 << 20) - 7, size - 1, size - 4096):
    check(off, 8192)
assert os.pread(fi, 100, size) == b"", "read past the end returned data"
# O_DIRECT reads, 512-byte aligned (what qemu's cache=none does).
fd = os.open(img, os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 1 << 20)
for _ in range(300):
    off = rnd.randrange(size // 512) * 512
    n = min(rnd.choice([512, 4096, 1 << 20]), size - off)
    got = os.preadv(fd, [memoryview(buf)[:n]], off)
    if got != n or buf[:n] != os.pread(fr, n, off):
        bad += 1; print(f"O_DIRECT mismatch at {off}+{n}")
sys.exit(1 if bad else 0)
PY
[ $? -eq 0 ] || fail "reads differ from the reference"
# The source tree's bytes are in the image: the kernel file appears whole.
python3 - "$T/ref.img" "$T/root/boot/kernel8.img" <<'PY' || fail "kernel bytes not found contiguous in the image"
import sys
img = open(sys.argv[1], "rb").read(); k = open(sys.argv[2], "rb").read()
sys.exit(0 if img.find(k) >= 0 else 1)
PY
note "ok"
