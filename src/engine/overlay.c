/* overlay.c - copy-on-write blocks over the image (see overlay.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "overlay.h"

#define LEAF_BITS 9                     /* 512 blocks = 2 MiB per leaf */
#define LEAF_SIZE (1u << LEAF_BITS)
#define HDR_MAGIC "RPIFSOV1"
#define HDR_SIZE 4096u

/* On-disk header of a persistent overlay (little-endian on every host we
 * build for; checked by the static assert and the magic). */
struct ov_header {
	char magic[8];          /* 0: "RPIFSOV1" */
	uint32_t version;       /* 8: 1 */
	uint32_t block_size;    /* 12: 4096 */
	uint64_t disk_size;     /* 16 */
	uint8_t layout_id[16];  /* 24 */
	uint64_t data_offset;   /* 40: header + bitmap, multiple of 4096 */
	uint64_t check;         /* 48: checksum of bytes 0..47 */
} __attribute__((packed));
_Static_assert(sizeof(struct ov_header) == 56, "overlay header layout");

struct overlay {
	pthread_rwlock_t lock;
	uint64_t disk_size;
	uint64_t nblocks;
	_Atomic uint64_t count;         /* blocks present */
	_Atomic uint64_t version;       /* overlay_write() calls */
	/* memory mode: two-level table block -> 4 KiB buffer */
	uint8_t ***leaves;
	size_t nleaves;
	/* file mode */
	int fd;
	uint8_t *bitmap;
	uint64_t bitmap_bytes;
	uint64_t data_offset;
};

