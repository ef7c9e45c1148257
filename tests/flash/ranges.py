#!/usr/bin/env python3
"""ranges.py - data and holes of an image, as SEEK_DATA/SEEK_HOLE report them
(on a mounted MNT/disk.img: the engine's hole map).

  ranges.py check IMG TARGET ORIG
      TARGET must equal IMG on every data range of IMG, and still hold the
      bytes of ORIG (what TARGET held before the write) on every hole, 4 KiB
      blocks wholly inside a hole: a copy skips holes and leaves what was
      there. Prints "DATA HOLE" byte counts; exits 1 on the first difference.
"""
import os
import sys

BLK = 4096


def extents(fd, size):
    off = 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            d = size
        if d > off:
            yield off, min(d, size), False
            off = d
            continue
        h = min(os.lseek(fd, off, os.SEEK_HOLE), size)
        yield off, h, True
        off = h


def same(fa, fb, a, b):
    while a < b:
        n = min(b - a, 1 << 22)
        x, y = os.pread(fa, n, a), os.pread(fb, n, a)
        if x != y:
            i = next(i for i in range(n) if x[i:i + 1] != y[i:i + 1])
            return a + i
        a += n
    return None


def main():
    img, tgt, orig = sys.argv[2:5]
    fi, ft, fo = (os.open(p, os.O_RDONLY) for p in (img, tgt, orig))
    size = os.fstat(fi).st_size
    data = hole = 0
    for a, b, is_data in extents(fi, size):
        if is_data:
            bad = same(fi, ft, a, b)
            data += b - a
            what = "the image"
        else:
            a, b = (a + BLK - 1) // BLK * BLK, b // BLK * BLK
            if a >= b:
                continue
            bad = same(fo, ft, a, b)
            hole += b - a
            what = "its old bytes (a hole was written)"
        if bad is not None:
            print(f"{tgt}: byte {bad} differs from {what}", file=sys.stderr)
            sys.exit(1)
    print(data, hole)


if __name__ == "__main__" and sys.argv[1:2] == ["check"]:
    main()
