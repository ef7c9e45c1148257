#!/usr/bin/env python3
"""advtree.py SEED DIR [--large] - a seeded generator of adversarial trees.

Builds DIR (created; must not exist or be empty) from the seed alone: the
same SEED always gives the same tree (names, bytes, owners, modes, times,
xattrs). Needs root (owners, device nodes, trusted.* xattrs). Prints one
JSON line on stdout: {"seed", "entries", "boot_dir", "boot_size", "big"}.

Every seed has, in the root filesystem part and in the boot directory:
  names      255-byte names (1-, 2-, 3- and 4-byte UTF-8 characters),
             non-ASCII, invalid UTF-8 (overlong, surrogates, > U+10FFFF,
             truncated, Latin-1), control characters, FAT's forbidden
             characters, leading/trailing/multiple dots and spaces, DOS
             device names, names colliding in 8.3 (basis and case twins,
             literal ~n names)
  links      hard links across directories (files, symlinks, fifos,
             devices; between boot and the rest), symlinks of every length
             up to 4095 bytes (binary bytes too), dangling, loops, to
             directories, to /etc/shadow (absolute and ../..)
  specials   char and block devices (old and new encodings), fifos, sockets
  files      sizes around block boundaries, sparse files, empty files,
             mode 0000
  dirs       empty, deep (~3 800-byte paths, and 150 levels of 1-byte names)
  xattrs     user.* of sizes 0 .. ~3 900 bytes, 255-byte names, many names,
             trusted.*, security.capability v2 and v3, POSIX ACLs (access and
             default), on the root, dirs, files, symlinks and specials; as
             many per inode as the source (ext4) takes, which is what an
             ext4 of 256-byte inodes holds (on another filesystem, at most
             3 000 bytes of names and values per inode)
  metadata   owners 0 .. 2^32-2, all 12 mode bits, times with nanoseconds
             from 1901 to 2310-04-04 (pre-1970, 2038, 2106, 2107 edges;
             not later: ext4 can hold times to 2446, but e2fsck takes an
             epoch of 3 (2310..2446) for an old kernel's pre-1970 bug and
             reports it, for any filesystem)
Big items, in some seeds only (all of them with --large):
  seed % 10 == 9   a directory of 20 000 entries
  seed % 4 == 1    a sparse file larger than 4 GiB (ext4 only)
  seed % 6 == 5    a sparse file of the largest size ext4 allows (16 TiB - 4 KiB)
  seed % 10 == 4   1 200 names sharing one 8.3 basis in boot (~n tails > 999)
  seed % 5 == 3    --boot-dir boot/firmware (Raspberry Pi OS layout)
"""
import json
import os
import random
import socket
import stat
import struct
import subprocess
import sys

ACL_UNDEF = 0xFFFFFFFF
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 1, 2, 4, 8, 0x10, 0x20

VALID_UTF8 = [
    "café", "naïve", "日本語", "名前.txt", "😀 smile.txt", "Ωmega", "ñ",
    "e\u0301", "\u200bzero-width", "\ufeffbom", "ÄÖÜ.TXT", "ß", "İstanbul",
    "\uffff", "\U0010ffff", "各.txt", "å.txt", "Å", "\u00e5", "ج.txt",
    "\u202eevil.txt", "ǅ", "ﬁle", "ｆｕｌｌ.ｔｘｔ", "\u3000ideo space",
]
INVALID_UTF8 = [
    b"bad\xff", b"over\xc0\xaflong", b"sur\xed\xa0\x80rogate",
    b"big\xf4\x90\x80\x80", b"latin1-\xe9t\xe9", b"trunc\xe6\x97",
    b"\x80lone", b"five\xf8\x88\x80\x80\x80", b"\xfe\xff", b"\xc3",
    b"lowsur\xed\xbf\xbf", b"over3\xe0\x80\xaf",
]
CONTROL = [b"new\nline", b"tab\there", b"\x01", b"bell\x07", b"esc\x1b[0m",
           b"cr\r", b"\x1f"]
