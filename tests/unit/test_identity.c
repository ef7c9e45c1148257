/* test_identity.c - identity.c: the labels and ids the image takes from the
 * tree's /etc/fstab and cmdline.txt (fstab_spec, id_spec, identity_resolve):
 * LABEL=/UUID=/PARTUUID=, \040 escapes, comments, the last entry winning,
 * options overriding, contradictions and FAT labels refused with messages
 * naming both places. */
#include <inttypes.h>
#include "check.h"
#include "identity.h"
#include "log.h"

/* The engine's messages, captured: the last error and warning. */
static char last_error[2048], last_warn[2048];

static void sink(enum log_level level, const char *msg)
{
	if (level == LOG_LVL_ERROR)
		snprintf(last_error, sizeof(last_error), "%s", msg);
	else if (level == LOG_LVL_WARN)
		snprintf(last_warn, sizeof(last_warn), "%s", msg);
}

static const char debian_fstab[] =
	"# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"
	"\n"
	"LABEL=RASPIROOT / ext4 rw 0 1\n"
	"  LABEL=RASPIFIRM   /boot/firmware/  vfat rw 0 2\n"
	"proc /proc proc defaults 0 0\n";

static void test_fstab_spec(void)
{
	char spec[256];
	unsigned line = 0;

	CHECK(fstab_spec(debian_fstab, "/", spec, sizeof(spec), &line) == 0);
	CHECK(!strcmp(spec, "LABEL=RASPIROOT") && line == 3, "'%s' line %u", spec, line);
	/* Trailing slashes on either side are the same mount point. */
	CHECK(fstab_spec(debian_fstab, "/boot/firmware", spec, sizeof(spec), &line) == 0);
	CHECK(!strcmp(spec, "LABEL=RASPIFIRM") && line == 4, "'%s' line %u", spec, line);
	CHECK(fstab_spec(debian_fstab, "/boot", spec, sizeof(spec), &line) == -ENOENT);
	/* Comments, a commented entry, tabs, CRLF, no final newline. */
	CHECK(fstab_spec("#LABEL=OLD / ext4\n\t# x\nLABEL=NEW\t/\text4 rw 0 1\r\n", "/", spec,
			 sizeof(spec), &line) == 0);
	CHECK(!strcmp(spec, "LABEL=NEW") && line == 3, "'%s' line %u", spec, line);
	CHECK(fstab_spec("UUID=1234-ABCD /boot vfat", "/boot", spec, sizeof(spec), &line) == 0);
	CHECK(!strcmp(spec, "UUID=1234-ABCD") && line == 1);
	/* \040 is a space, in the spec and in the mount point. */
	CHECK(fstab_spec("LABEL=my\\040root / ext4\n", "/", spec, sizeof(spec), &line) == 0);
	CHECK(!strcmp(spec, "LABEL=my root"), "'%s'", spec);
	CHECK(fstab_spec("LABEL=X /boot/my\\040fw vfat\n", "/boot/my fw", spec, sizeof(spec),
			 &line) == 0 && !strcmp(spec, "LABEL=X"));
	CHECK(fstab_spec("LABEL=a\\134b / ext4\n", "/", spec, sizeof(spec), &line) == 0 &&
	      !strcmp(spec, "LABEL=a\\b"), "'%s'", spec);
	/* Not an escape: kept as written. */
	CHECK(fstab_spec("LABEL=a\\9b / ext4\n", "/", spec, sizeof(spec), &line) == 0 &&
	      !strcmp(spec, "LABEL=a\\9b"), "'%s'", spec);
	/* The last entry for a mount point wins (mount -a stacks them). */
	CHECK(fstab_spec("LABEL=A / ext4\nLABEL=B / ext4\n", "/", spec, sizeof(spec), &line) == 0);
	CHECK(!strcmp(spec, "LABEL=B") && line == 2);
	/* A line with one field, an empty text. */
	CHECK(fstab_spec("LABEL=A\n", "/", spec, sizeof(spec), &line) == -ENOENT);
	CHECK(fstab_spec("", "/", spec, sizeof(spec), &line) == -ENOENT);
}

