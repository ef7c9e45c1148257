/* qemu.c - `rpifs qemu`: boot the image under qemu-system-aarch64 -M raspi3b.
 *
 * qemu's raspi3b does not run the VideoCore firmware, so what the firmware
 * would do is done here: read config.txt for kernel= and device_tree=, take
 * cmdline.txt, and pass them as -kernel, -dtb and -append. The SD card is
 * disk.img itself: from a mount the user already has (--image), or from a
 * temporary mount of ROOTFS that lives as long as qemu, or (--nbd, or
 * where FUSE cannot mount) from nbdkit serving ROOTFS on a Unix socket for
 * as long as qemu runs (qemu_nbd.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "rpifs.h"
#include "qemu.h"
#include "qemu_nbd.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: rpifs qemu [OPTIONS] ROOTFS [-- QEMU-ARGS...]\n"
"\n"
"Boot ROOTFS as a Raspberry Pi 3 under qemu-system-aarch64 -M raspi3b. The SD\n"
"card is the disk.img rpifs serves: mounted for the run (or --image), with the\n"
"kernel and device tree that the boot directory's config.txt names and the\n"
"command line\n"
"from cmdline.txt plus a serial console on ttyAMA0. Ctrl-A X quits qemu.\n"
"\n"
"  --image FILE      use this disk.img (an existing rpifs mount) instead of\n"
"                    mounting ROOTFS for the run\n"
"  --nbd             serve ROOTFS to qemu over NBD (nbdkit with the rpifs\n"
"                    plugin on a Unix socket) instead of a FUSE mount; the\n"
"                    default where FUSE cannot mount (no usable /dev/fuse)\n"
"  --boot-dir DIR    boot directory inside ROOTFS (default: boot/firmware if\n"
"                    it holds config.txt, else boot, as the mount detects it)\n"
"  --append ARGS     more kernel arguments\n"
"  --overlay FILE    keep the guest's writes in FILE (passed to the mount)\n"
"  --snapshot        discard the guest's writes at exit (qemu snapshot=on)\n"
"  --timeout SECS    stop qemu after SECS seconds (exit status 124)\n"
"  --until TEXT      stop qemu, with exit status 0, once its console prints\n"
"                    TEXT (e.g. \"login:\"); with --timeout, for scripts\n"
"  --qemu PATH       qemu binary (default: qemu-system-aarch64)\n"
"  --dry-run         print the qemu command and exit\n"
"  -h, --help        this help\n");
}

/* value of key= in config.txt, first match, outside [sections] other than
 * [all]/[pi3] (good enough for the files rpifs build writes). */
