/* flash.c - `rpifs flash [OPTIONS] ROOTFS|IMAGE DEVICE`: write an image to
 * an SD card (or a file), only its data: the holes (free space, unused
 * clusters and blocks) are skipped, and what the card held there stays --
 * no reader of the image depends on those bytes. Then fsync and a read-back
 * of every range written, compared by checksum with what was written. */
#include <errno.h>
#include <getopt.h>
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
#include "target.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: rpifs flash [OPTIONS] ROOTFS|IMAGE DEVICE\n"
"\n"
"Write the image of ROOTFS (built as a mount of it would serve it) or an image\n"
"file IMAGE to DEVICE, an SD card's block device (or a regular file): only the\n"
"ranges that hold data, in large aligned writes; then a read-back verify.\n"
"What DEVICE held in the image's holes stays there: no reader depends on it.\n"
"DEVICE is refused if it is mounted or has a mounted partition, holds / or\n"
"swap, is in use by device-mapper, or is smaller than the image.\n"
"\n"
"  -y, --yes                do not ask before writing (needed without a terminal)\n"
"      --no-verify          skip the read-back\n"
"  -q, --quiet              errors only, no progress\n"
"  -v, --verbose            more messages\n"
"  -h, --help               this help\n"
"\n"
"Layout (ROOTFS only; as for the mount):\n"
"%s", cli_layout_help);
}

enum { OPT_NO_VERIFY = CLI_OPT_END };

struct flash {
	struct source src;
	struct target tgt;
	char *buf;
	uint64_t *sums;         /* one per chunk written, in order */
	size_t nsums, cap;
	uint64_t data;          /* bytes to write */
	struct progress pr;
	bool quiet;
};

/* A checksum of a written chunk, to compare the read-back with (not a
 * second read of the source: a tree may change meanwhile). */
