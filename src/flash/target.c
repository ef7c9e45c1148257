/* target.c - the checks on a flash target and its I/O. A card reader's
 * device is easy to confuse with the disk the system runs from: every
 * refusal names what was found (the mount point, the holder, the size) and
 * what to do, and comes before a byte is written. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libfdisk/libfdisk.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/fs.h>
#include <unistd.h>
#include "log.h"
#include "target.h"

#define MAX_DEVS 128            /* a disk's partitions, a tree of holders */

struct devset {
	dev_t dev[MAX_DEVS];
	char name[MAX_DEVS][64];
	int n;
};

static void devset_add(struct devset *s, dev_t dev, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (s->dev[i] == dev)
			return;
	if (s->n < MAX_DEVS) {
		s->dev[s->n] = dev;
		size_t l = strnlen(name, sizeof(s->name[0]) - 1);

		memcpy(s->name[s->n], name, l);
		s->name[s->n][l] = '\0';
		s->n++;
	}
}

static int devset_find(const struct devset *s, dev_t dev)
{
	for (int i = 0; i < s->n; i++)
		if (s->dev[i] == dev)
			return i;
	return -1;
}

/* "MAJ:MIN\n" in a sysfs file. */
static bool read_dev(const char *path, dev_t *dev)
{
	FILE *f = fopen(path, "re");
	unsigned ma, mi;
	bool ok;

	if (!f)
		return false;
	ok = fscanf(f, "%u:%u", &ma, &mi) == 2;
	fclose(f);
	if (ok)
		*dev = makedev(ma, mi);
	return ok;
}

/* The device's directory in sysfs (/sys/devices/.../block/sdb[/sdb1]). */
static bool sysfs_dir(dev_t dev, char *out)
{
	char p[64];

	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	return realpath(p, out) != NULL;
}

static bool has_file(const char *dir, const char *name)
{
	char p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* The whole disks a device lives on: a partition's disk; through
 * device-mapper and md (slaves/) the disks below. */
static void disks_of(dev_t dev, struct devset *out, int depth)
{
	char dir[PATH_MAX], sub[PATH_MAX + 300];
	struct dirent *e;
	DIR *d;
	bool below = false;

	if (depth > 8 || !sysfs_dir(dev, dir))
		return;
	if (has_file(dir, "partition")) {
		char *slash = strrchr(dir, '/');

		if (slash)
			*slash = '\0';
		snprintf(sub, sizeof(sub), "%s/dev", dir);
		if (!read_dev(sub, &dev))
			return;
	}
	snprintf(sub, sizeof(sub), "%s/slaves", dir);
	d = opendir(sub);
	while (d && (e = readdir(d))) {
		char p[PATH_MAX + 600];
		dev_t s;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/dev", sub, e->d_name);
		if (read_dev(p, &s)) {
			disks_of(s, out, depth + 1);
			below = true;
		}
	}
	if (d)
		closedir(d);
	if (!below)
		devset_add(out, dev, strrchr(dir, '/') + 1);
}

/* The target and its partitions. */
static void target_devs(const char *dir, dev_t dev, struct devset *out)
{
	struct dirent *e;
	DIR *d;

	devset_add(out, dev, strrchr(dir, '/') + 1);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		char p[PATH_MAX + 600];
		dev_t pd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/partition", dir, e->d_name);
		if (access(p, F_OK) < 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s/dev", dir, e->d_name);
		if (read_dev(p, &pd))
			devset_add(out, pd, e->d_name);
	}
	if (d)
		closedir(d);
}

/* A mount of one of devs (by the device number mountinfo shows, or by its
 * source's: btrfs shows an anonymous number). */
static int check_mounts(const struct target *t, const struct devset *devs)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	int ret = 0;

	if (!f) {
		log_error("/proc/self/mountinfo: %s (cannot tell whether %s is mounted; is "
			  "/proc mounted?)", strerror(errno), t->path);
		return -errno;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		char mp[4096], src[4096] = "", *sep;
		unsigned ma, mi;
		struct stat st;
		int i;

		if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &ma, &mi, mp) != 3)
			continue;
		sep = strstr(line, " - ");
		if (sep)
			sscanf(sep + 3, "%*s %4095s", src);
		i = devset_find(devs, makedev(ma, mi));
		if (i < 0 && src[0] == '/' && stat(src, &st) == 0 && S_ISBLK(st.st_mode))
			i = devset_find(devs, st.st_rdev);
		if (i >= 0) {
			log_error("DEVICE %s: %s is mounted on %s: unmount it first (umount %s); "
				  "nothing was written", t->path, devs->name[i], mp, mp);
			ret = -EBUSY;
		}
	}
	fclose(f);
	return ret;
}

