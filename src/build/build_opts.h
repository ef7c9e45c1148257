/* build_opts.h - the command line of `rpifs build STAGE ROOTFS [OPTIONS]`.
 *
 * One option set for every stage: `build all` takes the union, a single
 * stage refuses the options that are not its own.
 */
#ifndef RPIFS_BUILD_OPTS_H
#define RPIFS_BUILD_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum build_cmd {
	CMD_ROOTFS = 1 << 0,
	CMD_KERNEL = 1 << 1,
	CMD_FIRMWARE = 1 << 2,
	CMD_CONFIG = 1 << 3,
	CMD_ALL = CMD_ROOTFS | CMD_KERNEL | CMD_FIRMWARE | CMD_CONFIG,
};

struct build_opts {
	enum build_cmd cmd;
	const char *cmd_name;
	char *rootfs;               /* absolute, no trailing slash */
	char *state_dir;            /* ROOTFS.rpifs */
	bool force;

	/* rootfs */
	const char *suite;          /* bookworm */
	const char *variant;        /* "minbase" or "default" */
	const char *include;        /* comma-separated packages */
	const char *mirror;         /* NULL: the host's apt configuration's */
	const char *hostname;
	const char *root_password;  /* NULL: leave root without a password */
	const char *serial;         /* getty on this tty (ttyAMA0) */
	const char *mode;           /* "root", "unshare"; NULL: by the user */

	/* kernel */
	const char *src;
	const char *kconfig;        /* NAME-minimal, defconfig, a file; NULL: the board's */
	const char *cross_compile;  /* aarch64-linux-gnu- */
	const char *build_dir;      /* NULL: STATE/kbuild */
	unsigned jobs;

	/* firmware */
	const char *fw_from;        /* NULL: Debian's raspi-firmware package */

	/* config (and firmware: which files the board needs) */
	const char *board;          /* rpi3 */
	const char *kernel;         /* NULL: the one `build kernel` installed */
	const char *console;        /* NULL: the board's */
	uint32_t disk_id;           /* 0: cmdline.txt's, else derived */
};

/* 0: run; 1: help was printed (exit 0); -EINVAL: bad usage (reported). */
int build_opts_parse(struct build_opts *o, int argc, char **argv);
void build_opts_free(struct build_opts *o);
void build_opts_usage(FILE *f, enum build_cmd cmd);

#endif
