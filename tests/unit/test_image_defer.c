/* test_image_defer.c - a deferred build (rpifs_opts.defer_ext4, image.c):
 * partition 1 served while partition 2 is being built.
 *
 * The ext4 half is held back by image_test_rest_hook until the test lets it
 * go. Meanwhile every byte outside partition 2 must read as the same tree's
 * image built in one go, without waiting; a read of partition 2 must wait
 * (still pending 200 ms later) and then give the same bytes; the data size
 * said meanwhile is an estimate below the disk's size. Once
 * built, the whole disk, the hole map and the bmap equal the one-go build's.
 * A failed ext4 half fails partition 2's reads and extents with EIO and
 * leaves the rest served.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "image.h"
#include "rpifs.h"

#define DISK (64 * MIB)

static char base[] = "/tmp/rpifs-defer.XXXXXX";
static char root[512];

static sem_t go;
static int hook_ret;

/* The ext4 half starts only when the test posts go. */
static int hook(void)
{
	while (sem_wait(&go) < 0 && errno == EINTR)
		;
	return hook_ret;
}

static void mkfile(const char *rel, size_t len, unsigned seed)
{
	char p[600];
	uint8_t *b = malloc(len + 1);

	must(b != NULL, "malloc");
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 13 + i / 509);
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	put_bytes(p, b, len);
	free(b);
}

static void mkdir_rel(const char *rel)
{
	char p[600];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	must(mkdir(p, 0755) == 0, p);
}

static struct rpifs *engine(bool defer)
{
	struct rpifs_opts o;
	struct rpifs *r;

	rpifs_opts_init(&o);
	o.rootfs = root;
	o.boot_size = 36 * MIB;
	o.root_size = 16 * MIB;         /* bytes after partition 2 too */
	o.size = DISK;
	o.disk_id = 0x5eed1234;
	o.watch = false;
	o.defer_ext4 = defer;
	must(rpifs_new(&r, &o) == 0, "rpifs_new");
	must(rpifs_build(r) == 0, "rpifs_build");
	return r;
}

struct reader {
	struct rpifs_gen *g;
	uint64_t off;
	size_t len;
	uint8_t *buf;
	int ret;
	int done;               /* atomic */
};

