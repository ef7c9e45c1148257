/* plugin.c - rpifs as an nbdkit plugin: the engine (rpifs.h) served over
 * NBD. nbdkit is the server (TLS, multi-conn, --run, filters, socket
 * activation); this file only answers its callbacks.
 *
 *   nbdkit rpifs ROOTFS [key=value ...]      (keys: config.c, plugin.h)
 *
 * Exports, by NBD export name: "disk" (the default: the whole SD-card
 * image), "root" (partition 2 alone, an ext4 filesystem) and "boot"
 * (partition 1 alone, FAT32). The engine is built in .get_ready, before
 * nbdkit forks or listens, so a bad tree stops nbdkit with its message.
 *
 * Connections and generations. Each connection is one engine handle,
 * opened in .open and closed in .close, so a connection sees one
 * generation from start to end. By default the handle is private
 * (rpifs_gen_open_private): its writes go to an in-memory overlay of its
 * own (two guests booting the same export never see each other's writes)
 * and every new connection gets the current tree's image, also while older
 * connections are open (they keep theirs). With overlay=FILE all
 * connections share the generation and its persistent overlay
 * (rpifs_gen_open, as the FUSE mount does: a new generation only when no
 * connection is open; the file pins the layout anyway), and .flush makes
 * the blocks durable (rpifs_gen_sync: the fsync promise of --overlay).
 * readonly=true shares the generation in the same way (nothing to keep
 * apart) and refuses writes.
 *
 * Thread model: NBDKIT_THREAD_MODEL_PARALLEL. Requests of one or many
 * connections run at once on nbdkit's threads: reads and writes go through
 * the connection's handle without the engine's lock (a generation's image
 * is immutable; overlays and the source file cache lock themselves), and
 * .open/.close take the engine's lock (a refresh runs under it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>
#include "log.h"
#include "plugin.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

struct export {
	const char *name;
	unsigned part;              /* 0: the whole disk, else the partition */
	const char *desc;
};

static const struct export exports[] = {
	{ "disk", 0, "Raspberry Pi SD-card image (MBR, FAT32 boot, ext4 root)" },
	{ "root", 2, "partition 2 alone: the ext4 root filesystem" },
	{ "boot", 1, "partition 1 alone: the FAT32 boot filesystem" },
};

static struct rpifs *engine;

/* One connection: its engine handle and the byte range of its export. */
struct conn {
	struct rpifs_gen *g;
	const struct export *e;
	uint64_t off, len;
};

/* Connections share the generation (and any write goes to the one
 * overlay) when the server is read-only or the overlay persistent. */
static bool shared(void)
{
	return plugin_conf.o.read_only || plugin_conf.o.overlay;
}

/* The engine's messages through nbdkit's channel (stderr, or syslog once
 * it forked into the background): errors as errors, the rest as debug
 * messages (nbdkit -v shows them). */
static void log_to_nbdkit(enum log_level level, const char *msg)
{
	if (level == LOG_LVL_ERROR)
		nbdkit_error("%s", msg);
	else if (level == LOG_LVL_WARN)
		nbdkit_error("warning: %s", msg);
	else
		nbdkit_debug("%s", msg);
}

static void plugin_load(void)
{
	rpifs_opts_init(&plugin_conf.o);
	log_set_sink(log_to_nbdkit);
}

#ifdef __SANITIZE_ADDRESS__
/* LeakSanitizer's check, when its runtime is there (an ASan build). */
extern void __lsan_do_leak_check(void) __attribute__((weak));
#endif

static void plugin_unload(void)
{
	rpifs_free(engine);
	engine = NULL;
	plugin_config_free();
	log_set_sink(NULL);
#ifdef __SANITIZE_ADDRESS__
	/* An ASan build runs inside an uninstrumented nbdkit with the runtime
	 * preloaded, and that nbdkit never returns from its exit handlers
	 * (libp11-kit's destructor blocks: tests/nbd/nbd_lib.sh), so LSan's
	 * own check at exit never comes: check here, once everything the
	 * plugin owns is freed. */
	if (__lsan_do_leak_check)
		__lsan_do_leak_check();
#endif
}

/* Scan and build before nbdkit forks and listens: problems of the tree
 * stop it with the engine's message. The engine's threads (scan, MBR) are
 * joined before rpifs_build returns, so nothing runs across the fork. */
static int plugin_get_ready(void)
{
	if (rpifs_new(&engine, &plugin_conf.o) < 0)
		return -1;
	if (rpifs_build(engine) < 0) {
		rpifs_free(engine);
		engine = NULL;
		return -1;
	}
	return 0;
}

static int plugin_list_exports(int readonly, int is_tls, struct nbdkit_exports *list)
{
	for (size_t i = 0; i < sizeof(exports) / sizeof(exports[0]); i++)
		if (nbdkit_add_export(list, exports[i].name, exports[i].desc) < 0)
			return -1;
	return 0;
}

