#!/usr/bin/env python3
"""holes.py - helpers of the hole tests (seek_holes.sh, bmap.sh).

  holes.py walk IMG OUT.json
      SEEK_DATA/SEEK_HOLE walk of IMG: the data runs [start, end) into
      OUT.json; checks that the runs are sorted, not adjacent, inside the
      file, and that every hole reads as zeros. Prints the data bytes.
  holes.py bmap BMAP OUT.json
      The mapped ranges of a bmaptool bmap as byte runs (clipped to the
      image size).
  holes.py garbage FILE RUNS.json SEED
      Write random bytes over everything of FILE outside the runs: what a
      card that held something else keeps in the holes.
  holes.py fat FILE OFFSET
      Bytes of a FAT32 partition at OFFSET before cluster 2 (reserved
      sectors and the FATs), and the cluster size: "META CLUSTER".
"""
import json
import os
import random
import struct
import sys
import xml.etree.ElementTree as ET


def walk(img, out):
    fd = os.open(img, os.O_RDONLY)
    size = os.fstat(fd).st_size
    runs, off = [], 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:     # ENXIO: only a hole is left
            d = size
        if d > off:
            check_zero(fd, off, d)
        if d >= size:
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        assert d < h <= size, (d, h, size)
        assert not runs or runs[-1][1] < d, ("adjacent or unsorted runs", runs[-1], d)
        runs.append([d, h])
        off = h
    json.dump({"size": size, "runs": runs}, open(out, "w"))
    print(sum(e - s for s, e in runs))


def check_zero(fd, start, end):
    zero = bytes(1 << 20)
    off = start
    while off < end:
        n = min(1 << 20, end - off)
        b = os.pread(fd, n, off)
        if b != zero[:n]:
            i = next(k for k in range(n) if b[k])
            sys.exit("hole byte %d is not zero" % (off + i))
        off += n


def bmap(path, out):
    x = ET.parse(path).getroot()
    bs = int(x.find("BlockSize").text)
    size = int(x.find("ImageSize").text)
    runs = []
    for r in x.find("BlockMap"):
        a, _, b = r.text.strip().partition("-")
        first, last = int(a), int(b or a)
        runs.append([first * bs, min((last + 1) * bs, size)])
    json.dump({"size": size, "runs": runs}, open(out, "w"))
    print(sum(e - s for s, e in runs))


def garbage(path, runs_json, seed):
    m = json.load(open(runs_json))
    rnd = random.Random(int(seed))
    fd = os.open(path, os.O_WRONLY)
    off, n = 0, 0
    for s, e in m["runs"] + [[m["size"], m["size"]]]:
        while off < s:
            k = min(1 << 20, s - off)
            os.pwrite(fd, rnd.randbytes(k), off)
            off += k
            n += k
        off = max(off, e)
    os.fsync(fd)
    os.close(fd)
    print(n)


def fat(path, offset):
    with open(path, "rb") as f:
        f.seek(int(offset))
        bs = f.read(512)
    sec, spc, rsvd, nfats = struct.unpack_from("<HBHB", bs, 11)
    fatsz = struct.unpack_from("<I", bs, 36)[0]
    print((rsvd + nfats * fatsz) * sec, spc * sec)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"walk": walk, "bmap": bmap, "garbage": garbage, "fat": fat}[cmd](*args)
