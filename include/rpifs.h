/* rpifs.h - the image engine: a Raspberry Pi root filesystem tree in, the
 * bytes of an SD-card image out (MBR, FAT32 partition 1 from ROOTFS/boot,
 * ext4 partition 2 from the rest), computed in memory, file data read from
 * the tree on demand. The one header a front-end (the FUSE server, a test,
 * an NBD plugin) needs.
 *
 * What a front-end does, in order:
 *
 *   1. rpifs_opts_init(&o), then set o.rootfs and whatever the user chose.
 *   2. rpifs_new(&r, &o): scan the tree. Its problems are logged here,
 *      naming the path, before any image work (a front-end may check its
 *      own prerequisites between 2 and 3: no image work is wasted).
 *   3. rpifs_build(r): build generation 1 (layout, FAT32, ext4, MBR).
 *   4. rpifs_set_invalidate(r, fn, ctx) if the front-end caches the
 *      image's bytes (the kernel's page cache of a FUSE file does).
 *   5. Serve. A reader that opens the image gets a generation with
 *      rpifs_gen_open() and keeps it until rpifs_gen_close(): it never
 *      sees a mix of two layouts. Through it: rpifs_gen_read(),
 *      rpifs_gen_write() (into the generation's overlay, never the tree),
 *      rpifs_gen_sync(), and rpifs_gen_spliceable()/rpifs_gen_splice() to
 *      answer a read from a pipe without copying the bytes. Attributes
 *      without an open: rpifs_gen_get()/rpifs_gen_put().
 *   6. rpifs_free(r).
 *
 * Generations. rpifs_gen_open() with no other generation handle open asks
 * whether the tree changed (an inotify watch, else a stat of every entry);
 * if it did, the tree is rescanned, a new image built and made current, and
 * the invalidation callback is called with every byte range whose cached
 * bytes differ -- or the open says to drop the whole cache -- before the
 * new generation is returned. The in-memory overlay (written blocks) moves
 * to the new generation when the layout is the same, else it goes (with a
 * notice when it held blocks). A persistent overlay (o.overlay) pins the
 * generation: tree changes that move the layout are reported, not served.
 * A failed rescan or build is logged and the current generation stays.
 *
 * Thread model. A generation's image is immutable: rpifs_gen_read, _write,
 * _sync, _splice, _spliceable, _extent, _bmap, _bmap_size, _data_bytes,
 * _size, _id, _mtime and _part may run on any thread at once, without the
 * engine's lock (the overlay, the bmap cache and the source files' fd
 * cache lock themselves). rpifs_gen_open, _open_private, _close, _get and
 * _put take the engine's lock: a refresh (rescan, build, invalidation
 * callback) runs under it, so no other open or get is answered meanwhile.
 * The callback is called from inside rpifs_gen_open(), under that lock,
 * with no handle open (no read in flight): it must not call back into the
 * engine.
 * rpifs_new, rpifs_build, rpifs_set_invalidate and rpifs_free run alone.
 * With o.defer_ext4 the engine runs one thread of its own from
 * rpifs_build() until partition 2 is built (rpifs_free joins it); what it
 * builds is read by other threads only once it is done.
 *
 * Errors: functions return 0 or -errno and log what went wrong, naming the
 * file; messages go through log.h (the process's message channel, shared
 * with the front-end).
 */
#ifndef RPIFS_H
#define RPIFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct rpifs;           /* the engine: options, tree, current generation */

/* Host ids host .. host+count-1 show in the image as image .. image+count-1
 * (user and group ids alike): for trees made in a user namespace, whose
 * files hold the host's subordinate ids. */
struct rpifs_idmap {
	uint32_t host, image, count;
};
struct rpifs_gen;       /* one generation: an image and its overlay */

/* The partition table's kind. AUTO: gpt when the tree names a GPT
 * partition (root=PARTUUID=<full uuid> in cmdline.txt, or fstab's
 * PARTUUID=<full uuid> for / or the boot mount), else dos. */
enum rpifs_label { RPIFS_LABEL_AUTO, RPIFS_LABEL_DOS, RPIFS_LABEL_GPT };

