#!/usr/bin/env python3
"""nbd_zero.py SOCKET

NBD_CMD_WRITE_ZEROES and NBD_CMD_CACHE on the disk export (libnbd):
 - the server offers zero, fast zero and cache;
 - a fast zero of a hole succeeds and writes nothing (the range stays a
   hole in the connection's map: no overlay block was made);
 - a fast zero of data is refused with ENOTSUP (the client should write);
 - a plain zero of data reads back zeros on that connection, while a
   second connection still reads the original bytes (private overlays);
 - cache of the first MiB succeeds.
"""
import errno
import sys

import nbd

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from nbd_map import runs_of, holes_of  # noqa: E402


def connect(sock):
    h = nbd.NBD()
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_unix(sock)
    return h


def main():
    sock = sys.argv[1]
    a, b = connect(sock), connect(sock)
    if not (a.can_zero() and a.can_fast_zero() and a.can_cache()):
        sys.exit("nbd_zero: zero %s, fast zero %s, cache %s offered" %
                 (a.can_zero(), a.can_fast_zero(), a.can_cache()))
    size = a.get_size()
    runs = runs_of(a, size)
    hole = max(holes_of(runs, size), key=lambda r: r[1] - r[0])
    at = (hole[0] + (hole[1] - hole[0]) // 2) // 4096 * 4096
    a.zero(65536, at, nbd.CMD_FLAG_FAST_ZERO)
    if a.pread(65536, at) != bytes(65536):
        sys.exit("nbd_zero: a zeroed hole does not read zeros")
    if runs_of(a, size) != runs:
        sys.exit("nbd_zero: a fast zero of a hole changed the map (it wrote)")

    # data: a 64 KiB window of a data run that holds no zero bytes (file
    # data: the tree's random files)
    at = None
    for r0, r1 in runs:
        for pos in range((r0 + 4095) // 4096 * 4096, r1 - 65536 + 1, 65536):
            orig = a.pread(65536, pos)
            if orig.count(0) < 1024:
                at = pos
                break
        if at is not None:
            break
    if at is None:
        sys.exit("nbd_zero: no 64 KiB of file data found in the map's data runs")
    try:
        a.zero(65536, at, nbd.CMD_FLAG_FAST_ZERO)
        sys.exit("nbd_zero: a fast zero of data was accepted")
    except nbd.Error as e:
        if e.errnum != errno.ENOTSUP:
            sys.exit("nbd_zero: fast zero of data: %s, want ENOTSUP" % e)
    if a.pread(65536, at) != orig:
        sys.exit("nbd_zero: a refused fast zero changed the data")
    a.zero(65536, at)
    if a.pread(65536, at) != bytes(65536):
        sys.exit("nbd_zero: zeroed data does not read zeros")
    if b.pread(65536, at) != orig:
        sys.exit("nbd_zero: another connection sees the zeros")
    a.cache(1 << 20, 0)
    a.shutdown()
    b.shutdown()
    print("ok: zero of a hole at %d, of data at %d" % (hole[0], at))


main()
