/* build_config.c - write boot/config.txt and boot/cmdline.txt. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "build.h"
#include "build_board.h"
#include "build_config.h"
#include "build_fs.h"
#include "build_stage.h"
#include "build_userns.h"
#include "cmdline.h"
#include "digest.h"
#include "identity.h"
#include "log.h"
#include "parttable.h"

/* root=PARTUUID=xxxxxxxx-02 in cmdline.txt, read by the function rpifs's
 * mount reads it with (cmdline.h): the id the mount will use. 0: none. */
static uint32_t id_from_cmdline(const char *rootfs)
{
	char *path = build_xasprintf("%s/boot/cmdline.txt", rootfs), *text = NULL;
	uint32_t id = 0;

	if (build_fs_read(path, &text, NULL) == 0 && cmdline_disk_id(text, &id))
		id = 0;
	free(text);
	free(path);
	return id;
}

uint32_t build_config_disk_id(const struct build_opts *o)
{
	struct digest d;
	uint32_t id;

	if (o->disk_id)
		return o->disk_id;
	id = id_from_cmdline(o->rootfs);
	if (id)
		return id;
	/* Derived from the path: stable for this tree, different for another. */
	digest_init(&d);
	digest_str(&d, o->rootfs);
	id = (uint32_t)digest_derive(&d, "build-disk-id");
	return id ? id : 1;
}

/* root=PARTUUID=<uuid> in cmdline.txt, read with the mount's reader
 * (cmdline_root): the UUID the mount gives partition 2, lower-cased (the
 * kernel ignores case). false: cmdline.txt names none. */
static bool uuid_from_cmdline(const char *rootfs, char out[BUILD_UUID_LEN])
{
	char *path = build_xasprintf("%s/boot/cmdline.txt", rootfs), *text = NULL;
	const char *v;
	char val[BUILD_UUID_LEN];
	uint8_t u[16];
	size_t len;
	bool ok = false;

	if (build_fs_read(path, &text, NULL) == 0 && cmdline_root(text, &v, &len) == 0 &&
	    len == 9 + 36 && !strncasecmp(v, "PARTUUID=", 9)) {
		memcpy(val, v + 9, 36);
		val[36] = '\0';
		ok = id_uuid(val, u);
		if (ok)
			parttable_uuid_str(u, out);     /* lower case */
	}
	free(text);
	free(path);
	return ok;
}

/* An RFC 4122 version 4 UUID derived from seed and purpose, as the mount
 * derives the ext4 UUID (image.c): stable, no clock, no randomness. */
static void uuid_derive(const char *seed, const char *purpose, char out[BUILD_UUID_LEN])
{
	struct digest d;
	uint8_t u[16];

	digest_init(&d);
	digest_str(&d, seed);
	digest_uuid(&d, purpose, u);
	parttable_uuid_str(u, out);
}

void build_config_gpt_uuids(const struct build_opts *o, char root[BUILD_UUID_LEN],
			    char boot[BUILD_UUID_LEN])
{
	/* The root's from cmdline.txt when it names one (kept across runs,
	 * and a tree moved elsewhere keeps it), else from the path like the
	 * MBR disk id. The boot partition's follows from the root's: one
	 * source, so the two never disagree. */
	if (!uuid_from_cmdline(o->rootfs, root))
		uuid_derive(o->rootfs, "build-gpt-root-partuuid", root);
	uuid_derive(root, "build-gpt-boot-partuuid", boot);
}

void build_config_fstab_names(const struct build_opts *o, char root[64], char boot[64])
{
	char r[BUILD_UUID_LEN], b[BUILD_UUID_LEN];
	uint32_t id;

	if (uuid_from_cmdline(o->rootfs, r)) {
		build_config_gpt_uuids(o, r, b);
		snprintf(root, 64, "PARTUUID=%s", r);
		snprintf(boot, 64, "PARTUUID=%s", b);
		return;
	}
	id = build_config_disk_id(o);
	snprintf(root, 64, "PARTUUID=%08" PRIx32 "-02", id);
	snprintf(boot, 64, "PARTUUID=%08" PRIx32 "-01", id);
}

/* The kernel config.txt boots: --kernel, else the board's kernel_name=
 * (which `build kernel` installs it as), else what `build kernel`
 * installed, else the newest vmlinuz-* (then Image, kernel8.img). */