struct rpifs_opts {
	/* The tree. rpifs_new() keeps these pointers: they must outlive r.
	 * rootfs is rescanned for later generations: make it absolute if the
	 * front-end changes directory. */
	const char *rootfs;
	/* Relative to rootfs. NULL: rpifs_boot_dir() (boot/firmware when it
	 * holds config.txt, else boot), said at rpifs_new(); "": none. */
	const char *boot_dir;
	bool watch;                 /* watch the tree with inotify: true */

	/* The layout: what decides the image's bytes. */
	uint64_t align;             /* partition alignment: 4 MiB */
	uint64_t boot_size;         /* partition 1: 256 MiB */
	uint64_t size;              /* whole disk; 0: a power of two that fits */
	uint64_t root_size;         /* partition 2; 0: content + free_percent */
	unsigned free_percent;      /* free space in ext4 when automatic: 25 */
	/* dos (MBR) or gpt (protective MBR, primary and backup GPT: partition
	 * 2 ends before the last 33 sectors). AUTO: from the tree, see above. */
	enum rpifs_label label;
	/* Identity. NULL / 0: what the tree's /etc/fstab and cmdline.txt name
	 * (LABEL=, UUID=, PARTUUID=: src/engine/identity.h), else "BOOT",
	 * "rootfs" and a disk id derived from the tree. Given, they override
	 * the tree (and settle its contradictions). FAT labels: at most 11
	 * characters of a short name's set, stored upper case. */
	uint32_t disk_id;           /* MBR id (dos only) */
	const char *boot_label;     /* FAT volume label */
	const char *root_label;     /* ext4 label */
	bool root_owner;            /* every ext4 file owned by root:root */
	/* Owners, ACL ids and file capabilities' root ids, host to image:
	 * nidmap ranges (no two overlapping); an id outside them is refused
	 * naming the file. nidmap 0: the map the build left next to the tree
	 * (ROOTFS.rpifs/idmap) if any, else ids as they are. */
	const struct rpifs_idmap *idmap;
	size_t nidmap;
	/* A device table (genext2fs/makedevs format: path type mode uid gid
	 * major minor [start inc count]): device nodes and fifos added to the
	 * image, modes of existing entries changed; the tree is not touched.
	 * NULL: none. Read once by rpifs_new(). */
	const char *devices;
	bool ext4;                  /* build partition 2's filesystem: true */
	/* rpifs_build() returns once the partition table and FAT32 are built
	 * and builds ext4 on a thread of its own: a server answers its first
	 * reads meanwhile (see rpifs_build). false: it returns when the whole
	 * image is built (its errors are rpifs_build's). */
	bool defer_ext4;
	int64_t source_date_epoch;  /* SOURCE_DATE_EPOCH, -1 if unset */

	/* Writes. */
	bool read_only;             /* rpifs_gen_write() fails with -EROFS */
	const char *overlay;        /* persistent overlay file; NULL: memory */
	bool overlay_reset;         /* discard the overlay file's blocks */
};

/* The defaults noted above, everything else zero. */
void rpifs_opts_init(struct rpifs_opts *o);
/* The boot directory of the tree at rootfs, relative to it: "boot/firmware"
 * when it holds config.txt (Debian bookworm and later, Raspberry Pi OS: the
 * FAT is mounted there), else "boot". What a NULL o.boot_dir becomes; a
 * front-end that reads the boot files itself (rpifs qemu) asks here too. */
const char *rpifs_boot_dir(const char *rootfs);
/* "256M", "4MiB", "2G", "8S" (sectors), "512" (bytes): 0 or -EINVAL. */
int rpifs_parse_size(const char *s, uint64_t *out);
/* "dos" (or "mbr"), "gpt": 0 or -EINVAL. */
int rpifs_parse_label(const char *s, enum rpifs_label *out);
/* "HOST:IMAGE:COUNT" (decimal): 0, -EINVAL or -ERANGE. */
int rpifs_parse_idmap(const char *s, struct rpifs_idmap *out);

