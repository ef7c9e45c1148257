/* ext4_memio.c - a libext2fs io_manager backed by an in-memory page store.
 *
 * Every byte libext2fs writes lands in a 4 KiB page of the store, keyed by
 * its byte offset on the device; a page that was never written reads as
 * zeros. The store outlives the channel: ext2fs_close_free() closes the
 * channel, and ext4_build then turns the pages into memory regions.
 *
 * Contract details of libext2fs's io_channel that shape this file:
 *  - a negative count in read/write is a byte count, a positive one a
 *    number of channel blocks;
 *  - the channel block size changes at run time (the superblock is written
 *    with 1024-byte blocks), so everything is converted to byte offsets;
 *  - zeroout and discard drop pages and CHANNEL_FLAGS_DISCARD_ZEROES is set,
 *    so zeroing inode tables or the journal costs no memory;
 *  - a page that becomes all zeros is dropped too: absent and zero are the
 *    same thing, and the store stays proportional to real metadata.
 *
 * Memory: a store of at most raw_budget pages stays raw (packing costs
 * time and a small store saves little). Past the budget every page is
 * packed once, and from then on only a bounded set of pages is kept raw
 * ("hot", MEMIO_HOT pages); a page leaving the hot set is packed (pagepack.h: an inode-table
 * page of 16 similar inodes packs to a few hundred bytes), and a read or a
 * write of a packed page unpacks it into the hot set again. libext2fs
 * writes inodes one by one as read-modify-write of their inode-table
 * block, in roughly ascending order, so the hot set catches those; the
 * peak is the packed size plus MEMIO_HOT pages, never every raw page. A
 * page whose encoding is not smaller than the page (a directory block full
 * of names) stays raw.
 *
 * The page table is an open-addressing hash map (linear probing, backward
 * shift deletion) from page index to page data. Lookups are O(1); ordered
 * traversal sorts the keys once. The hot set is a FIFO ring of page
 * indexes: every raw page that may pack smaller has an entry added when
 * it became raw (created or unpacked), so at most MEMIO_HOT of them are
 * alive. An entry may go stale (its page dropped, packed or re-added);
 * evicting one then does nothing, or packs a page early: never wrong.
 *
 * Not thread-safe: libext2fs is single-threaded and the store is only used
 * while the layout is being built.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ext2fs/ext2fs.h>

#include "ext4_memio.h"
#include "pagepack.h"

/* A chunk of the codec is one ext4 inode (ext4_i.h's INODE_SIZE, 256):
 * an inode-table page is 16 chunks, the shape the codec is made for. */
_Static_assert(PAGEPACK_PAGE == MEMIO_PAGE, "the codec's page is the store's");
_Static_assert(PAGEPACK_CHUNK == 256, "a codec chunk is one ext4 inode");

struct memio_slot {
	uint64_t idx;           /* page index = byte offset / MEMIO_PAGE */
	uint8_t *data;          /* NULL: slot empty; else the raw page, or
				 * its pagepack record when plen != 0 */
	uint32_t plen;          /* record size; 0: data is a raw page */
};

struct memio_store {
	uint64_t size;          /* device size in bytes */
	struct memio_slot *tab;
	size_t cap;             /* power of two, 0 before the first page */
	size_t n;               /* occupied slots; n <= cap * 3 / 4 */
	size_t raw_budget;      /* pages before packing starts */
	bool packing;           /* the budget was passed: the ring bounds raw pages */
	uint64_t hot[MEMIO_HOT];        /* FIFO ring of raw page indexes */
	size_t nhot, hand;      /* entries used; the oldest (when full) */
};

/* ---- the page table ---------------------------------------------------- */

static size_t slot_hash(const struct memio_store *s, uint64_t idx)
{
	/* Fibonacci hashing: consecutive page indexes spread evenly. */
	return (size_t)((idx * 0x9E3779B97F4A7C15ull) >> 17) & (s->cap - 1);
}

/* Index of the slot holding idx, or of the empty slot where it would go. */
static size_t slot_find(const struct memio_store *s, uint64_t idx)
{
	size_t i = slot_hash(s, idx);

	while (s->tab[i].data && s->tab[i].idx != idx)
		i = (i + 1) & (s->cap - 1);
	return i;
}

