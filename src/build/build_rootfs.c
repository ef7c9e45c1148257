/* build_rootfs.c - a Debian arm64 root file system: debootstrap as root,
 * mmdebstrap --mode=unshare as an ordinary user (build_userns.h). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "build.h"
#include "build_binfmt.h"
#include "build_config.h"
#include "build_fs.h"
#include "build_mirror.h"
#include "build_rootfs.h"
#include "build_stage.h"
#include "build_userns.h"
#include "digest.h"
#include "log.h"

#define COMPONENTS "main,contrib,non-free,non-free-firmware"
#define MERGED_USR_HOOKS "/usr/share/mmdebstrap/hooks/merged-usr"
#define GETTY_TEMPLATE "/lib/systemd/system/serial-getty@.service"

/* What a debootstrap child sees: no host locale, no questions. */
static const char *const child_env[] = {
	"LC_ALL=C", "LANGUAGE=C", "LANG=C", "DEBIAN_FRONTEND=noninteractive",
	"DEBCONF_NONINTERACTIVE_SEEN=true", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL,
};

/* The password given with "--root-password -", read once. */
static char *stdin_password;

/* The user's subordinate range, when the tree is built in a user namespace. */
static struct build_userns ns;

/* debootstrap as root unless told otherwise; mmdebstrap for anyone else. */
static bool use_mmdebstrap(const struct build_opts *o)
{
	return o->mode ? !strcmp(o->mode, "unshare") : geteuid() != 0;
}

/* The tree's files are owned by subordinate ids: every step that touches
 * it runs in a user namespace with the same map. */
static bool in_userns(const struct build_opts *o)
{
	return use_mmdebstrap(o) && geteuid() != 0;
}

static char *base_key(const struct build_opts *o)
{
	char *owners = NULL, *key;

	/* The root build's key is unchanged, so its trees stay up to date.
	 * Another bootstrapper or another range is another tree. */
	if (in_userns(o))
		owners = build_xasprintf("owners=user namespace %" PRIu32 ":%" PRIu32 "\n",
					 ns.sub, ns.count);
	key = build_xasprintf("suite=%s\nvariant=%s\ninclude=%s\narch=arm64\ncomponents="
			      COMPONENTS "\n%s%s", o->suite, o->variant,
			      o->include ? o->include : "",
			      use_mmdebstrap(o) ? "bootstrap=mmdebstrap\n" : "",
			      owners ? owners : "");
	free(owners);
	return key;
}

static const char *password(const struct build_opts *o)
{
	if (o->root_password && !strcmp(o->root_password, "-"))
		return stdin_password ? stdin_password : "";
	return o->root_password;
}

static char *setup_key(const struct build_opts *o)
{
	const char *pw = password(o);
	char pwd[32] = "none";

	/* The stamp is a plain file: keep a digest, never the password. */
	if (pw) {
		struct digest d;

		digest_init(&d);
		digest_str(&d, pw);
		snprintf(pwd, sizeof(pwd), "%016llx", (unsigned long long)digest_derive(&d, "pw"));
	}
	return build_xasprintf("hostname=%s\nserial=%s\nroot-password=%s\ndisk-id=%08" PRIx32 "\n",
			       o->hostname, o->serial, pwd, build_config_disk_id(o));
}

static bool base_built(const struct build_opts *o, const char *key)
{
	char *p = build_xasprintf("%s/etc/debian_version", o->rootfs);
	bool ok = build_stage_stamp_matches(o->state_dir, "rootfs", key) && build_fs_exists(p);

	free(p);
	return ok;
}

static int read_stdin_password(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (stdin_password)
		return 0;
	n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		log_error("--root-password -: nothing to read on stdin");
		return -EINVAL;
	}
	line[strcspn(line, "\r\n")] = '\0';
	stdin_password = line;
	return 0;
}

static int check_mountpoint(const char *rootfs)
{
	char *copy = build_xstrdup(rootfs);
	struct stat a, b;
	int ret = 0;

	if (stat(rootfs, &a) == 0 && stat(dirname(copy), &b) == 0 && a.st_dev != b.st_dev) {
		log_error("%s is a mount point: rpifs builds the tree next to it and renames it"
			  " into place, which a mount point cannot take. Use a directory on the"
			  " file system it is mounted on", rootfs);
		ret = -EINVAL;
	}
	free(copy);
	return ret;
}