/* device-mapper, md, bcache... on the disk or a partition. */
static int check_holders(const struct target *t, const struct devset *devs)
{
	for (int i = 0; i < devs->n; i++) {
		char dir[PATH_MAX], p[PATH_MAX + 16];
		struct dirent *e;
		DIR *d;

		if (!sysfs_dir(devs->dev[i], dir))
			continue;
		snprintf(p, sizeof(p), "%s/holders", dir);
		d = opendir(p);
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			log_error("DEVICE %s: %s is in use by %s (device-mapper, LVM, RAID or "
				  "dm-crypt): stop that first; nothing was written", t->path,
				  devs->name[i], e->d_name);
			closedir(d);
			return -EBUSY;
		}
		if (d)
			closedir(d);
	}
	return 0;
}

/* The disk of / and of each swap area. */
static int check_system_disk(const struct target *t, const struct devset *disk)
{
	struct devset sys = { .n = 0 };
	struct stat st;
	char line[4096];
	FILE *f;

	if (stat("/", &st) == 0)
		disks_of(st.st_dev, &sys, 0);
	/* / as mountinfo names it (btrfs: an anonymous st_dev). */
	f = fopen("/proc/self/mountinfo", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char mp[4096], src[4096] = "", *sep = strstr(line, " - ");

		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 || strcmp(mp, "/"))
			continue;
		if (sep && sscanf(sep + 3, "%*s %4095s", src) == 1 && src[0] == '/' &&
		    stat(src, &st) == 0 && S_ISBLK(st.st_mode))
			disks_of(st.st_rdev, &sys, 0);
	}
	if (f)
		fclose(f);
	for (int i = 0; i < sys.n; i++)
		if (devset_find(disk, sys.dev[i]) >= 0) {
			log_error("DEVICE %s: this is the disk holding / (the running system): "
				  "pick the SD card's device (lsblk lists them); nothing was "
				  "written", t->path);
			return -EBUSY;
		}
	f = fopen("/proc/swaps", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char name[4096];
		struct devset sw = { .n = 0 };

		if (sscanf(line, "%4095s", name) != 1 || name[0] != '/' || stat(name, &st) < 0)
			continue;
		disks_of(S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev, &sw, 0);
		for (int i = 0; i < sw.n; i++)
			if (devset_find(disk, sw.dev[i]) >= 0) {
				log_error("DEVICE %s: holds the swap area %s: swapoff %s first, "
					  "or pick another device; nothing was written", t->path,
					  name, name);
				fclose(f);
				return -EBUSY;
			}
	}
	if (f)
		fclose(f);
	return 0;
}

