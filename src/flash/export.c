/* export.c - `rpifs export [OPTIONS] ROOTFS OUT`: the image as a file, for a
 * release, without a mount. OUT.img is written sparse (the holes skipped);
 * OUT.img.zst / .img.xz / .img.gz are compressed streams (libarchive's
 * write filters over its "raw" format); "-" writes the raw image to stdout.
 * A file gets OUT.bmap beside it (the engine's hole map, bmaptool's format).
 * A file is written as a temporary beside OUT and renamed when complete:
 * a failure never leaves a half file named OUT. Same tree, options and
 * SOURCE_DATE_EPOCH: the same bytes (gzip without its time stamp). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "flash.h"
#include "log.h"
#include "progress.h"
#include "readahead.h"
#include "source.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: rpifs export [OPTIONS] ROOTFS OUT\n"
"\n"
"Write the image of ROOTFS (the bytes a mount of it serves as disk.img) to OUT:\n"
"  NAME.img                 a sparse file (the image's holes are not written)\n"
"  NAME.img.zst, NAME.img.xz, NAME.img.gz   compressed\n"
"  -                        the raw image to stdout\n"
"A file gets OUT.bmap beside it (bmaptool copy OUT DEVICE writes only the data).\n"
"OUT appears complete or not at all. SOURCE_DATE_EPOCH gives the same bytes\n"
"on every run.\n"
"\n"
"  -q, --quiet              errors only, no progress\n"
"  -v, --verbose            more messages\n"
"  -h, --help               this help\n"
"\n"
"Layout (as for the mount):\n"
"%s", cli_layout_help);
}

enum kind { K_IMG, K_ZST, K_XZ, K_GZ, K_STDOUT };

static const struct {
	const char *suffix;
	enum kind kind;
} kinds[] = {
	{ ".img", K_IMG }, { ".img.zst", K_ZST }, { ".img.xz", K_XZ }, { ".img.gz", K_GZ },
};

/* The temporary files (image, bmap), removed on a fatal signal
 * (async-signal-safe). */
static char tmp_path[PATH_MAX], tmp_bmap[PATH_MAX];

static void on_signal(int sig)
{
	if (tmp_path[0])
		unlink(tmp_path);
	if (tmp_bmap[0])
		unlink(tmp_bmap);
	signal(sig, SIG_DFL);
	raise(sig);
}

struct export {
	struct source src;
	struct progress pr;
	int fd;                 /* K_IMG, K_STDOUT */
	struct archive *a;      /* compressed */
	const char *out;
	mode_t umask;
};

static int write_all(struct export *e, const void *buf, size_t len)
{
	size_t done = 0;

	if (e->a) {
		la_ssize_t n = archive_write_data(e->a, buf, len);

		if (n < 0 || (size_t)n != len) {
			log_error("OUT %s: compressing: %s", e->out, archive_error_string(e->a));
			return -EIO;
		}
		return 0;
	}
	while (done < len) {
		ssize_t n = write(e->fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("OUT %s: writing: %s", e->out, n < 0 ? strerror(errno) : "no room");
			return n < 0 ? -errno : -ENOSPC;
		}
		done += (size_t)n;
	}
	return 0;
}

