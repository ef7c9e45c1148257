/* memfuse.c - the bench's reference FUSE server: MNT/disk.img of SIZE bytes
 * served from memory, with nothing else to do.
 *
 * It is the ceiling any FUSE design reaches on this machine, so it is built
 * the way rpifs is: low-level API, a directory holding one file, the
 * multithreaded loop with clone_fd (16 threads, 8 idle), max_background 64,
 * keep_cache on open, default_permissions, and it daemonises once mounted
 * (-f keeps it in the foreground). The bytes are a fixed pattern: every read
 * is answered from one preallocated buffer, without copying it first.
 *
 *   cc -O2 -o memfuse memfuse.c $(pkg-config --cflags --libs fuse3)
 *   memfuse [-f] SIZE MNT
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INO_DISK 2
#define WINDOW (8u << 20)       /* a read is at most this long */

static uint64_t disk_size;
static char *pattern;           /* 2 * WINDOW bytes, periodic with period WINDOW */

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)disk_size;
		st->st_blksize = 4096;
		st->st_blocks = (blkcnt_t)(disk_size / 512);
	}
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, "disk.img")) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = INO_DISK;
	e.attr_timeout = 1.0;
	e.entry_timeout = 1.0;
	fill_attr(INO_DISK, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	if (ino != FUSE_ROOT_ID && ino != INO_DISK) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static const struct { const char *name; fuse_ino_t ino; mode_t mode; } ents[] = {
		{ ".", FUSE_ROOT_ID, S_IFDIR }, { "..", FUSE_ROOT_ID, S_IFDIR },
		{ "disk.img", INO_DISK, S_IFREG },
	};
	char buf[512];
	size_t used = 0;

	for (off_t i = off; i < 3; i++) {
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
	if (ino != INO_DISK) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	uint64_t o = (uint64_t)off;

	if (o >= disk_size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > disk_size - o)
		size = (size_t)(disk_size - o);
	if (size > WINDOW)
		size = WINDOW;
	fuse_reply_buf(req, pattern + o % WINDOW, size);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *cfg;
	struct fuse_session *se;
	int foreground = 0, ret;
	char *end;

	if (argc > 1 && !strcmp(argv[1], "-f")) {
		foreground = 1;
		argv++;
		argc--;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: memfuse [-f] SIZE MNT\n");
		return 2;
	}
	disk_size = strtoull(argv[1], &end, 0);
	if (*end || !disk_size) {
		fprintf(stderr, "memfuse: bad size %s\n", argv[1]);
		return 2;
	}
	pattern = malloc(2 * (size_t)WINDOW);
	if (!pattern)
		return 1;
	for (size_t i = 0; i < 2 * (size_t)WINDOW; i++)
		pattern[i] = (char)(((i % WINDOW) * 2654435761u) >> 13);

	if (fuse_opt_add_arg(&args, "memfuse") ||
	    fuse_opt_add_arg(&args, "-ofsname=memfuse,subtype=memfuse,default_permissions"))
		return 1;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) || fuse_session_mount(se, argv[2]))
		return 1;
	if (fuse_daemonize(foreground))
		return 1;
	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 8);
	ret = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return ret < 0 ? 1 : 0;
}
