/* build_fs.c - file and path helpers for `rpifs build`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include "build.h"
#include "build_fs.h"
#include "log.h"
#include "vector.h"

int build_fs_mkdir_p(const char *path, mode_t mode)
{
	char *p = build_xstrdup(path), *s;
	int ret = 0;

	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			ret = -errno;
			goto out;
		}
		*s = c;
		if (!c)
			break;
	}
	if (!build_fs_is_dir(path))
		ret = -ENOTDIR;
out:
	free(p);
	return ret;
}

int build_fs_read(const char *path, char **out, size_t *len)
{
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t r;

		/* At least 4 KiB free for the read, and a byte for the NUL. */
		ret = VEC_RESERVE(buf, cap, n + 4096 + 1, 8192);
		if (ret)
			goto out;
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
	if (len)
		*len = n;
out:
	free(buf);
	close(fd);
	return ret;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Open path's temporary sibling for writing. The ".rpifs-tmp" suffix makes
 * leftovers of an interrupted run easy to recognise. */
static int open_tmp(const char *path, mode_t mode, char **tmp)
{
	int fd;

	*tmp = build_xasprintf("%s.rpifs-tmp", path);
	unlink(*tmp);
	fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		int e = -errno;

		free(*tmp);
		*tmp = NULL;
		return e;
	}
	return fd;
}

static int finish_tmp(int fd, char *tmp, const char *path, mode_t mode, int ret)
{
	if (!ret && fchmod(fd, mode) < 0)
		ret = -errno;
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	free(tmp);
	return ret;
}

int build_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp;
	int fd = open_tmp(path, mode, &tmp);

	if (fd < 0)
		return fd;
	return finish_tmp(fd, tmp, path, mode, write_all(fd, data, len));
}

int build_fs_copy_fd_atomic(int in, const char *dst, mode_t mode)
{
	char buf[1 << 16], *tmp;
	off_t off = 0;
	int fd, ret = 0;

	fd = open_tmp(dst, mode, &tmp);
	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t r = pread(in, buf, sizeof(buf), off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (r == 0)
			break;
		ret = write_all(fd, buf, (size_t)r);
		if (ret)
			break;
		off += r;
	}
	return finish_tmp(fd, tmp, dst, mode, ret);
}

int build_fs_copy_atomic(const char *src, const char *dst, mode_t mode, bool nofollow)
{
	struct stat st;
	int in, ret;

	in = open(src, O_RDONLY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
	if (in < 0)
		return -errno;
	if (fstat(in, &st) < 0)
		ret = -errno;
	else if (!S_ISREG(st.st_mode))
		ret = -EINVAL;
	else
		ret = build_fs_copy_fd_atomic(in, dst, mode);
	close(in);
	return ret;
}

/* Mount points in /proc/self/mountinfo escape spaces and friends as \ooo. */
static void unescape_octal(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

int build_fs_unmount_below(const char *path)
{
	char line[8192], mp[4096], *real = realpath(path, NULL);
	char **found = NULL;
	size_t n = 0, cap = 0, len;
	FILE *f;
	int ret = 0;

	if (!real)
		return errno == ENOENT ? 0 : -errno;
	len = strlen(real);
	f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		ret = -errno;
		goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		unescape_octal(mp);
		if (strncmp(mp, real, len) || (mp[len] != '/' && mp[len] != '\0'))
			continue;
		if (VEC_RESERVE(found, cap, n + 1, 8) < 0) {
			ret = -ENOMEM;
			break;
		}
		found[n++] = build_xstrdup(mp);
	}
	fclose(f);
	/* mountinfo lists parents before children: undo in reverse. */
	while (n--) {
		if (umount2(found[n], MNT_DETACH) < 0 && errno != EINVAL && !ret)
			ret = -errno;
		free(found[n]);
	}
out:
	free(found);
	free(real);
	return ret;
}

/* nftw passes no context: the first error of the walk lands here. */
static int rm_errno;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT) {
		rm_errno = errno;
		return 1;
	}
	return 0;
}

