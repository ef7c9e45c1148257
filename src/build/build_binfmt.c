/* build_binfmt.c - register qemu-aarch64 with binfmt_misc when needed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "build_binfmt.h"
#include "build_fs.h"
#include "log.h"

#define BINFMT_DIR "/proc/sys/fs/binfmt_misc"
#define ENTRY BINFMT_DIR "/qemu-aarch64"

bool build_binfmt_native(void)
{
	struct utsname u;

	return uname(&u) == 0 && !strcmp(u.machine, "aarch64");
}

int build_binfmt_check_tools(void)
{
	if (build_binfmt_native())
		return 0;
	if (!build_fs_have_program("qemu-aarch64-static") &&
	    access("/usr/bin/qemu-aarch64-static", X_OK)) {
		log_error("rootfs: qemu-aarch64-static not found: install the Debian package"
			  " qemu-user-static (it runs the arm64 tree's programs)");
		return -ENOENT;
	}
	if (!build_fs_have_program("update-binfmts") && access("/usr/sbin/update-binfmts", X_OK)) {
		log_error("rootfs: update-binfmts not found: install the Debian package"
			  " binfmt-support");
		return -ENOENT;
	}
	return 0;
}

/* 1: enabled with flag F; 0: absent or disabled; -EPROTO: enabled without F. */
static int entry_state(char **interp)
{
	char *text = NULL, *p;
	int ret = 0;

	*interp = NULL;
	if (build_fs_read(ENTRY, &text, NULL))
		return 0;
	if (strncmp(text, "enabled", 7))
		goto out;
	if ((p = strstr(text, "interpreter "))) {
		p += 12;
		*interp = strndup(p, strcspn(p, "\n"));
	}
	p = strstr(text, "flags: ");
	ret = p && strchr(p + 7, 'F') && strchr(p + 7, 'F') < strchr(p + 7, '\n') ? 1 : -EPROTO;
out:
	free(text);
	return ret;
}

int build_binfmt_check_registered(void)
{
	char *interp = NULL;
	int st;

	if (build_binfmt_native())
		return 0;
	if (access(BINFMT_DIR "/status", F_OK)) {
		log_error("binfmt_misc is not mounted on " BINFMT_DIR ": the arm64 tree's"
			  " programs cannot run, and only root can mount it. As root, run"
			  " `mount -t binfmt_misc binfmt_misc " BINFMT_DIR " && update-binfmts"
			  " --enable qemu-aarch64` (Debian packages qemu-user-static,"
			  " binfmt-support)");
		return -ENOENT;
	}
	st = entry_state(&interp);
	free(interp);
	if (st == 0) {
		log_error("qemu-aarch64 is not registered with binfmt_misc: the arm64 tree's"
			  " programs cannot run, and only root can register it. As root, run"
			  " `update-binfmts --enable qemu-aarch64` (Debian packages"
			  " qemu-user-static, binfmt-support)");
		return -ENOENT;
	}
	if (st < 0) {
		log_error("the qemu-aarch64 binfmt entry lacks the F (fix binary) flag: the"
			  " interpreter would have to be inside the tree. As root, run"
			  " `update-binfmts --disable qemu-aarch64 && update-binfmts --enable"
			  " qemu-aarch64` (qemu-user-static's definition has F)");
		return -EPROTO;
	}
	return 0;
}

int build_binfmt_ensure(struct stage *s)
{
	char *interp = NULL;
	int st, ret = 0;

	if (build_binfmt_native())
		return 0;
	if (access(BINFMT_DIR "/status", F_OK) &&
	    mount("binfmt_misc", BINFMT_DIR, "binfmt_misc", 0, NULL) < 0) {
		ret = -errno;
		log_error("cannot mount binfmt_misc on %s: %s (in a container, the host must"
			  " provide it)", BINFMT_DIR, strerror(-ret));
		return ret;
	}
	st = entry_state(&interp);
	if (st == 0) {
		build_stage_step(s, "registering qemu-aarch64 with binfmt_misc");
		ret = build_stage_run(s, (char *[]){ "update-binfmts", "--enable", "qemu-aarch64",
						     NULL },
				      NULL, NULL, NULL, NULL, NULL);
		if (ret)
			goto out;
		free(interp);
		st = entry_state(&interp);
	}
	if (st == 0) {
		log_error("binfmt_misc has no enabled qemu-aarch64 entry even after"
			  " `update-binfmts --enable qemu-aarch64`: reinstall qemu-user-static");
		ret = -ENOENT;
	} else if (st < 0) {
		log_error("the qemu-aarch64 binfmt entry lacks the F (fix binary) flag, so the"
			  " chroot would need the interpreter inside it: re-register it with"
			  " qemu-user-static's definition (update-binfmts --disable qemu-aarch64;"
			  " update-binfmts --enable qemu-aarch64)");
		ret = -EPROTO;
	} else {
		build_stage_log(s, "# binfmt: qemu-aarch64 enabled, interpreter %s",
				interp ? interp : "?");
	}
out:
	free(interp);
	return ret;
}
