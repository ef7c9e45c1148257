/* test_srcfile.c - the source file table (src/engine/srcfile.c): reads that
 * are never short, and opens that never leave the tree.
 *
 * Files of a temporary tree are registered as the scan registers them (a
 * node per path component, from an arena, so that the path is rebuilt from
 * the parents), then:
 *   - full, partial, across-EOF and past-EOF reads: the file's bytes, zeros
 *     past the recorded size, always exactly the length asked, return 0;
 *   - a file grown, shrunk, deleted, or replaced by another file (rename
 *     over it) after registration: clipped to / zero-padded to the recorded
 *     size; a replaced or deleted file reads as zeros (srcfiles_open says
 *     -ESTALE / -ENOENT), never the new file's bytes;
 *   - a directory, or the file itself, swapped for a symlink to the SAME
 *     inode moved outside the tree: the identity check alone would accept
 *     it, so only RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS (or O_NOFOLLOW per
 *     component) stands between the read and the outside bytes: zeros;
 *   - "..", absolute paths and symlinks in srcfile_open_beneath(), and the
 *     same through the component walk taken for paths beyond PATH_MAX;
 *   - srcfiles_splice() gives the bytes srcfiles_pread() gives.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "srcfile.h"
#include "tree.h"

static char base[] = "/tmp/rpifs-srcfile.XXXXXX";
static char root[64];
static struct arena nodes;      /* the nodes reg() makes */

static uint8_t pat(const char *name, uint64_t off)
{
	return (uint8_t)(name[0] * 7 + off * 13 + (off >> 8));
}

/* root/NAME with len pattern bytes. */
static void mkfile(const char *name, size_t len)
{
	char p[512];
	uint8_t *b = malloc(len + 1);

	must(b != NULL, "malloc");
	for (size_t i = 0; i < len; i++)
		b[i] = pat(name, i);
	snprintf(p, sizeof(p), "%s/%s", root, name);
	put_bytes(p, b, len);
	free(b);
}

/* A chain of nodes for relpath as the scan would make it (the root, a
 * directory per component, the file last with st and bt): its id. */
static uint32_t add_node(struct srcfiles *sf, const char *relpath, const struct stat *st,
			 const struct timespec *bt)
{
	struct tree_node *n = tree_node_new(&nodes, "", 0);
	const char *p = relpath, *e;

	must(n != NULL, "tree_node_new");
	for (; *p; p = *e ? e + 1 : e) {
		struct tree_node *k;

		e = strchrnul(p, '/');
		k = tree_node_new(&nodes, p, (size_t)(e - p));
		must(k != NULL, "tree_node_new");
		k->parent = n;
		k->st.st_mode = S_IFDIR | 0755;
		n = k;
	}
	tree_stat_set(&n->st, st, bt);
	must(srcfiles_add(sf, n) == 0, "srcfiles_add");
	return n->file;
}

static uint32_t reg(struct srcfiles *sf, const char *name)
{
	struct stat st;
	struct timespec bt;

	must(srcfile_stat(sf->root_fd, name, AT_SYMLINK_NOFOLLOW, &st, &bt) == 0, name);
	return add_node(sf, name, &st, &bt);
}

/* Read [off, off+len) of id; want: pattern of pname for [off, min(end,
 * data_end)), zeros after. The buffer is pre-filled so a short read shows. */
static void expect(struct srcfiles *sf, uint32_t id, uint64_t off, size_t len,
		   const char *pname, uint64_t data_end, const char *what)
{
	uint8_t *b = malloc(len + 1);
	size_t bad = SIZE_MAX;

	must(b != NULL, "malloc");
	memset(b, 0xa5, len + 1);
	CHECK(srcfiles_pread(sf, id, b, len, off) == 0, "%s: pread returns an error", what);
	for (size_t i = 0; i < len && bad == SIZE_MAX; i++) {
		uint8_t want = off + i < data_end ? pat(pname, off + i) : 0;

		if (b[i] != want)
			bad = i;
	}
	CHECK(bad == SIZE_MAX, "%s: byte %" PRIu64 " is %02x", what, off + bad,
	      bad == SIZE_MAX ? 0 : b[bad]);
	CHECK(b[len] == 0xa5, "%s: wrote past the buffer", what);
	free(b);
}

static void path_of(char *p, size_t n, const char *rel)
{
	snprintf(p, n, "%s/%s", root, rel);
}