int build_fs_remove_tree(const char *path)
{
	int ret;

	if (!path[0] || !strcmp(path, "/"))
		return -EPERM;
	if (!build_fs_exists(path))
		return 0;
	ret = build_fs_unmount_below(path);
	if (ret)
		return ret;
	/* FTW_PHYS: never follow symlinks; FTW_MOUNT: stay on this file
	 * system (a mount that could not be detached is never emptied). */
	rm_errno = 0;
	ret = nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (ret == 1)
		return -rm_errno;
	if (ret < 0)
		return -errno;
	return 0;
}

int build_fs_move_in(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *e;
	int ret = 0;

	if (!d) {
		ret = -errno;
		log_error("%s: %s", from, strerror(-ret));
		return ret;
	}
	while (!ret && (e = readdir(d))) {
		char *f, *t;
		struct stat fs, ts, tl;
		bool t_dir, t_there;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		f = build_xasprintf("%s/%s", from, e->d_name);
		t = build_xasprintf("%s/%s", to, e->d_name);
		t_there = lstat(t, &tl) == 0;
		t_dir = stat(t, &ts) == 0 && S_ISDIR(ts.st_mode);
		if (lstat(f, &fs) < 0)
			ret = -errno;
		else if (S_ISDIR(fs.st_mode) && t_dir)
			ret = build_fs_move_in(f, t);
		else if (S_ISDIR(fs.st_mode) && t_there)
			ret = -ENOTDIR;
		else if (!S_ISDIR(fs.st_mode) && t_there && S_ISDIR(tl.st_mode))
			ret = -EISDIR;
		else if (rename(f, t) < 0)
			ret = -errno;
		/* A nested call logged its own path already. */
		if (ret && !(S_ISDIR(fs.st_mode) && t_dir))
			log_error("%s -> %s: %s", f, t, strerror(-ret));
		free(f);
		free(t);
	}
	closedir(d);
	return ret;
}

static uid_t chown_uid;
static gid_t chown_gid;
static int chown_errno;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (lchown(path, chown_uid, chown_gid) < 0) {
		chown_errno = errno;
		log_error("%s: chown: %s", path, strerror(errno));
		return 1;
	}
	return 0;
}

int build_fs_chown_tree(const char *path, uid_t uid, gid_t gid)
{
	int ret;

	chown_uid = uid;
	chown_gid = gid;
	chown_errno = 0;
	ret = nftw(path, chown_one, 64, FTW_PHYS | FTW_MOUNT);
	if (ret == 1)
		return -chown_errno;
	return ret < 0 ? -errno : 0;
}

bool build_fs_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

bool build_fs_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool build_fs_is_nonempty_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

bool build_fs_dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return false;
	while (empty && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

bool build_fs_have_program(const char *prog)
{
	const char *path = getenv("PATH");
	bool ok = false;
	char *dirs, *d, *save = NULL;

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0;
	dirs = build_xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (d = strtok_r(dirs, ":", &save); d && !ok; d = strtok_r(NULL, ":", &save)) {
		char *p = build_xasprintf("%s/%s", *d ? d : ".", prog);
		struct stat st;

		ok = stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
		free(p);
	}
	free(dirs);
	return ok;
}

int build_fs_abspath(const char *path, char **out)
{
	char *copy1 = build_xstrdup(path), *copy2 = build_xstrdup(path);
	char *dir, *base, *rdir = NULL;
	int ret = 0;

	*out = realpath(path, NULL);
	if (*out)
		goto out;
	if (errno != ENOENT) {
		ret = -errno;
		goto out;
	}
	dir = dirname(copy1);
	base = basename(copy2);
	rdir = realpath(dir, NULL);
	if (!rdir) {
		ret = -errno;
		goto out;
	}
	if (!strcmp(base, ".") || !strcmp(base, "..") || !strcmp(base, "/")) {
		ret = -EINVAL;
		goto out;
	}
	*out = build_xasprintf("%s/%s", strcmp(rdir, "/") ? rdir : "", base);
out:
	free(rdir);
	free(copy1);
	free(copy2);
	return ret;
}