int build_rootfs_check(struct build_opts *o)
{
	char *bk = NULL, *sk = NULL, *m = NULL;
	int ret = 0;

	if (!use_mmdebstrap(o) && geteuid() != 0) {
		log_error("--mode root needs root: debootstrap chroots into the new tree, creates"
			  " device nodes and sets owners. Run it as root (sudo rpifs build rootfs"
			  " ...), or leave --mode out to build as an ordinary user in a user"
			  " namespace (mmdebstrap --mode=unshare)");
		return -EPERM;
	}
	build_userns_free(&ns);
	if (in_userns(o))
		build_userns_lookup(&ns);     /* for the key; checked below */
	bk = base_key(o);
	if (o->root_password && !strcmp(o->root_password, "-")) {
		ret = read_stdin_password();
		if (ret)
			goto out;
	}
	sk = setup_key(o);
	if (!o->force && base_built(o, bk) &&
	    build_stage_stamp_matches(o->state_dir, "rootfs-setup", sk))
		goto out;           /* nothing to do: no privilege needed */
	/* Everything an ordinary user lacks, reported at once, before anything
	 * is created: each message says what to run. */
	if (in_userns(o)) {
		/* ROOTFS.rpifs and its tmp/ are made 0755 by the run itself. */
		char *parent = build_xstrdup(o->rootfs);

		ret = build_userns_check(&ns, dirname(parent));
		free(parent);
		if (ret)
			goto out;
	}
	if (build_fs_exists(o->rootfs) && !build_fs_is_dir(o->rootfs)) {
		log_error("%s exists and is not a directory", o->rootfs);
		ret = -ENOTDIR;
		goto out;
	}
	if (!base_built(o, bk) && build_fs_is_dir(o->rootfs) && !build_fs_dir_is_empty(o->rootfs) &&
	    !o->force) {
		char *idmap = build_xasprintf("%s/idmap", o->state_dir);
		const char *how = in_userns(o) ? "as this user, in a user namespace" :
				  use_mmdebstrap(o) ? "mmdebstrap as root" : "debootstrap as root";

		log_error("%s is not empty and was not built by `rpifs build rootfs` with these"
			  " options (suite %s, variant %s%s%s, %s)%s: --force replaces it, deleting"
			  " what it holds", o->rootfs, o->suite, o->variant,
			  o->include ? ", include " : "", o->include ? o->include : "", how,
			  !in_userns(o) && build_fs_exists(idmap) ?
			  "; it was built in a user namespace (ROOTFS.rpifs/idmap): rerun the stage"
			  " as the user who built it" : "");
		free(idmap);
		ret = -EEXIST;
		goto out;
	}
	/* A user's namespace may replace only what it owns: find out now,
	 * not after the bootstrap. */
	if (in_userns(o) && build_fs_is_dir(o->rootfs) && !build_fs_dir_is_empty(o->rootfs)) {
		struct stat st;

		if (stat(o->rootfs, &st) == 0 && st.st_uid != getuid() &&
		    (st.st_uid < ns.sub || st.st_uid - ns.sub >= ns.count)) {
			log_error("%s belongs to uid %u, not to %s's user namespace: only root"
				  " can replace it (sudo rpifs build rootfs ..., or remove it as"
				  " root), or build elsewhere", o->rootfs, (unsigned)st.st_uid,
				  ns.user ? ns.user : "this user");
			ret = -EPERM;
			goto out;
		}
	}
	ret = check_mountpoint(o->rootfs);
	if (ret)
		goto out;
	if (!use_mmdebstrap(o) && !build_fs_have_program("debootstrap")) {
		log_error("rootfs: debootstrap not found: install the Debian package debootstrap");
		ret = -ENOENT;
		goto out;
	}
	if (use_mmdebstrap(o) && !in_userns(o) && !build_fs_have_program("mmdebstrap")) {
		log_error("rootfs: mmdebstrap not found (--mode unshare): install the Debian"
			  " packages mmdebstrap and arch-test");
		ret = -ENOENT;
		goto out;
	}
	ret = build_binfmt_check_tools();
	if (ret)
		goto out;
	if (!o->mirror && build_mirror_default(&m)) {
		log_error("rootfs: no Debian archive in the host's apt configuration"
			  " (/etc/apt/sources.list, sources.list.d): pass --mirror URL");
		ret = -ENOENT;
	}
out:
	free(m);
	free(sk);
	free(bk);
	return ret;
}

