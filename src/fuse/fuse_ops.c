/* fuse_ops.c - the FUSE server (libfuse low-level API).
 *
 * The mount is a directory (inode 1) holding one regular file, disk.img
 * (inode 2), whose bytes are a *generation*: an image (region map, tree,
 * source file table) plus the overlay holding what was written to it.
 *
 * Generations. The tree is snapshotted per generation. An open() that finds
 * no open handle asks whether the tree changed (its inotify watch, else a
 * stat of every entry); if it did, the tree is rescanned and a new image
 * built and made current, and the kernel's cached pages of disk.img whose
 * bytes differ are invalidated before the open is answered. Each handle
 * keeps the generation it opened (fi->fh) until release, so a reader never
 * sees a mix of two layouts. The in-memory overlay belongs to its
 * generation: it moves to the next one when the layout is the same, else
 * it goes (a notice says so when it held blocks); a persistent overlay
 * (--overlay) pins the generation: tree changes of the layout are
 * reported, not served, until the overlay is reset.
 *
 * Thread model: an image is immutable once built; worker threads of
 * fuse_session_loop_mt() read it without locks through their handle's
 * generation. srv->lock guards the current-generation pointer, the
 * reference counts and the open-handle count (open/release/getattr only);
 * a refresh (rescan, build, cache invalidation) runs under it, so no other
 * open is answered meanwhile.
 * The overlay and the source-file fd cache lock themselves. Reads never
 * return short except at the end of the disk (a short read makes the kernel
 * shrink the file). Each worker thread has its own pipe for spliced read
 * replies (a thread-specific key closes it when libfuse ends the thread).
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include "daemon.h"
#include "fuse_ops.h"
#include "log.h"
#include "overlay.h"
#include "tree_watch.h"

#define INO_ROOT 1
#define INO_DISK 2
#define DISK_NAME "disk.img"

struct generation {
	struct image img;
	struct overlay *ov;
	unsigned refs;          /* open handles, +1 while current */
	unsigned id;
	struct generation *next; /* server's list of live generations */
};

struct server {
	const struct serve_opts *o;
	struct fuse_session *se;
	uid_t uid;
	gid_t gid;
	pthread_mutex_t lock;
	struct generation *cur;
	struct generation *live;  /* every generation not yet freed */
	unsigned open_handles;
	bool pinned_notice;
};

