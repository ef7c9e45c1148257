/* fat32.c - the FAT32 boot partition, laid out lazily.
 *
 * Three steps, all single-threaded at mount time:
 *
 *  1. plan: walk the boot directory and decide, per directory, which
 *     entries exist (skipping what FAT cannot hold, with a warning), their
 *     short names and how many 32-byte slots each takes. The plan alone
 *     gives the number of clusters needed (fat32_clusters_needed), so the
 *     count and the build cannot disagree.
 *  2. assign: clusters are handed out in one increasing sweep, every chain
 *     contiguous: all directory tables first (pre-order, so the root is
 *     cluster 2), then all file data (same order).
 *  3. emit: boot sector + FSInfo (and their copies in sectors 6-7), one FAT
 *     buffer mapped twice, one buffer holding every directory table, and a
 *     file region per non-empty file. Everything else (the unused part of
 *     each FAT, the slack after each file, free space) is left out and reads
 *     as zeros from regions_finalize's gap filling.
 *
 * Output depends only on the tree and the options: no clock, no TZ, no
 * locale, no hash-table iteration order.
 */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "fat32.h"
#include "fat_names.h"
#include "log.h"

#define SECTOR          512u
#define FAT_EOC         0x0FFFFFFFu
#define FAT_MEDIA       0xF8
#define FSINFO_SECTOR   1
#define BACKUP_SECTOR   6       /* boot sector copy; FSInfo copy in 7 */

#define ATTR_RO         0x01
#define ATTR_VOLUME     0x08
#define ATTR_DIR        0x10
#define ATTR_ARCH       0x20

/* The FAT spec caps a directory at 65 536 entries (2 MiB); Linux's vfat
 * refuses to grow one past that either. */
#define DIR_MAX_SLOTS   65536u

#define FILE_MAX        0xFFFFFFFFull   /* DIR_FileSize is 32 bits */

/* --- on-disk structures ------------------------------------------------ */

struct fat_boot {
	uint8_t  jmp[3];            /*   0 EB 58 90 */
	char     oem[8];            /*   3 */
	uint16_t bytes_per_sec;     /*  11 */
	uint8_t  sec_per_clus;      /*  13 */
	uint16_t rsvd_sec;          /*  14 */
	uint8_t  num_fats;          /*  16 */
	uint16_t root_ent_cnt;      /*  17 0 on FAT32 */
	uint16_t tot_sec16;         /*  19 0 on FAT32 */
	uint8_t  media;             /*  21 */
	uint16_t fat_sz16;          /*  22 0 on FAT32 */
	uint16_t sec_per_trk;       /*  24 */
	uint16_t num_heads;         /*  26 */
	uint32_t hidd_sec;          /*  28 partition start LBA */
	uint32_t tot_sec32;         /*  32 */
	uint32_t fat_sz32;          /*  36 */
	uint16_t ext_flags;         /*  40 0: FATs mirrored */
	uint16_t fs_ver;            /*  42 */
	uint32_t root_clus;         /*  44 */
	uint16_t fs_info;           /*  48 */
	uint16_t bk_boot_sec;       /*  50 */
	uint8_t  reserved[12];      /*  52 */
	uint8_t  drv_num;           /*  64 */
	uint8_t  reserved1;         /*  65 */
	uint8_t  boot_sig;          /*  66 0x29: the next three fields exist */
	uint32_t vol_id;            /*  67 */
	uint8_t  vol_lab[11];       /*  71 */
	char     fil_sys_type[8];   /*  82 "FAT32   " */
	uint8_t  boot_code[420];    /*  90 */
	uint8_t  sig[2];            /* 510 55 AA */
} __attribute__((packed));
_Static_assert(sizeof(struct fat_boot) == 512, "boot sector is one sector");
_Static_assert(offsetof(struct fat_boot, vol_id) == 67, "BS_VolID at 67");

struct fat_fsinfo {
	uint32_t lead_sig;          /*   0 0x41615252 */
	uint8_t  reserved1[480];    /*   4 */
	uint32_t struc_sig;         /* 484 0x61417272 */
	uint32_t free_count;        /* 488 */
	uint32_t nxt_free;          /* 492 */
	uint8_t  reserved2[12];     /* 496 */
	uint32_t trail_sig;         /* 508 0xAA550000 */
} __attribute__((packed));
_Static_assert(sizeof(struct fat_fsinfo) == 512, "FSInfo is one sector");
_Static_assert(offsetof(struct fat_fsinfo, free_count) == 488, "free count at 488");

