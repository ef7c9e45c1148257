/* cli.h - what the command-line programs (rpifs, rpifs-flash) share: the
 * layout options of the image (one parser, so that `rpifs flash ROOTFS` and
 * `rpifs export ROOTFS` build the very image a mount of ROOTFS serves) and
 * the exec of a sibling program (`rpifs build`, `rpifs flash`, `rpifs
 * export` run a program installed next to rpifs, so that the mount does not
 * load libarchive). Front-end code: sees include/ only. */
#ifndef RPIFS_CLI_H
#define RPIFS_CLI_H

#include <getopt.h>
#include <stdio.h>
#include "rpifs.h"

/* getopt_long values of the layout options; a program's own long options
 * start at CLI_OPT_END. */
enum {
	CLI_OPT_BOOT_DIR = 256, CLI_OPT_BOOT_SIZE, CLI_OPT_BOOT_LABEL, CLI_OPT_ROOT_SIZE,
	CLI_OPT_ROOT_LABEL, CLI_OPT_FREE, CLI_OPT_SIZE, CLI_OPT_ALIGN, CLI_OPT_DISK_ID,
	CLI_OPT_ROOT_OWNER, CLI_OPT_NO_EXT4, CLI_OPT_IDMAP, CLI_OPT_DEVICES, CLI_OPT_LABEL,
	CLI_OPT_END,
};

/* The layout options' entries, for a program's `struct option` table. */
#define CLI_LAYOUT_LONG_OPTS \
	{ "boot-dir", required_argument, NULL, CLI_OPT_BOOT_DIR }, \
	{ "boot-size", required_argument, NULL, CLI_OPT_BOOT_SIZE }, \
	{ "boot-label", required_argument, NULL, CLI_OPT_BOOT_LABEL }, \
	{ "root-size", required_argument, NULL, CLI_OPT_ROOT_SIZE }, \
	{ "root-label", required_argument, NULL, CLI_OPT_ROOT_LABEL }, \
	{ "free", required_argument, NULL, CLI_OPT_FREE }, \
	{ "size", required_argument, NULL, CLI_OPT_SIZE }, \
	{ "align", required_argument, NULL, CLI_OPT_ALIGN }, \
	{ "disk-id", required_argument, NULL, CLI_OPT_DISK_ID }, \
	{ "root-owner", no_argument, NULL, CLI_OPT_ROOT_OWNER }, \
	{ "no-ext4", no_argument, NULL, CLI_OPT_NO_EXT4 }, \
	{ "idmap", required_argument, NULL, CLI_OPT_IDMAP }, \
	{ "devices", required_argument, NULL, CLI_OPT_DEVICES }, \
	{ "label", required_argument, NULL, CLI_OPT_LABEL }

/* The --help lines of the layout options. */
extern const char cli_layout_help[];

/* getopt_long returned c (argument arg): a layout option is applied to o.
 * 1: it was one; 0: not a layout option (the caller's own); -EINVAL: a bad
 * value, logged. Any option given is counted in *given (may be NULL). */
int cli_layout_opt(struct rpifs_opts *o, int c, const char *arg, unsigned *given);
/* After the options: the checks across them and SOURCE_DATE_EPOCH from the
 * environment. 0 or -EINVAL, logged. */
int cli_layout_finish(struct rpifs_opts *o);

/* Run the program prog installed next to this one with argv (argv[0] is
 * replaced by its path); what is the subcommand's name for messages. Returns
 * only on failure (logged): the exit status to return. */
int cli_exec_sibling(const char *prog, const char *what, char **argv);

#endif