static const char *plugin_default_export(int readonly, int is_tls)
{
	return "disk";
}

static const struct export *export_find(const char *name)
{
	if (!name || !*name)
		return &exports[0];
	for (size_t i = 0; i < sizeof(exports) / sizeof(exports[0]); i++)
		if (!strcmp(name, exports[i].name))
			return &exports[i];
	return NULL;
}

static void *plugin_open(int readonly)
{
	const char *name = nbdkit_export_name();
	struct conn *c;
	bool drop;
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c) {
		nbdkit_error("calloc: %s", strerror(errno));
		return NULL;
	}
	c->e = export_find(name);
	if (!c->e) {
		nbdkit_error("export \"%s\": no such export (disk, root or boot)", name);
		free(c);
		return NULL;
	}
	if (shared()) {
		c->g = rpifs_gen_open(engine, &drop);
	} else {
		ret = rpifs_gen_open_private(engine, &c->g);
		if (ret < 0) {
			nbdkit_error("opening the image: %s", strerror(-ret));
			free(c);
			return NULL;
		}
	}
	if (c->e->part)
		rpifs_gen_part(c->g, c->e->part, &c->off, &c->len);
	else
		c->len = rpifs_gen_size(c->g);
	nbdkit_debug("export %s: generation %u, %" PRIu64 " bytes at %" PRIu64, c->e->name,
		     rpifs_gen_id(c->g), c->len, c->off);
	return c;
}

static void plugin_close(void *handle)
{
	struct conn *c = handle;

	rpifs_gen_close(engine, c->g);
	free(c);
}

static const char *plugin_export_description(void *handle)
{
	return ((struct conn *)handle)->e->desc;
}

static int64_t plugin_get_size(void *handle)
{
	return (int64_t)((struct conn *)handle)->len;
}

static int plugin_can_write(void *handle)
{
	return !plugin_conf.o.read_only;
}

static int plugin_can_flush(void *handle)
{
	return 1;
}

/* Multi-conn promises a client that a flush on one connection makes the
 * writes of every connection visible on all: true only where every
 * connection sees the same bytes, i.e. shares one generation and overlay
 * (readonly=true, overlay=FILE). Private overlays are the opposite. */
static int plugin_can_multi_conn(void *handle)
{
	return shared();
}

/* nbdkit checked the range against .get_size. */
static int plugin_pread(void *handle, void *buf, uint32_t count, uint64_t offset,
		       uint32_t flags)
{
	struct conn *c = handle;
	int ret = rpifs_gen_read(c->g, buf, count, c->off + offset);

	if (ret < 0) {
		nbdkit_error("reading %" PRIu32 " bytes at %" PRIu64 " of %s: %s", count,
			     offset, c->e->name, strerror(-ret));
		nbdkit_set_error(-ret);
		return -1;
	}
	return 0;
}

/* FUA: nbdkit emulates it with a .flush after the write (can_fua's
 * default when .flush exists). */
static int plugin_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset,
			uint32_t flags)
{
	struct conn *c = handle;
	int ret = rpifs_gen_write(c->g, buf, count, c->off + offset);

	if (ret < 0) {
		nbdkit_error("writing %" PRIu32 " bytes at %" PRIu64 " of %s: %s", count,
			     offset, c->e->name, strerror(-ret));
		nbdkit_set_error(-ret);
		return -1;
	}
	return 0;
}

static int plugin_flush(void *handle, uint32_t flags)
{
	struct conn *c = handle;
	int ret = rpifs_gen_sync(c->g);

	if (ret < 0) {
		nbdkit_error("flushing the overlay: %s", strerror(-ret));
		nbdkit_set_error(-ret);
		return -1;
	}
	return 0;
}

/* The runs of [offset, offset + count) of the export in this connection's
 * view (holes read zeros; its written blocks are data), each passed to fn
 * with the export's offsets (c->off shifts them to the disk's) until fn
 * returns non-zero: 0 when fn never did, fn's positive result, or -1 after
 * nbdkit_error. */
typedef int (*run_fn)(void *ctx, uint64_t off, uint64_t len, bool data);

static int walk_runs(struct conn *c, uint32_t count, uint64_t offset, run_fn fn, void *ctx)
{
	uint64_t end = offset + count;

	while (offset < end) {
		uint64_t len = end - offset;
		bool data;
		int ret = rpifs_gen_extent(c->g, c->off + offset, &len, &data);

		if (ret < 0) {
			nbdkit_error("mapping %" PRIu64 " bytes at %" PRIu64 " of %s: %s",
				     end - offset, offset, c->e->name, strerror(-ret));
			nbdkit_set_error(-ret);
			return -1;
		}
		if ((ret = fn(ctx, offset, len, data)) != 0)
			return ret;
		offset += len;
	}
	return 0;
}