struct fat_dirent {
	uint8_t  name[11];          /*   0 */
	uint8_t  attr;              /*  11 */
	uint8_t  ntres;             /*  12 case bits */
	uint8_t  crt_tenth;         /*  13 10 ms units, 0..199 */
	uint16_t crt_time;          /*  14 */
	uint16_t crt_date;          /*  16 */
	uint16_t acc_date;          /*  18 */
	uint16_t clus_hi;           /*  20 */
	uint16_t wrt_time;          /*  22 */
	uint16_t wrt_date;          /*  24 */
	uint16_t clus_lo;           /*  26 */
	uint32_t size;              /*  28 */
} __attribute__((packed));
_Static_assert(sizeof(struct fat_dirent) == 32, "directory entry is 32 bytes");

/* A long-name slot. fat_lfn_encode() fills these bytes; the struct
 * documents the layout and checks it matches the offsets used there. */
struct fat_lfn {
	uint8_t  ord;               /*   0 ordinal, 0x40 on the last one */
	uint16_t name1[5];          /*   1 */
	uint8_t  attr;              /*  11 0x0F */
	uint8_t  type;              /*  12 0 */
	uint8_t  csum;              /*  13 checksum of the short name */
	uint16_t name2[6];          /*  14 */
	uint16_t fst_clus;          /*  26 0 */
	uint16_t name3[2];          /*  28 */
} __attribute__((packed));
_Static_assert(sizeof(struct fat_lfn) == 32, "LFN slot is 32 bytes");
_Static_assert(offsetof(struct fat_lfn, name2) == 14 &&
	       offsetof(struct fat_lfn, name3) == 28, "LFN name parts");

/* --- geometry ---------------------------------------------------------- */

static uint32_t div_up32(uint64_t a, uint64_t b)
{
	return (uint32_t)((a + b - 1) / b);
}

/* Sectors per cluster from Microsoft's FAT32 table (fatgen103, in
 * sectors); mkfs.fat 4.2 uses the same thresholds. */
static uint32_t table_spc(uint64_t sectors)
{
	if (sectors <= 532480)          /* 260 MiB */
		return 1;
	if (sectors <= 16777216)        /* 8 GiB */
		return 8;
	if (sectors <= 33554432)        /* 16 GiB */
		return 16;
	if (sectors <= 67108864)        /* 32 GiB */
		return 32;
	return 64;
}

/* mkfs.fat 4.2's FAT32 sizing (setup_tables, align_structures on):
 * reserved sectors rounded up to a cluster (32 except for 64-sector
 * clusters), a first guess of the cluster count from the space per cluster
 * including its two FAT entries, the FAT length from that guess rounded up
 * to a whole cluster, then the cluster count recomputed from what is left.
 * The FAT therefore always has room for every cluster, and the data region
 * starts on a cluster boundary. Reproduces mkfs.fat's numbers exactly for
 * the sizes in tests/unit/test_fat_geom.c. */
int fat32_geometry(uint64_t part_size, struct fat32_geom *g)
{
	uint64_t sectors = part_size / SECTOR;

	memset(g, 0, sizeof(*g));
	if (sectors > UINT32_MAX)
		return -EFBIG;          /* BPB_TotSec32 */
	uint32_t spc = table_spc(sectors);
	uint32_t rsvd = spc > 32 ? spc : 32;
	if (sectors <= rsvd)
		return -ENOSPC;
	uint64_t fatdata = sectors - rsvd;
	uint64_t clus = (fatdata * SECTOR + 2 * 8) / ((uint64_t)spc * SECTOR + 2 * 4);
	uint32_t fatlen = div_up32((clus + 2) * 4, SECTOR);
	fatlen = div_up32(fatlen, spc) * spc;
	if (2ull * fatlen >= fatdata)
		return -ENOSPC;
	clus = (fatdata - 2ull * fatlen) / spc;
	assert(clus + 2 <= (uint64_t)fatlen * SECTOR / 4);     /* FAT covers all */
	if (clus < FAT32_MIN_CLUSTERS)
		return -ENOSPC;
	if (clus > 0x0FFFFFF5u)
		return -EFBIG;

	g->total_sectors = (uint32_t)sectors;
	g->sectors_per_cluster = spc;
	g->reserved_sectors = rsvd;
	g->fat_sectors = fatlen;
	g->clusters = (uint32_t)clus;
	g->data_start = ((uint64_t)rsvd + 2ull * fatlen) * SECTOR;
	assert(g->data_start + (uint64_t)g->clusters * spc * SECTOR <=
	       (uint64_t)sectors * SECTOR);
	return 0;
}

/* --- the plan ------------------------------------------------------------ */

struct fdir;

struct fent {
	const struct tree_node *node;   /* the entry as named */
	const struct tree_node *data;   /* what it serves: node, or a symlink's file */
	struct fdir *sub;               /* directories: their table */
	uint16_t nunits;                /* UTF-16 length of the name */
	uint8_t sfn[11];
	uint8_t ntres;
	uint8_t nslots;                 /* long-name slots before the entry */
	bool is_short;                  /* stored as 8.3 only */
	uint32_t first;                 /* first cluster; 0 for an empty file */
	uint32_t nclus;
};