static int pick_kernel(const struct build_opts *o, const struct board *b, char **name)
{
	char *boot = build_xasprintf("%s/boot", o->rootfs), *relf = NULL, *rel = NULL, *p;
	struct dirent **ents = NULL;
	time_t newest = 0;
	int n, ret = 0;

	*name = NULL;
	if (o->kernel) {
		p = build_xasprintf("%s/%s", boot, o->kernel);
		if (!build_fs_is_nonempty_file(p)) {
			log_error("--kernel %s: no such file in %s", o->kernel, boot);
			ret = -ENOENT;
		} else {
			*name = build_xstrdup(o->kernel);
		}
		free(p);
		goto out;
	}
	if (b->kernel_name) {
		/* Another kernel (a mainline vmlinuz-*) would not boot this board. */
		p = build_xasprintf("%s/%s", boot, b->kernel_name);
		if (!build_fs_is_nonempty_file(p)) {
			log_error("no kernel %s in %s (board %s boots the kernel by that name):"
				  " run `rpifs build kernel --board %s`, or pass --kernel NAME",
				  b->kernel_name, boot, b->name, b->name);
			ret = -ENOENT;
		} else {
			*name = build_xstrdup(b->kernel_name);
		}
		free(p);
		goto out;
	}
	relf = build_xasprintf("%s/kernel-release", o->state_dir);
	if (build_fs_read(relf, &rel, NULL) == 0) {
		rel[strcspn(rel, "\n")] = '\0';
		p = build_xasprintf("%s/vmlinuz-%s", boot, rel);
		if (build_fs_is_nonempty_file(p))
			*name = build_xasprintf("vmlinuz-%s", rel);
		free(p);
		if (*name)
			goto out;
	}
	n = scandir(boot, &ents, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		struct stat st;

		p = build_xasprintf("%s/%s", boot, ents[i]->d_name);
		if (!strncmp(ents[i]->d_name, "vmlinuz-", 8) && stat(p, &st) == 0 &&
		    S_ISREG(st.st_mode) && st.st_size > 0 && (!*name || st.st_mtime >= newest)) {
			free(*name);
			*name = build_xstrdup(ents[i]->d_name);
			newest = st.st_mtime;
		}
		free(p);
		free(ents[i]);
	}
	free(ents);
	for (const char *const *f = (const char *const[]){ "Image", "kernel8.img", NULL };
	     !*name && *f; f++) {
		p = build_xasprintf("%s/%s", boot, *f);
		if (build_fs_is_nonempty_file(p))
			*name = build_xstrdup(*f);
		free(p);
	}
	if (!*name) {
		log_error("no kernel in %s (vmlinuz-*, Image, kernel8.img): run"
			  " `rpifs build kernel` first, or pass --kernel NAME", boot);
		ret = -ENOENT;
	}
out:
	free(rel);
	free(relf);
	free(boot);
	return ret;
}

static char *config_txt(const struct board *b, const char *kernel)
{
	char *s = build_xasprintf(
		"# Written by `rpifs build config --board %s`; it rewrites this file.\n"
		"# %s\n"
		"# A 64-bit kernel on a Pi 3 or 4 needs arm_64bit=1.\n"
		"arm_64bit=1\n"
		"kernel=%s\n"
		"device_tree=%s\n",
		b->name, b->description ? b->description : b->name, kernel, b->dtb);

	for (int i = 0; i < b->n_config; i++) {
		char *t = build_xasprintf("%s%s\n", s, b->config[i]);

		free(s);
		s = t;
	}
	return s;
}

