/* build_opts.c - parse `rpifs build STAGE ROOTFS [OPTIONS]`, print help. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "build.h"
#include "build_fs.h"
#include "build_opts.h"
#include "log.h"

static const struct {
	const char *name;
	enum build_cmd cmd;
} commands[] = {
	{ "rootfs", CMD_ROOTFS },
	{ "kernel", CMD_KERNEL },
	{ "firmware", CMD_FIRMWARE },
	{ "config", CMD_CONFIG },
	{ "all", CMD_ALL },
};

enum {
	OPT_FORCE = 256, OPT_SUITE, OPT_VARIANT, OPT_INCLUDE, OPT_MIRROR, OPT_HOSTNAME,
	OPT_ROOT_PASSWORD, OPT_SERIAL, OPT_SRC, OPT_CONFIG, OPT_CROSS, OPT_BUILD_DIR,
	OPT_FROM, OPT_BOARD, OPT_KERNEL, OPT_CONSOLE, OPT_DISK_ID, OPT_MODE,
};

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "suite", required_argument, NULL, OPT_SUITE },
	{ "variant", required_argument, NULL, OPT_VARIANT },
	{ "include", required_argument, NULL, OPT_INCLUDE },
	{ "mirror", required_argument, NULL, OPT_MIRROR },
	{ "hostname", required_argument, NULL, OPT_HOSTNAME },
	{ "root-password", required_argument, NULL, OPT_ROOT_PASSWORD },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "src", required_argument, NULL, OPT_SRC },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "cross-compile", required_argument, NULL, OPT_CROSS },
	{ "jobs", required_argument, NULL, 'j' },
	{ "build-dir", required_argument, NULL, OPT_BUILD_DIR },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "board", required_argument, NULL, OPT_BOARD },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "disk-id", required_argument, NULL, OPT_DISK_ID },
	{ NULL, 0, NULL, 0 },
};

/* Which commands accept each option (the "all" command takes them all). */
static enum build_cmd accepted_by(int opt)
{
	switch (opt) {
	case OPT_VARIANT: case OPT_INCLUDE: case OPT_HOSTNAME:
	case OPT_ROOT_PASSWORD: case OPT_SERIAL: case OPT_MODE:
		return CMD_ROOTFS;
	case OPT_SUITE: case OPT_MIRROR:
		return CMD_ROOTFS | CMD_FIRMWARE;
	case OPT_SRC: case OPT_CONFIG: case OPT_CROSS: case 'j': case OPT_BUILD_DIR:
		return CMD_KERNEL;
	case OPT_FROM:
		return CMD_FIRMWARE;
	case OPT_BOARD:
		return CMD_KERNEL | CMD_FIRMWARE | CMD_CONFIG;
	case OPT_KERNEL: case OPT_CONSOLE: case OPT_DISK_ID:
		return CMD_CONFIG;
	default:
		return CMD_ALL;
	}
}

static const char help_main[] =
"Usage: rpifs build STAGE ROOTFS [OPTIONS]\n"
"\n"
"Fill ROOTFS with a bootable Raspberry Pi system, then serve it with\n"
"`rpifs ROOTFS MNT` (MNT/disk.img). Stages, in the order `all` runs them:\n"
"\n"
"  rootfs     Debian arm64 root file system (debootstrap as root, mmdebstrap\n"
"             --mode=unshare as an ordinary user; qemu-user-static)\n"
"  kernel     cross-build a kernel from a Linux tree, install it into ROOTFS\n"
"  firmware   bootcode.bin, start.elf, fixup.dat into ROOTFS/boot\n"
"  config     ROOTFS/boot/config.txt and cmdline.txt\n"
"  all        every stage above (needs --src)\n"
"\n"
"Each stage skips itself when its output is up to date (--force redoes it),\n"
"shows its progress, and writes its log to ROOTFS.rpifs/logs/STAGE.log: the\n"
"state directory next to ROOTFS, never inside it (everything in ROOTFS ends\n"
"up in the image). On failure the log's last lines are printed.\n"
"\n"
"On a tree made as an ordinary user (a user namespace), the other stages run\n"
"as that user too and install files the image shows as root's.\n"
"\n"
"Example (as root, or as a user with a subordinate id range; the kernel tree\n"
"from Debian's linux-source-6.1):\n"
"  tar -xf /usr/src/linux-source-6.1.tar.xz\n"
"  rpifs build all ./pi --src linux-source-6.1\n"
"  rpifs ./pi /mnt/pi && qemu-system-aarch64 -M raspi3b ...\n"
"\n"
"`rpifs build STAGE --help` lists a stage's options.\n";

