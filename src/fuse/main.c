/* main.c - rpifs command line: `rpifs [OPTIONS] ROOTFS MNT` and
 * `rpifs build ...`. Checks its arguments before doing any work, has the
 * engine (rpifs.h) scan the tree and build the image, then hands the engine
 * to the FUSE server. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include "daemon.h"
#include "fuse_ops.h"
#include "log.h"
#include "qemu.h"
#include "rpifs.h"

/* `rpifs build ...` is the program rpifs-build next to this one: the mount
 * does not load libarchive and the libraries it brings. argv[0] is "build". */
static int build_exec(int argc, char **argv)
{
	char self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	(void)argc;
	if (n < 0 || (size_t)n + sizeof("rpifs-build") >= sizeof(self)) {
		log_error("build: cannot find this program (/proc/self/exe: %s)",
			  n < 0 ? strerror(errno) : "path too long");
		return 1;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	strcpy(slash ? slash + 1 : self, "rpifs-build");
	argv[0] = self;
	execv(self, argv);
	log_error("build: cannot run %s: %s (rpifs build runs it; install it next to "
		  "rpifs)", self, strerror(errno));
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: rpifs [OPTIONS] ROOTFS MNT\n"
"       rpifs build STAGE ROOTFS [OPTIONS]   (rpifs build --help)\n"
"       rpifs qemu [OPTIONS] ROOTFS          (rpifs qemu --help)\n"
"\n"
"Serve MNT/disk.img: a Raspberry Pi SD-card image computed from ROOTFS without\n"
"copying it. Partition 1 (FAT32) holds ROOTFS/boot, partition 2 (ext4) the rest.\n"
"File data is read from ROOTFS when disk.img is read; ROOTFS is never modified.\n"
"\n"
"Mount:\n"
"  -f, --foreground         stay in the foreground\n"
"  -d, --debug              FUSE debug output (implies -f)\n"
"  -s, --single-thread      serve requests on one thread\n"
"  -o OPT[,OPT...]          FUSE mount options (e.g. allow_other)\n"
"\n"
"Writes (qemu opens disk.img read-write; ROOTFS is never written):\n"
"      --read-only          refuse writes (EROFS)\n"
"      --overlay FILE       keep written blocks in FILE across remounts (it pins\n"
"                           the image: tree changes are served after a reset)\n"
"      --overlay-reset      discard the blocks in the --overlay FILE\n"
"                           (default: writes are kept in memory and dropped\n"
"                           when a changed tree makes a new image)\n"
"\n"
"Changes to ROOTFS (served by the next open of disk.img that finds it closed):\n"
"      --no-inotify         stat every entry of ROOTFS on each such open instead\n"
"                           of watching its directories with inotify (which\n"
"                           misses writes through mmap() after close())\n"
"\n"
"Layout:\n"
"      --boot-dir DIR       boot directory inside ROOTFS (default: boot)\n"
"      --boot-size SIZE     partition 1 size (default: 256M)\n"
"      --boot-label LABEL   FAT volume label (default: BOOT)\n"
"      --root-size SIZE     partition 2 size (default: content + --free)\n"
"      --root-label LABEL   ext4 label (default: rootfs)\n"
"      --free PERCENT       free space in the root filesystem (default: 25)\n"
"      --size SIZE          whole disk size (default: rounded up to a power\n"
"                           of two, as qemu's raspi3b requires)\n"
"      --align SIZE         partition alignment (default: 4M)\n"
"      --disk-id 0xID       MBR disk identifier (default: the PARTUUID in\n"
"                           boot/cmdline.txt, else derived from the tree)\n"
"      --root-owner         make every file in ext4 owned by root:root\n"
"\n"
"      --dump-regions       with ROOTFS only: print the image's layout (each\n"
"                           region: offsets, what it holds, its source file)\n"
"                           and exit without mounting\n"
"\n"
"  -q, --quiet              errors only\n"
"  -v, --verbose            more messages\n"
"  -h, --help               this help\n"
"  -V, --version            version\n"
"\n"
"SIZE takes K, M, G, T suffixes (powers of 1024). SOURCE_DATE_EPOCH, when set,\n"
"clamps FAT timestamps and sets the filesystem creation times.\n"
"Unmount with: fusermount3 -u MNT\n");
}

