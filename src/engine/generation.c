/* generation.c - the engine of rpifs.h: the generations of the image.
 *
 * A generation is an image (region map, tree, source file table) plus the
 * overlay holding what was written to it. The tree is snapshotted per
 * generation. rpifs_gen_open() with no handle open asks whether the tree
 * changed; if it did, the tree is rescanned and a new image built and made
 * current, and the front-end's cached bytes that differ are invalidated
 * before the open returns. Each handle keeps the generation it opened until
 * rpifs_gen_close(), so a reader never sees a mix of two layouts. The
 * in-memory overlay belongs to its generation: it moves to the next one
 * when the layout is the same, else it goes (a notice says so when it held
 * blocks); a persistent overlay pins the generation: tree changes of the
 * layout are reported, not served, until the overlay is reset.
 *
 * Locking (generation.h says it per field): an image is immutable once
 * built; reads and writes go through a handle's generation without the
 * engine's lock. r->lock guards the current-generation pointer, the live
 * list, the reference counts and the open-handle count; a refresh (rescan,
 * build, invalidation) runs under it, so no other open is answered
 * meanwhile.
 *
 * A private handle (rpifs_gen_open_private: an NBD connection) is a struct
 * rpifs_gen of its own: base names the generation whose image it serves
 * (the handle holds a reference on it) and ov is the handle's own overlay.
 * Its open refreshes even while other handles are open: they keep their
 * generation, and the generation's overlay then stays with it (a moved
 * overlay would leave their handles without one).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "generation.h"
#include "idmap.h"
#include "log.h"
#include "tree_walk.h"
#include "tree_watch.h"

void rpifs_opts_init(struct rpifs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->watch = true;
	o->align = 4 * MIB;
	o->boot_size = 256 * MIB;
	o->free_percent = 25;
	o->ext4 = true;
	o->source_date_epoch = -1;
}

int rpifs_parse_size(const char *s, uint64_t *out)
{
	return parse_size(s, out);
}

int rpifs_parse_label(const char *s, enum rpifs_label *out)
{
	if (!strcmp(s, "dos") || !strcmp(s, "mbr"))
		*out = RPIFS_LABEL_DOS;
	else if (!strcmp(s, "gpt"))
		*out = RPIFS_LABEL_GPT;
	else
		return -EINVAL;
	return 0;
}

int rpifs_parse_idmap(const char *s, struct rpifs_idmap *out)
{
	return idmap_parse(s, out);
}

/* The id map: the caller's, else the one the build left next to the tree;
 * no two ranges may overlap. */
static int idmap_setup(struct rpifs *r)
{
	size_t a, b;
	int ret;

	if (!r->o.nidmap) {
		ret = idmap_load(r->o.rootfs, &r->idmap_owned, &r->o.nidmap);
		if (ret < 0)
			return ret;
		r->o.idmap = r->idmap_owned;
	}
	if (idmap_check(r->o.idmap, r->o.nidmap, &a, &b) < 0) {
		const struct rpifs_idmap *m = r->o.idmap;

		log_error("id map: %" PRIu32 ":%" PRIu32 ":%" PRIu32 " and %" PRIu32 ":%"
			  PRIu32 ":%" PRIu32 " overlap: a host id would have two image ids", m[a].host, m[a].image, m[a].count,
			  m[b].host, m[b].image, m[b].count);
		return -EINVAL;
	}
	return 0;
}

/* The options image.h knows: those that decide the image's bytes. */
void image_opts_from(struct image_opts *io, const struct rpifs_opts *o)
{
	memset(io, 0, sizeof(*io));
	io->rootfs = o->rootfs;
	io->boot_dir = o->boot_dir ? o->boot_dir : rpifs_boot_dir(o->rootfs);
	io->align = o->align;
	io->boot_size = o->boot_size;
	io->size = o->size;
	io->root_size = o->root_size;
	io->free_percent = o->free_percent;
	io->label = o->label;
	io->disk_id = o->disk_id;
	io->boot_label = o->boot_label;
	io->root_label = o->root_label;
	io->root_owner = o->root_owner;
	io->idmap = o->idmap;
	io->nidmap = o->nidmap;
	io->ext4 = o->ext4;
	io->source_date_epoch = o->source_date_epoch;
	io->watch = o->watch;
}