struct fdir {
	const struct tree_node *node;   /* NULL: the root of an empty fs */
	struct fdir *parent;            /* NULL: the root */
	struct fent *ents;
	size_t n;
	uint32_t slots;                 /* 32-byte entries, with . and .. / label */
	uint32_t first, nclus;
};

struct plan {
	const struct tree *t;
	const struct tree_node *top;    /* the boot directory */
	uint32_t cs;                    /* cluster size in bytes */
	bool quiet;                     /* no warnings (a dry run for a count) */
	uint64_t dir_clusters, file_clusters;
	struct fdir *root;
};

static void fdir_free(struct fdir *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		fdir_free(d->ents[i].sub);
	free(d->ents);
	free(d);
}

/* Log a message naming a node by its path relative to ROOTFS. */
#define log_node(lvl, node, fmt, ...) do {                              \
	char *p_ = tree_path(node);                                     \
	log_msg(lvl, "%s: " fmt, p_ ? p_ : "?", __VA_ARGS__);           \
	free(p_);                                                       \
} while (0)

static void warn_skip(const struct plan *p, const struct tree_node *n,
		      const char *why)
{
	if (!p->quiet)
		log_node(LOG_LVL_WARN, n, "%s: not put on the FAT32 boot partition", why);
}

/* Long names may hold anything but control characters and \/:*?"<>|. */
static bool lfn_ok(const char *name)
{
	for (const unsigned char *s = (const unsigned char *)name; *s; s++)
		if (*s < 0x20 || strchr("\\/:*?\"<>|", *s))
			return false;
	return true;
}

/* An open-addressing table of 11-byte short names (with a value: the next
 * ~n tail to try for a basis). Sized once for the directory; never
 * iterated, so its order cannot leak into the output. */
struct nslot {
	uint8_t k[11];
	bool used;
	uint32_t v;
};
struct ntab {
	struct nslot *s;
	size_t mask;
};

static int ntab_init(struct ntab *t, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n + 8)
		cap *= 2;
	t->s = calloc(cap, sizeof(*t->s));
	t->mask = cap - 1;
	return t->s ? 0 : -ENOMEM;
}

/* The slot holding k, or the empty slot where it would go. */
static struct nslot *ntab_find(const struct ntab *t, const uint8_t k[11])
{
	uint32_t h = 2166136261u;               /* FNV-1a */
	for (int i = 0; i < 11; i++)
		h = (h ^ k[i]) * 16777619u;
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask)
		if (!t->s[i].used || !memcmp(t->s[i].k, k, 11))
			return &t->s[i];
}

static void ntab_put(struct ntab *t, const uint8_t k[11], uint32_t v)
{
	struct nslot *s = ntab_find(t, k);
	memcpy(s->k, k, 11);
	s->used = true;
	s->v = v;
}

/* Give every entry of d a short name unique in d. Names that are valid 8.3
 * go first, so they keep their natural form; a second one differing only
 * in case ("README" after "Readme"... both 8.3-valid) falls back to a long
 * name with a tail. Then every long name gets its basis if that is exact
 * and free, else the basis with the first free ~n, n = 1, 2, ... The
 * per-basis "next n" memo only skips tails known to be taken; every
 * candidate is still checked against the whole table. */
static int assign_short_names(struct plan *p, struct fdir *d)
{
	static const uint8_t dot[11] = ".          ", dotdot[11] = "..         ";
	struct ntab names = { 0 }, bases = { 0 };
	int ret;

	ret = ntab_init(&names, d->n + 2);
	if (ret < 0)
		goto out;
	ret = ntab_init(&bases, d->n);
	if (ret < 0)
		goto out;
	ntab_put(&names, dot, 0);
	ntab_put(&names, dotdot, 0);

	for (size_t i = 0; i < d->n; i++) {
		struct fent *e = &d->ents[i];
		if (!e->is_short)
			continue;
		if (ntab_find(&names, e->sfn)->used) {
			e->is_short = false;    /* case twin: needs a tail */
			e->ntres = 0;
			continue;
		}
		ntab_put(&names, e->sfn, 0);
	}
	for (size_t i = 0; i < d->n; i++) {
		struct fent *e = &d->ents[i];
		uint8_t basis[11];
		bool lossy;

		if (e->is_short)
			continue;
		fat_name_basis(e->node->name, basis, &lossy);
		if (!lossy && !ntab_find(&names, basis)->used) {
			memcpy(e->sfn, basis, 11);
		} else {
			struct nslot *b = ntab_find(&bases, basis);
			uint32_t n = b->used ? b->v : 1;
			for (;; n++) {
				if (n > 999999) {
					log_node(LOG_LVL_ERROR, e->node, "%s",
						 "no free short name (~1 to ~999999 taken)");
					ret = -ENOSPC;
					goto out;
				}
				fat_name_tail(basis, n, e->sfn);
				if (!ntab_find(&names, e->sfn)->used)
					break;
			}
			ntab_put(&bases, basis, n + 1);
		}
		ntab_put(&names, e->sfn, 0);
		e->ntres = 0;
		e->nslots = (uint8_t)((e->nunits + 12) / 13);
	}
	ret = 0;
out:
	free(names.s);
	free(bases.s);
	return ret;
}