static int config_value(const char *path, const char *key, char *out, size_t len)
{
	FILE *f = fopen(path, "re");
	char line[4096];
	size_t kl = strlen(key);
	bool active = true;
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " \t");

		p[strcspn(p, "\r\n#")] = '\0';
		if (*p == '[') {
			active = !strncmp(p, "[all]", 5) || !strncmp(p, "[pi3]", 5);
			continue;
		}
		if (active && !strncmp(p, key, kl) && p[kl] == '=') {
			char *v = p + kl + 1;
			size_t vl = strlen(v);

			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				v[--vl] = '\0';
			snprintf(out, len, "%s", v);
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static bool is_file(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int boot_config_read(const char *boot, struct boot_config *bc)
{
	static const char *const dtbs[] = {
		"broadcom/bcm2837-rpi-3-b.dtb", "bcm2837-rpi-3-b.dtb",
		"bcm2710-rpi-3-b.dtb", "broadcom/bcm2837-rpi-3-b-plus.dtb",
	};
	char cfg[PATH_MAX], v[1024], p[PATH_MAX];
	FILE *f;

	memset(bc, 0, sizeof(*bc));
	snprintf(cfg, sizeof(cfg), "%s/config.txt", boot);
	/* The firmware's default for arm_64bit=1 is kernel8.img. */
	if (config_value(cfg, "kernel", v, sizeof(v)) < 0)
		snprintf(v, sizeof(v), "kernel8.img");
	snprintf(bc->kernel, sizeof(bc->kernel), "%s/%s", boot, v + (*v == '/'));
	if (!is_file(bc->kernel)) {
		log_error("%s: no kernel (config.txt kernel=%s); build one with "
			  "'rpifs build kernel'", bc->kernel, v);
		return -ENOENT;
	}
	if (config_value(cfg, "device_tree", v, sizeof(v)) == 0) {
		snprintf(bc->dtb, sizeof(bc->dtb), "%s/%s", boot, v + (*v == '/'));
	} else {
		for (size_t i = 0; i < sizeof(dtbs) / sizeof(dtbs[0]) && !*bc->dtb; i++) {
			snprintf(p, sizeof(p), "%s/%s", boot, dtbs[i]);
			if (is_file(p))
				snprintf(bc->dtb, sizeof(bc->dtb), "%s", p);
		}
	}
	if (!*bc->dtb || !is_file(bc->dtb)) {
		log_error("%s: no device tree for the Pi 3 (config.txt device_tree=, or "
			  "broadcom/bcm2837-rpi-3-b.dtb); 'rpifs build kernel' installs them",
			  *bc->dtb ? bc->dtb : boot);
		return -ENOENT;
	}
	snprintf(p, sizeof(p), "%s/cmdline.txt", boot);
	f = fopen(p, "re");
	if (f) {
		if (!fgets(bc->cmdline, sizeof(bc->cmdline), f))
			bc->cmdline[0] = '\0';
		fclose(f);
		bc->cmdline[strcspn(bc->cmdline, "\r\n")] = '\0';
	} else {
		log_warn("%s: missing; booting with root=/dev/mmcblk0p2 rootwait", p);
		snprintf(bc->cmdline, sizeof(bc->cmdline), "root=/dev/mmcblk0p2 rootwait");
	}
	return 0;
}

static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
}

/* Copy the child's output to stdout until EOF; true once until was seen
 * (then the child is stopped). */
static bool watch(int fd, pid_t pid, const char *until)
{
	char buf[4096 + 256];
	size_t keep = 0, ul = strlen(until);
	ssize_t n;

	for (;;) {
		n = read(fd, buf + keep, sizeof(buf) - keep - 1);
		if (n < 0 && errno == EINTR) {
			if (timed_out == 1) {
				kill(pid, SIGTERM);
				timed_out = 2;
			}
			continue;
		}
		if (n <= 0)
			return false;
		if (fwrite(buf + keep, 1, (size_t)n, stdout) != (size_t)n)
			return false;
		fflush(stdout);
		keep += (size_t)n;
		buf[keep] = '\0';
		if (memmem(buf, keep, until, ul)) {
			kill(pid, SIGTERM);
			return true;
		}
		/* Keep the tail: the text may straddle two reads. */
		if (keep >= ul) {
			memmove(buf, buf + keep - (ul - 1), ul - 1);
			keep = ul - 1;
		}
	}
}

/* Run argv; returns its exit status (124 after --timeout; 0 once until, if
 * not NULL, appeared on its output). */
static int run_until(char **argv, unsigned timeout, const char *until)
{
	int pfd[2] = { -1, -1 }, st;
	bool seen = false;
	pid_t pid;

	if (until && pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (until)
			dup2(pfd[1], 1);
		execvp(argv[0], argv);
		fprintf(stderr, "rpifs: qemu: cannot run %s: %s%s\n", argv[0], strerror(errno),
			errno == ENOENT ? " (install package qemu-system-arm)" : "");
		_exit(127);
	}
	if (timeout) {
		struct sigaction sa = { .sa_handler = on_alarm };

		sigaction(SIGALRM, &sa, NULL);
		alarm(timeout);
	}
	if (until) {
		close(pfd[1]);
		seen = watch(pfd[0], pid, until);
		close(pfd[0]);
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -errno;
		if (timed_out) {
			kill(pid, SIGTERM);
			timed_out = 2;
		}
	}
	alarm(0);
	if (seen)
		return 0;
	if (timed_out)
		return 124;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run(char **argv, unsigned timeout)
{
	return run_until(argv, timeout, NULL);
}

static void print_cmd(char **argv)
{
	fputs("rpifs: qemu:", stderr);
	for (char **a = argv; *a; a++) {
		bool q = strpbrk(*a, " \t\"'$;&|,") != NULL && strncmp(*a, "file=", 5);

		fprintf(stderr, q ? " '%s'" : " %s", *a);
	}
	fputc('\n', stderr);
}

enum { OPT_IMAGE = 256, OPT_BOOT_DIR, OPT_APPEND, OPT_OVERLAY, OPT_SNAPSHOT,
       OPT_TIMEOUT, OPT_QEMU, OPT_DRY_RUN, OPT_UNTIL, OPT_NBD };

int qemu_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "boot-dir", required_argument, NULL, OPT_BOOT_DIR },
		{ "append", required_argument, NULL, OPT_APPEND },
		{ "overlay", required_argument, NULL, OPT_OVERLAY },
		{ "snapshot", no_argument, NULL, OPT_SNAPSHOT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "qemu", required_argument, NULL, OPT_QEMU },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "nbd", no_argument, NULL, OPT_NBD },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *image = NULL, *boot_dir = NULL, *append = NULL, *overlay = NULL;
	const char *qemu = "qemu-system-aarch64", *until = NULL;
	bool snapshot = false, dry = false, nbd = false;
	struct qemu_nbd ns = { 0 };
	const char *why;
	unsigned timeout = 0;
	struct boot_config bc;
	char boot[PATH_MAX], cmdline[8192], drive[PATH_MAX + 128], img[PATH_MAX + 64];
	char mnt[] = "/tmp/rpifs-qemu.XXXXXX", self[PATH_MAX];
	char *qargv[64];
	int c, n = 0, ret = 1;
	bool mounted = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_IMAGE: image = optarg; break;
		case OPT_BOOT_DIR: boot_dir = optarg; break;
		case OPT_APPEND: append = optarg; break;
		case OPT_OVERLAY: overlay = optarg; break;
		case OPT_SNAPSHOT: snapshot = true; break;
		case OPT_QEMU: qemu = optarg; break;
		case OPT_DRY_RUN: dry = true; break;
		case OPT_NBD: nbd = true; break;
		case OPT_UNTIL: until = *optarg ? optarg : NULL; break;
		case OPT_TIMEOUT: timeout = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: fprintf(stderr, "Try 'rpifs qemu --help'.\n"); return 2;
		}
	}
	if (optind >= argc) {
		log_error("qemu: ROOTFS is required (rpifs qemu --help)");
		return 2;
	}
	/* The mount's rule: the kernel and cmdline.txt read here are the ones
	 * the served FAT holds (its --boot-dir is passed on below). */
	if (!boot_dir) {
		boot_dir = rpifs_boot_dir(argv[optind]);
		log_info("qemu: boot files from %s/%s", argv[optind], boot_dir);
	}
	snprintf(boot, sizeof(boot), "%s/%s", argv[optind], boot_dir);
	if (boot_config_read(boot, &bc) < 0)
		return 1;
	snprintf(cmdline, sizeof(cmdline), "%s%s%s%s", bc.cmdline,
		 strstr(bc.cmdline, "console=ttyAMA0") ? "" : " console=ttyAMA0,115200",
		 append ? " " : "", append ? append : "");

	if (image && nbd) {
		log_error("qemu: --nbd serves ROOTFS itself: not with --image");
		return 2;
	}
	if (!image && !nbd && !qemu_fuse_usable(&why)) {
		log_info("qemu: %s, so FUSE cannot mount here: serving ROOTFS over NBD "
			 "through nbdkit instead (as --nbd)", why);
		nbd = true;
	}
	if (image) {
		snprintf(img, sizeof(img), "%s", image);
	} else if (nbd) {
		if (qemu_nbd_start(&ns, argv[optind], boot_dir, overlay, dry) < 0)
			return 1;
		snprintf(img, sizeof(img), "%s", ns.uri);
	} else if (dry) {
		snprintf(img, sizeof(img), "MNT/disk.img");
	} else {
		ssize_t l = readlink("/proc/self/exe", self, sizeof(self) - 1);
		char *margv[8];
		int m = 0;

		if (l < 0 || !mkdtemp(mnt)) {
			log_error("qemu: preparing the mount: %s", strerror(errno));
			return 1;
		}
		self[l] = '\0';
		margv[m++] = self;
		margv[m++] = (char *)"--boot-dir";
		margv[m++] = (char *)boot_dir;
		if (overlay) {
			margv[m++] = (char *)"--overlay";
			margv[m++] = (char *)overlay;
		}
		margv[m++] = argv[optind];
		margv[m++] = mnt;
		margv[m] = NULL;
		if (run(margv, 0) != 0) {
			rmdir(mnt);
			return 1;
		}
		mounted = true;
		snprintf(img, sizeof(img), "%s/disk.img", mnt);
	}
	snprintf(drive, sizeof(drive), "file=%s,if=sd,format=raw%s", img,
		 snapshot ? ",snapshot=on" : "");

	qargv[n++] = (char *)qemu;
	qargv[n++] = (char *)"-M";
	qargv[n++] = (char *)"raspi3b";
	qargv[n++] = (char *)"-m";
	qargv[n++] = (char *)"1G";      /* raspi3b takes 1G or nothing */
	qargv[n++] = (char *)"-kernel";
	qargv[n++] = bc.kernel;
	qargv[n++] = (char *)"-dtb";
	qargv[n++] = bc.dtb;
	qargv[n++] = (char *)"-append";
	qargv[n++] = cmdline;
	qargv[n++] = (char *)"-drive";
	qargv[n++] = drive;
	qargv[n++] = (char *)"-nographic";
	qargv[n++] = (char *)"-no-reboot";
	for (int i = optind + 1; i < argc && n < 62; i++)
		qargv[n++] = argv[i];
	qargv[n] = NULL;

	print_cmd(qargv);
	if (dry)
		return 0;
	ret = run_until(qargv, timeout, until);
	qemu_nbd_stop(&ns);
	if (until && ret == 0)
		fprintf(stdout, "\nrpifs: qemu: saw \"%s\": stopped qemu\n", until);
	if (ret == 124)
		log_info("qemu: stopped after --timeout %u s", timeout);
	if (mounted) {
		char *uargv[] = { (char *)"fusermount3", (char *)"-u", mnt, NULL };

		if (run(uargv, 0) == 0)
			rmdir(mnt);
	}
	return ret < 0 ? 1 : ret;
}