/* Fail in seconds, naming the mirror, rather than deep in debootstrap. */
static int check_mirror(struct stage *s, const char *mirror, const char *suite)
{
	char *url = build_xasprintf("%s/dists/%s/Release", mirror, suite);
	int ret = 0;

	build_stage_step(s, "checking the mirror %s", mirror);
	if (!strncmp(mirror, "file:", 5)) {
		const char *p = mirror + 5;

		while (p[0] == '/' && p[1] == '/')
			p++;
		free(url);
		url = build_xasprintf("%s/dists/%s/Release", p, suite);
		if (!build_fs_exists(url)) {
			log_error("--mirror %s: %s does not exist (not a Debian archive, or no suite"
				  " %s)", mirror, url, suite);
			ret = -ENOENT;
		}
	} else if (build_fs_have_program("wget")) {
		struct run r = {
			.argv = (char *[]){ "wget", "-q", "--tries=1", "--timeout=20", "-O",
					    "/dev/null", url, NULL },
			.log_fd = s->log_fd,
		};

		ret = build_run_child(&r);
		if (ret == -EIO) {
			/* wget's exit codes: 4 network, 5 TLS, 8 an HTTP error. */
			log_error("mirror %s unreachable: cannot fetch %s (%s). Check --mirror"
				  " (default: the host's apt configuration)", mirror, url,
				  r.status == 4 ? "network failure: connection refused or timed out" :
				  r.status == 5 ? "TLS failure" :
				  r.status == 8 ? "the server answered with an error: no such suite?" :
				  "wget failed");
		} else if (ret) {
			log_error("cannot run wget: %s", strerror(-ret));
		}
	}
	free(url);
	return ret;
}

/* debootstrap's "I: Retrieving libc6 2.36-9" lines make the progress. */
static void progress_line(void *ctx, const char *line)
{
	struct stage *s = ctx;

	if (!strncmp(line, "I: ", 3))
		build_stage_detail(s, "%.100s", line + 3);
}

static int write_text(const char *tree, const char *rel, const char *text)
{
	char *p = build_xasprintf("%s/%s", tree, rel);
	int ret = build_fs_write_atomic(p, text, strlen(text), 0644);

	if (ret)
		log_error("%s: %s", p, strerror(-ret));
	free(p);
	return ret;
}

static int enable_getty(const char *tree, const char *tty)
{
	char *dir = build_xasprintf("%s/etc/systemd/system/getty.target.wants", tree), *link = NULL;
	struct dirent *e;
	DIR *d;
	int ret = build_fs_mkdir_p(dir, 0755);

	if (ret)
		goto out;
	/* One serial getty, the one asked for now: drop earlier choices. */
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		if (!strncmp(e->d_name, "serial-getty@", 13)) {
			char *p = build_xasprintf("%s/%s", dir, e->d_name);
			struct stat st;

			if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode))
				unlink(p);
			free(p);
		}
	}
	if (d)
		closedir(d);
	link = build_xasprintf("%s/serial-getty@%s.service", dir, tty);
	if (symlink(GETTY_TEMPLATE, link) < 0)
		ret = -errno;
out:
	if (ret)
		log_error("%s: cannot enable a serial getty: %s", dir, strerror(-ret));
	free(link);
	free(dir);
	return ret;
}

/* fstab, hostname, hosts, getty, root password: applied to a finished
 * tree, and again whenever these options change. */
static int setup(struct stage *s, const struct build_opts *o, const char *tree)
{
	const char *pw = password(o);
	char *fstab, *hosts, *host, root[64], boot[64];
	int ret;

	build_stage_step(s, "configuring the tree (fstab, hostname, getty)");
	build_config_fstab_names(o, root, boot);
	fstab = build_xasprintf(
		"# Written by `rpifs build rootfs`. The SD card: partition 2 is /, partition 1\n"
		"# (FAT32, ROOTFS/boot in the image) is /boot. The names are the ones\n"
		"# boot/cmdline.txt uses (MBR disk id, or GPT UUIDs for a Pi 5);\n"
		"# `rpifs build config` keeps both in step.\n"
		"# /boot has fsck pass 0 and nofail: a minimal tree has no fsck.vfat, and a\n"
		"# kernel without VFAT support must still boot.\n"
		"# <file system>      <mount point> <type> <options>                <dump> <pass>\n"
		"%-20s  /             ext4   defaults,noatime         0      1\n"
		"%-20s  /boot         vfat   defaults,noatime,nofail  0      0\n",
		root, boot);
	host = build_xasprintf("%s\n", o->hostname);
	hosts = build_xasprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n"
				"::1\t\tlocalhost ip6-localhost ip6-loopback\n"
				"ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n",
				o->hostname);
	ret = write_text(tree, "etc/fstab", fstab);
	if (!ret)
		ret = write_text(tree, "etc/hostname", host);
	if (!ret)
		ret = write_text(tree, "etc/hosts", hosts);
	if (!ret)
		ret = enable_getty(tree, o->serial);
	if (!ret && pw) {
		char *in = build_xasprintf("root:%s\n", pw);

		build_stage_step(s, "setting root's password");
		ret = build_binfmt_ensure(s);
		if (!ret && !*pw)
			ret = build_stage_run(s,
					      (char *[]){ "chroot", (char *)tree, "passwd", "-d",
							  "root", NULL },
					      NULL, child_env, NULL, NULL, NULL);
		else if (!ret)
			ret = build_stage_run(s, (char *[]){ "chroot", (char *)tree, "chpasswd",
							     NULL },
					      NULL, child_env, in, NULL, NULL);
		free(in);
	}
	free(fstab);
	free(hosts);
	free(host);
	return ret;
}