static int plan_dir(struct plan *p, const struct tree_node *node,
		    struct fdir *parent, struct fdir **out);

/* Decide what the child k of a directory becomes: fills e and returns 1,
 * returns 0 to skip it (warned), or -errno. */
static int plan_entry(struct plan *p, struct fdir *d, const struct tree_node *k,
		      struct fent *e)
{
	uint16_t units[FAT_LFN_MAX_UNITS];
	const struct tree_node *data = k;
	int n;

	n = fat_utf8_to_utf16(k->name, units, FAT_LFN_MAX_UNITS);
	if (n == -EILSEQ) {
		warn_skip(p, k, "name is not valid UTF-8");
		return 0;
	}
	if (n <= 0) {
		warn_skip(p, k, "name too long for FAT");
		return 0;
	}
	if (!lfn_ok(k->name)) {
		warn_skip(p, k, "name has characters FAT cannot store "
			  "(control characters or \\/:*?\"<>|)");
		return 0;
	}
	if (S_ISLNK(k->st.st_mode)) {
		/* FAT has no links: a link to a file inside the boot
		 * directory becomes a copy of that file. A link to a
		 * directory is not followed (loops, duplicated trees). */
		data = tree_lookup(p->t, k->parent, k->link);
		if (!data || !tree_is_under(data, p->top)) {
			warn_skip(p, k, "symlink leading outside the boot directory "
				  "or nowhere");
			return 0;
		}
		if (S_ISDIR(data->st.st_mode)) {
			warn_skip(p, k, "symlink to a directory");
			return 0;
		}
		if (!S_ISREG(data->st.st_mode)) {
			warn_skip(p, k, "symlink to a special file");
			return 0;
		}
	} else if (!S_ISREG(k->st.st_mode) && !S_ISDIR(k->st.st_mode)) {
		warn_skip(p, k, "special file (device, fifo or socket)");
		return 0;
	}

	/* Kept (mtools reads such names back exactly), but Windows and Linux
	 * vfat strip trailing dots and spaces when looking a name up. */
	size_t len = strlen(k->name);
	if (!p->quiet && (k->name[len - 1] == '.' || k->name[len - 1] == ' '))
		log_node(LOG_LVL_WARN, k, "%s", "name ends with a dot or a space: "
			 "Windows and Linux vfat cannot open it by that name");

	memset(e, 0, sizeof(*e));
	e->node = k;
	e->data = data;
	e->nunits = (uint16_t)n;
	e->is_short = fat_name_is_short(k->name, e->sfn, &e->ntres);
	if (S_ISDIR(data->st.st_mode)) {
		int ret = plan_dir(p, data, d, &e->sub);
		if (ret < 0)
			return ret;
		return 1;
	}
	uint64_t size = (uint64_t)data->st.st_size;
	if (size > FILE_MAX) {
		log_node(LOG_LVL_ERROR, k, "%.1f GiB: FAT32 cannot hold files of 4 GiB "
			 "or more", (double)size / (1024.0 * 1024 * 1024));
		return -EFBIG;
	}
	if (size > 0 && data->file == SRCFILE_NONE) {
		log_node(LOG_LVL_ERROR, k, "%s", "regular file without a source (internal)");
		return -EIO;
	}
	e->nclus = div_up32(size, p->cs);
	p->file_clusters += e->nclus;
	return 1;
}

/* Plan one directory table (node NULL: an empty root). */
static int plan_dir(struct plan *p, const struct tree_node *node,
		    struct fdir *parent, struct fdir **out)
{
	struct fdir *d = calloc(1, sizeof(*d));
	size_t nk = node ? node->nkids : 0;
	uint64_t slots;
	int ret;

	if (!d)
		return -ENOMEM;
	d->node = node;
	d->parent = parent;
	if (nk) {
		d->ents = calloc(nk, sizeof(*d->ents));
		if (!d->ents) {
			ret = -ENOMEM;
			goto out;
		}
	}
	/* The tree's kids are sorted bytewise: keeping their order keeps
	 * the table (and the cluster order) deterministic. */
	for (size_t i = 0; i < nk; i++) {
		ret = plan_entry(p, d, node->kids[i], &d->ents[d->n]);
		if (ret < 0)
			goto out;
		d->n += (size_t)ret;
	}
	ret = assign_short_names(p, d);
	if (ret < 0)
		goto out;

