/* srcfile.c - source files: registration, safe opening, an fd cache, and
 * reads that never come back short (see srcfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "log.h"
#include "srcfile.h"
#include "tree.h"
#include "vector.h"

/* Open fds are cached so a sequential read of a large file does not pay an
 * open per request. Slots with refs > 0 are in use by a reader and are never
 * evicted. The cache is split into shards by file id, each with its own lock
 * and a few slots (a linear scan under the lock is cheap next to the pread it
 * guards): one lock for all made nbdkit's 16 threads, each reading a run of
 * small files, queue on it (a full read over NBD: 41 700 futex calls against
 * 2 700 for nbdkit's file plugin). Consecutive ids land in different shards. */
#define FDCACHE_SHARDS 16
#define FDCACHE_SLOTS 8         /* per shard */

struct fdslot {
	uint32_t id;
	int fd;
	unsigned refs;
	uint64_t used;          /* LRU clock */
};

struct fdshard {
	pthread_mutex_t lock;
	struct fdslot slot[FDCACHE_SLOTS];
	uint64_t clock;
} __attribute__((aligned(64)));   /* no false sharing between shards' locks */

struct fdcache {
	struct fdshard shard[FDCACHE_SHARDS];
};

static struct fdshard *shard_of(struct srcfiles *sf, uint32_t id)
{
	return &sf->cache->shard[id % FDCACHE_SHARDS];
}

int srcfiles_init(struct srcfiles *sf, int root_fd)
{
	memset(sf, 0, sizeof(*sf));
	sf->root_fd = root_fd;
	sf->cache = aligned_alloc(64, sizeof(*sf->cache));
	if (!sf->cache)
		return -ENOMEM;
	memset(sf->cache, 0, sizeof(*sf->cache));
	for (int k = 0; k < FDCACHE_SHARDS; k++) {
		pthread_mutex_init(&sf->cache->shard[k].lock, NULL);
		for (int i = 0; i < FDCACHE_SLOTS; i++)
			sf->cache->shard[k].slot[i].fd = -1;
	}
	return 0;
}

void srcfiles_free(struct srcfiles *sf)
{
	if (sf->cache) {
		for (int k = 0; k < FDCACHE_SHARDS; k++) {
			struct fdshard *h = &sf->cache->shard[k];

			for (int i = 0; i < FDCACHE_SLOTS; i++)
				if (h->slot[i].fd >= 0)
					close(h->slot[i].fd);
			pthread_mutex_destroy(&h->lock);
		}
		free(sf->cache);
	}
	free(sf->v);
	if (sf->root_fd >= 0)
		close(sf->root_fd);
	memset(sf, 0, sizeof(*sf));
	sf->root_fd = -1;
}

int srcfile_stat(int dirfd, const char *name, int flags, struct stat *st,
		 struct timespec *btime)
{
	struct statx sx;

	/* One path walk instead of fstatat() + statx(): the scan does this for
	 * every entry. The conversion is glibc's own (fstatat is statx there). */
	if (statx(dirfd, name, flags, STATX_BASIC_STATS | STATX_BTIME, &sx) < 0)
		return -errno;
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	st->st_ino = sx.stx_ino;
	st->st_mode = sx.stx_mode;
	st->st_nlink = sx.stx_nlink;
	st->st_uid = sx.stx_uid;
	st->st_gid = sx.stx_gid;
	st->st_rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor);
	st->st_size = (off_t)sx.stx_size;
	st->st_blksize = (blksize_t)sx.stx_blksize;
	st->st_blocks = (blkcnt_t)sx.stx_blocks;
	st->st_atim = (struct timespec){ sx.stx_atime.tv_sec, sx.stx_atime.tv_nsec };
	st->st_mtim = (struct timespec){ sx.stx_mtime.tv_sec, sx.stx_mtime.tv_nsec };
	st->st_ctim = (struct timespec){ sx.stx_ctime.tv_sec, sx.stx_ctime.tv_nsec };
	if (btime)
		*btime = sx.stx_mask & STATX_BTIME ?
			 (struct timespec){ sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec } :
			 (struct timespec){ 0, 0 };
	return 0;
}

