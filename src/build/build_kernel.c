/* build_kernel.c - cross-build an arm64 kernel out of tree and install it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "build.h"
#include "build_board.h"
#include "build_data.h"
#include "build_fs.h"
#include "build_kernel.h"
#include "build_rootfs.h"
#include "build_stage.h"
#include "build_userns.h"
#include "digest.h"
#include "log.h"

struct kctx {
	const struct build_opts *o;
	char *src;              /* realpath of --src */
	char *bdir;             /* O= directory, absolute */
	char *fragment;         /* config file applied, or NULL (defconfig) */
	const char *target;     /* allnoconfig (+ fragment) or defconfig */
	char *version;          /* from the tree's Makefile */
	char *cfg_key, *build_key;
	struct stage *stage;
	unsigned compiled;      /* "  CC " lines seen */
	bool modules;
	struct board board;     /* --board's profile */
};

/* Host programs a kernel build needs, and the Debian package of each. */
static const char *const host_tools[][2] = {
	{ "make", "make" }, { "gcc", "gcc" }, { "bison", "bison" }, { "flex", "flex" },
	{ "bc", "bc" }, { "perl", "perl" },
};

static void kctx_free(struct kctx *k)
{
	free(k->src);
	free(k->bdir);
	free(k->fragment);
	free(k->version);
	free(k->cfg_key);
	free(k->build_key);
	build_board_free(&k->board);
}

