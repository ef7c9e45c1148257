/* build_firmware.c - install the board's boot firmware into ROOTFS/boot. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "build.h"
#include "build_archive.h"
#include "build_board.h"
#include "build_firmware.h"
#include "build_fs.h"
#include "build_mirror.h"
#include "build_stage.h"
#include "build_userns.h"
#include "log.h"

#define FW_PACKAGE "raspi-firmware"
#define KEYRING "/usr/share/keyrings/debian-archive-keyring.gpg"
#define MAX_DIRS 20000      /* directories searched for the firmware */

static char *rel_join(const char *dir, const char *name)
{
	return *dir ? build_xasprintf("%s/%s", dir, name) : build_xstrdup(name);
}

/* Size of dir/name inside rootfd when it is a non-empty regular file, else
 * -ENOENT (missing) or -ENODATA (empty, or not a regular file). */
static long long fw_file_size(int rootfd, const char *dir, const char *name)
{
	char *p = rel_join(dir, name);
	int fd = build_archive_root_open(rootfd, p, O_RDONLY);
	struct stat st;
	long long ret;

	free(p);
	if (fd < 0)
		return fd == -ENOENT ? -ENOENT : -ENODATA;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
		ret = -ENODATA;
	else
		ret = st.st_size;
	close(fd);
	return ret;
}

/* Count the board's files present in dir; describe the others. */
static int score_dir(int rootfd, const char *dir, const struct board *b, char **why)
{
	int ok = 0;

	*why = build_xstrdup("");
	for (int i = 0; i < b->n_firmware; i++) {
		long long sz = fw_file_size(rootfd, dir, b->firmware[i]);
		char *w;

		if (sz > 0) {
			ok++;
			continue;
		}
		w = build_xasprintf("%s%s%s %s", *why, **why ? ", " : "", b->firmware[i],
				    sz == -ENOENT ? "missing" : "empty or not a file");
		free(*why);
		*why = w;
	}
	return ok;
}

/* Breadth-first search for the directory holding all of the board's files
 * (top of a firmware checkout: boot/; in the package: usr/lib/raspi-firmware). */
static int find_fw_dir(int rootfd, const char *label, const struct board *b, char **found)
{
	char **queue = calloc(MAX_DIRS, sizeof(*queue)), *best_why = NULL, *best = NULL;
	size_t head = 0, tail = 0;
	int best_score = -1, ret = -ENOENT;

	if (!queue)
		return -ENOMEM;
	queue[tail++] = build_xstrdup("");
	*found = NULL;
	while (head < tail) {
		char *dir = queue[head++], *why = NULL;
		int score = score_dir(rootfd, dir, b, &why), fd;
		DIR *d;
		struct dirent *e;

		if (score == b->n_firmware) {
			*found = build_xstrdup(dir);
			free(why);
			ret = 0;
			break;
		}
		if (score > best_score) {
			best_score = score;
			free(best_why);
			free(best);
			best_why = why;
			best = build_xstrdup(dir);
		} else {
			free(why);
		}
		fd = build_archive_root_open(rootfd, *dir ? dir : ".", O_RDONLY | O_DIRECTORY);
		d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((e = readdir(d)) && tail < MAX_DIRS) {
			struct stat st;

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			/* Real directories only: a symlinked one is searched
			 * where it really is, or not at all. */
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISDIR(st.st_mode))
				queue[tail++] = rel_join(dir, e->d_name);
		}
		closedir(d);
	}
	if (ret)
		log_error("%s: no directory holds all of %s's firmware (best: %s/: %s)", label,
			  b->name, best && *best ? best : ".", best_why ? best_why : "nothing");
	for (size_t i = 0; i < tail; i++)
		free(queue[i]);
	free(queue);
	free(best);
	free(best_why);
	return ret;
}

static int copy_in(int rootfd, const char *src, const char *dst)
{
	int fd = build_archive_root_open(rootfd, src, O_RDONLY), ret;

	if (fd < 0)
		return fd;
	ret = build_fs_copy_fd_atomic(fd, dst, 0644);
	close(fd);
	return ret;
}

