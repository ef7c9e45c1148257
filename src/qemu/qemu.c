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
#include "cli.h"
#include "config_txt.h"
#include "console.h"
#include "log.h"
#include "rpifs.h"
#include "qemu.h"
#include "qemu_board.h"
#include "qemu_dtb.h"
#include "qemu_machine.h"
#include "qemu_nbd.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: rpifs qemu [OPTIONS] ROOTFS [-- QEMU-ARGS...]\n"
"\n"
"Boot ROOTFS as a Raspberry Pi 3 under qemu-system-aarch64 -M raspi3b. The SD\n"
"card is the disk.img rpifs serves: mounted for the run (or --image), with the\n"
"kernel, initramfs and device tree that the boot directory's config.txt names\n"
"for a Pi 3 (kernel=, initramfs FILE, device_tree=, os_prefix=, cmdline=,\n"
"arm_64bit, [pi3]/[all]/[none] sections) and the command line from cmdline.txt (plus\n"
"console=ttyAMA0 where it names no serial console). Both serial ports print on\n"
"the terminal; the keyboard goes to the kernel's console (ttyAMA0 or ttyS1), on\n"
"a mux with qemu's monitor: Ctrl-A C switches, Ctrl-A X quits qemu.\n"
"\n"
"  --image FILE      use this disk.img (an existing rpifs mount) instead of\n"
"                    mounting ROOTFS for the run\n"
"  --nbd             serve ROOTFS to qemu over NBD (nbdkit with the rpifs\n"
"                    plugin on a Unix socket) instead of a FUSE mount; the\n"
"                    default where FUSE cannot mount (no usable /dev/fuse)\n"
"  --boot-dir DIR and the other mount options (rpifs --help: --boot-label,\n"
"                    --root-label, --disk-id, --size, --idmap, --devices, ...)\n"
"                    are passed to the mount (or to nbdkit as KEY=VALUE)\n"
"                    (the boot directory: boot/firmware if it holds\n"
"                    config.txt, else boot, as the mount detects it)\n"
"  --board NAME      rpi3 (default: -M raspi3b, 1G), rpi02w (Zero 2 W: -M\n"
"                    raspi3ap, 512M), rpi4 (-M raspi4b, 2G: qemu 9.0 or later,\n"
"                    e.g. Debian trixie's: rpifs's scripts/trixie-qemu makes\n"
"                    one, found in its default place when the host's qemu\n"
"                    lacks raspi4b and --qemu is not given); the device\n"
"                    tree and config.txt's [pi3]/[pi02]/[pi4] sections\n"
"                    follow it\n"
"  --dtb-as-is       pass the device tree unchanged (rpi4: rpifs drops the\n"
"                    SD controller's mmc-pwrseq from qemu's copy, as qemu's\n"
"                    firmware has no GPIO expander; with it the kernel\n"
"                    waits for its root forever)\n"
"  --append ARGS     more kernel arguments\n"
"  --overlay FILE    keep the guest's writes in FILE (passed to the mount)\n"
"  --snapshot        discard the guest's writes at exit (qemu snapshot=on)\n"
"  --timeout SECS    stop qemu after SECS seconds (exit status 124)\n"
"  --until TEXT      stop qemu, with exit status 0, once its console prints\n"
"                    TEXT (e.g. \"login:\"); if qemu ends without printing it,\n"
"                    the status is qemu's, or 1 where that was 0; with\n"
"                    --timeout (124 when it expires), for scripts\n"
"  --qemu PATH       qemu binary (default: qemu-system-aarch64)\n"
"  --dry-run         print the qemu command and exit\n"
"  -h, --help        this help\n");
}