/* The slot of page idx, or NULL when the page is absent. */
static struct memio_slot *slot_get(const struct memio_store *s, uint64_t idx)
{
	struct memio_slot *sl;

	if (!s->n)
		return NULL;
	sl = &s->tab[slot_find(s, idx)];
	return sl->data ? sl : NULL;
}

static int table_grow(struct memio_store *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 1024;
	struct memio_slot *old = s->tab, *nt;
	size_t ocap = s->cap, i;

	nt = calloc(ncap, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	s->tab = nt;
	s->cap = ncap;
	for (i = 0; i < ocap; i++)
		if (old[i].data)
			s->tab[slot_find(s, old[i].idx)] = old[i];
	free(old);
	return 0;
}

/* Remove idx from the table and return its data (NULL if absent).
 * Backward shift deletion keeps every probe chain unbroken. */
static uint8_t *page_remove(struct memio_store *s, uint64_t idx)
{
	size_t i, j, home;
	uint8_t *p;

	if (!s->n)
		return NULL;
	i = slot_find(s, idx);
	p = s->tab[i].data;
	if (!p)
		return NULL;
	s->tab[i].data = NULL;
	s->tab[i].plen = 0;
	s->n--;
	j = i;
	for (;;) {
		j = (j + 1) & (s->cap - 1);
		if (!s->tab[j].data)
			break;
		home = slot_hash(s, s->tab[j].idx);
		/* Move j into the hole i unless its home lies cyclically
		 * in (i, j]: then the hole does not break its chain. */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			s->tab[i] = s->tab[j];
			s->tab[j].data = NULL;
			s->tab[j].plen = 0;
			i = j;
		}
	}
	return p;
}

/* ---- the hot set ------------------------------------------------------- */

/* Pack page idx if it is raw and packs smaller. 0 or -ENOMEM. */
static int page_pack(struct memio_store *s, uint64_t idx)
{
	struct memio_slot *sl = slot_get(s, idx);
	uint8_t *rec;
	size_t len;
	int ret;

	if (!sl || sl->plen)
		return 0;
	ret = pagepack_pack(sl->data, &rec, &len);
	if (ret)
		return ret < 0 ? ret : 0;       /* 1: stays raw */
	free(sl->data);
	sl->data = rec;
	sl->plen = (uint32_t)len;
	return 0;
}

/* The store just passed its raw budget: pack every page but keep (the
 * page the caller is handing out). Until now no page was packed. */
static int pack_all(struct memio_store *s, uint64_t keep)
{
	size_t i;
	int ret;

	for (i = 0; i < s->cap; i++) {
		if (!s->tab[i].data || s->tab[i].idx == keep)
			continue;
		ret = page_pack(s, s->tab[i].idx);
		if (ret)
			return ret;
	}
	return 0;
}

/* Page idx just became raw: enter it in the ring, packing the oldest
 * entry's page when the ring is full. Below the raw budget nothing is
 * tracked: the first page past it packs all the others. */
static int hot_add(struct memio_store *s, uint64_t idx)
{
	uint64_t old;
	int ret;

	if (!s->packing) {
		if (s->n <= s->raw_budget)
			return 0;
		ret = pack_all(s, idx);
		if (ret)
			return ret;
		s->packing = true;
	}

	if (s->nhot < MEMIO_HOT) {
		s->hot[s->nhot++] = idx;
		return 0;
	}
	old = s->hot[s->hand];
	s->hot[s->hand] = idx;
	s->hand = (s->hand + 1) % MEMIO_HOT;
	return old == idx ? 0 : page_pack(s, old);
}

/* The raw bytes of page idx: unpacked into the hot set if packed; if
 * absent, NULL, or when add, a new page (zeroed unless whole: the caller
 * overwrites all of it; zeroing 4 KiB only to overwrite it was a tenth of
 * the ext4 build). *err is -ENOMEM when that fails. */