static int count_packages(const char *tree)
{
	char *p = build_xasprintf("%s/var/lib/dpkg/status", tree), *text = NULL;
	int n = 0;

	if (build_fs_read(p, &text, NULL) == 0)
		for (char *q = text; (q = strstr(q, "Package: ")); q += 9)
			if (q == text || q[-1] == '\n')
				n++;
	free(text);
	free(p);
	return n;
}

/* debootstrap keeps its own log in the tree: copy its end into ours. */
static void keep_debootstrap_log(struct stage *s, const char *tree)
{
	char *p = build_xasprintf("%s/debootstrap/debootstrap.log", tree), *text = NULL;
	size_t len = 0;

	if (build_fs_read(p, &text, &len) == 0 && len) {
		const char *start = len > 8192 ? text + len - 8192 : text;

		build_stage_log(s, "# ---- end of %s ----\n%s", p, start);
	}
	free(text);
	free(p);
}

/* Swap the finished tree in: ROOTFS is never half-built. */
static int place(struct stage *s, const struct build_opts *o, const char *tree)
{
	char *old = NULL;
	int ret = 0;

	if (build_fs_exists(o->rootfs)) {
		if (build_fs_dir_is_empty(o->rootfs)) {
			if (rmdir(o->rootfs) < 0)
				ret = -errno;
		} else {
			old = build_xasprintf("%s/tmp/rootfs-old.%d", o->state_dir, (int)getpid());
			if (rename(o->rootfs, old) < 0)
				ret = -errno;
		}
		if (ret) {
			log_error("%s: cannot move it aside: %s", o->rootfs, strerror(-ret));
			goto out;
		}
	}
	if (rename(tree, o->rootfs) < 0) {
		ret = -errno;
		log_error("%s -> %s: %s", tree, o->rootfs, strerror(-ret));
		if (old && rename(old, o->rootfs) == 0) {
			free(old);
			old = NULL;
		}
		goto out;
	}
	if (old) {
		build_stage_step(s, "removing the previous tree");
		build_fs_remove_tree(old);
	}
out:
	free(old);
	return ret;
}

/* One bootstrap step: argv run as the stage's child, its output lines as
 * progress; its time in t (for the summary) and the log ("# WHAT took T"). */
static int timed_run(struct stage *s, const char *step, char *const *argv, const char *what,
		     char *t, size_t tlen)
{
	double t0 = build_stage_elapsed(s);
	int ret;

	build_stage_step(s, step);
	ret = build_stage_run(s, argv, NULL, child_env, NULL, progress_line, s);
	if (ret)
		return ret;
	build_stage_fmt_elapsed(build_stage_elapsed(s) - t0, t, tlen);
	build_stage_log(s, "# %s took %s", what, t);
	return 0;
}

