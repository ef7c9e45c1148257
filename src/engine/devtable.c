/* devtable.c - device nodes and fifos from a table (see devtable.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "devtable.h"
#include "log.h"
#include "tree.h"
#include "vector.h"

/* More would be a typo in count, not a table. */
#define DEVTABLE_MAX_COUNT 4096

static int num(const char *s, int base, unsigned long max, unsigned long *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, base);
	return errno || *end || *out > max ? -EINVAL : 0;
}

/* Split line into at most max whitespace-separated fields. */
static size_t fields(char *line, char **f, size_t max)
{
	size_t n = 0;

	for (char *tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
		if (n == max)
			return max + 1;
		f[n++] = tok;
	}
	return n;
}

static int add(struct devtable *t, size_t *cap, const char *path, mode_t mode,
	       uint32_t uid, uint32_t gid, dev_t rdev, unsigned line)
{
	struct devtable_entry *e;
	int ret;

	if ((ret = VEC_RESERVE(t->e, *cap, t->n + 1, 16)) < 0)
		return ret;
	e = &t->e[t->n];
	while (*path == '/')
		path++;
	if (!(e->path = strdup(path)))
		return -ENOMEM;
	e->mode = mode;
	e->uid = uid;
	e->gid = gid;
	e->rdev = rdev;
	e->line = line;
	t->n++;
	return 0;
}

/* One line's fields into entries; a message names what is wrong. */
static int parse_line(struct devtable *t, size_t *cap, char **f, size_t nf, unsigned line)
{
	unsigned long perm, uid, gid, maj = 0, min = 0, start = 0, inc = 0, count = 0;
	const char *path = f[0];
	mode_t type;
	int ret;

	if (nf != 7 && nf != 10) {
		log_error("%s:%u: %zu fields; a line is: path type mode uid gid major "
			  "minor [start inc count]", t->file, line, nf);
		return -EINVAL;
	}
	if (path[0] != '/' || strstr(path, "/../") || strstr(path, "/./") ||
	    !strcmp(path, "/") || strstr(path, "//") ||
	    (strlen(path) >= 3 && !strcmp(path + strlen(path) - 3, "/..")) ||
	    path[strlen(path) - 1] == '/') {
		log_error("%s:%u: %s: an absolute path inside the image, such as "
			  "/dev/console", t->file, line, path);
		return -EINVAL;
	}
	switch (f[1][1] ? 0 : f[1][0]) {
	case 'c': type = S_IFCHR; break;
	case 'b': type = S_IFBLK; break;
	case 'p': type = S_IFIFO; break;
	case 'd': type = S_IFDIR; break;
	case 'f': type = S_IFREG; break;
	default:
		log_error("%s:%u: type '%s': one of c (character device), b (block "
			  "device), p (fifo), d, f (change an existing directory or file)",
			  t->file, line, f[1]);
		return -EINVAL;
	}
	if (num(f[2], 8, 07777, &perm) < 0 || num(f[3], 10, UINT32_MAX, &uid) < 0 ||
	    num(f[4], 10, UINT32_MAX, &gid) < 0) {
		log_error("%s:%u: mode '%s' (octal), uid '%s', gid '%s': numbers expected",
			  t->file, line, f[2], f[3], f[4]);
		return -EINVAL;
	}
	if (type == S_IFCHR || type == S_IFBLK) {
		if (num(f[5], 10, 4095, &maj) < 0 || num(f[6], 10, 1048575, &min) < 0) {
			log_error("%s:%u: major '%s' (0-4095) and minor '%s' (0-1048575) of a "
				  "device", t->file, line, f[5], f[6]);
			return -EINVAL;
		}
	}
	if (nf == 10 && strcmp(f[9], "-")) {
		if (type != S_IFCHR && type != S_IFBLK) {
			log_error("%s:%u: start/inc/count only make sense for devices",
				  t->file, line);
			return -EINVAL;
		}
		if (num(f[7], 10, 1000000, &start) < 0 || num(f[8], 10, 1048575, &inc) < 0 ||
		    num(f[9], 10, DEVTABLE_MAX_COUNT, &count) < 0 || count == 0 ||
		    min + inc * (count - 1) > 1048575) {
			log_error("%s:%u: start '%s', inc '%s', count '%s': count from 1 to %d, "
				  "minors within 20 bits", t->file, line, f[7], f[8], f[9],
				  DEVTABLE_MAX_COUNT);
			return -EINVAL;
		}
		for (unsigned long i = 0; i < count; i++) {
			char *name;

			if (asprintf(&name, "%s%lu", path, start + i) < 0)
				return -ENOMEM;
			ret = add(t, cap, name, type | (mode_t)perm, (uint32_t)uid,
				  (uint32_t)gid, makedev(maj, min + i * inc), line);
			free(name);
			if (ret < 0)
				return ret;
		}
		return 0;
	}
	return add(t, cap, path, type | (mode_t)perm, (uint32_t)uid, (uint32_t)gid,
		   makedev(maj, min), line);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct devtable_entry *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	return c ? c : (x->line > y->line) - (x->line < y->line);
}

