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
# Nobody holds it open: the next open serves generation 2.
fd3 = os.open(img, os.O_RDONLY)
assert find(fd3, "MARKER-TWO-aaaaaaaaaaaaaaaaaaa-longer"), "boot edit not served after reopen"
assert find(fd3, "ROOTMARK-TWO-bbbbbbbbbbbbbbbbb-longer"), "root edit not served after reopen"
assert find(fd3, "NEWFILE-IN-BOOT") and find(fd3, "NEWFILE-IN-ROOT"), "new files not served"
assert not find(fd3, "MARKER-ONE"), "old boot bytes still served"
assert os.pread(fd3, 18, 300 << 20) != b"WRITTEN-IN-GEN-ONE", "gen-1 overlay landed on gen 2"
os.close(fd3)
PY
fusermount3 -u "$T/mnt"
wait
# Persistent overlay pins: an edit is not served, a warning says why.
rpifs_mount "$T/root" "$T/mnt" --overlay "$T/ov"
echo "PINNED-NEW-FILE" > "$T/root/boot/pinned.txt"
! has "$T/mnt/disk.img" PINNED-NEW-FILE || fail "a pinned image served a new file"
has "$T/mnt/disk.img" NEWFILE-IN-BOOT || fail "pinned image lost its content"
rpifs_umount "$T/mnt"
note "ok"
