/* fuse_ops.c - the FUSE server (libfuse low-level API): a thin adapter over
 * the engine (rpifs.h).
 *
 * The mount is a directory (inode 1) holding two regular files: disk.img
 * (inode 2), whose bytes are an engine generation, and disk.img.bmap
 * (inode 3, read-only), that generation's bmap (rpifs_gen_bmap: the text
 * is made at the first read of a handle; its size is known before).
 * SEEK_DATA and SEEK_HOLE on disk.img answer from the engine's hole map
 * (rpifs_gen_extent). An open of either file takes a generation
 * (rpifs_gen_open: the engine refreshes first when no handle is open) and
 * keeps it in fi->fh until release, so a reader never sees a mix of two
 * layouts. The engine tells which byte ranges of the kernel's page cache of
 * disk.img changed in a new generation: they are invalidated
 * (notify_inval_inode) before the open is answered, or the open drops the
 * whole cache (keep_cache = 0).
 *
 * Thread model: worker threads of fuse_session_loop_mt() read and write
 * through their handle's generation without locks (rpifs.h); open, release
 * and the attributes go through the engine's lock. Reads never return short
 * except at the end of the disk (a short read makes the kernel shrink the
 * file). Each worker thread has its own pipe for spliced read replies (a
 * thread-specific key closes it when libfuse ends the thread). The first
 * generation's ext4 half is built by an engine thread after the mount
 * (rpifs_opts.defer_ext4, set by main.c): a worker reading partition 2,
 * the bmap or the hole map meanwhile waits in the engine; the partition
 * table, FAT32 and the attributes are answered at once.
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
#include "rpifs.h"

#define INO_ROOT 1
#define INO_DISK 2
#define INO_BMAP 3
#define DISK_NAME "disk.img"
#define BMAP_NAME "disk.img.bmap"

struct server {
	const struct serve_opts *o;
	struct rpifs *r;
	struct fuse_session *se;        /* set before the session's loop runs */
	uid_t uid;
	gid_t gid;
	/* Open disk.img.bmap handles: the kernel sends no RELEASE for a file
	 * still open at unmount, so whatever is left here is freed when the
	 * session ends (their generations go with rpifs_free()). */
	pthread_mutex_t bmaps_lock;
	struct bmap_handle *bmaps;
};