/* Scan o->rootfs into a new engine (o is copied, its strings are not).
 * 0 or -errno, logged. */
int rpifs_new(struct rpifs **r, const struct rpifs_opts *o);
/* Build generation 1 from the scan (once). 0 or -errno, logged.
 * With o.defer_ext4, partition 2 (ext4), the hole map and the bmap are built
 * on a thread after rpifs_build() returns: meanwhile a read of bytes outside
 * partition 2 is answered at once and any other call that needs partition
 * 2 (a read of it, rpifs_gen_extent, _bmap, _bmap_size, _dump, a refresh)
 * waits for that thread. If it fails (logged) those reads fail with -EIO
 * and the rest of the disk is still served. */
int rpifs_build(struct rpifs *r);
/* Free the engine and every generation, still referenced or not: call it
 * when no other call can run any more (the front-end's threads are gone). */
void rpifs_free(struct rpifs *r);

/* Called by a refresh for each byte range (ascending) of the image whose
 * cached bytes may have changed: 0, or -errno to give up (the open then
 * says to drop the whole cache). */
typedef int (*rpifs_invalidate_fn)(void *ctx, uint64_t off, uint64_t len);
void rpifs_set_invalidate(struct rpifs *r, rpifs_invalidate_fn fn, void *ctx);

/* A reader opens the image: refresh if no handle is open (see above), then
 * the current generation with a reference, until rpifs_gen_close(). Never
 * fails. *drop_cache: a new generation is served whose changed bytes the
 * invalidation callback could not name: drop every cached byte. */
struct rpifs_gen *rpifs_gen_open(struct rpifs *r, bool *drop_cache);
/* A handle of its own, for a front-end whose readers share no cache and
 * must not see each other's writes (an NBD connection). The tree is checked
 * for changes at every such open, also while other handles are open (they
 * keep their generation; the invalidation callback is not called), and the
 * handle gets an in-memory overlay of its own: it reads the generation's
 * image with its own writes patched in (not the blocks other handles wrote)
 * and its writes go at rpifs_gen_close(). Every rpifs_gen_* call takes it
 * like any handle. 0, -ENOMEM, or -EINVAL with a persistent overlay
 * (o.overlay: its writes are shared; use rpifs_gen_open()). */
int rpifs_gen_open_private(struct rpifs *r, struct rpifs_gen **g);
/* The reader is done: the overlay is synced, the reference dropped. */
void rpifs_gen_close(struct rpifs *r, struct rpifs_gen *g);
/* The current generation with a reference, without a refresh or counting
 * as an open handle (for attributes); rpifs_gen_put() drops it. */
struct rpifs_gen *rpifs_gen_get(struct rpifs *r);
void rpifs_gen_put(struct rpifs *r, struct rpifs_gen *g);

/* The disk's size in bytes; fixed for a generation. */
uint64_t rpifs_gen_size(const struct rpifs_gen *g);
/* 1 for the first generation, +1 for each new one. */
unsigned rpifs_gen_id(const struct rpifs_gen *g);
/* The tree's newest mtime (seconds): the image file's times. */
int64_t rpifs_gen_mtime(const struct rpifs_gen *g);

/* Partition n (1: FAT32 boot, 2: ext4 root) of the generation's disk: its
 * byte offset and length (the MBR's entry). 0, or -EINVAL for another n. */
int rpifs_gen_part(const struct rpifs_gen *g, unsigned n, uint64_t *off, uint64_t *len);

/* The generation's layout, one line per region in disk order (start, end,
 * length, kind, what it holds; a file region names its source path and
 * offset): what `rpifs --dump-regions` prints. Written blocks not shown. */
void rpifs_gen_dump(const struct rpifs_gen *g, FILE *f);

/* Read len bytes at off with the written blocks patched in. Never short: a
 * source file that shrank or vanished reads as zeros. 0 or -errno: an I/O
 * error of the tree, -EINVAL past the end (the front-end clips a read to
 * rpifs_gen_size()). */
int rpifs_gen_read(struct rpifs_gen *g, void *buf, size_t len, uint64_t off);
/* Write len bytes at off into the overlay (blocks of 4 KiB, completed from
 * the image). 0 or -errno: -EROFS if read_only, -EINVAL past the end. */
