/* test_tree_check.c - tree_unchanged() sees a change at every depth, in
 * every kind of work unit, on a tree small enough for one thread and on one
 * large enough for several; and sees none in an untouched tree.
 *
 * The tree: root/{f, d1/{f, d2/{f, d3/{f, d4/{f, d5/f}}}}} plus filler
 * directories of files (below the thread threshold, or above it). Each
 * case changes one entry, checks that tree_unchanged() says "changed", then
 * rescans so the next case starts from an unchanged tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include "check.h"
#include "tree.h"


static void build(const char *root, unsigned fillers)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/f", root);
	put(p, "0");
	snprintf(p, sizeof(p), "%s/d1", root);
	for (int depth = 1; depth <= 5; depth++) {
		must(mkdir(p, 0755) == 0 || errno == EEXIST, p);
		size_t l = strlen(p);

		snprintf(p + l, sizeof(p) - l, "/f");
		put(p, "0");
		snprintf(p + l, sizeof(p) - l, "/d%d", depth + 1);
	}
	/* Fillers: 64 files a directory, two levels down like /usr/share/X. */
	snprintf(p, sizeof(p), "%s/fill", root);
	must(mkdir(p, 0755) == 0, p);
	for (unsigned i = 0; i < fillers / 64; i++) {
		snprintf(p, sizeof(p), "%s/fill/%u", root, i);
		must(mkdir(p, 0755) == 0, p);
		for (unsigned j = 0; j < 64; j++) {
			snprintf(p, sizeof(p), "%s/fill/%u/%u", root, i, j);
			put(p, "x");
		}
	}
}

/* Step past the timer tick of the scan before an edit: without multigrain
 * timestamps an edit in the same tick keeps mtime and ctime (a limit of
 * every stat-based check, make's included). */
static void next_tick(void)
{
	usleep(12000);
}

static void rescan(struct tree *t, const char *root)
{
	tree_free(t);
	must(tree_scan(t, root, NULL) == 0, "tree_scan");
	CHECK(tree_unchanged(t), "%s: fresh scan reported as changed", root);
}

/* Set a file's mtime to a fixed past time: changes ctime and mtime. */
static void touch_old(const char *path)
{
	struct timeval tv[2] = { { 1000000000, 0 }, { 1000000000, 0 } };

	next_tick();
	must(lutimes(path, tv) == 0, path);
}

static void run(const char *base, unsigned fillers)
{
	static const char *const files[] = {
		"f", "d1/f", "d1/d2/f", "d1/d2/d3/f", "d1/d2/d3/d4/f",
		"d1/d2/d3/d4/d5/f", "fill/0/0",
	};
	char root[256], p[512];
	struct tree t = { 0 };

	snprintf(root, sizeof(root), "%s/tree%u", base, fillers);
	must(mkdir(root, 0755) == 0, root);
	build(root, fillers);
	rescan(&t, root);
	printf("%u fillers: %llu entries\n", fillers, (unsigned long long)t.nodes);
	/* Unchanged, asked many times (threads race for units each time). */
	for (int i = 0; i < 20; i++)
		CHECK(tree_unchanged(&t), "%s: untouched tree reported as changed (try %d)", root, i);

	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		if (!fillers && !strncmp(files[i], "fill/", 5))
			continue;
		/* Content, same size: mtime and ctime move. */
		snprintf(p, sizeof(p), "%s/%s", root, files[i]);
		next_tick();
		put(p, "1");
		CHECK(!tree_unchanged(&t), "%s: rewrite of %s not seen", root, files[i]);
		rescan(&t, root);
		/* Metadata only: chmod moves ctime alone. */
		next_tick();
		must(chmod(p, 0600) == 0, p);
		CHECK(!tree_unchanged(&t), "%s: chmod of %s not seen", root, files[i]);
		rescan(&t, root);
		touch_old(p);
		CHECK(!tree_unchanged(&t), "%s: utimes of %s not seen", root, files[i]);
		rescan(&t, root);
	}
	/* A new entry deep down (its directory's mtime moves). */
	snprintf(p, sizeof(p), "%s/d1/d2/d3/d4/d5/new", root);
	next_tick();
	put(p, "n");
	CHECK(!tree_unchanged(&t), "%s: new file at depth 6 not seen", root);
	rescan(&t, root);
	/* A top-level directory swapped for a symlink to an identical copy. */
	snprintf(p, sizeof(p), "%s/d1", root);
	{
		char moved[512];

		snprintf(moved, sizeof(moved), "%s/d1.real", root);
		next_tick();
		must(rename(p, moved) == 0, p);
		must(symlink("d1.real", p) == 0, p);
		CHECK(!tree_unchanged(&t), "%s: d1 swapped for a symlink not seen", root);
		rescan(&t, root);
	}
	/* The root vanished. */
	snprintf(p, sizeof(p), "%s.gone", root);
	must(rename(root, p) == 0, root);
	CHECK(!tree_unchanged(&t), "%s: vanished root not seen", root);
	tree_free(&t);
}

int main(void)
{
	char base[] = "/tmp/rpifs-treecheck.XXXXXX";

	must(mkdtemp(base) != NULL, "mkdtemp");
	run(base, 0);           /* one thread */
	run(base, 5120);        /* above PARALLEL_MIN_NODES: several */
	return finish(base);
}
