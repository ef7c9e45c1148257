/* build_userns.c - subordinate ids, the unprivileged build's checks, and a
 * way into a user namespace with the map mmdebstrap used (see the header). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "build.h"
#include "build_binfmt.h"
#include "build_fs.h"
#include "build_opts.h"
#include "build_rootfs.h"
#include "build_run.h"
#include "idmap.h"
#include "build_userns.h"
#include "log.h"

#define SUBUID "/etc/subuid"
#define SUBGID "/etc/subgid"
/* A Debian tree uses ids up to 65534 (nobody, nogroup). */
#define MIN_RANGE 65536u

/* The first "NAME:START:COUNT" line for name (mmdebstrap and newuidmap
 * take the first). *end_max: the highest START + COUNT of any line, for
 * suggesting a free range. 0, -ENOENT (no line for name). */
static int read_range(const char *file, const char *name, uint32_t *start, uint32_t *count,
		      uint64_t *end_max)
{
	char *text = NULL, *save = NULL;
	int ret = -ENOENT;

	if (build_fs_read(file, &text, NULL))
		return -ENOENT;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *e1, *e2;
		unsigned long long s, n;

		if (!c2)
			continue;
		errno = 0;
		s = strtoull(c1 + 1, &e1, 10);
		n = strtoull(c2 + 1, &e2, 10);
		if (errno || e1 != c2 || e2 == c2 + 1 || s > UINT32_MAX || n > UINT32_MAX)
			continue;
		if (s + n > *end_max)
			*end_max = s + n;
		if (ret && (size_t)(c1 - l) == strlen(name) && !strncmp(l, name, strlen(name))) {
			*start = (uint32_t)s;
			*count = (uint32_t)n;
			ret = 0;
		}
	}
	free(text);
	return ret;
}

/* Suggested range: above every range either file gives out. */
static void free_range(uint64_t end_max, char *buf, size_t len)
{
	uint64_t s = end_max < 100000 ? 100000 : end_max;

	snprintf(buf, len, "%" PRIu64 "-%" PRIu64, s, s + MIN_RANGE - 1);
}

static int lookup(struct build_userns *u, bool report)
{
	uint32_t gs = 0, gc = 0;
	uint64_t end_max = 0;
	struct passwd *pw;
	char range[64];
	int ru, rg;

	memset(u, 0, sizeof(*u));
	u->uid = getuid();
	u->gid = getgid();
	pw = getpwuid(u->uid);
	if (!pw) {
		if (report)
			log_error("uid %u has no name in the passwd database: /etc/subuid"
				  " and mmdebstrap need one", (unsigned)u->uid);
		return -ENOENT;
	}
	u->user = build_xstrdup(pw->pw_name);
	ru = read_range(SUBUID, u->user, &u->sub, &u->count, &end_max);
	rg = read_range(SUBGID, u->user, &gs, &gc, &end_max);
	free_range(end_max, range, sizeof(range));
	if (ru || rg) {
		if (report)
			log_error("%s has no subordinate %s range in %s: the build's user"
				  " namespace maps its ids there. As root, run `usermod"
				  " --add-subuids %s --add-subgids %s %s`", u->user,
				  ru ? "uid" : "gid", ru ? SUBUID : SUBGID, range, range, u->user);
		return -ENOENT;
	}
	if (u->sub != gs || u->count != gc) {
		if (report)
			log_error("%s's first ranges differ: %s %" PRIu32 ":%" PRIu32 ", %s %"
				  PRIu32 ":%" PRIu32 ". rpifs gives the image one map for owners"
				  " and groups: make them equal (as root, edit %s so that %s's"
				  " first line reads %s:%" PRIu32 ":%" PRIu32 ")", u->user, SUBUID,
				  u->sub, u->count, SUBGID, gs, gc, SUBGID, u->user, u->user,
				  u->sub, u->count);
		return -EINVAL;
	}
	if (u->count < MIN_RANGE || (uint64_t)u->sub + u->count > UINT32_MAX ||
	    (u->uid >= u->sub && u->uid - u->sub < u->count) ||
	    (u->gid >= u->sub && u->gid - u->sub < u->count)) {
		if (report)
			log_error("%s's subordinate range %" PRIu32 ":%" PRIu32 " is unusable"
				  " (a Debian tree needs %u ids, and the user's own id must lie"
				  " outside it). As root, run `usermod --add-subuids %s"
				  " --add-subgids %s %s` and remove the old range from %s and %s",
				  u->user, u->sub, u->count, MIN_RANGE, range, range, u->user,
				  SUBUID, SUBGID);
		return -EINVAL;
	}
	return 0;
}