	/* Root: the volume label entry; others: "." and "..". */
	slots = parent ? 2 : 1;
	for (size_t i = 0; i < d->n; i++)
		slots += 1u + d->ents[i].nslots;
	if (slots > DIR_MAX_SLOTS) {
		if (node)
			log_node(LOG_LVL_ERROR, node, "%" PRIu64 " directory slots: a FAT "
				 "directory holds at most %u", slots, DIR_MAX_SLOTS);
		ret = -EFBIG;
		goto out;
	}
	d->slots = (uint32_t)slots;
	d->nclus = div_up32(slots * 32, p->cs);     /* >= 1: slots >= 1 */
	p->dir_clusters += d->nclus;
	ret = 0;
out:
	if (ret < 0)
		fdir_free(d);
	else
		*out = d;
	return ret;
}

static int plan_build(struct plan *p, const struct tree *t,
		      const struct tree_node *dir, uint32_t cs, bool quiet)
{
	memset(p, 0, sizeof(*p));
	p->t = t;
	p->top = dir;
	p->cs = cs;
	p->quiet = quiet;
	if (cs == 0 || cs % SECTOR)
		return -EINVAL;
	if (dir && !S_ISDIR(dir->st.st_mode))
		return -ENOTDIR;
	return plan_dir(p, dir, NULL, &p->root);
}

int fat32_clusters_needed(const struct tree *t, const struct tree_node *dir,
			  uint32_t cluster_size, uint64_t *clusters)
{
	struct plan p;
	int ret = plan_build(&p, t, dir, cluster_size, true);

	*clusters = ret < 0 ? 0 : p.dir_clusters + p.file_clusters;
	fdir_free(p.root);
	return ret;
}

/* --- cluster assignment -------------------------------------------------- */

/* Directory tables, pre-order: the root first, so it is cluster 2. */
static void assign_dirs(struct fdir *d, uint32_t *next)
{
	d->first = *next;
	*next += d->nclus;
	for (size_t i = 0; i < d->n; i++)
		if (d->ents[i].sub)
			assign_dirs(d->ents[i].sub, next);
}

static void assign_files(struct fdir *d, uint32_t *next)
{
	for (size_t i = 0; i < d->n; i++) {
		struct fent *e = &d->ents[i];
		if (e->sub) {
			e->first = e->sub->first;
			assign_files(e->sub, next);
		} else if (e->nclus) {
			e->first = *next;
			*next += e->nclus;
		}
	}
}

/* --- emitting ------------------------------------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: proleptic Gregorian, no libc, no TZ. */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

struct fat_stamp {
	uint16_t date, time;
	uint8_t tenth;
};

/* A UTC timestamp for seconds since the epoch: clamped to clamp (when >= 0)
 * and to FAT's range 1980-01-01 00:00:00 .. 2107-12-31 23:59:58. */
static struct fat_stamp fat_stamp(int64_t s, long ns, int64_t clamp)
{
	const int64_t lo = days_from_civil(1980, 1, 1) * 86400;
	const int64_t hi = days_from_civil(2107, 12, 31) * 86400 + 86398;
	struct fat_stamp st;
	int y;
	unsigned mo, d;

	if (clamp >= 0 && (s > clamp || (s == clamp && ns > 0))) {
		s = clamp;
		ns = 0;
	}
	if (s < lo) {
		s = lo;
		ns = 0;
	}
	if (s > hi) {
		s = hi;
		ns = 0;
	}
	int64_t days = s / 86400, sec = s % 86400;     /* s >= lo > 0 */
	civil_from_days(days, &y, &mo, &d);
	st.date = (uint16_t)(((y - 1980) << 9) | (mo << 5) | d);
	st.time = (uint16_t)(((sec / 3600) << 11) | (((sec / 60) % 60) << 5) |
			     ((sec % 60) / 2));
	st.tenth = (uint8_t)((sec % 2) * 100 + (ns > 0 ? ns / 10000000 : 0));
	return st;
}

static struct fat_stamp node_stamp(const struct tree_node *n, int64_t clamp)
{
	if (!n)
		return fat_stamp(clamp >= 0 ? clamp : 0, 0, clamp);
	return fat_stamp(n->st.st_mtim.tv_sec, n->st.st_mtim.tv_nsec, clamp);
}

static void put_dirent(uint8_t *slot, const uint8_t name[11], uint8_t attr,
		       uint8_t ntres, uint32_t clus, uint32_t size,
		       struct fat_stamp ts)
{
	struct fat_dirent de;

