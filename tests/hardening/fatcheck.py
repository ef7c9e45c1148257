#!/usr/bin/env python3
"""fatcheck.py P1.img ROOTFS BOOTDIR [--clamp SECONDS] [--warnings LOG]

Compare partition 1 (a FAT32 filesystem copied out of disk.img) with the
boot directory ROOTFS/BOOTDIR, entry by entry: names (long names decoded from
UTF-16), type, size, content (sha256), the attribute byte (directory /
archive, read-only when the owner cannot write), and the write, creation and
access stamps (UTC, 2-second resolution plus the creation tenths; clamped to
--clamp, i.e. SOURCE_DATE_EPOCH, and to 1980..2107).

What the FAT32 generator must leave out, with one warning each, is derived
from the source with the generator's documented rules (doc/rpifs.1, "FAT32
PARTITION"): names that are not valid UTF-8, that have control characters
or \\/:*?"<>|, special files, and symlinks that do not lead (inside the
tree, following links, at most 40) to a regular file inside the boot
directory; a symlink to a file there is served as a copy of that file.
With --warnings LOG, the number of "not put on the FAT32 boot partition"
warnings in LOG must equal the number of entries left out.

The image is read with tests/image/fat_read.py's Fat class (chains, no
cluster used twice); run fat_read.py itself too for its LFN/"."/".."
checks. Prints one line per difference (at most 50), exits 1 if any, else
prints the number of entries compared.
"""
import datetime
import hashlib
import os
import stat
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FAT_READ = os.path.join(HERE, "..", "image", "fat_read.py")
_src = open(FAT_READ).read()
_src = _src[:_src.rindex("\nmain()")]
_ns = {"__name__": "fat_read"}
exec(compile(_src, FAT_READ, "exec"), _ns)
Fat, short_name = _ns["Fat"], _ns["short_name"]

NOATIME = getattr(os, "O_NOATIME", 0)
ATTR_RO, ATTR_DIR, ATTR_ARCH = 0x01, 0x10, 0x20
FAT_LO = 315532800                      # 1980-01-01 00:00:00
FAT_HI = 4354819198                     # 2107-12-31 23:59:58


def stamp(mtime_ns, clamp):
    """(date, time, tenth) as the generator writes them (fat32.c)."""
    s, ns = divmod(mtime_ns, 10**9)
    if clamp is not None and (s > clamp or (s == clamp and ns > 0)):
        s, ns = clamp, 0
    if s < FAT_LO:
        s, ns = FAT_LO, 0
    if s > FAT_HI:
        s, ns = FAT_HI, 0
    d = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=s)
    date = (d.year - 1980) << 9 | d.month << 5 | d.day
    time = d.hour << 11 | d.minute << 5 | d.second // 2
    tenth = (s % 2) * 100 + ns // 10**7
    return date, time, tenth


class Source:
    """The tree as rpifs's tree_lookup() sees it: paths are tuples of
    byte components from the root."""

    def __init__(self, root):
        self.root = os.fsencode(root)

    def path(self, parts):
        return os.path.join(self.root, *parts) if parts else self.root

    def lstat(self, parts):
        try:
            return os.lstat(self.path(parts))
        except OSError:
            return None

    def lookup(self, cur, target, budget):
        if target.startswith(b"/"):
            cur = ()
        for comp in target.split(b"/"):
            if comp in (b"", b"."):
                continue
            if comp == b"..":
                if not cur:
                    return None         # would leave the tree
                cur = cur[:-1]
                continue
            st = self.lstat(cur)
            if len(comp) > 255 or not st or not stat.S_ISDIR(st.st_mode):
                return None
            k = cur + (comp,)
            st = self.lstat(k)
            if not st:
                return None
            if stat.S_ISLNK(st.st_mode):
                budget[0] -= 1
                if budget[0] < 0:
                    return None
                k = self.lookup(cur, os.readlink(self.path(k)), budget)
                if k is None:
                    return None
            cur = k
        return cur

    def listdir(self, parts):
        fd = os.open(self.path(parts), os.O_RDONLY | os.O_DIRECTORY | NOATIME)
        try:
            return sorted(os.fsencode(n) for n in os.listdir(fd))
        finally:
            os.close(fd)

    def sha256(self, parts):
        h = hashlib.sha256()
        fd = os.open(self.path(parts), os.O_RDONLY | NOATIME | os.O_NOFOLLOW)
        try:
            while True:
                b = os.read(fd, 1 << 22)
                if not b:
                    break
                h.update(b)
        finally:
            os.close(fd)
        return h.hexdigest()


def lfn_ok(name):
    return not any(c < 0x20 or c in b'\\/:*?"<>|' for c in name)


