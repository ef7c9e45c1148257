/* build_config.c - write boot/config.txt and boot/cmdline.txt. */
#include <ctype.h>
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
#include "log.h"

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

/* The kernel config.txt boots: --kernel, else what `build kernel`
 * installed, else the newest vmlinuz-* (then Image, kernel8.img). */
static int pick_kernel(const struct build_opts *o, char **name)
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
		"# A 64-bit kernel on a Pi 3 needs arm_64bit=1.\n"
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

static char *cmdline_txt(const char *console, uint32_t id)
{
	char *copy = build_xstrdup(console), *save = NULL, *c, *s = build_xstrdup("");

	for (c = strtok_r(copy, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
		char *t = build_xasprintf("%sconsole=%s ", s, c);

		free(s);
		s = t;
	}
	free(copy);
	/* One line: the firmware passes the first line only. */
	copy = build_xasprintf("%sroot=PARTUUID=%08" PRIx32 "-02 rootfstype=ext4 rootwait\n", s,
			       id);
	free(s);
	return copy;
}

/* `build rootfs` wrote etc/fstab with the disk id it saw then; keep it in
 * step when the id changes (only a file rpifs wrote is touched). */
static int update_fstab(struct stage *s, const struct build_opts *o, uint32_t id)
{
	char *path = build_xasprintf("%s/etc/fstab", o->rootfs), *text = NULL, *p;
	char want[16];
	bool changed = false;
	int ret = 0;

	if (build_fs_read(path, &text, NULL) || !strstr(text, "rpifs build rootfs"))
		goto out;
	snprintf(want, sizeof(want), "%08" PRIx32, id);
	for (p = text; (p = strstr(p, "PARTUUID=")); p += 9) {
		char *h = p + 9;
		int i;

		for (i = 0; i < 8 && isxdigit((unsigned char)h[i]); i++)
			;
		if (i == 8 && h[8] == '-' && strncasecmp(h, want, 8)) {
			memcpy(h, want, 8);
			changed = true;
		}
	}
	if (changed) {
		ret = build_fs_write_atomic(path, text, strlen(text), 0644);
		if (ret)
			log_error("%s: %s", path, strerror(-ret));
		else
			build_stage_say(s, "etc/fstab updated to disk id %s", want);
	}
out:
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
	uint32_t id;
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
	return update_fstab(j->s, j->o, j->id);
}

int build_config_check(struct build_opts *o)
{
	struct board b;
	int ret = build_board_load(o->board, &b);

	build_board_free(&b);
	return ret;
}

int build_config_run(struct build_opts *o, int index, int count)
{
	char *boot = build_xasprintf("%s/boot", o->rootfs), *kernel = NULL;
	char *cfg_path = NULL, *cmd_path = NULL, *cfg = NULL, *cmd = NULL, *dtb = NULL;
	struct board b = { 0 };
	struct stage s;
	uint32_t id = build_config_disk_id(o);
	struct job j;
	bool written;
	int ret;

	ret = build_stage_begin(&s, o->state_dir, "config", index, count);
	if (ret)
		goto out_nostage;
	ret = build_board_load(o->board, &b);
	if (ret)
		goto out;
	ret = build_stage_need_rootfs(o->rootfs);
	if (ret)
		goto out;
	ret = pick_kernel(o, &kernel);
	if (ret)
		goto out;
	dtb = build_xasprintf("%s/%s", boot, b.dtb);
	if (!build_fs_is_nonempty_file(dtb))
		build_stage_say(&s,
				"warning: %s is missing: the firmware will not find the device"
				" tree (does the kernel build for board %s?)",
				dtb, b.name);
	cfg = config_txt(&b, kernel);
	cmd = cmdline_txt(o->console ? o->console : b.console, id);
	cfg_path = build_xasprintf("%s/config.txt", boot);
	cmd_path = build_xasprintf("%s/cmdline.txt", boot);
	build_stage_log(&s, "config.txt:\n%scmdline.txt:\n%s", cfg, cmd);
	j = (struct job){ .s = &s, .o = o, .boot = boot, .cfg_path = cfg_path,
			  .cmd_path = cmd_path, .cfg = cfg, .cmd = cmd, .id = id };
	/* Decided here: the writes may run in a child (a user namespace). */
	written = o->force || !same(cfg_path, cfg) || !same(cmd_path, cmd);
	ret = build_userns_as_owner(o, s.log_fd, job_write, &j);
	if (ret)
		goto out;
	build_stage_detail(&s, "kernel=%s, disk id %08" PRIx32, kernel, id);
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
