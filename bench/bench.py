#!/usr/bin/env python3
"""bench.py - the rpifs benchmark. Run it through bench/run, which builds
rpifs and the helpers (memfuse, gentree) and passes their paths.

Every figure is a median over --runs runs, and each is printed next to its
peer measured in the same runs. The report ends with the targets (one per item), each
"met" or "missed". Exit status: 0 whenever the bench ran (missed targets
included), 1 when the bench itself broke.
"""
import argparse
import glob
import json
import os
import platform
import re
import shutil
import shlex
import signal
import statistics
import struct
import subprocess
import sys
import time

MiB = 1 << 20
GiB = 1 << 30
KERNEL_SIZE = 30 * MiB
now = time.perf_counter


class BenchError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run(cmd, input=None, quiet=False):
    """Run cmd; return its stdout; raise BenchError with its stderr on failure."""
    r = subprocess.run(cmd, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise BenchError(f"{' '.join(map(str, cmd))}: exit {r.returncode}: "
                         f"{r.stderr.strip()[-3000:]}")
    return r.stdout


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMGT]?)", s)
    if not m:
        raise BenchError(f"bad size {s}")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]


# ---- the machine -----------------------------------------------------------

def drop_caches():
    """Drop the page cache, dentries and inodes. False where not permitted."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def settle(path, timeout=10.0):
    """Wait until the block device holding path has no I/O in flight (the
    discards and writeback of the previous run's deleted outputs), so that
    no run pays for the one before it."""
    st = os.stat(path)
    dev = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/stat"
    deadline, calm = time.monotonic() + timeout, 0
    while calm < 3 and time.monotonic() < deadline:
        try:
            with open(dev) as f:
                inflight = int(f.read().split()[8])
        except (OSError, IndexError, ValueError):
            return
        calm = calm + 1 if inflight == 0 else 0
        time.sleep(0.01)


def warm(*trees):
    """Read every entry of the trees (stat, xattrs, data): each timed run
    starts from a tree in the page cache, as the report says, even where the
    machine pages out idle cache between runs (DAMON's pageout on VMs)."""
    buf = bytearray(1 << 20)
    for top in trees:
        for dirpath, dirnames, filenames in os.walk(top):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                try:
                    st = os.lstat(p)
                    os.listxattr(p, follow_symlinks=False)
                except OSError:
                    continue
                if os.path.stat.S_ISREG(st.st_mode):
                    try:
                        with open(p, "rb", buffering=0) as f:
                            while f.readinto(buf):
                                pass
                    except OSError:
                        pass


def ready(cache, *trees):
    os.sync()
    settle(cache)
    warm(*trees)


def damon_pageout():
    """True when DAMON pages out idle memory (page cache included)."""
    for state in glob.glob("/sys/kernel/mm/damon/admin/kdamonds/*/state"):
        try:
            with open(state) as f:
                if f.read().strip() != "on":
                    continue
        except OSError:
            continue
        for action in glob.glob(os.path.join(os.path.dirname(state),
                                             "contexts/*/schemes/*/action")):
            with open(action) as f:
                if f.read().strip() == "pageout":
                    return True
    return False


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def first_line(cmd):
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in r.stdout.splitlines():
            if line.strip():
                return line.strip()
    except OSError:
        pass
    return "not found"


def pkg_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return r.stdout.strip() or "not installed"
    except OSError:
        return "?"


def git_state():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", top, "rev-parse", "--short", "HEAD"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", top, "status", "--porcelain", "--", "src",
                                "include"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True).stdout.strip()
    except OSError:
        return "no git"
    return f"commit {head or '?'}{', src/ modified' if dirty else ''}"


def machine_lines(rpifs):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) >> 20
    return [
        f"machine: {os.cpu_count()} CPUs ({cpu}), {mem} GiB RAM, "
        f"kernel {platform.release()}, load average {loadavg()} at start",
        f"versions: {first_line([rpifs, '--version'])} ({git_state()}); libfuse3 "
        f"{pkg_version('libfuse3-3')}; e2fsprogs {pkg_version('e2fsprogs')}; "
        f"dosfstools {pkg_version('dosfstools')}; mtools {pkg_version('mtools')}; "
        f"fdisk {pkg_version('fdisk')}; genimage {pkg_version('genimage')}; "
        f"debootstrap {pkg_version('debootstrap')}",
        "before every timed run (items 1 and 3) the disk is let go idle and the trees "
        "it reads are read once, untimed" + ("; this machine pages out idle page cache "
        "(DAMON pageout), which this undoes" if damon_pageout() else ""),
    ]


# ---- source trees ----------------------------------------------------------

def apt_mirror():
    """The Debian mirror the host's apt configuration names."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            text = f.read()
        for stanza in re.split(r"\n\s*\n", text):
            if re.search(r"^Suites:.*\bbookworm\b(?!-)", stanza, re.M) or \
               re.search(r"^Suites:\s*bookworm\s*$", stanza, re.M):
                m = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                if m and "security" not in m.group(1):
                    return m.group(1)
        m = re.search(r"^URIs:\s*(\S+)", text, re.M)
        if m and "security" not in m.group(1):
            return m.group(1)
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        try:
            with open(path) as f:
                for line in f:
                    w = line.split("#", 1)[0].split()
                    if len(w) >= 3 and w[0] == "deb":
                        uri = next((x for x in w[1:] if not x.startswith("[")
                                    and not x.endswith("]") and "=" not in x), None)
                        if uri and "security" not in uri:
                            return uri
        except OSError:
            pass
    raise BenchError("no Debian mirror in the apt configuration: pass --mirror URL")


def write_file(path, data):
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def add_boot_files(root):
    """Pi 3 boot files: the 30 MiB kernel (random bytes), firmware-sized blobs,
    config.txt, cmdline.txt. Idempotent."""
    boot = os.path.join(root, "boot")
    os.makedirs(boot, exist_ok=True)
    blobs = {"kernel8.img": KERNEL_SIZE, "bootcode.bin": 52 * 1024,
             "start.elf": 2900 * 1024, "fixup.dat": 7 * 1024,
             "bcm2710-rpi-3-b.dtb": 32 * 1024}
    for name, size in blobs.items():
        p = os.path.join(boot, name)
        if not os.path.isfile(p) or os.path.getsize(p) != size:
            write_file(p, os.urandom(size))
    # The disk id the tree's fstab names (`rpifs build` writes one): rpifs
    # takes the image's disk id from fstab and cmdline.txt and refuses a
    # tree where they disagree.
    disk_id = "5eed0001"
    try:
        with open(os.path.join(root, "etc/fstab")) as f:
            for line in f:
                m = re.match(r"\s*PARTUUID=([0-9a-fA-F]{8})-0?2\s+/\s", line)
                if m:
                    disk_id = m.group(1).lower()
    except FileNotFoundError:
        pass
    texts = {"config.txt": "arm_64bit=1\nkernel=kernel8.img\nenable_uart=1\n",
             "cmdline.txt": f"console=serial0,115200 root=PARTUUID={disk_id}-02 "
                            "rootfstype=ext4 rootwait\n"}
    for name, text in texts.items():
        p = os.path.join(boot, name)
        old = None
        if os.path.isfile(p):
            with open(p, "rb") as f:
                old = f.read()
        if old != text.encode():
            write_file(p, text.encode())


def tree_stats(root):
    files = dirs = other = 0
    size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirs += 1
        for n in filenames:
            st = os.lstat(os.path.join(dirpath, n))
            if os.path.stat.S_ISREG(st.st_mode):
                files += 1
                size += st.st_size
            else:
                other += 1
        for n in dirnames:
            if os.path.islink(os.path.join(dirpath, n)):
                other += 1
    return {"files": files, "dirs": dirs, "other": other, "bytes": size}


def prepare_debian(cfg):
    """The Debian arm64 tree, built once and kept in CACHE.

    Full mode: CACHE/debian-bookworm-arm64-rootfs, a complete root file system
    built by rpifs's own `rpifs build rootfs` (debootstrap --foreign, then the
    second stage under qemu-user-static; about 9 800 entries, 260 MiB) with
    the downloaded .debs removed, as `apt-get clean` would. About 4 min.
    Quick mode: CACHE/debian-bookworm-arm64, debootstrap's first stage only
    (about 6 300 entries, the base system still packed in .debs): 20 s and
    no qemu, enough to keep the bench working in CI.
    Returns (root, description)."""
    mirror = cfg.mirror or apt_mirror()
    if cfg.quick:
        root = os.path.join(cfg.cache, "debian-bookworm-arm64")
        kind = "Debian bookworm arm64, debootstrap --foreign first stage (quick mode)"
        if not os.path.isdir(root):
            tmp = root + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            log(f"debootstrap --arch arm64 --foreign bookworm (first stage) from {mirror}")
            t = now()
            r = subprocess.run(["debootstrap", "--arch", "arm64", "--foreign", "bookworm",
                                tmp, mirror], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise BenchError("debootstrap failed:\n" + r.stdout[-3000:])
            log(f"debootstrap took {now() - t:.0f} s")
            os.rename(tmp, root)
    else:
        root = os.path.join(cfg.cache, "debian-bookworm-arm64-rootfs")
        kind = "Debian bookworm arm64, `rpifs build rootfs` (debootstrap, both stages)"
        stamp = root + ".ok"
        if not (os.path.isdir(root) and os.path.exists(stamp)):
            log(f"building the Debian tree: rpifs build rootfs {root} (about 4 min, "
                f"once; kept in {cfg.cache})")
            t = now()
            # the stage prints its progress on stderr; its log is in ROOT.rpifs/logs
            r = subprocess.run([cfg.rpifs, "build", "rootfs", root, "--force",
                                "--mirror", mirror], stdout=sys.stderr)
            if r.returncode != 0:
                raise BenchError(f"rpifs build rootfs {root} failed (exit {r.returncode}); "
                                 f"its log: {root}.rpifs/logs/rootfs.log")
            for deb in glob.glob(os.path.join(root, "var/cache/apt/archives/*.deb")):
                os.unlink(deb)
            open(stamp, "w").close()
            log(f"the Debian tree took {now() - t:.0f} s")
    add_boot_files(root)
    return root, kind


def prepare_synthetic_rootfs(cfg):
    """Offline stand-in for the Debian tree (quick mode only)."""
    root = os.path.join(cfg.cache, "synthetic-rootfs")
    if not os.path.isdir(root):
        shutil.rmtree(root + ".tmp", ignore_errors=True)
        run([cfg.gentree, root, "8000", "500"])
    add_boot_files(root)
    return root


def prepare_noboot(cfg, root):
    """A copy of root with an empty boot directory: mke2fs -d's input (a copy,
    not hard links, so that rpifs's tree has no hard links it would not have
    otherwise)."""
    dst = root + ".noboot"
    stamp = dst + ".ok"
    if not (os.path.isdir(dst) and os.path.exists(stamp)):
        shutil.rmtree(dst, ignore_errors=True)
        log(f"copying {root} without boot/ for mke2fs -d")
        run(["cp", "-a", root, dst])
        boot = os.path.join(dst, "boot")
        shutil.rmtree(boot)
        os.mkdir(boot)
        shutil.copystat(os.path.join(root, "boot"), boot)
        open(stamp, "w").close()
    return dst


def prepare_tree(cfg, n):
    root = os.path.join(cfg.cache, "trees", f"files-{n}")
    if not os.path.isdir(root):
        os.makedirs(os.path.dirname(root), exist_ok=True)
        shutil.rmtree(root + ".tmp", ignore_errors=True)
        log(f"generating {n} files under {root}")
        t = now()
        run([cfg.gentree, root, str(n), "1000"])
        log(f"generated in {now() - t:.1f} s")
    return root


# ---- mounts ----------------------------------------------------------------

def pids_of(binary, mnt):
    """Processes whose command line runs binary with mnt as an argument."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == os.path.basename(binary).encode() \
                and mnt.encode() in argv:
            out.append(int(d))
    return out