static void gen_free(struct rpifs *r, struct rpifs_gen *g)
{
	struct rpifs_gen **p;

	for (p = &r->live; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			break;
		}
	overlay_close(g->ov);
	if (!g->base)
		image_free(&g->img);
	free(g->bmap);
	pthread_mutex_destroy(&g->bmap_lock);
	free(g);
}

/* Called with r->lock held (or, at rpifs_free(), with no caller left). */
static void gen_put(struct rpifs *r, struct rpifs_gen *g)
{
	struct rpifs_gen *base = g->base;

	if (--g->refs)
		return;
	gen_free(r, g);
	if (base)
		gen_put(r, base);
}

/* The image a handle serves: its own, or its base's for a private one. */
static struct image *gen_img(const struct rpifs_gen *g)
{
	return g->base ? &g->base->img : (struct image *)&g->img;
}

/* A new generation serving img (taken over). Its overlay is ov when given
 * (taken over: blocks written for this very layout), else a new one. */
static int gen_new(struct rpifs *r, struct image *img, unsigned id, struct overlay *ov,
		   struct rpifs_gen **out)
{
	struct rpifs_gen *g = calloc(1, sizeof(*g));
	int ret;

	if (!g) {
		image_free(img);
		overlay_close(ov);
		return -ENOMEM;
	}
	g->r = r;
	pthread_mutex_init(&g->bmap_lock, NULL);
	g->img = *img;
	memset(img, 0, sizeof(*img));
	g->refs = 1;
	g->id = id;
	g->ov = ov;
	ret = ov ? 0 : overlay_open(&g->ov, r->o.overlay, g->img.size, g->img.layout_id,
				    r->o.overlay_reset && id == 1);
	if (ret < 0) {
		image_free(&g->img);
		pthread_mutex_destroy(&g->bmap_lock);
		free(g);
		return ret;
	}
	g->next = r->live;
	r->live = g;
	*out = g;
	return 0;
}

int rpifs_new(struct rpifs **out, const struct rpifs_opts *o)
{
	struct rpifs *r = calloc(1, sizeof(*r));
	int ret;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->o = *o;
	pthread_mutex_init(&r->lock, NULL);
	/* Chosen once: the layout does not move with a later config.txt. */
	if (!r->o.boot_dir)
		r->o.boot_dir = rpifs_boot_dir(o->rootfs);
	ret = idmap_setup(r);
	if (ret == 0 && o->devices)
		ret = devtable_load(&r->devices, o->devices);
	if (ret == 0) {
		image_opts_from(&r->io, &r->o);
		r->io.devices = o->devices ? &r->devices : NULL;
		ret = image_scan(&r->scan, &r->io);
		log_debug("%.1f ms: scanned %" PRIu64 " entries", log_ms(), r->scan.nodes);
	}
	if (ret < 0) {
		log_error("%s: cannot build the image: %s", o->rootfs, strerror(-ret));
		pthread_mutex_destroy(&r->lock);
		devtable_free(&r->devices);
		free(r->idmap_owned);
		free(r);
		return ret;
	}
	r->boot_detected = !o->boot_dir;
	r->scanned = true;
	*out = r;
	return 0;
}

int rpifs_build(struct rpifs *r)
{
	struct image img;
	int ret;

	if (!r->scanned)
		return -EINVAL;
	r->scanned = false;
	/* Said here, not at the scan: the tree's own problems and the
	 * front-end's (a /dev/fuse it cannot open) come first. */
	if (r->boot_detected)
		log_info("boot partition from %s (%s)", r->o.boot_dir,
			 strcmp(r->o.boot_dir, "boot") ? "holds config.txt" :
			 "no boot/firmware/config.txt; --boot-dir picks another");
	ret = image_build_tree(&img, &r->scan, &r->io, r->o.defer_ext4);
	if (ret < 0) {
		log_error("%s: cannot build the image: %s", r->o.rootfs, strerror(-ret));
		return ret;
	}
	ret = gen_new(r, &img, 1, NULL, &r->cur);
	if (ret == 0)
		image_build_rest(&r->cur->img);   /* deferred: where it stays now */
	return ret;
}

void rpifs_free(struct rpifs *r)
{
	if (!r)
		return;
	if (r->scanned)
		tree_free(&r->scan);
	/* No release will come for handles still open at the end (a reader
	 * that closed just before an unmount, whose RELEASE the kernel had not
	 * sent yet): free every generation, referenced or not (gen_free does
	 * not follow a private handle's base: the loop frees it too). */
	while (r->live)
		gen_free(r, r->live);
	pthread_mutex_destroy(&r->lock);
	devtable_free(&r->devices);
	free(r->idmap_owned);
	free(r);
}

