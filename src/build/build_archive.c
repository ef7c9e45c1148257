/* build_archive.c - libarchive unpacking confined to a directory. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "build.h"
#include "build_archive.h"
#include "log.h"

#define MAX_DEPTH 256       /* directory levels below the root */
#define MAX_LINKS 40        /* symlinks followed in one lookup, as Linux */

struct xctx {
	const char *name;       /* archive path, for messages */
	int rootfd;
	bool owners;            /* apply numeric owners (running as root) */
	bool reported;          /* the current entry's error was reported */
	unsigned skipped_nodes; /* device nodes skipped without root */
};

/* Strip leading "./" and "/"-runs; refuse absolute paths and "..". The
 * result points into path's copy *out (free it). */
static int clean_path(const char *path, char **out, const char **why)
{
	char *p, *s, *copy;

	if (path[0] == '/') {
		*why = "absolute path";
		return -EPERM;
	}
	copy = build_xstrdup(path);
	for (s = copy; (p = strsep(&s, "/")); ) {
		if (!strcmp(p, "..")) {
			*why = "\"..\" in the path";
			free(copy);
			return -EPERM;
		}
	}
	free(copy);
	p = build_xstrdup(path);
	s = p;
	while (s[0] == '.' && s[1] == '/')
		for (s += 2; *s == '/'; s++)
			;
	memmove(p, s, strlen(s) + 1);
	for (size_t n = strlen(p); n > 0 && p[n - 1] == '/'; n--)
		p[n - 1] = '\0';
	if (!strcmp(p, "."))
		p[0] = '\0';
	*out = p;
	return 0;
}

/* A relative symlink target, read from the directory of entry path, must
 * not climb above the root: other tools follow links on the host. */
static bool link_stays_inside(const char *entry, const char *target)
{
	int depth = 0;
	char *copy, *s, *c;

	if (target[0] == '/')
		return true;        /* resolved inside the root by whoever boots it */
	for (const char *p = entry; *p; p++)
		if (*p == '/')
			depth++;
	copy = build_xstrdup(target);
	for (s = copy; (c = strsep(&s, "/")); ) {
		if (!*c || !strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			if (--depth < 0)
				break;
		} else {
			depth++;
		}
	}
	free(copy);
	return depth >= 0;
}

/*
 * Resolve path inside rootfd. Returns (in *pfd) an O_PATH descriptor of the
 * directory that holds the last component, and that component in *last
 * ("." when the path names a directory reached through ".." or a link).
 * create: make missing intermediate directories. follow_last: a symlink
 * as last component is followed too.
 */
static int resolve(int rootfd, const char *path, bool create, bool follow_last,
		   int *pfd, char **last)
{
	int stack[MAX_DEPTH], depth = 0, links = 0, ret = 0;
	char *work = build_xstrdup(path), *p = work;

	stack[0] = rootfd;
	*pfd = -1;
	*last = NULL;
	for (;;) {
		char comp[NAME_MAX + 1], *rest;
		size_t len;
		bool is_last;
		struct stat st;

		while (*p == '/')
			p++;
		if (!*p) {
			*last = build_xstrdup(".");
			break;
		}
		len = strcspn(p, "/");
		if (len > NAME_MAX) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		rest = p + len;
		while (*rest == '/')
			rest++;
		is_last = !*rest;
		if (!strcmp(comp, ".") || !strcmp(comp, "..")) {
			if (comp[1] == '.' && depth > 0)
				close(stack[depth--]);
			p = rest;
			continue;
		}
		if (is_last && !follow_last) {
			*last = build_xstrdup(comp);
			break;
		}
		if (fstatat(stack[depth], comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) {
				ret = -errno;
				goto out;
			}
			if (is_last) {
				*last = build_xstrdup(comp);
				break;
			}
			if (!create) {
				ret = -ENOENT;
				goto out;
			}
			if (mkdirat(stack[depth], comp, 0755) < 0 && errno != EEXIST) {
				ret = -errno;
				goto out;
			}
			st.st_mode = S_IFDIR;
		}
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n;
			char *nw;

			if (++links > MAX_LINKS) {
				ret = -ELOOP;
				goto out;
			}
			n = readlinkat(stack[depth], comp, target, sizeof(target) - 1);
			if (n < 0) {
				ret = -errno;
				goto out;
			}
			target[n] = '\0';
			if (target[0] == '/')
				while (depth > 0)
					close(stack[depth--]);
			nw = *rest ? build_xasprintf("%s/%s", target, rest) : build_xstrdup(target);
			free(work);
			work = p = nw;
			continue;
		}
		if (is_last) {
			*last = build_xstrdup(comp);
			break;
		}
		if (!S_ISDIR(st.st_mode)) {
			ret = -ENOTDIR;
			goto out;
		}
		if (depth + 1 >= MAX_DEPTH) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		/* O_NOFOLLOW: if comp was swapped for a symlink since fstatat,
		 * fail rather than leave the root. */
		stack[depth + 1] = openat(stack[depth], comp,
					  O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (stack[depth + 1] < 0) {
			ret = -errno;
			goto out;
		}
		depth++;
		p = rest;
	}
	*pfd = fcntl(stack[depth], F_DUPFD_CLOEXEC, 0);
	if (*pfd < 0)
		ret = -errno;
out:
	while (depth > 0)
		close(stack[depth--]);
	if (ret) {
		free(*last);
		*last = NULL;
	}
	free(work);
	return ret;
}