static void test_reads(void)
{
	struct srcfiles sf;
	uint32_t a, big, empty;

	mkfile("a", 1000);
	mkfile("big", 3 * 4096 + 5);
	mkfile("empty", 0);
	must(srcfiles_init(&sf, open(root, O_PATH | O_DIRECTORY)) == 0, "srcfiles_init");
	a = reg(&sf, "a");
	big = reg(&sf, "big");
	empty = reg(&sf, "empty");
	CHECK(sf.n == 3 && sf.v[a]->st.st_size == 1000 && !strcmp(sf.v[big]->name, "big"));

	expect(&sf, a, 0, 1000, "a", 1000, "full");
	expect(&sf, a, 100, 50, "a", 1000, "partial");
	expect(&sf, a, 900, 300, "a", 1000, "across the end");
	expect(&sf, a, 5000, 100, "a", 1000, "past the end");
	expect(&sf, a, 1000, 4096, "a", 1000, "from the end");
	expect(&sf, big, 4090, 8200, "big", 3 * 4096 + 5, "across pages");
	expect(&sf, big, 0, 5 * 4096, "big", 3 * 4096 + 5, "big, padded");
	expect(&sf, empty, 0, 512, "empty", 0, "empty file");
	CHECK(srcfiles_pread(&sf, 3, (uint8_t[1]){ 0 }, 1, 0) == -EINVAL, "unknown id");

	/* Splice: the same bytes as pread, into a pipe. */
	int pfd[2];

	must(pipe2(pfd, O_NONBLOCK) == 0, "pipe");
	int r = srcfiles_splice(&sf, a, 900, 300, pfd[1]);

	if (r == -EOPNOTSUPP) {
		printf("# splice: not supported by %s's filesystem, skipped\n", base);
	} else {
		uint8_t got[400], want[300];

		CHECK(r == 0, "splice: %d", r);
		CHECK(read(pfd[0], got, sizeof(got)) == 300, "splice: not 300 bytes");
		must(srcfiles_pread(&sf, a, want, 300, 900) == 0, "pread");
		CHECK(!memcmp(got, want, 300), "splice and pread differ");
	}
	close(pfd[0]);
	close(pfd[1]);
	srcfiles_free(&sf);
}

/* Changes after registration, each before the file's first read (a file
 * already read keeps its open fd: it stays the file that was registered). */
static void test_changes(void)
{
	struct srcfiles sf;
	uint32_t grow, shrink, repl, gone;
	struct stat st;
	char p[512], q[512];
	int fd;

	mkfile("grow", 100);
	mkfile("shrink", 1000);
	mkfile("repl", 500);
	mkfile("gone", 500);
	must(srcfiles_init(&sf, open(root, O_PATH | O_DIRECTORY)) == 0, "srcfiles_init");
	grow = reg(&sf, "grow");
	shrink = reg(&sf, "shrink");
	repl = reg(&sf, "repl");
	gone = reg(&sf, "gone");

	/* Grown: the recorded 100 bytes, then zeros, not the new bytes. */
	path_of(p, sizeof(p), "grow");
	fd = open(p, O_WRONLY | O_APPEND);
	must(fd >= 0 && write(fd, "XXXXXXXXXX", 10) == 10, p);
	close(fd);
	expect(&sf, grow, 0, 300, "grow", 100, "grown");
	expect(&sf, grow, 95, 10, "grow", 100, "grown, at the old end");

	/* Shrunk: its remaining bytes, zeros for the rest, full length. */
	path_of(p, sizeof(p), "shrink");
	must(truncate(p, 10) == 0, p);
	expect(&sf, shrink, 0, 1000, "shrink", 10, "shrunk");
	expect(&sf, shrink, 500, 100, "shrink", 10, "shrunk, past its new end");

	/* Replaced by another file of the same size: zeros, not its bytes. */
	mkfile("other", 500);
	path_of(p, sizeof(p), "other");
	path_of(q, sizeof(q), "repl");
	must(rename(p, q) == 0, "rename");
	CHECK(srcfiles_open(&sf, repl, &st) == -ESTALE, "replaced: open not refused");
	expect(&sf, repl, 0, 500, "repl", 0, "replaced");

	/* Deleted. */
	path_of(p, sizeof(p), "gone");
	must(unlink(p) == 0, p);
	CHECK(srcfiles_open(&sf, gone, &st) == -ENOENT, "deleted: open");
	expect(&sf, gone, 0, 500, "gone", 0, "deleted");
	srcfiles_free(&sf);
}

/* The file or a directory above it swapped for a symlink to the same inode,
 * now outside the tree. */
