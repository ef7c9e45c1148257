#!/usr/bin/env python3
"""nbd_map.py URI OUT.json [--write]

The data runs [start, end) of an NBD export from its base:allocation
block status (libnbd's python module), merged and written to OUT.json as
holes.py walk writes them. Each hole is read back: zeros. With --write,
then, on the same connection (a private overlay lives as long as it):
4 KiB written in the middle of the largest hole must come back as data
in the map and in a read, while the rest of that hole stays a hole.
"""
import json
import sys

import nbd

HOLE = nbd.STATE_HOLE
ZERO = nbd.STATE_ZERO


def runs_of(h, size):
    runs, off = [], 0
    while off < size:
        got = []

        def cb(meta, offset, entries, err):
            if meta == nbd.CONTEXT_BASE_ALLOCATION:
                got.extend(entries)
            return 0
        h.block_status(min(size - off, 1 << 30), off, cb)
        if not got:
            sys.exit("nbd_map: no extent at %d" % off)
        for i in range(0, len(got), 2):
            length, flags = got[i], got[i + 1]
            if off + length > size:
                length = size - off
            hole = bool(flags & HOLE)
            if hole != bool(flags & ZERO):
                sys.exit("nbd_map: at %d: flags %#x (a hole must read zeros)" % (off, flags))
            if not hole:
                if runs and runs[-1][1] == off:
                    runs[-1][1] = off + length
                else:
                    runs.append([off, off + length])
            off += length
            if off >= size:
                break
    return runs


def holes_of(runs, size):
    prev, out = 0, []
    for s, e in runs + [[size, size]]:
        if s > prev:
            out.append((prev, s))
        prev = e
    return out


def main():
    uri, out = sys.argv[1], sys.argv[2]
    h = nbd.NBD()
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_uri(uri)
    if not h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION):
        sys.exit("nbd_map: the server does not offer base:allocation")
    size = h.get_size()
    runs = runs_of(h, size)
    for s, e in holes_of(runs, size):
        for o in range(s, e, 1 << 22):
            n = min(e - o, 1 << 22)
            if h.pread(n, o) != bytes(n):
                sys.exit("nbd_map: hole [%d, %d) does not read as zeros at %d" % (s, e, o))
    json.dump({"size": size, "runs": runs}, open(out, "w"))
    data = sum(e - s for s, e in runs)
    if "--write" in sys.argv[3:]:
        holes = holes_of(runs, size)
        if not holes:
            sys.exit("nbd_map: the export maps as one data run (no base:allocation answer?)")
        s, e = max(holes, key=lambda r: r[1] - r[0])
        at = (s + (e - s) // 2) // 4096 * 4096
        if at < s or at + 4096 > e:
            sys.exit("nbd_map: no 4 KiB-aligned block inside the largest hole")
        h.pwrite(b"\xab" * 4096, at)
        after = runs_of(h, size)
        inside = [r for r in after if r[0] < e and r[1] > s]
        if inside != [[at, at + 4096]]:
            sys.exit("nbd_map: after a write at %d the hole [%d, %d) maps as %s"
                     % (at, s, e, inside))
        if h.pread(4096, at) != b"\xab" * 4096:
            sys.exit("nbd_map: the written block does not read back")
    h.shutdown()
    print(data)


if __name__ == "__main__":
    main()