static const char help_rootfs[] =
"Usage: rpifs build rootfs ROOTFS [OPTIONS]\n"
"\n"
"Build a Debian arm64 root file system in ROOTFS, the arm64 programs run by\n"
"qemu-user-static through binfmt_misc. Components main, contrib, non-free,\n"
"non-free-firmware. Writes etc/fstab (root = partition 2, /boot = partition\n"
"1, by PARTUUID), etc/hostname and a serial getty. The tree is built next to\n"
"ROOTFS and renamed into place when complete; an existing, non-empty ROOTFS\n"
"is only replaced with --force.\n"
"\n"
"As root: `debootstrap --foreign`, then its second stage in a chroot\n"
"(binfmt_misc registered when it is not). As an ordinary user: `mmdebstrap\n"
"--mode=unshare` in a user namespace whose root is the user's first\n"
"subordinate id (/etc/subuid, /etc/subgid); the configuration runs in such a\n"
"namespace too, and ROOTFS.rpifs/idmap records the map, so `rpifs ROOTFS\n"
"MNT` shows the owners the namespace saw (root, not 100000). It needs\n"
"mmdebstrap, arch-test, uidmap, a subordinate range, user namespaces and\n"
"qemu-aarch64 registered with binfmt_misc (by root): when one is missing the\n"
"stage stops before it starts, saying what to run.\n"
"\n"
"  --suite SUITE          bookworm (default) or trixie\n"
"  --variant VARIANT      minbase (essential packages + apt) or default\n"
"                         (debootstrap's default set; the default)\n"
"  --include PKG[,PKG..]  extra packages (e.g. systemd-sysv for minbase)\n"
"  --mirror URL           Debian archive (default: the first Debian archive\n"
"                         in the host's apt configuration)\n"
"  --hostname NAME        etc/hostname (default: rpi)\n"
"  --serial TTY           serial console getty (default: ttyAMA0, the\n"
"                         PL011 qemu -M raspi3b uses; a board's header\n"
"                         pins carry the mini UART, ttyS1 with a mainline\n"
"                         kernel, which `build config` adds to cmdline.txt)\n"
"  --root-password PASS   root's password. Off by default: root then has\n"
"                         no password and cannot log in. PASS '' allows a\n"
"                         login without password, PASS - reads it from\n"
"                         stdin; or set one later: chroot ROOTFS passwd\n"
"                         (a tree built as a user: rerun this stage with\n"
"                         --root-password)\n"
"  --mode MODE            root (debootstrap; needs root) or unshare\n"
"                         (mmdebstrap --mode=unshare). Default: root for\n"
"                         root, unshare for anyone else\n"
"  --force                rebuild even when ROOTFS is up to date\n";