int rpifs_gen_write(struct rpifs_gen *g, const void *buf, size_t len, uint64_t off);
/* Make a persistent overlay's blocks durable. 0 or -errno. */
int rpifs_gen_sync(struct rpifs_gen *g);

/* Can rpifs_gen_splice() answer [off, off+len)? True when the range lies in
 * one source file, nothing was written to the generation and splicing was
 * not found unsupported. No syscall: ask before fetching a pipe. */
bool rpifs_gen_spliceable(const struct rpifs_gen *g, uint64_t off, size_t len);
/* Put exactly the len bytes rpifs_gen_read() would give into the pipe
 * pipe_w (its write end non-blocking), spliced from the source file's page
 * cache without copying them (zeros where the file shrank). 0 on success.
 * -EOPNOTSUPP: nothing was written; copy with rpifs_gen_read() (the range
 * is not spliceable, or the tree's filesystem cannot splice: every later
 * rpifs_gen_spliceable() then says false). -EAGAIN: the pipe ran out of
 * room; drop the pipe, copy. Any other -errno: the pipe holds an unknown
 * part (drop it) and the read fails with that error. */
int rpifs_gen_splice(struct rpifs_gen *g, uint64_t off, size_t len, int pipe_w);

/* The hole map: which bytes of the image a reader depends on ("data"),
 * and which not ("holes": a copy may leave anything there, as bmaptool
 * copy and cp --sparse do). Holes are the space between the partition
 * table and partition 1, FAT32's free clusters, ext4's free blocks (so a sparse
 * source file's holes), the inode-table blocks past each ext4 group's last
 * inode in use, the space after partition 2 (gpt: up to its backup
 * table, which is data). Data is everything else,
 * zeros included where they carry meaning (both FATs, bitmaps, inode
 * tables in use, the journal, directories...), and every block written to
 * the generation. Every hole reads as zeros. Computed when the generation
 * is built; the written blocks are asked at each call.
 *
 * At off (< rpifs_gen_size()): *data says whether the byte at off is data;
 * *len (> 0 on input) becomes the length of the run of that kind from off,
 * as long as the run goes but at most *len. So a walk from 0 with *len =
 * size - off alternates data and holes. 0, or -EINVAL when off is past the
 * end or *len is 0, -EIO when a deferred build of partition 2 failed.
 * Through a generation from rpifs_gen_open() (the written blocks are asked),
 * from any thread, like rpifs_gen_read(). */
int rpifs_gen_extent(struct rpifs_gen *g, uint64_t off, uint64_t *len, bool *data);
/* Data bytes of the generation as built (written blocks not counted);
 * immutable, so also through rpifs_gen_get(). Never waits: while a deferred
 * build of partition 2 runs (or after it failed), an estimate below the
 * disk's size (partition 1's bytes and ext4's size estimate). */
uint64_t rpifs_gen_data_bytes(const struct rpifs_gen *g);

/* The hole map as a bmaptool bmap (format 2.0, 4 KiB blocks, sha256): a
 * block is mapped when any byte of it is data; each range carries the
 * checksum of its bytes, the file its own. What `bmaptool copy IMAGE DEV`
 * reads from IMAGE.bmap; the text describes the generation's bytes as
 * rpifs_gen_read() gives them now, written blocks included.
 *
 * rpifs_gen_bmap(): a copy of the text (NUL-terminated, free() it) and its
 * length. The first call per generation (and after each write) reads
 * every mapped byte for the checksums, logging when that is much: the
 * result is cached in the generation. rpifs_gen_bmap_size(): the same
 * text's length without reading the image (the checksums have a fixed
 * width). Both 0 or -errno (a read error of the tree, -ENOMEM); through
 * a generation from rpifs_gen_open(), any thread (serialised per
 * generation). */
int rpifs_gen_bmap(struct rpifs_gen *g, char **text, size_t *len);
int rpifs_gen_bmap_size(struct rpifs_gen *g, size_t *len);

#endif