static int build_tree(struct stage *s, const struct build_opts *o, const char *mirror,
		      const char *tree)
{
	char *variant = build_xasprintf("--variant=%s", o->variant);
	char *include = o->include ? build_xasprintf("--include=%s", o->include) : NULL;
	char *argv[16], t1[16], t2[16];
	int n = 0, ret;

	argv[n++] = "debootstrap";
	argv[n++] = "--arch=arm64";
	argv[n++] = "--foreign";
	argv[n++] = "--components=" COMPONENTS;
	if (strcmp(o->variant, "default"))
		argv[n++] = variant;
	if (include)
		argv[n++] = include;
	argv[n++] = (char *)o->suite;
	argv[n++] = (char *)tree;
	argv[n++] = (char *)mirror;
	argv[n] = NULL;

	ret = timed_run(s, "debootstrap, first stage (download, unpack)", argv, "first stage",
			t1, sizeof(t1));
	if (ret)
		goto out;
	if (!strcmp(o->suite, "trixie"))
		build_stage_say(s,
				"note: trixie's second stage under qemu with bookworm's debootstrap"
				" took over an hour on a 2-core machine");

	ret = timed_run(s, "debootstrap, second stage (configure, under qemu)",
			(char *[]){ "chroot", (char *)tree, "/debootstrap/debootstrap",
				    "--second-stage", NULL },
			"second stage", t2, sizeof(t2));
	if (ret)
		goto out;
	build_stage_say(s, "debootstrap: first stage %s, second stage %s, %d packages", t1, t2,
			count_packages(tree));
out:
	if (ret)
		keep_debootstrap_log(s, tree);
	free(variant);
	free(include);
	return ret;
}

bool build_rootfs_userns_tree(const struct build_opts *o)
{
	char *p = build_xasprintf("%s/idmap", o->state_dir);
	bool yes = ((o->cmd & CMD_ROOTFS) && in_userns(o)) || build_fs_exists(p);

	free(p);
	return yes;
}

/* mmdebstrap --mode=unshare: one run, download to configured tree. Its
 * variants "minbase" and "debootstrap" are debootstrap's minbase and
 * default package sets. */
static int build_tree_mmdebstrap(struct stage *s, const struct build_opts *o, const char *mirror,
				 const char *tree)
{
	char *variant = build_xasprintf("--variant=%s",
					strcmp(o->variant, "default") ? o->variant : "debootstrap");
	char *include = o->include ? build_xasprintf("--include=%s", o->include) : NULL;
	char *url = NULL, *argv[16], t[16];
	int n = 0, ret;

	/* The namespace's root is "others" on the host: it cannot read through
	 * a file:// mirror's path as the user can; copy:// makes mmdebstrap
	 * copy the files in (they must be readable by others). */
	if (!strncmp(mirror, "file:", 5))
		url = build_xasprintf("copy:%s", mirror + 5);
	argv[n++] = "mmdebstrap";
	argv[n++] = "--mode=unshare";
	argv[n++] = "--architectures=arm64";
	argv[n++] = "--components=" COMPONENTS;
	argv[n++] = variant;
	/* Merged /usr the way debootstrap makes it (symlinks + usr-is-merged):
	 * else mmdebstrap installs usrmerge, which pulls in perl, and the
	 * package set is not debootstrap's. */
	if (build_fs_is_dir(MERGED_USR_HOOKS))
		argv[n++] = "--hook-dir=" MERGED_USR_HOOKS;
	if (include)
		argv[n++] = include;
	argv[n++] = (char *)o->suite;
	argv[n++] = (char *)tree;
	argv[n++] = url ? url : (char *)mirror;
	argv[n] = NULL;

	ret = timed_run(s, "mmdebstrap --mode=unshare (download, unpack, configure under qemu)",
			argv, "mmdebstrap", t, sizeof(t));
	if (ret)
		goto out;
	build_stage_say(s, "mmdebstrap: %s, %d packages", t, count_packages(tree));
out:
	free(url);
	free(variant);
	free(include);
	return ret;
}

/* The steps after the bootstrap, as the tree's owner: root, or the root
 * of a user namespace with the bootstrap's map (build_userns.h). */
struct job {
	struct stage *s;
	const struct build_opts *o;
	const char *tree;
};

static int job_setup(void *arg)
{
	struct job *j = arg;

	return setup(j->s, j->o, j->tree);
}

static int job_place(void *arg)
{
	struct job *j = arg;

	return place(j->s, j->o, j->tree);
}

static int as_owner(struct job *j, int (*fn)(void *arg))
{
	return in_userns(j->o) ? build_userns_call(&ns, j->s->log_fd, fn, j) : fn(j);
}

/* The map the mount needs next to the tree, or none for real owners. */
static int record_idmap(const struct build_opts *o)
{
	char *p;
	int ret = 0;

	if (in_userns(o))
		return build_userns_write_idmap(&ns, o->state_dir);
	p = build_xasprintf("%s/idmap", o->state_dir);
	if (unlink(p) < 0 && errno != ENOENT) {
		ret = -errno;
		log_error("%s: %s (the tree has real owners now)", p, strerror(-ret));
	}
	free(p);
	return ret;
}

