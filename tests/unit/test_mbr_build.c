/* test_mbr_build.c - mbr_build() (src/engine/mbr.c) writes the table asked for.
 *
 * The 512-byte sector is parsed here, field by field (disk id at 440, the
 * four 16-byte entries at 446: status, type, LBA start, sector count; 0x55AA
 * at 510), and read again by sfdisk from a sparse file of the disk's size,
 * so that a table this parser misreads the same way mbr_build() wrote it
 * still fails. Then the refusals: disk id 0, more than 4 partitions, a size
 * not in sectors, a partition past the end, overlapping partitions.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "mbr.h"

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
	return finish(dir);
}