static struct server *srv(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct rpifs_gen *handle_gen(const struct fuse_file_info *fi)
{
	return (struct rpifs_gen *)(uintptr_t)fi->fh;
}

/* An open disk.img.bmap: its generation, and the text once read. */
struct bmap_handle {
	struct rpifs_gen *g;
	pthread_mutex_t lock;
	char *text;             /* lock: NULL until the first read */
	size_t len;
	struct bmap_handle *prev, *next;    /* server's bmaps_lock */
};

static struct bmap_handle *handle_bmap(const struct fuse_file_info *fi)
{
	return (struct bmap_handle *)(uintptr_t)fi->fh;
}

/* The engine's invalidation callback: drop the kernel's cached pages of one
 * byte range of disk.img. */
static int inval_range(void *ctx, uint64_t off, uint64_t len)
{
	struct server *s = ctx;
	int ret = fuse_lowlevel_notify_inval_inode(s->se, INO_DISK, (off_t)off, (off_t)len);

	/* -ENOENT: the kernel holds nothing of the inode. */
	return ret == -ENOENT ? 0 : ret;
}

static void fill_attr(const struct server *s, struct rpifs_gen *g,
		      fuse_ino_t ino, struct stat *st)
{
	uint64_t size = rpifs_gen_size(g);
	size_t blen = 0;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_atim = st->st_mtim = st->st_ctim =
		(struct timespec){ .tv_sec = rpifs_gen_mtime(g) };
	if (ino == INO_ROOT) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (ino == INO_BMAP) {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		if (rpifs_gen_bmap_size(g, &blen) < 0)
			blen = 0;
		st->st_size = (off_t)blen;
		st->st_blksize = 4096;
		st->st_blocks = (blkcnt_t)((blen + 511) / 512);
	} else {
		st->st_mode = S_IFREG | (s->o->engine->read_only ? 0444 : 0644);
		st->st_nlink = 1;
		st->st_size = (off_t)size;
		st->st_blksize = 4096;
		/* The data bytes (holes.h), as a sparse file's: du shows them, and
		 * cp --sparse=auto then asks SEEK_DATA. */
		st->st_blocks = (blkcnt_t)((rpifs_gen_data_bytes(g) + 511) / 512);
	}
}

static void cur_attr(struct server *s, fuse_ino_t ino, struct stat *st)
{
	struct rpifs_gen *g;
	bool drop_cache;

	/* The bmap's size is that of the generation an open would get, with
	 * its written blocks: asked through an open (rpifs_gen_bmap_size needs
	 * one, like a read), which refreshes as an open of disk.img would. */
	if (ino == INO_BMAP) {
		g = rpifs_gen_open(s->r, &drop_cache);
		if (drop_cache)
			fuse_lowlevel_notify_inval_inode(s->se, INO_DISK, 0, 0);
		fill_attr(s, g, ino, st);
		rpifs_gen_close(s->r, g);
		return;
	}
	g = rpifs_gen_get(s->r);
	fill_attr(s, g, ino, st);
	rpifs_gen_put(s->r, g);
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
	fuse_ino_t ino = !strcmp(name, DISK_NAME) ? INO_DISK :
			 !strcmp(name, BMAP_NAME) ? INO_BMAP : 0;

	if (parent != INO_ROOT || !ino) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = ino;
	/* The bmap's size changes with a write to disk.img: never cached. */
	e.attr_timeout = ino == INO_BMAP ? 0.0 : 1.0;
	e.entry_timeout = 1.0;
	cur_attr(srv(req), ino, &e.attr);
	fuse_reply_entry(req, &e);
}

/* An open bmap's attributes: once read, the size of the text it reads
 * (a later write to disk.img changes the generation's bmap, not this). */
static void bmap_attr(struct server *s, struct bmap_handle *h, struct stat *st)
{
	fill_attr(s, h->g, INO_BMAP, st);
	pthread_mutex_lock(&h->lock);
	if (h->text) {
		st->st_size = (off_t)h->len;
		st->st_blocks = (blkcnt_t)((h->len + 511) / 512);
	}
	pthread_mutex_unlock(&h->lock);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	if (ino != INO_ROOT && ino != INO_DISK && ino != INO_BMAP) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (fi && fi->fh && ino == INO_DISK)
		fill_attr(srv(req), handle_gen(fi), ino, &st);
	else if (fi && fi->fh && ino == INO_BMAP)
		bmap_attr(srv(req), handle_bmap(fi), &st);
	else
		cur_attr(srv(req), ino, &st);
	fuse_reply_attr(req, &st, ino == INO_BMAP ? 0.0 : 1.0);
}

/* Only a no-op size change is accepted (O_TRUNC of a disk makes no sense);
 * mode and time changes are ignored, as on a block device node. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct stat st;

	if (ino != INO_DISK && ino != INO_ROOT && ino != INO_BMAP) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (ino == INO_BMAP && (to_set & FUSE_SET_ATTR_SIZE)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	cur_attr(srv(req), ino, &st);
	if ((to_set & FUSE_SET_ATTR_SIZE) && (ino != INO_DISK || attr->st_size != st.st_size)) {
		fuse_reply_err(req, srv(req)->o->engine->read_only ? EROFS : EPERM);
		return;
	}
	fuse_reply_attr(req, &st, 1.0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static const struct { const char *name; fuse_ino_t ino; mode_t mode; } ents[] = {
		{ ".", INO_ROOT, S_IFDIR }, { "..", INO_ROOT, S_IFDIR },
		{ DISK_NAME, INO_DISK, S_IFREG }, { BMAP_NAME, INO_BMAP, S_IFREG },
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

/* disk.img.bmap: the generation an open of disk.img would get (an open
 * like any other: it may refresh, and while it is open no other open
 * does), and its text at the first read. The text is small: no page
 * cache kept between opens (it follows writes to disk.img). */
static void open_bmap(fuse_req_t req, struct fuse_file_info *fi)
{
	struct server *s = srv(req);
	struct bmap_handle *h;
	bool drop_cache;

	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EACCES);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_init(&h->lock, NULL);
	h->g = rpifs_gen_open(s->r, &drop_cache);
	/* Pages of disk.img cached for the old generation must go as they
	 * would at an open of disk.img. */
	if (drop_cache)
		fuse_lowlevel_notify_inval_inode(s->se, INO_DISK, 0, 0);
	pthread_mutex_lock(&s->bmaps_lock);
	h->next = s->bmaps;
	if (s->bmaps)
		s->bmaps->prev = h;
	s->bmaps = h;
	pthread_mutex_unlock(&s->bmaps_lock);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static void bmap_free(struct bmap_handle *h)
{
	free(h->text);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static void release_bmap(struct server *s, struct bmap_handle *h)
{
	pthread_mutex_lock(&s->bmaps_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		s->bmaps = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&s->bmaps_lock);
	rpifs_gen_close(s->r, h->g);
	bmap_free(h);
}

static void read_bmap(fuse_req_t req, struct bmap_handle *h, size_t size, uint64_t off)
{
	int ret = 0;

	pthread_mutex_lock(&h->lock);
	if (!h->text)
		ret = rpifs_gen_bmap(h->g, &h->text, &h->len);
	pthread_mutex_unlock(&h->lock);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	/* The text does not change once read: no lock needed. */
	if (off >= h->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, h->text + off, size < h->len - off ? size : h->len - off);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct server *s = srv(req);
	struct rpifs_gen *g;
	bool drop_cache;

	if (ino == INO_ROOT) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (ino == INO_BMAP) {
		open_bmap(req, fi);
		return;
	}
	if (ino != INO_DISK) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY && s->o->engine->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	g = rpifs_gen_open(s->r, &drop_cache);
	fi->fh = (uint64_t)(uintptr_t)g;
	/* Keep the page cache across opens of one generation; a new generation
	 * must not see the old one's pages: the engine had those that differ
	 * dropped (inval_range), or the open drops them all. O_DIRECT opens
	 * must reach us. */
	fi->keep_cache = !drop_cache;
	if (fi->flags & O_DIRECT)
		fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rpifs_gen *g = handle_gen(fi);

	if (ino == INO_BMAP && fi->fh)
		release_bmap(srv(req), handle_bmap(fi));
	else if (g)
		rpifs_gen_close(srv(req)->r, g);
	fuse_reply_err(req, 0);
}

/* ---- spliced reads ----------------------------------------------------
 *
 * A read that lies inside one source file (kernel, firmware, libraries: most
 * of a tree's bytes) is answered without copying the bytes in user space:
 * they are spliced from the file's page cache into this thread's pipe, and
 * libfuse splices the pipe into /dev/fuse, where the kernel copies them once
 * into disk.img's page cache. The pipe, not the file, is handed to libfuse so
 * that the reply is always exactly the length asked for: rpifs_gen_splice()
 * pads a file that shrank with zeros, where libfuse would reply short. Reads
 * of several regions, and of a generation with written blocks, are copied. */

#define SPLICE_PIPE_SIZE (1u << 20)     /* the largest read, and pipe-max-size */

struct read_pipe {
	int fd[2];
	size_t room;            /* the pipe's capacity */
};

static pthread_key_t pipe_key;
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
static int read_spliced(fuse_req_t req, struct rpifs_gen *g, uint64_t off, size_t size)
{
	struct read_pipe *p;
	int ret;

	if (!rpifs_gen_spliceable(g, off, size) || !(p = read_pipe_get(size)))
		return 0;
	ret = rpifs_gen_splice(g, off, size, p->fd[1]);
	if (ret == -EOPNOTSUPP)
		return 0;       /* the pipe is still empty */
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

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct rpifs_gen *g;
	uint64_t o = (uint64_t)off, disk;
	void *buf;
	int ret;

	if (ino == INO_BMAP) {
		read_bmap(req, handle_bmap(fi), size, o);
		return;
	}
	g = handle_gen(fi);
	disk = rpifs_gen_size(g);
	if (o >= disk) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > disk - o)
		size = (size_t)(disk - o);
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
	ret = rpifs_gen_read(g, buf, size, o);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, size);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct rpifs_gen *g;
	uint64_t o = (uint64_t)off, disk;
	int ret;

	if (ino != INO_DISK) {
		fuse_reply_err(req, EBADF);
		return;
	}
	g = handle_gen(fi);
	disk = rpifs_gen_size(g);

	if (o >= disk || size > disk - o) {
		fuse_reply_err(req, ENOSPC);    /* a disk does not grow */
		return;
	}
	ret = rpifs_gen_write(g, buf, size, o);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rpifs_gen *g = ino == INO_DISK ? handle_gen(fi) : NULL;

	fuse_reply_err(req, g ? -rpifs_gen_sync(g) : 0);
}

