/* image.c - scan, layout and the region map of disk.img.
 *
 * Layout (all offsets in bytes, every partition start a multiple of align):
 *
 *   0            the partition table (libfdisk, parttable.h): dos, the
 *                MBR in sector 0; gpt, the protective MBR, the primary
 *                header and entries (LBA 1..33). Then zeros up to p1_start
 *   p1_start     partition 1, FAT32, type 0x0c, bootable (gpt: Microsoft
 *                basic data, "boot"): the boot directory
 *   p2_start     partition 2, ext4, type 0x83 (gpt: Linux filesystem,
 *                "rootfs"): the rest of the tree, up to the end of the disk
 *                (or --root-size); gpt: up to the last 4 KiB boundary before
 *                the backup GPT
 *   size - 33 s  gpt: the backup entries and header (the last 33 sectors)
 *   size         a power of two unless --size says otherwise (qemu's raspi3b
 *                refuses SD cards of any other size)
 *
 * Everything is computed once per image, here (threads: image.h);
 * afterwards the image is immutable.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "ext4_build.h"
#include "fat32.h"
#include "identity.h"
#include "image.h"
#include "log.h"
#include "pagepack.h"
#include "parttable.h"

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mult = 1ull << 10; end++; break;
	case 'M': mult = 1ull << 20; end++; break;
	case 'G': mult = 1ull << 30; end++; break;
	case 'T': mult = 1ull << 40; end++; break;
	case 'S': mult = 512; end++; break;    /* sectors */
	default: return -EINVAL;
	}
	if (mult > 512 && (!strcasecmp(end, "iB") || !strcasecmp(end, "B")))
		end += strlen(end);
	if (*end || (v && mult > UINT64_MAX / v))
		return -EINVAL;
	*out = v * mult;
	return 0;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static uint64_t pow2_up(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static uint64_t mib_up(uint64_t v)
{
	return (v + MIB - 1) / MIB;
}

/* The first cap-1 bytes of the tree's regular file at path (below dir), as
 * a string in a malloc'd *text; NULL if there is none. The tree's own
 * snapshot of it (srcfiles: checked against the scan), not a fresh open. */
static int tree_text(struct image *img, const struct tree_node *dir, const char *path,
		     size_t cap, char **text)
{
	const struct tree_node *c = dir ? tree_lookup(&img->tree, dir, path) : NULL;
	size_t len;
	char *buf;

	*text = NULL;
	if (!c || !S_ISREG(c->st.st_mode) || c->file == SRCFILE_NONE)
		return 0;
	len = (uint64_t)c->st.st_size < cap - 1 ? (size_t)c->st.st_size : cap - 1;
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	/* An unreadable file names nothing, as before for cmdline.txt; the
	 * ext4 build reports the read error itself. */
	if (srcfiles_pread(&img->tree.files, c->file, buf, len, 0) < 0) {
		free(buf);
		return 0;
	}
	buf[len] = '\0';
	*text = buf;
	return 0;
}

/* The labels and ids the tree expects (identity.h): /etc/fstab and the
 * served cmdline.txt, as `rpifs build config` and the tree's packages wrote
 * them. Using them keeps the card bootable with no flags. */
static int resolve_identity(struct image *img, const struct image_opts *o,
			    const struct tree_node *boot, struct identity *id)
{
	char *fstab = NULL, *cmdline = NULL, *fstab_path = NULL, *cmdline_path = NULL;
	char *mnt = NULL;
	struct identity_in in = {
		.boot_label = o->boot_label, .root_label = o->root_label, .disk_id = o->disk_id,
	};
	int ret;

	ret = tree_text(img, img->tree.root, "etc/fstab", 65536, &fstab);
	if (ret == 0)
		ret = tree_text(img, boot, "cmdline.txt", 4097, &cmdline);
	if (ret < 0)
		goto out;
	if (asprintf(&fstab_path, "%s/etc/fstab", o->rootfs) < 0 ||
	    asprintf(&cmdline_path, "%s/%s/cmdline.txt", o->rootfs,
		     boot ? o->boot_dir : "") < 0) {
		fstab_path = cmdline_path = NULL;
		ret = -ENOMEM;
		goto out;
	}
	/* The FAT's mount point in the tree: "/" + the served directory. */
	if (boot && asprintf(&mnt, "/%s", o->boot_dir) < 0) {
		mnt = NULL;
		ret = -ENOMEM;
		goto out;
	}
	in.fstab = fstab;
	in.fstab_path = fstab_path;
	in.cmdline = cmdline;
	in.cmdline_path = cmdline_path;
	in.boot_mnt = mnt;
	in.label = o->label;
	ret = identity_resolve(id, &in);
out:
	free(fstab);
	free(cmdline);
	free(fstab_path);
	free(cmdline_path);
	free(mnt);
	return ret;
}

static uint64_t align_down(uint64_t v, uint64_t a)
{
	return v / a * a;
}

/* Partition 2 ends before the backup GPT (tail bytes), on a 4 KiB boundary
 * (ext4's block) when it runs to the end of the disk. */
static int layout(struct image *img, const struct image_opts *o,
		  const struct tree_node *boot, uint64_t *root_min)
{
	uint64_t need = 0, root, tail = parttable_tail_bytes(img->gpt ? PT_GPT : PT_DOS);
	int ret;

	/* gpt's primary entries end at LBA 33: partition 1 after them. */
	img->p1_start = align_up(parttable_head_bytes(img->gpt ? PT_GPT : PT_DOS), o->align);
	img->p1_size = align_up(o->boot_size, 512);
	img->p2_start = align_up(img->p1_start + img->p1_size, o->align);

	*root_min = 0;
	if (o->ext4) {
		uint8_t seed[16];

		digest_fill(&img->tree.digest, "ext4-hash-seed", seed, sizeof(seed));
		ret = ext4_size_needed(&img->tree, boot, seed, &need);
		if (ret < 0)
			return ret;
	}
	*root_min = align_up(need ? need : o->align, o->align);
	if (o->root_size) {
		if (o->root_size < *root_min) {
			log_error("--root-size %" PRIu64 " MiB is too small: the root filesystem "
				  "needs at least %" PRIu64 " MiB", o->root_size / MIB,
				  mib_up(*root_min));
			return -ENOSPC;
		}
		root = align_up(o->root_size, 512);
	} else {
		root = align_up(*root_min * 100 / (100 - o->free_percent), o->align);
	}
	if (o->size) {
		uint64_t min = img->p2_start + *root_min + tail;

		if (o->size < min || o->size % 512) {
			log_error("--size %" PRIu64 " MiB is %s: the image needs at least %"
				  PRIu64 " MiB (boot partition up to %" PRIu64 " MiB, root "
				  "filesystem %" PRIu64 " MiB)", o->size / MIB,
				  o->size % 512 ? "not a multiple of 512 bytes" : "too small",
				  mib_up(min), mib_up(img->p2_start), mib_up(*root_min));
			return -ENOSPC;
		}
		img->size = o->size;
		if (!o->root_size || img->p2_start + root > img->size - tail)
			root = align_down(img->size - tail - img->p2_start, tail ? 4096 : 512);
	} else {
		img->size = pow2_up(img->p2_start + root + tail);
		if (!o->root_size)
			root = align_down(img->size - tail - img->p2_start, tail ? 4096 : 512);
	}
	img->p2_size = root;
	/* The layout must fit: asserted, since everything below relies on it. */
	if (!(img->p1_start + img->p1_size <= img->p2_start &&
	      img->p2_start + img->p2_size <= img->size - tail)) {
		log_error("layout: internal error (p1 %" PRIu64 "+%" PRIu64 ", p2 %" PRIu64
			  "+%" PRIu64 ", disk %" PRIu64 ")", img->p1_start, img->p1_size,
			  img->p2_start, img->p2_size, img->size);
		return -EINVAL;
	}
	return 0;
}

/* The ext4 filesystem's times, a function of the tree alone (no clock: the
 * same tree gives the same bytes at any time).
 *
 * SOURCE_DATE_EPOCH, when set, is every time, as before.
 *
 * Otherwise the filesystem's own times (creation, last check, the inodes it
 * makes) are the tree's newest mtime, even one in the future: nothing
 * checks those (e2fsck's "last checked in the future" only applies with a
 * check interval, which is 0). The superblock's last write time is another
 * matter: e2fsck reports a last write or mount time later than its clock
 * (super.c; older versions on every run, -p at boot included), so it must
 * not lie in the future for any clock, a Raspberry Pi's at boot (no RTC:
 * fake-hwclock's saved time) included. Clamping it to the clock is what
 * made the bytes change every second for a tree with a file from 2040; any
 * fixed bound would be overtaken or age. So it is 1 s after the epoch:
 * "never written" (libext2fs takes 0 to mean the current time), in the past
 * for every clock. The last mount time stays 0 (never mounted). */
static void ext4_times(const struct image *img, const struct image_opts *o,
		       struct ext4_opts *eo)
{
	if (o->source_date_epoch >= 0) {
		eo->fs_time = o->source_date_epoch;
		eo->write_time = 0;
		return;
	}
	eo->fs_time = img->tree.newest_mtime;
	eo->write_time = 1;
}

static int read_file_region(void *ctx, uint32_t id, void *buf, size_t len, uint64_t off)
{
	return srcfiles_pread(ctx, id, buf, len, off);
}

/* ---- a deferred build ----------------------------------------------------- */

/* The ext4 half of a build that image_build_tree() was asked to defer: the
 * partition table and FAT32 are served from `early` while the ext4 build
 * runs on a thread of its own; the image's map and hole map are written by
 * that thread only, and read by others only once done (acquire). */
struct image_pending {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;                  /* lock to write; read atomically (acquire) */
	int ret;                    /* the build's result, once done */
	bool started;               /* the thread runs: image_free joins it */
	pthread_t thread;
	/* Immutable: the partition table and FAT32 regions, finalized over
	 * the whole disk (partition 2 reads as zeros in it: never served). The
	 * map gets copies of its regions; the buffers stay owned here. */
	struct regions early;
	struct ext4_opts eo;        /* eo.holes is set at the final address */
	char *root_label;           /* eo.label's copy: the identity's is gone */
	const struct tree_node *boot;
	/* Immutable: image_data_bytes() until done (see there). */
	uint64_t data_estimate;
};

/* Does [off, off+len) touch partition 2, the part only the ext4 build
 * knows? */
static bool in_part2(const struct image *img, uint64_t off, uint64_t len)
{
	return off < img->p2_start + img->p2_size && off + len > img->p2_start;
}

bool image_ready(const struct image *img)
{
	return !img->pend || __atomic_load_n(&img->pend->done, __ATOMIC_ACQUIRE);
}

int image_wait(const struct image *img)
{
	struct image_pending *p = img->pend;

	if (!p)
		return 0;
	if (!__atomic_load_n(&p->done, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&p->lock);
		while (!p->done)
			pthread_cond_wait(&p->cond, &p->lock);
		pthread_mutex_unlock(&p->lock);
	}
	return p->ret;
}

/* The map that answers [off, off+len) now: the early one for bytes outside
 * partition 2 while the ext4 build runs, else the whole map once it is
 * done. NULL: the build failed and the range needs it. */
static const struct regions *map_for(const struct image *img, uint64_t off, uint64_t len)
{
	if (image_ready(img))
		return img->pend && img->pend->ret ?
		       (in_part2(img, off, len) ? NULL : &img->pend->early) : &img->map;
	if (!in_part2(img, off, len))
		return &img->pend->early;
	return image_wait(img) ? NULL : &img->map;
}

uint64_t image_data_bytes(const struct image *img)
{
	if (img->pend && (!image_ready(img) || img->pend->ret))
		return img->pend->data_estimate;
	return img->holes.data_bytes;
}

int image_read(struct image *img, void *buf, size_t len, uint64_t off)
{
	const struct regions *map = map_for(img, off, len);

	if (!map)
		return -EIO;
	return regions_read(map, buf, len, off, read_file_region, &img->tree.files);
}

bool image_file_span(const struct image *img, uint64_t off, size_t len, uint32_t *id,
		     uint64_t *file_off)
{
	const struct regions *map;
	const struct region *x;
	struct region gap;

	if (!len || off >= img->size || len > img->size - off)
		return false;
	/* Never waits: partition 2's bytes are copied until its build is done. */
	if (!image_ready(img) && in_part2(img, off, len))
		return false;
	map = map_for(img, off, len);
	if (!map)
		return false;
	x = regions_piece(map, regions_find(map, off), off, &gap);
	if (x->kind != REGION_FILE || off + len > x->start + x->len)
		return false;
	*id = x->file_id;
	*file_off = x->file_off + (off - x->start);
	return true;
}

/* The n bytes at in of a memory or packed region (a packed one is decoded
 * into tmp: n <= PAGEPACK_PAGE there). */
static const uint8_t *mem_bytes(const struct region *g, uint64_t in, uint64_t n,
				uint8_t *tmp)
{
	if (g->kind == REGION_MEM)
		return g->mem + in;
	pagepack_read(g->mem, tmp, (size_t)in, (size_t)n);
	return tmp;
}

static bool is_mem(const struct region *g)
{
	return g->kind == REGION_MEM || g->kind == REGION_PACKED;
}

/* Are region x at byte pos and region y at byte pos the same n bytes?
 * A memory page and a packed page may hold the same bytes. */
static bool same_bytes(const struct image *a, const struct region *x,
		       const struct image *b, const struct region *y, uint64_t pos, uint64_t n)
{
	uint64_t ix = pos - x->start, iy = pos - y->start;
	uint8_t tx[PAGEPACK_PAGE], ty[PAGEPACK_PAGE];

	if (is_mem(x) && is_mem(y))
		return !memcmp(mem_bytes(x, ix, n, tx), mem_bytes(y, iy, n, ty), n);
	if (x->kind != y->kind)
		return false;
	switch ((enum region_kind)x->kind) {
	case REGION_ZERO:
		return true;
	case REGION_MEM:
	case REGION_PACKED:
		break;          /* compared above */
	case REGION_FILE:
		return x->file_off + ix == y->file_off + iy &&
		       srcfile_same(a->tree.files.v[x->file_id],
				    b->tree.files.v[y->file_id]);
	}
	return false;
}

int image_diff(const struct image *a, const struct image *b,
	       int (*fn)(void *ctx, uint64_t off, uint64_t len), void *ctx)
{
	uint64_t pos = 0, run = 0, runlen = 0;
	size_t i = 0, j = 0;
	int ret;

	/* A failed build has no map to compare: everything may differ. */
	if (a->size != b->size || image_wait(a) || image_wait(b))
		return fn(ctx, 0, a->size > b->size ? a->size : b->size);
	/* Walk both maps side by side, their gaps as zero regions. */
	while (pos < a->size) {
		struct region gx, gy;
		const struct region *x = regions_piece(&a->map, i, pos, &gx);
		const struct region *y = regions_piece(&b->map, j, pos, &gy);
		uint64_t xe = x->start + x->len, ye = y->start + y->len;
		uint64_t end = xe < ye ? xe : ye;

		if (!same_bytes(a, x, b, y, pos, end - pos)) {
			if (runlen && run + runlen == pos) {
				runlen += end - pos;
			} else {
				if (runlen && (ret = fn(ctx, run, runlen)))
					return ret;
				run = pos;
				runlen = end - pos;
			}
		}
		pos = end;
		if (x != &gx && xe == end)
			i++;
		if (y != &gy && ye == end)
			j++;
	}
	return runlen ? fn(ctx, run, runlen) : 0;
}

int image_scan(struct tree *tree, const struct image_opts *o)
{
	struct tree_scan_opts so = { .xattrs = true, .progress = isatty(2), .watch = o->watch,
				     .idmap = o->idmap, .nidmap = o->nidmap,
				     .devices = o->devices };

	return tree_scan(tree, o->rootfs, &so);
}

int image_build(struct image *img, const struct image_opts *o)
{
	struct tree t;
	int ret;

	memset(img, 0, sizeof(*img));
	ret = image_scan(&t, o);
	if (ret < 0)
		return ret;
	return image_build_tree(img, &t, o, false);
}

/* Everything that decides the bytes of the image, hashed: two images with
 * the same id are the same image. */
static void compute_layout_id(struct image *img, const struct image_opts *o,
			      const struct identity *id)
{
	struct digest d = img->tree.digest;

	digest_u64(&d, img->size);
	digest_u64(&d, img->disk_id);
	digest_u64(&d, img->p1_start);
	digest_u64(&d, img->p1_size);
	digest_u64(&d, img->p2_start);
	digest_u64(&d, img->p2_size);
	digest_str(&d, o->boot_dir ? o->boot_dir : "");
	digest_str(&d, id->boot_label);
	digest_str(&d, id->root_label);
	/* Only when the tree names them (else they follow the tree's digest
	 * already): today's ids stay the same for trees that name nothing. */
	if (id->has_uuid)
		digest_bytes(&d, id->uuid, sizeof(id->uuid));
	if (id->has_serial)
		digest_u64(&d, id->serial);
	/* gpt only: a dos image's id is what it was before gpt existed. */
	if (img->gpt) {
		digest_str(&d, "gpt");
		digest_bytes(&d, img->disk_guid, sizeof(img->disk_guid));
		digest_bytes(&d, img->part_uuid, sizeof(img->part_uuid));
	}
	digest_u64(&d, o->root_owner);
	digest_u64(&d, o->ext4);
	digest_u64(&d, (uint64_t)o->source_date_epoch);
	digest_fill(&d, "layout-id", img->layout_id, sizeof(img->layout_id));
}

/* The partition table is built on a thread of its own, beside the FAT32
 * and ext4 builds: libfdisk's context and probing (~1.5 ms) share nothing
 * with them, and its sectors are only added to the map after both. head
 * and tail are already the map's (regions_own), unread until then. */
struct pt_job {
	struct parttable t;
	uint8_t *head, *tail;
	int ret;
};

static void *pt_job_run(void *arg)
{
	struct pt_job *j = arg;

	j->ret = parttable_build(&j->t, j->head, j->tail);
	return NULL;
}

/* Copies of src's regions into dst (the buffers stay src's). */
static int add_copies(struct regions *dst, const struct regions *src)
{
	int ret = 0;

	for (size_t i = 0; i < src->n && ret == 0; i++) {
		const struct region *x = &src->v[i];

		switch (x->kind) {
		case REGION_MEM:
			ret = regions_add_mem(dst, x->start, x->len, x->mem, x->what);
			break;
		case REGION_PACKED:
			ret = regions_add_packed(dst, x->start, x->len, x->mem, x->what);
			break;
		case REGION_FILE:
			ret = regions_add_file(dst, x->start, x->len, x->file_id, x->file_off,
					       x->what);
			break;
		default:
			ret = regions_add_zero(dst, x->start, x->len, x->what);
		}
	}
	return ret;
}

/* The second half of a build: partition 2's filesystem (eo NULL: none),
 * then the region map (early's regions added when the first half was
 * served from it) and the hole map. */
static int build_rest(struct image *img, struct ext4_opts *eo, const struct tree_node *boot,
		      const struct regions *early)
{
	int ret = 0;

	if (eo) {
		eo->holes = &img->holes;        /* img is where it stays now */
		ret = ext4_build(&img->tree, boot, eo, &img->map);
		if (ret < 0)
			return ret;
		log_debug("%.1f ms: ext4", log_ms());
	}
	if (early)
		ret = add_copies(&img->map, early);
	if (ret == 0)
		ret = regions_finalize(&img->map, img->size);
	log_debug("%.1f ms: region map", log_ms());
	if (ret < 0)
		return ret;
	ret = holes_finalize(&img->holes, &img->map);
	log_debug("%.1f ms: hole map, %" PRIu64 " MiB of data; disk %" PRIu64 " bytes, "
		  "p1 %" PRIu64 "+%" PRIu64 ", p2 %" PRIu64 "+%" PRIu64 ", %zu regions",
		  log_ms(), img->holes.data_bytes >> 20, img->size, img->p1_start,
		  img->p1_size, img->p2_start, img->p2_size, img->map.n);
	return ret;
}

/* The first half is done and its regions are in img->map: they become the
 * early map, served while image_build_rest()'s thread builds ext4. */
static int defer_ext4(struct image *img, const struct ext4_opts *eo,
		      const struct tree_node *boot, uint64_t root_min)
{
	struct image_pending *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	img->pend = p;          /* image_free() frees it from here on */
	p->early = img->map;
	regions_init(&img->map);
	p->eo = *eo;
	p->boot = boot;
	if (eo->label && !(p->eo.label = p->root_label = strdup(eo->label)))
		return -ENOMEM;
	ret = regions_finalize(&p->early, img->size);
	log_debug("%.1f ms: early map (partition table, FAT32), %zu regions", log_ms(),
		  p->early.n);
	/* The data bytes until ext4 is built: the early map's bytes and the
	 * size estimate of ext4 (which counts whole inode tables: more than
	 * their bytes in use). Less than the disk, as a sparse file's
	 * st_blocks: cp --sparse=auto then asks SEEK_DATA (which waits). */
	for (size_t i = 0; i < p->early.n; i++)
		p->data_estimate += p->early.v[i].len;
	p->data_estimate += root_min < img->p2_size ? root_min : img->p2_size;
	return ret;
}

int (*image_test_rest_hook)(void);

/* gpt's GUIDs: the tree's PARTUUIDs where it names them, else derived from
 * the tree (never random: the same tree, the same bytes). */
static void gpt_ids(struct image *img, const struct identity *id)
{
	digest_uuid(&img->tree.digest, "gpt-disk-guid", img->disk_guid);
	if (id->has_boot_partuuid) {
		memcpy(img->part_uuid[0], id->boot_partuuid, 16);
	} else {
		digest_uuid(&img->tree.digest, "gpt-part1-uuid", img->part_uuid[0]);
	}
	if (id->has_root_partuuid) {
		memcpy(img->part_uuid[1], id->root_partuuid, 16);
	} else {
		digest_uuid(&img->tree.digest, "gpt-part2-uuid", img->part_uuid[1]);
	}
	/* A derived one equal to the tree's other one (a tree naming exactly
	 * the derived value): not two partitions with one GUID. */
	if (!memcmp(img->part_uuid[0], img->part_uuid[1], 16))
		img->part_uuid[id->has_boot_partuuid ? 1 : 0][15] ^= 1;
}

/* The GPT type GUIDs the partitions get (libfdisk's names in brackets). */
#define GPT_TYPE_BASIC_DATA "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" /* Microsoft basic data */
#define GPT_TYPE_LINUX_FS "0FC63DAF-8483-4772-8E79-3D69D8477DE4"   /* Linux filesystem */

int image_build_tree(struct image *img, struct tree *tree, const struct image_opts *o,
		     bool defer)
{
	struct ext4_opts eo = { 0 };
	const struct tree_node *boot = NULL;
	struct identity id;
	struct pt_job pj;
	pthread_t pt_thread;
	bool pt_started = false;
	enum pt_label label;
	uint64_t root_min;
	int ret;

	memset(img, 0, sizeof(*img));
	regions_init(&img->map);
	holes_init(&img->holes);
	img->tree = *tree;
	memset(tree, 0, sizeof(*tree));

	if (o->boot_dir && *o->boot_dir) {
		boot = tree_lookup(&img->tree, img->tree.root, o->boot_dir);
		if (!boot) {
			log_warn("%s/%s: no such directory in the tree: partition 1 is an "
				 "empty FAT32 filesystem (use --boot-dir to pick another)",
				 o->rootfs, o->boot_dir);
		} else if (!S_ISDIR(boot->st.st_mode)) {
			log_error("%s/%s: not a directory (use --boot-dir to pick the boot "
				  "directory)", o->rootfs, o->boot_dir);
			ret = -ENOTDIR;
			goto out;
		}
	}

	ret = resolve_identity(img, o, boot, &id);
	if (ret < 0)
		goto out;
	img->gpt = id.gpt;
	label = img->gpt ? PT_GPT : PT_DOS;
	if (img->gpt) {
		gpt_ids(img, &id);
	} else {
		img->disk_id = id.disk_id;
		if (!img->disk_id)
			img->disk_id = (uint32_t)digest_derive(&img->tree.digest, "disk-id");
		if (!img->disk_id)
			img->disk_id = 1;
	}

	ret = layout(img, o, boot, &root_min);
	if (ret < 0)
		goto out;
	compute_layout_id(img, o, &id);

	log_debug("%.1f ms: layout", log_ms());
	/* The map must not point into *img: images are moved by value. */
	pj = (struct pt_job){
		.t = {
			.label = label, .disk_size = img->size, .disk_id = img->disk_id,
			.n = 2,
			.parts = {
				{ .start = img->p1_start, .size = img->p1_size, .dos_type = 0x0c,
				  .gpt_type = GPT_TYPE_BASIC_DATA, .bootable = true, .name = "boot" },
				{ .start = img->p2_start, .size = img->p2_size, .dos_type = 0x83,
				  .gpt_type = GPT_TYPE_LINUX_FS, .name = "rootfs" },
			},
		},
		.head = regions_own(&img->map, malloc(parttable_head_bytes(label))),
		.tail = img->gpt ? regions_own(&img->map, malloc(parttable_tail_bytes(label))) :
			NULL,
	};
	if (!pj.head || (img->gpt && !pj.tail)) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(pj.t.disk_guid, img->disk_guid, 16);
	memcpy(pj.t.parts[0].uuid, img->part_uuid[0], 16);
	memcpy(pj.t.parts[1].uuid, img->part_uuid[1], 16);
	pt_started = pthread_create(&pt_thread, NULL, pt_job_run, &pj) == 0;
	if (!pt_started)
		pt_job_run(&pj);

	struct fat32_opts fo = {
		.part_start = img->p1_start,
		.part_size = img->p1_size,
		.label = id.boot_label,
		.volume_id = id.has_serial ? id.serial :
			     (uint32_t)digest_derive(&img->tree.digest, "fat-volume-id"),
		.clamp_time = o->source_date_epoch,
		.holes = &img->holes,
	};
	ret = fat32_build(&img->tree, boot, &fo, &img->map);
	if (ret < 0)
		goto out;
	log_debug("%.1f ms: FAT32", log_ms());

	if (pt_started)
		pthread_join(pt_thread, NULL);
	pt_started = false;
	ret = pj.ret;
	if (ret < 0)
		goto out;
	ret = regions_add_mem(&img->map, 0, 512, pj.head, RW_MBR);
	if (ret == 0 && img->gpt)
		ret = regions_add_mem(&img->map, 512, PT_GPT_HEAD_BYTES - 512, pj.head + 512,
				      RW_GPT);
	if (ret == 0 && img->gpt)
		ret = regions_add_mem(&img->map, img->size - PT_GPT_TAIL_BYTES,
				      PT_GPT_TAIL_BYTES, pj.tail, RW_GPT_BACKUP);
	if (ret < 0)
		goto out;

	if (o->ext4) {
		ext4_times(img, o, &eo);
		eo.part_start = img->p2_start;
		eo.part_size = img->p2_size;
		eo.label = id.root_label;
		eo.root_owner = o->root_owner;
		if (id.has_uuid) {
			memcpy(eo.uuid, id.uuid, sizeof(eo.uuid));
		} else {
			digest_uuid(&img->tree.digest, "ext4-uuid", eo.uuid);
		}
		digest_fill(&img->tree.digest, "ext4-hash-seed", eo.hash_seed,
			    sizeof(eo.hash_seed));
	}
	/* What the build would refuse is refused now, while the caller
	 * can still fail, and its warnings reach the caller (ext4_check.c). */
	if (o->ext4 && (ret = ext4_check(&img->tree, boot, &eo)) < 0)
		goto out;
	if (defer && o->ext4) {
		ret = defer_ext4(img, &eo, boot, root_min);
		goto out;
	}
	ret = build_rest(img, o->ext4 ? &eo : NULL, boot, NULL);
out:
	if (pt_started)
		pthread_join(pt_thread, NULL);
	if (ret < 0)
		image_free(img);
	return ret;
}

/* Start the deferred ext4 half on a thread (image.h). */
static void *rest_run(void *arg)
{
	struct image *img = arg;
	struct image_pending *p = img->pend;
	int ret = image_test_rest_hook ? image_test_rest_hook() : 0;

	if (ret == 0)
		ret = build_rest(img, &p->eo, p->boot, &p->early);
	if (ret < 0)
		log_error("partition 2 (ext4) could not be built: %s; reads of it fail "
			  "with EIO, partition 1 is served", strerror(-ret));
	pthread_mutex_lock(&p->lock);
	p->ret = ret;
	__atomic_store_n(&p->done, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void image_build_rest(struct image *img)
{
	struct image_pending *p = img->pend;

	if (!p || p->started || image_ready(img))
		return;
	if (pthread_create(&p->thread, NULL, rest_run, img) == 0)
		p->started = true;
	else
		rest_run(img);
}

void image_free(struct image *img)
{
	struct image_pending *p = img->pend;

	if (p) {
		if (p->started)
			pthread_join(p->thread, NULL);
		regions_free(&p->early);
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p->root_label);
		free(p);
		img->pend = NULL;
	}
	regions_free(&img->map);
	holes_free(&img->holes);
	tree_free(&img->tree);
}
