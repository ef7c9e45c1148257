/* source.c - the image to copy, from a ROOTFS tree (the engine builds it,
 * as a mount of the tree would, read-only and unwatched; its holes from
 * the engine's hole map) or from an image file (its holes from
 * SEEK_DATA/SEEK_HOLE where the filesystem knows them, e.g. a sparse file
 * or MNT/disk.img of a mount). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <unistd.h>
#include "log.h"
#include "source.h"

static int open_tree(struct source *s, struct rpifs_opts *o)
{
	bool drop;
	int ret;

	o->rootfs = s->path;
	o->watch = false;       /* one generation, built once */
	o->read_only = true;
	ret = rpifs_new(&s->r, o);
	if (ret < 0)
		return ret;
	ret = rpifs_build(s->r);
	if (ret < 0) {
		rpifs_free(s->r);
		s->r = NULL;
		return ret;
	}
	/* An open, not a get: the hole map is asked through an open generation
	 * (rpifs.h); with the watch off nothing is refreshed. */
	s->g = rpifs_gen_open(s->r, &drop);
	s->size = rpifs_gen_size(s->g);
	s->tree = true;
	return 0;
}

static int open_image(struct source *s, const struct stat *st)
{
	off_t r;

	s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		log_error("IMAGE %s: %s", s->path, strerror(errno));
		return -errno;
	}
	if (S_ISBLK(st->st_mode)) {
		if (ioctl(s->fd, BLKGETSIZE64, &s->size) < 0) {
			log_error("IMAGE %s: cannot get its size: %s", s->path, strerror(errno));
			return -errno;
		}
	} else {
		s->size = (uint64_t)st->st_size;
	}
	if (s->size == 0) {
		log_error("IMAGE %s: empty", s->path);
		return -EINVAL;
	}
	/* A filesystem without SEEK_DATA says EINVAL (or answers "all data",
	 * which is right too): then every byte is data. */
	r = lseek(s->fd, 0, SEEK_DATA);
	s->seek_data = S_ISREG(st->st_mode) && (r >= 0 || errno == ENXIO);
	return 0;
}

int source_open(struct source *s, const char *path, struct rpifs_opts *o,
		unsigned layout_given)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->path = path;
	if (stat(path, &st) < 0) {
		log_error("%s: %s", path, strerror(errno));
		return -errno;
	}
	if (S_ISDIR(st.st_mode))
		return open_tree(s, o);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		log_error("%s: neither a ROOTFS directory nor an image file", path);
		return -EINVAL;
	}
	if (layout_given) {
		log_error("%s is an image: the layout options (--size, --boot-size, ...) apply "
			  "to a ROOTFS directory only; drop them", path);
		return -EINVAL;
	}
	return open_image(s, &st);
}

void source_close(struct source *s)
{
	if (s->g)
		rpifs_gen_close(s->r, s->g);
	if (s->r)
		rpifs_free(s->r);
	if (s->fd >= 0)
		close(s->fd);
	s->g = NULL;
	s->r = NULL;
	s->fd = -1;
}

static int image_extent(struct source *s, uint64_t off, uint64_t *len, bool *data)
{
	off_t d, h;

	*len = s->size - off;
	*data = true;
	if (!s->seek_data)
		return 0;
	d = lseek(s->fd, (off_t)off, SEEK_DATA);
	if (d < 0 && errno == ENXIO) {
		*data = false;          /* a hole up to the end */
		return 0;
	}
	if (d < 0)
		goto err;
	if ((uint64_t)d > off) {
		*data = false;
		*len = ((uint64_t)d < s->size ? (uint64_t)d : s->size) - off;
		return 0;
	}
	h = lseek(s->fd, (off_t)off, SEEK_HOLE);
	if (h < 0)
		goto err;
	if ((uint64_t)h > off && (uint64_t)h < s->size)
		*len = (uint64_t)h - off;
	return 0;
err:
	log_error("IMAGE %s: looking for data at %llu: %s", s->path,
		  (unsigned long long)off, strerror(errno));
	return -errno;
}

int source_extent(struct source *s, uint64_t off, uint64_t *len, bool *data)
{
	int ret;

	if (!s->tree)
		return image_extent(s, off, len, data);
	*len = s->size - off;
	ret = rpifs_gen_extent(s->g, off, len, data);
	if (ret < 0)
		log_error("ROOTFS %s: the hole map at %llu: %s", s->path,
			  (unsigned long long)off, strerror(-ret));
	return ret;
}

int source_read(struct source *s, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	int ret;

	if (s->tree) {
		ret = rpifs_gen_read(s->g, buf, len, off);
		if (ret < 0)
			log_error("ROOTFS %s: reading the image at %llu: %s", s->path,
				  (unsigned long long)off, strerror(-ret));
		return ret;
	}
	while (done < len) {
		ssize_t n = pread(s->fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("IMAGE %s: reading at %llu: %s", s->path,
				  (unsigned long long)(off + done),
				  n < 0 ? strerror(errno) : "the file shrank");
			return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	return 0;
}

int source_data_ranges(struct source *s, uint64_t gran, source_range_fn fn, void *ctx)
{
	uint64_t off = 0, start = 0, end = 0;
	bool have = false;
	int ret;

	while (off < s->size) {
		uint64_t len, a, b;
		bool data;

		ret = source_extent(s, off, &len, &data);
		if (ret < 0)
			return ret;
		if (data) {
			a = off & ~(gran - 1);
			b = (off + len + gran - 1) & ~(gran - 1);
			if (b > s->size)
				b = s->size;
			if (have && a <= end) {
				end = b > end ? b : end;
			} else {
				if (have && (ret = fn(ctx, start, end - start)))
					return ret;
				start = a;
				end = b;
				have = true;
			}
		}
		off += len;
	}
	if (have)
		return fn(ctx, start, end - start);
	return 0;
}
