/* fuse_ops.h - the FUSE server: a directory holding one file, disk.img. */
#ifndef RPIFS_FUSE_OPS_H
#define RPIFS_FUSE_OPS_H

#include <stdbool.h>
#include "image.h"

struct serve_opts {
	const char *mnt;
	bool foreground;
	bool debug;
	bool single_thread;
	const char *fuse_opts;      /* comma-separated -o options, or NULL */
	unsigned max_threads;       /* 0: default */
	bool read_only;             /* writes fail with EROFS */
	const char *overlay;        /* persistent overlay file, or NULL: memory */
	bool overlay_reset;         /* discard the persistent overlay's blocks */
	const struct image_opts *image;  /* to build later generations */
};

/* Mount img (taken over) at o->mnt and serve it until unmounted or
 * signalled. Returns the process exit status. */
int fuse_serve(struct image *img, const struct serve_opts *o);

#endif
