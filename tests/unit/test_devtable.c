/* test_devtable.c - device tables (src/engine/devtable.c).
 *
 * Parsing: the 7- and 10-field forms, ranges expanded (ttyS0..3 with
 * minors 64..67), comments and blank lines; each malformed line refused
 * with its line number (the message is printed, the status checked).
 * Applying, through tree_scan(): nodes added in sorted order with type,
 * mode, owner and device number; a symlink of the same name replaced; d
 * and f entries change an existing directory's and file's mode and owner;
 * the tree's change check still says "unchanged" (the nodes are not in the
 * source, and the modes the table set are not compared), and does notice a
 * real change; the tree itself is not touched; a missing parent, a d entry
 * for a missing directory and a device over a regular file are refused.
 */
#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "check.h"
#include "devtable.h"
#include "tree.h"

static char dir[] = "/tmp/rpifs-devtable.XXXXXX";

static void path(char *buf, size_t sz, const char *rel)
{
	snprintf(buf, sz, "%s/%s", dir, rel);
}

static int load(struct devtable *t, const char *text)
{
	char p[256];

	path(p, sizeof(p), "table");
	put(p, text);
	return devtable_load(t, p);
}

static void test_parse(void)
{
	struct devtable t;

	CHECK(load(&t, "# name type mode uid gid major minor start inc count\n\n"
		       "/dev/console c 600 0 0 5 1\n"
		       "  /dev/ttyS\tc 660 0 5 4 64 0 1 4\n"
		       "/dev/initctl p 600 0 0 - -\n"
		       "/dev/null c 666 0 0 1 3 - - -\n") == 0);
	CHECK(t.n == 7, "got %zu entries", t.n);
	if (t.n == 7) {
		/* sorted by path */
		CHECK(!strcmp(t.e[0].path, "dev/console") && t.e[0].mode == (S_IFCHR | 0600) &&
		      t.e[0].rdev == makedev(5, 1));
		CHECK(!strcmp(t.e[1].path, "dev/initctl") && t.e[1].mode == (S_IFIFO | 0600));
		CHECK(!strcmp(t.e[2].path, "dev/null") && t.e[2].rdev == makedev(1, 3));
		CHECK(!strcmp(t.e[3].path, "dev/ttyS0") && t.e[3].rdev == makedev(4, 64) &&
		      t.e[3].gid == 5);
		CHECK(!strcmp(t.e[6].path, "dev/ttyS3") && t.e[6].rdev == makedev(4, 67));
	}
	devtable_free(&t);

	static const char *const bad[] = {
		"/dev/console c 600 0 0 5\n",             /* 6 fields */
		"dev/console c 600 0 0 5 1\n",            /* relative */
		"/dev/../etc/x c 600 0 0 5 1\n",          /* leaves its directory */
		"/dev/console x 600 0 0 5 1\n",           /* type */
		"/dev/console c 800 0 0 5 1\n",           /* not octal */
		"/dev/console c 600 root 0 5 1\n",        /* uid by name */
		"/dev/console c 600 0 0 - 1\n",           /* a device without major */
		"/dev/console c 600 0 0 4096 1\n",        /* major past 12 bits */
		"/dev/tty c 600 0 0 4 0 0 1 0\n",         /* count 0 */
		"/dev/fifo p 600 0 0 - - 0 1 4\n",        /* a range of fifos */
		"/dev/a c 600 0 0 1 1\n/dev/a c 600 0 0 1 2\n",   /* twice */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fprintf(stderr, "(expected: a message for table %zu)\n", i);
		CHECK(load(&t, bad[i]) == -EINVAL, "table %zu accepted: %s", i, bad[i]);
		CHECK(t.n == 0 && t.e == NULL);
	}
	char p[256];
	path(p, sizeof(p), "no-such-table");
	CHECK(devtable_load(&t, p) == -ENOENT);
}

static struct tree_node *find(struct tree *t, const char *rel)
{
	return tree_lookup(t, t->root, rel);
}