static uint64_t chunk_sum(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	for (; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static int count_range(void *ctx, uint64_t off, uint64_t len)
{
	struct flash *f = ctx;

	(void)off;
	f->data += len;
	f->cap += (len + FLASH_CHUNK - 1) / FLASH_CHUNK;
	return 0;
}

/* One chunk of data, read ahead (readahead.h), in offset order. */
static int write_chunk(void *ctx, const struct readahead_chunk *c)
{
	struct flash *f = ctx;
	int ret;

	if ((ret = target_pwrite(&f->tgt, c->buf, c->len, c->off)) < 0)
		return ret;
	if (f->nsums < f->cap)
		f->sums[f->nsums] = chunk_sum(c->buf, c->len);
	f->nsums++;
	progress_add(&f->pr, c->len);
	return 0;
}

static int verify_range(void *ctx, uint64_t off, uint64_t len)
{
	struct flash *f = ctx;
	int ret;

	while (len) {
		size_t n = len < FLASH_CHUNK ? (size_t)len : FLASH_CHUNK;

		if ((ret = target_pread(&f->tgt, f->buf, n, off)) < 0)
			return ret;
		if (f->nsums >= f->cap || chunk_sum(f->buf, n) != f->sums[f->nsums]) {
			log_error("DEVICE %s: verify failed: the %zu bytes at %llu read back differ "
				  "from what was written (a failing card or reader, or a fake "
				  "capacity: try another card)", f->tgt.path, n,
				  (unsigned long long)off);
			return -EIO;
		}
		f->nsums++;
		progress_add(&f->pr, n);
		off += n;
		len -= n;
	}
	return 0;
}

/* Test hook: flip the byte at $RPIFS_FLASH_TEST_CORRUPT of the target
 * between the write and the verify, so that a test sees the verify catch
 * it (a real failing card cannot be had in a test). */
static int test_corrupt(struct flash *f)
{
	const char *e = getenv("RPIFS_FLASH_TEST_CORRUPT");
	unsigned char c;
	uint64_t off;
	FILE *fp;

	if (!e || !*e)
		return 0;
	off = strtoull(e, NULL, 0);
	fp = fopen(f->tgt.path, "r+e");
	if (!fp || fseeko(fp, (off_t)off, SEEK_SET) || fread(&c, 1, 1, fp) != 1 ||
	    fseeko(fp, (off_t)off, SEEK_SET) || (c ^= 0xff, fwrite(&c, 1, 1, fp) != 1) ||
	    fflush(fp) || fsync(fileno(fp))) {
		if (fp)
			fclose(fp);
		log_error("RPIFS_FLASH_TEST_CORRUPT: cannot flip the byte at %s", e);
		return -EIO;
	}
	fclose(fp);
	log_warn("test hook: flipped the byte at %llu of %s", (unsigned long long)off,
		 f->tgt.path);
	return target_sync(&f->tgt);
}

/* Ask on the terminal. No terminal and no --yes: refuse. */
static int confirm(struct flash *f)
{
	char ans[16];

	if (!isatty(STDIN_FILENO)) {
		log_error("DEVICE %s: no terminal to ask for confirmation on: pass --yes to "
			  "write without asking; nothing was written", f->tgt.path);
		return -EPERM;
	}
	target_describe(&f->tgt, stderr);
	fprintf(stderr, "Write %.1f MiB of data (an image of %.1f MiB from %s) to %s?\n"
		"Everything on %s will be lost. Type yes to go on: ",
		f->data / 1048576.0, f->src.size / 1048576.0, f->src.path, f->tgt.path,
		f->tgt.path);
	fflush(stderr);
	if (!fgets(ans, sizeof(ans), stdin) || strcmp(ans, "yes\n")) {
		log_error("not confirmed: nothing was written to %s", f->tgt.path);
		return -ECANCELED;
	}
	return 0;
}

static int run(struct flash *f, bool yes, bool verify)
{
	int ret;

	if ((ret = target_check_size(&f->tgt, f->src.size)) < 0)
		return ret;
	if ((ret = source_data_ranges(&f->src, FLASH_ALIGN, count_range, f)) < 0)
		return ret;
	if (!yes && target_holds_data(&f->tgt) && (ret = confirm(f)) < 0)
		return ret;
	f->sums = calloc(f->cap ? f->cap : 1, sizeof(*f->sums));
	if (!f->sums || posix_memalign((void **)&f->buf, FLASH_ALIGN, FLASH_CHUNK)) {
		log_error("out of memory");
		return -ENOMEM;
	}
	if ((ret = target_prepare(&f->tgt, f->src.size)) < 0)
		return ret;
	progress_start(&f->pr, "writing", f->data, f->quiet);
	ret = readahead_run(&f->src, false, write_chunk, f);
	if (ret < 0)
		return ret;
	if ((ret = target_sync(&f->tgt)) < 0)
		return ret;
	progress_end(&f->pr);
	if (!verify)
		return 0;
	if ((ret = test_corrupt(f)) < 0)
		return ret;
	f->nsums = 0;
	progress_start(&f->pr, "verifying", f->data, f->quiet);
	ret = source_data_ranges(&f->src, FLASH_ALIGN, verify_range, f);
	if (ret < 0)
		return ret;
	progress_end(&f->pr);
	return 0;
}

int flash_main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_LAYOUT_LONG_OPTS,
		{ "yes", no_argument, NULL, 'y' },
		{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct flash f = { .quiet = false };
	struct rpifs_opts o;
	bool yes = false, verify = true, is_tree;
	struct stat st;
	unsigned layout = 0;
	int c, ret;

	rpifs_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "yqvh", opts, NULL)) != -1) {
		ret = cli_layout_opt(&o, c, optarg, &layout);
		if (ret < 0)
			return 2;
		if (ret > 0)
			continue;
		switch (c) {
		case 'y': yes = true; break;
		case OPT_NO_VERIFY: verify = false; break;
		case 'q': f.quiet = true; log_set_level(LOG_LVL_ERROR); break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "Try 'rpifs flash --help'.\n");
			return 2;
		}
	}
	if (argc - optind != 2) {
		log_error(argc - optind < 2 ? "flash: ROOTFS|IMAGE and DEVICE are required" :
			  "flash: too many arguments");
		fprintf(stderr, "Usage: rpifs flash [OPTIONS] ROOTFS|IMAGE DEVICE "
			"(rpifs flash --help)\n");
		return 2;
	}
	if (cli_layout_finish(&o) < 0)
		return 2;
	f.src.fd = -1;
	/* The target's checks first: no image is built for a refused one. */
	is_tree = stat(argv[optind], &st) == 0 && S_ISDIR(st.st_mode);
	if (target_open(&f.tgt, argv[optind + 1], is_tree ? argv[optind] : NULL,
			is_tree ? NULL : argv[optind]) < 0)
		return 1;
	/* Nobody to ask: refused before the image is built. */
	if (!yes && target_holds_data(&f.tgt) && !isatty(STDIN_FILENO))
		ret = confirm(&f);
	else
		ret = source_open(&f.src, argv[optind], &o, layout);
	if (ret == 0)
		ret = run(&f, yes, verify);
	if (ret == 0)
		log_info("%s: wrote %.1f MiB of data (%.0f%% of the %.1f MiB image)%s",
			 f.tgt.path, f.data / 1048576.0,
			 f.src.size ? 100.0 * f.data / f.src.size : 0.0,
			 f.src.size / 1048576.0, verify ? ", verified" : "");
	target_close(&f.tgt);
	source_close(&f.src);
	free(f.buf);
	free(f.sums);
	return ret < 0 ? 1 : 0;
}
