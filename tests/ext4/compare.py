#!/usr/bin/env python3
"""compare.py - check that an ext4 image holds a source tree, entry by entry.

  compare.py snap SRC SNAP.json [--skip REL]
      Record every entry of SRC (lstat, xattrs, symlink target, sha256 of
      regular files). Reads with O_NOATIME, so taking the snapshot changes no
      atime. Take it BEFORE mounting: serving the image reads the sources.
      --skip REL: the directory that becomes empty in ext4 (boot).

  compare.py kernel SNAP.json DIR [--root-owner] [--source-times]
      Compare with DIR, a kernel (loop, read-only) mount of the partition.

  compare.py debugfs SNAP.json PART.img [--root-owner] [--source-times]
      Compare through libext2fs instead: the directory tree with `ls -p`,
      every inode with `stat <ino>`, file bytes read from the partition
      at the extents `ex <ino>` reports.

Compared: the set of names, type, permission bits (with setuid/setgid/
sticky), owner and group, size, link count (occurrences in the tree),
atime/mtime/ctime (and crtime through debugfs) to the nanosecond: atime,
ctime and crtime equal mtime unless --source-times says the image keeps the
source's, device numbers, symlink targets, file
contents, xattr names (and values, through the kernel). Prints one line per
difference (at most 50) and exits 1 if there is any; else prints the number
of entries compared.
"""
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import tempfile

NOATIME = getattr(os, "O_NOATIME", 0)


def enc(b):
    return os.fsdecode(b)


BLK = 4096
ZERO = bytes(BLK)