/* root is what follows root=: "PARTUUID=1234abcd-02" or "PARTUUID=<uuid>". */
static char *cmdline_txt(const char *console, const char *root)
{
	char *copy = build_xstrdup(console), *save = NULL, *c, *s = build_xstrdup("");

	for (c = strtok_r(copy, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
		char *t = build_xasprintf("%sconsole=%s ", s, c);

		free(s);
		s = t;
	}
	free(copy);
	/* One line: the firmware passes the first line only. */
	copy = build_xasprintf("%sroot=%s rootfstype=ext4 rootwait\n", s, root);
	free(s);
	return copy;
}

/* The partition names `build config` writes: PARTUUID=... of / (partition
 * 2) and /boot (partition 1); the disk id for MBR ones, 0 for GPT. */
struct names {
	char root[64], boot[64];
	uint32_t disk_id;
};

/* etc/fstab's line (len bytes at line) with its first field replaced by
 * the name of its mount point's partition, appended to out; false when
 * the line is left alone (not a PARTUUID= line, or already right). */
static bool fstab_line(const char *line, size_t len, const struct names *n, char **out)
{
	size_t f1 = strcspn(line, " \t\n"), m0, m1;
	const char *want = NULL, *h = line + 9;
	char mbr[32], *t;

	if (f1 > len || f1 < 9 || strncmp(line, "PARTUUID=", 9))
		return false;
	m0 = f1 + strspn(line + f1, " \t");
	m1 = m0 + strcspn(line + m0, " \t\n");
	if (m1 > len)
		m1 = len;
	if (m1 - m0 == 1 && line[m0] == '/')
		want = n->root;
	else if (m1 - m0 == 5 && !strncmp(line + m0, "/boot", 5))
		want = n->boot;
	else if (n->disk_id && f1 == 20 && h[8] == '-' && cmdline_hex(h, 8, &(uint32_t){ 0 })) {
		/* Another partition of the same MBR disk: its disk id follows. */
		snprintf(mbr, sizeof(mbr), "PARTUUID=%08" PRIx32 "%.3s", n->disk_id, h + 8);
		want = mbr;
	}
	if (!want || (strlen(want) == f1 && !strncasecmp(line, want, f1)))
		return false;
	t = build_xasprintf("%s%s%.*s", *out, want, (int)(len - f1), line + f1);
	free(*out);
	*out = t;
	return true;
}

/* `build rootfs` wrote etc/fstab with the disk id it saw then; keep it in
 * step when the names change, MBR disk id or GPT UUIDs (only a file rpifs
 * wrote is touched; lines other than PARTUUID= ones are kept as they are). */
static int update_fstab(struct stage *s, const struct build_opts *o, const struct names *n)
{
	char *path = build_xasprintf("%s/etc/fstab", o->rootfs), *text = NULL, *out = NULL;
	bool changed = false;
	int ret = 0;

	if (build_fs_read(path, &text, NULL) || !strstr(text, "rpifs build rootfs"))
		goto out;
	out = build_xstrdup("");
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n');

		if (fstab_line(p, len, n, &out)) {
			changed = true;
		} else {
			char *t = build_xasprintf("%s%.*s", out, (int)len, p);

			free(out);
			out = t;
		}
		p += len;
	}
	if (changed) {
		ret = build_fs_write_atomic(path, out, strlen(out), 0644);
		if (ret)
			log_error("%s: %s", path, strerror(-ret));
		else
			build_stage_say(s, "etc/fstab updated to %s and %s", n->root, n->boot);
	}
out:
	free(out);
	free(text);
	free(path);
	return ret;
}

/* Write path unless it already holds text. 1 if written, 0 if equal. */
static int put(const char *path, const char *text)
{
	char *cur = NULL;
	int ret;

	if (build_fs_read(path, &cur, NULL) == 0 && !strcmp(cur, text)) {
		free(cur);
		return 0;
	}
	free(cur);
	ret = build_fs_write_atomic(path, text, strlen(text), 0644);
	if (ret) {
		log_error("%s: %s", path, strerror(-ret));
		return ret;
	}
	return 1;
}

/* The writes into ROOTFS, as the tree's owner (build_userns_as_owner). */
struct job {
	struct stage *s;
	const struct build_opts *o;
	const char *boot, *cfg_path, *cmd_path, *cfg, *cmd;
	const struct names *names;
};

/* Does path hold text already? */
static bool same(const char *path, const char *text)
{
	char *cur = NULL;
	bool eq = build_fs_read(path, &cur, NULL) == 0 && !strcmp(cur, text);

	free(cur);
	return eq;
}

static int job_write(void *arg)
{
	struct job *j = arg;
	int ret = build_fs_mkdir_p(j->boot, 0755), w1, w2;

	if (ret) {
		log_error("%s: %s", j->boot, strerror(-ret));
		return ret;
	}
	if (j->o->force) {
		unlink(j->cfg_path);
		unlink(j->cmd_path);
	}
	w1 = put(j->cfg_path, j->cfg);
	w2 = w1 < 0 ? 0 : put(j->cmd_path, j->cmd);
	if (w1 < 0 || w2 < 0)
		return w1 < 0 ? w1 : w2;
	return update_fstab(j->s, j->o, j->names);
}

