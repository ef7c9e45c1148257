#!/usr/bin/env python3
"""srcchange.py - source files that change under a mounted image.

  srcchange.py make ROOT OUTSIDE
      Build ROOT (boot/ and etc/, one 200 000-byte file of random bytes per
      case in each) and OUTSIDE (a secret file, and a directory holding a
      file named like one in ROOT, both full of the secret's bytes).
  srcchange.py locate IMG ROOT OUT.json
      Find where each file's bytes lie in IMG (a first mount of the same
      tree: the image is deterministic, so a second mount puts them at the
      same offsets without the daemon having read them).
  srcchange.py check IMG OFFSETS.json ROOT OUTSIDE
      With disk.img held open (so no rescan: the same generation), change
      every file as its case says, then read its range through the held
      descriptor and print one line per case:
          RESULT CASE ok|FAIL DETAIL
      and RESULT outside ok|FAIL (the secret's and /etc/shadow's bytes
      appear nowhere in the image), RESULT reads ok|FAIL (no short read).

Cases (a file in boot/ served by FAT, one in etc/ served by ext4, each):
  trunc-half   truncated to half: its bytes, then zeros
  trunc-zero   truncated to 0: zeros
  grow         appended to: clipped to the scanned size (its bytes)
  delete       deleted: zeros
  to-shadow    replaced by a symlink to /etc/shadow: zeros
  to-secret    replaced by a symlink to OUTSIDE/secret: zeros
  rename-over  another file renamed over it: zeros (another inode)
  recreate     deleted, then a new file written under the name: zeros
               (the filesystem may give the new file the same inode number)
  to-dir       replaced by a directory: zeros
  to-device    replaced by a character device (1:5, like /dev/zero): zeros
  in-place     rewritten in place, same size: its current bytes
  parent-link  its directory replaced by a symlink to OUTSIDE/dir, which
               holds a file of the same name: zeros
  to-fifo      replaced by a fifo: zeros, and the read must not hang (it
               runs in a child with a 5 s limit; on a hang the fifo is
               opened for writing to release the daemon)
"""
import json
import mmap
import os
import random
import select
import stat
import sys
import time

SIZE = 200000
LIMIT = 5                       # seconds a read may take
CASES = ["recreate", "trunc-half", "trunc-zero", "grow", "delete", "to-shadow",
         "to-secret", "rename-over", "to-dir", "to-device", "in-place",
         "parent-link", "to-fifo"]
PARTS = ["boot", "etc"]


def rel(part, case):
    # parent-link's file sits in its own directory (that is replaced).
    return os.path.join(part, "sub", case) if case == "parent-link" else \
        os.path.join(part, case)


def cmd_make(root, outside):
    r = random.Random(7)
    for part in PARTS:
        os.makedirs(os.path.join(root, part, "sub"), exist_ok=True)
        for case in CASES:
            with open(os.path.join(root, rel(part, case)), "wb") as f:
                f.write(r.randbytes(SIZE))
    with open(os.path.join(root, "boot", "config.txt"), "w") as f:
        f.write("arm_64bit=1\n")
    secret = r.randbytes(65536)
    os.makedirs(os.path.join(outside, "dir"), exist_ok=True)
    with open(os.path.join(outside, "secret"), "wb") as f:
        f.write(secret)
    with open(os.path.join(outside, "dir", "parent-link"), "wb") as f:
        f.write((secret * 4)[:SIZE])


def cmd_locate(img, root, out):
    want = {}
    for part in PARTS:
        for case in CASES:
            p = rel(part, case)
            with open(os.path.join(root, p), "rb") as f:
                want[p] = f.read()
    found = {}
    chunk, keep = 64 << 20, SIZE
    with open(img, "rb") as f:
        base, prev = 0, b""
        while True:
            b = f.read(chunk)
            if not b:
                break
            buf = prev + b
            start = base - len(prev)
            for p, data in want.items():
                if p not in found:
                    i = buf.find(data[:4096])
                    if i >= 0:
                        found[p] = start + i
            prev = buf[-keep:]
            base += len(b)
        for p, off in found.items():
            f.seek(off)
            if f.read(SIZE) != want[p]:
                sys.exit("srcchange: %s is not contiguous at %d" % (p, off))
    missing = sorted(set(want) - set(found))
    if missing:
        sys.exit("srcchange: not found in the image: %s" % missing)
    with open(out, "w") as f:
        json.dump(found, f)