def proc_status(pid, key):
    """A kB figure of /proc/PID/status, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise BenchError(f"no {key} for pid {pid}")


def proc_cpu(pid):
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_mounted(mnt):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == mnt:
                return True
    return False


class Mounts:
    """The mounts and daemons this bench started (and only those)."""

    def __init__(self):
        self.live = {}          # mnt -> pid (or None)
        self.last_stderr = ""   # the last start()'s stderr (rpifs -v: its phases)

    def start(self, argv, mnt, binary):
        """Start a daemonising FUSE server; returns (pid, seconds until it
        returned, i.e. until the mount is up)."""
        if is_mounted(mnt):
            raise BenchError(f"{mnt} is still mounted")
        t = now()
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        dt = now() - t
        if r.returncode != 0:
            raise BenchError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
        self.last_stderr = r.stderr
        pids = pids_of(binary, mnt)
        if len(pids) != 1:
            raise BenchError(f"cannot find the daemon serving {mnt} (pids {pids})")
        self.live[mnt] = pids[0]
        return pids[0], dt

    def start_foreground(self, argv, mnt):
        """Start a server with -f; returns (Popen, seconds until disk.img could
        be stat()ed, polled every 0.5 ms)."""
        if is_mounted(mnt):
            raise BenchError(f"{mnt} is still mounted")
        img = os.path.join(mnt, "disk.img")
        errpath = mnt + ".stderr"
        with open(errpath, "w") as err:     # a file: a full pipe would block the server
            t = now()
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        self.live[mnt] = p.pid
        while True:
            try:
                os.stat(img)
                break
            except FileNotFoundError:
                pass
            if p.poll() is not None:
                self.live.pop(mnt, None)
                with open(errpath) as f:
                    raise BenchError(f"{' '.join(argv)}: exit {p.returncode}: {f.read()}")
            time.sleep(0.0005)
        return p, now() - t

    def stop(self, mnt):
        pid = self.live.pop(mnt, None)
        if is_mounted(mnt):
            r = subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                time.sleep(0.5)
                r = subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.PIPE, text=True)
                if r.returncode != 0:
                    subprocess.run(["fusermount3", "-uz", mnt])
        if pid:
            deadline = now() + 30
            while os.path.exists(f"/proc/{pid}") and now() < deadline:
                try:
                    # reap it when it is our child (the -f servers)
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        break
                except ChildProcessError:
                    pass
                time.sleep(0.01)
            if os.path.exists(f"/proc/{pid}"):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def stop_all(self):
        for mnt in list(self.live):
            self.stop(mnt)


# ---- reads -----------------------------------------------------------------

def dd_read(path, expect):
    """dd bs=4M of=/dev/null; returns seconds. Checks the byte count."""
    t = now()
    r = subprocess.run(["dd", f"if={path}", "bs=4M", "of=/dev/null"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = now() - t
    m = re.search(r"^(\d+) bytes", r.stderr, re.M)
    if r.returncode != 0 or not m or int(m.group(1)) != expect:
        raise BenchError(f"dd {path}: {r.stderr.strip()} (expected {expect} bytes)")
    return dt


def read_tree_cold(root):
    """Seconds to read every regular file of root, 8 readers in parallel
    (the caller drops the caches first): what a cold read of the image
    cannot go below, whoever serves it."""
    t = time.monotonic()
    subprocess.run(f"find {shlex.quote(root)} -type f -print0 | xargs -0 -P 8 -n 64 cat "
                   f"> /dev/null", shell=True, check=True)
    return time.monotonic() - t


def read_first_byte(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if len(os.pread(fd, 512, 0)) != 512:
            raise BenchError(f"{path}: short first read")
    finally:
        os.close(fd)


def bare_walk(walk, root):
    """The bare walk (bench/walk.c) of root: getdents64, statx, llistxattr
    and lgetxattr of everything, on rpifs's scan's thread count. Returns
    (seconds from the start of the process to its exit, entries)."""
    t = now()
    out = run([walk, root])
    dt = now() - t
    m = re.search(r"entries (\d+) ", out)
    if not m:
        raise BenchError(f"walk {root}: unexpected output {out!r}")
    return dt, int(m.group(1))


# `rpifs -v` logs "N ms: PHASE" (time since its start) at the end of each
# phase (src/fuse/main.c, src/engine/generation.c, image.c,
# src/fuse/fuse_ops.c); each phase's share is its time less the one logged
# before it. The server mounts once the partition table and FAT32 are built
# ("early map") and builds ext4 after (rpifs.h, defer_ext4): those later
# lines go to syslog once it has detached, so a daemon's stderr holds the
# phases up to the mount only.
PHASES = [("arguments checked", "start, arguments"), ("scanned", "scan (walk + digest)"),
          ("layout", "layout"), ("FAT32", "FAT32"),
          ("early map", "partition table, early map"), ("ext4", "ext4"),
          ("region map", "region map"), ("hole map", "hole map"), ("mounted", "mount")]


def rpifs_phases(stderr):
    """{phase label: seconds} from `rpifs -v`'s stderr, in the order they
    ended; missing phases are left out (a later rpifs may log others)."""
    at = {}
    for m in re.finditer(r"debug: ([0-9.]+) ms: ([a-zA-Z0-9 ]+)", stderr):
        for key, label in PHASES:
            if m.group(2).startswith(key) and label not in at:
                at[label] = float(m.group(1)) / 1000
    out, prev = {}, 0.0
    for label, t in sorted(at.items(), key=lambda kv: kv[1]):
        out[label] = t - prev
        prev = t
    out["(mounted at)"] = at.get("mount", prev)
    return out


# ---- the materialising pipeline --------------------------------------------

class Layout:
    """The partition layout of an rpifs image (from sfdisk -J)."""

    def __init__(self, img):
        self.size = os.stat(img).st_size
        pt = json.loads(run(["sfdisk", "-J", img]))["partitiontable"]
        self.label_id = pt["id"]
        parts = pt["partitions"]
        if len(parts) != 2:
            raise BenchError(f"{img}: expected 2 partitions, found {len(parts)}")
        self.p1_start, self.p1_size = parts[0]["start"], parts[0]["size"]
        self.p2_start, self.p2_size = parts[1]["start"], parts[1]["size"]

    def sfdisk_script(self):
        return (f"label: dos\nlabel-id: {self.label_id}\nunit: sectors\n"
                f"start={self.p1_start}, size={self.p1_size}, type=c, bootable\n"
                f"start={self.p2_start}, size={self.p2_size}, type=83\n")


def mke2fs_cmd(noboot, out, layout):
    return ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "rootfs", "-d", noboot, out,
            f"{layout.p2_size // 2}k"]


def clean(*paths):
    for p in paths:
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.unlink(p)
    os.sync()


def pipeline(root, noboot, layout, out):
    """mkfs.vfat -C + mcopy -s, mke2fs -d, sfdisk, dd conv=notrunc; no root,
    no loop device. Returns seconds (outputs removed, the disk idle and the
    inputs in the page cache before the clock starts)."""
    p1, p2, disk = out + ".p1.vfat", out + ".p2.ext4", out
    clean(p1, p2, disk)
    boot = os.path.join(root, "boot")
    ready(os.path.dirname(out), boot, noboot)
    t = now()
    run(["mkfs.vfat", "-C", "-F", "32", "-n", "BOOT", p1, str(layout.p1_size // 2)])
    entries = sorted(os.path.join(boot, e) for e in os.listdir(boot))
    if entries:
        run(["mcopy", "-s", "-m", "-i", p1, *entries, "::/"])
    run(mke2fs_cmd(noboot, p2, layout))
    run(["truncate", "-s", str(layout.size), disk])
    run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", disk], input=layout.sfdisk_script())
    for part, start in ((p1, layout.p1_start), (p2, layout.p2_start)):
        run(["dd", f"if={part}", f"of={disk}", "bs=4M", f"seek={start * 512}",
             "oflag=seek_bytes", "conv=notrunc,sparse", "status=none"])
    dt = now() - t
    clean(p1, p2)
    return dt


def mke2fs_alone(noboot, layout, out):
    clean(out)
    ready(os.path.dirname(out), noboot)
    t = now()
    run(mke2fs_cmd(noboot, out, layout))
    dt = now() - t
    clean(out)
    return dt


def genimage_run(root, layout, work):
    cfgfile = os.path.join(work, "genimage.cfg")
    out, tmp, inp = (os.path.join(work, d) for d in ("gi-out", "gi-tmp", "gi-in"))
    clean(out, tmp, inp)
    os.makedirs(inp)
    with open(cfgfile, "w") as f:
        f.write(f"""