static void *read_run(void *arg)
{
	struct reader *rd = arg;

	rd->ret = rpifs_gen_read(rd->g, rd->buf, rd->len, rd->off);
	__atomic_store_n(&rd->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int main(void)
{
	uint8_t *ref = malloc(DISK), *got = malloc(DISK);
	uint64_t p1, p1len, p2, p2len, ref_data, len;
	struct rpifs_gen *g;
	struct rpifs *r;
	struct reader rd;
	pthread_t th;
	char *ref_bmap, *bmap;
	size_t ref_blen, blen;
	bool drop, data;

	must(ref && got, "malloc");
	alarm(120);             /* a read that never returns fails, not hangs */
	must(mkdtemp(base) != NULL, "mkdtemp");
	snprintf(root, sizeof(root), "%s/root", base);
	must(mkdir(root, 0755) == 0, root);
	mkdir_rel("boot");
	mkdir_rel("etc");
	mkdir_rel("usr");
	mkfile("boot/config.txt", 100, 0);
	mkfile("boot/kernel8.img", 300000, 1);
	mkfile("etc/hostname", 4, 2);
	mkfile("usr/big", 2 * MIB + 123, 3);
	mkfile("usr/small", 5000, 4);

	/* The reference: the same tree built in one go. */
	r = engine(false);
	g = rpifs_gen_open(r, &drop);
	must(rpifs_gen_read(g, ref, DISK, 0) == 0, "reference read");
	must(rpifs_gen_part(g, 1, &p1, &p1len) == 0 && rpifs_gen_part(g, 2, &p2, &p2len) == 0,
	     "partitions");
	must(p2 + p2len < DISK, "space after partition 2");
	ref_data = rpifs_gen_data_bytes(g);
	must(rpifs_gen_bmap(g, &ref_bmap, &ref_blen) == 0, "reference bmap");
	rpifs_gen_close(r, g);
	rpifs_free(r);

	/* Deferred, the ext4 half held back. */
	sem_init(&go, 0, 0);
	hook_ret = 0;
	image_test_rest_hook = hook;
	r = engine(true);
	g = rpifs_gen_open(r, &drop);
	CHECK(rpifs_gen_size(g) == DISK);
	/* An estimate, but below the disk: a sparse file's st_blocks. */
	CHECK(rpifs_gen_data_bytes(g) >= ref_data / 2 && rpifs_gen_data_bytes(g) < DISK,
	      "data bytes while building: %llu (built: %llu)",
	      (unsigned long long)rpifs_gen_data_bytes(g), (unsigned long long)ref_data);
	CHECK(!rpifs_gen_spliceable(g, p2, 4096), "partition 2 spliceable while building");
	memset(got, 0xa5, DISK);
	CHECK(rpifs_gen_read(g, got, p2, 0) == 0);
	CHECK(!memcmp(got, ref, p2), "partition table and FAT32 differ while building");
	CHECK(rpifs_gen_read(g, got + p2 + p2len, DISK - p2 - p2len, p2 + p2len) == 0);
	CHECK(!memcmp(got + p2 + p2len, ref + p2 + p2len, DISK - p2 - p2len),
	      "the bytes after partition 2 differ while building");

	/* A read of partition 2 (its superblock) waits for the build. */
	rd = (struct reader){ .g = g, .off = p2, .len = 8192, .buf = got + p2 };
	must(pthread_create(&th, NULL, read_run, &rd) == 0, "pthread_create");
	sleep_ms(200);
	CHECK(!__atomic_load_n(&rd.done, __ATOMIC_ACQUIRE),
	      "a read of partition 2 returned before ext4 was built");
	sem_post(&go);
	pthread_join(th, NULL);
	CHECK(rd.ret == 0, "partition 2 read: %d", rd.ret);
	CHECK(!memcmp(got + p2, ref + p2, 8192), "partition 2's first bytes differ");

	memset(got, 0x5a, DISK);
	CHECK(rpifs_gen_read(g, got, DISK, 0) == 0);
	CHECK(!memcmp(got, ref, DISK), "the deferred image differs from the one-go build");
	CHECK(rpifs_gen_data_bytes(g) == ref_data, "data bytes %llu, one-go %llu",
	      (unsigned long long)rpifs_gen_data_bytes(g), (unsigned long long)ref_data);
	CHECK(rpifs_gen_bmap(g, &bmap, &blen) == 0);
	CHECK(bmap && blen == ref_blen && !memcmp(bmap, ref_bmap, blen), "the bmaps differ");
	free(bmap);
	rpifs_gen_close(r, g);
	rpifs_free(r);

	/* The ext4 half fails: partition 2 fails, the rest is served. */
	hook_ret = -ENOSPC;
	sem_post(&go);
	r = engine(true);
	g = rpifs_gen_open(r, &drop);
	CHECK(rpifs_gen_read(g, got, 4096, p2 + 4096) == -EIO, "partition 2 read after a failed build");
	len = 4096;
	CHECK(rpifs_gen_extent(g, p2, &len, &data) == -EIO, "extent after a failed build");
	CHECK(rpifs_gen_read(g, got, p2, 0) == 0 && !memcmp(got, ref, p2),
	      "partition 1 after a failed build of partition 2");
	CHECK(rpifs_gen_data_bytes(g) < DISK);
	rpifs_gen_close(r, g);
	rpifs_free(r);

	/* Freed before the ext4 half ran: rpifs_free waits for it. */
	hook_ret = 0;
	r = engine(true);
	sem_post(&go);
	rpifs_free(r);

	image_test_rest_hook = NULL;
	sem_destroy(&go);
	free(ref_bmap);
	free(ref);
	free(got);
	return finish(base);
}