static void test_apply(void)
{
	char root[256], p[256];
	struct devtable d;
	struct tree t;
	struct tree_scan_opts so = { .xattrs = true, .devices = &d };

	path(root, sizeof(root), "root");
	must(mkdir(root, 0755) == 0, "mkdir root");
	path(p, sizeof(p), "root/dev");
	must(mkdir(p, 0755) == 0, "mkdir dev");
	path(p, sizeof(p), "root/tmp");
	must(mkdir(p, 0755) == 0, "mkdir tmp");
	path(p, sizeof(p), "root/dev/null");
	must(symlink("/nowhere", p) == 0, "symlink");
	path(p, sizeof(p), "root/shadow");
	put(p, "root:*:1:0:99999:7:::\n");
	must(chmod(p, 0644) == 0, "chmod");

	must(load(&d, "/dev/console c 600 0 0 5 1\n/dev/null c 666 0 0 1 3\n"
		      "/dev/initctl p 600 0 0 - -\n/tmp d 1777 0 0 - -\n"
		      "/shadow f 640 0 42 - -\n/dev/ttyS c 660 0 5 4 64 0 1 2\n") == 0,
	     "table");
	CHECK(tree_scan(&t, root, &so) == 0);
	struct tree_node *dev = find(&t, "dev"), *n;
	CHECK(dev && dev->nkids == 5, "dev has %zu entries", dev ? (size_t)dev->nkids : 0);
	for (size_t i = 1; dev && i < dev->nkids; i++)
		CHECK(strcmp(dev->kids[i - 1]->name, dev->kids[i]->name) < 0, "sorted");
	n = find(&t, "dev/console");
	CHECK(n && n->virt && n->st.st_mode == (S_IFCHR | 0600) &&
	      n->rdev == makedev(5, 1) && n->st.st_nlink == 1);
	n = find(&t, "dev/null");
	CHECK(n && n->virt && S_ISCHR(n->st.st_mode), "the symlink replaced");
	n = find(&t, "dev/ttyS1");
	CHECK(n && n->rdev == makedev(4, 65) && n->st.st_gid == 5);
	n = find(&t, "tmp");
	CHECK(n && !n->virt && n->st.st_mode == (S_IFDIR | 01777));
	n = find(&t, "shadow");
	CHECK(n && n->st.st_mode == (S_IFREG | 0640) && n->st.st_gid == 42);
	CHECK(t.nodes == 9, "nodes %" PRIu64, t.nodes);   /* root dev tmp shadow null + 4 */
	CHECK(tree_unchanged(&t), "the change check sees the table's nodes as changes");
	/* the tree itself: untouched */
	struct stat st;
	path(p, sizeof(p), "root/dev/console");
	CHECK(lstat(p, &st) < 0 && errno == ENOENT, "a node was created in the tree");
	path(p, sizeof(p), "root/shadow");
	CHECK(lstat(p, &st) == 0 && (st.st_mode & 07777) == 0644, "the tree's mode changed");
	path(p, sizeof(p), "root/dev/null");
	CHECK(lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
	/* a real change is still seen */
	path(p, sizeof(p), "root/dev/other");
	put(p, "x");
	CHECK(!tree_unchanged(&t), "a new file in dev/ not seen");
	unlink(p);
	tree_free(&t);
	devtable_free(&d);

	/* refusals */
	static const char *const bad[] = {
		"/nodir/console c 600 0 0 5 1\n",     /* parent not in the tree */
		"/shadow/x c 600 0 0 5 1\n",          /* parent is a file */
		"/var d 755 0 0 - -\n",               /* d for a missing directory */
		"/shadow d 755 0 0 - -\n",            /* d for a file */
		"/shadow c 600 0 0 5 1\n",            /* a device over a regular file */
		"/dev c 600 0 0 5 1\n",               /* a device over a directory */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		must(load(&d, bad[i]) == 0, "table");
		fprintf(stderr, "(expected: a message for tree table %zu)\n", i);
		CHECK(tree_scan(&t, root, &so) < 0, "tree table %zu accepted: %s", i, bad[i]);
		devtable_free(&d);
	}
}

int main(void)
{
	char cmd[300];

	must(mkdtemp(dir) != NULL, "mkdtemp");
	test_parse();
	test_apply();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	must(system(cmd) == 0, "cleanup");
	return check_done();
}