class ContentHash:
    """sha256 of a file's logical bytes that ignores how zeros are stored:
    the size, then (index, bytes) of every 4 KiB block that is not all zero.
    A hole, an unwritten extent and a written zero block hash the same, so
    sparse files are hashed by their data alone."""

    def __init__(self, size):
        self.h = hashlib.sha256(b"%d:" % size)
        self.size = size

    def add(self, off, data):
        """data read at off (off a multiple of BLK)."""
        for i in range(0, len(data), BLK):
            b = data[i:i + BLK]
            if b != ZERO[:len(b)]:
                self.h.update(b"%d:" % ((off + i) // BLK))
                self.h.update(b)

    def hexdigest(self):
        return self.h.hexdigest()


def sha256_of(path):
    fd = os.open(path, os.O_RDONLY | NOATIME | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        ch = ContentHash(size)
        off = 0
        while off < size:
            try:
                data = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break               # ENXIO: only a hole is left
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
            pos = data - data % BLK
            while pos < hole:
                n = min(1 << 20, hole - pos)
                ch.add(pos, os.pread(fd, n, pos))
                pos += n
            off = hole
    finally:
        os.close(fd)
    return ch.hexdigest()


def listdir_noatime(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | NOATIME)
    try:
        return sorted(os.fsencode(n) for n in os.listdir(fd))
    finally:
        os.close(fd)


def xattrs_of(path):
    out = {}
    for name in sorted(os.listxattr(path, follow_symlinks=False)):
        out[name] = os.getxattr(path, name, follow_symlinks=False).hex()
    return out


def entry(path, with_hash=True):
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        # readlink updates a symlink's atime (relatime): read it first,
        # as the tree scan will have done, then take the times.
        link = os.readlink(path)
        st = os.lstat(path)
    e = {
        "mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
        "size": st.st_size, "nlink": st.st_nlink,
        "atime": st.st_atime_ns, "mtime": st.st_mtime_ns,
        "ctime": st.st_ctime_ns, "dev": st.st_dev, "ino": st.st_ino,
        "rdev": [os.major(st.st_rdev), os.minor(st.st_rdev)],
        "xattrs": xattrs_of(path),
    }
    if stat.S_ISLNK(st.st_mode):
        e["link"] = enc(link)
    if stat.S_ISREG(st.st_mode) and with_hash:
        e["sha256"] = sha256_of(path)
    return e


def walk(top, skip=None):
    """rel -> entry; rel "" is the root. skip: rel of a dir kept empty."""
    out = {}
    stack = [b""]
    topb = os.fsencode(top)
    while stack:
        rel = stack.pop()
        path = os.path.join(topb, rel) if rel else topb
        out[enc(rel)] = entry(path)
        if stat.S_ISDIR(out[enc(rel)]["mode"]) and enc(rel) != skip:
            for name in listdir_noatime(path):
                stack.append(os.path.join(rel, name) if rel else name)
    return out


def expected(snap, args):
    """What the image must hold: link counts as occurrences in the tree,
    directory link counts from the tree's shape, owners mapped (with
    --root-owner), atime and ctime equal to mtime (unless --source-times:
    then the source's)."""
    root_owner = "--root-owner" in args
    source_times = "--source-times" in args
    ents = snap["entries"]
    skip = snap.get("skip")
    occ = {}
    for rel, e in ents.items():
        if not stat.S_ISDIR(e["mode"]):
            occ[(e["dev"], e["ino"])] = occ.get((e["dev"], e["ino"]), 0) + 1
    subdirs = {rel: 0 for rel, e in ents.items() if stat.S_ISDIR(e["mode"])}
    for rel, e in ents.items():
        if rel and stat.S_ISDIR(e["mode"]):
            subdirs[os.path.dirname(rel)] += 1
    exp = {}
    for rel, e in ents.items():
        x = dict(e)
        if stat.S_ISDIR(e["mode"]):
            n = 2 + (0 if rel == skip else subdirs[rel])
            if rel == "" and "lost+found" not in ents:
                n += 1
            x["nlink"] = n if n <= 65000 else 1
        else:
            x["nlink"] = occ[(e["dev"], e["ino"])]
        if root_owner:
            x["uid"] = x["gid"] = 0
        if not source_times:
            x["atime"] = x["ctime"] = x["mtime"]
        exp[rel] = x
    return exp


class Diff:
    def __init__(self):
        self.n = 0

    def __call__(self, rel, what, want, got):
        self.n += 1
        if self.n <= 50:
            if len(rel) > 120:
                rel = rel[:50] + "..." + rel[-60:]
            print("/%s: %s: source %r, image %r" % (rel, what, want, got))


def compare_entry(diff, rel, want, got, fields):
    for f in fields:
        if f in want and f in got and want[f] != got[f]:
            diff(rel, f, want[f], got[f])


def check_names(diff, exp, got):
    for rel in sorted(set(exp) | set(got)):
        if rel == "lost+found" and rel not in exp:
            g = got[rel]
            if not stat.S_ISDIR(g["mode"]) or stat.S_IMODE(g["mode"]) != 0o700:
                diff(rel, "lost+found", "dir 0700", oct(g["mode"]))
            continue
        if rel not in got:
            diff(rel, "missing in image", "present", None)
        elif rel not in exp:
            diff(rel, "extra in image", None, "present")


FULL = ["mode", "uid", "gid", "nlink", "atime", "mtime", "ctime", "rdev",
        "link", "sha256", "xattrs"]


def cmd_snap(args):
    src, out = args[0], args[1]
    skip = args[args.index("--skip") + 1] if "--skip" in args else None
    ents = walk(src, skip)
    if skip is not None and skip not in ents:
        skip = None
    with open(out, "w") as f:
        json.dump({"skip": skip, "entries": ents}, f)


def cmd_kernel(args):
    snap = json.load(open(args[0]))
    exp = expected(snap, args)
    got = walk(args[1])
    diff = Diff()
    check_names(diff, exp, got)
    for rel in sorted(set(exp) & set(got)):
        w, g = exp[rel], got[rel]
        fields = list(FULL)
        if not stat.S_ISDIR(w["mode"]):
            fields.append("size")
        if not (stat.S_ISCHR(w["mode"]) or stat.S_ISBLK(w["mode"])):
            fields.remove("rdev")
        compare_entry(diff, rel, w, g, fields)
    return report(diff, len(exp))


# --- debugfs -------------------------------------------------------------------

LS_RE = re.compile(rb"/(\d+)/([0-7]{6})/(-?\d+)/(-?\d+)/(.*?)/(\d*)/\n", re.S)


def debugfs_batch(img, cmds):
    """Run commands in one debugfs; returns {command: output}."""
    with tempfile.NamedTemporaryFile("wb", delete=False) as f:
        f.write(b"".join(c + b"\n" for c in cmds))
        name = f.name
    try:
        r = subprocess.run(["debugfs", "-f", name, img], capture_output=True)
    finally:
        os.unlink(name)
    out = {}
    parts = re.split(rb"^debugfs: (.*)\n", r.stdout, flags=re.M)
    for i in range(1, len(parts) - 1, 2):
        out[parts[i]] = parts[i + 1]
    return out


EX_RE = re.compile(rb"^\s*\d+/\s*\d+\s+\d+/\s*\d+\s+(\d+)\s*-\s*(\d+)\s+"
                   rb"(\d+)\s*-\s*(\d+)\s+(\d+)[ \t]*(.*)$", re.M)


def symlink_target(img, size, text):
    """A fast symlink's target is in the stat output; a slow one's in its
    first block."""
    m = re.search(rb'Fast link dest: "', text)
    if m:
        return text[m.end():m.end() + size]
    m = re.search(rb"EXTENTS:\n\(0\):(\d+)", text)
    if not m:
        return b"?"
    with open(img, "rb") as f:
        f.seek(int(m.group(1)) * BLK)
        return f.read(size)


def dtime(field):
    lo, extra = (int(x, 16) for x in field.split(b":"))
    sec = (lo ^ 0x80000000) - 0x80000000 + ((extra & 3) << 32)
    return sec * 10**9 + (extra >> 2)


def parse_stat(text):
    e = {}
    m = re.search(rb"Mode:\s+(\d+)", text)
    if not m:
        raise ValueError("no Mode in debugfs stat output: %r" % text[:300])
    e["perm"] = int(m.group(1), 8)
    # debugfs prints ids as signed 32-bit numbers.
    m = re.search(rb"User:\s+(-?\d+)\s+Group:\s+(-?\d+)", text)
    e["uid"], e["gid"] = int(m.group(1)) & 0xFFFFFFFF, int(m.group(2)) & 0xFFFFFFFF
    m = re.search(rb"Size: (\d+)", text)
    e["size"] = int(m.group(1))
    e["nlink"] = int(re.search(rb"Links: (\d+)", text).group(1))
    for t in ("atime", "mtime", "ctime", "crtime"):
        m = re.search(rb"^\s*" + t.encode() + rb": (0x[0-9a-f]+:[0-9a-f]+)",
                      text, re.M)
        if m:
            e[t] = dtime(m.group(1))
    m = re.search(rb"Device major/minor number: (\d+):(\d+)", text)
    if m:
        e["rdev"] = [int(m.group(1)), int(m.group(2))]
    names = []
    m = re.search(rb"Extended attributes:\n((?:  .*\n)*)", text)
    if m:
        names = [l.split(b" (")[0].strip() for l in m.group(1).splitlines()]
    e["xattr_names"] = sorted(enc(n) for n in names)
    return e


def cmd_debugfs(args):
    snap = json.load(open(args[0]))
    img = args[1]
    exp = expected(snap, args)
    # Walk the directory tree breadth first, one debugfs run per level.
    got = {}
    level = {2: b""}
    while level:
        outs = debugfs_batch(img, [b"ls -p <%d>" % i for i in level])
        nxt = {}
        for ino, rel in level.items():
            for m in LS_RE.finditer(outs.get(b"ls -p <%d>" % ino, b"")):
                name = m.group(5)
                # Unused records (inode 0, e.g. lost+found's spare
                # blocks) are listed too: skip them.
                if name in (b".", b"..") or m.group(1) == b"0":
                    continue
                r = os.path.join(rel, name) if rel else name
                got[enc(r)] = {"ino": int(m.group(1)),
                               "mode": int(m.group(2), 8)}
                if stat.S_ISDIR(int(m.group(2), 8)):
                    nxt[int(m.group(1))] = r
        level = nxt
    got[""] = {"ino": 2, "mode": stat.S_IFDIR}
    inos = sorted({g["ino"] for g in got.values()})
    stats = debugfs_batch(img, [b"stat <%d>" % i for i in inos])
    for rel, g in got.items():
        s = parse_stat(stats[b"stat <%d>" % g["ino"]])
        g.update(s)
        g["mode"] = stat.S_IFMT(g["mode"]) | s["perm"]
    # File bytes: the extents libext2fs reports (`ex`), read from the
    # partition image.
    files = {g["ino"]: g for g in got.values() if stat.S_ISREG(g["mode"])}
    outs = debugfs_batch(img, [b"ex <%d>" % i for i in files])
    with open(img, "rb") as f:
        for ino, g in files.items():
            ch = ContentHash(g["size"])
            for m in EX_RE.finditer(outs.get(b"ex <%d>" % ino, b"")):
                lblk, pblk, n = int(m.group(1)), int(m.group(3)), int(m.group(5))
                if b"Uninit" in m.group(6):
                    continue        # reads as zeros
                for k in range(0, n, 256):
                    c = min(256, n - k)
                    off = (lblk + k) * BLK
                    f.seek((pblk + k) * BLK)
                    data = f.read(c * BLK)[:max(0, g["size"] - off)]
                    ch.add(off, data)
            g["sha256"] = ch.hexdigest()
    for rel, g in got.items():
        if stat.S_ISLNK(g["mode"]):
            g["link"] = enc(symlink_target(img, g["size"],
                                           stats[b"stat <%d>" % g["ino"]]))
    diff = Diff()
    check_names(diff, exp, got)
    for rel in sorted(set(exp) & set(got)):
        w = dict(exp[rel])
        w["xattr_names"] = sorted(w["xattrs"])
        fields = ["mode", "uid", "gid", "nlink", "atime", "mtime", "ctime",
                  "link", "sha256", "xattr_names"]
        if not stat.S_ISDIR(w["mode"]):
            fields.append("size")
        if stat.S_ISCHR(w["mode"]) or stat.S_ISBLK(w["mode"]):
            fields.append("rdev")
        compare_entry(diff, rel, w, got[rel], fields)
        # crtime: the source's ctime (lstat has no birth time).
        if got[rel].get("crtime") != w["ctime"]:
            diff(rel, "crtime", w["ctime"], got[rel].get("crtime"))
    return report(diff, len(exp))


def report(diff, n):
    if diff.n:
        print("%d differences" % diff.n)
        return 1
    print("%d entries equal" % n)
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    sys.exit({"snap": cmd_snap, "kernel": cmd_kernel,
              "debugfs": cmd_debugfs}[cmd](sys.argv[2:]) or 0)