/* SEEK_DATA / SEEK_HOLE (the kernel answers SEEK_SET, _CUR and _END
 * itself). disk.img: from the hole map, with the end of the disk as the
 * last hole; past the end ENXIO, as lseek(2) says. The bmap is all data. */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct rpifs_gen *g;
	uint64_t o = (uint64_t)off, size, len;
	bool data = true;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (ino == INO_BMAP) {
		struct stat st;

		bmap_attr(srv(req), handle_bmap(fi), &st);
		if (off < 0 || off >= st.st_size)
			fuse_reply_err(req, ENXIO);
		else
			fuse_reply_lseek(req, whence == SEEK_DATA ? off : st.st_size);
		return;
	}
	g = handle_gen(fi);
	size = rpifs_gen_size(g);
	if (off < 0 || o >= size) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	/* The runs are as long as they go: at most two steps. */
	while (o < size) {
		len = size - o;
		if (rpifs_gen_extent(g, o, &len, &data) < 0)
			break;
		if (data == (whence == SEEK_DATA))
			break;
		o += len;
	}
	if (whence == SEEK_DATA && o >= size)
		fuse_reply_err(req, ENXIO);
	else
		fuse_reply_lseek(req, (off_t)(o < size ? o : size));
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
	.lseek = op_lseek,
};

