#!/usr/bin/env python3
"""mktree.py DIR [--big] - a fixture tree covering what the ext4 builder must
preserve (at least what `mke2fs -d` preserves). Needs root (owners, device
nodes, trusted.* xattrs).

  regular files: empty, tiny, block-sized, block+1, random data, a file
      larger than one extent (32768 blocks) with --big
  sparse files: holes at the start, middle and end; many data segments
      (an extent tree deeper than the inode); a 6 GiB sparse file
  directories: empty, deep (a path of ~3 000 bytes), a 255-byte name,
      sticky, setgid; names with spaces, newlines, UTF-8 and non-UTF-8 bytes
  symlinks: 1 byte, 59 bytes (fast), 60 bytes (slow), 4 000 bytes
  hard links: a file with 3 names in 2 directories, a hard-linked symlink,
      a hard-linked fifo
  devices: char and block, old (<256) and new encodings; fifo; socket
  owners: 0, 1000, ids above 65535; modes with setuid/setgid/sticky, 0000
  times: nanoseconds, before 1970, after 2038, after 2106
  xattrs: user.*, trusted.*, security.capability, POSIX ACLs (access and
      default), a value too big for the inode (an xattr block), many names
  boot/: files that must not appear in ext4 (boot becomes an empty dir)
"""
import os
import socket
import stat
import struct
import sys
import zlib

root = sys.argv[1]
big = "--big" in sys.argv[2:]
os.makedirs(root, exist_ok=True)


