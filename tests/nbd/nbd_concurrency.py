#!/usr/bin/python3
# nbd_concurrency.py SOCKET REF MODE [READS]: 8 reader connections and one
# writer connection to one nbdkit-rpifs server at once (one process each, all
# connected before any starts), a fixed number of requests each, checked
# against REF (the disk as nbdcopy read it before). The writer writes every
# 64 KiB slot of two windows once (a random sub-range of it, so partial
# 4 KiB blocks too; the data follows from a fixed seed, so the checkers know
# it) and reads each back; readers read random ranges, half of them in the
# windows.
#   MODE private: per-connection overlays: readers see REF exactly, also in
#     the windows, and a connection opened afterwards sees REF.
#   MODE shared (overlay=FILE): a read sees each slot either as before or
#     as written (one request is atomic against a write: the overlay's lock),
#     and REF elsewhere; a connection opened afterwards sees every write.
# Exit 0 only with zero mismatches; prints the counts on stderr.
import mmap, multiprocessing as mp, random, sys
import nbd

sock, ref_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
READS = int(sys.argv[4]) if len(sys.argv) > 4 else 200
NREADERS = 8
SLOT = 64 << 10
# Two windows over data: partition 1's FAT and file data (from 4 MiB) and
# partition 2's file data (the make_tree layout; REF decides the bytes).
WINDOWS = [(4 << 20, 12 << 20), (288 << 20, 296 << 20)]
with open(ref_path, "rb") as f:
    ref = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
size = len(ref)

def slots():
    for a, b in WINDOWS:
        yield from range(a, b, SLOT)

def plan():
    """slot offset -> (offset of the write, its bytes): the same in every process."""
    rnd = random.Random(1234)
    p = {}
    for s in slots():
        at = rnd.randrange(SLOT - 1)
        n = rnd.randrange(1, SLOT - at + 1)
        p[s] = (s + at, rnd.randbytes(n))
    return p

PLAN = plan()

def new_slot(s):
    off, data = PLAN[s]
    b = bytearray(ref[s:s + SLOT])
    b[off - s:off - s + len(data)] = data
    return bytes(b)

def in_window(off):
    return any(a <= off < b for a, b in WINDOWS)

def check_shared(off, got):
    """Each slot piece of a read: as before or as written; REF outside."""
    errs, seen_new, pos = [], 0, off
    while pos < off + len(got):
        s = pos - pos % SLOT
        end = min(s + SLOT, off + len(got))
        piece = got[pos - off:end - off]
        if piece == ref[pos:end]:
            pass
        elif in_window(s) and piece == new_slot(s)[pos - s:end - s]:
            seen_new += 1
        else:
            errs.append(f"{pos}+{end - pos}")
        pos = end
    return errs, seen_new

def conn():
    h = nbd.NBD()
    h.connect_unix(sock)
    return h

def reader(k, barrier, q):
    h = conn()
    rnd = random.Random(k)
    errs, seen_new = [], 0
    barrier.wait()
    for i in range(READS):
        n = rnd.randrange(1, 256 << 10)
        if i % 2:
            a, b = WINDOWS[rnd.randrange(len(WINDOWS))]
            off = rnd.randrange(a - (32 << 10), b)
        else:
            off = rnd.randrange(size)
        n = min(n, size - off)
        got = h.pread(n, off)
        if mode == "private":
            if got != ref[off:off + n]:
                errs.append(f"reader {k}: {off}+{n} differs from the reference")
        else:
            e, s = check_shared(off, got)
            errs += [f"reader {k}: {x} neither before nor as written" for x in e]
            seen_new += s
    h.shutdown()
    q.put((errs, READS, 0, seen_new))

def writer(barrier, q):
    h = conn()
    errs, writes = [], 0
    if h.can_multi_conn() != (mode == "shared"):
        errs.append(f"writer: multi-conn {h.can_multi_conn()} with {mode} overlays")
    barrier.wait()
    done = []
    rnd = random.Random(99)
    for s in slots():
        off, data = PLAN[s]
        h.pwrite(data, off)
        writes += 1
        if h.pread(len(data), off) != data:
            errs.append(f"writer: {off}+{len(data)} not read back")
        done.append(s)
        if writes % 8 == 0:
            # An earlier slot whole, and a range nobody writes.
            s2 = rnd.choice(done)
            if h.pread(SLOT, s2) != new_slot(s2):
                errs.append(f"writer: slot {s2} changed")
            o = rnd.randrange(16 << 20, 256 << 20)
            if h.pread(4096, o) != ref[o:o + 4096]:
                errs.append(f"writer: {o}+4096 outside the windows differs")
        if writes % 64 == 0:
            h.flush()
    for s in slots():
        if h.pread(SLOT, s) != new_slot(s):
            errs.append(f"writer: slot {s} lost at the end")
    h.shutdown()
    q.put((errs, 0, writes, 0))

def after():
    """A connection opened when all others are closed: every slot, and
    ranges outside the windows."""
    h = conn()
    errs = []
    for s in slots():
        want = new_slot(s) if mode == "shared" else ref[s:s + SLOT]
        if h.pread(SLOT, s) != want:
            errs.append(f"after: slot {s} ({mode})")
    rnd = random.Random(7)
    for _ in range(64):
        off = rnd.randrange(size - (256 << 10))
        if not in_window(off) and not in_window(off + (256 << 10)):
            if h.pread(256 << 10, off) != ref[off:off + (256 << 10)]:
                errs.append(f"after: {off}+{256 << 10} outside the windows differs")
    h.shutdown()
    return errs

if __name__ == "__main__":
    mp.set_start_method("fork")
    barrier = mp.Barrier(NREADERS + 1)
    q = mp.Queue()
    ps = [mp.Process(target=reader, args=(k, barrier, q)) for k in range(NREADERS)]
    ps.append(mp.Process(target=writer, args=(barrier, q)))
    for p in ps:
        p.start()
    res = [q.get() for _ in ps]
    for p in ps:
        p.join()
    errs = [e for r in res for e in r[0]]
    reads, writes, seen = sum(r[1] for r in res), sum(r[2] for r in res), sum(r[3] for r in res)
    bad = [p.exitcode for p in ps if p.exitcode != 0]
    errs += after()
    print(f"# {mode}: {reads} reads, {writes} writes, {seen} slot pieces seen written, "
          f"{len(errs)} mismatches", file=sys.stderr)
    for e in errs[:10]:
        print(e, file=sys.stderr)
    if bad:
        print(f"# a process failed: exit {bad}", file=sys.stderr)
    sys.exit(1 if errs or bad or reads != NREADERS * READS or writes != len(PLAN) else 0)