static bool all_zero(const char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* The file is new and as long as the image: it reads zeros wherever
 * nothing is written, so zero blocks inside data ranges are skipped too. */
static int write_nonzero(struct export *e, const char *buf, size_t n, uint64_t off)
{
	size_t i = 0;
	int ret;

	while (i < n) {
		size_t j, b = n - i < FLASH_ALIGN ? n - i : FLASH_ALIGN;

		if (all_zero(buf + i, b)) {
			i += b;
			continue;
		}
		for (j = i + b; j < n; j += b) {
			b = n - j < FLASH_ALIGN ? n - j : FLASH_ALIGN;
			if (all_zero(buf + j, b))
				break;
		}
		if (lseek(e->fd, (off_t)(off + i), SEEK_SET) < 0) {
			log_error("OUT %s: seek: %s", e->out, strerror(errno));
			return -errno;
		}
		if ((ret = write_all(e, buf + i, j - i)) < 0)
			return ret;
		i = j;
	}
	return 0;
}

/* Sparse: only the data ranges, at their offsets (read ahead: readahead.h). */
static int sparse_chunk(void *ctx, const struct readahead_chunk *c)
{
	struct export *e = ctx;
	int ret = write_nonzero(e, c->buf, c->len, c->off);

	if (ret == 0)
		progress_add(&e->pr, c->len);
	return ret;
}

/* A stream: every byte in order, zeros for the holes. */
static int stream_chunk(void *ctx, const struct readahead_chunk *c)
{
	struct export *e = ctx;
	int ret = write_all(e, c->buf, c->len);

	if (ret == 0)
		progress_add(&e->pr, c->len);
	return ret;
}

static int stream(struct export *e)
{
	return readahead_run(&e->src, true, stream_chunk, e);
}

static int archive_setup(struct export *e, enum kind k)
{
	struct archive_entry *ent;
	int r;

	e->a = archive_write_new();
	if (!e->a)
		return -ENOMEM;
	r = k == K_ZST ? archive_write_add_filter_zstd(e->a) :
	    k == K_XZ ? archive_write_add_filter_xz(e->a) : archive_write_add_filter_gzip(e->a);
	/* gzip would store the time of the export: not reproducible. */
	if (r == ARCHIVE_OK && k == K_GZ)
		r = archive_write_set_filter_option(e->a, "gzip", "timestamp", NULL);
	if (r == ARCHIVE_OK)
		r = archive_write_set_format_raw(e->a);
	if (r == ARCHIVE_OK)
		r = archive_write_set_bytes_in_last_block(e->a, 1);
	if (r == ARCHIVE_OK)
		r = archive_write_open_fd(e->a, e->fd);
	if (r != ARCHIVE_OK) {
		log_error("OUT %s: cannot set up the compression: %s", e->out,
			  archive_error_string(e->a));
		return -EIO;
	}
	ent = archive_entry_new();
	archive_entry_set_pathname(ent, "disk.img");
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_perm(ent, 0644);
	archive_entry_set_size(ent, (la_int64_t)e->src.size);
	r = archive_write_header(e->a, ent);
	archive_entry_free(ent);
	if (r != ARCHIVE_OK) {
		log_error("OUT %s: %s", e->out, archive_error_string(e->a));
		return -EIO;
	}
	return 0;
}

static int archive_finish(struct export *e)
{
	int r = archive_write_close(e->a);

	if (r != ARCHIVE_OK)
		log_error("OUT %s: finishing the compressed stream: %s", e->out,
			  archive_error_string(e->a));
	archive_write_free(e->a);
	e->a = NULL;
	return r == ARCHIVE_OK ? 0 : -EIO;
}

/* OUT.XXXXXX.tmp in OUT's directory (rename needs the same filesystem). */
static int open_tmp(struct export *e)
{
	mode_t um = umask(0);

	umask(um);
	e->umask = um;
	if ((size_t)snprintf(tmp_path, sizeof(tmp_path), "%s.XXXXXX.tmp", e->out) >=
	    sizeof(tmp_path)) {
		log_error("OUT %s: name too long", e->out);
		tmp_path[0] = '\0';
		return -ENAMETOOLONG;
	}
	e->fd = mkostemps(tmp_path, 4, O_CLOEXEC);
	if (e->fd < 0) {
		log_error("OUT %s: cannot create %s: %s", e->out, tmp_path, strerror(errno));
		tmp_path[0] = '\0';
		return -errno;
	}
	if (fchmod(e->fd, 0644 & ~um) < 0) {
		log_error("OUT %s: chmod %s: %s", e->out, tmp_path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* OUT.bmap: the hole map as bmaptool reads it (`bmaptool copy OUT DEV`
 * finds it by name), with the checksums of the image's bytes. */
static int write_bmap(struct export *e)
{
	char bm[PATH_MAX], *text = NULL;
	size_t len, done = 0;
	int fd, ret;

	if ((size_t)snprintf(bm, sizeof(bm), "%s.bmap", e->out) >= sizeof(bm) ||
	    (size_t)snprintf(tmp_bmap, sizeof(tmp_bmap), "%s.XXXXXX.tmp", bm) >=
	    sizeof(tmp_bmap)) {
		tmp_bmap[0] = '\0';
		log_error("OUT %s: name too long", e->out);
		return -ENAMETOOLONG;
	}
	ret = rpifs_gen_bmap(e->src.g, &text, &len);
	if (ret < 0) {
		tmp_bmap[0] = '\0';
		log_error("OUT %s: the bmap: %s", bm, strerror(-ret));
		return ret;
	}
	fd = mkostemps(tmp_bmap, 4, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_error("OUT %s: cannot create %s: %s", bm, tmp_bmap, strerror(errno));
		tmp_bmap[0] = '\0';
		free(text);
		return ret;
	}
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	free(text);
	ret = done == len ? 0 : -EIO;
	if (ret == 0 && (fchmod(fd, 0644 & ~e->umask) < 0 || fsync(fd) < 0))
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp_bmap, bm) < 0)
		ret = -errno;
	if (ret < 0) {
		log_error("OUT %s: writing %s: %s", bm, tmp_bmap, strerror(-ret));
		return ret;
	}
	tmp_bmap[0] = '\0';
	return 0;
}

static int run(struct export *e, enum kind k)
{
	int ret;

	if (k == K_STDOUT) {
		e->fd = STDOUT_FILENO;
		progress_start(&e->pr, "exporting", e->src.size, e->pr.quiet);
		if ((ret = stream(e)) < 0)
			return ret;
		progress_end(&e->pr);
		return 0;
	}
	if ((ret = open_tmp(e)) < 0)
		return ret;
	if (k == K_IMG) {
		uint64_t data = 0;

		if (ftruncate(e->fd, (off_t)e->src.size) < 0) {
			log_error("OUT %s: setting the size of %s: %s", e->out, tmp_path,
				  strerror(errno));
			return -errno;
		}
		progress_start(&e->pr, "exporting", e->src.size, e->pr.quiet);
		ret = readahead_run(&e->src, false, sparse_chunk, e);
		data = e->pr.done;
		e->pr.total = data;
		if (ret < 0)
			return ret;
	} else {
		if ((ret = archive_setup(e, k)) < 0)
			return ret;
		progress_start(&e->pr, "compressing", e->src.size, e->pr.quiet);
		if ((ret = stream(e)) < 0 || (ret = archive_finish(e)) < 0)
			return ret;
	}
	progress_end(&e->pr);
	if (fsync(e->fd) < 0 || close(e->fd) < 0) {
		e->fd = -1;
		log_error("OUT %s: writing %s: %s", e->out, tmp_path, strerror(errno));
		return -errno;
	}
	e->fd = -1;
	/* The bmap first: OUT appears last, with its bmap beside it. */
	if (e->src.tree && (ret = write_bmap(e)) < 0)
		return ret;
	if (rename(tmp_path, e->out) < 0) {
		log_error("OUT %s: renaming %s to it: %s", e->out, tmp_path, strerror(errno));
		return -errno;
	}
	tmp_path[0] = '\0';
	return 0;
}

static int out_kind(const char *out, enum kind *k)
{
	size_t l = strlen(out);

	if (!strcmp(out, "-")) {
		if (isatty(STDOUT_FILENO)) {
			log_error("OUT -: stdout is a terminal: redirect it to a file or a pipe");
			return -EINVAL;
		}
		*k = K_STDOUT;
		return 0;
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t sl = strlen(kinds[i].suffix);

		if (l > sl && !strcmp(out + l - sl, kinds[i].suffix)) {
			*k = kinds[i].kind;
			return 0;
		}
	}
	log_error("OUT %s: name it NAME.img, NAME.img.zst, NAME.img.xz or NAME.img.gz (the "
		  "suffix chooses the format), or - for stdout", out);
	return -EINVAL;
}

int export_main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_LAYOUT_LONG_OPTS,
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct export e = { .fd = -1 };
	struct rpifs_opts o;
	struct stat st;
	enum kind k;
	int c, ret;

	rpifs_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "qvh", opts, NULL)) != -1) {
		ret = cli_layout_opt(&o, c, optarg, NULL);
		if (ret < 0)
			return 2;
		if (ret > 0)
			continue;
		switch (c) {
		case 'q': e.pr.quiet = true; log_set_level(LOG_LVL_ERROR); break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "Try 'rpifs export --help'.\n");
			return 2;
		}
	}
	if (argc - optind != 2) {
		log_error(argc - optind < 2 ? "export: ROOTFS and OUT are required" :
			  "export: too many arguments");
		fprintf(stderr, "Usage: rpifs export [OPTIONS] ROOTFS OUT (rpifs export --help)\n");
		return 2;
	}
	if (cli_layout_finish(&o) < 0)
		return 2;
	e.out = argv[optind + 1];
	if (out_kind(e.out, &k) < 0)
		return 2;
	if (stat(argv[optind], &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("ROOTFS %s: %s", argv[optind],
			  errno && !S_ISDIR(st.st_mode) ? "not a directory" : strerror(errno));
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	ret = source_open(&e.src, argv[optind], &o, 0);
	if (ret == 0)
		ret = run(&e, k);
	if (ret == 0 && k != K_STDOUT)
		log_info("%s: the %.1f MiB image of %s", e.out, e.src.size / 1048576.0,
			 argv[optind]);
	if (e.a)
		archive_write_free(e.a);
	if (e.fd >= 0 && e.fd != STDOUT_FILENO)
		close(e.fd);
	if (tmp_path[0])
		unlink(tmp_path);
	if (tmp_bmap[0])
		unlink(tmp_bmap);
	source_close(&e.src);
	return ret < 0 ? 1 : 0;
}
