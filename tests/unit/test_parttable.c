/* test_parttable.c - parttable_build() (src/engine/parttable.c) writes the
 * table asked for.
 *
 * dos: the 512-byte sector is parsed here, field by field (disk id at 440, the
 * four 16-byte entries at 446: status, type, LBA start, sector count; 0x55AA
 * at 510), and read again by sfdisk from a sparse file of the disk's size,
 * so that a table this parser misreads the same way mbr_build() wrote it
 * still fails. Then the refusals: disk id 0, more than 4 partitions, a size
 * not in sectors, a partition past the end, overlapping partitions.
 *
 * gpt: the head and tail written into a sparse file of the disk's size and
 * read by sfdisk --dump (label, disk GUID, each partition's start, size,
 * type, GUID and name), twice for the same bytes; the backup header's
 * signature where sfdisk looks for it, a partition over the backup refused.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "parttable.h"

/* The dos table as the test describes it. */
struct mbr_part {
	uint64_t start, size;
	uint8_t type;
	bool bootable;
};

static int mbr_build(uint64_t disk_size, uint32_t disk_id, const struct mbr_part *parts,
		     size_t n, uint8_t sector[512])
{
	struct parttable t = { .label = PT_DOS, .disk_size = disk_size, .disk_id = disk_id,
			       .n = n };

	for (size_t i = 0; i < n && i < PT_MAX_PARTS; i++)
		t.parts[i] = (struct pt_part){ .start = parts[i].start, .size = parts[i].size,
					       .dos_type = parts[i].type,
					       .bootable = parts[i].bootable };
	return parttable_build(&t, sector, NULL);
}

#define MIB ((uint64_t)1024 * 1024)

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The sector holds exactly parts[n] (the other entries empty). */
static void check_sector(const uint8_t s[512], uint32_t disk_id,
			 const struct mbr_part *parts, size_t n, const char *what)
{
	CHECK(s[510] == 0x55 && s[511] == 0xaa, "%s: signature %02x%02x", what, s[510], s[511]);
	CHECK(le32(s + 440) == disk_id, "%s: disk id %08" PRIx32 ", want %08" PRIx32,
	      what, le32(s + 440), disk_id);
	for (size_t i = 0; i < 4; i++) {
		const uint8_t *e = s + 446 + 16 * i;

		if (i >= n) {
			static const uint8_t empty[16];

			CHECK(!memcmp(e, empty, 16), "%s: entry %zu not empty", what, i + 1);
			continue;
		}
		CHECK(e[0] == (parts[i].bootable ? 0x80 : 0x00), "%s: entry %zu status %02x",
		      what, i + 1, e[0]);
		CHECK(e[4] == parts[i].type, "%s: entry %zu type %02x, want %02x", what, i + 1,
		      e[4], parts[i].type);
		CHECK(le32(e + 8) == parts[i].start / 512, "%s: entry %zu start %" PRIu32
		      ", want %" PRIu64, what, i + 1, le32(e + 8), parts[i].start / 512);
		CHECK(le32(e + 12) == parts[i].size / 512, "%s: entry %zu sectors %" PRIu32
		      ", want %" PRIu64, what, i + 1, le32(e + 12), parts[i].size / 512);
	}
}

/* sfdisk's reading of the sector, on a sparse disk of disk_size bytes. */
static void check_sfdisk(const char *dir, const uint8_t s[512], uint64_t disk_size,
			 uint32_t disk_id, const struct mbr_part *parts, size_t n,
			 const char *what)
{
	char img[512], cmd[1024], line[512], want[256];
	size_t lines = 0, matched = 0;
	bool label = false, id = false;
	FILE *p;
	int fd;

	snprintf(img, sizeof(img), "%s/disk.img", dir);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	must(fd >= 0, img);
	must(ftruncate(fd, (off_t)disk_size) == 0 && pwrite(fd, s, 512, 0) == 512, img);
	close(fd);
	snprintf(cmd, sizeof(cmd), "sfdisk --dump '%s' 2>&1", img);
	p = popen(cmd, "r");
	must(p != NULL, "popen sfdisk");
	while (fgets(line, sizeof(line), p)) {
		char want_id[32];

		snprintf(want_id, sizeof(want_id), "label-id: 0x%08" PRIx32 "\n", disk_id);
		label |= !strcmp(line, "label: dos\n");
		id |= !strcmp(line, want_id);
		if (!strncmp(line, img, strlen(img))) {
			lines++;
			for (size_t i = 0; i < n; i++) {
				/* "IMG1 : start=        8192, size=      524288, type=c, bootable" */
				snprintf(want, sizeof(want), "start=%12" PRIu64 ", size=%12" PRIu64
					 ", type=%x%s\n", parts[i].start / 512, parts[i].size / 512,
					 parts[i].type, parts[i].bootable ? ", bootable" : "");
				if (strstr(line, want))
					matched++;
			}
		}
	}
	CHECK(pclose(p) == 0, "%s: sfdisk --dump failed", what);
	CHECK(label, "%s: sfdisk does not see a dos label", what);
	CHECK(id, "%s: sfdisk does not see disk id %08" PRIx32, what, disk_id);
	CHECK(lines == n && matched == n, "%s: sfdisk lists %zu partitions, %zu as asked, want %zu",
	      what, lines, matched, n);
}