static void test_id_spec(void)
{
	static const struct { const char *spec; enum id_kind kind; const char *val; } c[] = {
		{ "LABEL=RASPIROOT", ID_LABEL, "RASPIROOT" },
		{ "LABEL=\"a b\"", ID_LABEL, "a b" },
		{ "UUID=1234-ABCD", ID_UUID, "1234-ABCD" },
		{ "PARTUUID=5a1f7e00-02", ID_PARTUUID, "5a1f7e00-02" },
		{ "/dev/disk/by-label/ROOT", ID_LABEL, "ROOT" },
		{ "/dev/disk/by-uuid/1234-ABCD", ID_UUID, "1234-ABCD" },
		{ "/dev/disk/by-partuuid/5a1f7e00-01", ID_PARTUUID, "5a1f7e00-01" },
		{ "/dev/mmcblk0p2", ID_OTHER, NULL },
		{ "LABEL=", ID_OTHER, NULL },
		{ "label=x", ID_OTHER, NULL },
		{ "proc", ID_OTHER, NULL },
	};
	char val[64];

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		enum id_kind k = id_spec(c[i].spec, strlen(c[i].spec), val, sizeof(val));

		CHECK(k == c[i].kind, "'%s': kind %d, want %d", c[i].spec, k, c[i].kind);
		if (k == c[i].kind && c[i].val)
			CHECK(!strcmp(val, c[i].val), "'%s': value '%s'", c[i].spec, val);
	}
}

/* identity_resolve() on fstab and cmdline texts; boot_mnt /boot/firmware. */
static int resolve_label(struct identity *id, const char *fstab, const char *cmdline,
			 const char *boot_label, const char *root_label, uint32_t disk_id,
			 enum rpifs_label label)
{
	struct identity_in in = {
		.fstab = fstab, .fstab_path = "R/etc/fstab",
		.cmdline = cmdline, .cmdline_path = "R/boot/firmware/cmdline.txt",
		.boot_mnt = "/boot/firmware",
		.boot_label = boot_label, .root_label = root_label, .disk_id = disk_id,
		.label = label,
	};

	last_error[0] = last_warn[0] = '\0';
	return identity_resolve(id, &in);
}

static int resolve(struct identity *id, const char *fstab, const char *cmdline,
		   const char *boot_label, const char *root_label, uint32_t disk_id)
{
	return resolve_label(id, fstab, cmdline, boot_label, root_label, disk_id,
			     RPIFS_LABEL_AUTO);
}

static bool has(const char *msg, const char *part)
{
	if (strstr(msg, part))
		return true;
	fprintf(stderr, "  message '%s' lacks '%s'\n", msg, part);
	return false;
}