int build_archive_root_open(int rootfd, const char *path, int flags)
{
	char *last = NULL;
	int pfd, fd, ret;

	ret = resolve(rootfd, path, false, true, &pfd, &last);
	if (ret)
		return ret;
	fd = openat(pfd, last, flags | O_NOFOLLOW | O_CLOEXEC);
	ret = fd < 0 ? -errno : fd;
	close(pfd);
	free(last);
	return ret;
}

/* Make room for a new entry at (pfd, name): remove what is there, unless
 * it is a directory (then -EEXIST, and the caller decides). */
static int clear_slot(int pfd, const char *name)
{
	struct stat st;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return -EEXIST;
	if (unlinkat(pfd, name, 0) < 0)
		return -errno;
	return 0;
}

static int set_meta(struct xctx *x, int fd, struct archive_entry *e, bool is_dir)
{
	struct timespec ts[2] = {
		{ archive_entry_atime(e), archive_entry_atime_nsec(e) },
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
	};
	mode_t mode = archive_entry_perm(e) & 07777;

	if (!archive_entry_atime_is_set(e))
		ts[0] = ts[1];
	/* chown before chmod: chown clears the setuid bits. */
	if (x->owners && fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
		return -errno;
	/* Without root a directory must stay writable for what follows. */
	if (is_dir && !x->owners)
		mode |= 0700;
	if (fchmod(fd, mode) < 0)
		return -errno;
	if (archive_entry_mtime_is_set(e) && futimens(fd, ts) < 0)
		return -errno;
	return 0;
}

static int write_data(struct archive *a, int fd, la_int64_t size)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		const char *p = buf;

		while (len) {
			ssize_t w = pwrite(fd, p, len, (off_t)off);

			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			p += w;
			off += w;
			len -= (size_t)w;
		}
	}
	if (r != ARCHIVE_EOF)
		return -EIO;
	/* Sparse entries may end in a hole. */
	if (ftruncate(fd, (off_t)size) < 0)
		return -errno;
	return 0;
}