int fuse_serve(struct rpifs *r, const struct serve_opts *o)
{
	struct server s = {
		.o = o,
		.r = r,
		.uid = getuid(),
		.gid = getgid(),
		.bmaps_lock = PTHREAD_MUTEX_INITIALIZER,
	};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *cfg = NULL;
	struct rpifs_gen *g;
	uint64_t size;
	char *opt = NULL;
	int ret = 1;

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
	rpifs_set_invalidate(r, inval_range, &s);
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
	g = rpifs_gen_get(r);
	size = rpifs_gen_size(g);
	rpifs_gen_put(r, g);
	log_info("serving %s/%s (%" PRIu64 " MiB%s) from %s", o->mnt, DISK_NAME, size >> 20,
		 o->engine->read_only ? ", read-only" : o->engine->overlay ?
		 ", writes to the overlay" : ", writes kept in memory", o->engine->rootfs);
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
	/* The session is gone: no callback may use s any more. The caller's
	 * rpifs_free() frees the generations still referenced by handles
	 * open at unmount. */
	rpifs_set_invalidate(r, NULL, NULL);
	while (s.bmaps) {
		struct bmap_handle *h = s.bmaps;

		s.bmaps = h->next;
		bmap_free(h);
	}
	pthread_mutex_destroy(&s.bmaps_lock);
	/* The workers' pipes went with their threads; this thread's (-s) goes
	 * here. */
	if (pipe_key_ok) {
		read_pipe_free(pthread_getspecific(pipe_key));
		pthread_setspecific(pipe_key, NULL);
	}
	return ret;
}