void rpifs_set_invalidate(struct rpifs *r, rpifs_invalidate_fn fn, void *ctx)
{
	r->inval = fn;
	r->inval_ctx = ctx;
}

static void pinned(struct rpifs *r)
{
	if (!r->pinned_notice)
		log_warn("%s changed, but the overlay %s pins the image it was written "
			 "for: remount with --overlay-reset to serve the new tree",
			 r->o.rootfs, r->o.overlay);
	r->pinned_notice = true;
}

/* Counts the ranges the front-end's callback dropped. */
struct inval {
	struct rpifs *r;
	unsigned ranges;
	int err;
};

static int inval_range(void *ctx, uint64_t off, uint64_t len)
{
	struct inval *iv = ctx;
	int ret = iv->r->inval(iv->r->inval_ctx, off, len);

	iv->ranges++;
	if (ret < 0) {
		iv->err = ret;
		return 1;
	}
	return 0;
}

/* The front-end's cache held old's bytes (its overlay's too, unless that
 * moves on): drop what differs in new, and nothing else, so that a reader
 * who had read most of the image (a booted qemu, a dd) keeps it. Called
 * with no handle open, so no read is in flight, and under the lock, so no
 * open is answered before the cache is right. Returns false when the open
 * must drop the whole cache instead. */