static bool path_below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* "6.1.192" from VERSION, PATCHLEVEL, SUBLEVEL, EXTRAVERSION. */
static char *tree_version(const char *src)
{
	char *mk = build_xasprintf("%s/Makefile", src), *text = NULL, *ver = NULL;
	const char *names[] = { "VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION" };
	char vals[4][32] = { "", "", "", "" };

	if (build_fs_read(mk, &text, NULL) == 0) {
		char *save = NULL;

		for (char *line = strtok_r(text, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			for (int i = 0; i < 4; i++) {
				size_t n = strlen(names[i]);

				if (!strncmp(line, names[i], n) && line[n] == ' ' &&
				    sscanf(line + n, " = %31s", vals[i]) != 1)
					vals[i][0] = '\0';
			}
		}
		if (vals[0][0])
			ver = build_xasprintf("%s.%s.%s%s", vals[0], vals[1], vals[2], vals[3]);
	}
	free(text);
	free(mk);
	return ver ? ver : build_xstrdup("unknown");
}

static int check_tree(struct kctx *k)
{
	const struct build_opts *o = k->o;
	const char *need[] = { "Makefile", "Kconfig", "arch/arm64/Kconfig" };
	const char *dirty[] = { ".config", "include/config", "arch/arm64/include/generated" };
	int ret;

	if (!o->src) {
		log_error("kernel: --src LINUX_TREE is required (e.g. Debian's linux-source-6.1:"
			  " tar -xf /usr/src/linux-source-6.1.tar.xz)");
		return -EINVAL;
	}
	k->src = realpath(o->src, NULL);
	if (!k->src || !build_fs_is_dir(k->src)) {
		log_error("--src %s: %s", o->src, k->src ? "not a directory" : strerror(errno));
		return -ENOENT;
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		char *p = build_xasprintf("%s/%s", k->src, need[i]);
		bool ok = build_fs_exists(p);

		free(p);
		if (!ok) {
			log_error("--src %s: not a Linux kernel tree with arm64 support (no %s)",
				  o->src, need[i]);
			return -EINVAL;
		}
	}
	/* kbuild refuses O= when the source tree itself was configured. */
	for (size_t i = 0; i < sizeof(dirty) / sizeof(dirty[0]); i++) {
		char *p = build_xasprintf("%s/%s", k->src, dirty[i]);
		bool there = build_fs_exists(p);

		free(p);
		if (there) {
			log_error("--src %s: the tree has an in-tree build (%s exists), and kbuild"
				  " refuses an out-of-tree build (O=) from a configured tree. Save"
				  " its .config if you need it, then run `make mrproper` in it",
				  o->src, dirty[i]);
			return -EINVAL;
		}
	}
	k->version = tree_version(k->src);

	if (o->build_dir)
		ret = build_fs_abspath(o->build_dir, &k->bdir);
	else
		k->bdir = build_xasprintf("%s/kbuild", o->state_dir), ret = 0;
	if (ret) {
		log_error("--build-dir %s: %s", o->build_dir, strerror(-ret));
		return ret;
	}
	if (path_below(k->bdir, k->src)) {
		log_error("--build-dir %s is inside the source tree %s: rpifs never writes into"
			  " the tree; choose a directory outside it", k->bdir, k->src);
		return -EINVAL;
	}
	if (path_below(k->bdir, o->rootfs)) {
		log_error("--build-dir %s is inside ROOTFS: it would end up in the image", k->bdir);
		return -EINVAL;
	}
	return 0;
}

/* A board with kernel_src= (the Pi 5) needs a tree that knows its SoC:
 * mainline 6.1 has no bcm2712 device tree, and a kernel built from it
 * would not boot one. Checked by the device tree's source, the file
 * `make dtbs` would build dtb= from; before anything is built. */
static int check_board(struct kctx *k)
{
	const struct build_opts *o = k->o;
	char *dts = NULL, *p = NULL;
	int ret = build_board_load(o->board, &k->board);
	size_t n;

	if (ret || !k->board.kernel_src)
		return ret;
	n = strlen(k->board.dtb);
	if (n > 4 && !strcmp(k->board.dtb + n - 4, ".dtb"))
		n -= 4;
	dts = build_xasprintf("arch/arm64/boot/dts/%.*s.dts", (int)n, k->board.dtb);
	p = build_xasprintf("%s/%s", k->src, dts);
	if (!build_fs_is_nonempty_file(p)) {
		log_error("--src %s (Linux %s) has no %s: it cannot build board %s's device tree."
			  " Board %s needs %s", o->src, k->version, dts, o->board, o->board,
			  k->board.kernel_src);
		ret = -EINVAL;
	} else if (o->kconfig && !strcmp(o->kconfig, "rpi3-minimal")) {
		/* The Pi 3 (and qemu raspi3b) fragment: none of this SoC's drivers. */
		log_error("--config rpi3-minimal is the Pi 3 (and qemu raspi3b) fragment, without"
			  " board %s's drivers: board %s needs %s", o->board, o->board,
			  k->board.kernel_src);
		ret = -EINVAL;
	}
	free(p);
	free(dts);
	return ret;
}

/* NAME_defconfig that the tree has in arch/arm64/configs (the Raspberry Pi
 * tree's bcm2712_defconfig): -ENOENT when c is not such a name; -EINVAL
 * (reported) when it is one the tree lacks. */
static int tree_defconfig(struct kctx *k, const char *c)
{
	size_t n = strlen(c), m = strlen("_defconfig");
	char *p;
	int ret;

	if (n <= m || strcmp(c + n - m, "_defconfig") || strchr(c, '/') || c[0] == '.')
		return -ENOENT;
	p = build_xasprintf("%s/arch/arm64/configs/%s", k->src, c);
	ret = build_fs_is_nonempty_file(p) ? 0 : -EINVAL;
	if (ret)
		log_error("--config %s: no arch/arm64/configs/%s in --src %s (a NAME_defconfig"
			  " must be one of the tree's)", c, c, k->o->src);
	free(p);
	return ret;
}

static int check_tools(const struct build_opts *o)
{
	char *gcc = build_xasprintf("%sgcc", o->cross_compile);
	bool ok = build_fs_have_program(gcc);

	if (!ok) {
		log_error("kernel: cross compiler %s not found: install the Debian package"
			  " gcc-aarch64-linux-gnu (apt-get install gcc-aarch64-linux-gnu), or pass"
			  " --cross-compile PREFIX for another toolchain", gcc);
		free(gcc);
		return -ENOENT;
	}
	free(gcc);
	for (size_t i = 0; i < sizeof(host_tools) / sizeof(host_tools[0]); i++) {
		if (!build_fs_have_program(host_tools[i][0])) {
			log_error("kernel: %s not found: install the Debian package %s",
				  host_tools[i][0], host_tools[i][1]);
			return -ENOENT;
		}
	}
	return 0;
}

/* "NAME-minimal": a fragment shipped in data/ (rpi3-minimal, rpi4-minimal). */
static bool is_shipped_name(const char *c)
{
	size_t n = strlen(c), m = strlen("-minimal");

	return n > m && !strcmp(c + n - m, "-minimal") && !strchr(c, '/') && c[0] != '.';
}

/* Without --config, the board profile's kernel_config= decides. */
static int board_config(const struct build_opts *o, char **name)
{
	struct board b;
	int ret = build_board_load(o->board, &b);

	if (ret)
		return ret;
	if (!b.kernel_config) {
		log_error("--board %s: its profile names no kernel_config=: give --config"
			  " (rpi3-minimal, rpi4-minimal, defconfig or a file)", o->board);
		ret = -EINVAL;
	} else {
		*name = build_xstrdup(b.kernel_config);
	}
	build_board_free(&b);
	return ret;
}

static int resolve_config(struct kctx *k)
{
	char *searched = NULL, *rel = NULL, *board = NULL;
	const char *c = k->o->kconfig;
	int ret = 0;

	if (!c) {
		ret = board_config(k->o, &board);
		if (ret)
			return ret;
		c = board;
	}
	if (!strcmp(c, "defconfig")) {
		k->target = "defconfig";
	} else if ((ret = tree_defconfig(k, c)) != -ENOENT) {
		k->target = c;      /* make bcm2712_defconfig; no fragment */
	} else if (is_shipped_name(c)) {
		k->target = "allnoconfig";
		rel = build_xasprintf("%s.config", c);
		ret = build_data_find(rel, &k->fragment, &searched);
		if (ret)
			log_error("--config %s: %s not found (looked in %s): the shipped ones are"
				  " rpi3-minimal and rpi4-minimal; or set RPIFS_DATADIR to rpifs's"
				  " data directory", c, rel, searched ? searched : "-");
	} else {
		/* Like NAME-minimal: what the file does not ask for is off, so
		 * the result does not depend on Kconfig defaults (a full
		 * .config lists every symbol and comes out unchanged). */
		k->target = "allnoconfig";
		k->fragment = realpath(c, NULL);
		ret = 0;    /* tree_defconfig's -ENOENT: not a NAME_defconfig */
		if (!k->fragment || !build_fs_is_nonempty_file(k->fragment)) {
			log_error("--config %s: not rpi3-minimal, rpi4-minimal, defconfig, or a"
				  " readable config file", c);
			ret = -ENOENT;
		}
	}
	free(board);
	free(rel);
	free(searched);
	return ret;
}

/* What decides .config: tree, version, toolchain, the config's contents. */
static void make_keys(struct kctx *k)
{
	struct digest d;
	char *text = NULL;
	size_t len = 0;

	digest_init(&d);
	if (k->fragment && build_fs_read(k->fragment, &text, &len) == 0)
		digest_bytes(&d, text, len);
	free(text);
	text = NULL;
	/* A tree's NAME_defconfig changes with the tree (a git pull). */
	if (!k->fragment && strcmp(k->target, "defconfig")) {
		char *p = build_xasprintf("%s/arch/arm64/configs/%s", k->src, k->target);

		if (build_fs_read(p, &text, &len) == 0)
			digest_bytes(&d, text, len);
		free(text);
		free(p);
	}
	k->cfg_key =
		build_xasprintf("src=%s\nversion=%s\ntarget=%s\nconfig=%s\nconfig-digest=%016llx\n"
				"cross=%s\n",
				k->src, k->version, k->target, k->fragment ? k->fragment : "-",
				(unsigned long long)digest_final(&d), k->o->cross_compile);
	k->build_key = build_xasprintf("%stargets=Image dtbs modules-if-enabled\n", k->cfg_key);
}

/* make -C SRC O=BUILD ARCH=arm64 CROSS_COMPILE=... extra... */
static int run_make(struct stage *s, struct kctx *k, const char *const *extra,
		    void (*line)(void *, const char *))
{
	char *a_src = build_xstrdup(k->src), *a_o = build_xasprintf("O=%s", k->bdir);
	char *a_cc = build_xasprintf("CROSS_COMPILE=%s", k->o->cross_compile);
	char *a_j = build_xasprintf("-j%u", k->o->jobs);
	char *argv[32];
	int n = 0, ret;

	argv[n++] = "make";
	argv[n++] = "-C";
	argv[n++] = a_src;
	argv[n++] = a_o;
	argv[n++] = "ARCH=arm64";
	argv[n++] = a_cc;
	argv[n++] = a_j;
	for (; *extra && n < 31; extra++)
		argv[n++] = (char *)*extra;
	argv[n] = NULL;
	ret = build_stage_run(s, argv, NULL, NULL, NULL, line, k);
	free(a_src);
	free(a_o);
	free(a_cc);
	free(a_j);
	return ret;
}

/* Compare what was asked for with what kconfig kept. A symbol the tree
 * does not know, or whose dependencies fail, is dropped silently by
 * kconfig: report each, but carry on (HID_SUPPORT is not in 6.1). */
static int check_symbols(struct stage *s, struct kctx *k)
{
	char *cfg_path = build_xasprintf("%s/.config", k->bdir), *cfg = NULL, *frag = NULL;
	char *refused = build_xstrdup("");
	int asked = 0, bad = 0, ret;

	ret = build_fs_read(cfg_path, &cfg, NULL);
	if (ret) {
		log_error("%s: %s", cfg_path, strerror(-ret));
		goto out;
	}
	k->modules = strstr(cfg, "\nCONFIG_MODULES=y\n") != NULL;
	if (!k->fragment || build_fs_read(k->fragment, &frag, NULL))
		goto out;
	for (char *save = NULL, *line = strtok_r(frag, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char sym[128], want[256], needle[160], *found, *val;
		bool off = false, kept;
		int end = 0;

		if (sscanf(line, "# %127[A-Za-z0-9_] is not set%n", sym, &end) == 1 && end > 0 &&
		    !strncmp(sym, "CONFIG_", 7))
			off = true;
		else if (sscanf(line, "%127[A-Za-z0-9_]=%255[^\n]", sym, want) != 2 ||
			 strncmp(sym, "CONFIG_", 7))
			continue;
		asked++;
		snprintf(needle, sizeof(needle), "\n%s=", sym);
		found = strstr(cfg, needle);
		val = found ? found + strlen(needle) : NULL;
		if (off)
			kept = !val || *val == 'n';
		else
			kept = val && !strncmp(val, want, strlen(want)) && val[strlen(want)] == '\n';
		if (!kept) {
			char *r = build_xasprintf("%s %s", refused, sym + 7);

			bad++;
			free(refused);
			refused = r;
			build_stage_log(s, "# refused: %s=%s (now: %s)", sym, off ? "n" : want,
					found ? "a different value" : "absent from .config");
		}
	}
	if (bad)
		build_stage_say(s, "warning: %d of %d requested symbols are not in the resulting"
				" .config (unknown to this tree, or dependencies not met):%s",
				bad, asked, refused);
	else
		build_stage_log(s, "# all %d requested symbols set", asked);
out:
	free(refused);
	free(frag);
	free(cfg);
	free(cfg_path);
	return ret;
}

static int configure(struct stage *s, struct kctx *k)
{
	char *stamp = build_xasprintf("%s/.rpifs-config", k->bdir),
	     *cfg = build_xasprintf("%s/.config", k->bdir);
	char *cur = NULL, *allcfg = NULL;
	const char *extra[3] = { NULL, NULL, NULL };
	int ret;

	if (!k->o->force && build_fs_read(stamp, &cur, NULL) == 0 && !strcmp(cur, k->cfg_key) &&
	    build_fs_is_nonempty_file(cfg)) {
		build_stage_log(s, "# .config up to date");
		ret = check_symbols(s, k);
		goto out;
	}
	unlink(stamp);
	ret = build_fs_mkdir_p(k->bdir, 0755);
	if (ret) {
		log_error("%s: %s", k->bdir, strerror(-ret));
		goto out;
	}
	build_stage_step(s, "configuring (%s%s%s)", k->target, k->fragment ? " + " : "",
			 k->fragment ? k->fragment : "");
	if (k->fragment) {
		/* kconfig reads it from the environment; make exports
		 * command-line variables to its children. */
		allcfg = build_xasprintf("KCONFIG_ALLCONFIG=%s", k->fragment);
		extra[0] = allcfg;
	}
	extra[extra[0] ? 1 : 0] = k->target;
	ret = run_make(s, k, extra, NULL);
	if (!ret)
		ret = check_symbols(s, k);
	if (!ret)
		ret = build_fs_write_atomic(stamp, k->cfg_key, strlen(k->cfg_key), 0644);
out:
	free(allcfg);
	free(cur);
	free(cfg);
	free(stamp);
	return ret;
}

/* kbuild's quiet output has one "  CC      path.o" line per C file. */
static void count_cc(void *ctx, const char *line)
{
	struct kctx *k = ctx;

	if (!strncmp(line, "  CC ", 5)) {
		k->compiled++;
		build_stage_detail(k->stage, "%u objects compiled", k->compiled);
	}
}

static int compile(struct stage *s, struct kctx *k)
{
	char *stamp = build_xasprintf("%s/.rpifs-build", k->bdir), *cur = NULL;
	char *image = build_xasprintf("%s/arch/arm64/boot/Image", k->bdir);
	const char *extra[4] = { "Image", "dtbs", k->modules ? "modules" : NULL, NULL };
	int ret = 0;

	if (!k->o->force && build_fs_read(stamp, &cur, NULL) == 0 && !strcmp(cur, k->build_key) &&
	    build_fs_is_nonempty_file(image)) {
		build_stage_say(s, "kernel build in %s is up to date: not recompiled", k->bdir);
		goto out;
	}
	unlink(stamp);
	build_stage_step(s, "compiling (make -j%u Image dtbs%s)", k->o->jobs,
			 k->modules ? " modules" : "");
	build_stage_detail(s, "0 objects compiled");
	ret = run_make(s, k, extra, count_cc);
	if (ret)
		goto out;
	ret = build_fs_write_atomic(stamp, k->build_key, strlen(k->build_key), 0644);
out:
	free(image);
	free(cur);
	free(stamp);
	return ret;
}

static char *kernel_release(const struct kctx *k)
{
	char *p = build_xasprintf("%s/include/config/kernel.release", k->bdir), *rel = NULL;

	if (build_fs_read(p, &rel, NULL) == 0)
		rel[strcspn(rel, "\n")] = '\0';
	free(p);
	if (rel && !*rel) {
		free(rel);
		rel = NULL;
	}
	return rel;
}

/* boot/NAME the kernel is installed as: the board's kernel_name=
 * (kernel_2712.img), else vmlinuz-REL. */
static char *kernel_file(const struct kctx *k, const char *rel)
{
	return k->board.kernel_name ? build_xstrdup(k->board.kernel_name) :
				       build_xasprintf("vmlinuz-%s", rel);
}

static char *install_key(const struct kctx *k, const char *rel)
{
	return build_xasprintf("%srelease=%s\nrootfs=%s\n", k->build_key, rel, k->o->rootfs);
}

static bool install_present(const struct kctx *k, const char *rel)
{
	char *f = kernel_file(k, rel), *img = build_xasprintf("%s/boot/%s", k->o->rootfs, f);
	char *dtbs = build_xasprintf("%s/boot/broadcom", k->o->rootfs);
	bool ok = build_fs_is_nonempty_file(img) && build_fs_is_dir(dtbs);

	free(f);
	free(img);
	free(dtbs);
	return ok;
}

/* boot/vmlinuz-REL, System.map-REL, config-REL; dtbs; modules + depmod:
 * into dest, ROOTFS or a staging tree laid out like it. */
static int install(struct stage *s, struct kctx *k, const char *rel, const char *dest)
{
	const char *copies[][2] = {
		{ "arch/arm64/boot/Image", "vmlinuz" },     /* or kernel_name= */
		{ "System.map", "System.map" },
		{ ".config", "config" },
	};
	char *boot = build_xasprintf("%s/boot", dest), *a_dtb = NULL, *a_mod = NULL;
	char *modlib = NULL;
	int ret;

	ret = build_fs_mkdir_p(boot, 0755);
	if (ret) {
		log_error("%s: %s", boot, strerror(-ret));
		goto out;
	}
	build_stage_step(s, "installing %s into %s", rel, dest);
	for (size_t i = 0; i < sizeof(copies) / sizeof(copies[0]); i++) {
		char *from = build_xasprintf("%s/%s", k->bdir, copies[i][0]);
		char *kf = i == 0 ? kernel_file(k, rel) : build_xasprintf("%s-%s", copies[i][1], rel);
		char *to = build_xasprintf("%s/%s", boot, kf);

		free(kf);

		ret = build_fs_copy_atomic(from, to, 0644, false);
		if (ret)
			log_error("%s -> %s: %s", from, to, strerror(-ret));
		free(from);
		free(to);
		if (ret)
			goto out;
	}
	a_dtb = build_xasprintf("INSTALL_DTBS_PATH=%s", boot);
	ret = run_make(s, k, (const char *[]){ a_dtb, "dtbs_install", NULL }, NULL);
	if (ret || !k->modules)
		goto out;
	a_mod = build_xasprintf("INSTALL_MOD_PATH=%s", dest);
	ret = run_make(s, k, (const char *[]){ a_mod, "modules_install", NULL }, NULL);
	if (ret)
		goto out;
	/* modules_install links build/ and source/ to this host's paths:
	 * dangling on the board. Debian's kernel packages drop them too. */
	modlib = build_xasprintf("%s/lib/modules/%s", dest, rel);
	for (const char *const *l = (const char *const[]){ "build", "source", NULL }; *l; l++) {
		char *p = build_xasprintf("%s/%s", modlib, *l);

		unlink(p);
		free(p);
	}
	/* Without modules.dep nothing loads at the first boot. */
	ret = build_stage_run(s, (char *[]){ "depmod", "-b", (char *)dest, (char *)rel, NULL },
			      NULL, NULL, NULL, NULL, NULL);
out:
	free(modlib);
	free(a_mod);
	free(a_dtb);
	free(boot);
	return ret;
}

/* A tree made in a user namespace: make and depmod install as the user
 * into a staging tree (kbuild's output stays the user's alone), then, in
 * the namespace, it becomes the namespace root's and is renamed into
 * ROOTFS, the way modules_install replaces lib/modules/REL/kernel. */
struct job {
	const char *stage, *rootfs, *rel;
	bool modules;
	struct board board;     /* --board's profile */
};

static int job_move_in(void *arg)
{
	struct job *j = arg;
	int ret = build_fs_chown_tree(j->stage, 0, 0);

	if (!ret && j->modules) {
		const char *const old[] = { "kernel", "build", "source" };

		for (size_t i = 0; i < sizeof(old) / sizeof(old[0]) && !ret; i++) {
			char *p = build_xasprintf("%s/lib/modules/%s/%s", j->rootfs, j->rel, old[i]);

			ret = build_fs_remove_tree(p);
			if (ret)
				log_error("%s: %s", p, strerror(-ret));
			free(p);
		}
	}
	if (!ret)
		ret = build_fs_move_in(j->stage, j->rootfs);
	return ret;
}

static int job_remove(void *arg)
{
	return build_fs_remove_tree(((struct job *)arg)->stage);
}

static int install_as_user(struct stage *s, struct kctx *k, const char *rel)
{
	struct job j = { .rootfs = k->o->rootfs, .rel = rel, .modules = k->modules };
	char *stage = NULL;
	int ret = build_stage_tmpdir(k->o->state_dir, "kernel", &stage);

	if (ret)
		return ret;
	j.stage = stage;
	ret = install(s, k, rel, stage);
	if (!ret) {
		build_stage_step(s, "moving %s into %s (user namespace)", rel, k->o->rootfs);
		ret = build_userns_as_owner(k->o, s->log_fd, job_move_in, &j);
	}
	/* What is left may be the namespace root's already. */
	build_userns_as_owner(k->o, -1, job_remove, &j);
	free(stage);
	return ret;
}

int build_kernel_check(struct build_opts *o)
{
	struct kctx k = { .o = o };
	int ret = check_tree(&k);

	if (!ret)
		ret = check_board(&k);
	if (!ret)
		ret = check_tools(o);
	if (!ret)
		ret = resolve_config(&k);
	kctx_free(&k);
	return ret;
}

int build_kernel_run(struct build_opts *o, int index, int count)
{
	struct kctx k = { .o = o };
	char *rel = NULL, *ikey = NULL, *relfile = NULL;
	struct stage s;
	int ret;

	ret = build_stage_begin(&s, o->state_dir, "kernel", index, count);
	if (ret)
		goto out_nostage;
	k.stage = &s;
	ret = check_tree(&k);
	if (!ret)
		ret = check_board(&k);
	if (!ret)
		ret = check_tools(o);
	if (!ret)
		ret = resolve_config(&k);
	if (ret)
		goto out;
	ret = build_stage_need_rootfs(o->rootfs);
	if (ret)
		goto out;
	make_keys(&k);
	build_stage_log(&s, "# source %s (%s), build dir %s", k.src, k.version, k.bdir);

	/* Whole stage up to date: configured, compiled and installed as asked. */
	rel = kernel_release(&k);
	if (!o->force && rel) {
		char *cs = build_xasprintf("%s/.rpifs-config", k.bdir),
		     *bs = build_xasprintf("%s/.rpifs-build", k.bdir);
		char *c = NULL, *b = NULL;
		bool ok;

		ikey = install_key(&k, rel);
		ok = build_fs_read(cs, &c, NULL) == 0 && !strcmp(c, k.cfg_key) &&
		     build_fs_read(bs, &b, NULL) == 0 && !strcmp(b, k.build_key) &&
		     build_stage_stamp_matches(o->state_dir, "kernel", ikey) &&
		     install_present(&k, rel);
		free(c);
		free(b);
		free(cs);
		free(bs);
		if (ok) {
			build_stage_skip(&s, rel);
			goto out_nostage;
		}
	}
	build_stage_stamp_clear(o->state_dir, "kernel");
	ret = configure(&s, &k);
	if (!ret)
		ret = compile(&s, &k);
	if (ret)
		goto out;
	free(rel);
	free(ikey);
	ikey = NULL;        /* freed again at out when the install fails */
	rel = kernel_release(&k);
	if (!rel) {
		log_error("%s: no include/config/kernel.release after the build", k.bdir);
		ret = -EIO;
		goto out;
	}
	if (k.modules && !build_fs_have_program("depmod")) {
		log_error("kernel: depmod not found: install the Debian package kmod");
		ret = -ENOENT;
		goto out;
	}
	if (geteuid() != 0 && build_rootfs_userns_tree(o))
		ret = install_as_user(&s, &k, rel);
	else
		ret = install(&s, &k, rel, o->rootfs);
	if (ret)
		goto out;
	/* `build config` boots the kernel this stage installed. */
	relfile = build_xasprintf("%s/kernel-release", o->state_dir);
	ret = build_fs_write_atomic(relfile, rel, strlen(rel), 0644);
	ikey = install_key(&k, rel);
	if (!ret)
		ret = build_stage_stamp_write(o->state_dir, "kernel", ikey);
	if (k.compiled)
		build_stage_detail(&s, "%s, %u objects compiled", rel, k.compiled);
	else
		build_stage_detail(&s, "%s", rel);
out:
	ret = build_stage_end(&s, ret);
out_nostage:
	free(relfile);
	free(ikey);
	free(rel);
	kctx_free(&k);
	return ret;
}