static bool is_file(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* BOOT/PREFIX NAME: the firmware puts os_prefix in front of every OS file
 * name (kernel, initramfs, device tree, cmdline file); "/" at the start of
 * NAME means the partition's root, as for the firmware. */
static void os_file(char *out, size_t len, const char *boot, const char *prefix,
		    const char *name)
{
	snprintf(out, len, "%s/%s%s", boot, prefix + (*prefix == '/'), name + (*name == '/'));
}

int boot_config_read(const char *boot, const struct qemu_board *qb, struct boot_config *bc)
{
	const char *const *dtbs = qb->dtbs;
	struct config_txt c;
	char cfg[PATH_MAX], p[PATH_MAX];
	const char *pre, *kname;
	size_t l;
	FILE *f;
	int ret;

	memset(bc, 0, sizeof(*bc));
	snprintf(cfg, sizeof(cfg), "%s/config.txt", boot);
	ret = config_txt_read(cfg, qb->models, &c);
	if (ret < 0 && ret != -ENOENT) {
		log_error("%s: %s", cfg, strerror(-ret));
		return ret;
	}
	/* The firmware's default kernel: kernel8.img for arm_64bit=1 (what
	 * rpifs build writes, and the only kind qemu-system-aarch64 boots
	 * here), kernel7.img for a 32-bit Pi 3 setup. */
	kname = *c.kernel ? c.kernel : c.arm_64bit == 0 ? "kernel7.img" : "kernel8.img";
	pre = c.os_prefix;
	os_file(bc->kernel, sizeof(bc->kernel), boot, pre, kname);
	if (*pre && !is_file(bc->kernel)) {
		/* The firmware checks os_prefix the same way before using it. */
		log_warn("%s: os_prefix=%s: no %s there: prefix ignored, as the "
			 "firmware does", cfg, pre, bc->kernel);
		pre = "";
		os_file(bc->kernel, sizeof(bc->kernel), boot, pre, kname);
	}
	if (!is_file(bc->kernel)) {
		log_error("%s: no kernel (config.txt kernel=%s); build one with "
			  "'rpifs build kernel'", bc->kernel, kname);
		return -ENOENT;
	}
	if (*c.initramfs) {
		os_file(bc->initrd, sizeof(bc->initrd), boot, pre, c.initramfs);
		if (!is_file(bc->initrd)) {
			log_error("%s: 'initramfs %s' names %s, which is not a file: the "
				  "firmware would not boot this card either", cfg, c.initramfs,
				  bc->initrd);
			return -ENOENT;
		}
	}
	if (*c.device_tree) {
		os_file(bc->dtb, sizeof(bc->dtb), boot, pre, c.device_tree);
	} else {
		for (size_t i = 0; dtbs[i] && !*bc->dtb; i++) {
			os_file(p, sizeof(p), boot, pre, dtbs[i]);
			if (is_file(p))
				snprintf(bc->dtb, sizeof(bc->dtb), "%s", p);
		}
	}
	if (!*bc->dtb || !is_file(bc->dtb)) {
		log_error("%s: no device tree for board %s (config.txt device_tree=, or "
			  "%s); 'rpifs build kernel' installs them",
			  *bc->dtb ? bc->dtb : boot, qb->name, dtbs[0]);
		return -ENOENT;
	}
	os_file(p, sizeof(p), boot, pre, *c.cmdline ? c.cmdline : "cmdline.txt");
	f = fopen(p, "re");
	if (f) {
		if (!fgets(bc->cmdline, sizeof(bc->cmdline), f))
			bc->cmdline[0] = '\0';
		fclose(f);
		/* One line; trailing blanks would double the space before the
		 * console= rpifs appends. */
		bc->cmdline[strcspn(bc->cmdline, "\r\n")] = '\0';
		for (l = strlen(bc->cmdline); l && (bc->cmdline[l - 1] == ' ' ||
						    bc->cmdline[l - 1] == '\t'); )
			bc->cmdline[--l] = '\0';
	} else {
		log_warn("%s: missing; booting with root=/dev/mmcblk0p2 rootwait", p);
		snprintf(bc->cmdline, sizeof(bc->cmdline), "root=/dev/mmcblk0p2 rootwait");
	}
	return 0;
}

static volatile sig_atomic_t timed_out;   /* 1: SIGALRM came; 2: qemu was told to stop */

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
}