static int stop_at_data(void *ctx, uint64_t off, uint64_t len, bool data)
{
	return data;
}

/* Writes can zero: nbdkit would emulate it with .pwrite of zeros, but a
 * range that is a hole already reads zeros and needs nothing. */
static int plugin_can_zero(void *handle)
{
	return plugin_can_write(handle);
}

/* Fast zero (NBD_CMD_FLAG_FAST_ZERO: "zero only if quicker than writing"):
 * true for holes, refused elsewhere so that the client writes instead. */
static int plugin_can_fast_zero(void *handle)
{
	return 1;
}

/* NBD_CMD_WRITE_ZEROES. A range that is a hole in this connection's view
 * is zero already: nothing to do, and the only case that is fast. Else
 * zeros go to the overlay like any write (MAY_TRIM changes nothing: no
 * block can be dropped from a copy-on-write overlay over data). */
static int plugin_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	static const char zeros[64 * 1024];
	struct conn *c = handle;
	int data = walk_runs(c, count, offset, stop_at_data, NULL);

	if (data < 0)
		return -1;
	if (!data)      /* all holes: zeros already */
		return 0;
	if (flags & NBDKIT_FLAG_FAST_ZERO) {
		nbdkit_set_error(ENOTSUP);
		return -1;
	}
	while (count) {
		uint32_t n = count < sizeof(zeros) ? count : (uint32_t)sizeof(zeros);

		if (plugin_pwrite(handle, zeros, n, offset, 0) < 0)
			return -1;
		count -= n;
		offset += n;
	}
	return 0;
}

/* NBD_CMD_CACHE: nbdkit reads the range and drops the bytes, which pulls
 * the source files' data into the page cache: what a client prefetching
 * (qemu's cache hint, nbdcopy) can use. */
static int plugin_can_cache(void *handle)
{
	return NBDKIT_CACHE_EMULATE;
}

/* base:allocation from the engine's hole map: a hole reads as zeros and no
 * reader depends on its bytes, so nbdcopy, qemu-img convert and
 * `bmaptool`-like clients may skip it. Blocks written to the connection's
 * overlay are data (rpifs_gen_extent asks them). Offsets are the export's:
 * c->off shifts them to the disk's. */
struct extents_ctx {
	struct nbdkit_extents *extents;
	bool one;               /* NBDKIT_FLAG_REQ_ONE: the first run will do */
};

static int add_run(void *ctx, uint64_t off, uint64_t len, bool data)
{
	struct extents_ctx *x = ctx;

	if (nbdkit_add_extent(x->extents, off, len,
			      data ? 0 : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) < 0)
		return -1;
	return x->one;
}

static int plugin_extents(void *handle, uint32_t count, uint64_t offset, uint32_t flags,
			  struct nbdkit_extents *extents)
{
	struct extents_ctx x = { extents, flags & NBDKIT_FLAG_REQ_ONE };

	return walk_runs(handle, count, offset, add_run, &x) < 0 ? -1 : 0;
}

static struct nbdkit_plugin plugin = {
	.name = "rpifs",
	.longname = "rpifs: a Raspberry Pi SD-card image computed from a root tree",
	.version = RPIFS_VERSION,
	.description = "Serve the SD-card image of a Raspberry Pi root filesystem tree\n"
		       "(MBR, FAT32 from ROOTFS/boot, ext4 from the rest) without copying\n"
		       "it; file data is read from the tree on demand.",
	.load = plugin_load,
	.unload = plugin_unload,
	.config = plugin_config,
	.config_complete = plugin_config_complete,
	.config_help = PLUGIN_CONFIG_HELP,
	.magic_config_key = "rootfs",
	.get_ready = plugin_get_ready,
	.list_exports = plugin_list_exports,
	.default_export = plugin_default_export,
	.open = plugin_open,
	.close = plugin_close,
	.export_description = plugin_export_description,
	.get_size = plugin_get_size,
	.can_write = plugin_can_write,
	.can_flush = plugin_can_flush,
	.can_multi_conn = plugin_can_multi_conn,
	.pread = plugin_pread,
	.pwrite = plugin_pwrite,
	.flush = plugin_flush,
	.can_zero = plugin_can_zero,
	.can_fast_zero = plugin_can_fast_zero,
	.zero = plugin_zero,
	.can_cache = plugin_can_cache,
	.extents = plugin_extents,
	.errno_is_preserved = 0,
};

/* The entry point the macro defines; declared for -Wmissing-prototypes. */
NBDKIT_DLL_PUBLIC struct nbdkit_plugin *plugin_init(void);
NBDKIT_REGISTER_PLUGIN(plugin)
