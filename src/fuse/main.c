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
#include "cli.h"
#include "daemon.h"
#include "fuse_ops.h"
#include "log.h"
#include "qemu.h"
#include "rpifs.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: rpifs [OPTIONS] ROOTFS MNT\n"
"       rpifs build STAGE ROOTFS [OPTIONS]   (rpifs build --help)\n"
"       rpifs qemu [OPTIONS] ROOTFS          (rpifs qemu --help)\n"
"       rpifs flash [OPTIONS] ROOTFS|IMAGE DEVICE   (rpifs flash --help)\n"
"       rpifs export [OPTIONS] ROOTFS OUT    (rpifs export --help)\n"
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
"%s"
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
"Unmount with: fusermount3 -u MNT\n", cli_layout_help);
}

enum {
	OPT_READ_ONLY = CLI_OPT_END, OPT_OVERLAY, OPT_OVERLAY_RESET, OPT_NO_INOTIFY,
	OPT_DUMP_REGIONS,
};

static const struct option long_opts[] = {
	{ "foreground", no_argument, NULL, 'f' },
	{ "debug", no_argument, NULL, 'd' },
	{ "single-thread", no_argument, NULL, 's' },
	CLI_LAYOUT_LONG_OPTS,
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
	char mnt_abs[PATH_MAX], root_abs[PATH_MAX];
	bool dump = false;
	int c, ret;

	/* rpifs-build takes the stage as its first argument; rpifs-flash
	 * the subcommand (flash, export). */
	if (argc > 1 && !strcmp(argv[1], "build"))
		return cli_exec_sibling("rpifs-build", "build", argv + 1);
	if (argc > 1 && (!strcmp(argv[1], "flash") || !strcmp(argv[1], "export")))
		return cli_exec_sibling("rpifs-flash", argv[1], argv);
	if (argc > 1 && !strcmp(argv[1], "qemu"))
		return qemu_main(argc - 1, argv + 1);

	rpifs_opts_init(&io);
	while ((c = getopt_long(argc, argv, "fdso:qvhV", long_opts, NULL)) != -1) {
		ret = cli_layout_opt(&io, c, optarg, NULL);
		if (ret < 0)
			return 2;
		if (ret > 0)
			continue;
		switch (c) {
		case 'f': so.foreground = true; break;
		case 'd': so.debug = so.foreground = true; break;
		case 's': so.single_thread = true; break;
		case 'o': so.fuse_opts = optarg; break;
		case 'q': log_set_level(LOG_LVL_ERROR); break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case OPT_READ_ONLY: io.read_only = true; break;
		case OPT_OVERLAY: io.overlay = optarg; break;
		case OPT_OVERLAY_RESET: io.overlay_reset = true; break;
		case OPT_NO_INOTIFY: io.watch = false; break;
		case OPT_DUMP_REGIONS: dump = true; break;
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
	if (cli_layout_finish(&io) < 0)
		return 2;

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
	/* Mount once partition 1 is built: a reader's first bytes (the
	 * partition table, the boot files) need not wait for ext4, whose
	 * reads wait for its build (rpifs.h). */
	io.defer_ext4 = true;
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