def change(root, outside, part, case, r):
    p = os.path.join(root, rel(part, case))
    if case == "trunc-half":
        os.truncate(p, SIZE // 2)
    elif case == "trunc-zero":
        os.truncate(p, 0)
    elif case == "grow":
        with open(p, "ab") as f:
            f.write(r.randbytes(100000))
    elif case == "delete":
        os.unlink(p)
    elif case == "to-shadow":
        os.unlink(p)
        os.symlink("/etc/shadow", p)
    elif case == "to-secret":
        os.unlink(p)
        os.symlink(os.path.join(outside, "secret"), p)
    elif case == "rename-over":
        with open(p + ".new", "wb") as f:
            f.write(r.randbytes(SIZE))
        os.rename(p + ".new", p)
    elif case == "recreate":
        ino = os.stat(p).st_ino
        os.unlink(p)
        with open(p, "wb") as f:
            f.write(r.randbytes(SIZE))
        return os.stat(p).st_ino == ino
    elif case == "to-dir":
        os.unlink(p)
        os.mkdir(p)
    elif case == "to-device":
        os.unlink(p)
        os.mknod(p, stat.S_IFCHR | 0o644, os.makedev(1, 5))
    elif case == "in-place":
        with open(p, "r+b") as f:
            f.write(r.randbytes(SIZE))
    elif case == "parent-link":
        d = os.path.dirname(p)
        os.rename(d, d + ".old")
        os.symlink(os.path.join(outside, "dir"), d)
    elif case == "to-fifo":
        os.unlink(p)
        os.mkfifo(p)
    return None


def expect(root, part, case, orig):
    p = os.path.join(root, rel(part, case))
    if case == "trunc-half":
        return orig[:SIZE // 2] + bytes(SIZE - SIZE // 2)
    if case == "grow":
        return orig
    if case == "in-place":
        with open(p, "rb") as f:
            return f.read()
    return bytes(SIZE)


def cmd_check(img, offsets_json, root, outside):
    offsets = json.load(open(offsets_json))
    r = random.Random(11)
    orig = {}
    for p in offsets:
        with open(os.path.join(root, p), "rb") as f:
            orig[p] = f.read()
    # O_DIRECT: no page cache, no readahead: each read asks the daemon
    # for exactly its range, after the change.
    fd = os.open(img, os.O_RDONLY | os.O_DIRECT)
    size = os.fstat(fd).st_size
    results = []
    short = 0

    def check(part, case, got, reused):
        nonlocal short
        p = rel(part, case)
        want = expect(root, part, case, orig[p])
        name = "%s/%s" % (part, case)
        note = " (the new file got the old inode number)" if reused else ""
        if got is None:
            results.append((name, "FAIL", "the read hung for %d s" % LIMIT))
        elif len(got) != SIZE:
            short += 1
            results.append((name, "FAIL", "short read: %d bytes" % len(got)))
        elif got == want:
            results.append((name, "ok", "as documented" + note))
        elif got == orig[p]:
            results.append((name, "FAIL", "served the original bytes" + note))
        else:
            with open(os.path.join(root, p), "rb") as f:
                cur = f.read() if os.path.isfile(os.path.join(root, p)) else b""
            n = sum(1 for a, b in zip(got, want) if a != b)
            results.append((name, "FAIL", "%d bytes differ from the documented "
                            "bytes%s%s" % (n, ": it serves the new file's bytes"
                                          if got == cur else "", note)))

    # The fifos first: a read that hangs holds the pages around it too.
    for part in PARTS:
        change(root, outside, part, "to-fifo", r)
        p = rel(part, "to-fifo")
        check(part, "to-fifo", read_with_limit(fd, offsets[p], os.path.join(root, p)),
              False)
        # A regular file again (another inode: still zeros), so that the
        # search of the whole image below cannot hang on it.
        with open(os.path.join(root, p) + ".new", "wb") as f:
            f.write(r.randbytes(SIZE))
        os.rename(os.path.join(root, p) + ".new", os.path.join(root, p))
    # Every other case: change all, then read each range.
    cases = [(part, case) for part in PARTS for case in CASES if case != "to-fifo"]
    reused = {pc: change(root, outside, pc[0], pc[1], r) for pc in cases}
    for part, case in cases:
        check(part, case, dread(fd, offsets[rel(part, case)], SIZE),
              reused[(part, case)])
    # Nothing from outside the tree, anywhere in the image.
    secret = open(os.path.join(outside, "secret"), "rb").read()
    needles = [("secret", secret[:4096])]
    try:
        shadow = open("/etc/shadow", "rb").read()
        if len(shadow) >= 32:
            needles.append(("/etc/shadow", shadow[:256]))
    except OSError:
        pass
    hits = []
    off, prev = 0, b""
    while off < size:
        b = dread(fd, off, min(32 << 20, size - off))
        if len(b) != min(32 << 20, size - off):
            short += 1
        buf = prev + b
        for what, n in needles:
            if buf.find(n) >= 0 and what not in hits:
                hits.append(what)
        prev = buf[-4096:]
        off += 32 << 20
    os.close(fd)
    for name, res, detail in results:
        print("RESULT %s %s %s" % (name, res, detail))
    print("RESULT outside %s %s" % ("FAIL" if hits else "ok",
                                    "found: " + ", ".join(hits) if hits else
                                    "searched for: " + ", ".join(w for w, _ in needles)))
    print("RESULT reads %s %d short reads" % ("FAIL" if short else "ok", short))


def dread(fd, off, n):
    """pread for an O_DIRECT descriptor: aligned buffer, offset and length
    (sectors: the files start at 512-byte multiples, so the range read
    never reaches into the next file), trimmed to n."""
    start = off - off % 512
    length = (off + n - start + 511) // 512 * 512
    buf = mmap.mmap(-1, length)
    got = os.preadv(fd, [buf], start)
    data = bytes(buf[off - start:min(got, off - start + n)])
    buf.close()
    return data


def read_with_limit(fd, off, fifo):
    """pread in a child process; None if it did not finish in LIMIT s (then
    the daemon threads stuck opening the fifo are released, so that the
    mount can be unmounted)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        data = dread(fd, off, SIZE)
        while data:
            data = data[os.write(wfd, data):]
        os._exit(0)
    os.close(wfd)
    deadline = time.time() + LIMIT
    data, hung = b"", False
    while True:
        left = deadline - time.time()
        if not hung and (left <= 0 or not select.select([rfd], [], [], left)[0]):
            hung = True
        if hung:
            # An open for writing completes the daemon's blocked open().
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            if not select.select([rfd], [], [], 0.2)[0]:
                continue
        b = os.read(rfd, 1 << 20)
        if not b:
            break
        data += b
    os.waitpid(pid, 0)
    os.close(rfd)
    return None if hung else data


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"make": cmd_make, "locate": cmd_locate, "check": cmd_check}[cmd](*args)