int devtable_load(struct devtable *t, const char *file)
{
	char *line = NULL, *f[11];
	size_t lcap = 0, cap = 0;
	unsigned lineno = 0;
	FILE *fp;
	int ret = 0;

	memset(t, 0, sizeof(*t));
	if (!(t->file = strdup(file)))
		return -ENOMEM;
	fp = fopen(file, "re");
	if (!fp) {
		ret = -errno;
		log_error("%s: cannot read the device table: %s", file, strerror(errno));
		goto out;
	}
	while (getline(&line, &lcap, fp) >= 0) {
		char *s = line;
		size_t nf;

		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '#')
			continue;
		nf = fields(s, f, 10);
		if (nf == 0)
			continue;
		if ((ret = parse_line(t, &cap, f, nf, lineno)) < 0)
			goto out;
	}
	if (ferror(fp)) {
		ret = -EIO;
		log_error("%s: read error", file);
		goto out;
	}
	/* The same path twice is a mistake in the table, not a choice. */
	qsort(t->e, t->n, sizeof(*t->e), cmp_entry);
	for (size_t i = 1; i < t->n; i++)
		if (!strcmp(t->e[i - 1].path, t->e[i].path)) {
			log_error("%s:%u: /%s is already given on line %u", file, t->e[i].line,
				  t->e[i].path, t->e[i - 1].line);
			ret = -EINVAL;
			goto out;
		}
out:
	if (fp)
		fclose(fp);
	free(line);
	if (ret < 0)
		devtable_free(t);
	return ret;
}

void devtable_free(struct devtable *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->e[i].path);
	free(t->e);
	free(t->file);
	memset(t, 0, sizeof(*t));
}

/* The directory that holds path (no symlink followed), or NULL. */
static struct tree_node *parent_of(struct tree *tree, char *path, char **name)
{
	struct tree_node *d = tree->root;
	char *s = path, *slash;

	while ((slash = strchr(s, '/'))) {
		*slash = '\0';
		d = tree_child(d, s);
		*slash = '/';
		if (!d || !S_ISDIR(d->st.st_mode))
			return NULL;
		s = slash + 1;
	}
	*name = s;
	return d;
}

int devtable_apply(const struct devtable *t, struct tree *tree)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct devtable_entry *e = &t->e[i];
		struct tree_node *dir, *n;
		char *name;

		dir = parent_of(tree, e->path, &name);
		if (!dir) {
			log_error("%s:%u: /%s: its directory is not in %s (the table adds "
				  "device nodes and fifos, not directories)", t->file, e->line,
				  e->path, tree->root_path);
			return -ENOENT;
		}
		n = tree_child(dir, name);
		if (S_ISDIR(e->mode) || S_ISREG(e->mode)) {
			if (!n || (n->st.st_mode & S_IFMT) != (e->mode & S_IFMT)) {
				log_error("%s:%u: /%s: no %s of that name in %s (d and f change "
					  "existing entries)", t->file, e->line, e->path,
					  S_ISDIR(e->mode) ? "directory" : "regular file",
					  tree->root_path);
				return -ENOENT;
			}
			n->st.st_mode = e->mode;
			n->st.st_uid = e->uid;
			n->st.st_gid = e->gid;
			continue;
		}
		if (n && S_ISDIR(n->st.st_mode)) {
			log_error("%s:%u: /%s is a directory in %s", t->file, e->line, e->path,
				  tree->root_path);
			return -EISDIR;
		}
		if (n && S_ISREG(n->st.st_mode)) {
			/* A file's data is the tree's: a table does not hide it. */
			log_error("%s:%u: /%s is a regular file in %s", t->file, e->line,
				  e->path, tree->root_path);
			return -EEXIST;
		}
		struct tree_node *k = tree_node_new(&tree->arena, name, strlen(name));

		if (!k)
			return -ENOMEM;
		k->virt = true;
		/* Times from its directory: deterministic, no "now". */
		k->st.st_mode = e->mode;
		k->st.st_uid = e->uid;
		k->st.st_gid = e->gid;
		if (S_ISCHR(e->mode) || S_ISBLK(e->mode))
			k->rdev = e->rdev;
		k->st.st_nlink = 1;
		k->st.st_dev = dir->st.st_dev;
		k->st.st_mtim = dir->st.st_mtim;
		k->st.st_atim = dir->st.st_mtim;
		k->st.st_ctim = dir->st.st_mtim;
		/* Replaces a symlink, device, fifo or socket of the name. */
		switch (tree_put_child(tree, dir, k)) {
		case 1:
			tree->nodes++;
			break;
		case 0:
			break;
		default:
			return -ENOMEM;     /* k stays in the arena */
		}
	}
	return 0;
}