/* --disk-id is an MBR disk id: meaningless for a board named by GPT UUIDs. */
static int check_label(const struct build_opts *o, const struct board *b)
{
	if (b->gpt && o->disk_id) {
		log_error("--disk-id: board %s names its partitions by GPT partition UUIDs"
			  " (label=gpt in its profile), not by an MBR disk id: leave --disk-id"
			  " out", b->name);
		return -EINVAL;
	}
	return 0;
}

int build_config_check(struct build_opts *o)
{
	struct board b;
	int ret = build_board_load(o->board, &b);

	if (!ret)
		ret = check_label(o, &b);
	build_board_free(&b);
	return ret;
}

int build_config_run(struct build_opts *o, int index, int count)
{
	char *boot = build_xasprintf("%s/boot", o->rootfs), *kernel = NULL;
	char *cfg_path = NULL, *cmd_path = NULL, *cfg = NULL, *cmd = NULL, *dtb = NULL;
	struct board b = { 0 };
	struct stage s;
	struct names n = { .disk_id = 0 };
	struct job j;
	bool written;
	int ret;

	ret = build_stage_begin(&s, o->state_dir, "config", index, count);
	if (ret)
		goto out_nostage;
	ret = build_board_load(o->board, &b);
	if (!ret)
		ret = check_label(o, &b);
	if (ret)
		goto out;
	ret = build_stage_need_rootfs(o->rootfs);
	if (ret)
		goto out;
	if (b.gpt) {
		char root[BUILD_UUID_LEN], bootp[BUILD_UUID_LEN];

		build_config_gpt_uuids(o, root, bootp);
		snprintf(n.root, sizeof(n.root), "PARTUUID=%s", root);
		snprintf(n.boot, sizeof(n.boot), "PARTUUID=%s", bootp);
	} else {
		n.disk_id = build_config_disk_id(o);
		snprintf(n.root, sizeof(n.root), "PARTUUID=%08" PRIx32 "-02", n.disk_id);
		snprintf(n.boot, sizeof(n.boot), "PARTUUID=%08" PRIx32 "-01", n.disk_id);
	}
	ret = pick_kernel(o, &b, &kernel);
	if (ret)
		goto out;
	dtb = build_xasprintf("%s/%s", boot, b.dtb);
	if (!build_fs_is_nonempty_file(dtb))
		build_stage_say(&s,
				"warning: %s is missing: the firmware will not find the device"
				" tree (does the kernel build for board %s?)",
				dtb, b.name);
	cfg = config_txt(&b, kernel);
	cmd = cmdline_txt(o->console ? o->console : b.console, n.root);
	cfg_path = build_xasprintf("%s/config.txt", boot);
	cmd_path = build_xasprintf("%s/cmdline.txt", boot);
	build_stage_log(&s, "config.txt:\n%scmdline.txt:\n%s", cfg, cmd);
	j = (struct job){ .s = &s, .o = o, .boot = boot, .cfg_path = cfg_path,
			  .cmd_path = cmd_path, .cfg = cfg, .cmd = cmd, .names = &n };
	/* Decided here: the writes may run in a child (a user namespace). */
	written = o->force || !same(cfg_path, cfg) || !same(cmd_path, cmd);
	ret = build_userns_as_owner(o, s.log_fd, job_write, &j);
	if (ret)
		goto out;
	if (b.gpt)
		build_stage_detail(&s, "kernel=%s, GPT, root %s", kernel, n.root);
	else
		build_stage_detail(&s, "kernel=%s, disk id %08" PRIx32, kernel, n.disk_id);
	if (!written) {
		build_stage_skip(&s, "config.txt and cmdline.txt already say this");
		goto out_nostage;
	}
out:
	ret = build_stage_end(&s, ret);
out_nostage:
	build_board_free(&b);
	free(dtb);
	free(cfg);
	free(cmd);
	free(cfg_path);
	free(cmd_path);
	free(kernel);
	free(boot);
	return ret;
}