enum {
	OPT_BOOT_DIR = 256, OPT_BOOT_SIZE, OPT_BOOT_LABEL, OPT_ROOT_SIZE,
	OPT_ROOT_LABEL, OPT_FREE, OPT_SIZE, OPT_ALIGN, OPT_DISK_ID, OPT_ROOT_OWNER,
	OPT_NO_EXT4, OPT_READ_ONLY, OPT_OVERLAY, OPT_OVERLAY_RESET, OPT_NO_INOTIFY,
	OPT_DUMP_REGIONS,
};

static const struct option long_opts[] = {
	{ "foreground", no_argument, NULL, 'f' },
	{ "debug", no_argument, NULL, 'd' },
	{ "single-thread", no_argument, NULL, 's' },
	{ "boot-dir", required_argument, NULL, OPT_BOOT_DIR },
	{ "boot-size", required_argument, NULL, OPT_BOOT_SIZE },
	{ "boot-label", required_argument, NULL, OPT_BOOT_LABEL },
	{ "root-size", required_argument, NULL, OPT_ROOT_SIZE },
	{ "root-label", required_argument, NULL, OPT_ROOT_LABEL },
	{ "free", required_argument, NULL, OPT_FREE },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "align", required_argument, NULL, OPT_ALIGN },
	{ "disk-id", required_argument, NULL, OPT_DISK_ID },
	{ "root-owner", no_argument, NULL, OPT_ROOT_OWNER },
	{ "no-ext4", no_argument, NULL, OPT_NO_EXT4 },
	{ "read-only", no_argument, NULL, OPT_READ_ONLY },
	{ "overlay", required_argument, NULL, OPT_OVERLAY },
	{ "overlay-reset", no_argument, NULL, OPT_OVERLAY_RESET },
	{ "no-inotify", no_argument, NULL, OPT_NO_INOTIFY },
	{ "dump-regions", no_argument, NULL, OPT_DUMP_REGIONS },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int size_arg(const char *opt, const char *val, uint64_t *out)
{
	if (rpifs_parse_size(val, out) < 0) {
		log_error("%s %s: not a size (examples: 256M, 2G, 1048576)", opt, val);
		return -EINVAL;
	}
	return 0;
}

/* Is path listed as a mount point in /proc/self/mountinfo? */
static bool is_mount_point(const char *real)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[4096];

		/* id parent maj:min root mountpoint ... (octal escapes for spaces) */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strcmp(mp, real))
			found = true;
	}
	fclose(f);
	return found;
}

