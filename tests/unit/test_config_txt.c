/* test_config_txt.c - config_txt_read(): config.txt as the Raspberry Pi
 * firmware reads it, for the keys that decide a qemu boot (config_txt.h). */
#include <limits.h>
#include <stdlib.h>
#include "check.h"
#include "config_txt.h"
#include "qemu_board.h"

static char dir[] = "/tmp/test_config_txt.XXXXXX";

static int read_cfg(const char *board, const char *text, struct config_txt *c)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/config.txt", dir);
	put(p, text);
	return config_txt_read(p, qemu_board_find(board)->models, c);
}

int main(void)
{
	struct config_txt c;
	char p[PATH_MAX];

	must(mkdtemp(dir) != NULL, "mkdtemp");

	/* Nothing set: defaults, arm_64bit unset. */
	CHECK(read_cfg("rpi3", "# empty\n\n", &c) == 0);
	CHECK(!*c.kernel && !*c.initramfs && !*c.device_tree && !*c.os_prefix && !*c.cmdline);
	CHECK(c.arm_64bit == -1);

	/* Debian's raspi-firmware shape: "initramfs FILE followkernel" (a space,
	 * no '='), kernel= in [all] after a [pi4] section. */
	CHECK(read_cfg("rpi3",
		       "[pi4]\nkernel=pi4.img\ninitramfs pi4-initrd followkernel\n"
		       "[all]\narm_64bit=1\nkernel=vmlinuz-6.1.0-28-arm64\n"
		       "initramfs initrd.img-6.1.0-28-arm64 followkernel\n", &c) == 0);
	CHECK(!strcmp(c.kernel, "vmlinuz-6.1.0-28-arm64"), "kernel=%s", c.kernel);
	CHECK(!strcmp(c.initramfs, "initrd.img-6.1.0-28-arm64"), "initramfs %s", c.initramfs);
	CHECK(c.arm_64bit == 1);

	/* The same file for a Pi 4: its section applies, then [all] replaces. */
	CHECK(read_cfg("rpi4", "[all]\nkernel=a.img\n[pi4]\nkernel=b.img\n", &c) == 0);
	CHECK(!strcmp(c.kernel, "b.img"), "pi4: kernel=%s", c.kernel);
	CHECK(read_cfg("rpi3", "[all]\nkernel=a.img\n[pi4]\nkernel=b.img\n", &c) == 0);
	CHECK(!strcmp(c.kernel, "a.img"), "pi3: kernel=%s", c.kernel);

	/* [none] until the next filter; [pi3+] is not a 3B; [pi02] and [pi0]
	 * are the Zero 2 W's; a model filter replaces the one before it. */
	CHECK(read_cfg("rpi3", "kernel=a\n[none]\nkernel=n\n[pi3+]\nkernel=p\n"
		       "[pi3]\ndevice_tree=t.dtb\n[pi02]\ncmdline=z.txt\n", &c) == 0);
	CHECK(!strcmp(c.kernel, "a") && !strcmp(c.device_tree, "t.dtb") && !*c.cmdline,
	      "kernel=%s device_tree=%s cmdline=%s", c.kernel, c.device_tree, c.cmdline);
	CHECK(read_cfg("rpi02w", "[pi3]\nkernel=x\n[pi0]\ncmdline=z.txt\n[pi02]\nkernel=y\n", &c) == 0);
	CHECK(!strcmp(c.kernel, "y") && !strcmp(c.cmdline, "z.txt"));

	/* Filters that cannot be decided count as true; [tryboot] as false
	 * (until [all]). */
	CHECK(read_cfg("rpi3", "[HDMI:0]\nkernel=h\n[tryboot]\nkernel=t\n[all]\nos_prefix=v2/\n", &c) == 0);
	CHECK(!strcmp(c.kernel, "h") && !strcmp(c.os_prefix, "v2/"));

	/* Blanks around '=', comments, CRLF, ramfsfile= (first file only). */
	CHECK(read_cfg("rpi3", "  kernel = k.img  # the kernel\r\nramfsfile=a.cpio,b.cpio\r\n"
		       "arm_64bit=0\n", &c) == 0);
	CHECK(!strcmp(c.kernel, "k.img"), "kernel='%s'", c.kernel);
	CHECK(!strcmp(c.initramfs, "a.cpio"), "ramfsfile -> '%s'", c.initramfs);
	CHECK(c.arm_64bit == 0);

	/* A later line of a key replaces an earlier one. */
	CHECK(read_cfg("rpi3", "kernel=one\nkernel=two\n", &c) == 0);
	CHECK(!strcmp(c.kernel, "two"));

	/* include, relative to config.txt; a missing include is skipped. */
	snprintf(p, sizeof(p), "%s/extra.txt", dir);
	put(p, "[pi3]\ninitramfs from-include.img\n");
	CHECK(read_cfg("rpi3", "include extra.txt\ninclude missing.txt\n[all]\nkernel=k\n", &c) == 0);
	CHECK(!strcmp(c.initramfs, "from-include.img") && !strcmp(c.kernel, "k"));
	/* An include that includes itself stops at the depth limit. */
	CHECK(read_cfg("rpi3", "include config.txt\nkernel=loop\n", &c) == 0);
	CHECK(!strcmp(c.kernel, "loop"));

	/* A missing config.txt: -ENOENT, defaults. */
	snprintf(p, sizeof(p), "%s/none.txt", dir);
	CHECK(config_txt_read(p, qemu_board_find("rpi3")->models, &c) == -ENOENT);
	CHECK(c.arm_64bit == -1 && !*c.kernel);
	CHECK(qemu_board_find("rpi9") == NULL);
	return finish(dir);
}
