/* config_txt.h - config.txt read the way the Raspberry Pi firmware reads it,
 * for the part that decides a boot under qemu: which kernel, initramfs,
 * device tree and command-line file it loads.
 *
 * Syntax (the firmware's documentation, "config.txt"): `key=value` lines,
 * `initramfs FILE [followkernel|ADDRESS]` (a space, no '='), `include FILE`,
 * `#` comments, and conditional sections: `[pi3]`, `[pi4]`, `[pi02]`, … (the
 * model filters: a section applies when the board is one the filter names),
 * `[all]` (every board again), `[none]` (nothing until the next filter).
 * Other filters (`[HDMI:0]`, `[EDID=…]`, `[gpio4=1]`, serial numbers) cannot
 * be evaluated here: they are taken as true, with a warning; `[tryboot]` is
 * false (a normal boot). A later line of a key replaces an earlier one.
 */
#ifndef RPIFS_QEMU_CONFIG_TXT_H
#define RPIFS_QEMU_CONFIG_TXT_H

#define CONFIG_TXT_VALUE 256

struct config_txt {
	char kernel[CONFIG_TXT_VALUE];      /* kernel=, "" when not set */
	char initramfs[CONFIG_TXT_VALUE];   /* initramfs FILE or ramfsfile= */
	char device_tree[CONFIG_TXT_VALUE]; /* device_tree= */
	char os_prefix[CONFIG_TXT_VALUE];   /* os_prefix=: before every OS file */
	char cmdline[CONFIG_TXT_VALUE];     /* cmdline=, "" = cmdline.txt */
	int arm_64bit;                      /* arm_64bit=: 0/1, -1 when not set */
};

/* Parse PATH for a board matching MODELS (the model filters it answers to,
 * NULL-terminated: struct qemu_board's models). Includes are read relative to
 * PATH's directory (at most 8 deep). Problems that the firmware would
 * ignore are warnings naming PATH:LINE. Returns 0, or -errno when PATH
 * cannot be read (c then holds the defaults). */
int config_txt_read(const char *path, const char *const *models, struct config_txt *c);

#endif
