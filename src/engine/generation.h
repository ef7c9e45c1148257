/* generation.h - the engine's state behind the opaque types of rpifs.h.
 *
 * Private to src/engine. Each field says what guards it: "immutable" (set
 * before the engine serves, or when the generation is made, never written
 * again), "lock" (struct rpifs.lock), or how it guards itself.
 */
#ifndef RPIFS_GENERATION_H
#define RPIFS_GENERATION_H

#include <pthread.h>
#include <stdbool.h>
#include "devtable.h"
#include "image.h"
#include "overlay.h"
#include "rpifs.h"

/* The part of o that image.h takes (the defaults stay in rpifs_opts_init). */
void image_opts_from(struct image_opts *io, const struct rpifs_opts *o);

struct rpifs_gen {
	struct rpifs *r;            /* immutable: its engine */
	struct image img;           /* immutable; unused (zero) in a private handle */
	unsigned id;                /* immutable */
	/* Immutable. A private handle (rpifs_gen_open_private) is a generation
	 * of its own that serves base's image (holding a reference on base)
	 * through its own overlay; NULL in a generation proper. */
	struct rpifs_gen *base;
	/* Locks itself. The pointer is set when the generation is made; a
	 * refresh (under lock, with no handle open, so with no reader of it)
	 * moves it to the next generation and leaves NULL here. */
	struct overlay *ov;
	/* disk.img.bmap (bmap.c), made on demand; bmap_lock guards them. */
	pthread_mutex_t bmap_lock;
	char *bmap;                 /* the text, NULL until asked for */
	size_t bmap_len;
	uint64_t bmap_version;      /* overlay_version() it was made for */
	bool bmap_summed;           /* its checksums are filled in */
	unsigned refs;              /* lock: open handles and gets, +1 while current */
	struct rpifs_gen *next;     /* lock: the engine's list of live generations */
};

struct rpifs {
	struct rpifs_opts o;        /* immutable (its strings are the caller's) */
	struct image_opts io;       /* immutable: o's layout part, for image.h */
	struct rpifs_idmap *idmap_owned; /* o.idmap when loaded from ROOTFS.rpifs/idmap */
	struct devtable devices;    /* o.devices, read once (n == 0: none) */
	struct tree scan;           /* rpifs_new -> rpifs_build only (run alone) */
	bool scanned;               /* the same: scan still holds the tree */
	bool boot_detected;         /* o.boot_dir from rpifs_boot_dir(): say so at rpifs_build() */
	rpifs_invalidate_fn inval;  /* immutable once serving (set alone) */
	void *inval_ctx;            /* the same */
	bool splice_unsupported;    /* atomic: a source refused splice, once */

	pthread_mutex_t lock;
	struct rpifs_gen *cur;      /* lock: the generation an open gets */
	struct rpifs_gen *live;     /* lock: every generation not yet freed */
	unsigned open_handles;      /* lock: between rpifs_gen_open and _close */
	bool pinned_notice;         /* lock: the "overlay pins" notice was given */
};

#endif