/* Replace boot/overlays with the source's overlays/ (regular files only). */
static int copy_overlays(struct stage *s, int rootfd, const char *dir, const char *boot)
{
	char *src = rel_join(dir, "overlays"),
	     *tmp = build_xasprintf("%s/overlays.rpifs-tmp", boot);
	char *old = build_xasprintf("%s/overlays.rpifs-old", boot),
	     *dst = build_xasprintf("%s/overlays", boot);
	int fd = build_archive_root_open(rootfd, src, O_RDONLY | O_DIRECTORY), ret = 0, n = 0;
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		goto out;           /* no overlays: fine, the Pi 3 boots without */
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		close(fd);
		goto out;
	}
	build_fs_remove_tree(tmp);
	if (mkdir(tmp, 0755) < 0) {
		ret = -errno;
		closedir(d);
		goto out;
	}
	while (!ret && (e = readdir(d))) {
		struct stat st;
		char *from, *to;

		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		from = build_xasprintf("%s/%s", src, e->d_name);
		to = build_xasprintf("%s/%s", tmp, e->d_name);
		ret = copy_in(rootfd, from, to);
		n++;
		free(from);
		free(to);
	}
	closedir(d);
	if (!ret) {
		build_fs_remove_tree(old);
		if (build_fs_exists(dst) && rename(dst, old) < 0)
			ret = -errno;
		else if (rename(tmp, dst) < 0)
			ret = -errno;
		build_fs_remove_tree(old);
	}
	if (!ret)
		build_stage_log(s, "# %d overlays installed", n);
out:
	if (ret) {
		log_error("%s: %s", dst, strerror(-ret));
		build_fs_remove_tree(tmp);
	}
	free(src);
	free(tmp);
	free(old);
	free(dst);
	return ret;
}

/* apt-get download through a private configuration: the host's sources may
 * lack non-free-firmware, and nothing of the host's apt state is touched. */