static struct server *srv(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void gen_free(struct server *s, struct generation *g)
{
	struct generation **p;

	for (p = &s->live; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			break;
		}
	overlay_close(g->ov);
	image_free(&g->img);
	free(g);
}

/* Called with s->lock held (or, at teardown, with no worker left). */
static void gen_put(struct server *s, struct generation *g)
{
	if (--g->refs)
		return;
	gen_free(s, g);
}

/* A new generation serving img (taken over). Its overlay is ov when given
 * (taken over: blocks written for this very layout), else a new one. */
static int gen_new(struct server *s, struct image *img, unsigned id, struct overlay *ov,
		   struct generation **out)
{
	struct generation *g = calloc(1, sizeof(*g));
	int ret;

	if (!g) {
		image_free(img);
		overlay_close(ov);
		return -ENOMEM;
	}
	g->img = *img;
	memset(img, 0, sizeof(*img));
	g->refs = 1;
	g->id = id;
	g->ov = ov;
	ret = ov ? 0 : overlay_open(&g->ov, s->o->overlay, g->img.size, g->img.layout_id,
				    s->o->overlay_reset && id == 1);
	if (ret < 0) {
		image_free(&g->img);
		free(g);
		return ret;
	}
	g->next = s->live;
	s->live = g;
	*out = g;
	return 0;
}

static void pinned(struct server *s)
{
	if (!s->pinned_notice)
		log_warn("%s changed, but the overlay %s pins the image it was written "
			 "for: remount with --overlay-reset to serve the new tree",
			 s->o->image->rootfs, s->o->overlay);
	s->pinned_notice = true;
}

/* Drop the kernel's cached pages of one byte range of disk.img. */
struct inval {
	struct server *s;
	unsigned ranges;
	int err;
};

static int inval_range(void *ctx, uint64_t off, uint64_t len)
{
	struct inval *iv = ctx;
	int ret = fuse_lowlevel_notify_inval_inode(iv->s->se, INO_DISK, (off_t)off, (off_t)len);

	iv->ranges++;
	/* -ENOENT: the kernel holds nothing of the inode. */
	if (ret < 0 && ret != -ENOENT) {
		iv->err = ret;
		return 1;
	}
	return 0;
}

/* The kernel's cache of disk.img held old's bytes (its overlay's too, unless
 * that moves on): drop what differs in new, and nothing else, so that a
 * reader who had read most of the image (a booted qemu, a dd) keeps it.
 * Called with no handle open, so no read is in flight, and under the lock,
 * so no open is answered before the cache is right. Returns false when the
 * open must drop the whole cache instead. */
static bool invalidate(struct server *s, const struct generation *old,
		       const struct generation *new)
{
	struct inval iv = { s, 0, 0 };
	double t0 = log_ms();

	/* An overlay that moved to new (old->ov is NULL then) keeps its bytes;
	 * one dropped with old takes its written blocks with it. */
	if (old->ov && overlay_blocks(old->ov))
		return false;
	if (image_diff(&old->img, &new->img, inval_range, &iv) || iv.err)
		return false;
	log_debug("generation %u: %u ranges of cached pages dropped in %.1f ms", new->id,
		  iv.ranges, log_ms() - t0);
	return true;
}

/* Called with srv->lock held and no handle open. Returns true when a new
 * generation became current; *cache_ok then says whether the kernel's cache
 * already lost what changed (else the open drops it all).
 *
 * Once the change check has seen anything move, a new image is built even
 * when the new tree's digest equals the old one: the digest covers names
 * and metadata, not bytes, and a file rewritten with the same size and
 * mtime (or replaced by such a file, its directory's mtime restored, as tar
 * does) must be served with its new bytes, not from the old generation's
 * page cache or a deleted file's fd. When the layout is the same, the
 * overlay's blocks were written for it and move to the new generation. */
static bool refresh(struct server *s, bool *cache_ok)
{
	struct generation *g = NULL;
	struct overlay *keep = NULL;
	struct image img;
	struct tree t;
	bool same_layout;
	int ret;

	/* Most opens find nothing changed: the watch knows that at once (no
	 * event queued); without one, or after an event, every entry is
	 * stat'ed. */
	struct tree *cur = &s->cur->img.tree;
	double t0 = log_ms();

	if (tree_watch_quiet(cur->watch))
		return false;
	if (tree_unchanged(cur)) {
		tree_watch_clean(cur->watch);
		log_debug("open: tree unchanged (checked in %.1f ms)", log_ms() - t0);
		return false;
	}
	ret = image_scan(&t, s->o->image);
	if (ret < 0) {
		log_error("rescanning %s failed: still serving generation %u",
			  s->o->image->rootfs, s->cur->id);
		return false;
	}
	/* A new digest means a new layout: no need to build it to know that a
	 * persistent overlay pins the old one. */
	if (s->o->overlay && memcmp(&t.digest, &s->cur->img.tree.digest, sizeof(t.digest))) {
		tree_free(&t);
		pinned(s);
		return false;
	}
	ret = image_build_tree(&img, &t, s->o->image);
	if (ret < 0) {
		log_error("%s changed, but the new image cannot be built (above): still "
			  "serving generation %u", s->o->image->rootfs, s->cur->id);
		return false;
	}
	same_layout = !memcmp(img.layout_id, s->cur->img.layout_id, sizeof(img.layout_id));
	if (s->o->overlay && !same_layout) {
		image_free(&img);
		pinned(s);
		return false;
	}
	if (same_layout) {
		keep = s->cur->ov;
		s->cur->ov = NULL;
	}
	ret = gen_new(s, &img, s->cur->id + 1, keep, &g);
	if (ret < 0)
		return false;
	if (!keep && overlay_blocks(s->cur->ov))
		log_warn("%s changed: generation %u replaces %u; the %" PRIu64 " blocks "
			 "written to the old image are dropped (use --overlay FILE to keep "
			 "writes, which pins the image)", s->o->image->rootfs, g->id,
			 s->cur->id, overlay_blocks(s->cur->ov));
	else
		log_info("%s changed: serving generation %u", s->o->image->rootfs, g->id);
	*cache_ok = invalidate(s, s->cur, g);
	gen_put(s, s->cur);
	s->cur = g;
	return true;
}

static void fill_attr(const struct server *s, const struct generation *g,
		      fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_atim = st->st_mtim = st->st_ctim =
		(struct timespec){ .tv_sec = g->img.tree.newest_mtime };
	if (ino == INO_ROOT) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | (s->o->read_only ? 0444 : 0644);
		st->st_nlink = 1;
		st->st_size = (off_t)g->img.size;
		st->st_blksize = 4096;
		st->st_blocks = (blkcnt_t)(g->img.size / 512);
	}
}