static uint64_t hdr_check(const struct ov_header *h)
{
	const uint8_t *p = (const uint8_t *)h;
	uint64_t x = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < offsetof(struct ov_header, check); i++)
		x = (x ^ p[i]) * 0x100000001b3ull;
	return x;
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static int open_file(struct overlay *ov, const char *path, const uint8_t id[16], bool reset)
{
	struct ov_header h;
	struct stat st;
	ssize_t n;

	ov->bitmap_bytes = round_up((ov->nblocks + 7) / 8, OVERLAY_BLOCK);
	ov->data_offset = HDR_SIZE + ov->bitmap_bytes;
	ov->bitmap = calloc(1, ov->bitmap_bytes);
	if (!ov->bitmap)
		return -ENOMEM;
	ov->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ov->fd < 0) {
		log_error("overlay %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(ov->fd, &st) < 0)
		return -errno;
	if (st.st_size == 0 || reset) {
		/* A fresh overlay: header and empty bitmap, data sparse. */
		memset(&h, 0, sizeof(h));
		memcpy(h.magic, HDR_MAGIC, 8);
		h.version = 1;
		h.block_size = OVERLAY_BLOCK;
		h.disk_size = ov->disk_size;
		memcpy(h.layout_id, id, 16);
		h.data_offset = ov->data_offset;
		h.check = hdr_check(&h);
		if (ftruncate(ov->fd, 0) < 0 ||
		    ftruncate(ov->fd, (off_t)(ov->data_offset + ov->nblocks * OVERLAY_BLOCK)) < 0 ||
		    pwrite(ov->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
		    fdatasync(ov->fd) < 0) {
			log_error("overlay %s: initialising: %s", path, strerror(errno));
			return -errno;
		}
		if (reset && st.st_size)
			log_info("overlay %s: reset", path);
		return 0;
	}
	n = pread(ov->fd, &h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h) || memcmp(h.magic, HDR_MAGIC, 8) || h.version != 1 ||
	    h.check != hdr_check(&h) || h.block_size != OVERLAY_BLOCK ||
	    (h.data_offset != ov->data_offset && h.disk_size == ov->disk_size)) {
		log_error("overlay %s: not an rpifs overlay, or corrupt (bad header); "
			  "remove it or pass --overlay-reset to start a new one", path);
		return -EINVAL;
	}
	if (h.disk_size != ov->disk_size || memcmp(h.layout_id, id, 16)) {
		log_error("overlay %s: its blocks belong to another image (the tree or the "
			  "layout options changed since it was written); pass --overlay-reset "
			  "to discard them, or restore the tree", path);
		return -ESTALE;
	}
	if ((uint64_t)st.st_size < ov->data_offset) {
		log_error("overlay %s: truncated (%lld bytes); pass --overlay-reset", path,
			  (long long)st.st_size);
		return -EINVAL;
	}
	n = pread(ov->fd, ov->bitmap, ov->bitmap_bytes, HDR_SIZE);
	if (n != (ssize_t)ov->bitmap_bytes) {
		log_error("overlay %s: reading the block bitmap failed; pass --overlay-reset", path);
		return -EINVAL;
	}
	uint64_t c = 0;
	for (uint64_t i = 0; i < ov->bitmap_bytes; i++)
		c += (uint64_t)__builtin_popcount(ov->bitmap[i]);
	if (ov->nblocks % 8 && (ov->bitmap[ov->nblocks / 8] >> (ov->nblocks % 8))) {
		log_error("overlay %s: bitmap marks blocks past the disk end; pass --overlay-reset", path);
		return -EINVAL;
	}
	ov->count = c;
	log_info("overlay %s: %" PRIu64 " blocks (%" PRIu64 " KiB) from earlier sessions",
		 path, c, c * OVERLAY_BLOCK / 1024);
	return 0;
}

int overlay_open(struct overlay **out, const char *path, uint64_t disk_size,
		 const uint8_t layout_id[16], bool reset)
{
	struct overlay *ov = calloc(1, sizeof(*ov));
	int ret = 0;

	if (!ov)
		return -ENOMEM;
	pthread_rwlock_init(&ov->lock, NULL);
	ov->fd = -1;
	ov->disk_size = disk_size;
	ov->nblocks = (disk_size + OVERLAY_BLOCK - 1) / OVERLAY_BLOCK;
	if (path) {
		ret = open_file(ov, path, layout_id, reset);
	} else {
		ov->nleaves = (ov->nblocks + LEAF_SIZE - 1) / LEAF_SIZE;
		ov->leaves = calloc(ov->nleaves, sizeof(*ov->leaves));
		if (!ov->leaves)
			ret = -ENOMEM;
	}
	if (ret < 0) {
		overlay_close(ov);
		return ret;
	}
	*out = ov;
	return 0;
}

void overlay_close(struct overlay *ov)
{
	if (!ov)
		return;
	for (size_t i = 0; i < ov->nleaves; i++) {
		if (!ov->leaves[i])
			continue;
		for (size_t j = 0; j < LEAF_SIZE; j++)
			free(ov->leaves[i][j]);
		free(ov->leaves[i]);
	}
	free(ov->leaves);
	if (ov->fd >= 0) {
		fdatasync(ov->fd);
		close(ov->fd);
	}
	free(ov->bitmap);
	pthread_rwlock_destroy(&ov->lock);
	free(ov);
}

uint64_t overlay_blocks(const struct overlay *ov)
{
	return ov->count;
}

bool overlay_persistent(const struct overlay *ov)
{
	return ov->fd >= 0;
}

/* Memory mode: the buffer of block b, or NULL. Caller holds the lock. */
static uint8_t *mem_block(const struct overlay *ov, uint64_t b)
{
	uint8_t **leaf = ov->leaves[b >> LEAF_BITS];

	return leaf ? leaf[b & (LEAF_SIZE - 1)] : NULL;
}

static bool file_has(const struct overlay *ov, uint64_t b)
{
	return ov->bitmap[b / 8] & (1u << (b % 8));
}

int overlay_read(struct overlay *ov, void *buf, size_t len, uint64_t off)
{
	uint8_t *out = buf;
	int ret = 0;

	if (ov->count == 0 || len == 0)
		return 0;
	pthread_rwlock_rdlock(&ov->lock);
	for (uint64_t b = off / OVERLAY_BLOCK; b * OVERLAY_BLOCK < off + len; b++) {
		uint64_t bs = b * OVERLAY_BLOCK;
		uint64_t from = bs > off ? bs : off;
		uint64_t to = bs + OVERLAY_BLOCK < off + len ? bs + OVERLAY_BLOCK : off + len;

		if (ov->fd < 0) {
			const uint8_t *p = mem_block(ov, b);

			if (p)
				memcpy(out + (from - off), p + (from - bs), to - from);
		} else if (file_has(ov, b)) {
			ssize_t n = pread(ov->fd, out + (from - off), to - from,
					  (off_t)(ov->data_offset + from));

			if (n != (ssize_t)(to - from)) {
				ret = n < 0 ? -errno : -EIO;
				log_error("overlay: reading block %" PRIu64 ": %s", b,
					  n < 0 ? strerror(errno) : "short read");
				break;
			}
		}
	}
	pthread_rwlock_unlock(&ov->lock);
	return ret;
}

/* Caller holds the write lock. Completes a partial block from the overlay or
 * the base image, then stores it. */
static int write_block(struct overlay *ov, uint64_t b, const uint8_t *src, size_t at,
		       size_t n, overlay_base_reader base, void *ctx)
{
	uint64_t bs = b * OVERLAY_BLOCK;
	size_t blen = bs + OVERLAY_BLOCK <= ov->disk_size ? OVERLAY_BLOCK :
		      (size_t)(ov->disk_size - bs);
	uint8_t tmp[OVERLAY_BLOCK];
	int ret;

	if (ov->fd < 0) {
		uint8_t ***leaf = &ov->leaves[b >> LEAF_BITS];
		uint8_t **slot;

		if (!*leaf && !(*leaf = calloc(LEAF_SIZE, sizeof(**leaf))))
			return -ENOMEM;
		slot = &(*leaf)[b & (LEAF_SIZE - 1)];
		if (!*slot) {
			uint8_t *p = calloc(1, OVERLAY_BLOCK);

			if (!p)
				return -ENOMEM;
			if (n < blen && (ret = base(ctx, p, blen, bs)) < 0) {
				free(p);
				return ret;
			}
			*slot = p;
			ov->count++;
		}
		memcpy(*slot + at, src, n);
		return 0;
	}
	if (!file_has(ov, b) && n < blen) {
		ret = base(ctx, tmp, blen, bs);
		if (ret < 0)
			return ret;
		memcpy(tmp + at, src, n);
		src = tmp;
		at = 0;
		n = blen;
	}
	if (pwrite(ov->fd, src, n, (off_t)(ov->data_offset + bs + at)) != (ssize_t)n)
		return -errno ? -errno : -EIO;
	if (!file_has(ov, b)) {
		uint64_t byte = b / 8;

		ov->bitmap[byte] |= (uint8_t)(1u << (b % 8));
		/* Data first, then its bit: a crash before the next fsync can lose
		 * a write, never serve a block that was not written. */
		if (pwrite(ov->fd, &ov->bitmap[byte], 1, (off_t)(HDR_SIZE + byte)) != 1)
			return -errno ? -errno : -EIO;
		ov->count++;
	}
	return 0;
}

int overlay_write(struct overlay *ov, const void *buf, size_t len, uint64_t off,
		  overlay_base_reader base, void *ctx)
{
	const uint8_t *in = buf;
	int ret = 0;

	if (off > ov->disk_size || len > ov->disk_size - off)
		return -ENOSPC;
	pthread_rwlock_wrlock(&ov->lock);
	ov->version++;
	while (len > 0) {
		uint64_t b = off / OVERLAY_BLOCK;
		size_t at = (size_t)(off % OVERLAY_BLOCK);
		size_t n = OVERLAY_BLOCK - at < len ? OVERLAY_BLOCK - at : len;

		ret = write_block(ov, b, in, at, n, base, ctx);
		if (ret < 0) {
			log_error("overlay: writing block %" PRIu64 ": %s", b, strerror(-ret));
			break;
		}
		in += n;
		off += n;
		len -= n;
	}
	pthread_rwlock_unlock(&ov->lock);
	return ret;
}

int overlay_sync(struct overlay *ov)
{
	if (ov->fd < 0)
		return 0;
	return fdatasync(ov->fd) < 0 ? -errno : 0;
}

uint64_t overlay_version(const struct overlay *ov)
{
	return ov->version;
}

uint64_t overlay_find(struct overlay *ov, uint64_t b, uint64_t end, bool present)
{
	if (end > ov->nblocks)
		end = ov->nblocks;
	if (b >= end)
		return end;
	if (ov->count == 0)
		return present ? end : b;
	pthread_rwlock_rdlock(&ov->lock);
	while (b < end) {
		if (ov->fd < 0) {
			/* A leaf never allocated holds no block: skip it whole. */
			if (!ov->leaves[b >> LEAF_BITS]) {
				if (!present)
					break;
				b = ((b >> LEAF_BITS) + 1) << LEAF_BITS;
				continue;
			}
			if ((mem_block(ov, b) != NULL) == present)
				break;
		} else {
			/* A bitmap byte all of the other kind: skip 8 blocks. */
			if (b % 8 == 0 && ov->bitmap[b / 8] == (present ? 0x00 : 0xff)) {
				b += 8;
				continue;
			}
			if (file_has(ov, b) == present)
				break;
		}
		b++;
	}
	pthread_rwlock_unlock(&ov->lock);
	return b < end ? b : end;
}