static bool ts_eq(struct tree_time a, struct tree_time b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool srcfile_same(const struct tree_node *a, const struct tree_node *b)
{
	return a->st.st_dev == b->st.st_dev && a->st.st_ino == b->st.st_ino &&
	       a->st.st_size == b->st.st_size && ts_eq(a->st.st_btime, b->st.st_btime) &&
	       ts_eq(a->st.st_mtim, b->st.st_mtim) && ts_eq(a->st.st_ctim, b->st.st_ctim);
}

int srcfiles_reserve(struct srcfiles *sf, size_t n)
{
	struct tree_node **v;

	if (n <= sf->cap)
		return 0;
	if (n > SRCFILE_NONE)
		return -EOVERFLOW;
	v = realloc(sf->v, n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	sf->v = v;
	sf->cap = n;
	return 0;
}

int srcfiles_add(struct srcfiles *sf, struct tree_node *n)
{
	if (sf->n >= SRCFILE_NONE)
		return -EOVERFLOW;
	if (VEC_RESERVE(sf->v, sf->cap, sf->n + 1, 1024) < 0)
		return -ENOMEM;
	n->warned = 0;
	n->file = (uint32_t)sf->n;
	sf->v[sf->n++] = n;
	return 0;
}

int srcfile_open_beneath(int root_fd, const char *relpath, int flags)
{
	/* O_NOATIME: serving the image must not touch the tree, atimes
	 * included. Only the owner (or root) may ask for it: retry without.
	 * O_PATH takes no other flags (openat2 refuses them). */
	int extra = O_NOFOLLOW | O_CLOEXEC | (flags & O_PATH ? 0 : O_NOATIME);
	struct open_how how = {
		.flags = (uint64_t)(flags | extra),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, root_fd, relpath, &how, sizeof(how));

	if (fd < 0 && errno == EPERM && (extra & O_NOATIME)) {
		how.flags &= ~(uint64_t)O_NOATIME;
		fd = syscall(SYS_openat2, root_fd, relpath, &how, sizeof(how));
	}
	/* Paths beyond PATH_MAX (the scan accepts them) and kernels without
	 * openat2 walk the components instead. */
	if (fd >= 0 || (errno != ENOSYS && errno != ENAMETOOLONG))
		return fd >= 0 ? (int)fd : -errno;

	char *copy = strdup(relpath), *save = NULL, *comp, *next;
	int dir = root_fd, ret;

	if (!copy)
		return -ENOMEM;
	comp = strtok_r(copy, "/", &save);
	for (;;) {
		if (!comp || !strcmp(comp, "..")) {
			ret = -EINVAL;
			break;
		}
		next = strtok_r(NULL, "/", &save);
		int fl = next ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC : flags | extra;
		int nfd = openat(dir, comp, fl);

		if (nfd < 0 && errno == EPERM && (fl & O_NOATIME))
			nfd = openat(dir, comp, fl & ~O_NOATIME);

		if (dir != root_fd)
			close(dir);
		if (nfd < 0) {
			ret = -errno;
			break;
		}
		if (!next) {
			ret = nfd;
			break;
		}
		dir = nfd;
		comp = next;
	}
	free(copy);
	return ret;
}

int srcfiles_open(const struct srcfiles *sf, uint32_t id, struct stat *st)
{
	const struct tree_node *f = sf->v[id];
	struct timespec bt;
	char buf[PATH_MAX], *heap = NULL;
	const char *path = buf;
	int fd;

	/* The path from the node's parents: kept nowhere, an open is rare next
	 * to the reads it serves (fd cache). */
	if (tree_path_into(f, buf, sizeof(buf)) < 0 && !(path = heap = tree_path(f)))
		return -ENOMEM;
	/* O_NONBLOCK: a file swapped for a fifo must not block the open (the
	 * stat below refuses anything but a regular file). */
	fd = srcfile_open_beneath(sf->root_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	free(heap);
	if (fd < 0)
		return fd;
	/* Same device and inode is not enough: a file deleted and written
	 * again often gets the old inode number back; its birth time differs. */
	if (srcfile_stat(fd, "", AT_EMPTY_PATH, st, &bt) < 0 || !S_ISREG(st->st_mode) ||
	    st->st_dev != f->st.st_dev || st->st_ino != f->st.st_ino ||
	    bt.tv_sec != f->st.st_btime.tv_sec || bt.tv_nsec != f->st.st_btime.tv_nsec) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* True for the first caller only: a file's change is logged once. */
static bool first_warning(struct tree_node *f)
{
	return !__atomic_exchange_n(&f->warned, 1, __ATOMIC_RELAXED);
}

static void warn_once(struct tree_node *f, const char *what)
{
	char *path;

	if (!first_warning(f))
		return;
	path = tree_path(f);
	log_warn("source file %s %s; serving zeros where its bytes are missing "
		 "(remount, or reopen disk.img, to pick up the change)", path ? path : f->name,
		 what);
	free(path);
}

/* Get an fd for id with a reference held, or -errno. */
static int fd_get(struct srcfiles *sf, uint32_t id, struct fdslot **out)
{
	struct fdshard *c = shard_of(sf, id);
	struct tree_node *f = sf->v[id];
	struct fdslot *victim = NULL;
	struct stat st;
	int fd;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < FDCACHE_SLOTS; i++) {
		struct fdslot *s = &c->slot[i];

		if (s->fd >= 0 && s->id == id) {
			s->refs++;
			s->used = ++c->clock;
			pthread_mutex_unlock(&c->lock);
			*out = s;
			return s->fd;
		}
	}
	pthread_mutex_unlock(&c->lock);

	/* Open outside the lock: opening may be slow (network filesystems). */
	fd = srcfiles_open(sf, id, &st);
	if (fd < 0) {
		warn_once(f, fd == -ENOENT ? "has vanished" :
			  fd == -ELOOP || fd == -EXDEV ? "was replaced by a symlink" :
			  fd == -ESTALE ? "was replaced by another file" : "cannot be opened");
		return fd;
	}
	if (st.st_size != f->st.st_size || st.st_mtim.tv_sec != f->st.st_mtim.tv_sec ||
	    (uint32_t)st.st_mtim.tv_nsec != f->st.st_mtim.tv_nsec) {
		if (first_warning(f)) {
			char *path = tree_path(f);

			log_warn("source file %s changed since the image was built: serving "
				 "its current bytes, clipped or zero-padded to %" PRId64 " bytes "
				 "(close disk.img everywhere and reopen it to serve the new tree)",
				 path ? path : f->name, f->st.st_size);
			free(path);
		}
	}

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < FDCACHE_SLOTS; i++) {
		struct fdslot *s = &c->slot[i];

		if (s->refs)
			continue;
		if (s->fd < 0) {
			victim = s;
			break;
		}
		if (!victim || s->used < victim->used)
			victim = s;
	}
	if (!victim) {
		/* Every slot busy: serve this read uncached. */
		pthread_mutex_unlock(&c->lock);
		*out = NULL;
		return fd;
	}
	if (victim->fd >= 0)
		close(victim->fd);
	victim->fd = fd;
	victim->id = id;
	victim->refs = 1;
	victim->used = ++c->clock;
	pthread_mutex_unlock(&c->lock);
	*out = victim;
	return fd;
}

static void fd_put(struct srcfiles *sf, struct fdslot *s, int fd)
{
	if (!s) {
		close(fd);
		return;
	}
	struct fdshard *c = shard_of(sf, s->id);

	pthread_mutex_lock(&c->lock);
	s->refs--;
	pthread_mutex_unlock(&c->lock);
}

/* How many of the len bytes at off are the file's: bytes past the recorded
 * size are never read (the image promised that size, and a grown file must
 * not spill into the next region). */
static size_t served_len(const struct tree_node *f, uint64_t off, size_t len)
{
	uint64_t size = (uint64_t)f->st.st_size;

	return off >= size ? 0 : size - off < len ? (size_t)(size - off) : len;
}

/* One step of moving file bytes: n bytes of fd at off, to position at of
 * the destination (a buffer, or a pipe that takes them in order). */
typedef ssize_t (*move_step)(void *dst, int fd, size_t at, size_t n, uint64_t off);

/* Move want bytes of f at off out of its fd, step by step, until done or
 * the file's current end (logged once: it shrank). *done counts the bytes
 * moved. 0, or -errno of a failed step (for the caller to report). */
static int move_bytes(struct srcfiles *sf, uint32_t id, size_t want, uint64_t off,
		      move_step step, void *dst, size_t *done)
{
	struct tree_node *f = sf->v[id];
	struct fdslot *slot;
	int fd, ret = 0;

	*done = 0;
	if (want == 0)
		return 0;
	fd = fd_get(sf, id, &slot);
	if (fd < 0)
		return 0;       /* logged once; zeros are served */
	while (*done < want) {
		ssize_t n = step(dst, fd, *done, want - *done, off + *done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0) {
			warn_once(f, "has shrunk");
			break;
		}
		*done += (size_t)n;
	}
	fd_put(sf, slot, fd);
	return ret;
}

static ssize_t pread_step(void *dst, int fd, size_t at, size_t n, uint64_t off)
{
	return pread(fd, (uint8_t *)dst + at, n, (off_t)off);
}

static void log_read_error(const struct srcfiles *sf, uint32_t id, uint64_t off, int err)
{
	char *path = tree_path(sf->v[id]);

	log_error("reading %s at %" PRIu64 ": %s", path ? path : sf->v[id]->name, off,
		  strerror(-err));
	free(path);
}

int srcfiles_pread(struct srcfiles *sf, uint32_t id, void *buf, size_t len,
		   uint64_t off)
{
	size_t done = 0;
	int ret;

	if (id >= sf->n)
		return -EINVAL;
	/* No POSIX_FADV_WILLNEED here: measured on the bench's Debian tree it
	 * made warm reads 10-25 % slower (a syscall per read) and cold reads no
	 * faster (the kernel's own readahead per source fd already runs, and a
	 * prefetch thread advising the next 32 MiB of files did not help
	 * either: the cold read costs what reading the tree cold costs). */
	ret = move_bytes(sf, id, served_len(sf->v[id], off, len), off, pread_step, buf, &done);
	if (ret < 0)
		log_read_error(sf, id, off + done, ret);
	memset((uint8_t *)buf + done, 0, len - done);
	return ret;
}

/* What the padding of srcfiles_splice() is spliced from: never written;
 * page-aligned, so that it takes a pipe slot per page. */
static _Alignas(4096) const uint8_t zeros[64 * 1024];

static ssize_t splice_step(void *dst, int fd, size_t at, size_t n, uint64_t off)
{
	loff_t o = (loff_t)off;

	(void)at;               /* a pipe takes the bytes in order */
	return splice(fd, &o, *(const int *)dst, NULL, n, SPLICE_F_MOVE);
}

int srcfiles_splice(struct srcfiles *sf, uint32_t id, uint64_t off, size_t len,
		    int pipe_w)
{
	size_t done = 0;
	int ret;

	if (id >= sf->n)
		return -EINVAL;
	ret = move_bytes(sf, id, served_len(sf->v[id], off, len), off, splice_step,
			 &pipe_w, &done);
	/* A filesystem without splice, or a pipe out of slots (unaligned
	 * pages take one more): the caller copies. */
	if (ret == -EINVAL && done == 0)
		ret = -EOPNOTSUPP;
	else if (ret < 0 && ret != -EAGAIN)
		log_read_error(sf, id, off + done, ret);
	/* The reply must be exactly len bytes: a short one would tell the
	 * kernel that disk.img ends there. */
	while (!ret && done < len) {
		struct iovec v = {
			(void *)zeros, len - done < sizeof(zeros) ? len - done : sizeof(zeros)
		};
		ssize_t n = vmsplice(pipe_w, &v, 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ret = n < 0 && errno != EAGAIN ? -errno : -EAGAIN;
		else
			done += (size_t)n;
	}
	return ret;
}