def expected(src, top, clamp):
    """{path: record} for what partition 1 must hold, and the skip count."""
    out = {}
    skipped = []

    def rec(kind, data_parts, st):
        r = {"type": kind,
             "attr": (ATTR_DIR if kind == "d" else ATTR_ARCH) |
                     (0 if st.st_mode & stat.S_IWUSR else ATTR_RO),
             "stamp": stamp(st.st_mtime_ns, clamp)}
        if kind == "f":
            r["size"] = st.st_size
            r["sha256"] = src.sha256(data_parts)
        return r

    def plan(dparts, rel):
        for name in src.listdir(dparts):
            parts = dparts + (name,)
            try:
                uname = name.decode("utf-8")
            except UnicodeDecodeError:
                skipped.append(parts)
                continue
            if len(uname.encode("utf-16-le")) // 2 > 255 or not lfn_ok(name):
                skipped.append(parts)
                continue
            st = src.lstat(parts)
            data = parts
            if stat.S_ISLNK(st.st_mode):
                data = src.lookup(dparts, os.readlink(src.path(parts)), [40])
                dst = src.lstat(data) if data is not None else None
                if (data is None or data[:len(top)] != top or not dst or
                        not stat.S_ISREG(dst.st_mode)):
                    skipped.append(parts)
                    continue
                st = dst
            elif not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
                skipped.append(parts)
                continue
            p = rel + "/" + uname if rel else uname
            if stat.S_ISDIR(st.st_mode):
                out[p] = rec("d", data, st)
                plan(parts, p)
            else:
                out[p] = rec("f", data, st)

    st = src.lstat(top)
    out[""] = {"type": "label", "stamp": stamp(st.st_mtime_ns, clamp)}
    plan(top, "")
    return out, skipped


def read_image(img):
    fs = Fat(img, 0)
    out = {}

    def walk(first, path, is_root):
        ch = fs.chain(first)
        buf = bytearray()
        fs.read_chain(ch, len(ch) * fs.cs, buf.extend)
        lfn = []
        for i in range(0, len(buf), 32):
            e = bytes(buf[i:i + 32])
            if e[0] == 0:
                break
            if e[0] == 0xE5:
                continue
            attr = e[11]
            if attr == 0x0F:
                if e[0] & 0x40:
                    lfn = []
                lfn = [struct.unpack_from("<H", e, o)[0] for o in
                       (1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30)] + lfn
                continue
            name83 = e[0:11]
            crt_tenth = e[13]
            crt_time, crt_date, acc_date = struct.unpack_from("<HHH", e, 14)
            wrt_time, wrt_date = struct.unpack_from("<HH", e, 22)
            clus = struct.unpack_from("<H", e, 20)[0] << 16 | \
                struct.unpack_from("<H", e, 26)[0]
            (size,) = struct.unpack_from("<I", e, 28)
            times = {"wrt": (wrt_date, wrt_time), "crt": (crt_date, crt_time, crt_tenth),
                     "acc": acc_date}
            if attr & 0x08:
                out[""] = {"type": "label", "times": times,
                           "label": name83.decode("ascii").rstrip()}
                lfn = []
                continue
            if name83 in (b".          ", b"..         "):
                lfn = []
                continue
            if lfn:
                if 0 in lfn:
                    lfn = lfn[:lfn.index(0)]
                name = b"".join(struct.pack("<H", u) for u in lfn).decode(
                    "utf-16-le", errors="surrogatepass")
            else:
                name = short_name(name83, e[12])
            lfn = []
            p = path + "/" + name if path else name
            if p in out:
                out.setdefault("!dup", []).append(p)
            if attr & ATTR_DIR:
                out[p] = {"type": "d", "attr": attr, "times": times}
                walk(clus, p, False)
            else:
                h = hashlib.sha256()
                fs.read_chain(fs.chain(clus) if clus else [], size, h.update)
                out[p] = {"type": "f", "attr": attr, "times": times,
                          "size": size, "sha256": h.hexdigest()}

    walk(fs.root, "", True)
    return out


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    img, root, bootdir = args[0], args[1], args[2]
    clamp = int(argv[argv.index("--clamp") + 1]) if "--clamp" in argv else None
    log = argv[argv.index("--warnings") + 1] if "--warnings" in argv else None
    src = Source(root)
    top = tuple(os.fsencode(bootdir).split(b"/"))
    exp, skipped = expected(src, top, clamp)
    got = read_image(img)
    n = 0

    def diff(p, what, want, have):
        nonlocal n
        n += 1
        if n <= 50:
            print("boot/%s: %s: source %r, image %r" % (p[:150], what, want, have))

    for p in got.pop("!dup", []):
        diff(p, "name twice in one directory", 1, 2)
    for p in sorted(set(exp) | set(got)):
        w, g = exp.get(p), got.get(p)
        if g is None:
            diff(p, "missing in image", "present", None)
            continue
        if w is None:
            diff(p, "extra in image", None, g["type"])
            continue
        if w["type"] != g["type"]:
            diff(p, "type", w["type"], g["type"])
            continue
        date, time, tenth = w["stamp"]
        t = g["times"]
        if t["wrt"] != (date, time):
            diff(p, "write date/time", (date, time), t["wrt"])
        if t["crt"] != (date, time, tenth):
            diff(p, "creation date/time/tenth", (date, time, tenth), t["crt"])
        if t["acc"] != date:
            diff(p, "access date", date, t["acc"])
        if w["type"] == "label":
            if g["label"] != "BOOT":
                diff(p, "label", "BOOT", g["label"])
            continue
        for f in ("attr", "size", "sha256"):
            if f in w and w[f] != g.get(f):
                diff(p, f, w[f], g.get(f))
    if log is not None:
        with open(log, "rb") as f:
            warned = f.read().count(b"not put on the FAT32 boot partition")
        if warned != len(skipped):
            diff("", "warnings for entries left out", len(skipped), warned)
            for parts in skipped[:20]:
                print("  left out: %r" % b"/".join(parts))
    if n:
        print("%d differences" % n)
        return 1
    print("%d entries equal (%d left out, warned)" % (len(exp), len(skipped)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