def p(*parts):
    return os.path.join(root, *parts)


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def sparse(path, size, chunks):
    """size bytes, data only at the (offset, bytes) chunks."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in chunks:
            f.seek(off)
            f.write(data)


def rnd(n, seed):
    # Deterministic pseudo-random bytes (fixture reproducible across runs).
    out = bytearray()
    x = seed * 2654435761 & 0xFFFFFFFF or 1
    while len(out) < n:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out += struct.pack("<I", x)
    return bytes(out[:n])


def acl(entries):
    """Linux xattr format of a POSIX ACL: version 2, (tag, perm, id)."""
    ACL_UNDEFINED_ID = 0xFFFFFFFF
    b = struct.pack("<I", 2)
    for tag, perm, ident in entries:
        b += struct.pack("<HHI", tag, perm,
                         ACL_UNDEFINED_ID if ident is None else ident)
    return b


USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 1, 2, 4, 8, 0x10, 0x20

# --- boot: must become an empty directory in ext4 --------------------------
os.makedirs(p("boot", "firmware"), exist_ok=True)
write(p("boot", "config.txt"), b"arm_64bit=1\n")
write(p("boot", "firmware", "start.elf"), rnd(10000, 1))
os.chmod(p("boot"), 0o700)
os.chown(p("boot"), 0, 4)

# --- regular files -------------------------------------------------------------
os.makedirs(p("files"), exist_ok=True)
write(p("files", "empty"), b"")
write(p("files", "one"), b"x")
write(p("files", "block"), rnd(4096, 2))
write(p("files", "block+1"), rnd(4097, 3))
write(p("files", "random-1M"), rnd(1 << 20, 4))
write(p("files", "text"), b"hello\n" * 1000)
if big:
    # More than one extent's worth of blocks (32768 x 4 KiB = 128 MiB).
    with open(p("files", "big-140M"), "wb") as f:
        chunk = rnd(1 << 20, 5)
        for i in range(140):
            f.write(chunk[:-4] + struct.pack("<I", i))

# --- sparse files ---------------------------------------------------------------
os.makedirs(p("sparse"), exist_ok=True)
sparse(p("sparse", "hole-start"), 1 << 20, [((1 << 20) - 5000, rnd(5000, 6))])
sparse(p("sparse", "hole-middle"), 3 << 20,
       [(0, rnd(8192, 7)), ((3 << 20) - 8192, rnd(8192, 8))])
sparse(p("sparse", "hole-end"), 10 << 20, [(0, rnd(12345, 9))])
sparse(p("sparse", "all-hole"), 5 << 20, [])
# Unaligned data segments sharing blocks, and many of them: the extent tree
# no longer fits in the inode.
sparse(p("sparse", "many-segments"), 64 << 20,
       [(i * (1 << 20) + 1000 + i, rnd(3000, 100 + i)) for i in range(40)])
# A 6 GiB file like /var/log/lastlog: almost all hole.
sparse(p("sparse", "six-gib"), 6 << 30,
       [(0, b"head"), (3 << 30, rnd(70000, 10)), ((6 << 30) - 3, b"end")])

# --- directories and names ------------------------------------------------------
os.makedirs(p("dirs", "empty"), exist_ok=True)
d = p("dirs", "deep")
for i in range(30):
    d = os.path.join(d, "level%02d-" % i + "d" * 90)
os.makedirs(d, exist_ok=True)
write(os.path.join(d, "bottom"), b"the bottom\n")
name255 = "n" * 250 + ".long"
assert len(name255) == 255
os.makedirs(p("dirs", name255), exist_ok=True)
write(p("dirs", name255, "f" * 255), b"255\n")
write(p("dirs", "with space"), b"s\n")
write(p("dirs", "new\nline"), b"nl\n")
write(p("dirs", "ünïcødé-名前"), b"u\n")
with open(os.path.join(p("dirs").encode(), b"latin1-\xe9\xff"), "wb") as f:
    f.write(b"bytes\n")
os.makedirs(p("dirs", "sticky"), exist_ok=True)
os.chmod(p("dirs", "sticky"), 0o1777)
os.makedirs(p("dirs", "setgid"), exist_ok=True)
os.chmod(p("dirs", "setgid"), 0o2775)
os.makedirs(p("dirs", "many"), exist_ok=True)
for i in range(300):         # more than one block: an htree
    write(p("dirs", "many", "entry-%04d" % i), b"")

# --- symlinks ----------------------------------------------------------------------
os.makedirs(p("links"), exist_ok=True)
os.symlink("x", p("links", "len1"))
os.symlink("t" * 59, p("links", "len59-fast"))
os.symlink("t" * 60, p("links", "len60-slow"))
os.symlink("/" + "a/" * 1999 + "end", p("links", "len4000"))
os.symlink("../files/text", p("links", "relative"))
os.symlink("/etc/passwd", p("links", "absolute-dangling"))

# --- hard links --------------------------------------------------------------------
os.makedirs(p("hard", "a"), exist_ok=True)
os.makedirs(p("hard", "b"), exist_ok=True)
write(p("hard", "a", "one"), rnd(20000, 11))
os.link(p("hard", "a", "one"), p("hard", "a", "two"))
os.link(p("hard", "a", "one"), p("hard", "b", "three"))
os.symlink("target-of-linked-symlink", p("hard", "a", "sym"))
os.link(p("hard", "a", "sym"), p("hard", "b", "sym-again"), follow_symlinks=False)
os.mkfifo(p("hard", "a", "fifo"))
os.link(p("hard", "a", "fifo"), p("hard", "b", "fifo-again"))
# A link to a file under boot/ does not count in ext4 (boot is emptied).
os.link(p("boot", "config.txt"), p("hard", "from-boot"))

# --- special files -------------------------------------------------------------
os.makedirs(p("dev"), exist_ok=True)
os.mknod(p("dev", "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
os.mknod(p("dev", "sda1"), 0o660 | stat.S_IFBLK, os.makedev(8, 1))
os.mknod(p("dev", "nvme-major259"), 0o660 | stat.S_IFBLK, os.makedev(259, 1))
os.mknod(p("dev", "big-minor"), 0o600 | stat.S_IFCHR, os.makedev(300, 70000))
os.mknod(p("dev", "max"), 0o600 | stat.S_IFCHR, os.makedev(4095, 1048575))
os.mkfifo(p("dev", "fifo"), 0o640)
s = socket.socket(socket.AF_UNIX)
s.bind(p("dev", "socket"))
s.close()

# --- owners and modes --------------------------------------------------------------
os.makedirs(p("own"), exist_ok=True)
for name, uid, gid, mode in [
        ("root", 0, 0, 0o644), ("user", 1000, 1000, 0o600),
        ("high", 100000, 200000, 0o640), ("higher", 4000000000, 65536, 0o644),
        ("setuid", 0, 0, 0o4755), ("setgid", 0, 50, 0o2755),
        ("sticky-file", 0, 0, 0o1644), ("none", 1, 1, 0o000),
        ("all", 0, 0, 0o7777)]:
    write(p("own", name), name.encode())
    os.chown(p("own", name), uid, gid)
    os.chmod(p("own", name), mode)
os.symlink("user", p("own", "link-owned"))
os.chown(p("own", "link-owned"), 1234, 5678, follow_symlinks=False)
os.makedirs(p("own", "dir-high"), exist_ok=True)
os.chown(p("own", "dir-high"), 70000, 70001)

# --- xattrs ---------------------------------------------------------------------------
os.makedirs(p("xattr"), exist_ok=True)
write(p("xattr", "user"), b"u")
os.setxattr(p("xattr", "user"), "user.mime_type", b"text/plain")
os.setxattr(p("xattr", "user"), "user.empty", b"")
write(p("xattr", "trusted"), b"t")
os.setxattr(p("xattr", "trusted"), "trusted.overlay.opaque", b"y")
write(p("xattr", "ping"), b"p", 0o755)
# security.capability v2: cap_net_raw (13) permitted+effective.
cap = struct.pack("<IIIII", 0x02000000 | 1, 1 << 13, 0, 0, 0)
os.setxattr(p("xattr", "ping"), "security.capability", cap)
write(p("xattr", "acl-file"), b"a")
os.setxattr(p("xattr", "acl-file"), "system.posix_acl_access",
            acl([(USER_OBJ, 6, None), (USER, 4, 1000), (USER, 6, 100000),
                 (GROUP_OBJ, 4, None), (GROUP, 4, 50), (MASK, 6, None),
                 (OTHER, 0, None)]))
os.makedirs(p("xattr", "acl-dir"), exist_ok=True)
os.setxattr(p("xattr", "acl-dir"), "system.posix_acl_access",
            acl([(USER_OBJ, 7, None), (USER, 5, 1001), (GROUP_OBJ, 5, None),
                 (MASK, 5, None), (OTHER, 5, None)]))
os.setxattr(p("xattr", "acl-dir"), "system.posix_acl_default",
            acl([(USER_OBJ, 7, None), (GROUP_OBJ, 5, None), (GROUP, 7, 2000),
                 (MASK, 7, None), (OTHER, 0, None)]))
write(p("xattr", "big-value"), b"b")
os.setxattr(p("xattr", "big-value"), "user.big", rnd(3000, 12))
write(p("xattr", "many"), b"m")
for i in range(40):
    os.setxattr(p("xattr", "many"), "user.attr%02d" % i, b"v" * i)
os.symlink("user", p("xattr", "symlink-with-xattr"))
os.setxattr(p("xattr", "symlink-with-xattr"), "trusted.sym", b"on a link",
            follow_symlinks=False)

# --- times: set last, bottom-up, so directory times stay as set -------------------
times = [
    ("files/text", (1700000000, 123456789), (1600000000, 987654321)),
    ("files/empty", (-1000000000, 5), (-86400, 999999999)),      # before 1970
    ("files/one", (2200000000, 1), (4000000000, 500000000)),     # 2039, 2096
    ("files/block", (5000000000, 42), (8000000000, 7)),          # after 2106
    ("links/len60-slow", (1234567890, 111), (1234567891, 222)),
    ("dirs/empty", (1111111111, 333), (1222222222, 444)),
    ("dev/null", (1300000000, 1), (1300000001, 2)),
]
for rel, a, m in times:
    os.utime(p(rel), ns=(a[0] * 10**9 + a[1], m[0] * 10**9 + m[1]),
             follow_symlinks=False)
for dirpath, dirnames, filenames in os.walk(root, topdown=False):
    if dirpath == root:
        continue
    rel = os.path.relpath(dirpath, root)
    if rel == "dirs/empty":
        continue
    h = zlib.crc32(os.fsencode(rel)) % 10**9
    os.utime(dirpath, ns=(1650000000 * 10**9 + h, 1650000100 * 10**9 + h))
os.utime(root, ns=(1650000200 * 10**9 + 17, 1650000300 * 10**9 + 19))