int build_userns_lookup(struct build_userns *u)
{
	int ret = lookup(u, false);

	if (ret)
		build_userns_free(u);
	return ret;
}

void build_userns_free(struct build_userns *u)
{
	free(u->user);
	u->user = NULL;
}

static bool read_flag(const char *path, long *v)
{
	char *text = NULL;
	bool ok = build_fs_read(path, &text, NULL) == 0;

	if (ok)
		*v = strtol(text, NULL, 10);
	free(text);
	return ok;
}

/* Can this process make a user namespace at all? 0 or -errno. */
static int try_unshare(void)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER) < 0 ? (errno & 0xff ? errno & 0xff : EPERM) : 0);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status))
		return -EIO;
	return -WEXITSTATUS(status);
}

static int check_userns(void)
{
	long v;
	int ret;

	/* Debian's own knob (older kernels); 0 refuses every unprivileged user. */
	if (read_flag("/proc/sys/kernel/unprivileged_userns_clone", &v) && v == 0) {
		log_error("user namespaces are off for ordinary users"
			  " (kernel.unprivileged_userns_clone = 0). As root, run `sysctl -w"
			  " kernel.unprivileged_userns_clone=1` (and set it in"
			  " /etc/sysctl.d/ to keep it)");
		return -EPERM;
	}
	if (read_flag("/proc/sys/user/max_user_namespaces", &v) && v == 0) {
		log_error("user namespaces are off (user.max_user_namespaces = 0). As root,"
			  " run `sysctl -w user.max_user_namespaces=15000` (and set it in"
			  " /etc/sysctl.d/ to keep it)");
		return -EPERM;
	}
	ret = try_unshare();
	if (ret) {
		log_error("cannot create a user namespace: %s. As root, check"
			  " `sysctl kernel.unprivileged_userns_clone user.max_user_namespaces%s`"
			  " (a container may forbid them: run the build on the host, or as root)",
			  strerror(-ret),
			  access("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", F_OK) ?
			  "" : " kernel.apparmor_restrict_unprivileged_userns");
	}
	return ret;
}

/* mmdebstrap's namespace root is nobody the host knows: every directory
 * above the tree must let others through. */