image boot.vfat {{
	vfat {{ label = "BOOT" extraargs = "-F 32" }}
	mountpoint = "/boot"
	size = {layout.p1_size * 512}
	temporary = true
}}
image rootfs.ext4 {{
	ext4 {{ use-mke2fs = true label = "rootfs" }}
	mountpoint = "/"
	size = {layout.p2_size * 512}
	temporary = true
}}
image disk.img {{
	hdimage {{ partition-table-type = "mbr" disk-signature = {layout.label_id} }}
	size = {layout.size}
	partition boot {{
		partition-type = 0xC
		bootable = true
		offset = {layout.p1_start * 512}
		image = "boot.vfat"
	}}
	partition rootfs {{
		partition-type = 0x83
		offset = {layout.p2_start * 512}
		image = "rootfs.ext4"
	}}
}}
""")
    ready(work, root)
    t = now()
    run(["genimage", "--config", cfgfile, "--rootpath", root, "--tmppath", tmp,
         "--inputpath", inp, "--outputpath", out])
    dt = now() - t
    if os.path.getsize(os.path.join(out, "disk.img")) != layout.size:
        raise BenchError("genimage wrote an image of another size")
    clean(out, tmp, inp)
    return dt


# ---- FAT lookup of the kernel (item 3) ---------------------------------------

def kernel_offset(img, layout, name="kernel8.img"):
    """Byte offset in img of the first cluster of /name in partition 1."""
    p1 = layout.p1_start * 512
    with open(img, "rb") as f:
        f.seek(p1)
        bs = f.read(512)
    bps, spc, reserved, nfats = struct.unpack_from("<HBHB", bs, 11)
    fatsz = struct.unpack_from("<I", bs, 36)[0]
    out = run(["mshowfat", "-i", f"{img}@@{p1}", f"::/{name}"])
    m = re.search(r"<(\d+)", out)
    if not m:
        raise BenchError(f"mshowfat: {out.strip()}")
    cluster = int(m.group(1))
    return p1 + (reserved + nfats * fatsz) * bps + (cluster - 2) * spc * bps


def extract_kernel(img, layout, dest, name="kernel8.img"):
    run(["mcopy", "-n", "-i", f"{img}@@{layout.p1_start * 512}", f"::/{name}", dest])
    with open(dest, "rb") as f:
        data = f.read()
    os.unlink(dest)
    return data


# ---- NBD (item 7) -------------------------------------------------------------

try:
    import nbd as libnbd        # python3-libnbd: the client timing a first byte
except ImportError:
    libnbd = None


def nbd_missing(plugin):
    """Why item 7 cannot run here, or None."""
    for t in ("nbdkit", "nbdcopy"):
        if shutil.which(t) is None:
            return f"{t} not installed (scripts/deps/bench.txt)"
    if libnbd is None:
        return "python3-libnbd (import nbd) not installed for this python"
    if not plugin or not os.path.isfile(plugin):
        return (f"the nbdkit plugin is not built ({plugin or 'no path'}; needs "
                f"nbdkit-plugin-dev at meson setup)")
    # nbdkit cannot load an ASan build of the plugin (see tests/nbd/nbd_lib.sh)
    r = subprocess.run(["nbdkit", "--dump-plugin", plugin], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        return f"nbdkit cannot load {plugin}: {r.stderr.strip()[-300:]}"
    return None


class Nbdkit:
    """One nbdkit server of this bench on a Unix socket, in the foreground
    and with --exit-with-parent: it cannot outlive the bench."""

    def __init__(self, work, name):
        self.sock = os.path.join(work, f"nbd-{name}.sock")
        self.errpath = os.path.join(work, f"nbd-{name}.stderr")
        self.p = None

    def start(self, args, wait=True):
        """Start nbdkit; with wait, return once its socket accepts."""
        if os.path.lexists(self.sock):
            os.unlink(self.sock)
        with open(self.errpath, "w") as err:    # a file: a full pipe would block it
            self.p = subprocess.Popen(["nbdkit", "-f", "--exit-with-parent", "-U", self.sock]
                                      + list(args), stdout=subprocess.DEVNULL, stderr=err)
        if wait:
            h, _ = self.connect(None, now())
            h.shutdown()
            del h

    def connect(self, export, t0, timeout=300):
        """A libnbd handle connected to the export (None: the default one),
        retried every 0.5 ms from t0 until the socket accepts."""
        while True:
            h = libnbd.NBD()
            if export is not None:
                h.set_export_name(export)
            try:
                h.connect_unix(self.sock)
                return h, now() - t0
            except libnbd.Error:
                del h
            self.check()
            if now() - t0 > timeout:
                raise BenchError(f"nbdkit on {self.sock}: not serving after {timeout} s")
            time.sleep(0.0005)

    def check(self):
        if self.p.poll() is not None:
            with open(self.errpath) as f:
                raise BenchError(f"nbdkit {' '.join(self.p.args[5:])}: exit "
                                 f"{self.p.returncode}: {f.read().strip()[-2000:]}")

    def uri(self, export=""):
        return f"nbd+unix:///{export}?socket={self.sock}"

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p = None
        if os.path.lexists(self.sock):
            os.unlink(self.sock)


def nbdcopy_read(uri, extra=()):
    """nbdcopy URI /dev/null (its defaults: block status, so holes are not
    read; multi-conn when the server offers it); returns seconds."""
    t = now()
    run(["nbdcopy", *extra, uri, "/dev/null"])
    return now() - t


def nbdcopy_clients(uri, n):
    """n nbdcopy --connections=1 URI /dev/null at once; seconds until the
    last one ended."""
    t = now()
    ps = [subprocess.Popen(["nbdcopy", "--connections=1", uri, "/dev/null"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
          for _ in range(n)]
    errs = [(p.communicate()[1], p.returncode) for p in ps]
    dt = now() - t
    for err, rc in errs:
        if rc != 0:
            raise BenchError(f"nbdcopy {uri} /dev/null ({n} clients): exit {rc}: {err.strip()}")
    return dt


# ---- report ------------------------------------------------------------------

class Report:
    def __init__(self):
        self.lines = []
        self.targets = []
        self.raw = {}

    def section(self, title):
        self.lines.append("")
        self.lines.append(title)
        print("\n" + title, flush=True)

    def row(self, what, value, peer=""):
        line = f"  {what:<58} {value:>12}  {peer}".rstrip()
        self.lines.append(line)
        print(line, flush=True)

    def note(self, text):
        line = f"  ({text})"
        self.lines.append(line)
        print(line, flush=True)

    def skipped(self, n, why):
        """Item n did not run: the reason, in its section and among the targets."""
        self.note(f"skipped: {why}")
        line = f"  {n}. skipped {why}"
        self.targets.append(line)
        self.lines.append(line)

    def target(self, n, met, text):
        word = "met" if met else "missed"
        line = f"  target {n}: {word:<6} {text}"
        self.targets.append(f"  {n}. {word:<6} {text}")
        self.lines.append(line)
        print(line, flush=True)


def secs(x):
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def mib(x):
    return f"{x / MiB:.1f} MiB"


def rate(size, t):
    return f"{size / MiB / t:.0f} MiB/s"


# ---- a card's write speed (item 6) -------------------------------------------

CARD_CGROUP = "/sys/fs/cgroup/blkio/rpifs-bench-card"


def card_throttle(path, bps):
    """A blkio cgroup (v1) whose writes to the disk holding path go at
    most bps bytes/s, O_DIRECT and fsync'd writes alike (both are issued by
    the writing process): a card's speed on a fast host disk. Returns the
    argv prefix that runs a command inside it, or (None, why)."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    sysdev = f"/sys/dev/block/{dev}"
    if not os.path.isdir(sysdev):
        return None, f"{path} is not on a block device"
    if os.path.exists(os.path.join(sysdev, "partition")):   # throttle the whole disk
        dev = open(os.path.join(os.path.realpath(sysdev), "..", "dev")).read().strip()
    if not os.path.isdir(os.path.dirname(CARD_CGROUP)):
        return None, "no cgroup v1 blkio controller at /sys/fs/cgroup/blkio"
    try:
        os.makedirs(CARD_CGROUP, exist_ok=True)
        with open(os.path.join(CARD_CGROUP, "blkio.throttle.write_bps_device"), "w") as f:
            f.write(f"{dev} {bps}\n")
    except OSError as e:
        return None, f"cannot set a blkio write limit: {e.strerror}"
    procs = os.path.join(CARD_CGROUP, "cgroup.procs")
    return ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh"], None


def card_throttle_end():
    try:
        os.rmdir(CARD_CGROUP)
    except OSError:
        pass


# ---- the measurements ----------------------------------------------------------

