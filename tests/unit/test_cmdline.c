/* test_cmdline.c - cmdline_disk_id(): which disk id a boot/cmdline.txt line
 * names. The mount writes it into the MBR and `rpifs build config` keeps it;
 * both read it with this one function (cmdline.h has the rules). */
#include <errno.h>
#include <inttypes.h>
#include "check.h"
#include "cmdline.h"

struct tcase {
	const char *line;
	int ret;               /* 0, -ENOENT or -EINVAL */
	uint32_t id;           /* when ret is 0 */
};

static const struct tcase cases[] = {
	/* What `rpifs build config` writes. */
	{ "console=ttyS1,115200 console=ttyAMA0,115200 root=PARTUUID=5a1f7e00-02 "
	  "rootfstype=ext4 rootwait\n", 0, 0x5a1f7e00 },
	/* resume= before root=: root= counts (the mount once took resume's). */
	{ "resume=PARTUUID=aaaaaaaa-03 root=PARTUUID=12345678-02", 0, 0x12345678 },
	{ "root=PARTUUID=12345678-02 resume=PARTUUID=aaaaaaaa-03", 0, 0x12345678 },
	{ "resume=PARTUUID=aaaaaaaa-03 root=/dev/mmcblk0p2", -EINVAL, 0 },
	{ "PARTUUID=aaaaaaaa-02 rootwait", -ENOENT, 0 },
	{ "noroot=PARTUUID=aaaaaaaa-02", -ENOENT, 0 },
	/* The last root= wins, as in the kernel. */
	{ "root=PARTUUID=11111111-02 root=PARTUUID=22222222-02", 0, 0x22222222 },
	{ "root=PARTUUID=11111111-02 root=/dev/sda2", -EINVAL, 0 },
	/* root= absent, or of another form. */
	{ "", -ENOENT, 0 },
	{ "\n", -ENOENT, 0 },
	{ "console=ttyAMA0 rootwait", -ENOENT, 0 },
	{ "rootfstype=ext4 rootwait", -ENOENT, 0 },
	{ "root=LABEL=rootfs rootwait", -EINVAL, 0 },
	{ "root=/dev/mmcblk0p2 rootwait", -EINVAL, 0 },
	{ "root=", -EINVAL, 0 },
	{ "root=PARTUUID=", -EINVAL, 0 },
	{ "root=PARTUUID=0d2a1b1c-6a5e-4d3b-9c1e-2b3a4c5d6e7f", -EINVAL, 0 },   /* GPT */
	{ "root=PARTUUID=1234567-02", -EINVAL, 0 },      /* 7 digits */
	{ "root=PARTUUID=123456789-02", -EINVAL, 0 },    /* 9 digits */
	{ "root=PARTUUID=1234567g-02", -EINVAL, 0 },
	{ "root=PARTUUID=12345678-2", -EINVAL, 0 },      /* the kernel matches "%02x" */
	{ "root=PARTUUID=12345678-002", -EINVAL, 0 },
	{ "root=PARTUUID=12345678", -EINVAL, 0 },
	{ "root=PARTUUID=12345678_02", -EINVAL, 0 },
	{ "root=PARTUUID=12345678-02/PARTNROFF=1", -EINVAL, 0 },
	{ "root=PARTUUID= 1234567-02", -EINVAL, 0 },     /* strtoul would skip the space */
	{ "root=PARTUUID=0x123456-02", -EINVAL, 0 },     /* ... and take the 0x */
	{ "root=PARTUUID=+1234567-02", -EINVAL, 0 },
	{ "root=PARTUUID=00000000-02", -EINVAL, 0 },     /* 0 is "no id" */
	{ "root=partuuid=12345678-02", -EINVAL, 0 },
	{ "ROOT=PARTUUID=12345678-02", -ENOENT, 0 },
	/* Upper and lower case hex. */
	{ "root=PARTUUID=ABCDEF01-02", 0, 0xabcdef01 },
	{ "root=PARTUUID=AbCdEf01-0A", 0, 0xabcdef01 },
	{ "root=PARTUUID=deadbeef-02", 0, 0xdeadbeef },
	/* Whitespace: trailing newline, spaces, tabs, CRLF, none at all. */
	{ "root=PARTUUID=0badf00d-02", 0, 0x0badf00d },
	{ "root=PARTUUID=0badf00d-02\n", 0, 0x0badf00d },
	{ "root=PARTUUID=0badf00d-02   \n\n", 0, 0x0badf00d },
	{ "root=PARTUUID=0badf00d-02\r\n", 0, 0x0badf00d },
	{ "  \t console=serial0\troot=PARTUUID=0badf00d-02\t rootwait  ", 0, 0x0badf00d },
	{ "root=PARTUUID=0badf00d-02 \n", 0, 0x0badf00d },
	/* Only the first line: the firmware passes no more. */
	{ "console=ttyAMA0\nroot=PARTUUID=0badf00d-02\n", -ENOENT, 0 },
	{ "root=PARTUUID=11111111-02\nroot=PARTUUID=22222222-02\n", 0, 0x11111111 },
	/* Quotes, as the kernel's next_arg() reads them. */
	{ "root=\"PARTUUID=0badf00d-02\"", 0, 0x0badf00d },
	{ "\"root=PARTUUID=0badf00d-02\"", 0, 0x0badf00d },
	{ "dyndbg=\"x root=PARTUUID=aaaaaaaa-02\" root=PARTUUID=0badf00d-02", 0, 0x0badf00d },
	{ "dyndbg=\"x root=PARTUUID=aaaaaaaa-02\"", -ENOENT, 0 },
	/* After "--": init's arguments. */
	{ "root=PARTUUID=0badf00d-02 -- root=PARTUUID=aaaaaaaa-02", 0, 0x0badf00d },
	{ "console=ttyAMA0 -- root=PARTUUID=aaaaaaaa-02", -ENOENT, 0 },
	{ "console=ttyAMA0 --x root=PARTUUID=aaaaaaaa-02", 0, 0xaaaaaaaa },
};

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		uint32_t id = 0x5eed;
		int ret = cmdline_disk_id(c->line, &id);

		CHECK(ret == c->ret, "'%s': returned %d, want %d", c->line, ret, c->ret);
		if (c->ret == 0)
			CHECK(id == c->id, "'%s': disk id %08" PRIx32 ", want %08" PRIx32, c->line,
			      id, c->id);
		else
			CHECK(id == 0x5eed, "'%s': *disk_id written on failure", c->line);
	}
	if (failures)
		fprintf(stderr, "%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
