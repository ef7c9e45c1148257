#!/usr/bin/env bash
# Source files changed while a generation is served (a handle holds it):
# truncated, grown, deleted, swapped for a symlink to /etc/shadow, swapped
# for another file. The daemon survives, every read is full length, the
# changed ranges read as the file's clipped/zero-padded bytes or zeros, and
# /etc/shadow's bytes never appear in the image.
. "$TESTS_DIR/lib.sh"
need python3
[ -r /etc/shadow ] || skip "needs a readable /etc/shadow as the bait"

mkdir -p "$T/root/boot" "$T/root/etc"
for f in shrink grow gone swap other; do
	for r in boot etc; do head -c 300000 /dev/urandom > "$T/root/$r/$f"; done
done
rpifs_mount "$T/root" "$T/mnt"
python3 - "$T/mnt/disk.img" "$T/root" <<'PY' || fail "changed sources"
import os, sys
img, root = sys.argv[1:3]
hold = os.open(img, os.O_RDONLY)          # pins generation 1
size = os.fstat(hold).st_size
head = {r: open(f"{root}/{r}/shrink", "rb").read(1000) for r in ("boot", "etc")}
for r in ("boot", "etc"):
    d = f"{root}/{r}"
    os.truncate(f"{d}/shrink", 1000)
    with open(f"{d}/grow", "ab") as f: f.write(os.urandom(50000))
    os.unlink(f"{d}/gone")
    os.unlink(f"{d}/swap"); os.symlink("/etc/shadow", f"{d}/swap")
    os.unlink(f"{d}/other")
    with open(f"{d}/other", "wb") as f: f.write(b"\x5a" * 300000)
fd = os.open(img, os.O_RDONLY)            # same generation: a handle is open
parts = []
off = 0
while off < size:
    chunk = os.pread(fd, 4 << 20, off)
    assert len(chunk) == min(4 << 20, size - off), f"short read at {off}"
    parts.append(chunk); off += len(chunk)
data = b"".join(parts)
shadow = open("/etc/shadow", "rb").read()
for line in shadow.splitlines():
    if len(line) > 20:
        assert data.find(line) < 0, "bytes of /etc/shadow served"
assert data.find(b"\x5a" * 4096) < 0, "a swapped-in file was served"
# The truncated file: its first 1000 bytes, then zeros to its scanned size
# (also where reads of it are spliced: the padding must be there).
for r in ("boot", "etc"):
    at = data.find(head[r])
    assert at >= 0, f"{r}/shrink: its first bytes are not in the image"
    assert data[at + 1000:at + 300000] == bytes(299000), f"{r}/shrink: not zero-padded"
os.close(fd); os.close(hold)
# The daemon is alive and the next open serves the new tree.
fd = os.open(img, os.O_RDONLY)
assert len(os.pread(fd, 512, 0)) == 512
os.close(fd)
PY
rpifs_umount "$T/mnt"
note "ok"