static uint8_t *page_raw(struct memio_store *s, uint64_t idx, bool add,
			 bool whole, int *err)
{
	struct memio_slot *sl = slot_get(s, idx);
	uint8_t *p;
	size_t i;

	*err = 0;
	if (sl && !sl->plen)
		return sl->data;
	if (!sl && !add)
		return NULL;
	p = whole || sl ? malloc(MEMIO_PAGE) : calloc(1, MEMIO_PAGE);
	if (!p)
		goto nomem;
	if (sl) {
		if (!whole)
			pagepack_unpack(sl->data, p);
		free(sl->data);
		sl->data = p;
		sl->plen = 0;
	} else {
		if ((s->n + 1) * 4 > s->cap * 3 && table_grow(s)) {
			free(p);
			goto nomem;
		}
		i = slot_find(s, idx);
		s->tab[i] = (struct memio_slot){ idx, p, 0 };
		s->n++;
	}
	/* The eviction packs another page: p stays where it is. */
	*err = hot_add(s, idx);
	return *err ? NULL : p;
nomem:
	*err = -ENOMEM;
	return NULL;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	size_t i;

	for (i = 0; i < MEMIO_PAGE / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

/* Whether n bytes at b are all zero: glibc's memcmp is vectorised, a byte
 * loop is not (this runs for every block libext2fs writes). */
static bool bytes_are_zero(const uint8_t *b, size_t n)
{
	return !n || (!b[0] && !memcmp(b, b + 1, n - 1));
}

/* ---- byte-level access ----------------------------------------------- */

/* Read len bytes at off into buf; a packed page read is unpacked into the
 * hot set (libext2fs reads an inode-table block before writing an inode
 * into it). Returns 0 or -ENOMEM. */
static int store_read(struct memio_store *s, uint64_t off, size_t len,
		      uint8_t *buf)
{
	int err;

	while (len) {
		uint64_t idx = off / MEMIO_PAGE;
		size_t in = off % MEMIO_PAGE;
		size_t n = MEMIO_PAGE - in;
		const uint8_t *p = page_raw(s, idx, false, false, &err);

		if (err)
			return err;
		if (n > len)
			n = len;
		if (p)
			memcpy(buf, p + in, n);
		else
			memset(buf, 0, n);
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Write buf (or zeros when buf is NULL) at off. A page that ends up all
 * zeros is dropped. Returns 0 or -ENOMEM. */
static int store_write(struct memio_store *s, uint64_t off, size_t len,
		       const uint8_t *buf)
{
	int err;

	while (len) {
		uint64_t idx = off / MEMIO_PAGE;
		size_t in = off % MEMIO_PAGE;
		size_t n = MEMIO_PAGE - in;
		uint8_t *p;

		if (n > len)
			n = len;
		if (!buf) {
			if (n == MEMIO_PAGE) {
				free(page_remove(s, idx));
				goto next;
			}
			p = page_raw(s, idx, false, false, &err);
			if (err)
				return err;
			if (p) {
				memset(p + in, 0, n);
				if (page_is_zero(p))
					free(page_remove(s, idx));
			}
		} else {
			bool zero = bytes_are_zero(buf, n);

			/* Writing zeros over an absent page changes nothing:
			 * skip the allocation. */
			p = page_raw(s, idx, !zero, n == MEMIO_PAGE, &err);
			if (err)
				return err;
			if (!p)
				goto next;
			memcpy(p + in, buf, n);
			/* Only zeros written can leave the page all zeros. */
			if (zero && page_is_zero(p))
				free(page_remove(s, idx));
		}
next:
		if (buf)
			buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* ---- the store's public side ------------------------------------------ */

struct memio_store *memio_store_new(uint64_t size, size_t raw_budget)
{
	struct memio_store *s = calloc(1, sizeof(*s));

	if (s) {
		s->size = size;
		s->raw_budget = raw_budget;
	}
	return s;
}

void memio_store_free(struct memio_store *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->cap; i++)
		free(s->tab[i].data);
	free(s->tab);
	free(s);
}

size_t memio_store_pages(const struct memio_store *s)
{
	return s->n;
}

void *memio_store_steal(struct memio_store *s, uint64_t off)
{
	return page_remove(s, off / MEMIO_PAGE);
}

int memio_store_pack(struct memio_store *s)
{
	size_t i;
	int ret;

	/* Within the budget the store stays raw. Past it only the ring's
	 * pages can be raw and pack smaller: a raw page outside it was found
	 * incompressible when it left. */
	if (!s->packing)
		return 0;
	for (i = 0; i < s->nhot; i++) {
		ret = page_pack(s, s->hot[i]);
		if (ret)
			return ret;
	}
	s->nhot = s->hand = 0;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int memio_store_foreach(struct memio_store *s,
			int (*fn)(void *ctx, uint64_t off, const uint8_t *data,
				  size_t plen),
			void *ctx)
{
	uint64_t *keys;
	size_t i, k = 0;
	int ret = 0;

	if (!s->n)
		return 0;
	keys = malloc(s->n * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (i = 0; i < s->cap; i++)
		if (s->tab[i].data)
			keys[k++] = s->tab[i].idx;
	qsort(keys, k, sizeof(*keys), cmp_u64);
	/* fn may steal pages (its own or later ones): look each key up
	 * again instead of holding slot pointers across calls. */
	for (i = 0; i < k && !ret; i++) {
		const struct memio_slot *sl = slot_get(s, keys[i]);

		if (sl)
			ret = fn(ctx, keys[i] * MEMIO_PAGE, sl->data, sl->plen);
	}
	free(keys);
	return ret;
}

/* ---- the io_manager ---------------------------------------------------- */

#define MEMIO_PREFIX "memio:"

const char *memio_name(struct memio_store *s, char *buf, size_t len)
{
	snprintf(buf, len, MEMIO_PREFIX "%p", (void *)s);
	return buf;
}

static errcode_t memio_open(const char *name, int flags, io_channel *channel)
{
	struct memio_store *s = NULL;
	io_channel io = NULL;
	errcode_t err;
	void *p = NULL;

	(void)flags;
	if (!name || strncmp(name, MEMIO_PREFIX, strlen(MEMIO_PREFIX)) ||
	    sscanf(name + strlen(MEMIO_PREFIX), "%p", &p) != 1 || !p)
		return EXT2_ET_BAD_DEVICE_NAME;
	s = p;

	err = ext2fs_get_memzero(sizeof(*io), &io);
	if (err)
		return err;
	err = ext2fs_get_mem(strlen(name) + 1, &io->name);
	if (err) {
		ext2fs_free_mem(&io);
		return err;
	}
	strcpy(io->name, name);
	io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	io->manager = memio_io_manager;
	io->block_size = 1024;
	io->refcount = 1;
	io->flags = CHANNEL_FLAGS_DISCARD_ZEROES;
	io->private_data = s;
	*channel = io;
	return 0;
}

/* The store is not the channel's: it lives on after close. */
static errcode_t memio_close(io_channel channel)
{
	if (--channel->refcount > 0)
		return 0;
	ext2fs_free_mem(&channel->name);
	ext2fs_free_mem(&channel);
	return 0;
}

static errcode_t memio_set_blksize(io_channel channel, int blksize)
{
	if (blksize <= 0)
		return EXT2_ET_INVALID_ARGUMENT;
	channel->block_size = blksize;
	return 0;
}

/* Byte extent of a (block, count) request: count < 0 means -count bytes. */
static errcode_t req_extent(io_channel channel, unsigned long long block,
			    long long count, uint64_t *off, size_t *len)
{
	struct memio_store *s = channel->private_data;
	uint64_t bs = (uint64_t)channel->block_size;

	*off = block * bs;
	*len = count < 0 ? (size_t)-count : (size_t)count * bs;
	if (*off > s->size || *len > s->size - *off)
		return EXT2_ET_LLSEEK_FAILED;
	return 0;
}

static errcode_t memio_read_blk64(io_channel channel, unsigned long long block,
				  int count, void *data)
{
	uint64_t off;
	size_t len;
	errcode_t err = req_extent(channel, block, count, &off, &len);

	if (err)
		return err;
	if (store_read(channel->private_data, off, len, data))
		return EXT2_ET_NO_MEMORY;
	return 0;
}

static errcode_t memio_read_blk(io_channel channel, unsigned long block,
				int count, void *data)
{
	return memio_read_blk64(channel, block, count, data);
}

static errcode_t memio_write_blk64(io_channel channel, unsigned long long block,
				   int count, const void *data)
{
	uint64_t off;
	size_t len;
	errcode_t err = req_extent(channel, block, count, &off, &len);

	if (err)
		return err;
	if (store_write(channel->private_data, off, len, data))
		return EXT2_ET_NO_MEMORY;
	return 0;
}

static errcode_t memio_write_blk(io_channel channel, unsigned long block,
				 int count, const void *data)
{
	return memio_write_blk64(channel, block, count, data);
}

static errcode_t memio_write_byte(io_channel channel, unsigned long offset,
				  int size, const void *data)
{
	struct memio_store *s = channel->private_data;

	if (size < 0 || offset > s->size || (uint64_t)size > s->size - offset)
		return EXT2_ET_LLSEEK_FAILED;
	if (store_write(s, offset, (size_t)size, data))
		return EXT2_ET_NO_MEMORY;
	return 0;
}

/* zeroout and discard: the range reads as zeros afterwards. */
static errcode_t memio_zeroout(io_channel channel, unsigned long long block,
			       unsigned long long count)
{
	struct memio_store *s = channel->private_data;
	uint64_t bs = (uint64_t)channel->block_size, off = block * bs, len;

	if (off >= s->size)
		return 0;
	len = count * bs;
	if (len > s->size - off)
		len = s->size - off;
	/* A huge range (the journal, an inode table) over a sparse store:
	 * walk the range page by page only when it is small, else scan the
	 * table once. */
	if (len / MEMIO_PAGE > s->n * 4 + 16) {
		uint64_t first = off / MEMIO_PAGE, last;
		size_t i;

		/* Partial head and tail pages first. */
		if (off % MEMIO_PAGE) {
			uint64_t n = MEMIO_PAGE - off % MEMIO_PAGE;

			store_write(s, off, n, NULL);
			off += n;
			len -= n;
			first++;
		}
		if (len % MEMIO_PAGE) {
			store_write(s, off + len - len % MEMIO_PAGE,
				    len % MEMIO_PAGE, NULL);
			len -= len % MEMIO_PAGE;
		}
		if (!len)
			return 0;
		last = first + len / MEMIO_PAGE;     /* exclusive */
		for (i = 0; i < s->cap;) {
			if (s->tab[i].data && s->tab[i].idx >= first &&
			    s->tab[i].idx < last) {
				/* Removal may shift a later entry into i:
				 * look at slot i again. */
				free(page_remove(s, s->tab[i].idx));
				continue;
			}
			i++;
		}
		return 0;
	}
	store_write(s, off, len, NULL);
	return 0;
}

static errcode_t memio_discard(io_channel channel, unsigned long long block,
			       unsigned long long count)
{
	return memio_zeroout(channel, block, count);
}

static errcode_t memio_flush(io_channel channel)
{
	(void)channel;
	return 0;
}

static errcode_t memio_set_option(io_channel channel, const char *option,
				  const char *arg)
{
	(void)channel;
	(void)option;
	(void)arg;
	return EXT2_ET_INVALID_ARGUMENT;
}

static errcode_t memio_cache_readahead(io_channel channel,
				       unsigned long long block,
				       unsigned long long count)
{
	(void)channel;
	(void)block;
	(void)count;
	return 0;
}

static struct struct_io_manager memio_manager = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "rpifs memory I/O manager",
	.open = memio_open,
	.close = memio_close,
	.set_blksize = memio_set_blksize,
	.read_blk = memio_read_blk,
	.write_blk = memio_write_blk,
	.flush = memio_flush,
	.write_byte = memio_write_byte,
	.set_option = memio_set_option,
	.get_stats = NULL,      /* s_kbytes_written stays what we set */
	.read_blk64 = memio_read_blk64,
	.write_blk64 = memio_write_blk64,
	.discard = memio_discard,
	.cache_readahead = memio_cache_readahead,
	.zeroout = memio_zeroout,
};

io_manager memio_io_manager = &memio_manager;
