/* test_tree_watch.c - an inotify watch set up by the scan says "unchanged"
 * exactly while nothing changed: every kind of change at every depth makes
 * it say "check"; a rescan gives a quiet watch again; a write through a
 * hard link outside the tree is seen (that file is stat'ed); a spurious
 * event is cleared by tree_watch_clean(); a tree on a filesystem inotify
 * cannot vouch for (procfs), or holding a mount point of one, gets no watch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "tree.h"
#include "tree_watch.h"


static char root[256], outside[256];

static void p(char *buf, const char *rel)
{
	snprintf(buf, 512, "%s/%s", root, rel);
}

static void scan(struct tree *t)
{
	struct tree_scan_opts so = { .xattrs = true, .watch = true };

	tree_free(t);
	must(tree_scan(t, root, &so) == 0, "tree_scan");
}

/* The mutations, each applied to the tree as it is after the previous one. */
static void m_write_deep(void) { char b[512]; p(b, "a/b/c/d/f"); put(b, "changed"); }
static void m_write_same(void) { char b[512]; p(b, "a/f"); put(b, "x"); }
static void m_chmod(void) { char b[512]; p(b, "a/b/f"); must(chmod(b, 0600) == 0, b); }
static void m_chmod_dir(void) { char b[512]; p(b, "a/b/c"); must(chmod(b, 0700) == 0, b); }
static void m_utimes(void)
{
	char b[512];
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };

	p(b, "a/b/c/f");
	must(utimensat(AT_FDCWD, b, ts, AT_SYMLINK_NOFOLLOW) == 0, b);
}
static void m_create(void) { char b[512]; p(b, "a/b/c/d/new"); put(b, "n"); }
static void m_unlink(void) { char b[512]; p(b, "a/b/c/d/new"); must(unlink(b) == 0, b); }
static void m_mkdir(void) { char b[512]; p(b, "a/b/c/d/newdir"); must(mkdir(b, 0755) == 0, b); }
static void m_rename(void)
{
	char a[512], b[512];

	p(a, "a/b/c/d/newdir");
	p(b, "a/b/c/d/moved");
	must(rename(a, b) == 0, b);
}
static void m_truncate(void) { char b[512]; p(b, "f"); must(truncate(b, 0) == 0, b); }
static void m_xattr(void)
{
	char b[512];

	p(b, "a/b/c/d/f");
	if (setxattr(b, "user.rpifs", "v", 1, 0) < 0 && errno == ENOTSUP)
		m_chmod();      /* no user xattrs here: change something else */
}
static void m_symlink(void) { char b[512]; p(b, "a/b/link"); must(symlink("c", b) == 0, b); }
static void m_outside(void) { put(outside, "through the other name"); }

static const struct {
	const char *what;
	void (*fn)(void);
} cases[] = {
	{ "write at depth 5", m_write_deep }, { "rewrite, same size", m_write_same },
	{ "chmod", m_chmod }, { "chmod of a directory", m_chmod_dir },
	{ "utimes at depth 4", m_utimes }, { "create at depth 5", m_create },
	{ "unlink", m_unlink }, { "mkdir", m_mkdir }, { "rename", m_rename },
	{ "truncate at the root", m_truncate }, { "xattr", m_xattr },
	{ "symlink", m_symlink }, { "write through an outside hard link", m_outside },
};

int main(void)
{
	char base[] = "/tmp/rpifs-watch.XXXXXX";
	char b[512];
	struct tree t = { 0 };
	int fd;

	must(mkdtemp(base) != NULL, "mkdtemp");
	snprintf(root, sizeof(root), "%s/root", base);
	snprintf(outside, sizeof(outside), "%s/outside-name", base);
	must(mkdir(root, 0755) == 0, root);
	p(b, "a"); must(mkdir(b, 0755) == 0, b);
	p(b, "a/b"); must(mkdir(b, 0755) == 0, b);
	p(b, "a/b/c"); must(mkdir(b, 0755) == 0, b);
	p(b, "a/b/c/d"); must(mkdir(b, 0755) == 0, b);
	p(b, "f"); put(b, "0");
	p(b, "a/f"); put(b, "1");
	p(b, "a/b/f"); put(b, "2");
	p(b, "a/b/c/f"); put(b, "3");
	p(b, "a/b/c/d/f"); put(b, "4");
	p(b, "a/b/linked"); put(b, "linked");
	must(link(b, outside) == 0, outside);

	scan(&t);
	CHECK(t.watch != NULL, "no watch on a tree in %s", base);
	if (!t.watch)
		return 1;
	for (int i = 0; i < 10; i++)
		CHECK(tree_watch_quiet(t.watch), "untouched tree not quiet (try %d)", i);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cases[i].fn();
		CHECK(!tree_watch_quiet(t.watch), "%s: not seen", cases[i].what);
		CHECK(!tree_watch_quiet(t.watch), "%s: forgotten at the second ask", cases[i].what);
		scan(&t);
		CHECK(t.watch && tree_watch_quiet(t.watch), "%s: rescan not quiet", cases[i].what);
	}

	/* A spurious event (opened for writing, closed unchanged): "check",
	 * the check finds nothing, clean makes the watch quiet again. */
	p(b, "a/b/c/f");
	fd = open(b, O_WRONLY);
	must(fd >= 0, b);
	close(fd);
	CHECK(!tree_watch_quiet(t.watch), "close after write-open not seen");
	CHECK(tree_unchanged(&t), "nothing changed, yet the check says changed");
	tree_watch_clean(t.watch);
	CHECK(tree_watch_quiet(t.watch), "clean did not make the watch quiet");
	tree_free(&t);

	/* Not a local filesystem: no watch (the stat check stays). */
	if (access("/proc/sys/fs/inotify", F_OK) == 0) {
		struct tree_scan_opts so = { .xattrs = false, .watch = true };
		struct tree s;

		must(tree_scan(&s, "/proc/sys/fs/inotify", &so) == 0, "tree_scan /proc/sys/fs/inotify");
		CHECK(s.watch == NULL, "a watch on procfs");
		tree_free(&s);
	}
	/* A non-local mount point inside the tree: no watch either. */
	p(b, "a/sys");
	must(mkdir(b, 0755) == 0, b);
	if (mount("/proc/sys/fs/inotify", b, "none", MS_BIND, NULL) == 0) {
		scan(&t);
		CHECK(t.watch == NULL, "a watch on a tree holding a procfs mount point");
		tree_free(&t);
		must(umount(b) == 0, "umount");
	} else {
		printf("no bind mount (%s): mount point case not run\n", strerror(errno));
	}

	return finish(base);
}