int build_rootfs_run(struct build_opts *o, int index, int count)
{
	char *bk = NULL, *sk = NULL, *mirror = NULL, *tree = NULL;
	struct stage s;
	struct job j = { .s = &s, .o = o };
	int ret;

	ret = build_stage_begin(&s, o->state_dir, "rootfs", index, count);
	if (ret)
		goto out_nostage;
	ret = build_rootfs_check(o);
	if (ret)
		goto out;
	bk = base_key(o);
	sk = setup_key(o);
	if (!o->force && base_built(o, bk)) {
		if (build_stage_stamp_matches(o->state_dir, "rootfs-setup", sk)) {
			build_stage_skip(&s, o->suite);
			goto out_nostage;
		}
		/* Only hostname, getty, password or disk id changed. */
		build_stage_stamp_clear(o->state_dir, "rootfs-setup");
		j.tree = o->rootfs;
		ret = as_owner(&j, job_setup);
		if (!ret)
			ret = build_stage_stamp_write(o->state_dir, "rootfs-setup", sk);
		build_stage_detail(&s, "tree up to date; fstab, hostname, getty%s reapplied",
				   password(o) ? ", password" : "");
		goto out;
	}
	build_stage_stamp_clear(o->state_dir, "rootfs");
	build_stage_stamp_clear(o->state_dir, "rootfs-setup");
	mirror = o->mirror ? build_xstrdup(o->mirror) : NULL;
	if (!mirror && build_mirror_default(&mirror)) {
		log_error("no Debian archive in the host's apt configuration: pass --mirror URL");
		ret = -ENOENT;
		goto out;
	}
	for (size_t n = strlen(mirror); n > 1 && mirror[n - 1] == '/'; n--)
		mirror[n - 1] = '\0';
	build_stage_log(&s, "# mirror %s, suite %s, variant %s, %s", mirror, o->suite, o->variant,
			in_userns(o) ? "mmdebstrap --mode=unshare as a user" :
			use_mmdebstrap(o) ? "mmdebstrap --mode=unshare as root" : "debootstrap");
	if (in_userns(o))
		build_stage_log(&s, "# user namespace: %s's ids %" PRIu32 "..%" PRIu32 " are 0..%"
				PRIu32 " inside", ns.user, ns.sub, ns.sub + (ns.count - 1),
				ns.count - 1);
	ret = check_mirror(&s, mirror, o->suite);
	/* A user cannot register binfmt: the check said whether it is. */
	if (!ret && !in_userns(o))
		ret = build_binfmt_ensure(&s);
	if (!ret)
		ret = build_stage_tmpdir(o->state_dir, "rootfs", &tree);
	if (ret)
		goto out;
	/* mkdtemp made it 0700: it becomes "/". */
	if (chmod(tree, 0755) < 0) {
		ret = -errno;
		goto out;
	}
	/* The namespace's root is "others" to the directories above the tree,
	 * which the user's umask made. */
	if (in_userns(o)) {
		char *tmp = build_xasprintf("%s/tmp", o->state_dir);

		if (chmod(o->state_dir, 0755) < 0 || chmod(tmp, 0755) < 0) {
			ret = -errno;
			log_error("%s: chmod: %s", tmp, strerror(-ret));
		}
		free(tmp);
		if (ret)
			goto out;
	}
	j.tree = tree;
	ret = use_mmdebstrap(o) ? build_tree_mmdebstrap(&s, o, mirror, tree) :
				  build_tree(&s, o, mirror, tree);
	if (!ret)
		ret = as_owner(&j, job_setup);
	if (!ret)
		ret = as_owner(&j, job_place);
	if (ret)
		goto out;
	free(tree);
	tree = NULL;
	ret = record_idmap(o);
	if (!ret)
		ret = build_stage_stamp_write(o->state_dir, "rootfs", bk);
	if (!ret)
		ret = build_stage_stamp_write(o->state_dir, "rootfs-setup", sk);
	build_stage_detail(&s, "%s %s, %d packages", o->suite, o->variant,
			   count_packages(o->rootfs));
out:
	if (tree) {
		build_stage_step(&s, "removing the unfinished tree");
		if (in_userns(o))
			build_userns_remove_tree(&ns, tree);
		else
			build_fs_remove_tree(tree);
	}
	ret = build_stage_end(&s, ret);
out_nostage:
	free(tree);
	free(mirror);
	free(sk);
	free(bk);
	return ret;
}