	memset(&de, 0, sizeof(de));
	memcpy(de.name, name, 11);
	if (de.name[0] == 0xE5)
		de.name[0] = 0x05;      /* 0xE5 would mark the entry deleted */
	de.attr = attr;
	de.ntres = ntres;
	de.crt_tenth = ts.tenth;
	de.crt_time = htole16(ts.time);
	de.crt_date = htole16(ts.date);
	de.acc_date = htole16(ts.date);
	de.clus_hi = htole16((uint16_t)(clus >> 16));
	de.wrt_time = htole16(ts.time);
	de.wrt_date = htole16(ts.date);
	de.clus_lo = htole16((uint16_t)(clus & 0xFFFF));
	de.size = htole32(size);
	memcpy(slot, &de, sizeof(de));
}

struct emit {
	const struct plan *p;
	const struct fat32_opts *o;
	const uint8_t *label;
	uint32_t *fat;                  /* entries 0 .. used+1, host order */
	uint8_t *dirs;                  /* every directory table */
	uint32_t dir_first;             /* cluster of dirs[0] (2) */
	uint64_t data_start;            /* disk offset of cluster 2 */
	struct regions *out;
};

/* Chain clusters first .. first+n-1; each cluster exactly once. */
static void chain(uint32_t *fat, uint32_t first, uint32_t n)
{
	for (uint32_t c = first; c < first + n; c++) {
		assert(fat[c] == 0);
		fat[c] = c + 1 == first + n ? FAT_EOC : c + 1;
	}
}

static int emit_dir(struct emit *m, const struct fdir *d)
{
	const int64_t clamp = m->o->clamp_time;
	uint8_t *tab = m->dirs + (uint64_t)(d->first - m->dir_first) * m->p->cs;
	uint8_t *slot = tab;
	uint16_t units[FAT_LFN_MAX_UNITS];
	uint8_t lfn[FAT_LFN_SLOTS_MAX][32];
	struct fat_stamp ts = node_stamp(d->node, clamp);
	int ret;

	chain(m->fat, d->first, d->nclus);
	if (d->parent) {
		static const uint8_t dot[11] = ".          ", dotdot[11] = "..         ";
		/* ".." of a child of the root says 0, not 2: the spec's rule,
		 * and what fsck.fat checks. */
		uint32_t up = d->parent->parent ? d->parent->first : 0;
		put_dirent(slot, dot, ATTR_DIR, 0, d->first, 0, ts);
		put_dirent(slot + 32, dotdot, ATTR_DIR, 0, up, 0,
			   node_stamp(d->parent->node, clamp));
		slot += 64;
	} else {
		put_dirent(slot, m->label, ATTR_VOLUME, 0, 0, 0, ts);
		slot += 32;
	}
	for (size_t i = 0; i < d->n; i++) {
		const struct fent *e = &d->ents[i];
		const struct tree_node *src = e->data;
		uint8_t attr = e->sub ? ATTR_DIR : ATTR_ARCH;
		uint32_t size = e->sub ? 0 : (uint32_t)src->st.st_size;

		if (!(src->st.st_mode & S_IWUSR))
			attr |= ATTR_RO;    /* what Linux vfat maps to mode a-w */
		if (e->nslots) {
			int n = fat_utf8_to_utf16(e->node->name, units, FAT_LFN_MAX_UNITS);
			assert(n == e->nunits);
			ret = fat_lfn_encode(units, n, fat_lfn_checksum(e->sfn), lfn);
			assert(ret == e->nslots);
			memcpy(slot, lfn, (size_t)e->nslots * 32);
			slot += (size_t)e->nslots * 32;
		}
		put_dirent(slot, e->sfn, attr, e->ntres, e->first, size,
			   node_stamp(src, clamp));
		slot += 32;
		if (!e->sub && e->nclus) {
			chain(m->fat, e->first, e->nclus);
			ret = regions_add_file(m->out, m->data_start +
					       (uint64_t)(e->first - 2) * m->p->cs,
					       size, src->file, 0, RW_FAT_FILE);
			if (ret < 0)
				return ret;
		}
	}
	/* The slot count planned is the slot count written. */
	assert(slot == tab + (size_t)d->slots * 32);
	for (size_t i = 0; i < d->n; i++)
		if (d->ents[i].sub) {
			ret = emit_dir(m, d->ents[i].sub);
			if (ret < 0)
				return ret;
		}
	return 0;
}

/* The label: upper case, 11 bytes space padded; characters a short name
 * cannot hold become '_'. NULL or empty: "BOOT". */