FAT_FORBIDDEN = [b"colon:name", b"back\\slash", b"star*", b"what?", b'quo"te',
                 b"<lt", b"gt>", b"pi|pe"]
DOTS = [b".hidden", b"..dots", b"...", b"a..b", b"x.", b"trailing.",
        b"trailing ", b" leading", b". .", b".a.b.c", b"a.b.c.d.e",
        b"name.verylongext", b".tar.gz", b" ", b"  ", b"....", b"a.", b". a",
        b"~", b"~1", b"a~1.txt", b"A~1.TXT", b"+,;=[]", b"a+b", b"[x]",
        b"A;1", b"CON", b"nul", b"aux.txt", b"LPT1", b"COM1.txt", b"del\x7f",
        b"UPPER.TXT", b"lower.txt", b"Mixed.Txt", b"MIXED.txt", b"ab.c d",
        b"8CHARSXX.EXT", b"9charsxxx.ext", b"x.y.", b"-", b"#!", b"%20",
        b"@at", b"$dollar", b"`tick`", b"'quote'", b"{a,b}", b"a\xc2\xa0b"]


class Gen:
    def __init__(self, seed, root, large):
        self.seed = seed
        self.r = random.Random(seed)
        self.root = os.fsencode(root)
        self.large = large
        self.files = []         # regular files (bytes paths)
        self.others = []        # symlinks, fifos, devices: hard-link fodder
        self.dirs = []          # directories that take new entries
        self.meta = []          # (path, kind) for owners/modes/xattrs/times

    # --- helpers ---------------------------------------------------------
    def big(self, mod, rem):
        return self.large or self.seed % mod == rem

    def name_from(self, d, want):
        """want, or want with a suffix, that does not exist in d yet."""
        n = want
        i = 0
        while os.path.lexists(os.path.join(d, n)):
            i += 1
            suffix = b"-%d" % i
            n = want[:255 - len(suffix)] + suffix
        return n

    def rand_name(self, d):
        r = self.r
        k = r.randrange(12)
        if k == 0:
            n = b"n" * r.choice([200, 254, 255])
        elif k == 1:
            n = r.choice(["é" * 127 + "a", "名" * 85, "😀" * 63 + "abc",
                          "x" * 250 + ".long"]).encode()
        elif k in (2, 3):
            n = r.choice(VALID_UTF8).encode()
        elif k == 4:
            n = r.choice(INVALID_UTF8)
        elif k == 5:
            n = r.choice(CONTROL)
        elif k == 6:
            n = r.choice(FAT_FORBIDDEN)
        elif k in (7, 8):
            n = r.choice(DOTS)
        else:
            length = r.choice([1, 2, 8, 11, 12, 13, 14, 26, 27, 40, 100])
            alpha = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._- "
            n = bytes(r.choice(alpha) for _ in range(length))
            if n in (b".", b"..") or b"/" in n:
                n = b"plain"
        return self.name_from(d, n)

    def data(self, n):
        return self.r.randbytes(n)

    def add(self, path, kind):
        self.meta.append((path, kind))

    def pick_dir(self):
        return self.r.choice(self.dirs)

    # --- entry kinds -------------------------------------------------------
    def mkfile(self, d, name=None, size=None):
        r = self.r
        name = name or self.rand_name(d)
        p = os.path.join(d, name)
        if size is None:
            size = r.choice([0, 0, 1, 7, 511, 512, 513, 4095, 4096, 4097,
                             8191, 8192, 12289, 65536, 100000,
                             r.randrange(1, 300000)])
        with open(p, "wb") as f:
            f.write(self.data(size))
        self.files.append(p)
        self.add(p, "f")
        return p

    def mksparse(self, d, size, chunks=None):
        r = self.r
        p = os.path.join(d, self.rand_name(d))
        with open(p, "wb") as f:
            f.truncate(size)
            if chunks is None:
                chunks = [(r.randrange(size), r.randrange(1, 20000))
                          for _ in range(r.randrange(0, 6))]
            for off, n in chunks:
                n = min(n, size - off)
                if n > 0:
                    f.seek(off)
                    f.write(self.data(n))
        self.files.append(p)
        self.add(p, "f")
        return p

    def mkdir(self, d, name=None):
        name = name or self.rand_name(d)
        p = os.path.join(d, name)
        os.mkdir(p)
        self.add(p, "d")
        return p

    def mksymlink(self, d, target=None):
        r = self.r
        if target is None:
            k = r.randrange(10)
            if k == 0:
                target = b"/etc/shadow"
            elif k == 1:
                target = b"../" * r.randrange(1, 12) + b"etc/shadow"
            elif k == 2:        # binary bytes, any length up to 4095
                n = r.choice([1, 59, 60, 61, 255, 1000, 4094, 4095,
                              r.randrange(1, 4096)])
                target = bytes(r.choice([b for b in range(1, 256)])
                               for _ in range(n))
            elif k == 3:
                target = b"/" + b"a/" * 2046 + b"z"         # 4095 bytes
            elif k == 4 and self.files:
                target = os.path.relpath(r.choice(self.files), d)
            elif k == 5 and self.files:
                target = b"/" + os.path.relpath(r.choice(self.files), self.root)
            elif k == 6:
                target = b"does-not-exist"
            elif k == 7:
                target = b"."
            else:
                target = os.path.relpath(self.pick_dir(), d)
        p = os.path.join(d, self.rand_name(d))
        os.symlink(target, p)
        self.others.append(p)
        self.add(p, "l")
        return p

    def mkloop(self, d):
        a = os.path.join(d, self.rand_name(d))
        os.symlink(b"self-" + os.path.basename(a)[:200], a)
        b = os.path.join(d, self.name_from(d, b"loop-b"))
        c = os.path.join(d, self.name_from(d, b"loop-c"))
        os.symlink(os.path.basename(c), b)
        os.symlink(os.path.basename(b), c)
        s = os.path.join(d, self.name_from(d, b"self-loop"))
        os.symlink(os.path.basename(s), s)
        for p in (a, b, c, s):
            self.add(p, "l")

    def mkspecial(self, d):
        r = self.r
        k = r.randrange(4)
        p = os.path.join(d, self.rand_name(d))
        if k == 0:
            os.mkfifo(p)
        elif k in (1, 2):
            major = r.choice([0, 1, 8, 255, 256, 259, 4095, r.randrange(4096)])
            minor = r.choice([0, 3, 255, 256, 70000, 1048575,
                              r.randrange(1 << 20)])
            os.mknod(p, (stat.S_IFCHR if k == 1 else stat.S_IFBLK) | 0o600,
                     os.makedev(major, minor))
        else:
            # A socket: bind by a short relative name (sun_path is 108 bytes).
            cwd = os.open(".", os.O_RDONLY)
            try:
                os.chdir(d)
                tmp = b"s%d" % r.randrange(10**9)
                s = socket.socket(socket.AF_UNIX)
                s.bind(tmp)
                s.close()
                os.rename(tmp, os.path.basename(p))
            finally:
                os.fchdir(cwd)
                os.close(cwd)
        self.others.append(p)
        self.add(p, "s")
        return p

    def mkhardlink(self, d):
        r = self.r
        pool = self.files if (r.random() < 0.7 or not self.others) else self.others
        if not pool:
            return
        src = r.choice(pool)
        p = os.path.join(d, self.rand_name(d))
        os.link(src, p, follow_symlinks=False)

    def deep(self, d):
        """A ~3 800-byte path of long names, and 150 levels of 1-byte ones."""
        r = self.r
        p = d
        used = len(os.path.relpath(d, self.root))
        while True:
            n = r.randrange(60, 200)
            if used + n + 1 > 3600:
                break
            p = self.mkdir(p, self.name_from(p, b"L" * (n - 4) +
                                             b"%04d" % r.randrange(10000)))
            used += n + 1
        self.mkfile(p, b"bottom-" + b"b" * 200, 100)
        q = self.mkdir(d, self.name_from(d, b"d"))
        for _ in range(149):
            q = self.mkdir(q, b"d")
        self.mkfile(q, b"leaf", 10)

    def bigdir(self, d):
        r = self.r
        bd = self.mkdir(d, self.name_from(d, b"bigdir"))
        names = set()
        while len(names) < 20000:
            k = r.randrange(4)
            if k == 0:
                n = b"%d" % len(names)
            elif k == 1:
                n = b"entry-%06d" % r.randrange(10**6)
            elif k == 2:
                n = r.randbytes(r.randrange(1, 256)).replace(b"/", b"_") \
                    .replace(b"\0", b"_")
                if n in (b".", b".."):
                    continue
            else:
                n = b"long-" + b"x" * r.randrange(200) + b"%d" % len(names)
            names.add(n[:255])
        for n in sorted(names):
            p = os.path.join(bd, n)
            k = r.randrange(50)
            if k == 0:
                os.symlink(b"t" * r.randrange(1, 100), p)
            elif k == 1:
                os.mkdir(p)
            else:
                open(p, "wb").close()

    def collisions(self, d, count):
        cd = self.mkdir(d, self.name_from(d, b"collide"))
        for i in range(count):
            self.mkfile(cd, b"collide_%04d.dat" % i, 3)
        for n in (b"COLLID~1.DAT", b"collid~2.dat", b"COLLI~10.DAT",
                  b"COLL~100.DAT", b"README", b"readme", b"ReadMe",
                  b"CONFIG.TXT", b"config.txt", b"Config.Txt"):
            self.mkfile(cd, n, 5)

    def xattrs(self, p, kind):
        r = self.r
        cands = []
        user_ok = kind in ("f", "d")
        for _ in range(r.choice([0, 0, 1, 2, 3, 5, 20])):
            ns = "user." if user_ok and r.random() < 0.6 else "trusted."
            if r.random() < 0.1:
                name = ns + "k" * (255 - len(ns))
            else:
                name = ns + r.choice(["a", "mime", "x" * 30, "attr%d" % r.randrange(99),
                                      "ü", "dots.in.name"])
            size = r.choice([0, 1, 3, 4, 5, 60, 100, 255, 256, 1000, 2000,
                             3000, 3900, r.randrange(4000)])
            cands.append((name, self.data(size)))
        if kind == "f" and r.random() < 0.2:
            if r.random() < 0.5:        # v2, permitted + inheritable
                cap = struct.pack("<IIIII", 0x02000000 | r.randrange(2),
                                  r.getrandbits(32), r.getrandbits(32),
                                  r.getrandbits(9), 0)
            else:                       # v3: a namespace root id
                cap = struct.pack("<IIIIII", 0x03000000 | 1, 1 << 13, 0, 0, 0,
                                  r.choice([0, 1000, 100000]))
            cands.append(("security.capability", cap))
        if kind in ("f", "d") and r.random() < 0.25:
            cands.append(("system.posix_acl_access", self.acl()))
        if kind == "d" and r.random() < 0.25:
            cands.append(("system.posix_acl_default", self.acl()))
        total = 0
        for name, val in cands:
            # On ext4 the source's own limit is ext4's; another filesystem
            # (tmpfs takes 64 KiB values) gets a total that surely fits.
            if not self.ext4 and total + len(name) + len(val) > 3000:
                continue
            try:
                os.setxattr(p, name, val, follow_symlinks=False)
                total += len(name) + len(val)
            except OSError:
                pass            # no room left on the source filesystem

    def acl(self):
        r = self.r
        ents = [(USER_OBJ, r.randrange(8), ACL_UNDEF)]
        users = sorted(r.sample([1, 1000, 1001, 65534, 100000, 4000000000],
                                r.randrange(0, 4)))
        ents += [(USER, r.randrange(8), u) for u in users]
        ents.append((GROUP_OBJ, r.randrange(8), ACL_UNDEF))
        groups = sorted(r.sample([4, 50, 100, 2000, 70000], r.randrange(0, 3)))
        ents += [(GROUP, r.randrange(8), g) for g in groups]
        if users or groups:
            ents.append((MASK, r.randrange(8), ACL_UNDEF))
        ents.append((OTHER, r.randrange(8), ACL_UNDEF))
        return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in ents)

    def rand_time(self):
        r = self.r
        s = r.choice([
            r.randrange(1500000000, 1800000000), r.randrange(1500000000, 1800000000),
            r.randrange(-2**31, 0), -2**31, -1, 0, 1, 315532799, 315532800,
            2**31 - 1, 2**31, 2**32 - 1, 2**32, 4354819198, 4354819199,
            r.randrange(2**31, 2**33 + 2**31), 2**33 + 2**31 - 1])
        ns = r.choice([0, 999999999, r.randrange(10**9)])
        return s * 10**9 + ns

    def finish_meta(self):
        """Owners, modes, xattrs, then times deepest first (so directory
        times stay as set)."""
        r = self.r
        uids = [0, 0, 0, 1, 1000, 65534, 65535, 65536, 100000, 2**31,
                4294967294]
        for p, kind in self.meta:
            os.chown(p, r.choice(uids), r.choice(uids), follow_symlinks=False)
            if kind != "l":
                os.chmod(p, r.choice([0o644, 0o755, 0o600, 0o444, 0o000, 0o7777,
                                      0o4755, 0o2755, 0o1777, r.randrange(0o10000)]))
            if r.random() < 0.5:
                self.xattrs(p, kind)
        # The root too.
        os.chown(self.root, 0, 0)
        os.chmod(self.root, 0o755)
        self.xattrs(self.root, "d")
        for p, kind in sorted(self.meta, key=lambda m: -m[0].count(b"/")):
            os.utime(p, ns=(self.rand_time(), self.rand_time()),
                     follow_symlinks=False)
        os.utime(self.root, ns=(self.rand_time(), self.rand_time()))

    # --- the tree --------------------------------------------------------------
    def populate(self, top, count):
        """count random entries below top (which is in self.dirs)."""
        r = self.r
        kinds = ["f"] * 30 + ["d"] * 12 + ["l"] * 10 + ["s"] * 6 + ["h"] * 10 + \
                ["sparse"] * 3 + ["loop"]
        base = [d for d in self.dirs if d.startswith(top)]
        for _ in range(count):
            d = r.choice(base)
            k = r.choice(kinds)
            if k == "f":
                self.mkfile(d)
            elif k == "d":
                nd = self.mkdir(d)
                if len(nd) - len(self.root) < 1500:
                    base.append(nd)
                    self.dirs.append(nd)
            elif k == "l":
                self.mksymlink(d)
            elif k == "s":
                self.mkspecial(d)
            elif k == "h":
                self.mkhardlink(d)
            elif k == "sparse":
                self.mksparse(d, r.choice([4096, 1 << 20, 3 << 20, 8 << 20,
                                            r.randrange(1, 5 << 20)]))
            else:
                self.mkloop(d)

    def build(self):
        r = self.r
        os.makedirs(self.root, exist_ok=True)
        self.ext4 = subprocess.run(["stat", "-f", "-c", "%t", self.root],
                                   capture_output=True).stdout.strip() == b"ef53"
        if os.listdir(self.root):
            sys.exit("advtree: %s is not empty" % os.fsdecode(self.root))
        self.dirs.append(self.root)
        firmware = self.big(5, 3)
        boot = self.mkdir(self.root, b"boot")
        if firmware:
            self.mkfile(boot, b"not-on-fat.txt", 100)
            boot = self.mkdir(boot, b"firmware")
        self.mkfile(boot, b"config.txt", 12)
        self.dirs.append(boot)
        # Fixed names every seed has, in both parts.
        for d in (self.root, boot):
            for n in ([b"n" * 255, ("é" * 127 + "a").encode(),
                       ("名" * 85).encode(), ("😀" * 63 + "abc").encode()] +
                      [v.encode() for v in VALID_UTF8[:6]] + INVALID_UTF8[:3] +
                      CONTROL[:2] + FAT_FORBIDDEN[:2] + DOTS[:12]):
                self.mkfile(d, self.name_from(d, n), r.choice([0, 5, 600]))
            self.mkdir(d, self.name_from(d, b"empty-dir"))
            self.mkloop(d)
            self.mksymlink(d, b"/etc/shadow")
            self.mksymlink(d, b"../../../../../../../../etc/shadow")
            self.mkspecial(d)
        # Links between boot and the rest.
        self.mkfile(boot, self.name_from(boot, b"shared"), 3000)
        os.link(os.path.join(boot, b"shared"),
                os.path.join(self.root, self.name_from(self.root, b"from-boot")))
        self.mkfile(self.root, self.name_from(self.root, b"to-boot"), 5000)
        os.link(os.path.join(self.root, b"to-boot"),
                os.path.join(boot, self.name_from(boot, b"linked-in")))
        os.symlink(b"config.txt", os.path.join(boot, b"link-to-config"))
        os.symlink(b"../boot/config.txt" if not firmware else b"../firmware/config.txt",
                   os.path.join(boot, self.name_from(boot, b"link-up-and-back")))
        os.symlink(b"/" + os.path.relpath(os.path.join(boot, b"config.txt"), self.root),
                   os.path.join(boot, self.name_from(boot, b"abs-link")))
        os.symlink(b"../etc/passwd", os.path.join(boot, b"outside"))
        scale = 4 if self.large else 1
        self.populate(self.root, r.randrange(60, 160) * scale)
        self.populate(boot, r.randrange(30, 90) * scale)
        self.deep(self.root)
        self.deep(boot)
        if self.big(10, 9):
            self.bigdir(self.root)
        if self.big(4, 1):
            size = (4 << 30) + r.randrange(1, 1 << 30)
            self.mksparse(self.root, size,
                          [(0, 100), ((4 << 30) - 3000, 6000), (size - 10, 10),
                           (r.randrange(size), 5000)])
        if self.big(6, 5):
            size = (16 << 40) - 4096
            self.mksparse(self.root, size, [(size - 5000, 5000), (1 << 40, 4096)])
        if self.big(10, 4):
            self.collisions(boot, 1200)
        else:
            self.collisions(boot, r.randrange(5, 40))
        self.finish_meta()
        return firmware, boot

    def boot_size(self, boot):
        """A --boot-size that holds boot (links are copies in FAT)."""
        total = 0
        for dirpath, dirs, files in os.walk(boot):
            for n in files + dirs:
                st = os.lstat(os.path.join(dirpath, n))
                total += st.st_size if stat.S_ISREG(st.st_mode) else 0
                total += 4096
        # Symlinks to files are copies: at most one per entry of the largest.
        mib = (total * 2 >> 20) + 40
        return "%dM" % max(64, mib)


def count(top):
    """Entries below top, root included (O_NOATIME: leaves atimes alone)."""
    n = 1
    stack = [os.fsencode(top)]
    while stack:
        d = stack.pop()
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOATIME)
        try:
            names = os.listdir(fd)
        finally:
            os.close(fd)
        for name in names:
            p = os.path.join(d, os.fsencode(name))
            n += 1
            if stat.S_ISDIR(os.lstat(p).st_mode):
                stack.append(p)
    return n


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit("usage: advtree.py SEED DIR [--large]")
    seed = int(args[0])
    g = Gen(seed, args[1], "--large" in sys.argv[1:])
    firmware, boot = g.build()
    print(json.dumps({"seed": seed, "entries": count(args[1]),
                      "boot_dir": "boot/firmware" if firmware else "boot",
                      "boot_size": g.boot_size(boot),
                      "big": [k for k, m, r in (("bigdir", 10, 9), ("4gib", 4, 1),
                                                ("16tib", 6, 5), ("collide", 10, 4),
                                                ("firmware", 5, 3))
                              if g.big(m, r)]}))


main()