static int open_blk(struct target *t, const struct stat *st)
{
	struct devset devs = { .n = 0 }, disk = { .n = 0 };
	char dir[PATH_MAX];
	int ret;

	if (!sysfs_dir(st->st_rdev, dir)) {
		log_error("DEVICE %s: no such block device in /sys/dev/block (%u:%u)", t->path,
			  major(st->st_rdev), minor(st->st_rdev));
		return -ENODEV;
	}
	{
		const char *b = strrchr(dir, '/') + 1;
		size_t l = strnlen(b, sizeof(t->name) - 1);

		memcpy(t->name, b, l);
		t->name[l] = '\0';
	}
	target_devs(dir, st->st_rdev, &devs);
	disks_of(st->st_rdev, &disk, 0);
	if ((ret = check_mounts(t, &devs)) < 0 || (ret = check_holders(t, &devs)) < 0 ||
	    (ret = check_system_disk(t, &disk)) < 0)
		return ret;
	/* The kernel's own check, and it keeps anyone from mounting the
	 * device while it is being written. */
	t->fd = open(t->path, O_RDWR | O_EXCL | O_CLOEXEC | O_DIRECT);
	if (t->fd >= 0)
		t->direct = true;
	else if (errno == EINVAL)
		t->fd = open(t->path, O_RDWR | O_EXCL | O_CLOEXEC);
	if (t->fd < 0) {
		ret = -errno;
		log_error("DEVICE %s: %s%s; nothing was written", t->path, strerror(errno),
			  errno == EBUSY ? " (mounted or in use by the kernel: unmount it)" :
			  errno == EACCES ? " (run as root, or join the disk group)" : "");
		return ret;
	}
	if (ioctl(t->fd, BLKGETSIZE64, &t->size) < 0) {
		log_error("DEVICE %s: cannot get its size: %s", t->path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* path (or, not existing yet, its directory) inside the tree: the image
 * would be written into what it is built from. */
static bool inside(const char *path, const char *rootfs)
{
	char rp[PATH_MAX], rr[PATH_MAX], dir[PATH_MAX];
	size_t l;

	if (!realpath(rootfs, rr))
		return false;
	if (!realpath(path, rp)) {
		char *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (!slash)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		if (!realpath(dir, rp))
			return false;
	}
	l = strlen(rr);
	return !strncmp(rp, rr, l) && (rp[l] == '/' || rp[l] == '\0' || l == 1);
}

int target_open(struct target *t, const char *path, const char *rootfs,
		const char *src_path)
{
	struct stat st, ss;

	memset(t, 0, sizeof(*t));
	t->path = path;
	t->fd = -1;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT) {
			log_error("DEVICE %s: %s", path, strerror(errno));
			return -errno;
		}
		if (rootfs && inside(path, rootfs))
			goto in_tree;
		return 0;       /* a new file, created once everything is checked */
	}
	if (S_ISBLK(st.st_mode)) {
		t->blk = true;
		return open_blk(t, &st);
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("DEVICE %s: neither a block device nor a regular file (%s); nothing "
			  "was written", path, S_ISDIR(st.st_mode) ? "a directory" :
			  S_ISCHR(st.st_mode) ? "a character device" : "a special file");
		return -EINVAL;
	}
	if (rootfs && inside(path, rootfs))
		goto in_tree;
	if (src_path && stat(src_path, &ss) == 0 && ss.st_dev == st.st_dev &&
	    ss.st_ino == st.st_ino) {
		log_error("DEVICE %s is the IMAGE itself: write it somewhere else; nothing was "
			  "written", path);
		return -EINVAL;
	}
	t->exists = true;
	t->size = (uint64_t)st.st_size;
	t->fd = open(path, O_RDWR | O_CLOEXEC | O_DIRECT);
	if (t->fd >= 0)
		t->direct = true;
	else if (errno == EINVAL)
		t->fd = open(path, O_RDWR | O_CLOEXEC);
	if (t->fd < 0) {
		log_error("DEVICE %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
in_tree:
	log_error("DEVICE %s is inside ROOTFS %s: the image would be written into the tree "
		  "it is built from; write it somewhere else; nothing was written", path,
		  rootfs);
	return -EINVAL;
}

int target_check_size(struct target *t, uint64_t image_size)
{
	if (!t->blk || t->size >= image_size)
		return 0;
	log_error("DEVICE %s: too small: %llu bytes (%.1f MiB) for an image of %llu bytes "
		  "(%.1f MiB); use a larger card, or make the image smaller (--size, "
		  "--root-size, --free); nothing was written", t->path,
		  (unsigned long long)t->size, t->size / 1048576.0,
		  (unsigned long long)image_size, image_size / 1048576.0);
	return -ENOSPC;
}

bool target_holds_data(const struct target *t)
{
	return t->blk || (t->exists && t->size > 0);
}

static void sysfs_line(const char *name, const char *file, char *out, size_t n)
{
	char p[PATH_MAX];
	FILE *f;

	out[0] = '\0';
	snprintf(p, sizeof(p), "/sys/class/block/%s/device/%s", name, file);
	f = fopen(p, "re");
	if (!f)
		return;
	if (fgets(out, (int)n, f))
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
	/* sysfs pads vendor and model with spaces */
	for (size_t l = strlen(out); l && out[l - 1] == ' '; l--)
		out[l - 1] = '\0';
}

void target_describe(struct target *t, FILE *f)
{
	struct fdisk_context *cxt;
	struct fdisk_script *sc;

	if (t->blk) {
		char vendor[128], model[128];

		sysfs_line(t->name, "vendor", vendor, sizeof(vendor));
		sysfs_line(t->name, "model", model, sizeof(model));
		fprintf(f, "DEVICE %s (%s): %s%s%s, %.2f GB (%.1f GiB)\n", t->path, t->name,
			vendor, *vendor ? " " : "", *model ? model : "unknown model",
			t->size / 1e9, t->size / 1073741824.0);
	} else {
		fprintf(f, "DEVICE %s: a regular file of %llu bytes\n", t->path,
			(unsigned long long)t->size);
	}
	cxt = fdisk_new_context();
	if (!cxt)
		return;
	/* Its own read-only open: ours may be O_DIRECT, which libfdisk's
	 * small reads do not suit. */
	if (fdisk_assign_device(cxt, t->path, 1) < 0) {
		fprintf(f, "current partition table: cannot be read\n");
		fdisk_unref_context(cxt);
		return;
	}
	if (!fdisk_has_label(cxt)) {
		fprintf(f, "current partition table: none\n");
	} else if ((sc = fdisk_new_script(cxt))) {
		fprintf(f, "current partition table (sfdisk -d):\n");
		if (fdisk_script_read_context(sc, NULL) == 0)
			fdisk_script_write_file(sc, f);
		fdisk_unref_script(sc);
	}
	fdisk_deassign_device(cxt, 1);
	fdisk_unref_context(cxt);
}

int target_prepare(struct target *t, uint64_t image_size)
{
	if (t->fd < 0) {
		t->fd = open(t->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, 0644);
		if (t->fd >= 0)
			t->direct = true;
		else if (errno == EINVAL)
			t->fd = open(t->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (t->fd < 0) {
			log_error("DEVICE %s: cannot create it: %s", t->path, strerror(errno));
			return -errno;
		}
	}
	/* A file becomes the image's size; its old bytes stay where the image
	 * has holes (no reader depends on them). */
	if (!t->blk && ftruncate(t->fd, (off_t)image_size) < 0) {
		log_error("DEVICE %s: setting its size to %llu: %s", t->path,
			  (unsigned long long)image_size, strerror(errno));
		return -errno;
	}
	return 0;
}

/* O_DIRECT refused at this offset or length (a device with 4 KiB logical
 * blocks and an image of 512-byte sectors, a filesystem): buffered from
 * now on. */
static bool drop_direct(struct target *t)
{
	int fl = fcntl(t->fd, F_GETFL);

	if (!t->direct || fl < 0 || fcntl(t->fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return false;
	t->direct = false;
	log_debug("%s: O_DIRECT refused, buffered I/O from here", t->path);
	return true;
}

int target_pwrite(struct target *t, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(t->fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && drop_direct(t))
			continue;
		if (n <= 0) {
			log_error("DEVICE %s: writing at %llu: %s", t->path,
				  (unsigned long long)(off + done),
				  n < 0 ? strerror(errno) : "no room");
			return n < 0 ? -errno : -ENOSPC;
		}
		done += (size_t)n;
	}
	return 0;
}

int target_pread(struct target *t, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(t->fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && drop_direct(t))
			continue;
		if (n <= 0) {
			log_error("DEVICE %s: reading back at %llu: %s", t->path,
				  (unsigned long long)(off + done),
				  n < 0 ? strerror(errno) : "end of device");
			return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	return 0;
}

int target_sync(struct target *t)
{
	if (fsync(t->fd) < 0) {
		log_error("DEVICE %s: fsync: %s (the data may not all be on it)", t->path,
			  strerror(errno));
		return -errno;
	}
	/* The read-back must come from the medium, not the page cache. */
	posix_fadvise(t->fd, 0, 0, POSIX_FADV_DONTNEED);
	if (t->blk) {
		ioctl(t->fd, BLKFLSBUF, 0);
		if (ioctl(t->fd, BLKRRPART, 0) < 0)
			log_debug("%s: re-reading the partition table: %s", t->path,
				  strerror(errno));
	}
	return 0;
}

void target_close(struct target *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}