static const char help_kernel[] =
"Usage: rpifs build kernel ROOTFS --src LINUX_TREE [OPTIONS]\n"
"\n"
"Cross-build an arm64 kernel out of tree (make O=BUILD_DIR: nothing is\n"
"written into LINUX_TREE) and install it into ROOTFS: boot/vmlinuz-VERSION,\n"
"boot/System.map-VERSION, boot/config-VERSION, device trees in\n"
"boot/broadcom/, modules in lib/modules/VERSION (+ depmod) when enabled.\n"
"\n"
"  --src DIR              the Linux source tree (must be clean: no in-tree\n"
"                         .config; `make mrproper` cleans one)\n"
"  --config CONFIG        rpi3-minimal or rpi4-minimal: allnoconfig + the\n"
"                         shipped fragment NAME.config; defconfig: the arm64\n"
"                         defconfig (a much longer build); NAME_defconfig:\n"
"                         one of the tree's arch/arm64/configs (the Pi 5:\n"
"                         bcm2712_defconfig); FILE: your own fragment (or\n"
"                         full .config), applied the way rpi3-minimal is:\n"
"                         allnoconfig + FILE. Symbols the tree refuses are\n"
"                         reported, not fatal. Default: the board's (rpi3,\n"
"                         rpi02w: rpi3-minimal; rpi4: rpi4-minimal; rpi5:\n"
"                         bcm2712_defconfig)\n"
"  --board BOARD          rpi3 (default), rpi4, rpi02w, rpi5: picks the\n"
"                         default --config. rpi5 installs the kernel as\n"
"                         boot/kernel_2712.img and needs a tree with bcm2712\n"
"                         support (the Raspberry Pi kernel tree,\n"
"                         github.com/raspberrypi/linux): another one is\n"
"                         refused before anything is built\n"
"  --cross-compile PFX    toolchain prefix (default: aarch64-linux-gnu-,\n"
"                         Debian package gcc-aarch64-linux-gnu)\n"
"  -j, --jobs N           parallel jobs (default: the number of CPUs)\n"
"  --build-dir DIR        kbuild output (default: ROOTFS.rpifs/kbuild); an\n"
"                         up-to-date build there is reused, not recompiled\n"
"  --force                recompile (incrementally) and reinstall\n";

static const char help_firmware[] =
"Usage: rpifs build firmware ROOTFS [OPTIONS]\n"
"\n"
"Install the board's boot firmware (Pi 3: bootcode.bin, start.elf,\n"
"fixup.dat; overlays/ when the source has one) into ROOTFS/boot, and check\n"
"every required file is there and not empty.\n"
"\n"
"  --from SOURCE          a directory, a .deb or an archive (.tar.*, .zip)\n"
"                         holding the files (searched for the directory\n"
"                         that has them all). Default: Debian's\n"
"                         raspi-firmware package (non-free-firmware),\n"
"                         downloaded with apt-get download\n"
"  --board BOARD          rpi3 (default), rpi4, rpi02w, rpi5 (its firmware is\n"
"                         in its EEPROM: nothing to fetch)\n"
"  --suite SUITE          suite to take raspi-firmware from (bookworm)\n"
"  --mirror URL           Debian archive (default: the host's)\n"
"  --force                reinstall even when up to date\n"
"\n"
"Archives are unpacked without letting any entry escape the target:\n"
"\"..\", absolute paths and symlinks leading out are refused.\n";

static const char help_config[] =
"Usage: rpifs build config ROOTFS [OPTIONS]\n"
"\n"
"Write ROOTFS/boot/config.txt (arm_64bit=1, kernel=, device_tree=,\n"
"enable_uart=1) and ROOTFS/boot/cmdline.txt (root=PARTUUID=DISKID-02\n"
"rootfstype=ext4 rootwait, serial consoles). `rpifs ROOTFS MNT` reads the\n"
"disk id back from cmdline.txt and gives the image that MBR disk id.\n"
"\n"
"  --board BOARD          rpi3 (default; also qemu -M raspi3b), rpi4, rpi02w,\n"
"                         rpi5 (kernel=kernel_2712.img; GPT: root=PARTUUID=\n"
"                         UUID, the UUIDs derived like the disk id and kept\n"
"                         from cmdline.txt; etc/fstab follows)\n"
"  --disk-id 0xID         MBR disk id, 8 hex digits, not 0 (default: the one\n"
"                         already in cmdline.txt, else derived from ROOTFS's\n"
"                         path); etc/fstab is updated to match\n"
"  --kernel NAME          kernel file in ROOTFS/boot (default: the one\n"
"                         `build kernel` installed, else the newest vmlinuz-*)\n"
"  --console 'C [C..]'    console= values, space-separated; the last one is\n"
"                         /dev/console (default: the board's; rpi3:\n"
"                         'ttyS1,115200 ttyAMA0,115200': the header pins'\n"
"                         mini UART, then the PL011 that qemu shows)\n"
"  --force                rewrite even when up to date\n";

