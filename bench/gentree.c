/* gentree.c - write a synthetic source tree for the scaling benchmark.
 *
 *   gentree DIR NFILES [PER_DIR]
 *
 * DIR/boot holds config.txt and cmdline.txt (a Pi boot directory); the
 * NFILES small regular files (1 to 2048 bytes, deterministic contents) are
 * spread over DIR/dNNNNN directories of PER_DIR (default 1000) files each.
 * DIR must not exist; the tree is written to DIR.tmp and renamed, so an
 * interrupted run leaves no half tree under DIR.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what, const char *path)
{
	fprintf(stderr, "gentree: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void put(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);

	if (fd < 0)
		die("create", path);
	if (len && write(fd, data, len) != (ssize_t)len)
		die("write", path);
	if (close(fd))
		die("close", path);
}

int main(int argc, char **argv)
{
	static char data[4096];
	char tmp[4096], path[4200];
	unsigned long n, per = 1000;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: gentree DIR NFILES [PER_DIR]\n");
		return 2;
	}
	n = strtoul(argv[2], NULL, 10);
	if (argc == 4)
		per = strtoul(argv[3], NULL, 10);
	if (!n || !per || strlen(argv[1]) > 4000)
		return 2;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + (i * 7 + i / 64) % 26);

	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	if (mkdir(tmp, 0755))
		die("mkdir", tmp);
	snprintf(path, sizeof(path), "%s/boot", tmp);
	if (mkdir(path, 0755))
		die("mkdir", path);
	snprintf(path, sizeof(path), "%s/boot/config.txt", tmp);
	put(path, "arm_64bit=1\nkernel=kernel8.img\n", 31);
	snprintf(path, sizeof(path), "%s/boot/cmdline.txt", tmp);
	put(path, "console=serial0,115200 root=PARTUUID=b0b0b0b0-02 rootwait\n", 58);

	for (unsigned long i = 0; i < n; i++) {
		size_t len = 1 + (size_t)((i * 2654435761ul) % 2048);

		if (i % per == 0) {
			snprintf(path, sizeof(path), "%s/d%05lu", tmp, i / per);
			if (mkdir(path, 0755))
				die("mkdir", path);
		}
		snprintf(path, sizeof(path), "%s/d%05lu/f%06lu", tmp, i / per, i);
		put(path, data + i % 1024, len);
	}
	if (rename(tmp, argv[1]))
		die("rename to", argv[1]);
	return 0;
}