static void test_resolve(void)
{
	struct identity id;
	static const uint8_t uuid[16] = { 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x49, 0x78,
					  0x86, 0x95, 0xa4, 0xb3, 0xc2, 0xd1, 0xe0, 0xf0 };

	/* Nothing named: today's defaults, ids derived. */
	CHECK(resolve(&id, NULL, NULL, NULL, NULL, 0) == 0);
	CHECK(!strcmp(id.boot_label, "BOOT") && !strcmp(id.root_label, "rootfs"));
	CHECK(!id.disk_id && !id.has_uuid && !id.has_serial);
	CHECK(resolve(&id, "/dev/mmcblk0p2 / ext4\n", "root=/dev/mmcblk0p2", NULL, NULL, 0) == 0);
	CHECK(!strcmp(id.root_label, "rootfs") && !id.disk_id);

	/* Debian's raspi tree. */
	CHECK(resolve(&id, debian_fstab, "console=tty0 root=LABEL=RASPIROOT rw\n", NULL, NULL,
		      0) == 0);
	CHECK(!strcmp(id.boot_label, "RASPIFIRM") && !strcmp(id.root_label, "RASPIROOT"),
	      "'%s' '%s'", id.boot_label, id.root_label);
	CHECK(!last_warn[0], "warned: %s", last_warn);
	/* Options override. */
	CHECK(resolve(&id, debian_fstab, NULL, "MYBOOT", "myroot", 0x1234) == 0);
	CHECK(!strcmp(id.boot_label, "MYBOOT") && !strcmp(id.root_label, "myroot"));
	CHECK(id.disk_id == 0x1234);

	/* Raspberry Pi OS: PARTUUID everywhere, one disk id. */
	CHECK(resolve(&id, "PARTUUID=1a2b3c4d-01 /boot/firmware vfat defaults 0 2\n"
			   "PARTUUID=1a2b3c4d-02 / ext4 defaults,noatime 0 1\n",
		      "console=serial0,115200 root=PARTUUID=1A2B3C4D-02 rootwait", NULL, NULL,
		      0) == 0);
	CHECK(id.disk_id == 0x1a2b3c4d, "%08" PRIx32, id.disk_id);
	CHECK(!strcmp(id.root_label, "rootfs") && !strcmp(id.boot_label, "BOOT"));
	/* cmdline.txt alone, fstab alone. */
	CHECK(resolve(&id, NULL, "root=PARTUUID=0badf00d-02", NULL, NULL, 0) == 0 &&
	      id.disk_id == 0x0badf00d);
	CHECK(resolve(&id, "PARTUUID=0badf00d-02 / ext4\n", NULL, NULL, NULL, 0) == 0 &&
	      id.disk_id == 0x0badf00d);
	/* Another partition number: served, with a warning. */
	CHECK(resolve(&id, "PARTUUID=0badf00d-03 / ext4\n", NULL, NULL, NULL, 0) == 0 &&
	      id.disk_id == 0x0badf00d);
	CHECK(has(last_warn, "R/etc/fstab:1") && has(last_warn, "partition 3"));
	/* A GPT PARTUUID: the label is gpt, partition 2 gets it, no disk id. */
	static const uint8_t gu[16] = { 0x0d, 0x2a, 0x1b, 0x1c, 0x6a, 0x5e, 0x4d, 0x3b,
					0x9c, 0x1e, 0x2b, 0x3a, 0x4c, 0x5d, 0x6e, 0x7f };
	static const uint8_t bu[16] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0x46, 0xa7,
					0x88, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf };
	CHECK(resolve(&id, NULL, "root=PARTUUID=0d2a1b1c-6a5e-4d3b-9c1e-2b3a4c5d6e7f", NULL,
		      NULL, 0) == 0 && !id.disk_id);
	CHECK(id.gpt && id.has_root_partuuid && !id.has_boot_partuuid &&
	      !memcmp(id.root_partuuid, gu, 16));
	CHECK(!last_warn[0], "warned: %s", last_warn);
	/* fstab's boot entry: partition 1's; both spellings of root agree. */
	CHECK(resolve(&id, "PARTUUID=A0A1A2A3-A4A5-46A7-88A9-AAABACADAEAF /boot/firmware vfat\n"
			   "PARTUUID=0d2a1b1c-6a5e-4d3b-9c1e-2b3a4c5d6e7f / ext4\n",
		      "root=PARTUUID=0D2A1B1C-6A5E-4D3B-9C1E-2B3A4C5D6E7F", NULL, NULL, 0) == 0);
	CHECK(id.gpt && id.has_root_partuuid && id.has_boot_partuuid &&
	      !memcmp(id.root_partuuid, gu, 16) && !memcmp(id.boot_partuuid, bu, 16));
	/* --label gpt with nothing named: gpt, ids derived. */
	CHECK(resolve_label(&id, NULL, NULL, NULL, NULL, 0, RPIFS_LABEL_GPT) == 0 && id.gpt &&
	      !id.has_root_partuuid && !id.has_boot_partuuid);
	/* Contradictions: the other form than --label asks, both forms, one
	 * GUID for both partitions, --disk-id with gpt. */
	CHECK(resolve_label(&id, NULL, "root=PARTUUID=0d2a1b1c-6a5e-4d3b-9c1e-2b3a4c5d6e7f",
			    NULL, NULL, 0, RPIFS_LABEL_DOS) == -EINVAL);
	CHECK(has(last_error, "cmdline.txt:1") && has(last_error, "--label dos"));
	CHECK(resolve_label(&id, "PARTUUID=1a2b3c4d-02 / ext4\n", NULL, NULL, NULL, 0,
			    RPIFS_LABEL_GPT) == -EINVAL);
	CHECK(has(last_error, "R/etc/fstab:1") && has(last_error, "--label gpt"));
	CHECK(resolve(&id, "PARTUUID=1a2b3c4d-01 /boot/firmware vfat\n",
		      "root=PARTUUID=0d2a1b1c-6a5e-4d3b-9c1e-2b3a4c5d6e7f", NULL, NULL, 0) == -EINVAL);
	CHECK(has(last_error, "R/etc/fstab:1") && has(last_error, "cmdline.txt:1"));
	CHECK(resolve(&id, "PARTUUID=0d2a1b1c-6a5e-4d3b-9c1e-2b3a4c5d6e7f /boot/firmware vfat\n",
		      "root=PARTUUID=0d2a1b1c-6a5e-4d3b-9c1e-2b3a4c5d6e7f", NULL, NULL, 0) == -EINVAL);
	CHECK(has(last_error, "R/etc/fstab:1") && has(last_error, "alike"));
	CHECK(resolve(&id, NULL, "root=PARTUUID=0d2a1b1c-6a5e-4d3b-9c1e-2b3a4c5d6e7f", NULL,
		      NULL, 0x1234) == -EINVAL);
	CHECK(has(last_error, "--disk-id"));
	/* A malformed PARTUUID with --label gpt: derived, a warning. */
	CHECK(resolve_label(&id, NULL, "root=PARTUUID=0d2a1b1c", NULL, NULL, 0,
			    RPIFS_LABEL_GPT) == 0 && id.gpt && !id.has_root_partuuid);
	CHECK(has(last_warn, "not a GPT partition's id"));
	/* ... and without: dos, as before. */
	CHECK(resolve(&id, NULL, "root=PARTUUID=0d2a1b1c", NULL, NULL, 0) == 0 && !id.gpt);
	CHECK(has(last_warn, "not an MBR partition's id"));

	/* UUIDs: ext4's from / or root=, the FAT serial from the boot entry. */
	CHECK(resolve(&id, "UUID=0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F0 / ext4\n"
			   "UUID=abcd-1234 /boot/firmware vfat\n",
		      "root=UUID=0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0", NULL, NULL, 0) == 0);
	CHECK(id.has_uuid && !memcmp(id.uuid, uuid, 16));
	CHECK(id.has_serial && id.serial == 0xabcd1234, "%08" PRIx32, id.serial);
	CHECK(resolve(&id, "UUID=0f1e2d3c / ext4\n", NULL, NULL, NULL, 0) == -EINVAL);
	CHECK(has(last_error, "R/etc/fstab:1") && has(last_error, "not an ext4 UUID"));
	CHECK(resolve(&id, "UUID=abcd1234 /boot/firmware vfat\n", NULL, NULL, NULL, 0) == -EINVAL);
	CHECK(has(last_error, "not a FAT volume serial"));

	/* \040 in a label. */
	CHECK(resolve(&id, "LABEL=my\\040root / ext4\n", NULL, NULL, NULL, 0) == 0);
	CHECK(!strcmp(id.root_label, "my root"), "'%s'", id.root_label);
	/* LABEL and PARTUUID together: both kept, no contradiction. */
	CHECK(resolve(&id, "LABEL=R / ext4\n", "root=PARTUUID=0badf00d-02", NULL, NULL, 0) == 0);
	CHECK(!strcmp(id.root_label, "R") && id.disk_id == 0x0badf00d);

	/* Contradictions: both places, both values, the option that settles it. */
	CHECK(resolve(&id, debian_fstab, "root=LABEL=OTHER", NULL, NULL, 0) == -EINVAL);
	CHECK(has(last_error, "R/etc/fstab:3") && has(last_error, "LABEL=RASPIROOT") &&
	      has(last_error, "R/boot/firmware/cmdline.txt:1") &&
	      has(last_error, "root=LABEL=OTHER") && has(last_error, "--root-label"));
	CHECK(resolve(&id, debian_fstab, "root=LABEL=OTHER", NULL, "CHOSEN", 0) == 0 &&
	      !strcmp(id.root_label, "CHOSEN"));
	CHECK(!last_error[0], "an error though the option settles it: %s", last_error);
	CHECK(resolve(&id, "PARTUUID=11111111-02 / ext4\n", "root=PARTUUID=22222222-02", NULL,
		      NULL, 0) == -EINVAL);
	CHECK(has(last_error, "R/etc/fstab:1") && has(last_error, "PARTUUID=11111111-02") &&
	      has(last_error, "cmdline.txt:1") && has(last_error, "root=PARTUUID=22222222-02") &&
	      has(last_error, "--disk-id"));
	CHECK(resolve(&id, "PARTUUID=11111111-02 / ext4\n", "root=PARTUUID=22222222-02", NULL,
		      NULL, 0x33) == 0 && id.disk_id == 0x33);
	CHECK(!last_error[0], "an error though --disk-id settles it: %s", last_error);
	/* fstab against itself: the boot and root entries' disk ids. */
	CHECK(resolve(&id, "PARTUUID=11111111-02 / ext4\nPARTUUID=22222222-01 /boot/firmware vfat\n",
		      NULL, NULL, NULL, 0) == -EINVAL);
	CHECK(has(last_error, "R/etc/fstab:1") && has(last_error, "R/etc/fstab:2"));
	CHECK(resolve(&id, "UUID=0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0 / ext4\n",
		      "root=UUID=00000000-4b5a-4978-8695-a4b3c2d1e0f0", NULL, NULL, 0) == -EINVAL);
	CHECK(has(last_error, "ext4 UUID"));
	/* One malformed id written twice: its own problem, not a contradiction. */
	CHECK(resolve(&id, "UUID=0f1e2d3c / ext4\n", "root=UUID=0F1E2D3C", NULL, NULL, 0) ==
	      -EINVAL);
	CHECK(has(last_error, "not an ext4 UUID"));
	/* Equal spellings are no contradiction (PARTUUID hex in any case). */
	CHECK(resolve(&id, "PARTUUID=abcdef01-02 / ext4\n", "root=PARTUUID=ABCDEF01-02", NULL,
		      NULL, 0) == 0 && id.disk_id == 0xabcdef01);

	/* FAT labels: 11 characters at most, upper case. */
	CHECK(resolve(&id, "LABEL=RASPIFIRMWARE /boot/firmware vfat\n", NULL, NULL, NULL, 0) ==
	      -EINVAL);
	CHECK(has(last_error, "R/etc/fstab:1") && has(last_error, "at most 11 characters") &&
	      has(last_error, "--boot-label"));
	CHECK(resolve(&id, "LABEL=RASPIFIRMWAR /boot/firmware vfat\n", NULL, NULL, "ignored", 0) ==
	      -EINVAL);
	CHECK(resolve(&id, "LABEL=RASPIFIRMWARE /boot/firmware vfat\n", NULL, "FW", NULL, 0) == 0 &&
	      !strcmp(id.boot_label, "FW"));
	CHECK(resolve(&id, "LABEL=ABCDEFGHIJK /boot/firmware vfat\n", NULL, NULL, NULL, 0) == 0 &&
	      !strcmp(id.boot_label, "ABCDEFGHIJK"));
	CHECK(resolve(&id, "LABEL=FIRM.WARE /boot/firmware vfat\n", NULL, NULL, NULL, 0) == -EINVAL);
	CHECK(has(last_error, "at most 11 characters"));
	CHECK(resolve(&id, NULL, NULL, "A-LABEL-OF-12", NULL, 0) == -EINVAL);
	CHECK(has(last_error, "--boot-label=A-LABEL-OF-12"));
	CHECK(resolve(&id, "LABEL=raspifirm /boot/firmware vfat\n", NULL, NULL, NULL, 0) == 0);
	CHECK(!strcmp(id.boot_label, "RASPIFIRM"), "'%s'", id.boot_label);
	CHECK(has(last_warn, "upper case") && has(last_warn, "R/etc/fstab:1") &&
	      has(last_warn, "labelled RASPIFIRM"));
	/* The boot entry counts only for the served directory. */
	CHECK(resolve(&id, "LABEL=OLDBOOT /boot vfat\n", NULL, NULL, NULL, 0) == 0 &&
	      !strcmp(id.boot_label, "BOOT"));
	/* ext4 labels: 16 bytes at most when the tree names them. */
	CHECK(resolve(&id, "LABEL=a-label-of-17-bytes / ext4\n", NULL, NULL, NULL, 0) == -EINVAL);
	CHECK(has(last_error, "at most 16 bytes"));
}

int main(void)
{
	log_set_sink(sink);
	test_fstab_spec();
	test_id_spec();
	test_resolve();
	return check_done();
}