static const char help_all[] =
"Usage: rpifs build all ROOTFS --src LINUX_TREE [OPTIONS]\n"
"\n"
"Run rootfs, kernel, firmware and config in order; each stage skips itself\n"
"when up to date. Takes every option of every stage (see\n"
"`rpifs build STAGE --help`); --force redoes every stage. Inputs of all\n"
"stages are checked before the first one starts.\n";

void build_opts_usage(FILE *f, enum build_cmd cmd)
{
	switch (cmd) {
	case CMD_ROOTFS: fputs(help_rootfs, f); break;
	case CMD_KERNEL: fputs(help_kernel, f); break;
	case CMD_FIRMWARE: fputs(help_firmware, f); break;
	case CMD_CONFIG: fputs(help_config, f); break;
	case CMD_ALL: fputs(help_all, f); break;
	default: fputs(help_main, f); break;
	}
}

static int parse_disk_id(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 16);
	if (errno || end == s || *end || v == 0 || v > 0xffffffffull || s[0] == '-')
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int parse_jobs(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > 1024 || s[0] == '-')
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static void set_defaults(struct build_opts *o)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	o->suite = "bookworm";
	o->variant = "default";
	o->hostname = "rpi";
	o->serial = "ttyAMA0";
	o->kconfig = NULL;          /* the board profile's kernel_config= */
	o->cross_compile = "aarch64-linux-gnu-";
	o->jobs = n > 0 ? (unsigned)n : 1;
	o->board = "rpi3";
}

static int check_values(struct build_opts *o)
{
	if (strcmp(o->suite, "bookworm") && strcmp(o->suite, "trixie")) {
		log_error("--suite %s: supported suites are bookworm and trixie", o->suite);
		return -EINVAL;
	}
	if (strcmp(o->variant, "minbase") && strcmp(o->variant, "default")) {
		log_error("--variant %s: use minbase or default", o->variant);
		return -EINVAL;
	}
	if (o->include && strpbrk(o->include, " \t\n/")) {
		log_error("--include %s: a comma-separated list of package names", o->include);
		return -EINVAL;
	}
	if (!o->hostname[0] || strlen(o->hostname) > 63 || strpbrk(o->hostname, " \t\n/")) {
		log_error("--hostname %s: not a valid host name", o->hostname);
		return -EINVAL;
	}
	if (!o->serial[0] || strpbrk(o->serial, " \t\n/,")) {
		log_error("--serial %s: a tty name such as ttyAMA0", o->serial);
		return -EINVAL;
	}
	if (o->mode && strcmp(o->mode, "root") && strcmp(o->mode, "unshare")) {
		log_error("--mode %s: root (debootstrap, as root) or unshare (mmdebstrap"
			  " --mode=unshare, as an ordinary user)", o->mode);
		return -EINVAL;
	}
	if (o->mirror && !strstr(o->mirror, "://") && strncmp(o->mirror, "file:", 5)) {
		log_error("--mirror %s: a URL (http://HOST/debian, file:///PATH)", o->mirror);
		return -EINVAL;
	}
	if (o->console && (!o->console[0] || strpbrk(o->console, "\n\t\"'"))) {
		log_error("--console '%s': console= values separated by spaces,"
			  " e.g. 'ttyS1,115200 ttyAMA0,115200'", o->console);
		return -EINVAL;
	}
	if (o->kernel && (strchr(o->kernel, '/') || !o->kernel[0])) {
		log_error("--kernel %s: a file name in ROOTFS/boot", o->kernel);
		return -EINVAL;
	}
	return 0;
}

static int set_rootfs(struct build_opts *o, const char *arg)
{
	size_t n;
	int ret;

	if (!arg[0]) {
		log_error("ROOTFS is empty");
		return -EINVAL;
	}
	ret = build_fs_abspath(arg, &o->rootfs);
	if (ret) {
		log_error("%s: %s (the directory holding ROOTFS must exist)", arg, strerror(-ret));
		return -EINVAL;
	}
	n = strlen(o->rootfs);
	while (n > 1 && o->rootfs[n - 1] == '/')
		o->rootfs[--n] = '\0';
	if (!strcmp(o->rootfs, "/")) {
		log_error("refusing to build into /");
		return -EINVAL;
	}
	o->state_dir = build_xasprintf("%s.rpifs", o->rootfs);
	return 0;
}