static void one(const char *dir, uint64_t disk_size, uint32_t disk_id,
		const struct mbr_part *parts, size_t n, const char *what)
{
	uint8_t s[512];

	memset(s, 0xee, sizeof(s));
	CHECK(mbr_build(disk_size, disk_id, parts, n, s) == 0, "%s: mbr_build", what);
	check_sector(s, disk_id, parts, n, what);
	check_sfdisk(dir, s, disk_size, disk_id, parts, n, what);
}

/* sfdisk --dump of a gpt disk: every line the table asks for is there. */
static void gpt_one(const char *dir, const struct parttable *t, const char *what)
{
	uint8_t *head = malloc(PT_GPT_HEAD_BYTES), *tail = malloc(PT_GPT_TAIL_BYTES);
	uint8_t *head2 = malloc(PT_GPT_HEAD_BYTES), *tail2 = malloc(PT_GPT_TAIL_BYTES);
	char img[512], cmd[1024], line[512], want[8][256], u[37];
	size_t nwant = 0, found[8] = { 0 };
	FILE *p;
	int fd;

	must(head && tail && head2 && tail2, "malloc");
	CHECK(parttable_build(t, head, tail) == 0, "%s: parttable_build", what);
	CHECK(parttable_build(t, head2, tail2) == 0, "%s: parttable_build again", what);
	CHECK(!memcmp(head, head2, PT_GPT_HEAD_BYTES) && !memcmp(tail, tail2, PT_GPT_TAIL_BYTES),
	      "%s: two builds of one table differ", what);
	/* The protective MBR: one entry of type 0xee from LBA 1. */
	CHECK(head[510] == 0x55 && head[511] == 0xaa && head[446 + 4] == 0xee,
	      "%s: no protective MBR", what);
	CHECK(!memcmp(head + 512, "EFI PART", 8), "%s: no primary header at LBA 1", what);
	CHECK(!memcmp(tail + PT_GPT_TAIL_BYTES - 512, "EFI PART", 8),
	      "%s: no backup header in the last sector", what);

	snprintf(img, sizeof(img), "%s/gpt.img", dir);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	must(fd >= 0, img);
	must(ftruncate(fd, (off_t)t->disk_size) == 0 &&
	     pwrite(fd, head, PT_GPT_HEAD_BYTES, 0) == (ssize_t)PT_GPT_HEAD_BYTES &&
	     pwrite(fd, tail, PT_GPT_TAIL_BYTES, (off_t)(t->disk_size - PT_GPT_TAIL_BYTES)) ==
	     (ssize_t)PT_GPT_TAIL_BYTES, img);
	close(fd);

	snprintf(want[nwant++], 256, "label: gpt\n");
	parttable_uuid_str(t->disk_guid, u);
	for (char *c = u; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	snprintf(want[nwant++], 256, "label-id: %s\n", u);
	for (size_t i = 0; i < t->n; i++) {
		parttable_uuid_str(t->parts[i].uuid, u);
		for (char *c = u; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		/* "IMG1 : start=8192, size=524288, type=EBD0..., uuid=..., name=\"boot\"" */
		snprintf(want[nwant++], 256, "start=%12" PRIu64 ", size=%12" PRIu64 ", type=%s, "
			 "uuid=%s, name=\"%s\"\n", t->parts[i].start / 512, t->parts[i].size / 512,
			 t->parts[i].gpt_type, u, t->parts[i].name);
	}
	snprintf(cmd, sizeof(cmd), "sfdisk --dump '%s' 2>&1", img);
	p = popen(cmd, "r");
	must(p != NULL, "popen sfdisk");
	while (fgets(line, sizeof(line), p))
		for (size_t i = 0; i < nwant; i++)
			found[i] += strstr(line, want[i]) != NULL;
	CHECK(pclose(p) == 0, "%s: sfdisk --dump failed", what);
	for (size_t i = 0; i < nwant; i++)
		CHECK(found[i] == 1, "%s: sfdisk --dump has no line with '%s'", what, want[i]);
	free(head);
	free(tail);
	free(head2);
	free(tail2);
}

static void test_gpt(const char *dir)
{
	struct parttable t = {
		.label = PT_GPT, .disk_size = 1024 * MIB, .n = 2,
		.disk_guid = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
			       0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 },
		.parts = {
			{ .start = 4 * MIB, .size = 256 * MIB,
			  .gpt_type = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", .name = "boot",
			  .uuid = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0x46, 0xa7,
				    0x88, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf } },
			{ .start = 260 * MIB, .size = 1024 * MIB - 260 * MIB - 64 * 1024,
			  .gpt_type = "0FC63DAF-8483-4772-8E79-3D69D8477DE4", .name = "rootfs",
			  .uuid = { 0x0d, 0x2a, 0x1b, 0x1c, 0x6a, 0x5e, 0x4d, 0x3b,
				    0x9c, 0x1e, 0x2b, 0x3a, 0x4c, 0x5d, 0x6e, 0x7f } },
		},
	};
	uint8_t head[PT_GPT_HEAD_BYTES], tail[PT_GPT_TAIL_BYTES];

	gpt_one(dir, &t, "gpt, rpifs layout");
	t.n = 1;
	gpt_one(dir, &t, "gpt, one partition");
	/* Partition 2 over the backup entries: refused. */
	t.n = 2;
	t.parts[1].size = 1024 * MIB - 260 * MIB;
	CHECK(parttable_build(&t, head, tail) < 0, "gpt: a partition over the backup table");
	CHECK(parttable_build(&t, head, NULL) == -EINVAL, "gpt: no tail buffer");
}

