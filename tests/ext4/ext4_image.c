/* ext4_image.c - test driver: the ext4 builder alone, without FUSE.
 *
 *   ext4_image [--keep-times] [--root-owner] [--skip REL] [--size BYTES]
 *              [--time SECONDS] ROOT OUT.img
 *
 * Scans ROOT, builds the ext4 filesystem at offset 0 of a partition of
 * --size bytes (default: ext4_size_needed + 25 %), reads every region back
 * and writes OUT.img (sparse: zero regions are skipped). Prints the size
 * ext4_size_needed returned. Exit 0, or 1 with the builder's messages;
 * exit 2 when the builder reported ENOSPC.
 *
 * It covers what the daemon has no option for (keep_atime_ctime) and lets
 * the tests drive ext4_build with exact sizes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ext4_build.h"
#include "log.h"
#include "regions.h"
#include "tree.h"

static int read_file_region(void *ctx, uint32_t id, void *buf, size_t len,
			    uint64_t off)
{
	return srcfiles_pread(ctx, id, buf, len, off);
}

int main(int argc, char **argv)
{
	struct ext4_opts o = { .label = "rootfs", .fs_time = 1700000000 };
	struct tree_scan_opts so = { .xattrs = true };
	const struct tree_node *skip = NULL;
	const char *skip_rel = NULL;
	struct regions map;
	struct tree t;
	uint64_t need = 0, size = 0, off;
	static uint8_t buf[1 << 20];
	int i, fd, ret, rc;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--keep-times"))
			o.keep_atime_ctime = true;
		else if (!strcmp(argv[i], "--root-owner"))
			o.root_owner = true;
		else if (!strcmp(argv[i], "--skip") && i + 1 < argc)
			skip_rel = argv[++i];
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--time") && i + 1 < argc)
			o.fs_time = strtoll(argv[++i], NULL, 0);
		else
			break;
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: ext4_image [--keep-times] [--root-owner] "
			"[--skip REL] [--size BYTES] [--time S] ROOT OUT.img\n");
		return 1;
	}
	if (tree_scan(&t, argv[i], &so) < 0)
		return 1;
	regions_init(&map);
	rc = 1;
	if (skip_rel)
		skip = tree_lookup(&t, t.root, skip_rel);
	memset(o.uuid, 0x42, sizeof(o.uuid));
	memset(o.hash_seed, 0x17, sizeof(o.hash_seed));
	if (ext4_size_needed(&t, skip, o.hash_seed, &need) < 0)
		goto out;
	printf("needed %" PRIu64 "\n", need);
	if (!size)
		size = (need + need / 4 + 4095) & ~4095ull;
	o.part_size = size;

	ret = ext4_build(&t, skip, &o, &map);
	if (ret == -ENOSPC)
		rc = 2;
	if (ret < 0 || regions_finalize(&map, size) < 0)
		goto out;
	fd = open(argv[i + 1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		perror(argv[i + 1]);
		goto out;
	}
	for (off = 0; off < size;) {
		struct region gap;
		const struct region *g = regions_piece(&map, regions_find(&map, off), off,
						       &gap);
		uint64_t end = g->start + g->len;
		size_t n = end - off < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);

		if (g->kind == REGION_ZERO) {
			off = end;
			continue;
		}
		if (regions_read(&map, buf, n, off, read_file_region,
				 &t.files) < 0 ||
		    pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			fprintf(stderr, "reading/writing at %" PRIu64 " failed\n", off);
			close(fd);
			goto out;
		}
		off += n;
	}
	rc = close(fd) ? 1 : 0;
out:
	regions_free(&map);
	tree_free(&t);
	return rc;
}
