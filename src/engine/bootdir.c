/* bootdir.c - which directory of the tree is the boot partition (rpifs.h,
 * rpifs_boot_dir()): the one rule, shared by the mount, the nbdkit plugin,
 * `rpifs flash`/`export` (through rpifs_opts) and `rpifs qemu`.
 *
 * Debian (bookworm and later, raspi-firmware) and Raspberry Pi OS mount the
 * FAT partition on /boot/firmware and keep the firmware's files there; /boot
 * then holds the kernel packages' own copies, which belong in ext4. Older
 * trees, and those `rpifs build` makes, have them in /boot. config.txt is
 * what the firmware reads first: where it is, the boot partition is.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "rpifs.h"
#include "srcfile.h"

const char *rpifs_boot_dir(const char *rootfs)
{
	/* Symlinks resolve inside the tree, as the scan's tree_lookup() does:
	 * an absolute boot -> /boot must not find the host's config.txt. */
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	struct stat st;
	long fd;
	int root;
	bool found = false;

	root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return "boot";
	fd = syscall(SYS_openat2, root, "boot/firmware/config.txt", &how, sizeof(how));
	/* No openat2 (kernels before 5.6, valgrind): the tree's own walk,
	 * which takes no symlinks at all, rather than the host's. */
	if (fd < 0 && errno == ENOSYS)
		fd = srcfile_open_beneath(root, "boot/firmware/config.txt", O_PATH);
	if (fd >= 0) {
		found = fstat((int)fd, &st) == 0 && S_ISREG(st.st_mode);
		close((int)fd);
	}
	close(root);
	return found ? "boot/firmware" : "boot";
}
