#!/usr/bin/env bash
# 8 readers at random offsets and one writer, for RPIFS_CONCURRENCY_SECS
# (default 30) seconds, against a reference copy: zero mismatches. The
# writer owns a 64 MiB window (its writes are checked by reading them back,
# also from other handles); the readers check everything else.
. "$TESTS_DIR/lib.sh"
need python3

mkdir -p "$T/root/boot" "$T/root/usr/lib"
for i in $(seq 1 40); do head -c $((i * 50000 + 17)) /dev/urandom > "$T/root/boot/f$i"; done
for i in $(seq 1 200); do head -c $((i * 3001)) /dev/urandom > "$T/root/usr/lib/lib$i.so"; done
rpifs_mount "$T/root" "$T/mnt"
dd if="$T/mnt/disk.img" of="$T/ref.img" bs=4M status=none
python3 - "$T/mnt/disk.img" "$T/ref.img" "${RPIFS_CONCURRENCY_SECS:-30}" <<'PY' || fail "mismatches under concurrency"
import os, random, sys, threading, time
img, ref, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
size = os.stat(ref).st_size
W0, W1 = size - (96 << 20), size - (32 << 20)     # the writer's window
fr = os.open(ref, os.O_RDONLY)
stop = time.monotonic() + secs
errors, reads, writes = [], [0] * 8, [0]
written = {}                                      # block -> bytes (writer's view)
lock = threading.Lock()

def reader(k):
    rnd = random.Random(k)
    fd = os.open(img, os.O_RDONLY | (os.O_DIRECT if k % 2 else 0))
    import mmap
    buf = mmap.mmap(-1, 1 << 20)
    while time.monotonic() < stop and not errors:
        if k % 2:   # O_DIRECT: aligned
            off = rnd.randrange(W0 // 512) * 512
            n = min(rnd.choice([512, 4096, 65536, 1 << 20]), W0 - off)
            got = os.preadv(fd, [memoryview(buf)[:n]], off)
            data = bytes(buf[:got])
        else:
            off = rnd.randrange(W0)
            n = min(rnd.randrange(1, 1 << 20), W0 - off)
            data = os.pread(fd, n, off)
        if data != os.pread(fr, n, off):
            errors.append(f"reader {k}: {off}+{n}")
        reads[k] += 1
        # Sometimes read a block the writer finished.
        with lock:
            items = list(written.items())[-4:]
        for b, v in items:
            if os.pread(fd if k % 2 == 0 else fb, 4096, b * 4096) != v:
                errors.append(f"reader {k}: written block {b}")
    os.close(fd)

def writer():
    rnd = random.Random(99)
    fd = os.open(img, os.O_RDWR)
    # Each block is written once, so a reader's expectation never goes stale.
    blocks = list(range(W0 // 4096, W1 // 4096))
    rnd.shuffle(blocks)
    while time.monotonic() < stop and not errors and blocks:
        b = blocks.pop()
        v = rnd.randbytes(4096)
        os.pwrite(fd, v, b * 4096)
        if os.pread(fd, 4096, b * 4096) != v:
            errors.append(f"writer: block {b} not read back")
        with lock:
            written[b] = v
        writes[0] += 1
    os.close(fd)

fb = os.open(img, os.O_RDONLY)
ts = [threading.Thread(target=reader, args=(k,)) for k in range(8)] + [threading.Thread(target=writer)]
for t in ts: t.start()
for t in ts: t.join()
print(f"# {sum(reads)} reads, {writes[0]} writes, {len(errors)} mismatches", file=sys.stderr)
for e in errors[:10]: print(e, file=sys.stderr)
sys.exit(1 if errors or sum(reads) == 0 or writes[0] == 0 else 0)
PY
rpifs_umount "$T/mnt"
note "ok"
