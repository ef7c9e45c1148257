#!/usr/bin/env python3
"""fat_read.py - an independent FAT32 reader for the fat_*.sh tests.

  fat_read.py IMG OFFSET   list the FAT32 filesystem at byte OFFSET of IMG
  fat_read.py --tree DIR   list a directory tree the same way

Output, sorted: "label<TAB>LABEL" (image only), "d<TAB>path" per directory,
"f<TAB>path<TAB>size<TAB>sha256" per file. Long names are decoded from
UTF-16LE with surrogate pairs (mtools 4.0.32 turns non-BMP characters into
'_', so it cannot check those). While reading the image it also checks, and
exits 1 naming the problem: LFN ordinals and checksums, "." and ".."
clusters (".." is 0 below the root), chain lengths matching file sizes, and
no cluster used twice.
"""
import hashlib
import os
import struct
import sys


def die(msg):
    print("fat_read: " + msg, file=sys.stderr)
    sys.exit(1)


def checksum(sfn):
    s = 0
    for c in sfn:
        s = (((s & 1) << 7) + (s >> 1) + c) & 0xFF
    return s


def short_name(e, ntres):
    base = e[0:8].rstrip(b" ")
    ext = e[8:11].rstrip(b" ")
    if base[:1] == b"\x05":
        base = b"\xe5" + base[1:]
    base = base.decode("ascii")
    ext = ext.decode("ascii")
    if ntres & 0x08:
        base = base.lower()
    if ntres & 0x10:
        ext = ext.lower()
    return base + ("." + ext if ext else "")


class Fat:
    def __init__(self, path, off):
        self.f = open(path, "rb")
        self.off = off
        bs = self.rd(0, 512)
        if bs[510:512] != b"\x55\xaa":
            die("no 55 AA signature")
        bps, spc, rsvd, nfats = struct.unpack_from("<HBHB", bs, 11)
        (fatsz,) = struct.unpack_from("<I", bs, 36)
        (self.root,) = struct.unpack_from("<I", bs, 44)
        self.label_bs = bs[71:82].decode("ascii").rstrip()
        self.cs = bps * spc
        self.data = (rsvd + nfats * fatsz) * bps
        self.fat = self.rd(rsvd * bps, fatsz * bps)
        if self.fat != self.rd((rsvd + fatsz) * bps, fatsz * bps):
            die("the two FATs differ")
        self.seen = set()

    def rd(self, o, n):
        self.f.seek(self.off + o)
        b = self.f.read(n)
        if len(b) != n:
            die("short read at %d" % o)
        return b

    def chain(self, c):
        out = []
        while 2 <= c < 0x0FFFFFF8:
            if c in self.seen:
                die("cluster %d used twice" % c)
            self.seen.add(c)
            out.append(c)
            (c,) = struct.unpack_from("<I", self.fat, 4 * c)
            c &= 0x0FFFFFFF
        return out

    def runs(self, chain):
        """Contiguous runs (first, count) of a chain."""
        i = 0
        while i < len(chain):
            j = i
            while j + 1 < len(chain) and chain[j + 1] == chain[j] + 1:
                j += 1
            yield chain[i], j - i + 1
            i = j + 1

    def read_chain(self, chain, size, sink):
        left = size
        for first, n in self.runs(chain):
            o = self.data + (first - 2) * self.cs
            length = min(left, n * self.cs)
            while length > 0:
                k = min(length, 1 << 22)
                sink(self.rd(o, k))
                o += k
                length -= k
                left -= k

    def walk(self, first, path, parent, out):
        ch = self.chain(first)
        buf = bytearray()
        self.read_chain(ch, len(ch) * self.cs, buf.extend)
        lfn, lfn_sum, lfn_next = [], None, 0
        for i in range(0, len(buf), 32):
            e = bytes(buf[i:i + 32])
            if e[0] == 0:
                break
            if e[0] == 0xE5:
                continue
            attr = e[11]
            if attr == 0x0F:
                ordn = e[0]
                if ordn & 0x40:
                    lfn, lfn_sum, lfn_next = [], e[13], ordn & 0x3F
                elif ordn != lfn_next or e[13] != lfn_sum:
                    die("%s: LFN slot out of order or checksum changes" % path)
                units = [struct.unpack_from("<H", e, o)[0]
                         for o in (1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30)]
                lfn = units + lfn
                lfn_next = (ordn & 0x3F) - 1
                continue
            name83 = e[0:11]
            clus = struct.unpack_from("<H", e, 20)[0] << 16 | struct.unpack_from("<H", e, 26)[0]
            (size,) = struct.unpack_from("<I", e, 28)
            if attr & 0x08:
                if parent is not None:
                    die("%s: volume label outside the root" % path)
                out.append("label\t" + name83.decode("ascii").rstrip())
                lfn = []
                continue
            if name83 in (b".          ", b"..         "):
                want = first if name83[1] == 0x20 else parent
                if clus != want:
                    die("%s: %r points at cluster %d, want %d" % (path, name83, clus, want))
                continue
            if lfn:
                if lfn_next != 0 or lfn_sum != checksum(name83):
                    die("%s: LFN for %r incomplete or bad checksum" % (path, name83))
                if 0 in lfn:
                    lfn = lfn[:lfn.index(0)]
                name = b"".join(struct.pack("<H", u) for u in lfn).decode(
                    "utf-16-le", errors="strict")
            else:
                name = short_name(name83, e[12])
            lfn = []
            p = path + "/" + name if path else name
            if attr & 0x10:
                out.append("d\t" + p)
                self.walk(clus, p, first if parent is not None else 0, out)
            else:
                ch = self.chain(clus) if clus else []
                if len(ch) != (size + self.cs - 1) // self.cs:
                    die("%s: %d clusters for %d bytes" % (p, len(ch), size))
                h = hashlib.sha256()
                self.read_chain(ch, size, h.update)
                out.append("f\t%s\t%d\t%s" % (p, size, h.hexdigest()))


def tree(top):
    out = []
    for dirpath, dirs, files in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        for d in dirs:
            out.append("d\t" + os.path.normpath(os.path.join(rel, d)))
        for fn in files:
            full = os.path.join(dirpath, fn)
            h = hashlib.sha256()
            with open(full, "rb") as f:
                for b in iter(lambda: f.read(1 << 22), b""):
                    h.update(b)
            out.append("f\t%s\t%d\t%s" % (os.path.normpath(os.path.join(rel, fn)),
                                          os.path.getsize(full), h.hexdigest()))
    return out


def main():
    # Names are bytes on Linux; print them as UTF-8 whatever the locale.
    sys.stdout.reconfigure(encoding="utf-8", errors="surrogateescape")
    if len(sys.argv) == 3 and sys.argv[1] == "--tree":
        out = tree(sys.argv[2])
    elif len(sys.argv) == 3:
        fs = Fat(sys.argv[1], int(sys.argv[2]))
        out = []
        fs.walk(fs.root, "", None, out)
    else:
        die("usage: fat_read.py IMG OFFSET | --tree DIR")
    for line in sorted(out):
        print(line)


main()