static int check_reachable(const struct build_userns *u, const char *dir)
{
	char *p = build_xstrdup(dir);
	int ret = 0;

	for (char *slash = p + strlen(p); slash && slash > p; slash = strrchr(p, '/')) {
		struct stat st;

		*slash = '\0';
		if (stat(*p ? p : "/", &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (!(st.st_mode & S_IXOTH) && !(st.st_uid >= u->sub && st.st_uid - u->sub < u->count)) {
			log_error("%s (mode %04o) does not let others in: mmdebstrap's namespace"
				  " root, an id of %s's subordinate range, must reach the tree"
				  " below it. Run `chmod o+x %s`, or build somewhere others can"
				  " reach", *p ? p : "/", (unsigned)(st.st_mode & 07777), u->user,
				  *p ? p : "/");
			ret = -EACCES;
		}
	}
	free(p);
	return ret;
}

static int noop(void *arg)
{
	(void)arg;
	return 0;
}

int build_userns_check(struct build_userns *u, const char *dir)
{
	FILE *out;
	int ret = 0, r;

	if (!build_fs_have_program("mmdebstrap")) {
		log_error("mmdebstrap not found: an ordinary user's build runs `mmdebstrap"
			  " --mode=unshare`. As root, run `apt-get install mmdebstrap arch-test"
			  " uidmap` (or run rpifs build rootfs as root, with debootstrap)");
		ret = -EPERM;
	} else if (!build_binfmt_native() && !build_fs_have_program("arch-test")) {
		log_error("arch-test not found: mmdebstrap needs it to build a foreign (arm64)"
			  " tree. As root, run `apt-get install arch-test`");
		ret = -EPERM;
	}
	if (!build_fs_have_program("newuidmap") || !build_fs_have_program("newgidmap")) {
		log_error("newuidmap/newgidmap not found: they map the user's subordinate ids"
			  " into the build's namespace. As root, run `apt-get install uidmap`");
		ret = -EPERM;
	}
	build_userns_free(u);
	if (lookup(u, true))
		ret = -EPERM;
	if (check_userns())
		ret = -EPERM;
	if (!build_binfmt_native() && build_binfmt_check_registered())
		ret = -EPERM;
	if (!ret && check_reachable(u, dir))
		ret = -EPERM;
	if (ret)
		return ret;
	/* Everything in place: one real entry, which newuidmap may still refuse
	 * (not setuid, a range /etc/subuid does not grant). */
	out = tmpfile();
	r = build_userns_call(u, out ? fileno(out) : -1, noop, NULL);
	if (r && out) {
		char line[512];

		/* What newuidmap/newgidmap said (the log holds "$ command" too). */
		rewind(out);
		while (fgets(line, sizeof(line), out))
			fputs(line, stderr);
	}
	if (out)
		fclose(out);
	if (r) {
		log_error("cannot enter a user namespace with %s's subordinate range"
			  " %" PRIu32 ":%" PRIu32 " (newuidmap/newgidmap failed, above):"
			  " check that they are setuid root (as root: `apt-get install --reinstall"
			  " uidmap`) and that %s and %s grant the range", u->user, u->sub,
			  u->count, SUBUID, SUBGID);
		ret = -EPERM;
	}
	return ret;
}

static int write_full(int fd, const void *p, size_t n)
{
	ssize_t w;

	do {
		w = write(fd, p, n);
	} while (w < 0 && errno == EINTR);
	return w == (ssize_t)n ? 0 : -EIO;
}

static int map_ids(const struct build_userns *u, int log_fd, pid_t pid)
{
	char spid[16], ssub[16], scount[16], sid[16];
	int ret = 0;

	snprintf(spid, sizeof(spid), "%d", (int)pid);
	snprintf(ssub, sizeof(ssub), "%" PRIu32, u->sub);
	snprintf(scount, sizeof(scount), "%" PRIu32, u->count);
	for (int g = 0; g < 2 && !ret; g++) {
		struct run r = { .log_fd = log_fd };

		snprintf(sid, sizeof(sid), "%u", g ? (unsigned)u->gid : (unsigned)u->uid);
		/* ns 0..count-1: the range (as mmdebstrap maps it); ns count: the
		 * user, whose directories the namespace's root then may write. */
		r.argv = (char *[]){ g ? "newgidmap" : "newuidmap", spid, "0", ssub, scount,
				     scount, sid, "1", NULL };
		ret = build_run_child(&r);
		if (ret) {
			char *cmd = build_run_cmdline(r.argv);

			log_error("%s failed%s", cmd, r.status ? "" : ": cannot run it");
			free(cmd);
		}
	}
	return ret;
}

int build_userns_call(const struct build_userns *u, int log_fd, int (*fn)(void *arg), void *arg)
{
	int up[2] = { -1, -1 }, down[2] = { -1, -1 }, err = 0, status, ret;
	pid_t pid;

	if (geteuid() == 0)
		return fn(arg);
	if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0) {
		char go = 0;

		close(up[0]);
		close(down[1]);
		err = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
		if (write_full(up[1], &err, sizeof(err)) || err)
			_exit(err ? err & 0xff : EIO);
		/* newuidmap/newgidmap can only map a process that already is in
		 * the namespace: wait for the parent to have done it. */
		if (read(down[0], &go, 1) != 1 || go != 'g')
			_exit(EPERM);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			_exit(errno & 0xff);
		/* The user's other groups have no id inside: drop them. */
		(void)setgroups(0, NULL);
		ret = fn(arg);
		fflush(NULL);
		_exit(ret >= 0 ? 0 : -ret > 255 ? EIO : -ret);
	}
	close(up[1]);
	close(down[0]);
	up[1] = down[0] = -1;
	if (read(up[0], &err, sizeof(err)) != sizeof(err))
		err = EIO;
	ret = err ? -err : map_ids(u, log_fd, pid);
	if (!ret && write_full(down[1], "g", 1))
		ret = -EIO;
	close(down[1]);
	down[1] = -1;
	if (waitpid(pid, &status, 0) < 0) {
		if (!ret)
			ret = -errno;
	} else if (!ret) {
		ret = WIFEXITED(status) ? -WEXITSTATUS(status) : -EINTR;
	}
	if (err)
		log_error("cannot create a user namespace: %s", strerror(err));
out:
	for (int i = 0; i < 2; i++) {
		if (up[i] >= 0)
			close(up[i]);
		if (down[i] >= 0)
			close(down[i]);
	}
	return ret;
}

static int remove_tree(void *arg)
{
	return build_fs_remove_tree(arg);
}

int build_userns_remove_tree(const struct build_userns *u, const char *path)
{
	return build_userns_call(u, -1, remove_tree, (void *)path);
}

int build_userns_write_idmap(const struct build_userns *u, const char *state_dir)
{
	char *p = build_xasprintf("%s/idmap", state_dir), *gid_line = NULL, *text;
	int ret;

	if (u->gid != u->uid && u->gid != 0)
		gid_line = build_xasprintf("%u:0:1\n", (unsigned)u->gid);
	text = build_xasprintf(
		"# Written by `rpifs build rootfs` as %s: the tree was made in a user\n"
		"# namespace. HOST:IMAGE:COUNT, one map for owners and groups, read by\n"
		"# `rpifs ROOTFS MNT` to give the image the ids the namespace saw.\n"
		"# The namespace: root inside is %s's first subordinate id.\n"
		"%" PRIu32 ":0:%" PRIu32 "\n"
		"# What %s writes outside it is root's in the image.\n"
		"%u:0:1\n%s"
		"# What root writes into the tree (sudo rpifs build kernel) stays root's.\n"
		"0:0:1\n",
		u->user, u->user, u->sub, u->count, u->user, (unsigned)u->uid,
		gid_line ? gid_line : "");
	ret = build_fs_write_atomic(p, text, strlen(text), 0644);
	if (ret)
		log_error("%s: %s", p, strerror(-ret));
	free(text);
	free(gid_line);
	free(p);
	return ret;
}

/* The namespace range the tree's idmap records (read as the engine reads
 * it: idmap_load): its "SUB:0:COUNT" line with more than one id (the
 * others map single ids). 0 or -ENOENT. */
static int idmap_range(const char *rootfs, uint32_t *sub, uint32_t *count)
{
	struct rpifs_idmap *m;
	size_t n;
	int ret = -ENOENT;

	if (idmap_load(rootfs, &m, &n) < 0)
		return ret;
	for (size_t i = 0; i < n && ret; i++)
		if (m[i].image == 0 && m[i].count > 1) {
			*sub = m[i].host;
			*count = m[i].count;
			ret = 0;
		}
	free(m);
	return ret;
}

static bool mapped(const struct build_userns *u, uint32_t id, uint32_t own)
{
	return id == own || (id >= u->sub && id - u->sub < u->count);
}

/* Directories below dir the namespace's root could not write into: each
 * named (the first few), counted in *bad. */
static void check_owned(const struct build_userns *u, const char *dir, const char *stage,
			int depth, int *bad)
{
	struct dirent *e;
	struct stat st;
	DIR *d;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return;
	if (!mapped(u, st.st_uid, u->uid) || !mapped(u, st.st_gid, u->gid)) {
		if (++*bad <= 5)
			log_error("%s belongs to %u:%u, an id %s's user namespace does not map"
				  " (left by a run as root?): the %s stage as %s cannot write"
				  " there. Run the stage as root (sudo rpifs build %s ...), or give"
				  " it to the namespace's root: `sudo chown -R %" PRIu32 ":%" PRIu32
				  " %s`", dir, (unsigned)st.st_uid, (unsigned)st.st_gid, u->user,
				  stage, u->user, stage, u->sub, u->sub, dir);
		return;
	}
	if (depth > 16 || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		char *p;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
			continue;
		p = build_xasprintf("%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			check_owned(u, p, stage, depth + 1, bad);
		free(p);
	}
	closedir(d);
}

int build_userns_check_stages(const struct build_opts *o)
{
	/* The stage a refused directory is for: the first one selected. */
	const char *stage = o->cmd & CMD_KERNEL ? "kernel" : o->cmd & CMD_FIRMWARE ? "firmware" :
			    "config";
	struct build_userns u;
	uint32_t sub = 0, count = 0;
	int ret = 0, bad = 0;

	/* The rootfs stage checks the user, the tools and the namespace, and
	 * makes the tree these stages write into. */
	if (o->cmd & CMD_ROOTFS)
		return 0;
	if (lookup(&u, true)) {
		build_userns_free(&u);
		return -EPERM;
	}
	if (!build_fs_have_program("newuidmap") || !build_fs_have_program("newgidmap")) {
		log_error("newuidmap/newgidmap not found: the %s stage writes into %s from the"
			  " user namespace the tree was made in. As root, run `apt-get install"
			  " uidmap`", stage, o->rootfs);
		ret = -EPERM;
	}
	if (check_userns())
		ret = -EPERM;
	if (idmap_range(o->rootfs, &sub, &count) == 0 && (sub != u.sub || count != u.count)) {
		log_error("%s was made in the user namespace of ids %" PRIu32 ":%" PRIu32 " (%s/idmap),"
			  " not in %s's (%" PRIu32 ":%" PRIu32 "): run the stage as the user who"
			  " built the tree, or as root (sudo rpifs build %s ...)", o->rootfs, sub,
			  count, o->state_dir, u.user, u.sub, u.count, stage);
		ret = -EPERM;
	}
	if (!ret) {
		char *boot = build_xasprintf("%s/boot", o->rootfs);
		char *mods = build_xasprintf("%s/lib/modules", o->rootfs);

		check_owned(&u, boot, stage, 0, &bad);
		if (o->cmd & CMD_KERNEL)
			check_owned(&u, mods, "kernel", 0, &bad);
		if (bad > 5)
			log_error("... and %d more such directories", bad - 5);
		if (bad)
			ret = -EPERM;
		free(boot);
		free(mods);
	}
	/* One real entry: newuidmap may still refuse the range. */
	if (!ret && build_userns_call(&u, -1, noop, NULL)) {
		log_error("cannot enter a user namespace with %s's subordinate range %" PRIu32
			  ":%" PRIu32 ": check that newuidmap/newgidmap are setuid root (as root:"
			  " `apt-get install --reinstall uidmap`) and that %s and %s grant the"
			  " range", u.user, u.sub, u.count, SUBUID, SUBGID);
		ret = -EPERM;
	}
	build_userns_free(&u);
	return ret;
}

int build_userns_as_owner(const struct build_opts *o, int log_fd, int (*fn)(void *arg), void *arg)
{
	struct build_userns u;
	int ret;

	if (geteuid() == 0 || !build_rootfs_userns_tree(o))
		return fn(arg);
	ret = lookup(&u, true);
	if (!ret)
		ret = build_userns_call(&u, log_fd, fn, arg);
	build_userns_free(&u);
	return ret;
}