static int make_dir(struct xctx *x, int pfd, const char *name, struct archive_entry *e)
{
	struct stat st;
	int fd, ret;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* A symlink stays (usrmerge's lib -> usr/lib): resolve()
		 * follows it, inside the root, for the entries below. */
		if (S_ISLNK(st.st_mode))
			return 0;
		if (!S_ISDIR(st.st_mode) && unlinkat(pfd, name, 0) < 0)
			return -errno;
	}
	if (mkdirat(pfd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = set_meta(x, fd, e, true);
	close(fd);
	return ret;
}

static int make_file(struct xctx *x, struct archive *a, int pfd, const char *name,
		     struct archive_entry *e)
{
	int fd, ret = clear_slot(pfd, name);

	if (ret == -EEXIST)
		return -EISDIR;
	if (ret)
		return ret;
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = write_data(a, fd, archive_entry_size(e));
	if (!ret)
		ret = set_meta(x, fd, e, false);
	if (close(fd) < 0 && !ret)
		ret = -errno;
	return ret;
}

static int make_symlink(struct xctx *x, int pfd, const char *name, struct archive_entry *e)
{
	struct timespec ts[2] = {
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
	};
	int ret = clear_slot(pfd, name);

	if (ret == -EEXIST) {
		/* An empty directory may become a symlink (dpkg does this). */
		if (unlinkat(pfd, name, AT_REMOVEDIR) < 0)
			return -errno;
	} else if (ret) {
		return ret;
	}
	if (symlinkat(archive_entry_symlink(e), pfd, name) < 0)
		return -errno;
	if (x->owners && fchownat(pfd, name, (uid_t)archive_entry_uid(e),
				  (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (archive_entry_mtime_is_set(e) && utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int make_hardlink(struct xctx *x, int pfd, const char *name, const char *target)
{
	char *clean = NULL, *tlast = NULL;
	const char *why = NULL;
	int tpfd = -1, ret;

	ret = clean_path(target, &clean, &why);
	if (ret) {
		log_error("%s: hard link %s -> %s: %s refused", x->name, name, target, why);
		x->reported = true;
		return ret;
	}
	ret = resolve(x->rootfd, clean, false, false, &tpfd, &tlast);
	if (ret)
		goto out;
	ret = clear_slot(pfd, name);
	if (ret == -EEXIST)
		ret = -EISDIR;
	if (ret)
		goto out;
	if (linkat(tpfd, tlast, pfd, name, 0) < 0)
		ret = -errno;
out:
	if (tpfd >= 0)
		close(tpfd);
	free(tlast);
	free(clean);
	return ret;
}

static int make_node(struct xctx *x, int pfd, const char *name, struct archive_entry *e)
{
	mode_t type = archive_entry_filetype(e);
	int ret;

	if (!x->owners && type != AE_IFIFO) {
		x->skipped_nodes++;     /* needs root; reported once at the end */
		return 0;
	}
	ret = clear_slot(pfd, name);
	if (ret)
		return ret == -EEXIST ? -EISDIR : ret;
	if (mknodat(pfd, name, type | (archive_entry_perm(e) & 07777),
		    makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e))) < 0)
		return -errno;
	if (x->owners && fchownat(pfd, name, (uid_t)archive_entry_uid(e),
				  (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int extract_entry(struct xctx *x, struct archive *a, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e), *why = NULL;
	const char *hard = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	char *path = NULL, *last = NULL;
	int pfd = -1, ret;

	x->reported = false;
	if (!raw) {
		log_error("%s: an entry without a name", x->name);
		return -EINVAL;
	}
	ret = clean_path(raw, &path, &why);
	if (ret) {
		log_error("%s: entry %s: %s refused", x->name, raw, why);
		return ret;
	}
	if (type == AE_IFLNK && !hard && !link_stays_inside(path, archive_entry_symlink(e))) {
		log_error("%s: entry %s: symlink to %s leads out of the target, refused",
			  x->name, raw, archive_entry_symlink(e));
		ret = -EPERM;
		goto out;
	}
	if (!path[0])
		goto out;           /* "./": the root itself */
	ret = resolve(x->rootfd, path, true, false, &pfd, &last);
	if (ret)
		goto fail;
	if (!strcmp(last, "."))
		goto out;
	if (hard)
		ret = make_hardlink(x, pfd, last, hard);
	else if (type == AE_IFDIR)
		ret = make_dir(x, pfd, last, e);
	else if (type == AE_IFREG)
		ret = make_file(x, a, pfd, last, e);
	else if (type == AE_IFLNK)
		ret = make_symlink(x, pfd, last, e);
	else if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO)
		ret = make_node(x, pfd, last, e);
	/* Sockets are not archived meaningfully: skipped. */
fail:
	if (x->reported)
		;
	else if (ret == -EIO)
		log_error("%s: entry %s: %s", x->name, raw, archive_error_string(a));
	else if (ret)
		log_error("%s: entry %s: %s", x->name, raw, strerror(-ret));
out:
	if (pfd >= 0)
		close(pfd);
	free(last);
	free(path);
	return ret;
}

static int extract_all(struct xctx *x, struct archive *a, struct archive_entry *first)
{
	struct archive_entry *e = first;
	int r, ret = 0;

	for (;;) {
		if (!e) {
			r = archive_read_next_header(a, &e);
			if (r == ARCHIVE_EOF)
				break;
			if (r < ARCHIVE_WARN) {
				log_error("%s: %s", x->name, archive_error_string(a));
				return -EIO;
			}
		}
		ret = extract_entry(x, a, e);
		if (ret)
			return ret;
		e = NULL;
	}
	return 0;
}

/* The inner reader of a .deb pulls its bytes from the outer one. */
struct nested {
	struct archive *outer;
	char buf[64 * 1024];
};

static la_ssize_t nested_read(struct archive *inner, void *ud, const void **buf)
{
	struct nested *n = ud;
	la_ssize_t r = archive_read_data(n->outer, n->buf, sizeof(n->buf));

	if (r < 0)
		archive_set_error(inner, archive_errno(n->outer), "%s",
				  archive_error_string(n->outer));
	*buf = n->buf;
	return r;
}

static int extract_deb(struct xctx *x, struct archive *outer)
{
	struct archive_entry *e;
	struct archive *inner = NULL;
	struct nested *n = NULL;
	int r, ret = 0;

	/* The first member was read by the caller; look for data.tar.*. */
	for (;;) {
		r = archive_read_next_header(outer, &e);
		if (r == ARCHIVE_EOF) {
			log_error("%s: a Debian package without data.tar.*", x->name);
			return -EINVAL;
		}
		if (r < ARCHIVE_WARN) {
			log_error("%s: %s", x->name, archive_error_string(outer));
			return -EIO;
		}
		if (!strncmp(archive_entry_pathname(e), "data.tar", 8))
			break;
	}
	n = malloc(sizeof(*n));
	inner = archive_read_new();
	if (!n || !inner) {
		ret = -ENOMEM;
		goto out;
	}
	n->outer = outer;
	archive_read_support_filter_all(inner);
	archive_read_support_format_tar(inner);
	if (archive_read_open(inner, n, NULL, nested_read, NULL) != ARCHIVE_OK) {
		log_error("%s: data.tar: %s", x->name, archive_error_string(inner));
		ret = -EIO;
		goto out;
	}
	ret = extract_all(x, inner, NULL);
out:
	if (inner)
		archive_read_free(inner);
	free(n);
	return ret;
}

int build_archive_extract(const char *archive, const char *root)
{
	struct xctx x = { .name = archive, .rootfd = -1, .owners = geteuid() == 0 };
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int r, ret = 0;

	if (!a)
		return -ENOMEM;
	x.rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (x.rootfd < 0) {
		ret = -errno;
		log_error("%s: %s", root, strerror(-ret));
		goto out;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (archive_read_open_filename(a, archive, 64 * 1024) != ARCHIVE_OK) {
		log_error("%s: %s", archive, archive_error_string(a));
		ret = archive_errno(a) > 0 ? -archive_errno(a) : -EIO;
		goto out;
	}
	r = archive_read_next_header(a, &e);
	if (r == ARCHIVE_EOF) {
		log_error("%s: empty archive", archive);
		ret = -EINVAL;
		goto out;
	}
	if (r < ARCHIVE_WARN) {
		log_error("%s: %s", archive, archive_error_string(a));
		ret = -EINVAL;
		goto out;
	}
	if ((archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_AR)
		ret = extract_deb(&x, a);
	else
		ret = extract_all(&x, a, e);
	if (!ret && x.skipped_nodes)
		log_warn("%s: %u device nodes skipped (creating them needs root)", archive,
			 x.skipped_nodes);
out:
	if (x.rootfd >= 0)
		close(x.rootfd);
	archive_read_free(a);
	return ret;
}