class Bench:
    def __init__(self, cfg):
        self.cfg = cfg
        self.work = os.path.join(cfg.cache, "work")
        self.mnt = os.path.join(self.work, "mnt-rpifs")
        self.mnt_mem = os.path.join(self.work, "mnt-memfuse")
        self.mounts = Mounts()
        self.rep = Report()
        self.can_drop = True

    def rpifs_argv(self, root, extra=(), foreground=False):
        return [self.cfg.rpifs, "-q"] + (["-f"] if foreground else []) + list(extra) + \
            [root, self.mnt]

    def mount(self, root, extra=()):
        return self.mounts.start(self.rpifs_argv(root, extra), self.mnt, self.cfg.rpifs)

    def umount(self):
        self.mounts.stop(self.mnt)

    def drop(self):
        ok = drop_caches()
        if not ok and self.can_drop:
            log("cannot write /proc/sys/vm/drop_caches: first reads are not cold")
        self.can_drop = self.can_drop and ok
        return ok

    # 1 ---------------------------------------------------------------------
    def readable(self, root, noboot, layout, genimage):
        cfg, R = self.cfg, self.rep
        img = os.path.join(self.mnt, "disk.img")
        out = os.path.join(self.work, "pipeline.img")
        first, last, mnt, pipe, mk, gi = [], [], [], [], [], []
        walk, walk_cold, first_cold, phases, phases_cold = [], [], [], [], []
        entries = 0
        for i in range(cfg.runs):
            log(f"1. readable: run {i + 1}/{cfg.runs}")
            ready(self.work, root)
            # Timed: rpifs until it returns, then the open and read. Not
            # the harness's own search of /proc for the daemon's pid
            # (Mounts.start, ~1 ms) between the two.
            _, dt = self.mount(root, ["-v"])
            mnt.append(dt)
            t = now()
            read_first_byte(img)
            first.append(dt + now() - t)
            phases.append(rpifs_phases(self.mounts.last_stderr))
            dd_read(img, layout.size)
            last.append(dt + now() - t)
            self.umount()
            # the limit, from the same state: the bare walk of the tree
            ready(self.work, root)
            dt, entries = bare_walk(cfg.walk, root)
            walk.append(dt)
            # cold: the tree's pages, dentries and inodes dropped, each
            # (taking turns at going first)
            for who in (("rpifs", "walk") if i % 2 == 0 else ("walk", "rpifs")):
                settle(self.work)
                if not self.drop():
                    break
                if who == "walk":
                    walk_cold.append(bare_walk(cfg.walk, root)[0])
                    continue
                _, dt = self.mount(root, ["-v"])
                t = now()
                read_first_byte(img)
                first_cold.append(dt + now() - t)
                phases_cold.append(rpifs_phases(self.mounts.last_stderr))
                self.umount()
            warm(root)
            pipe.append(pipeline(root, noboot, layout, out))
            mk.append(mke2fs_alone(noboot, layout, os.path.join(self.work, "alone.ext4")))
            if genimage:
                gi.append(genimage_run(root, layout, self.work))
        f, p, m, w = median(first), median(pipe), median(mk), median(walk)
        R.section(f"1. Time until disk.img is readable (source tree in page cache; "
                  f"median of {cfg.runs})")
        R.row("rpifs: start -> first byte of disk.img read", secs(f),
              f"{f / w:.2f}x the bare walk")
        R.row("  of which: start -> rpifs returned (mounted)", secs(median(mnt)),
              "the rest: open (its change check) + read")
        R.row(f"bare walk (bench/walk.c, {entries} entries)", secs(w),
              "the limit: what any tool must read")
        R.row(f"rpifs: start -> last byte read ({layout.size // MiB} MiB, dd bs=4M)",
              secs(median(last)), f"{median(last) / f:.1f}x first byte")
        R.row("materialise: mkfs.vfat -C, mcopy -s, mke2fs -d, sfdisk, dd", secs(p),
              f"{p / f:.1f}x rpifs first byte")
        R.row("mke2fs -t ext4 -d alone (partition 2 only)", secs(m),
              f"{m / f:.1f}x rpifs first byte")
        if genimage:
            g = median(gi)
            R.row("genimage (vfat + ext4 with mke2fs, hdimage)", secs(g),
                  f"{g / f:.1f}x rpifs first byte")
        else:
            R.note("genimage not installed: apt-get install genimage")
        fc = wc = None
        if first_cold and walk_cold:
            fc, wc = median(first_cold), median(walk_cold)
            R.row("cold (after drop_caches): rpifs start -> first byte", secs(fc),
                  f"{fc / wc:.2f}x the bare walk")
            R.row("cold: bare walk", secs(wc))
        else:
            R.note("cannot drop caches (not root): no cold rows")
        self.phase_rows(phases, "rpifs -v phases, warm (median of each phase):", f)
        if phases_cold:
            self.phase_rows(phases_cold, "rpifs -v phases, cold:", fc)
        R.target(1, p / f >= 30 and m / f >= 5,
                 f"readable {secs(f)}: {p / f:.1f}x faster than the pipeline (>= 30x), "
                 f"{m / f:.1f}x faster than mke2fs -d alone (>= 5x)")
        cold_txt = f"; cold {fc / wc:.2f}x ({secs(fc)} against {secs(wc)})" if fc else ""
        R.target("1b", f / w <= 1.5,
                 f"start -> first byte {secs(f)} = {f / w:.2f}x the bare walk's {secs(w)} "
                 f"(<= 1.5x, warm){cold_txt}")
        self.rep.raw["readable"] = {"mounted": mnt, "first": first, "last": last, "pipeline": pipe,
                                    "mke2fs": mk, "genimage": gi, "walk": walk,
                                    "walk_cold": walk_cold, "first_cold": first_cold,
                                    "phases": phases, "phases_cold": phases_cold}
        return out

    def phase_rows(self, phases, title, first):
        """Where rpifs's time to the first byte goes: each `rpifs -v` phase
        (median over the runs), and what is left after the mount (the
        daemon's return, the open with its change check, the read)."""
        R = self.rep
        R.row(title, "")
        for _, label in PHASES:
            xs = [p[label] for p in phases if label in p]
            if xs:
                R.row(f"  {label}", f"{median(xs) * 1000:.1f} ms")
        at = median([p["(mounted at)"] for p in phases])
        R.row("  after the mount: return, open (change check), read",
              f"{(first - at) * 1000:.1f} ms")

    # 2 ---------------------------------------------------------------------
    def sequential(self, root, layout, materialised):
        cfg, R = self.cfg, self.rep
        img = os.path.join(self.mnt, "disk.img")
        mimg = os.path.join(self.mnt_mem, "disk.img")
        size = layout.size
        r1, r2, rw, rw2, m1, m2, f1, f2, tc = [], [], [], [], [], [], [], [], []
        for i in range(cfg.runs):
            log(f"2. sequential read: run {i + 1}/{cfg.runs}")
            # The warm pair first, rpifs and memfuse back to back from the same
            # state (no drop_caches between them: after one, this VM's first
            # page allocations cost more and vary), taking turns at going
            # first; the target is the median of the pairs' ratios, so that a
            # drift of the machine's speed between runs weighs on both.
            ready(self.work, root)
            for who in (("rpifs", "memfuse") if i % 2 == 0 else ("memfuse", "rpifs")):
                if who == "rpifs":
                    self.mount(root)
                    rw.append(dd_read(img, size))
                    rw2.append(dd_read(img, size))
                    self.umount()
                else:
                    self.mounts.start([cfg.memfuse, str(size), self.mnt_mem], self.mnt_mem,
                                      cfg.memfuse)
                    m1.append(dd_read(mimg, size))
                    m2.append(dd_read(mimg, size))
                    self.mounts.stop(self.mnt_mem)
            self.mount(root)
            self.drop()
            r1.append(dd_read(img, size))
            r2.append(dd_read(img, size))
            self.umount()
            self.drop()
            f1.append(dd_read(materialised, size))
            f2.append(dd_read(materialised, size))
            self.drop()
            tc.append(read_tree_cold(root))
        cold = "caches dropped" if self.can_drop else "caches NOT dropped (not permitted)"
        R.section(f"2. Full sequential read of disk.img, {size // MiB} MiB, dd bs=4M "
                  f"(median of {cfg.runs})")
        R.row("rpifs: first read, source files in page cache", secs(median(rw)),
              f"{rate(size, median(rw))}, {median(m1) / median(rw):.2f}x memfuse's first read")
        R.row("rpifs: second read (the kernel's page cache)", secs(median(rw2)),
              f"{rate(size, median(rw2))}, {median(m2) / median(rw2):.2f}x memfuse's second read")
        R.row("memfuse (trivial FUSE file in memory): first read", secs(median(m1)),
              rate(size, median(m1)))
        R.row("memfuse (trivial FUSE file in memory): second read", secs(median(m2)),
              rate(size, median(m2)))
        R.row(f"rpifs: first read, {cold}", secs(median(r1)), rate(size, median(r1)))
        R.row("  the floor: every source file read cold, 8 readers, no FUSE", secs(median(tc)),
              f"rpifs cold - rpifs cached = {median(r1) - median(rw):.3f} s")
        R.row(f"materialised file (host disk): first read, {cold}",
              secs(median(f1)), f"{rate(size, median(f1))}, rpifs cold is "
              f"{median(f1) / median(r1):.2f}x as fast")
        R.row("materialised file: second read (page cache, no FUSE)", secs(median(f2)),
              rate(size, median(f2)))
        # paired: each run's memfuse read against the rpifs read next to it
        ra = median([m / r for m, r in zip(m1, rw)])
        rb = median([m / r for m, r in zip(m2, rw2)])
        R.note("memfuse serves from memory, so rpifs is held to it with its source files in "
               "memory too; a cold read also pays for reading the tree from the host disk "
               "(the floor row), which no FUSE design avoids")
        R.note(f"per run, memfuse / rpifs (first read): "
               f"{', '.join(f'{m / r:.2f}' for m, r in zip(m1, rw))}; "
               f"(second read): {', '.join(f'{m / r:.2f}' for m, r in zip(m2, rw2))}")
        R.target(2, ra >= 0.8 and rb >= 0.8,
                 f"rpifs {rate(size, median(rw))}: {ra:.2f}x the trivial FUSE file's first "
                 f"read, {rb:.2f}x its second (median of the runs' ratios; >= 0.8x; cold: "
                 f"{median(m1) / median(r1):.2f}x, floor {secs(median(tc))})")
        self.rep.raw["sequential"] = {"rpifs_cold": [r1, r2], "rpifs_warm_source": [rw, rw2],
                                      "memfuse": [m1, m2], "materialised": [f1, f2],
                                      "tree_cold_read": tc}

    # 3 ---------------------------------------------------------------------
    def edit(self, root, noboot, layout, materialised):
        cfg, R = self.cfg, self.rep
        img = os.path.join(self.mnt, "disk.img")
        kpath = os.path.join(root, "boot", "kernel8.img")
        serve, opens, pipe, mc = [], [], [], []
        self.mount(root)
        try:
            koff = kernel_offset(img, layout)
            dd_read(img, layout.size)           # the old generation is in the page cache
            for i in range(cfg.runs):
                log(f"3. edit to image: run {i + 1}/{cfg.runs}")
                new = os.urandom(KERNEL_SIZE)
                ready(self.work, root)
                write_file(kpath, new)          # new inode, new bytes: not timed
                time.sleep(0.05)                # let the last release reach rpifs
                t = now()
                n = 0
                while True:
                    n += 1
                    fd = os.open(img, os.O_RDONLY)
                    got = os.pread(fd, 4096, koff)
                    os.close(fd)
                    if got == new[:4096]:
                        break
                    if now() - t > 30:
                        raise BenchError("rpifs still serves the old kernel after 30 s")
                    time.sleep(0.001)
                serve.append(now() - t)
                opens.append(n)
                if extract_kernel(img, layout, os.path.join(self.work, "k.out")) != new:
                    raise BenchError("the new generation's kernel differs from the tree's")
                pipe.append(pipeline(root, noboot, layout, materialised))
                kcopy = os.path.join(self.work, "kernel.copy")
                with open(kcopy, "wb") as f:
                    f.write(os.urandom(KERNEL_SIZE))
                os.sync()
                t = now()
                run(["mcopy", "-o", "-m", "-i", f"{materialised}@@{layout.p1_start * 512}",
                     kcopy, "::/kernel8.img"])
                mc.append(now() - t)
                os.unlink(kcopy)
        finally:
            self.umount()
        s, p = median(serve), median(pipe)
        R.section(f"3. Edit to image: replace the 30 MiB boot/kernel8.img (median of {cfg.runs})")
        R.row("rpifs: new open of disk.img returns the new kernel", secs(s),
              f"opens needed: {max(opens)} at most")
        R.row("materialise again (whole pipeline)", secs(p), f"{p / s:.1f}x rpifs")
        R.row("(for reference) mcopy -o into the materialised image", secs(median(mc)),
              f"{median(mc) / s:.1f}x rpifs")
        R.target(3, s <= 0.2, f"new kernel served {secs(s)} after the edit (<= 0.2 s)")
        self.rep.raw["edit"] = {"rpifs": serve, "opens": opens, "pipeline": pipe, "mcopy": mc}

    # 4 ---------------------------------------------------------------------
    def memory(self, root, sizes):
        cfg, R = self.cfg, self.rep
        img = os.path.join(self.mnt, "disk.img")
        hwm = {s: [] for s in sizes}
        rd = {s: [] for s in sizes}
        runs = min(cfg.runs, 3)         # VmHWM barely moves; a 64 GiB read is long
        for i in range(runs):
            for s in sizes:
                log(f"4. memory --size {s}: run {i + 1}/{runs}")
                p, _ = self.mounts.start_foreground(
                    self.rpifs_argv(root, ["--size", s], foreground=True), self.mnt)
                size = parse_size(s)
                rd[s].append(dd_read(img, size))
                hwm[s].append(proc_status(p.pid, "VmHWM"))
                self.umount()
                p.wait()
        R.section(f"4. Memory: daemon peak RSS (VmHWM) after a full read, same tree "
                  f"(median of {runs})")
        for s in sizes:
            R.row(f"rpifs --size {s}", mib(median(hwm[s])),
                  f"full read {secs(median(rd[s]))}, {rate(parse_size(s), median(rd[s]))}")
        vals = [median(hwm[s]) for s in sizes]
        spread = max(vals) / min(vals) - 1
        R.target(4, max(vals) <= 32 * MiB and spread <= 0.10,
                 f"peak RSS {mib(min(vals))} .. {mib(max(vals))} (<= 32 MiB), "
                 f"{spread * 100:.1f} % apart across {', '.join(sizes)} (<= 10 %)")
        self.rep.raw["memory"] = {"hwm": hwm, "read": rd}

    # 5 ---------------------------------------------------------------------
    def scaling(self, counts):
        cfg, R = self.cfg, self.rep
        img = os.path.join(self.mnt, "disk.img")
        res = {}
        roots = {n: prepare_tree(cfg, n) for n in counts}
        runs = {n: {"readable": [], "mounted": [], "hwm": [], "cpu": []} for n in counts}
        sizes = {}
        # The sizes take turns, so that a drift of the machine's speed over
        # the minutes this takes weighs on each alike; before each timed
        # run an untimed mount of the same tree brings what the scan reads
        # (inodes, dentries, directory blocks) into the cache, as item 1
        # has it, whatever was paged out since.
        for i in range(cfg.runs):
            for n in counts:
                root, d = roots[n], runs[n]
                log(f"5. scaling {n} files: run {i + 1}/{cfg.runs}")
                p, _ = self.mounts.start_foreground(self.rpifs_argv(root, foreground=True),
                                                    self.mnt)
                self.umount()
                p.wait()
                os.sync()
                settle(self.work)
                t = now()
                p, dt = self.mounts.start_foreground(
                    self.rpifs_argv(root, foreground=True), self.mnt)
                d["mounted"].append(dt)
                read_first_byte(img)
                d["readable"].append(now() - t)
                d["hwm"].append(proc_status(p.pid, "VmHWM"))
                d["cpu"].append(proc_cpu(p.pid))
                sizes[n] = os.stat(img).st_size
                self.umount()
                p.wait()
        for n in counts:
            d = runs[n]
            res[n] = {"readable": median(d["readable"]), "mounted": median(d["mounted"]),
                      "hwm": median(d["hwm"]), "cpu": median(d["cpu"]), "size": sizes[n],
                      "runs": d}
        R.section(f"5. Scaling: synthetic trees, 1000 files a directory, 1-2048 bytes each "
                  f"(rpifs -f; median of {cfg.runs})")
        for n in counts:
            r = res[n]
            t, m, h = r["readable"], r["mounted"], r["hwm"]
            R.row(f"{n:>8} files: start -> first byte read ({r['size'] // MiB} MiB image)",
                  secs(t), f"{t / n * 1e6:.2f} us/file")
            R.row(f"{n:>8} files: of which start -> mounted", secs(m),
                  f"{m / n * 1e6:.2f} us/file; the rest is the open and the read")
            R.row(f"{n:>8} files: CPU time of rpifs (user + system)", secs(r["cpu"]),
                  f"{r['cpu'] / n * 1e6:.2f} us/file (less sensitive to load)")
            R.row(f"{n:>8} files: peak RSS", mib(h), f"{h / n:.0f} B/file")
        a, b = counts[0], counts[-1]
        pa, pb = res[a]["readable"] / a, res[b]["readable"] / b
        if len(counts) >= 3:
            x, y = counts[-2], counts[-1]
            slope = (res[y]["readable"] - res[x]["readable"]) / (y - x)
            R.note(f"marginal cost between {x} and {y} files: {slope * 1e6:.2f} us/file")
        ca, cb = res[a]["cpu"] / a, res[b]["cpu"] / b
        R.note(f"CPU time per file at {b} files = {cb / ca:.2f}x that at {a} files")
        R.target(5, pb <= 1.2 * pa,
                 f"time per file at {b} files {pb * 1e6:.2f} us = {pb / pa:.2f}x that at "
                 f"{a} files, {pa * 1e6:.2f} us (<= 1.2x)")
        self.rep.raw["scaling"] = {str(n): res[n] for n in counts}

    # 6 ---------------------------------------------------------------------
    def card(self, root, noboot, layout, materialised):
        """Writing the card (issue 13): bytes and time of `rpifs flash` (the
        data ranges of the hole map) against `bmaptool copy` (a bmap made by
        `bmaptool create` of a sparse copy of disk.img) and dd of the whole
        image, into a regular file opened with O_DIRECT standing in for the
        card; then `rpifs export TREE OUT.img.zst` against zstd of a
        materialised image."""
        cfg, R = self.cfg, self.rep
        t6 = now()
        w = self.work
        src, bmap = os.path.join(w, "card-src.img"), os.path.join(w, "card-src.bmap")
        tgt = os.path.join(w, "card-target")
        exp = os.path.join(w, "card-export.img.zst")
        zsrc = src + ".zst"
        mine = [src, bmap, tgt, exp, exp + ".bmap", zsrc]
        for tool in ("bmaptool", "zstd"):
            if not shutil.which(tool):
                raise BenchError(f"item 6 needs {tool}: run scripts/install-deps (packages in "
                                 f"scripts/deps/bench.txt)")
        item1 = self.rep.raw.get("readable", {}).get("pipeline")

        def oublock():
            import resource
            return resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock * 512

        def same_data(a, b, sample):
            """b holds a's data ranges (SEEK_DATA walk of the sparse copy);
            sample: only the first 64 KiB of each range (quick mode: reading
            back all of it from the host disk takes seconds)."""
            with open(a, "rb") as fa, open(b, "rb") as fb:
                off = 0
                while True:
                    try:
                        off = os.lseek(fa.fileno(), off, os.SEEK_DATA)
                    except OSError:
                        return                  # ENXIO: no data after off
                    end = os.lseek(fa.fileno(), off, os.SEEK_HOLE)
                    if sample:
                        end = min(end, off + 64 * 1024)
                    while off < end:
                        n = min(end - off, 4 * MiB)
                        if os.pread(fa.fileno(), n, off) != os.pread(fb.fileno(), n, off):
                            raise BenchError(f"{b} differs from the image at {off}")
                        off += n
                    off = os.lseek(fa.fileno(), off, os.SEEK_HOLE)

        def timed(cmd):
            """Seconds and bytes written (the kernel's write_bytes of the
            child, O_DIRECT and buffered alike) of cmd."""
            b = oublock()
            t = now()
            run(cmd)
            return now() - t, oublock() - b

        # zstd at the level rpifs export uses: libarchive's default, 3
        # (src/flash/export.c sets none); one worker, as libarchive's filter
        # compresses in one thread
        zstd = ["zstd", "-q", "-f", "-3", "-T1"]
        flash = [cfg.rpifs, "flash", "-q", "--yes", "--no-verify", root, tgt]
        dd = ["dd", f"if={src}", f"of={tgt}", "bs=4M", "oflag=direct", "conv=notrunc",
              "status=none"]
        # name -> (command, caches dropped); the warm pair (tree, image file
        # in the page cache) leaves only the writes to compare
        writers = {
            "rpifs": (flash, True),
            "dd": (dd, True),
            "bmaptool": (["bmaptool", "-q", "copy", "--bmap", bmap, src, tgt], True),
            "rpifs+verify": ([a for a in flash if a != "--no-verify"], True),
            "rpifs warm": (flash, False),
            "dd warm": (dd, False),
        }
        if cfg.quick:               # CI: the three writers, cold (about 20 s)
            for k in ("rpifs+verify", "rpifs warm", "dd warm"):
                del writers[k]
        # The same writers at a card's speed: a blkio write limit on the
        # host disk (40 MB/s, an A1 card's sequential write; quick mode 200
        # MB/s and no bmaptool, to stay short in CI).
        card_bps = (200 if cfg.quick else 40) * 1000 * 1000
        prefix, why = card_throttle(w, card_bps)
        if prefix:
            for k in (["rpifs", "dd"] if cfg.quick else ["rpifs", "dd", "bmaptool"]):
                writers[k + " card"] = (prefix + writers[k][0], True)
        secs_w = {k: [] for k in writers}
        bytes_w = {k: [] for k in writers}
        exp_t, exp_sz, zs_t, zs_sz = [], [], [], []
        pipe_t = list(item1 or [])
        try:
            # The materialised copy a bmaptool user starts from: cp
            # --sparse=always of disk.img, its zero blocks left as holes
            # (a dd copy is fully allocated, and bmaptool create then maps
            # every block: it writes what dd writes).
            clean(*mine)
            self.mount(root)
            try:
                t = now()
                run(["cp", "--sparse=always", os.path.join(self.mnt, "disk.img"), src])
                cp_t = now() - t
            finally:
                self.umount()
            t = now()
            run(["bmaptool", "-q", "create", "-o", bmap, src])
            bc_t = now() - t
            for i in range(cfg.runs):
                log(f"6. writing the card: run {i + 1}/{cfg.runs}")
                names = list(writers)
                k = i % len(names)              # take turns at going first
                for who in names[k:] + names[:k]:
                    # The stand-in card: a file of the image's size whose
                    # blocks were all written once, so that a timed write
                    # only overwrites, as on a card (into a new or
                    # fallocated file every write would also allocate or
                    # convert extents, in proportion to the bytes). bmaptool
                    # truncates it: it is written again after that.
                    st = os.stat(tgt) if os.path.exists(tgt) else None
                    if not st or st.st_size != layout.size or st.st_blocks * 512 < layout.size:
                        clean(tgt)
                        run(["dd", "if=/dev/zero", f"of={tgt}", "bs=4M", f"count={layout.size}",
                             "iflag=count_bytes", "oflag=direct", "status=none"])
                    cmd, cold = writers[who]
                    if cold:
                        os.sync()
                        settle(w)
                        self.drop()
                    else:
                        ready(w, root)
                        dd_read(src, layout.size)
                    dt, nb = timed(cmd)
                    secs_w[who].append(dt)
                    bytes_w[who].append(nb)
                    if i == 0 and who == "rpifs":
                        same_data(src, tgt, cfg.quick)  # the card holds the image
                ready(w, root)
                t = now()
                run([cfg.rpifs, "export", "-q", root, exp])
                exp_t.append(now() - t)
                exp_sz.append(os.path.getsize(exp))
                clean(exp, exp + ".bmap")
                # The materialising pipeline's time: item 1's when it ran
                # in this run. zstd compresses the cp copy of disk.img, the
                # export's very bytes (the pipeline's image has the same
                # files and compresses alike, 106.8 against 106.7 MiB on
                # the Debian tree, but item 3 leaves a second kernel in it).
                if not item1:
                    pipe_t.append(pipeline(root, noboot, layout, materialised))
                t = now()
                run(zstd + [src, "-o", zsrc])
                zs_t.append(now() - t)
                zs_sz.append(os.path.getsize(zsrc))
                clean(zsrc)
        finally:
            clean(*mine)
            card_throttle_end()
        took = now() - t6
        log(f"6. took {took:.0f} s")
        size = layout.size
        cold = "caches dropped" if self.can_drop else "caches NOT dropped (not permitted)"
        R.section(f"6. Writing the card: the {size // MiB} MiB image over a written regular "
                  f"file on the host disk, {cold} before each write but the warm ones "
                  f"(median of {cfg.runs})")
        b = {k: median(v) for k, v in bytes_w.items()}
        s = {k: median(v) for k, v in secs_w.items()}
        R.row("bytes written: dd bs=4M oflag=direct (the whole image)", mib(b["dd"]),
              f"{b['dd'] / size * 100:.1f} % of the image")
        R.row("bytes written: rpifs flash (data ranges of the hole map)", mib(b["rpifs"]),
              f"{b['rpifs'] / size * 100:.1f} % of the image, {b['rpifs'] / b['dd']:.2f}x dd")
        R.row("bytes written: bmaptool copy (bmap of a sparse copy)", mib(b["bmaptool"]),
              f"{b['bmaptool'] / size * 100:.1f} % of the image, "
              f"{b['bmaptool'] / b['dd']:.2f}x dd")
        R.row("time: dd if=IMAGE of=FILE bs=4M oflag=direct", secs(s["dd"]),
              f"{rate(b['dd'], s['dd'])} written")
        R.row("time: rpifs flash --yes --no-verify TREE FILE (O_DIRECT)", secs(s["rpifs"]),
              f"{s['rpifs'] / s['dd']:.2f}x dd")
        if "rpifs+verify" in s:
            R.row("time: rpifs flash --yes TREE FILE (+ read-back verify)",
                  secs(s["rpifs+verify"]), f"{s['rpifs+verify'] / s['dd']:.2f}x dd")
        R.row("time: bmaptool copy --bmap (buffered, fsync; sha256 checks)",
              secs(s["bmaptool"]), f"{s['bmaptool'] / s['dd']:.2f}x dd")
        if "dd warm" in s:
            R.row("time, tree and image in page cache: dd", secs(s["dd warm"]),
                  f"{rate(b['dd warm'], s['dd warm'])} written")
            R.row("time, tree and image in page cache: rpifs flash --no-verify",
                  secs(s["rpifs warm"]), f"{s['rpifs warm'] / s['dd warm']:.2f}x dd")
        R.row("  not timed above: cp --sparse=always of disk.img", secs(cp_t),
              "the sparse copy dd and bmaptool read")
        R.row("  not timed above: bmaptool create of it", secs(bc_t),
              f"{mib(b['bmaptool'])} mapped")
        e, p, z = median(exp_t), median(pipe_t), median(zs_t)
        R.row("rpifs export TREE OUT.img.zst (+ OUT.img.zst.bmap)", secs(e),
              f"{mib(median(exp_sz))}")
        R.row("materialise (pipeline) + zstd -3 -T1 of the image", secs(p + z),
              f"{(p + z) / e:.2f}x rpifs export")
        R.row("  zstd -3 -T1 alone of the image (a copy of disk.img)", secs(z),
              f"{mib(median(zs_sz))}, {z / e:.2f}x rpifs export")
        if item1:
            R.note("the pipeline's time is item 1's, measured in this run")
        R.note(f"bmap-tools {pkg_version('bmap-tools')}; zstd {pkg_version('zstd')}; "
               f"libarchive13 {pkg_version('libarchive13')} (rpifs export's zstd)")
        if "dd card" in s:
            mbps = card_bps / 1e6
            R.row(f"at a card's speed ({mbps:.0f} MB/s write limit): dd", secs(s["dd card"]),
                  f"{rate(b['dd card'], s['dd card'])} written")
            R.row(f"at a card's speed ({mbps:.0f} MB/s): rpifs flash --no-verify",
                  secs(s["rpifs card"]), f"{s['rpifs card'] / s['dd card']:.2f}x dd")
            if "bmaptool card" in s:
                R.row(f"at a card's speed ({mbps:.0f} MB/s): bmaptool copy",
                      secs(s["bmaptool card"]), f"{s['bmaptool card'] / s['dd card']:.2f}x dd")
            R.note("card speed: the writer runs in a blkio cgroup whose writes to the host "
                   "disk are limited (blkio.throttle.write_bps_device; reads are not)")
        else:
            R.note(f"no card-speed rows: {why}")
        R.note("a card writes 10-90 MB/s, far below this host disk: there the time goes "
               "with the bytes written; on the host disk reading the tree weighs as much")
        R.note(f"item 6 took {took:.0f} s, load average {loadavg()}")
        # The target is about a card: the card-speed pair when the limit
        # could be set, else the host disk's.
        pair = ("rpifs card", "dd card") if "dd card" in s else ("rpifs", "dd")
        ratio = median([r / d for r, d in zip(secs_w[pair[0]], secs_w[pair[1]])])
        where = (f"at {card_bps / 1e6:.0f} MB/s" if "dd card" in s else "on the host disk")
        R.target(6, b["rpifs"] <= 0.35 * size and ratio <= 0.4,
                 f"rpifs flash writes {b['rpifs'] / size * 100:.1f} % of the image (<= 35 %) "
                 f"in {ratio:.2f}x dd's time {where} (median of the runs' ratios; <= 0.4x)")
        self.rep.raw["card"] = {"seconds": secs_w, "bytes": bytes_w, "cp": cp_t,
                                "bmaptool_create": bc_t, "export": exp_t, "export_size": exp_sz,
                                "pipeline": pipe_t, "zstd": zs_t, "zstd_size": zs_sz}


    # 7 ---------------------------------------------------------------------
    # 8 ---------------------------------------------------------------------
    def qemu_boot(self):
        """A busybox tree (scripts/busybox-tree, as tests/boot/boot.sh makes
        it) booted by `rpifs qemu --until MARKER` from the mount (rpifs qemu
        mounts the tree for the run) and from a materialised copy of the
        same disk.img (--image FILE, in the page cache); both --snapshot, so
        neither is written. Full mode only; the kernel is the test suite's
        (BUILD/cache/rootfs/boot, tests/build/build_all.sh): skipped with
        the reason when there is none, the bench never builds one."""
        cfg, R = self.cfg, self.rep
        title = f"8. qemu raspi3b boot to the init's marker: mount against a copy (median of {cfg.runs})"
        kcache = cfg.kernel_cache or os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(cfg.rpifs))), "cache")
        why = None
        if cfg.quick:
            why = "full mode only (a boot takes 10-60 s)"
        elif not shutil.which("qemu-system-aarch64"):
            why = "qemu-system-aarch64 not installed (package qemu-system-arm)"
        tree = os.path.join(self.work, "qemu-tree")
        copy = os.path.join(self.work, "qemu-copy.img")
        marker = "RPIFS-BENCH-INIT"
        if not why:
            shutil.rmtree(tree, ignore_errors=True)
            top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            r = subprocess.run([os.path.join(top, "scripts", "busybox-tree"), kcache, tree],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if r.returncode == 2:
                why = (f"{r.stderr.strip()} (or pass --kernel-cache DIR, a test build's "
                       f"cache)").replace("busybox-tree: ", "")
            elif r.returncode != 0:
                raise BenchError(f"scripts/busybox-tree: {r.stderr.strip()}")
        R.section(title)
        if why:
            R.skipped("8", why)
            return
        write_file(os.path.join(tree, "sbin/init"),
                   "#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n"
                   f"echo {marker}\n/bin/busybox poweroff -f\n".encode())
        os.chmod(os.path.join(tree, "sbin/init"), 0o755)
        self.mount(tree)
        try:
            run(["cp", "--sparse=always", os.path.join(self.mnt, "disk.img"), copy])
        finally:
            self.umount()
        base = [cfg.rpifs, "qemu", "--snapshot", "--timeout", "240", "--until", marker]
        mounted, materialised = [], []
        try:
            for i in range(cfg.runs):
                log(f"8. qemu: run {i + 1}/{cfg.runs}")
                for who in (("mount", "copy") if i % 2 == 0 else ("copy", "mount")):
                    ready(self.work, tree)
                    if who == "copy":
                        dd_read(copy, os.path.getsize(copy))
                    argv = base + (["--image", copy] if who == "copy" else []) + [tree]
                    t = now()
                    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
                    dt = now() - t
                    if r.returncode != 0:
                        raise BenchError(f"{' '.join(argv)}: exit {r.returncode}:\n"
                                         f"{r.stdout[-2000:]}")
                    (mounted if who == "mount" else materialised).append(dt)
        finally:
            if os.path.exists(copy):
                os.unlink(copy)
        m, c = median(mounted), median(materialised)
        ra = median([a / b for a, b in zip(mounted, materialised)])
        R.row("rpifs qemu TREE (mounts it for the run) -> marker", secs(m),
              f"{ra:.3f}x the copy (median of the runs' ratios)")
        R.row("rpifs qemu --image COPY TREE (a cp of disk.img) -> marker", secs(c))
        R.target(8, ra <= 1.05,
                 f"boot from the mount {secs(m)}: {ra:.3f}x the materialised copy's "
                 f"{secs(c)} (median of the runs' ratios; <= 1.05x)")
        self.rep.raw["qemu"] = {"mounted": mounted, "materialised": materialised}

    def peers(self, root, noboot, layout):
        """nbdkit's own tree-to-disk plugins behind nbdfuse, side by side
        with rpifs's FUSE disk.img (item 7's second part): linuxdisk (an ext4
        of the tree without boot/, made by mke2fs -d before it serves; no
        partition table, no FAT) against disk.img's partition 2, and floppy
        (a FAT32 of boot/, built in memory at start, file data read on
        demand; no ext4) against partition 1. Every server is fresh; first
        byte = start -> 512 bytes read from the FUSE file (polled every
        0.5 ms), then the full read is dd bs=4M of the same bytes count."""
        cfg, R = self.cfg, self.rep
        title = f"7b. Peers: nbdkit linuxdisk and floppy behind nbdfuse (median of {cfg.runs})"
        why = None
        for t in ("nbdkit", "nbdfuse"):
            if not shutil.which(t):
                why = f"{t} not installed (packages nbdkit, libnbd-bin)"
        if not why:
            for plug in ("linuxdisk", "floppy"):
                if subprocess.run(["nbdkit", plug, "--dump-plugin"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode != 0:
                    why = f"nbdkit's {plug} plugin not found"
        R.section(title)
        if why:
            R.skipped("7b", why)
            return
        img = os.path.join(self.mnt, "disk.img")
        nmnt = os.path.join(self.work, "mnt-nbdfuse")
        os.makedirs(nmnt, exist_ok=True)
        nimg = os.path.join(nmnt, "disk.img")
        p1 = (layout.p1_start * 512, layout.p1_size * 512)
        p2 = (layout.p2_start * 512, layout.p2_size * 512)
        boot = os.path.join(root, "boot")
        S = {k: [] for k in ("r_first", "r_p2", "r_p1", "ld_first", "ld_read", "fl_first",
                             "fl_read")}
        fl_size = ld_size = 0

        def nbdfuse(args):
            """nbdfuse NMNT/disk.img --command nbdkit -s ARGS: (Popen,
            seconds to the first 512 bytes read)."""
            if is_mounted(nmnt):
                raise BenchError(f"{nmnt} is still mounted")
            t = now()
            p = subprocess.Popen(["nbdfuse", nimg, "--command", "nbdkit", "-s"] + args,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            while True:
                try:
                    fd = os.open(nimg, os.O_RDONLY)
                    try:
                        if len(os.pread(fd, 512, 0)) == 512:
                            break
                    finally:
                        os.close(fd)
                except OSError:
                    pass
                if p.poll() is not None:
                    raise BenchError(f"nbdfuse {' '.join(args)}: exit {p.returncode}: "
                                     f"{p.stderr.read().decode()[-2000:]}")
                time.sleep(0.0005)
            return p, now() - t

        def nbdfuse_stop(p):
            subprocess.run(["fusermount3", "-u", nmnt], stderr=subprocess.DEVNULL)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

        def dd_range(path, off, n):
            t = now()
            run(["dd", f"if={path}", "bs=4M", "of=/dev/null", "iflag=skip_bytes,count_bytes",
                 f"skip={off}", f"count={n}"])
            return now() - t

        try:
            for i in range(cfg.runs):
                log(f"7b. peers: run {i + 1}/{cfg.runs}")
                # rpifs: a fresh mount each for partition 2 and partition 1
                for part, key in ((p2, "r_p2"), (p1, "r_p1")):
                    ready(self.work, root)
                    t = now()
                    self.mount(root)
                    read_first_byte(img)
                    if key == "r_p2":
                        S["r_first"].append(now() - t)
                    S[key].append(dd_range(img, *part))
                    self.umount()
                ready(self.work, noboot)
                p, dt = nbdfuse(["linuxdisk", noboot, "type=ext4", "label=rootfs",
                                 f"size={p2[1]}"])
                S["ld_first"].append(dt)
                ld_size = os.path.getsize(nimg)
                S["ld_read"].append(dd_range(nimg, 0, ld_size))
                nbdfuse_stop(p)
                ready(self.work, boot)
                p, dt = nbdfuse(["floppy", boot])
                S["fl_first"].append(dt)
                fl_size = os.path.getsize(nimg)
                S["fl_read"].append(dd_range(nimg, 0, fl_size))
                nbdfuse_stop(p)
        finally:
            if is_mounted(nmnt):
                subprocess.run(["fusermount3", "-u", nmnt], stderr=subprocess.DEVNULL)
            if is_mounted(self.mnt):
                self.umount()
        m = {k: median(v) for k, v in S.items()}
        R.row("first byte (start -> 512 bytes read from the FUSE file):", "")
        R.row("  rpifs disk.img (FAT32 + ext4 + MBR)", secs(m["r_first"]))
        R.row("  nbdkit linuxdisk type=ext4 (tree without boot/) + nbdfuse",
              secs(m["ld_first"]), f"{m['ld_first'] / m['r_first']:.1f}x rpifs")
        R.row("  nbdkit floppy (boot/ only) + nbdfuse", secs(m["fl_first"]),
              f"{m['fl_first'] / m['r_first']:.2f}x rpifs")
        R.row("full read after the first byte (dd bs=4M, fresh server):", "")
        R.row(f"  rpifs disk.img partition 2 (ext4, {p2[1] // MiB} MiB)", secs(m["r_p2"]),
              rate(p2[1], m["r_p2"]))
        R.row(f"  linuxdisk + nbdfuse ({ld_size // MiB} MiB)", secs(m["ld_read"]),
              f"{rate(ld_size, m['ld_read'])}, {m['ld_read'] / m['r_p2']:.2f}x rpifs's time")
        R.row(f"  rpifs disk.img partition 1 (FAT32, {p1[1] // MiB} MiB)", secs(m["r_p1"]),
              rate(p1[1], m["r_p1"]))
        R.row(f"  floppy + nbdfuse ({fl_size / MiB:.0f} MiB: sized to boot/)",
              secs(m["fl_read"]), rate(fl_size, m["fl_read"]))
        R.note("linuxdisk: a GPT with one ext4 partition, no FAT, read-only, the whole ext4 "
               "made by mke2fs -d into a temporary file before it serves; floppy: an MBR with "
               "one FAT32 of boot/ (no ext4), read-only, only as large as boot/ needs; rpifs "
               "serves both partitions of the card, writable, and follows the tree's edits")
        ld_ok = m["ld_first"] / m["r_first"] >= 10 and m["ld_read"] / m["r_p2"] >= 2
        R.target("7b", ld_ok,
                 f"against linuxdisk + nbdfuse: first byte {m['ld_first'] / m['r_first']:.1f}x "
                 f"faster (>= 10x), full read of the ext4 {m['ld_read'] / m['r_p2']:.2f}x faster "
                 f"(>= 2x); floppy (FAT, reported only): first byte "
                 f"{secs(m['fl_first'])} against rpifs {secs(m['r_first'])}")
        self.rep.raw["peers"] = dict(S, linuxdisk_size=ld_size, floppy_size=fl_size)

    def nbd(self, root, noboot, layout):
        """Serving over NBD (issue 14): nbdkit with the rpifs plugin against
        nbdkit's file plugin on a copy of the same image (full read), against
        the FUSE mount and nbdkit's linuxdisk (time to the first byte), and
        with 1, 4, 16 clients at once."""
        cfg, R = self.cfg, self.rep
        plugin = cfg.nbd_plugin
        title = f"7. Serving over NBD: nbdkit rpifs, disk export, Unix socket (median of {cfg.runs})"
        why = nbd_missing(plugin)
        if why:
            R.section(title)
            R.skipped("7", why)
            return
        linuxdisk = subprocess.run(["nbdkit", "linuxdisk", "--dump-plugin"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                                   ).returncode == 0
        size = layout.size
        img = os.path.join(self.mnt, "disk.img")
        copy = os.path.join(self.work, "nbd-copy.img")
        srv = Nbdkit(self.work, "rpifs")
        peer = Nbdkit(self.work, "peer")
        clients = [1, 4, 16]
        # the file plugin as the concurrency peer only in full mode: quick
        # mode stays short for CI
        conc_peer = not cfg.quick
        ro, dflt, fil, ttfb, ttfb_fuse, ttfb_ld = [], [], [], [], [], []
        ro2, dflt2, fil2 = [], [], []
        t_item = now()
        conc = {n: [] for n in clients}
        conc_file = {n: [] for n in clients}
        try:
            # The materialised copy of the same image: written by nbdcopy from
            # the export, so its holes are where the export reports holes and
            # both servers answer nbdcopy's block status alike.
            srv.start([plugin, root])
            run(["nbdcopy", srv.uri("disk"), copy])
            srv.stop()
            if os.path.getsize(copy) != size:
                raise BenchError(f"{copy}: {os.path.getsize(copy)} bytes, not {size}")
            data = os.stat(copy).st_blocks * 512
            for i in range(cfg.runs):
                log(f"7. NBD: run {i + 1}/{cfg.runs}")
                # full read: both read-only (rpifs: readonly=true shares one
                # generation and offers multi-conn as the file plugin does),
                # each a fresh server, taking turns at going first; the copy
                # is read into the page cache first, untimed
                ready(self.work, root)
                dd_read(copy, size)
                for who in (("rpifs", "file") if i % 2 == 0 else ("file", "rpifs")):
                    if who == "rpifs":
                        srv.start(["-r", plugin, root, "readonly=true"])
                        ro.append(nbdcopy_read(srv.uri("disk")))
                        if not cfg.quick:
                            ro2.append(nbdcopy_read(srv.uri("disk")))
                        srv.stop()
                    else:
                        peer.start(["-r", "file", copy])
                        fil.append(nbdcopy_read(peer.uri()))
                        if not cfg.quick:
                            fil2.append(nbdcopy_read(peer.uri()))
                        peer.stop()
                # the plugin's default: writable, a private overlay per
                # connection, no multi-conn (nbdcopy then uses 1 connection)
                srv.start([plugin, root])
                dflt.append(nbdcopy_read(srv.uri("disk")))
                if not cfg.quick:
                    dflt2.append(nbdcopy_read(srv.uri("disk")))
                srv.stop()

                # time to the first byte: nbdkit's start -> 512 bytes read by
                # a libnbd client polling the socket every 0.5 ms
                ready(self.work, root)
                t = now()
                srv.start([plugin, root], wait=False)
                h, _ = srv.connect("disk", t)
                first = h.pread(512, 0)
                ttfb.append(now() - t)
                h.shutdown()
                del h
                srv.stop()
                # the FUSE mount, item 1's method
                ready(self.work, root)
                t = now()
                self.mount(root)
                fd = os.open(img, os.O_RDONLY)
                fuse_first = os.pread(fd, 512, 0)
                ttfb_fuse.append(now() - t)
                os.close(fd)
                self.umount()
                if first != fuse_first:
                    raise BenchError("the disk export's first sector differs from disk.img's")
                # linuxdisk: an ext4 of the root part (mke2fs -d into a
                # temporary file at start), partition 2's size
                if linuxdisk:
                    ready(self.work, noboot)
                    t = now()
                    peer.start(["linuxdisk", noboot, "type=ext4", "label=rootfs",
                                f"size={layout.p2_size * 512}"], wait=False)
                    h, _ = peer.connect(None, t)
                    if len(h.pread(512, 0)) != 512:
                        raise BenchError("linuxdisk: short first read")
                    ttfb_ld.append(now() - t)
                    h.shutdown()
                    del h
                    peer.stop()

                # N clients at once, each its own nbdcopy --connections=1 of
                # the whole export; the plugin's default server (each
                # connection a private overlay, as N Pis booting from it)
                ready(self.work, root)
                srv.start([plugin, root])
                nbdcopy_read(srv.uri("disk"))       # untimed: the first read's cost
                if conc_peer:
                    dd_read(copy, size)
                    peer.start(["file", copy])
                    nbdcopy_read(peer.uri())
                for n in (clients if i % 2 == 0 else clients[::-1]):
                    conc[n].append(nbdcopy_clients(srv.uri("disk"), n))
                    if conc_peer:
                        conc_file[n].append(nbdcopy_clients(peer.uri(), n))
                srv.stop()
                peer.stop()
        finally:
            srv.stop()
            peer.stop()
            if is_mounted(self.mnt):
                self.umount()
            if os.path.exists(copy):
                os.unlink(copy)

        took = now() - t_item
        R.section(title)
        R.row("full read, nbdcopy URI /dev/null, a fresh server, both -r:", "")
        R.row("  rpifs plugin (readonly=true: multi-conn)", secs(median(ro)),
              f"{rate(size, median(ro))}, {median(fil) / median(ro):.2f}x the file plugin")
        R.row("  nbdkit file plugin, a copy of the image in page cache", secs(median(fil)),
              rate(size, median(fil)))
        R.row("  rpifs plugin, default (writable: no multi-conn)", secs(median(dflt)),
              f"{rate(size, median(dflt))}, {median(fil) / median(dflt):.2f}x the file plugin")
        if not cfg.quick:
            R.row("second full read, same server:", "")
            R.row("  rpifs plugin (readonly=true)", secs(median(ro2)),
                  f"{rate(size, median(ro2))}, {median(fil2) / median(ro2):.2f}x the file plugin")
            R.row("  nbdkit file plugin", secs(median(fil2)), rate(size, median(fil2)))
            R.row("  rpifs plugin, default", secs(median(dflt2)),
                  f"{rate(size, median(dflt2))}, {median(fil2) / median(dflt2):.2f}x the file "
                  f"plugin")
        R.note(f"nbdcopy reads what block status calls data: {data / MiB:.0f} MiB of the "
               f"{size // MiB} MiB image; the copy was written by nbdcopy from the export, "
               f"so both servers report the same holes; rates are of the whole image")
        R.row("time to first byte (start -> 512 bytes read):", "")
        f = median(ttfb)
        R.row("  rpifs plugin: nbdkit start -> libnbd pread", secs(f))
        R.row("  rpifs FUSE mount: start -> pread of disk.img (item 1)",
              secs(median(ttfb_fuse)), f"{median(ttfb_fuse) / f:.2f}x NBD's")
        if linuxdisk:
            R.row("  nbdkit linuxdisk type=ext4 of the root part (mke2fs -d)",
                  secs(median(ttfb_ld)), f"{median(ttfb_ld) / f:.1f}x rpifs over NBD")
        else:
            R.note("nbdkit's linuxdisk plugin not found: no linuxdisk row")
        R.row("N clients at once (nbdcopy --connections=1 each, whole image):", "")
        for n in clients:
            c = median(conc[n])
            peer_txt = ""
            if conc_peer:
                cf = median(conc_file[n])
                peer_txt = f"; file plugin {rate(n * size, cf)} ({cf / c:.2f}x)"
            R.row(f"  {n:>2} client(s): aggregate", rate(n * size, c),
                  f"{secs(c)} wall{peer_txt}")
        if cfg.quick:
            R.note("quick mode: no second reads, no file plugin peer for the clients")
        R.note(f"item 7 took {took:.0f} s")
        ra = median([fl / r for fl, r in zip(fil, ro)])
        R.target(7, ra >= 0.9,
                 f"full read over NBD {rate(size, median(ro))}: {ra:.2f}x nbdkit's file plugin "
                 f"on a copy in page cache (median of the runs' ratios; >= 0.9x)")
        self.rep.raw["nbd"] = {"readonly": ro, "default": dflt, "file": fil, "data": data,
                               "readonly2": ro2, "default2": dflt2, "file2": fil2,
                               "ttfb_nbd": ttfb, "ttfb_fuse": ttfb_fuse,
                               "ttfb_linuxdisk": ttfb_ld,
                               "clients": {str(n): conc[n] for n in clients},
                               "clients_file": {str(n): conc_file[n] for n in clients}}

def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--cache", default=os.environ.get("RPIFS_BENCH_CACHE", "/var/tmp/rpifs-bench"))
    ap.add_argument("--mirror")
    ap.add_argument("--rootfs", help="use this tree instead of debootstrap's")
    ap.add_argument("--only", default="12345678", help="items to run, e.g. 15")
    ap.add_argument("--kernel-cache", default=os.environ.get("RPIFS_KERNEL_CACHE"),
                    help="item 8's kernel: a test build's cache (CACHE/rootfs/boot)")
    ap.add_argument("--rpifs", required=True)
    ap.add_argument("--memfuse", required=True)
    ap.add_argument("--gentree", required=True)
    ap.add_argument("--walk", required=True)
    ap.add_argument("--nbd-plugin", default=os.environ.get("RPIFS_NBD_PLUGIN", ""))
    cfg = ap.parse_args()
    cfg.cache = os.path.abspath(cfg.cache)
    if cfg.runs is None:
        cfg.runs = 1 if cfg.quick else 5
    mem_sizes = ["2G", "8G"] if cfg.quick else ["2G", "64G"]
    counts = [10000, 20000] if cfg.quick else [10000, 100000, 1000000]

    b = Bench(cfg)
    os.makedirs(b.mnt, exist_ok=True)
    os.makedirs(b.mnt_mem, exist_ok=True)
    for m in (b.mnt, b.mnt_mem):
        if is_mounted(m):
            subprocess.run(["fusermount3", "-u", m])
    started = time.time()
    t0 = now()

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        R = b.rep
        head = [f"rpifs benchmark ({'quick' if cfg.quick else 'full'} mode, {cfg.runs} "
                f"run(s) per figure), {time.strftime('%Y-%m-%d %H:%M %Z')}"]
        head += machine_lines(cfg.rpifs)
        if cfg.rootfs:
            root = os.path.abspath(cfg.rootfs)
            add_boot_files(root)
            kind = "given tree"
        else:
            try:
                root, kind = prepare_debian(cfg)
            except BenchError as e:
                if not cfg.quick:
                    raise
                log(f"{e}\nbench: quick mode: using a synthetic tree instead")
                root = prepare_synthetic_rootfs(cfg)
                kind = "SYNTHETIC stand-in (debootstrap failed)"
        noboot = prepare_noboot(cfg, root)
        st = tree_stats(root)
        head.append(f"tree: {root} ({kind}): {st['files']} files, {st['dirs']} directories, "
                    f"{st['other']} other entries, {st['bytes'] / MiB:.0f} MiB, including "
                    f"a 30 MiB boot/kernel8.img")
        for line in head:
            print(line, flush=True)
        R.lines += head

        # the layout rpifs picks, which every peer reproduces
        b.mount(root)
        layout = Layout(os.path.join(b.mnt, "disk.img"))
        b.umount()
        line = (f"image: {layout.size // MiB} MiB; p1 FAT32 {layout.p1_size // 2048} MiB at "
                f"{layout.p1_start // 2048} MiB; p2 ext4 {layout.p2_size // 2048} MiB at "
                f"{layout.p2_start // 2048} MiB (rpifs's layout; the peers use the same)")
        print(line, flush=True)
        R.lines.append(line)
        genimage = shutil.which("genimage") is not None
        materialised = os.path.join(b.work, "pipeline.img")

        # warm the page cache with the tree (item 1 is measured warm)
        pipeline(root, noboot, layout, materialised)
        if "1" in cfg.only:
            b.readable(root, noboot, layout, genimage)
        if "2" in cfg.only:
            if not os.path.exists(materialised):
                pipeline(root, noboot, layout, materialised)
            b.sequential(root, layout, materialised)
        if "3" in cfg.only:
            b.edit(root, noboot, layout, materialised)
        if "4" in cfg.only:
            b.memory(root, mem_sizes)
        if "5" in cfg.only:
            b.scaling(counts)
        if "6" in cfg.only:
            b.card(root, noboot, layout, materialised)
        if "7" in cfg.only:
            b.nbd(root, noboot, layout)
            b.peers(root, noboot, layout)
        if "8" in cfg.only:
            b.qemu_boot()

        R.lines.append("")
        R.lines.append("Targets:")
        R.lines += R.targets
        tail = (f"bench took {(now() - t0) / 60:.1f} min; load average {loadavg()} at the end")
        R.lines.append(tail)
        print("\nTargets:\n" + "\n".join(R.targets) + "\n" + tail, flush=True)
        res = os.path.join(cfg.cache, "results")
        os.makedirs(res, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
        with open(os.path.join(res, f"{stamp}.txt"), "w") as f:
            f.write("\n".join(R.lines) + "\n")
        with open(os.path.join(res, f"{stamp}.json"), "w") as f:
            json.dump(R.raw, f, indent=1)
        log(f"report and raw samples: {res}/{stamp}.txt, .json")
        return 0
    except BenchError as e:
        log(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        b.mounts.stop_all()
        for p in glob.glob(os.path.join(b.work, "*.img")) + \
                glob.glob(os.path.join(b.work, "*.p[12].*")):
            os.unlink(p)


if __name__ == "__main__":
    sys.exit(main())