static void test_escape(void)
{
	struct srcfiles sf;
	uint32_t inner, file;
	struct stat st;
	char p[512], q[512];
	int fd;

	path_of(p, sizeof(p), "sub");
	must(mkdir(p, 0755) == 0, p);
	mkfile("sub/f", 700);
	mkfile("g", 600);
	must(srcfiles_init(&sf, open(root, O_PATH | O_DIRECTORY)) == 0, "srcfiles_init");
	inner = reg(&sf, "sub/f");
	file = reg(&sf, "g");

	/* sub moves out (f keeps its inode); root/sub -> ../outside */
	path_of(p, sizeof(p), "sub");
	snprintf(q, sizeof(q), "%s/outside", base);
	must(rename(p, q) == 0, "rename sub");
	must(symlink("../outside", p) == 0, "symlink sub");
	snprintf(q, sizeof(q), "%s/outside/f", base);
	fd = open(q, O_RDONLY);         /* the path a follower would reach */
	must(fd >= 0, q);
	must(fstat(fd, &st) == 0 && st.st_ino == sf.v[inner]->st.st_ino, "same inode outside");
	close(fd);
	CHECK(srcfiles_open(&sf, inner, &st) < 0, "a symlinked directory was followed");
	CHECK(srcfile_open_beneath(sf.root_fd, "sub/f", O_RDONLY) < 0,
	      "open_beneath followed a symlinked directory");
	expect(&sf, inner, 0, 700, "sub/f", 0, "symlinked directory");

	/* g moves out; root/g -> ../g.out */
	path_of(p, sizeof(p), "g");
	snprintf(q, sizeof(q), "%s/g.out", base);
	must(rename(p, q) == 0, "rename g");
	must(symlink("../g.out", p) == 0, "symlink g");
	CHECK(srcfiles_open(&sf, file, &st) < 0, "a symlinked file was followed");
	expect(&sf, file, 0, 600, "g", 0, "symlinked file");

	/* Paths that leave the root. */
	CHECK(srcfile_open_beneath(sf.root_fd, "../g.out", O_RDONLY) < 0, "\"..\" followed");
	CHECK(srcfile_open_beneath(sf.root_fd, q, O_RDONLY) < 0, "absolute path followed");
	fd = srcfile_open_beneath(sf.root_fd, "a", O_RDONLY);
	CHECK(fd >= 0, "a plain file is refused: %d", fd);
	if (fd >= 0)
		close(fd);
	srcfiles_free(&sf);
}

/* Beyond PATH_MAX openat2 says ENAMETOOLONG and the open walks the
 * components with O_NOFOLLOW: the same refusals. */
static void test_long_path(void)
{
	char name[251], *rel = calloc(1, 8192), p[512], q[512];
	struct srcfiles sf;
	uint32_t id;
	int dir, d;

	must(rel != NULL, "calloc");
	memset(name, 'n', 250);
	name[250] = '\0';
	dir = open(root, O_PATH | O_DIRECTORY);
	must(dir >= 0, root);
	must(mkdirat(dir, "deep", 0755) == 0, "mkdir deep");
	strcpy(rel, "deep");
	d = openat(dir, "deep", O_PATH | O_DIRECTORY);
	for (int i = 0; i < 20; i++) {     /* 20 x 251 bytes > PATH_MAX */
		int nd;

		must(mkdirat(d, name, 0755) == 0, "mkdir");
		nd = openat(d, name, O_PATH | O_DIRECTORY);
		must(nd >= 0, "open deep");
		close(d);
		d = nd;
		strcat(rel, "/");
		strcat(rel, name);
	}
	int fd = openat(d, "f", O_WRONLY | O_CREAT, 0644);

	must(fd >= 0 && write(fd, "deep bytes", 10) == 10, "write deep");
	close(fd);
	close(d);
	strcat(rel, "/f");
	CHECK(strlen(rel) > PATH_MAX);

	must(srcfiles_init(&sf, dir) == 0, "srcfiles_init");
	{
		struct stat st;
		struct timespec bt;
		char *dirpart = strdup(rel);
		int dfd;

		/* statx cannot take the whole path either: stat it by fd. */
		*strrchr(dirpart, '/') = '\0';
		dfd = srcfile_open_beneath(sf.root_fd, dirpart, O_PATH | O_DIRECTORY);
		CHECK(dfd >= 0, "long path: the directory: %d", dfd);
		must(dfd >= 0 && srcfile_stat(dfd, "f", AT_SYMLINK_NOFOLLOW, &st, &bt) == 0,
		     "stat deep");
		close(dfd);
		free(dirpart);
		id = add_node(&sf, rel, &st, &bt);
	}
	uint8_t b[16];

	memset(b, 0xa5, sizeof(b));
	CHECK(srcfiles_pread(&sf, id, b, 16, 0) == 0 && !memcmp(b, "deep bytes\0\0\0\0\0\0", 16),
	      "long path: read");
	/* "deep" moves out of the tree; root/deep -> ../deep.out */
	path_of(p, sizeof(p), "deep");
	snprintf(q, sizeof(q), "%s/deep.out", base);
	must(rename(p, q) == 0, "rename deep");
	must(symlink("../deep.out", p) == 0, "symlink deep");
	CHECK(srcfile_open_beneath(sf.root_fd, rel, O_RDONLY) < 0,
	      "long path: a symlinked directory was followed");
	rel[0] = '.';                   /* "deep/..." -> ".eep/...": absent */
	CHECK(srcfile_open_beneath(sf.root_fd, rel, O_RDONLY) == -ENOENT, "long path: absent");
	memcpy(rel, "../", 3);
	CHECK(srcfile_open_beneath(sf.root_fd, rel, O_RDONLY) < 0, "long path: \"..\" followed");
	srcfiles_free(&sf);
	free(rel);
}

int main(void)
{
	must(mkdtemp(base) != NULL, "mkdtemp");
	snprintf(root, sizeof(root), "%s/root", base);
	must(mkdir(root, 0755) == 0, root);
	test_reads();
	test_changes();
	test_escape();
	test_long_path();
	arena_free(&nodes);
	return finish(base);
}