static void make_label(const char *label, uint8_t out[11])
{
	const unsigned char *s = (const unsigned char *)(label && *label ? label : "BOOT");
	size_t o = 0;

	memset(out, ' ', 11);
	for (; *s; s++) {
		unsigned char c = *s;
		if (c >= 0x80 && c < 0xC0)
			continue;       /* UTF-8 continuation: one '_' per character */
		if (o == 11) {
			log_warn("FAT label \"%s\" cut to 11 characters", label);
			break;
		}
		if (c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			   c == ' ' || strchr("!#$%&'()-@^_`{}~", c)))
			c = '_';
		out[o++] = c;
	}
	if (out[0] == 0xE5)
		out[0] = 0x05;
}

static void fill_boot(uint8_t *buf, const struct fat32_geom *g,
		      const struct fat32_opts *o, const uint8_t label[11],
		      uint32_t used)
{
	struct fat_boot bs;
	struct fat_fsinfo fi;
	/* At the jump target: int 18h (no bootable OS), then hlt forever. */
	static const uint8_t code[] = { 0xCD, 0x18, 0xF4, 0xEB, 0xFD };

	memset(&bs, 0, sizeof(bs));
	bs.jmp[0] = 0xEB;
	bs.jmp[1] = 0x58;
	bs.jmp[2] = 0x90;
	memcpy(bs.oem, "MSWIN4.1", 8);  /* the spec's most compatible value */
	bs.bytes_per_sec = htole16(SECTOR);
	bs.sec_per_clus = (uint8_t)g->sectors_per_cluster;
	bs.rsvd_sec = htole16((uint16_t)g->reserved_sectors);
	bs.num_fats = 2;
	bs.media = FAT_MEDIA;
	bs.sec_per_trk = htole16(63);
	bs.num_heads = htole16(255);
	bs.hidd_sec = htole32((uint32_t)(o->part_start / SECTOR));
	bs.tot_sec32 = htole32(g->total_sectors);
	bs.fat_sz32 = htole32(g->fat_sectors);
	bs.root_clus = htole32(2);
	bs.fs_info = htole16(FSINFO_SECTOR);
	bs.bk_boot_sec = htole16(BACKUP_SECTOR);
	bs.drv_num = 0x80;
	bs.boot_sig = 0x29;
	bs.vol_id = htole32(o->volume_id);
	memcpy(bs.vol_lab, label, 11);
	memcpy(bs.fil_sys_type, "FAT32   ", 8);
	memcpy(bs.boot_code, code, sizeof(code));
	bs.sig[0] = 0x55;
	bs.sig[1] = 0xAA;
	memcpy(buf, &bs, SECTOR);

	memset(&fi, 0, sizeof(fi));
	fi.lead_sig = htole32(0x41615252);
	fi.struc_sig = htole32(0x61417272);
	fi.free_count = htole32(g->clusters - used);
	fi.nxt_free = htole32(used < g->clusters ? 2 + used : 0xFFFFFFFFu);
	fi.trail_sig = htole32(0xAA550000);
	memcpy(buf + SECTOR, &fi, SECTOR);
}

/* Smallest partition, in MiB, whose geometry holds the content: the
 * cluster size depends on the partition size, so re-plan per size class. */
static uint64_t mib_needed(const struct tree *t, const struct tree_node *dir)
{
	uint64_t mib = 33;     /* below that FAT32 has too few clusters */

	for (int iter = 0; iter < 100000; iter++) {
		struct fat32_geom g;
		uint64_t need;
		if (fat32_geometry(mib << 20, &g) < 0 ||
		    fat32_clusters_needed(t, dir, g.sectors_per_cluster * SECTOR,
					  &need) < 0)
			return 0;
		if (need <= g.clusters)
			return mib;
		/* Grow by what is missing (plus the FAT it needs), at least 1 MiB. */
		uint64_t more = (need - g.clusters) * (g.sectors_per_cluster * SECTOR + 8);
		mib += (more >> 20) + 1;
	}
	return 0;
}