static void cur_attr(struct server *s, fuse_ino_t ino, struct stat *st)
{
	pthread_mutex_lock(&s->lock);
	fill_attr(s, s->cur, ino, st);
	pthread_mutex_unlock(&s->lock);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* qemu with cache=none issues many asynchronous direct reads. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	/* The kernel keeps locks (qemu's OFD locks) locally: no lock handlers.
	 * The cache is invalidated by the server when a generation changes,
	 * range by range: the kernel must not drop all of it on its own when
	 * it sees the new generation's mtime. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* Read replies from a pipe (read_spliced); without it libfuse copies
	 * the pipe's bytes, still exact. */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != INO_ROOT || strcmp(name, DISK_NAME)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = INO_DISK;
	e.attr_timeout = 1.0;
	e.entry_timeout = 1.0;
	cur_attr(srv(req), INO_DISK, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	if (ino != INO_ROOT && ino != INO_DISK) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (fi && fi->fh && ino == INO_DISK)
		fill_attr(srv(req), (struct generation *)(uintptr_t)fi->fh, ino, &st);
	else
		cur_attr(srv(req), ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

/* Only a no-op size change is accepted (O_TRUNC of a disk makes no sense);
 * mode and time changes are ignored, as on a block device node. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct stat st;

	if (ino != INO_DISK && ino != INO_ROOT) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	cur_attr(srv(req), ino, &st);
	if ((to_set & FUSE_SET_ATTR_SIZE) && (ino != INO_DISK || attr->st_size != st.st_size)) {
		fuse_reply_err(req, srv(req)->o->read_only ? EROFS : EPERM);
		return;
	}
	fuse_reply_attr(req, &st, 1.0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static const struct { const char *name; fuse_ino_t ino; mode_t mode; } ents[] = {
		{ ".", INO_ROOT, S_IFDIR }, { "..", INO_ROOT, S_IFDIR },
		{ DISK_NAME, INO_DISK, S_IFREG },
	};
	char buf[512];
	size_t used = 0;

	if (ino != INO_ROOT) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (off_t i = off; i < (off_t)(sizeof(ents) / sizeof(ents[0])); i++) {
		struct stat st = { .st_ino = ents[i].ino, .st_mode = ents[i].mode };
		size_t n = fuse_add_direntry(req, buf + used, sizeof(buf) - used,
					     ents[i].name, &st, i + 1);

		if (used + n > size || used + n > sizeof(buf))
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct server *s = srv(req);
	struct generation *g;
	bool changed = false, cache_ok = false;

	if (ino == INO_ROOT) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (ino != INO_DISK) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY && s->o->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (s->open_handles == 0)
		changed = refresh(s, &cache_ok);
	g = s->cur;
	g->refs++;
	s->open_handles++;
	pthread_mutex_unlock(&s->lock);

	fi->fh = (uint64_t)(uintptr_t)g;
	/* Keep the page cache across opens of one generation; a new generation
	 * must not see the old one's pages: refresh() dropped those that
	 * differ, or the open drops them all. O_DIRECT opens must reach us. */
	fi->keep_cache = !changed || cache_ok;
	if (fi->flags & O_DIRECT)
		fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct server *s = srv(req);
	struct generation *g = (struct generation *)(uintptr_t)fi->fh;

	if (g) {
		overlay_sync(g->ov);
		pthread_mutex_lock(&s->lock);
		s->open_handles--;
		gen_put(s, g);
		pthread_mutex_unlock(&s->lock);
	}
	fuse_reply_err(req, 0);
}

/* ---- spliced reads ----------------------------------------------------
 *
 * A read that lies inside one source file (kernel, firmware, libraries: most
 * of a tree's bytes) is answered without copying the bytes in user space:
 * they are spliced from the file's page cache into this thread's pipe, and
 * libfuse splices the pipe into /dev/fuse, where the kernel copies them once
 * into disk.img's page cache. The pipe, not the file, is handed to libfuse so
 * that the reply is always exactly the length asked for: srcfiles_splice()
 * pads a file that shrank with zeros, where libfuse would reply short. Reads
 * of several regions, and of a generation with written blocks, are copied. */

#define SPLICE_PIPE_SIZE (1u << 20)     /* the largest read, and pipe-max-size */

struct read_pipe {
	int fd[2];
	size_t room;            /* the pipe's capacity */
};

static pthread_key_t pipe_key;
static bool splice_unsupported;         /* atomic: a source refused splice */
static pthread_once_t pipe_once = PTHREAD_ONCE_INIT;
static bool pipe_key_ok;

static void read_pipe_free(void *arg)
{
	struct read_pipe *p = arg;

	if (p) {
		close(p->fd[0]);
		close(p->fd[1]);
		free(p);
	}
}

static void pipe_key_init(void)
{
	pipe_key_ok = pthread_key_create(&pipe_key, read_pipe_free) == 0;
}

/* This thread's empty pipe with room for len bytes, or NULL (copy then). */
static struct read_pipe *read_pipe_get(size_t len)
{
	struct read_pipe *p;
	int room;

	pthread_once(&pipe_once, pipe_key_init);
	if (!pipe_key_ok)
		return NULL;
	p = pthread_getspecific(pipe_key);
	if (!p) {
		p = malloc(sizeof(*p));
		if (!p)
			return NULL;
		/* The write end never blocks: a splice that does not fit (a
		 * page-unaligned range takes a slot more than its size says)
		 * fails with EAGAIN and the read is copied instead. */
		if (pipe2(p->fd, O_CLOEXEC) < 0) {
			free(p);
			return NULL;
		}
		if (fcntl(p->fd[1], F_SETFL, O_NONBLOCK) < 0) {
			read_pipe_free(p);
			return NULL;
		}
		/* An unprivileged user may be held to less (pipe-max-size,
		 * pipe-user-pages-soft): the pipe keeps what it got. */
		room = fcntl(p->fd[1], F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
		if (room < 0)
			room = fcntl(p->fd[1], F_GETPIPE_SZ);
		p->room = room > 0 ? (size_t)room : 0;
		if (pthread_setspecific(pipe_key, p) != 0) {
			read_pipe_free(p);
			return NULL;
		}
	}
	/* A slot holds up to a page: an unaligned range needs one more. */
	return len + 4096 <= p->room ? p : NULL;
}

/* After an error the pipe's content is unknown: a new one next time. */
static void read_pipe_drop(struct read_pipe *p)
{
	read_pipe_free(p);
	pthread_setspecific(pipe_key, NULL);
}

/* Answer the read by splicing if it lies in one source file: 1 when
 * answered (or the reply failed: the request is gone either way), 0 to copy
 * instead, -errno to answer with that error. */
static int read_spliced(fuse_req_t req, struct generation *g, uint64_t off, size_t size)
{
	struct read_pipe *p;
	uint32_t id;
	uint64_t foff;
	int ret;

	if (__atomic_load_n(&splice_unsupported, __ATOMIC_RELAXED) ||
	    overlay_blocks(g->ov) != 0 ||
	    !image_file_span(&g->img, off, size, &id, &foff) || !(p = read_pipe_get(size)))
		return 0;
	ret = srcfiles_splice(&g->img.tree.files, id, foff, size, p->fd[1]);
	if (ret == -EOPNOTSUPP) {
		/* The tree's filesystem cannot splice: every read is copied
		 * from now on, instead of each one trying first. The pipe is
		 * still empty. */
		__atomic_store_n(&splice_unsupported, true, __ATOMIC_RELAXED);
		return 0;
	}
	if (ret < 0) {
		read_pipe_drop(p);
		return ret == -EAGAIN ? 0 : ret;
	}
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	bv.buf[0].flags = FUSE_BUF_IS_FD;
	bv.buf[0].fd = p->fd[0];
	/* On failure libfuse may have left bytes in the pipe. */
	if (fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE) != 0)
		read_pipe_drop(p);
	return 1;
}

static int base_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	return image_read(ctx, buf, len, off);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct generation *g = (struct generation *)(uintptr_t)fi->fh;
	uint64_t o = (uint64_t)off;
	void *buf;
	int ret;

	if (o >= g->img.size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > g->img.size - o)
		size = (size_t)(g->img.size - o);
	ret = read_spliced(req, g, o, size);
	if (ret != 0) {
		if (ret < 0)
			fuse_reply_err(req, -ret);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = image_read(&g->img, buf, size, o);
	if (ret == 0)
		ret = overlay_read(g->ov, buf, size, o);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, size);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct generation *g = (struct generation *)(uintptr_t)fi->fh;
	uint64_t o = (uint64_t)off;
	int ret;

	if (o >= g->img.size || size > g->img.size - o) {
		fuse_reply_err(req, ENOSPC);    /* a disk does not grow */
		return;
	}
	ret = overlay_write(g->ov, buf, size, o, base_read, &g->img);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct generation *g = (struct generation *)(uintptr_t)fi->fh;

	fuse_reply_err(req, g ? -overlay_sync(g->ov) : 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	op_flush(req, ino, fi);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	struct stat st;

	cur_attr(srv(req), INO_DISK, &st);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = (fsblkcnt_t)st.st_size / 4096;
	sv.f_files = 1;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readdir = op_readdir,
	.open = op_open,
	.release = op_release,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.statfs = op_statfs,
};

int fuse_serve(struct image *img, const struct serve_opts *o)
{
	struct server s = {
		.o = o,
		.uid = getuid(),
		.gid = getgid(),
	};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *cfg = NULL;
	uint64_t size = img->size;
	char *opt = NULL;
	int ret = 1;

	pthread_mutex_init(&s.lock, NULL);
	if (gen_new(&s, img, 1, NULL, &s.cur) < 0)
		goto out;
	if (fuse_opt_add_arg(&args, "rpifs") ||
	    fuse_opt_add_arg(&args, "-ofsname=rpifs,subtype=rpifs,default_permissions") ||
	    (o->debug && fuse_opt_add_arg(&args, "-odebug")))
		goto out;
	if (o->fuse_opts && (asprintf(&opt, "-o%s", o->fuse_opts) < 0 ||
			     fuse_opt_add_arg(&args, opt)))
		goto out;
	se = fuse_session_new(&args, &ops, sizeof(ops), &s);
	if (!se) {
		log_error("cannot start the FUSE session (check the -o options)");
		goto out;
	}
	s.se = se;
	/* A shell starts background jobs with SIGINT ignored, and libfuse only
	 * replaces default dispositions: make INT and TERM always unmount. HUP
	 * keeps whatever nohup chose. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, o->mnt) != 0) {
		log_error("%s: mounting failed (see the message above); as an ordinary "
			  "user this needs fusermount3 (package fuse3) and, for -o "
			  "allow_other, user_allow_other in /etc/fuse.conf", o->mnt);
		goto out_signals;
	}
	log_debug("%.1f ms: mounted", log_ms());
	log_info("serving %s/%s (%" PRIu64 " MiB%s) from %s", o->mnt, DISK_NAME, size >> 20,
		 o->read_only ? ", read-only" : o->overlay ? ", writes to the overlay" :
		 ", writes kept in memory", s.cur->img.tree.root_path);
	/* main() forked early (daemon.c); detach now that the mount is up.
	 * The unmount at exit uses the absolute mount point. */
	if (o->foreground) {
		if (chdir("/") < 0)
			log_warn("cannot change to /: %s", strerror(errno));
	} else {
		daemon_ready();
		log_use_syslog(true);
	}

	if (o->single_thread) {
		ret = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		if (!cfg)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(cfg, 1);
		fuse_loop_cfg_set_max_threads(cfg, o->max_threads ? o->max_threads : 16);
		fuse_loop_cfg_set_idle_threads(cfg, 8);
		ret = fuse_session_loop_mt(se, cfg);
	}
	/* A signal ends the loop with its number: that is a clean unmount. */
	ret = ret < 0 ? 1 : 0;
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	free(opt);
	/* gen_new() consumed img either way. The session is gone, so no
	 * release will come for handles still open at unmount (a reader that
	 * closed just before it, whose RELEASE the kernel had not sent yet):
	 * free every generation, referenced or not. */
	while (s.live)
		gen_free(&s, s.live);
	/* The workers' pipes went with their threads; this thread's (-s) goes
	 * here. */
	if (pipe_key_ok) {
		read_pipe_free(pthread_getspecific(pipe_key));
		pthread_setspecific(pipe_key, NULL);
	}
	pthread_mutex_destroy(&s.lock);
	return ret;
}