static bool invalidate(struct rpifs *r, const struct rpifs_gen *old,
		       const struct rpifs_gen *new)
{
	struct inval iv = { r, 0, 0 };
	double t0 = log_ms();

	if (!r->inval)
		return false;
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

/* Called with r->lock held, with no handle open or (a private open) with
 * handles open whose generation stays theirs. Returns true when a new
 * generation became current; *cache_ok then says whether the front-end's
 * cache already lost what changed (else the open drops it all).
 *
 * Once the change check has seen anything move, a new image is built even
 * when the new tree's digest equals the old one: the digest covers names
 * and metadata, not bytes, and a file rewritten with the same size and
 * mtime (or replaced by such a file, its directory's mtime restored, as tar
 * does) must be served with its new bytes, not from the old generation's
 * page cache or a deleted file's fd. When the layout is the same, the
 * overlay's blocks were written for it and move to the new generation. */
static bool refresh(struct rpifs *r, bool *cache_ok)
{
	struct rpifs_gen *g = NULL;
	struct overlay *keep = NULL;
	struct image img;
	struct tree t;
	bool same_layout;
	int ret;

	/* Most opens find nothing changed: the watch knows that at once (no
	 * event queued); without one, or after an event, every entry is
	 * stat'ed. */
	struct tree *cur = &r->cur->img.tree;
	double t0 = log_ms();

	if (tree_watch_quiet(cur->watch))
		return false;
	if (tree_unchanged(cur)) {
		tree_watch_clean(cur->watch);
		log_debug("open: tree unchanged (checked in %.1f ms)", log_ms() - t0);
		return false;
	}
	ret = image_scan(&t, &r->io);
	if (ret < 0) {
		log_error("rescanning %s failed: still serving generation %u",
			  r->o.rootfs, r->cur->id);
		return false;
	}
	/* A new digest means a new layout: no need to build it to know that a
	 * persistent overlay pins the old one. */
	if (r->o.overlay && memcmp(&t.digest, &r->cur->img.tree.digest, sizeof(t.digest))) {
		tree_free(&t);
		pinned(r);
		return false;
	}
	ret = image_build_tree(&img, &t, &r->io, false);
	if (ret < 0) {
		log_error("%s changed, but the new image cannot be built (above): still "
			  "serving generation %u", r->o.rootfs, r->cur->id);
		return false;
	}
	same_layout = !memcmp(img.layout_id, r->cur->img.layout_id, sizeof(img.layout_id));
	if (r->o.overlay && !same_layout) {
		image_free(&img);
		pinned(r);
		return false;
	}
	/* Open handles still write through the current generation's overlay:
	 * it stays with them, and the new generation starts with its own. */
	if (same_layout && r->open_handles == 0) {
		keep = r->cur->ov;
		r->cur->ov = NULL;
	}
	ret = gen_new(r, &img, r->cur->id + 1, keep, &g);
	if (ret < 0)
		return false;
	if (!keep && overlay_blocks(r->cur->ov))
		log_warn("%s changed: generation %u replaces %u; the %" PRIu64 " blocks "
			 "written to the old image are dropped (use --overlay FILE to keep "
			 "writes, which pins the image)", r->o.rootfs, g->id,
			 r->cur->id, overlay_blocks(r->cur->ov));
	else
		log_info("%s changed: serving generation %u", r->o.rootfs, g->id);
	/* The callback may only run with no read in flight. */
	*cache_ok = r->open_handles == 0 && invalidate(r, r->cur, g);
	gen_put(r, r->cur);
	r->cur = g;
	return true;
}

struct rpifs_gen *rpifs_gen_open(struct rpifs *r, bool *drop_cache)
{
	struct rpifs_gen *g;
	bool changed = false, cache_ok = false;

	pthread_mutex_lock(&r->lock);
	if (r->open_handles == 0)
		changed = refresh(r, &cache_ok);
	g = r->cur;
	g->refs++;
	r->open_handles++;
	pthread_mutex_unlock(&r->lock);
	*drop_cache = changed && !cache_ok;
	return g;
}

int rpifs_gen_open_private(struct rpifs *r, struct rpifs_gen **out)
{
	struct rpifs_gen *g;
	bool cache_ok;
	int ret;

	*out = NULL;
	if (r->o.overlay)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	pthread_mutex_lock(&r->lock);
	refresh(r, &cache_ok);
	ret = overlay_open(&g->ov, NULL, r->cur->img.size, r->cur->img.layout_id, false);
	if (ret < 0) {
		pthread_mutex_unlock(&r->lock);
		free(g);
		return ret;
	}
	g->r = r;
	pthread_mutex_init(&g->bmap_lock, NULL);
	g->base = r->cur;
	g->base->refs++;
	g->id = g->base->id;
	g->refs = 1;
	g->next = r->live;
	r->live = g;
	r->open_handles++;
	pthread_mutex_unlock(&r->lock);
	*out = g;
	return 0;
}

int rpifs_gen_part(const struct rpifs_gen *g, unsigned n, uint64_t *off, uint64_t *len)
{
	const struct image *img = gen_img(g);

	if (n == 1) {
		*off = img->p1_start;
		*len = img->p1_size;
	} else if (n == 2) {
		*off = img->p2_start;
		*len = img->p2_size;
	} else {
		return -EINVAL;
	}
	return 0;
}

void rpifs_gen_close(struct rpifs *r, struct rpifs_gen *g)
{
	overlay_sync(g->ov);
	pthread_mutex_lock(&r->lock);
	r->open_handles--;
	gen_put(r, g);
	pthread_mutex_unlock(&r->lock);
}

struct rpifs_gen *rpifs_gen_get(struct rpifs *r)
{
	struct rpifs_gen *g;

	pthread_mutex_lock(&r->lock);
	g = r->cur;
	g->refs++;
	pthread_mutex_unlock(&r->lock);
	return g;
}

void rpifs_gen_put(struct rpifs *r, struct rpifs_gen *g)
{
	pthread_mutex_lock(&r->lock);
	gen_put(r, g);
	pthread_mutex_unlock(&r->lock);
}

/* The namer's state: paths are kept nowhere, so each is rebuilt into buf
 * (valid until the next call, which is all regions_dump() needs). */
struct file_namer {
	const struct srcfiles *sf;
	char buf[TREE_PATH_MAX];
};

static const char *name_file(void *ctx, uint32_t id)
{
	struct file_namer *fn = ctx;

	if (!fn || id >= fn->sf->n || tree_path_into(fn->sf->v[id], fn->buf, sizeof(fn->buf)) < 0)
		return NULL;
	return fn->buf;
}

void rpifs_gen_dump(const struct rpifs_gen *g, FILE *f)
{
	const struct image *img = gen_img(g);
	struct file_namer *fn = malloc(sizeof(*fn));

	if (image_wait(img) < 0) {    /* logged by the build */
		free(fn);
		return;
	}
	if (fn)
		fn->sf = &img->tree.files;
	regions_dump(&img->map, f, name_file, fn);
	free(fn);
}

uint64_t rpifs_gen_size(const struct rpifs_gen *g)
{
	return gen_img(g)->size;
}

unsigned rpifs_gen_id(const struct rpifs_gen *g)
{
	return g->id;
}

int64_t rpifs_gen_mtime(const struct rpifs_gen *g)
{
	return gen_img(g)->tree.newest_mtime;
}

int rpifs_gen_read(struct rpifs_gen *g, void *buf, size_t len, uint64_t off)
{
	struct image *img = gen_img(g);
	int ret;

	if (off > img->size || len > img->size - off)
		return -EINVAL;
	ret = image_read(img, buf, len, off);
	if (ret == 0)
		ret = overlay_read(g->ov, buf, len, off);
	return ret;
}

static int base_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	return image_read(ctx, buf, len, off);
}