int fat32_build(const struct tree *t, const struct tree_node *dir,
		const struct fat32_opts *opts, struct regions *out)
{
	struct fat32_geom g;
	struct plan p = { 0 };
	struct emit m = { 0 };
	uint8_t label[11];
	uint8_t *boot = NULL, *bootb, *fat, *dirs;
	uint64_t used64;
	uint32_t next, used, cs;
	int ret;

	ret = fat32_geometry(opts->part_size, &g);
	if (ret < 0) {
		log_error("boot partition of %" PRIu64 " bytes: %s (FAT32 needs at "
			  "least %u clusters, 33 MiB; use --boot-size)", opts->part_size,
			  ret == -ENOSPC ? "too small" : "too large", FAT32_MIN_CLUSTERS);
		goto out;
	}
	if (opts->part_start % SECTOR || opts->part_start / SECTOR > UINT32_MAX) {
		log_error("boot partition start %" PRIu64 " is not a usable sector",
			  opts->part_start);
		ret = -EINVAL;
		goto out;
	}
	cs = g.sectors_per_cluster * SECTOR;
	ret = plan_build(&p, t, dir, cs, false);
	if (ret < 0)
		goto out;
	used64 = p.dir_clusters + p.file_clusters;
	if (used64 > g.clusters) {
		uint64_t mib = mib_needed(t, dir);
		char *path = dir ? tree_path(dir) : NULL;
		log_error("%s: the boot files need %" PRIu64 " MiB of clusters but the "
			  "%" PRIu64 " MiB FAT32 partition has %" PRIu64 " MiB; use "
			  "--boot-size %" PRIu64 "M or more", path ? path : "boot",
			  (used64 * cs + (1 << 20) - 1) >> 20, opts->part_size >> 20,
			  ((uint64_t)g.clusters * cs) >> 20, mib);
		free(path);
		ret = -ENOSPC;
		goto out;
	}
	used = (uint32_t)used64;

	/* Every chain contiguous: directory tables from cluster 2, then file
	 * data; every used cluster handed out exactly once, in order. */
	next = 2;
	assign_dirs(p.root, &next);
	assert(p.root->first == 2 && next - 2 == p.dir_clusters);
	assign_files(p.root, &next);
	assert(next - 2 == used);
	assert(g.data_start + (uint64_t)used * cs <= (uint64_t)g.total_sectors * SECTOR);

	make_label(opts->label, label);
	m.p = &p;
	m.o = opts;
	m.label = label;
	m.data_start = opts->part_start + g.data_start;
	m.dir_first = 2;
	m.out = out;
	ret = -ENOMEM;
	m.fat = calloc((size_t)used + 2, sizeof(uint32_t));
	m.dirs = calloc(p.dir_clusters, cs);
	if (!m.fat || !m.dirs)
		goto out;
	m.fat[0] = 0x0FFFFF00u | FAT_MEDIA;
	m.fat[1] = 0x0FFFFFFFu;
	ret = emit_dir(&m, p.root);
	if (ret < 0)
		goto out;
	for (uint32_t c = 2; c < used + 2; c++) {
		assert(m.fat[c] != 0);  /* every cluster assigned */
		m.fat[c] = htole32(m.fat[c]);
	}
	m.fat[0] = htole32(m.fat[0]);
	m.fat[1] = htole32(m.fat[1]);

	ret = -ENOMEM;
	boot = malloc(2 * SECTOR);
	if (!boot)
		goto out;
	fill_boot(boot, &g, opts, label, used);

	/* Hand the buffers to the map: from here on it frees them (and
	 * regions_own frees a buffer it could not take). */
	fat = regions_own(out, m.fat);
	m.fat = NULL;
	if (!fat)
		goto out;
	dirs = regions_own(out, m.dirs);
	m.dirs = NULL;
	if (!dirs)
		goto out;
	bootb = regions_own(out, boot);
	boot = NULL;
	if (!bootb)
		goto out;

	uint64_t ps = opts->part_start;
	uint64_t fat1 = ps + (uint64_t)g.reserved_sectors * SECTOR;
	uint64_t fat2 = fat1 + (uint64_t)g.fat_sectors * SECTOR;
	uint64_t fatlen = ((uint64_t)used + 2) * 4;
	assert(fatlen <= (uint64_t)g.fat_sectors * SECTOR);
	if ((ret = regions_add_mem(out, ps, 2 * SECTOR, bootb, RW_FAT_BOOT)) < 0 ||
	    (ret = regions_add_mem(out, ps + BACKUP_SECTOR * SECTOR, 2 * SECTOR,
				   bootb, RW_FAT_BACKUP)) < 0 ||
	    (ret = regions_add_mem(out, fat1, fatlen, fat, RW_FAT_TABLE1)) < 0 ||
	    (ret = regions_add_mem(out, fat2, fatlen, fat, RW_FAT_TABLE2)) < 0 ||
	    (ret = regions_add_mem(out, m.data_start, p.dir_clusters * cs, dirs,
				   RW_FAT_DIRS)) < 0)
		goto out;
	/* Data: everything up to the last used cluster (the used clusters are
	 * 2..used+1, contiguous), the whole of both FATs included: a zero
	 * entry means "free". The free clusters after it are holes. */
	if (opts->holes &&
	    (ret = holes_add_data(opts->holes, ps, g.data_start + (uint64_t)used * cs)) < 0)
		goto out;
	log_debug("FAT32: %u sectors/cluster, %u clusters, %u used (%" PRIu64
		  " directory), FAT %u sectors", g.sectors_per_cluster, g.clusters,
		  used, p.dir_clusters, g.fat_sectors);
	ret = 0;
out:
	free(m.fat);
	free(m.dirs);
	free(boot);
	fdir_free(p.root);
	return ret;
}