static int apt_download(struct stage *s, const struct build_opts *o, const char *dir, char **deb)
{
	char *mirror = NULL, *text = NULL, *list = NULL, *opt[10] = { 0 };
	const char *const sub[] = { "lists/partial", "cache/archives/partial", "parts", "prefs.d" };
	struct dirent **ents = NULL;
	int ret, n;

	*deb = NULL;
	mirror = o->mirror ? build_xstrdup(o->mirror) : NULL;
	if (!mirror && build_mirror_default(&mirror)) {
		log_error("no Debian archive in the host's apt configuration: pass --mirror URL,"
			  " or --from with the firmware files");
		ret = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		char *p = build_xasprintf("%s/%s", dir, sub[i]);

		ret = build_fs_mkdir_p(p, 0755);
		free(p);
		if (ret)
			goto out;
	}
	text = build_xasprintf("deb [arch=arm64%s] %s %s non-free-firmware\n",
			       access(KEYRING, R_OK) == 0 ? " signed-by=" KEYRING : "", mirror,
			       o->suite);
	list = build_xasprintf("%s/sources.list", dir);
	ret = build_fs_write_atomic(list, text, strlen(text), 0644);
	free(text);
	text = build_xasprintf("%s/status", dir);
	if (!ret)
		ret = build_fs_write_atomic(text, "", 0, 0644);
	if (ret)
		goto out;
	opt[0] = build_xasprintf("Dir::Etc::SourceList=%s", list);
	opt[1] = build_xasprintf("Dir::Etc::SourceParts=%s/parts", dir);
	opt[2] = build_xasprintf("Dir::State::Lists=%s/lists", dir);
	opt[3] = build_xasprintf("Dir::State::status=%s/status", dir);
	opt[4] = build_xasprintf("Dir::Cache=%s/cache", dir);
	opt[5] = build_xasprintf("Dir::Etc::Preferences=%s/prefs", dir);
	opt[6] = build_xasprintf("Dir::Etc::PreferencesParts=%s/prefs.d", dir);
	{
		char *const update[] = {
			"apt-get", "-q", "-o", opt[0], "-o", opt[1], "-o", opt[2], "-o", opt[3],
			"-o", opt[4], "-o", opt[5], "-o", opt[6],
			/* The scratch dir is root's: apt's _apt user could not write it. */
			"-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1",
			"-o", "APT::Architecture=arm64", "-o", "Acquire::Languages=none",
			/* Without it a failed fetch is only a warning. */
			"update", "--error-on=any", NULL,
		};
		char *download[sizeof(update) / sizeof(update[0]) + 1];
		size_t k = sizeof(update) / sizeof(update[0]) - 3;

		build_stage_step(s, "apt-get update (%s %s non-free-firmware)", mirror, o->suite);
		ret = build_stage_run(s, update, NULL, NULL, NULL, NULL, NULL);
		if (ret) {
			build_stage_say(s,
					"cannot read the package lists of %s %s: is the mirror"
					" reachable? (--mirror URL, or --from DIR|FILE)",
					mirror, o->suite);
			goto out;
		}
		memcpy(download, update, k * sizeof(char *));
		download[k] = "download";
		download[k + 1] = FW_PACKAGE;
		download[k + 2] = NULL;
		build_stage_step(s, "apt-get download " FW_PACKAGE);
		ret = build_stage_run(s, download, dir, NULL, NULL, NULL, NULL);
		if (ret)
			goto out;
	}
	n = scandir(dir, &ents, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		size_t len = strlen(ents[i]->d_name);

		if (!*deb && len > 4 && !strcmp(ents[i]->d_name + len - 4, ".deb"))
			*deb = build_xasprintf("%s/%s", dir, ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	if (!*deb) {
		build_stage_say(s, "apt-get download left no .deb in %s", dir);
		ret = -ENOENT;
	}
out:
	for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
		free(opt[i]);
	free(list);
	free(text);
	free(mirror);
	return ret;
}

static char *make_key(const struct build_opts *o, const struct board *b, const char *from)
{
	char *files = build_xstrdup(""), *key;
	struct stat st = { 0 };

	for (int i = 0; i < b->n_firmware; i++) {
		char *f = build_xasprintf("%s %s", files, b->firmware[i]);

		free(files);
		files = f;
	}
	if (from) {
		stat(from, &st);
		key = build_xasprintf("board=%s\nfiles=%s\nfrom=%s\nsize=%lld\nmtime=%lld\n",
				      b->name, files, from, (long long)st.st_size,
				      (long long)st.st_mtime);
	} else {
		key = build_xasprintf("board=%s\nfiles=%s\nfrom=debian:" FW_PACKAGE "\nsuite=%s\n",
				      b->name, files, o->suite);
	}
	free(files);
	return key;
}

static bool installed(const char *boot, const struct board *b)
{
	for (int i = 0; i < b->n_firmware; i++) {
		char *p = build_xasprintf("%s/%s", boot, b->firmware[i]);
		bool ok = build_fs_is_nonempty_file(p);

		free(p);
		if (!ok)
			return false;
	}
	return true;
}

/* The copy into ROOTFS/boot, as the tree's owner (build_userns_as_owner):
 * the download and the unpacking stay the user's. */
struct job {
	struct stage *s;
	const struct board *b;
	int rootfd;
	const char *dir, *boot;
};

static int job_install(void *arg)
{
	struct job *j = arg;
	int ret = build_fs_mkdir_p(j->boot, 0755);

	if (ret) {
		log_error("%s: %s", j->boot, strerror(-ret));
		return ret;
	}
	for (int i = 0; i < j->b->n_firmware && !ret; i++) {
		char *src = rel_join(j->dir, j->b->firmware[i]);
		char *dst = build_xasprintf("%s/%s", j->boot, j->b->firmware[i]);
		long long want = fw_file_size(j->rootfd, j->dir, j->b->firmware[i]);
		struct stat st;

		ret = copy_in(j->rootfd, src, dst);
		if (ret)
			log_error("%s: %s", dst, strerror(-ret));
		/* Verify what landed, not what was meant to. */
		else if (stat(dst, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != want) {
			log_error("%s: not the %lld-byte file copied", dst, want);
			ret = -EIO;
		}
		free(src);
		free(dst);
	}
	if (!ret)
		ret = copy_overlays(j->s, j->rootfd, j->dir, j->boot);
	return ret;
}

int build_firmware_check(struct build_opts *o)
{
	struct board b;
	char *m = NULL;
	int ret = build_board_load(o->board, &b);
	bool none = !ret && !b.n_firmware;

	build_board_free(&b);
	if (ret)
		return ret;
	/* eeprom=yes and no firmware=: nothing to fetch, so no mirror and no
	 * apt-get needed (`build all --board rpi5`). */
	if (none)
		return 0;
	if (o->fw_from && !build_fs_exists(o->fw_from)) {
		log_error("--from %s: no such file or directory", o->fw_from);
		return -ENOENT;
	}
	if (!o->fw_from) {
		if (!o->mirror && build_mirror_default(&m)) {
			log_error("firmware: no Debian archive in the host's apt configuration:"
				  " pass --mirror URL, or --from DIR|FILE");
			return -ENOENT;
		}
		free(m);
		if (!build_fs_have_program("apt-get")) {
			log_error("firmware: apt-get not found (package apt), or use --from");
			return -ENOENT;
		}
	}
	return 0;
}

int build_firmware_run(struct build_opts *o, int index, int count)
{
	char *boot = build_xasprintf("%s/boot", o->rootfs), *from = NULL, *key = NULL;
	char *tmp = NULL, *xdir = NULL, *deb = NULL, *dir = NULL;
	const char *src_root, *label;
	struct board b = { 0 };
	struct job j;
	struct stage s;
	int rootfd = -1, ret;

	ret = build_stage_begin(&s, o->state_dir, "firmware", index, count);
	if (ret)
		goto out_nostage;
	ret = build_board_load(o->board, &b);
	if (ret)
		goto out;
	if (!b.n_firmware) {
		build_stage_detail(&s, "nothing to fetch for board %s: its boot firmware is in"
				   " its EEPROM", b.name);
		goto out;
	}
	if (o->fw_from) {
		ret = build_fs_abspath(o->fw_from, &from);
		if (ret) {
			log_error("--from %s: %s", o->fw_from, strerror(-ret));
			goto out;
		}
	}
	ret = build_stage_need_rootfs(o->rootfs);
	if (ret)
		goto out;
	key = make_key(o, &b, from);
	if (!o->force && build_stage_stamp_matches(o->state_dir, "firmware", key) &&
	    installed(boot, &b)) {
		build_stage_skip(&s, "firmware files in place");
		goto out_nostage;
	}
	build_stage_stamp_clear(o->state_dir, "firmware");

	if (from && build_fs_is_dir(from)) {
		src_root = label = from;
	} else {
		ret = build_stage_tmpdir(o->state_dir, "firmware", &tmp);
		if (ret)
			goto out;
		if (!from) {
			ret = apt_download(&s, o, tmp, &deb);
			if (ret)
				goto out;
		}
		xdir = build_xasprintf("%s/unpacked", tmp);
		if (mkdir(xdir, 0755) < 0) {
			ret = -errno;
			goto out;
		}
		label = from ? from : deb;
		build_stage_step(&s, "unpacking %s", label);
		ret = build_archive_extract(label, xdir);
		if (ret)
			goto out;
		src_root = xdir;
	}
	rootfd = open(src_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		ret = -errno;
		log_error("%s: %s", src_root, strerror(-ret));
		goto out;
	}
	ret = find_fw_dir(rootfd, label, &b, &dir);
	if (ret)
		goto out;
	build_stage_step(&s, "installing from %s/%s", label, *dir ? dir : ".");
	j = (struct job){ .s = &s, .b = &b, .rootfd = rootfd, .dir = dir, .boot = boot };
	ret = build_userns_as_owner(o, s.log_fd, job_install, &j);
	if (ret)
		goto out;
	ret = build_stage_stamp_write(o->state_dir, "firmware", key);
	build_stage_detail(&s, "%d files for %s", b.n_firmware, b.name);
out:
	ret = build_stage_end(&s, ret);
out_nostage:
	if (rootfd >= 0)
		close(rootfd);
	if (tmp)
		build_fs_remove_tree(tmp);
	build_board_free(&b);
	free(dir);
	free(deb);
	free(xdir);
	free(tmp);
	free(key);
	free(from);
	free(boot);
	return ret;
}