/* Run argv; returns its exit status, 128 + the signal that killed it, 124
 * after --timeout. With CON (the qemu run): the other serial port's output,
 * and qemu's own with UNTIL, are copied to stdout (console.c); with UNTIL,
 * 0 exactly when UNTIL appeared (qemu is then stopped): an exit without it
 * is never 0. */
static int run_until(char **argv, unsigned timeout, const char *until,
		     struct qemu_console *con)
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
	if (until)
		close(pfd[1]);
	if (con && console_open(con) == 0)
		seen = console_pump(con, until ? pfd[0] : -1, pid, until, &timed_out);
	if (until)
		close(pfd[0]);
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
	if (!until)
		return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	/* --until promises that TEXT was seen: an exit without it is a
	 * failure even when qemu's own status is 0 (poweroff, a killed qemu,
	 * a wrong binary). */
	if (WIFEXITED(st))
		log_error("qemu: %s exited (status %d) before its console printed \"%s\"",
			  argv[0], WEXITSTATUS(st), until);
	else
		log_error("qemu: %s killed by signal %d before its console printed \"%s\"",
			  argv[0], WTERMSIG(st), until);
	if (WIFEXITED(st))
		return WEXITSTATUS(st) ? WEXITSTATUS(st) : 1;
	return 128 + WTERMSIG(st);
}

static int run(char **argv, unsigned timeout)
{
	return run_until(argv, timeout, NULL, NULL);
}

/* The image at path starts with a protective MBR (a GPT disk): its first
 * partition entry (offset 446) has type 0xee (offset 4 in the entry). What
 * a tree that names GPT PARTUUIDs becomes without --label. */
