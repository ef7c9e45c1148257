/* fuse_ops.c - the FUSE server (libfuse low-level API).
 *
 * The mount is a directory (inode 1) holding one regular file, disk.img
 * (inode 2), whose bytes are the region map of struct image.
 *
 * Thread model: the image (region map, tree, source file table) is built
 * before fuse_serve() and never modified afterwards; the worker threads of
 * fuse_session_loop_mt() read it without locks. The only shared mutable
 * state is the source-file fd cache inside srcfiles, which locks itself.
 * Reads never return short except at the end of the disk (a short read makes
 * the kernel shrink the file).
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <signal.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fuse_ops.h"
#include "log.h"

#define INO_ROOT 1
#define INO_DISK 2
#define DISK_NAME "disk.img"

struct server {
	struct image *img;
	uid_t uid;
	gid_t gid;
	struct timespec time;   /* shown as the file times: the tree's newest mtime */
};

static struct server *srv(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill_attr(const struct server *s, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_atim = st->st_mtim = st->st_ctim = s->time;
	if (ino == INO_ROOT) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)s->img->size;
		st->st_blksize = 4096;
		st->st_blocks = (blkcnt_t)(s->img->size / 512);
	}
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* qemu with cache=none issues many asynchronous direct reads. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
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
	fill_attr(srv(req), INO_DISK, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	if (ino != INO_ROOT && ino != INO_DISK) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(srv(req), ino, &st);
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
	if (ino == INO_ROOT) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (ino != INO_DISK) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* The image does not change while mounted: let the page cache keep it,
	 * except for O_DIRECT opens, which must reach us. */
	fi->keep_cache = 1;
	if (fi->flags & O_DIRECT)
		fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct image *img = srv(req)->img;
	uint64_t o = (uint64_t)off;
	void *buf;
	int ret;

	if (o >= img->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > img->size - o)
		size = (size_t)(img->size - o);
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = image_read(img, buf, size, o);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, size);
	free(buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = srv(req)->img->size / 4096;
	sv.f_files = 1;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.statfs = op_statfs,
};

int fuse_serve(struct image *img, const struct serve_opts *o)
{
	struct server s = {
		.img = img,
		.uid = getuid(),
		.gid = getgid(),
		.time = { .tv_sec = img->tree.newest_mtime },
	};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *cfg = NULL;
	char fsname[256];
	int ret = 1;

	snprintf(fsname, sizeof(fsname), "-ofsname=rpifs,subtype=rpifs,default_permissions");
	if (fuse_opt_add_arg(&args, "rpifs") || fuse_opt_add_arg(&args, fsname) ||
	    (o->debug && fuse_opt_add_arg(&args, "-odebug")))
		goto out;
	if (o->fuse_opts) {
		char *opt;

		if (asprintf(&opt, "-o%s", o->fuse_opts) < 0)
			goto out;
		ret = fuse_opt_add_arg(&args, opt);
		free(opt);
		ret = ret ? 1 : 0;
		if (ret)
			goto out;
		ret = 1;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), &s);
	if (!se) {
		log_error("cannot start the FUSE session (check the -o options)");
		goto out;
	}
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
	log_info("serving %s/%s (%llu MiB) from %s", o->mnt, DISK_NAME,
		 (unsigned long long)(img->size >> 20), img->tree.root_path);
	if (fuse_daemonize(o->foreground) != 0)
		goto out_unmount;
	if (!o->foreground)
		log_use_syslog(true);

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
	return ret;
}
