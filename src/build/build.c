/* build.c - `rpifs build STAGE ROOTFS [OPTIONS]`: run one stage or all;
 * the allocation helpers every build file uses. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include "build.h"
#include "build_config.h"
#include "build_firmware.h"
#include "build_fs.h"
#include "build_kernel.h"
#include "build_opts.h"
#include "build_rootfs.h"
#include "build_stage.h"
#include "build_userns.h"
#include "log.h"

static void oom(void)
{
	fputs("rpifs: error: out of memory\n", stderr);
	exit(1);
}

char *build_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	return s;
}

char *build_xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		oom();
	return d;
}

struct stage_def {
	enum build_cmd cmd;
	int (*check)(struct build_opts *o);
	int (*run)(struct build_opts *o, int index, int count);
};

/* The order `build all` runs them in: each needs the ones before. */
static const struct stage_def stages[] = {
	{ CMD_ROOTFS, build_rootfs_check, build_rootfs_run },
	{ CMD_KERNEL, build_kernel_check, build_kernel_run },
	{ CMD_FIRMWARE, build_firmware_check, build_firmware_run },
	{ CMD_CONFIG, build_config_check, build_config_run },
};
#define N_STAGES (int)(sizeof(stages) / sizeof(stages[0]))

/* One build per ROOTFS at a time: two would trample each other's scratch
 * trees and stamps. The lock lives (and dies) with the process. */
static int lock_state(const struct build_opts *o, int *fd)
{
	char *p = build_xasprintf("%s/lock", o->state_dir);
	int ret = build_fs_mkdir_p(o->state_dir, 0755);

	*fd = -1;
	if (ret) {
		log_error("%s: cannot create the state directory: %s", o->state_dir, strerror(-ret));
		goto out;
	}
	*fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0) {
		ret = -errno;
		log_error("%s: %s", p, strerror(-ret));
		goto out;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		log_error("another `rpifs build` is working on %s (lock %s held)", o->rootfs, p);
	}
out:
	free(p);
	return ret;
}

/* With the lock held, anything in STATE/tmp is a leftover of an
 * interrupted run (a half-built tree, maybe with /proc still mounted in
 * it): remove it before it piles up. */
static void clean_scratch(const struct build_opts *o)
{
	char *tmp = build_xasprintf("%s/tmp", o->state_dir);
	struct build_userns u = { 0 };
	int ret = 0;

	/* A user's leftovers may belong to the namespace's root. */
	if (build_fs_is_dir(tmp) && !build_fs_dir_is_empty(tmp))
		ret = geteuid() != 0 && build_userns_lookup(&u) == 0 ?
		      build_userns_remove_tree(&u, tmp) : build_fs_remove_tree(tmp);
	build_userns_free(&u);
	if (ret)
		log_warn("%s: cannot remove leftovers: %s", tmp, strerror(-ret));
	free(tmp);
}

int build_main(int argc, char **argv)
{
	struct build_opts o;
	struct timespec t0, t1;
	char el[32];
	int ret, lockfd = -1, count = 0, index = 0;

	ret = build_opts_parse(&o, argc, argv);
	if (ret) {
		build_opts_free(&o);
		return ret > 0 ? 0 : 2;
	}
	if (o.cmd == CMD_ALL && !o.src) {
		log_error("build all: --src LINUX_TREE is required (the kernel stage needs it)");
		ret = -EINVAL;
		goto out;
	}
	/* The later stages write into ROOTFS/boot and lib/modules, which in a
	 * tree made in a user namespace belong to the namespace's root: they
	 * write from such a namespace (build_userns_as_owner). */
	if (geteuid() != 0 && (o.cmd & ~CMD_ROOTFS) && build_rootfs_userns_tree(&o)) {
		ret = build_userns_check_stages(&o);
		if (ret)
			goto out;
	}
	/* Check every selected stage's inputs before the first one starts:
	 * a bad --src must not surface after a 5-minute debootstrap. */
	for (int i = 0; i < N_STAGES; i++) {
		if (!(o.cmd & stages[i].cmd))
			continue;
		count++;
		ret = stages[i].check(&o);
		if (ret)
			goto out;
	}
	ret = lock_state(&o, &lockfd);
	if (ret)
		goto out;
	clean_scratch(&o);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < N_STAGES && !ret; i++)
		if (o.cmd & stages[i].cmd)
			ret = stages[i].run(&o, ++index, count);
	if (count > 1) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		build_stage_fmt_elapsed((double)(t1.tv_sec - t0.tv_sec), el, sizeof(el));
		fprintf(stderr, "rpifs: build %s: %s after %s\n", o.cmd_name,
			ret ? "stopped" : "done", el);
	}
	if (!ret && o.cmd & CMD_CONFIG)
		fprintf(stderr, "rpifs: %s is ready: serve it with `rpifs %s MNT` (MNT/disk.img)\n",
			o.rootfs, o.rootfs);
out:
	if (lockfd >= 0)
		close(lockfd);
	build_opts_free(&o);
	return ret ? 1 : 0;
}