int main(void)
{
	char dir[] = "/tmp/rpifs-mbr.XXXXXX";
	uint8_t s[512];

	must(mkdtemp(dir) != NULL, "mkdtemp");

	/* rpifs's own layout: FAT32 at 4 MiB, bootable; ext4 after it to the end. */
	const struct mbr_part pi[] = {
		{ 4 * MIB, 256 * MIB, 0x0c, true },
		{ 260 * MIB, 1024 * MIB - 260 * MIB, 0x83, false },
	};
	one(dir, 1024 * MIB, 0x5452574b, pi, 2, "rpifs layout");

	/* Other flags, types, an unaligned start, a high disk id, a gap, four
	 * partitions. */
	const struct mbr_part other[] = {
		{ 1 * MIB, 3 * MIB, 0x83, false },
		{ 4 * MIB + 512, 8 * MIB - 512, 0x0c, true },
		{ 16 * MIB, 16 * MIB, 0x83, false },
		{ 64 * MIB, 64 * MIB, 0x0c, false },
	};
	one(dir, 128 * MIB, 0xfedcba98, other, 4, "four partitions");
	one(dir, 128 * MIB, 1, other + 2, 1, "one partition");
	one(dir, 128 * MIB, 0x12345678, other, 0, "no partition");

	/* Refusals, the sector untouched where it is refused up front. */
	memset(s, 0xee, sizeof(s));
	CHECK(mbr_build(1024 * MIB, 0, pi, 2, s) == -EINVAL, "disk id 0");
	CHECK(mbr_build(128 * MIB, 1, other, 5, s) == -EINVAL, "5 partitions");
	CHECK(mbr_build(1024 * MIB + 100, 1, pi, 2, s) == -EINVAL, "size not in sectors");
	CHECK(s[0] == 0xee && s[511] == 0xee, "a refused table wrote the sector");
	const struct mbr_part past[] = { { 4 * MIB, 200 * MIB, 0x83, false } };
	CHECK(mbr_build(128 * MIB, 1, past, 1, s) < 0, "a partition past the end");
	const struct mbr_part overlap[] = {
		{ 4 * MIB, 16 * MIB, 0x0c, true }, { 8 * MIB, 16 * MIB, 0x83, false },
	};
	CHECK(mbr_build(128 * MIB, 1, overlap, 2, s) < 0, "overlapping partitions");

	test_gpt(dir);
	return finish(dir);
}