static bool image_is_gpt(const char *path)
{
	uint8_t s[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool gpt;

	if (fd < 0)
		return false;
	gpt = pread(fd, s, sizeof(s), 0) == (ssize_t)sizeof(s) && s[510] == 0x55 &&
	      s[511] == 0xaa && s[446 + 4] == 0xee;
	close(fd);
	return gpt;
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

enum { OPT_IMAGE = CLI_OPT_END, OPT_APPEND, OPT_OVERLAY, OPT_SNAPSHOT,
       OPT_TIMEOUT, OPT_QEMU, OPT_DRY_RUN, OPT_UNTIL, OPT_NBD, OPT_BOARD, OPT_DTB_AS_IS };

/* The mount options given to rpifs qemu, passed on to its own mount
 * (--NAME ARG) or to nbdkit (NAME=ARG: the plugin's keys are the options'
 * names), checked here first with the mount's own parser. */
#define MAX_LAYOUT_OPTS 32
struct layout_args {
	char *mount[2 * MAX_LAYOUT_OPTS + 1];
	char *nbd[MAX_LAYOUT_OPTS + 1];
	char nbd_kv[MAX_LAYOUT_OPTS][PATH_MAX + 32];
	char flag[MAX_LAYOUT_OPTS][32];            /* "--NAME" */
	int nmount, nnbd;
};

static int layout_arg(struct layout_args *la, const struct option *opt, char *arg)
{
	char *kv = la->nbd_kv[la->nnbd];

	if (la->nnbd == MAX_LAYOUT_OPTS) {
		log_error("qemu: more than %d mount options", MAX_LAYOUT_OPTS);
		return -E2BIG;
	}
	snprintf(la->flag[la->nnbd], sizeof(la->flag[0]), "--%s", opt->name);
	la->mount[la->nmount++] = la->flag[la->nnbd];
	if (opt->has_arg)
		la->mount[la->nmount++] = arg;
	/* The plugin's keys: --no-ext4 is ext4=false, flags are NAME=true. */
	if (!strcmp(opt->name, "no-ext4"))
		snprintf(kv, PATH_MAX + 32, "ext4=false");
	else
		snprintf(kv, PATH_MAX + 32, "%s=%s", opt->name, opt->has_arg ? arg : "true");
	la->nbd[la->nnbd++] = kv;
	la->mount[la->nmount] = la->nbd[la->nnbd] = NULL;
	return 0;
}

int qemu_main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_LAYOUT_LONG_OPTS,
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "append", required_argument, NULL, OPT_APPEND },
		{ "overlay", required_argument, NULL, OPT_OVERLAY },
		{ "snapshot", no_argument, NULL, OPT_SNAPSHOT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "qemu", required_argument, NULL, OPT_QEMU },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "nbd", no_argument, NULL, OPT_NBD },
		{ "board", required_argument, NULL, OPT_BOARD },
		{ "dtb-as-is", no_argument, NULL, OPT_DTB_AS_IS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *image = NULL, *boot_dir = NULL, *append = NULL, *overlay = NULL;
	const char *qemu = "qemu-system-aarch64", *until = NULL, *board = "rpi3";
	bool qemu_given = false;
	const struct qemu_board *qb;
	bool snapshot = false, dry = false, nbd = false, dtb_as_is = false;
	char dtb_copy[64] = "";
	struct qemu_nbd ns = { 0 };
	const char *why;
	unsigned timeout = 0;
	struct boot_config bc;
	struct qemu_console con;
	char boot[PATH_MAX], cmdline[8192], drive[PATH_MAX + 128], img[PATH_MAX + 64];
	char mnt[] = "/tmp/rpifs-qemu.XXXXXX", self[PATH_MAX];
	char *qargv[64];
	static struct layout_args la;
	struct rpifs_opts lo;
	int c, li, n = 0, ret = 1;
	bool mounted = false;

	rpifs_opts_init(&lo);
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, &li)) != -1) {
		/* A mount option: checked as the mount checks it, kept for it. */
		ret = cli_layout_opt(&lo, c, optarg, NULL);
		if (ret < 0)
			return 2;
		if (ret > 0) {
			if (c == CLI_OPT_BOOT_DIR)
				boot_dir = optarg;
			if (layout_arg(&la, &opts[li], optarg) < 0)
				return 2;
			continue;
		}
		switch (c) {
		case OPT_IMAGE: image = optarg; break;
		case OPT_APPEND: append = optarg; break;
		case OPT_OVERLAY: overlay = optarg; break;
		case OPT_SNAPSHOT: snapshot = true; break;
		case OPT_QEMU: qemu = optarg; qemu_given = true; break;
		case OPT_DRY_RUN: dry = true; break;
		case OPT_NBD: nbd = true; break;
		case OPT_BOARD: board = optarg; break;
		case OPT_DTB_AS_IS: dtb_as_is = true; break;
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
	/* "rpifs qemu [OPTIONS] ROOTFS -- QEMU-ARGS": getopt stops at ROOTFS
	 * ('+'), so the "--" after it is still there and is not qemu's. */
	if (optind + 1 < argc && !strcmp(argv[optind + 1], "--")) {
		argv[optind + 1] = argv[optind];
		optind++;
	}
	if (argc - optind - 1 > 32) {
		log_error("qemu: %d qemu arguments after ROOTFS: at most 32", argc - optind - 1);
		return 2;
	}
	/* The mount's rule: the kernel and cmdline.txt read here are the ones
	 * the served FAT holds (a --boot-dir given is passed on below). */
	if (!boot_dir) {
		boot_dir = rpifs_boot_dir(argv[optind]);
		log_info("qemu: boot files from %s/%s", argv[optind], boot_dir);
	}
	snprintf(boot, sizeof(boot), "%s/%s", argv[optind], boot_dir);
	qb = qemu_board_find(board);
	if (!qb)
		return 2;
	if (qb->mbr_only && lo.label == RPIFS_LABEL_GPT) {
		log_error("qemu: --board %s --label gpt: the %s's boot ROM reads an MBR only, "
			  "so the card would not boot there; use --board rpi4, or --label dos",
			  qb->name, !strcmp(qb->name, "rpi3") ? "Raspberry Pi 3" :
			  "Raspberry Pi Zero 2 W");
		return 2;
	}
	if (boot_config_read(boot, qb, &bc) < 0)
		return 1;
	/* Before mounting: a qemu without the machine is told apart here,
	 * with where to get one (--dry-run prints the command regardless). */
	if (!dry && qemu_machine_check(&qemu, qemu_given, qb) < 0)
		return 1;
	/* A console where the tree names none: the PL011, serial0. */
	snprintf(cmdline, sizeof(cmdline), "%s%s%s%s", bc.cmdline,
		 console_port(bc.cmdline) >= 0 ? "" : " console=ttyAMA0,115200",
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
		if (qemu_nbd_start(&ns, argv[optind], la.nbd, overlay, dry) < 0)
			return 1;
		snprintf(img, sizeof(img), "%s", ns.uri);
	} else if (dry) {
		snprintf(img, sizeof(img), "MNT/disk.img");
	} else {
		ssize_t l = readlink("/proc/self/exe", self, sizeof(self) - 1);
		char *margv[8 + 2 * MAX_LAYOUT_OPTS];
		int m = 0;

		if (l < 0 || !mkdtemp(mnt)) {
			log_error("qemu: preparing the mount: %s", strerror(errno));
			return 1;
		}
		self[l] = '\0';
		margv[m++] = self;
		for (int i = 0; i < la.nmount; i++)
			margv[m++] = la.mount[i];
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
	/* The label the tree chose (GPT PARTUUIDs in it) is known only now. */
	if (qb->mbr_only && !dry && !nbd && image_is_gpt(img)) {
		log_error("qemu: %s is a GPT disk (%s): the %s's boot ROM reads an MBR only, so "
			  "the card would not boot there; use --board rpi4, or --label dos",
			  image ? image : argv[optind], image ? "its sector 0" :
			  "the tree names GPT PARTUUIDs", qb->name);
		ret = 2;
		goto out;
	}
	if (!dry && !dtb_as_is && qemu_dtb_fixup(qb, bc.dtb, dtb_copy, sizeof(dtb_copy)) < 0) {
		ret = 1;
		goto out;
	}
	if (console_setup(&con, console_port(cmdline) == 1, dry) < 0) {
		ret = 1;
		goto out;
	}
	snprintf(drive, sizeof(drive), "file=%s,if=sd,format=raw%s", img,
		 snapshot ? ",snapshot=on" : "");

	qargv[n++] = (char *)qemu;
	qargv[n++] = (char *)"-M";
	qargv[n++] = (char *)qb->machine;
	qargv[n++] = (char *)"-m";
	qargv[n++] = (char *)qb->memory;      /* a raspi machine takes its own or nothing */
	qargv[n++] = (char *)"-kernel";
	qargv[n++] = bc.kernel;
	qargv[n++] = (char *)"-dtb";
	qargv[n++] = *dtb_copy ? dtb_copy : bc.dtb;
	if (*bc.initrd) {
		qargv[n++] = (char *)"-initrd";
		qargv[n++] = bc.initrd;
	}
	qargv[n++] = (char *)"-append";
	qargv[n++] = cmdline;
	qargv[n++] = (char *)"-drive";
	qargv[n++] = drive;
	console_args(&con, qargv, &n);
	qargv[n++] = (char *)"-display";
	qargv[n++] = (char *)"none";
	qargv[n++] = (char *)"-no-reboot";
	for (int i = optind + 1; i < argc; i++)   /* at most 32: checked above */
		qargv[n++] = argv[i];
	qargv[n] = NULL;

	print_cmd(qargv);
	if (dry)
		return 0;
	ret = run_until(qargv, timeout, until, &con);
	console_free(&con);
out:
	if (*dtb_copy)
		unlink(dtb_copy);
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