static int check_rootfs(const char *rootfs)
{
	struct stat st;

	if (stat(rootfs, &st) < 0) {
		log_error("ROOTFS %s: %s", rootfs, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("ROOTFS %s: not a directory", rootfs);
		return -ENOTDIR;
	}
	return 0;
}

static int stale_mount(const char *mnt)
{
	log_error("MNT %s: a stale FUSE mount (its daemon has died): run "
		  "'fusermount3 -u %s' and mount again", mnt, mnt);
	return -ENOTCONN;
}

static int check_mnt(const char *mnt, const char *rootfs)
{
	char rm[PATH_MAX], rr[PATH_MAX];
	struct stat st;
	struct dirent *e;
	DIR *d;
	int n = 0;

	if (stat(mnt, &st) < 0) {
		if (errno == ENOTCONN)
			return stale_mount(mnt);
		log_error("MNT %s: %s%s", mnt, strerror(errno),
			  errno == ENOENT ? " (create the directory first)" : "");
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("MNT %s: not a directory", mnt);
		return -ENOTDIR;
	}
	if (realpath(mnt, rm) && realpath(rootfs, rr)) {
		size_t l = strlen(rr);

		if (!strncmp(rm, rr, l) && (rm[l] == '/' || rm[l] == '\0' || l == 1)) {
			log_error("MNT %s is inside ROOTFS %s: the image would contain "
				  "itself; mount somewhere else", mnt, rootfs);
			return -EINVAL;
		}
		if (is_mount_point(rm)) {
			struct statfs sfs;

			/* stat() may still answer from the attributes the kernel
			 * cached before the daemon died; statfs() always asks it. */
			if (statfs(mnt, &sfs) < 0 && errno == ENOTCONN)
				return stale_mount(mnt);
			log_error("MNT %s is already a mount point (unmount it first: "
				  "fusermount3 -u %s)", mnt, mnt);
			return -EBUSY;
		}
	}
	d = opendir(mnt);
	if (!d) {
		log_error("MNT %s: %s", mnt, strerror(errno));
		return -errno;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	if (n) {
		log_error("MNT %s: not empty (mount on an empty directory)", mnt);
		return -ENOTEMPTY;
	}
	return 0;
}

/* Mounting needs /dev/fuse (root) or a setuid fusermount3 (ordinary users):
 * say which is missing before doing any work. */
static int check_fuse(void)
{
	static const char *const fm[] = { "/usr/bin/fusermount3", "/bin/fusermount3",
					   "/usr/local/bin/fusermount3" };
	struct stat st;

	if (access("/dev/fuse", F_OK) < 0) {
		log_error("/dev/fuse does not exist: load the module (modprobe fuse), or "
			  "in a container pass the device (--device /dev/fuse)");
		return -ENODEV;
	}
	if (geteuid() == 0)
		return 0;
	/* libfuse opens /dev/fuse itself, then lets fusermount3 mount: an
	 * ordinary user needs both (the usual desktop has /dev/fuse 0666). */
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		log_error("cannot mount as an ordinary user: /dev/fuse is not readable and "
			  "writable for you (%s; it is usually mode 0666): ask an "
			  "administrator to allow it, or run rpifs as root", strerror(errno));
		return -EPERM;
	}
	for (size_t i = 0; i < sizeof(fm) / sizeof(fm[0]); i++)
		if (stat(fm[i], &st) == 0 && (st.st_mode & S_ISUID) && st.st_uid == 0)
			return 0;
	log_error("cannot mount as an ordinary user: no setuid-root fusermount3 "
		  "(install package fuse3, or run rpifs as root)");
	return -EPERM;
}

/* rpifs --dump-regions ROOTFS: build the image, print its layout, exit. */
static int dump_regions(struct rpifs_opts *io, int nargs, char **args)
{
	struct rpifs *r = NULL;
	struct rpifs_gen *g;
	int ret = 1;

	if (nargs != 1) {
		log_error("--dump-regions takes ROOTFS only (no MNT)");
		return 2;
	}
	io->rootfs = args[0];
	io->watch = false;
	if (check_rootfs(io->rootfs) < 0 || rpifs_new(&r, io) < 0)
		return 1;
	if (rpifs_build(r) < 0)
		goto out;
	g = rpifs_gen_get(r);
	rpifs_gen_dump(g, stdout);
	rpifs_gen_put(r, g);
	ret = fflush(stdout) ? 1 : 0;
out:
	rpifs_free(r);
	return ret;
}

int main(int argc, char **argv)
{
	struct rpifs_opts io;
	struct serve_opts so = { 0 };
	struct rpifs *r;
	const char *sde;
	char mnt_abs[PATH_MAX], root_abs[PATH_MAX];
	bool dump = false;
	int c, ret;

	if (argc > 1 && !strcmp(argv[1], "build"))
		return build_exec(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "qemu"))
		return qemu_main(argc - 1, argv + 1);

	rpifs_opts_init(&io);
	while ((c = getopt_long(argc, argv, "fdso:qvhV", long_opts, NULL)) != -1) {
		uint64_t v;
		char *end;

		switch (c) {
		case 'f': so.foreground = true; break;
		case 'd': so.debug = so.foreground = true; break;
		case 's': so.single_thread = true; break;
		case 'o': so.fuse_opts = optarg; break;
		case 'q': log_set_level(LOG_LVL_ERROR); break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case OPT_BOOT_DIR: io.boot_dir = optarg; break;
		case OPT_BOOT_LABEL: io.boot_label = optarg; break;
		case OPT_ROOT_LABEL: io.root_label = optarg; break;
		case OPT_ROOT_OWNER: io.root_owner = true; break;
		case OPT_NO_EXT4: io.ext4 = false; break;
		case OPT_READ_ONLY: io.read_only = true; break;
		case OPT_OVERLAY: io.overlay = optarg; break;
		case OPT_OVERLAY_RESET: io.overlay_reset = true; break;
		case OPT_NO_INOTIFY: io.watch = false; break;
		case OPT_DUMP_REGIONS: dump = true; break;
		case OPT_BOOT_SIZE:
			if (size_arg("--boot-size", optarg, &io.boot_size) < 0)
				return 2;
			break;
		case OPT_ROOT_SIZE:
			if (size_arg("--root-size", optarg, &io.root_size) < 0)
				return 2;
			break;
		case OPT_SIZE:
			if (size_arg("--size", optarg, &io.size) < 0)
				return 2;
			break;
		case OPT_ALIGN:
			if (size_arg("--align", optarg, &io.align) < 0)
				return 2;
			if (io.align < 4096 || io.align % 4096) {
				log_error("--align %s: must be a multiple of 4 KiB", optarg);
				return 2;
			}
			break;
		case OPT_FREE:
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || v > 90) {
				log_error("--free %s: a percentage from 0 to 90", optarg);
				return 2;
			}
			io.free_percent = (unsigned)v;
			break;
		case OPT_DISK_ID:
			errno = 0;
			v = strtoull(optarg, &end, 16);
			if (errno || *end || v == 0 || v > UINT32_MAX) {
				log_error("--disk-id %s: a non-zero 32-bit hex number, e.g. "
					  "0x1234abcd", optarg);
				return 2;
			}
			io.disk_id = (uint32_t)v;
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("rpifs %s\n", RPIFS_VERSION); return 0;
		default:
			fprintf(stderr, "Try 'rpifs --help'.\n");
			return 2;
		}
	}
	if (!dump && argc - optind != 2) {
		log_error(argc - optind < 2 ? "ROOTFS and MNT are required" :
			  "too many arguments");
		fprintf(stderr, "Usage: rpifs [OPTIONS] ROOTFS MNT (rpifs --help)\n");
		return 2;
	}
	if (io.boot_size < 33 << 20) {
		log_error("--boot-size must be at least 33M (FAT32 needs 65525 clusters)");
		return 2;
	}
	sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(sde, &end, 10);
		if (errno || *end || v < 0) {
			log_error("SOURCE_DATE_EPOCH=%s: not a number of seconds", sde);
			return 2;
		}
		io.source_date_epoch = v;
	}

	if (dump)
		return dump_regions(&io, argc - optind, argv + optind);
	io.rootfs = argv[optind];
	so.mnt = argv[optind + 1];
	if (check_rootfs(io.rootfs) < 0 || check_mnt(so.mnt, io.rootfs) < 0)
		return 1;

	/* The server changes to "/" once mounted: the unmount at exit needs an
	 * absolute mount point. */
	if (!realpath(so.mnt, mnt_abs)) {
		log_error("MNT %s: %s", so.mnt, strerror(errno));
		return 1;
	}
	so.mnt = mnt_abs;
	/* Later generations rescan ROOTFS after the chdir too. */
	if (!realpath(io.rootfs, root_abs)) {
		log_error("ROOTFS %s: %s", io.rootfs, strerror(errno));
		return 1;
	}
	io.rootfs = root_abs;
	if (io.overlay_reset && !io.overlay) {
		log_error("--overlay-reset needs --overlay FILE");
		return 2;
	}
	so.engine = &io;
	/* Return to the shell once mounted; the work runs in the child. */
	if (!so.foreground && (ret = daemon_start()) < 0) {
		log_error("cannot fork: %s", strerror(-ret));
		return 1;
	}

	/* Scan first (problems in the tree are named even for a user who
	 * cannot mount), then check FUSE, then build: no work is wasted. The
	 * engine logs its errors. */
	log_debug("%.1f ms: arguments checked", log_ms());
	if (rpifs_new(&r, &io) < 0)
		return 1;
	if (check_fuse() < 0 || rpifs_build(r) < 0) {
		rpifs_free(r);
		return 1;
	}
	ret = fuse_serve(r, &so);
	rpifs_free(r);
	return ret;
}