static int set_option(struct build_opts *o, int c, const char *arg)
{
	switch (c) {
	case OPT_FORCE: o->force = true; break;
	case OPT_SUITE: o->suite = arg; break;
	case OPT_VARIANT: o->variant = arg; break;
	case OPT_INCLUDE: o->include = arg; break;
	case OPT_MIRROR: o->mirror = arg; break;
	case OPT_HOSTNAME: o->hostname = arg; break;
	case OPT_ROOT_PASSWORD: o->root_password = arg; break;
	case OPT_SERIAL: o->serial = arg; break;
	case OPT_MODE: o->mode = arg; break;
	case OPT_SRC: o->src = arg; break;
	case OPT_CONFIG: o->kconfig = arg; break;
	case OPT_CROSS: o->cross_compile = arg; break;
	case OPT_BUILD_DIR: o->build_dir = arg; break;
	case OPT_FROM: o->fw_from = arg; break;
	case OPT_BOARD: o->board = arg; break;
	case OPT_KERNEL: o->kernel = arg; break;
	case OPT_CONSOLE: o->console = arg; break;
	case 'j':
		if (parse_jobs(arg, &o->jobs)) {
			log_error("-j %s: a number of jobs (1-1024)", arg);
			return -EINVAL;
		}
		break;
	case OPT_DISK_ID:
		if (parse_disk_id(arg, &o->disk_id)) {
			log_error("--disk-id %s: 8 hex digits, not 0 (e.g. 0x1234abcd)", arg);
			return -EINVAL;
		}
		break;
	}
	return 0;
}

int build_opts_parse(struct build_opts *o, int argc, char **argv)
{
	size_t i;
	int c;

	memset(o, 0, sizeof(*o));
	set_defaults(o);
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		build_opts_usage(argc < 2 ? stderr : stdout, 0);
		return argc < 2 ? -EINVAL : 1;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		log_error("build: unknown stage '%s' (rootfs, kernel, firmware, config, all;"
			  " see rpifs build --help)", argv[1]);
		return -EINVAL;
	}
	o->cmd = commands[i].cmd;
	o->cmd_name = commands[i].name;
	argc--;
	argv++;

	/* GNU getopt permutes: options may come before or after ROOTFS. */
	optind = 1;
	opterr = 0;
	for (;;) {
		int idx = -1;
		char optname[64];
		const char *opt = optname;

		c = getopt_long(argc, argv, "hj:", long_opts, &idx);
		if (c == -1)
			break;
		if (idx >= 0)
			snprintf(optname, sizeof(optname), "--%s", long_opts[idx].name);
		else if (c == 'j' || c == 'h')
			snprintf(optname, sizeof(optname), "-%c", c);
		else
			opt = argv[optind - 1];

		if (c == '?' || c == ':') {
			if (optopt == 'j')
				log_error("build %s: -j needs a number", o->cmd_name);
			else
				log_error("build %s: unknown option, or missing value: %s"
					  " (rpifs build %s --help)", o->cmd_name, opt, o->cmd_name);
			return -EINVAL;
		}
		if (c == 'h') {
			build_opts_usage(stdout, o->cmd);
			return 1;
		}
		if (!(accepted_by(c) & o->cmd)) {
			log_error("build %s: %s is not an option of this stage"
				  " (rpifs build %s --help)", o->cmd_name, opt, o->cmd_name);
			return -EINVAL;
		}
		if (set_option(o, c, optarg))
			return -EINVAL;
	}
	if (optind >= argc) {
		log_error("build %s: ROOTFS missing (rpifs build %s ROOTFS ...; --help)",
			  o->cmd_name, o->cmd_name);
		return -EINVAL;
	}
	if (optind + 1 < argc) {
		log_error("build %s: one ROOTFS expected, got also '%s'", o->cmd_name,
			  argv[optind + 1]);
		return -EINVAL;
	}
	if (set_rootfs(o, argv[optind]))
		return -EINVAL;
	return check_values(o);
}

void build_opts_free(struct build_opts *o)
{
	free(o->rootfs);
	free(o->state_dir);
	o->rootfs = o->state_dir = NULL;
}
