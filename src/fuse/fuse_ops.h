/* fuse_ops.h - the FUSE server: a directory holding one file, disk.img. */
#ifndef RPIFS_FUSE_OPS_H
#define RPIFS_FUSE_OPS_H

#include <stdbool.h>
#include "rpifs.h"

struct serve_opts {
	const char *mnt;
	bool foreground;
	bool debug;
	bool single_thread;
	const char *fuse_opts;      /* comma-separated -o options, or NULL */
	unsigned max_threads;       /* 0: default */
	const struct rpifs_opts *engine;  /* read_only, overlay, rootfs: as r was made */
};

/* Mount the engine r (generation 1 built) at o->mnt and serve disk.img
 * until unmounted or signalled. r stays the caller's (rpifs_free after).
 * Returns the process exit status. */
int fuse_serve(struct rpifs *r, const struct serve_opts *o);

#endif