int rpifs_gen_write(struct rpifs_gen *g, const void *buf, size_t len, uint64_t off)
{
	struct image *img = gen_img(g);

	if (g->r->o.read_only)
		return -EROFS;
	if (off > img->size || len > img->size - off)
		return -EINVAL;
	return overlay_write(g->ov, buf, len, off, base_read, img);
}

int rpifs_gen_sync(struct rpifs_gen *g)
{
	return overlay_sync(g->ov);
}

int rpifs_gen_extent(struct rpifs_gen *g, uint64_t off, uint64_t *len, bool *data)
{
	const struct holes *h = &gen_img(g)->holes;
	uint64_t size = gen_img(g)->size, end, pos, run;
	bool d;

	if (off >= size || *len == 0)
		return -EINVAL;
	if (image_wait(gen_img(g)) < 0)
		return -EIO;
	end = *len < size - off ? off + *len : size;
	/* A byte is data if the map says so or its block was written. */
	run = end - off;
	holes_extent(h, off, &run, &d);
	*data = d || overlay_find(g->ov, off / OVERLAY_BLOCK, off / OVERLAY_BLOCK + 1, true) ==
		     off / OVERLAY_BLOCK;
	for (pos = off; pos < end;) {
		run = end - pos;
		holes_extent(h, pos, &run, &d);
		if (*data && d) {
			pos += run;     /* data of the map */
		} else if (*data) {
			/* A hole of the map: data as far as written blocks go. */
			uint64_t b = overlay_find(g->ov, pos / OVERLAY_BLOCK,
						  UINT64_MAX, false);

			if (b * OVERLAY_BLOCK <= pos)
				break;
			pos = b * OVERLAY_BLOCK < pos + run ? b * OVERLAY_BLOCK : pos + run;
		} else {
			/* A hole: up to the map's next data or a written block. */
			uint64_t b = overlay_find(g->ov, pos / OVERLAY_BLOCK,
						  (pos + run + OVERLAY_BLOCK - 1) / OVERLAY_BLOCK,
						  true);

			if (d)
				break;
			pos = b * OVERLAY_BLOCK < pos + run ? b * OVERLAY_BLOCK : pos + run;
			if (pos < end && b * OVERLAY_BLOCK == pos)
				break;
		}
	}
	if (pos > end)
		pos = end;
	*len = pos - off;
	return 0;
}

uint64_t rpifs_gen_data_bytes(const struct rpifs_gen *g)
{
	/* Never waits (a FUSE lookup asks, on the way to the first byte). */
	return image_data_bytes(gen_img(g));
}

/* The source file and the offset in it of [off, off+len), when a splice may
 * serve it. */
static bool splice_span(const struct rpifs_gen *g, uint64_t off, size_t len, uint32_t *id,
			uint64_t *foff)
{
	return !__atomic_load_n(&g->r->splice_unsupported, __ATOMIC_RELAXED) &&
	       overlay_blocks(g->ov) == 0 && image_file_span(gen_img(g), off, len, id, foff);
}

bool rpifs_gen_spliceable(const struct rpifs_gen *g, uint64_t off, size_t len)
{
	uint32_t id;
	uint64_t foff;

	return splice_span(g, off, len, &id, &foff);
}

int rpifs_gen_splice(struct rpifs_gen *g, uint64_t off, size_t len, int pipe_w)
{
	uint32_t id;
	uint64_t foff;
	int ret;

	if (!splice_span(g, off, len, &id, &foff))
		return -EOPNOTSUPP;
	ret = srcfiles_splice(&gen_img(g)->tree.files, id, foff, len, pipe_w);
	/* The tree's filesystem cannot splice: every read is copied from now
	 * on, instead of each one trying first. The pipe is still empty. */
	if (ret == -EOPNOTSUPP)
		__atomic_store_n(&g->r->splice_unsupported, true, __ATOMIC_RELAXED);
	return ret;
}
