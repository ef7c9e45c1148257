#!/usr/bin/env bash
# Edit the tree while mounted: the next open with no handle open serves a new
# generation; an open handle keeps its generation (no mix); the in-memory
# overlay is dropped with a notice; a persistent overlay pins the image.
. "$TESTS_DIR/lib.sh"
need python3

mkdir -p "$T/root/boot" "$T/root/etc"
echo "MARKER-ONE-aaaaaaaaaaaaaaaaaaa" > "$T/root/boot/marker.txt"
echo "ROOTMARK-ONE-bbbbbbbbbbbbbbbbb" > "$T/root/etc/marker"
rpifs_mount "$T/root" "$T/mnt"
has() { python3 -c "import sys; sys.exit(0 if open(sys.argv[1],'rb').read().find(sys.argv[2].encode())>=0 else 1)" "$@"; }

has "$T/mnt/disk.img" MARKER-ONE || fail "marker not in the image"
python3 - "$T/mnt/disk.img" "$T/root" <<'PY' || fail "generation switch"
import os, sys, time
img, root = sys.argv[1:3]
def find(fd, s):
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0)
    return data.find(s.encode()) >= 0
fd1 = os.open(img, os.O_RDWR)
assert find(fd1, "MARKER-ONE")
# Write into generation 1 (in-memory overlay).
os.pwrite(fd1, b"WRITTEN-IN-GEN-ONE", 300 << 20)
# Edit the tree while a handle is open: new files and changed sizes change
# the layout; the open handle and any new handle keep generation 1 (a file
# edited in place is served with its current bytes, clipped or padded to
# its recorded size: documented).
with open(root + "/boot/marker.txt", "w") as f: f.write("MARKER-TWO-aaaaaaaaaaaaaaaaaaa-longer\n")
with open(root + "/etc/marker", "w") as f: f.write("ROOTMARK-TWO-bbbbbbbbbbbbbbbbb-longer\n")
with open(root + "/boot/new.txt", "w") as f: f.write("NEWFILE-IN-BOOT\n")
with open(root + "/etc/new", "w") as f: f.write("NEWFILE-IN-ROOT\n")
fd2 = os.open(img, os.O_RDONLY)
assert not find(fd1, "NEWFILE-IN-BOOT") and not find(fd1, "NEWFILE-IN-ROOT"), "open handle saw the edit"
assert not find(fd2, "NEWFILE-IN-BOOT"), "second handle switched while the first was open"
assert os.pread(fd2, 18, 300 << 20) == b"WRITTEN-IN-GEN-ONE"
os.close(fd1); os.close(fd2)
# Nobody holds it open: the next open serves generation 2. A close reaches
# the server as the kernel's RELEASE, sent asynchronously: an open racing it
# may still find a handle open and keep generation 1 (rpifs(1), CHANGING THE
# TREE). Under valgrind that takes long enough to be seen, so wait for it, up
# to 20 s; generation 2 must come without any further change.
for attempt in range(200):
    fd3 = os.open(img, os.O_RDONLY)
    if find(fd3, "MARKER-TWO-aaaaaaaaaaaaaaaaaaa-longer"):
        break
    os.close(fd3)
    time.sleep(0.1)
else:
    raise AssertionError("boot edit not served after reopen (20 s)")
if attempt:
    print(f"# generation 2 served at open {attempt + 1}", file=sys.stderr)
assert find(fd3, "ROOTMARK-TWO-bbbbbbbbbbbbbbbbb-longer"), "root edit not served after reopen"
assert find(fd3, "NEWFILE-IN-BOOT") and find(fd3, "NEWFILE-IN-ROOT"), "new files not served"
assert not find(fd3, "MARKER-ONE"), "old boot bytes still served"
assert os.pread(fd3, 18, 300 << 20) != b"WRITTEN-IN-GEN-ONE", "gen-1 overlay landed on gen 2"
os.close(fd3)
PY
fusermount3 -u "$T/mnt"
wait

# Bytes that change without a change of metadata the digest covers: same
# name, size and mtime, the directory's mtime restored (as tar does). The
# next open must serve the new bytes: not the old generation's page cache,
# not the old file's bytes through a still-open fd. And an in-memory
# overlay survives a change that keeps the layout (chmod to the same mode).
rpifs_mount "$T/root" "$T/mnt"
python3 - "$T/mnt/disk.img" "$T/root" <<'PY' || fail "same-metadata content change"
import os, sys
img, root = sys.argv[1:3]
sys.path.insert(0, os.environ["TESTS_DIR"] + "/image")
from imgbytes import image_bytes
def data():
    return image_bytes(img)
def put(path, text, replace):
    st, dst = os.stat(path), os.stat(os.path.dirname(path))
    if replace:                        # a new file renamed over the old one
        with open(path + ".new", "w") as f: f.write(text)
        os.rename(path + ".new", path)
    else:                              # rewritten in place
        with open(path, "w") as f: f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.utime(os.path.dirname(path), ns=(dst.st_atime_ns, dst.st_mtime_ns))
m = root + "/etc/marker"
old = open(m).read()
assert data().find(old.encode()) >= 0, "marker not served"
for i, replace in enumerate((True, False, True)):
    new = "SAME-SIZE-%02d-" % i + "x" * (len(old) - 14) + "\n"
    assert len(new) == len(old) and new != old
    put(m, new, replace)
    d = data()
    assert d.find(new.encode()) >= 0, "content change %d (replace=%s) not served" % (i, replace)
    assert d.find(old.encode()) < 0, "old bytes %d still served" % i
    old = new
# The overlay stays when only a ctime moved.
fd = os.open(img, os.O_RDWR)
os.pwrite(fd, b"KEPT-ACROSS-GENERATIONS", 300 << 20)
os.close(fd)
os.chmod(m, os.stat(m).st_mode & 0o7777)
d = data()
assert d[300 << 20:(300 << 20) + 23] == b"KEPT-ACROSS-GENERATIONS", "overlay dropped by a chmod"
PY
rpifs_umount "$T/mnt"
wait

# --no-inotify: a stat of every entry on open also sees a write through
# mmap() after the descriptor was closed (no inotify event for it).
rpifs_mount "$T/root" "$T/mnt" --no-inotify
python3 - "$T/mnt/disk.img" "$T/root/etc/marker" <<'PY' || fail "--no-inotify: mmap write not served"
import mmap, os, sys
img, m = sys.argv[1:3]
sys.path.insert(0, os.environ["TESTS_DIR"] + "/image")
from imgbytes import image_bytes
def data():
    return image_bytes(img)
old = open(m, "rb").read()
assert data().find(old) >= 0
fd = os.open(m, os.O_RDWR)
mm = mmap.mmap(fd, len(old))
os.close(fd)
mm[0:9] = b"MMAPPED!!"
mm.flush()
mm.close()
new = open(m, "rb").read()
assert new != old and data().find(new) >= 0, "the mmap write was not served"
PY
rpifs_umount "$T/mnt"
wait
# Persistent overlay pins: an edit is not served, a warning says why.
rpifs_mount "$T/root" "$T/mnt" --overlay "$T/ov"
echo "PINNED-NEW-FILE" > "$T/root/boot/pinned.txt"
! has "$T/mnt/disk.img" PINNED-NEW-FILE || fail "a pinned image served a new file"
has "$T/mnt/disk.img" NEWFILE-IN-BOOT || fail "pinned image lost its content"
rpifs_umount "$T/mnt"
note "ok"
