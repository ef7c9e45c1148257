#!/usr/bin/env bash
# The kernel's page cache across generations: after a tree change rpifs
# drops only the cached pages whose bytes differ. With the whole image in
# the cache, each kind of edit is followed by a read of the whole image
# through the same mount, which must equal the image a fresh mount of the
# same tree serves (determinism makes them byte-identical). The first read
# after each edit is mostly served from the kept cache; a page rpifs
# failed to drop would show up as a difference. Written blocks moved to the
# new generation (same layout) stay; blocks dropped with the old one go.
. "$TESTS_DIR/lib.sh"
need python3

R=$T/root
mkdir -p "$R/boot" "$R/etc" "$R/usr/lib"
head -c 3000000 /dev/urandom > "$R/boot/kernel8.img"
echo "console=serial0 root=PARTUUID=0badcafe-02 rootwait" > "$R/boot/cmdline.txt"
for i in $(seq 1 40); do head -c $((i * 7919)) /dev/urandom > "$R/usr/lib/lib$i.so"; done
echo "pi" > "$R/etc/hostname"
echo "MARKER-cccccccccccccccccccc" > "$R/etc/marker"
rpifs_mount "$R" "$T/mnt"

python3 - "$T/mnt/disk.img" "$R" "$RPIFS" "$T" <<'PY' || fail "cache across generations"
import hashlib, os, subprocess, sys
img, root, rpifs, tmp = sys.argv[1:5]
fresh = os.path.join(tmp, "fresh")
os.makedirs(fresh, exist_ok=True)

def whole(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        size, h, off = os.fstat(fd).st_size, hashlib.sha256(), 0
        while off < size:
            b = os.pread(fd, 1 << 22, off)
            h.update(b)
            off += len(b)
        return h.hexdigest()
    finally:
        os.close(fd)

def reference(patch=None):
    subprocess.run([rpifs, "-q", root, fresh], check=True)
    try:
        if patch is None:
            return whole(fresh + "/disk.img")
        fd = os.open(fresh + "/disk.img", os.O_RDWR)
        os.pwrite(fd, patch[1], patch[0])
        os.close(fd)
        return whole(fresh + "/disk.img")
    finally:
        subprocess.run(["fusermount3", "-u", fresh], check=True)

def same_size_rewrite():
    p = root + "/etc/marker"
    old = open(p).read()
    st = os.stat(p)
    with open(p, "w") as f: f.write(old.replace("c", "d", 5))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
def grow():
    with open(root + "/etc/hostname", "a") as f: f.write("x")
def new_file():
    with open(root + "/usr/lib/new.so", "wb") as f: f.write(os.urandom(50000))
def delete():
    os.unlink(root + "/usr/lib/lib7.so")
def chmod():
    os.chmod(root + "/usr/lib/lib3.so", 0o600)
def new_kernel():
    with open(root + "/boot/kernel8.img.new", "wb") as f: f.write(os.urandom(3000000))
    os.rename(root + "/boot/kernel8.img.new", root + "/boot/kernel8.img")
def boot_file():
    with open(root + "/boot/config.txt", "w") as f: f.write("arm_64bit=1\n")

whole(img)                      # everything in the page cache
for edit in (same_size_rewrite, grow, new_file, delete, chmod, new_kernel, boot_file):
    edit()
    got, want = whole(img), reference()
    assert got == want, f"{edit.__name__}: the mount serves other bytes than a fresh mount"
    print(f"ok {edit.__name__}")

# A write, then a change that keeps the layout: the block moves on with
# the overlay and stays readable, the rest equals a fresh mount.
off = 200 << 20
fd = os.open(img, os.O_RDWR)
os.pwrite(fd, b"W" * 4096, off)
os.close(fd)
st = os.stat(root + "/usr/lib/lib5.so")
os.chmod(root + "/usr/lib/lib5.so", st.st_mode & 0o7777)     # ctime only
assert whole(img) == reference((off, b"W" * 4096)), "overlay kept: bytes differ"
print("ok overlay kept")
# A change of layout drops the block: the cache must not keep it either.
new_file2 = root + "/usr/lib/another.so"
with open(new_file2, "wb") as f: f.write(os.urandom(70000))
got = whole(img)
assert got == reference(), "overlay dropped: its block still cached or served"
print("ok overlay dropped")
PY
rpifs_umount "$T/mnt"
note "ok"
