/* test_tree_scan.c - the scan gives the same tree on one thread and on
 * several: the same nodes in the same order, the same stat fields, links
 * and xattrs, the same source-file ids and paths, the same digest.
 *
 * The tree is lopsided on purpose, like a Debian tree (most entries below
 * one directory): one heavy subtree of many directories, a chain 60 levels
 * deep, symlinks, xattrs, empty directories, and a few small top-level
 * directories. The multi-threaded scan runs several times, since which
 * thread takes which directory changes from run to run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "check.h"
#include "tree.h"


/* A file of len % 64 bytes. */
static void put_len(const char *path, size_t len)
{
	char buf[64];

	memset(buf, 'x', sizeof(buf));
	put_bytes(path, buf, len % sizeof(buf));
}

static void build(const char *root)
{
	char p[4096];
	size_t l;

	/* heavy/: 40 directories of 3 levels, 10 files each */
	snprintf(p, sizeof(p), "%s/heavy", root);
	must(mkdir(p, 0755) == 0, p);
	for (int a = 0; a < 40; a++) {
		snprintf(p, sizeof(p), "%s/heavy/a%02d", root, a);
		must(mkdir(p, 0755) == 0, p);
		for (int b = 0; b < 3; b++) {
			snprintf(p, sizeof(p), "%s/heavy/a%02d/b%d", root, a, b);
			must(mkdir(p, 0750) == 0, p);
			for (int f = 0; f < 10; f++) {
				snprintf(p, sizeof(p), "%s/heavy/a%02d/b%d/f%d", root, a, b, f);
				put_len(p, (size_t)(a * 31 + b * 7 + f));
			}
		}
		snprintf(p, sizeof(p), "%s/heavy/a%02d/link", root, a);
		must(symlink("b0/f0", p) == 0, p);
	}
	/* a chain 60 levels deep, a file at each level */
	l = (size_t)snprintf(p, sizeof(p), "%s/deep", root);
	for (int d = 0; d < 60; d++) {
		must(mkdir(p, 0755) == 0, p);
		snprintf(p + l, sizeof(p) - l, "/f");
		put_len(p, (size_t)d);
		l += (size_t)snprintf(p + l, sizeof(p) - l, "/d%d", d);
	}
	/* small top-level directories, one empty, one with an xattr */
	for (int t = 0; t < 5; t++) {
		snprintf(p, sizeof(p), "%s/top%d", root, t);
		must(mkdir(p, 0755) == 0, p);
		if (t == 0)
			continue;
		snprintf(p, sizeof(p), "%s/top%d/file", root, t);
		put_len(p, (size_t)t);
		if (t == 2 && setxattr(p, "user.rpifs", "v", 1, 0) < 0 && errno != ENOTSUP)
			must(0, "setxattr");
	}
	snprintf(p, sizeof(p), "%s/rootfile", root);
	put_len(p, 5);
	/* The newest mtime deep in the heavy subtree: some helper thread,
	 * not the caller, usually scans it. */
	{
		struct timespec ts[2] = { { 2000000000, 0 }, { 2000000000, 0 } };

		snprintf(p, sizeof(p), "%s/heavy/a39/b2/f9", root);
		must(utimensat(AT_FDCWD, p, ts, 0) == 0, p);
	}
}

/* One line per node, in tree order: everything the image is made of. */
static void dump(FILE *f, const struct tree *t, const struct tree_node *n, unsigned depth)
{
	uint32_t file = S_ISREG(n->st.st_mode) ? n->file : SRCFILE_NONE;
	uint32_t nkids = S_ISDIR(n->st.st_mode) ? n->nkids : 0;

	fprintf(f, "%u %s %o %" PRIu64 " %u:%u %lld.%09ld %" PRIu32 " %s", depth, n->name,
		(unsigned)n->st.st_mode, (uint64_t)n->st.st_size, (unsigned)n->st.st_uid,
		(unsigned)n->st.st_gid, (long long)n->st.st_mtim.tv_sec, (long)n->st.st_mtim.tv_nsec,
		file, S_ISLNK(n->st.st_mode) ? n->link : "-");
	if (file != SRCFILE_NONE) {
		char *path = tree_path(t->files.v[file]);

		fprintf(f, " path=%s", path);
		free(path);
	}
	for (size_t i = 0; i < n->nxattrs; i++)
		fprintf(f, " x:%s=%zu", n->xattrs[i].name, n->xattrs[i].len);
	fputc('\n', f);
	for (size_t i = 0; i < nkids; i++)
		dump(f, t, n->kids[i], depth + 1);
}

static char *scan_dump(const char *root, unsigned threads, struct digest *dg, uint64_t *nodes)
{
	struct tree_scan_opts so = { .xattrs = true, .threads = threads };
	struct tree t;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	must(tree_scan(&t, root, &so) == 0, "tree_scan");
	f = open_memstream(&buf, &len);
	must(f != NULL, "open_memstream");
	fprintf(f, "nodes %" PRIu64 " bytes %" PRIu64 " newest %" PRId64 " files %zu\n",
		t.nodes, t.data_bytes, t.newest_mtime, t.files.n);
	dump(f, &t, t.root, 0);
	fclose(f);
	*dg = t.digest;
	*nodes = t.nodes;
	tree_free(&t);
	return buf;
}

int main(void)
{
	char base[] = "/tmp/rpifs-scan.XXXXXX";
	char root[64];
	struct digest d1, dn;
	uint64_t n1, nn;
	char *one, *many;

	must(mkdtemp(base) != NULL, "mkdtemp");
	snprintf(root, sizeof(root), "%s/t", base);
	must(mkdir(root, 0755) == 0, root);
	build(root);

	one = scan_dump(root, 1, &d1, &n1);
	printf("%" PRIu64 " entries\n", n1);
	CHECK(n1 > 1400, "only %" PRIu64 " entries scanned", n1);
	for (unsigned threads = 2; threads <= 4; threads++) {
		for (int run = 0; run < 10; run++) {
			many = scan_dump(root, threads, &dn, &nn);
			CHECK(nn == n1, "%u threads: %" PRIu64 " entries, 1 thread: %" PRIu64,
			      threads, nn, n1);
			CHECK(!strcmp(one, many), "%u threads (run %d): the tree differs from "
			      "the single-threaded scan", threads, run);
			CHECK(!memcmp(&d1, &dn, sizeof(d1)), "%u threads (run %d): digest differs",
			      threads, run);
			free(many);
		}
	}
	free(one);
	return finish(base);
}
