/* qemu_nbd.h - `rpifs qemu --nbd`: the SD card served by nbdkit (the rpifs
 * plugin) on a Unix socket instead of a FUSE mount. */
#ifndef RPIFS_QEMU_NBD_H
#define RPIFS_QEMU_NBD_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

struct qemu_nbd {
	pid_t pid;                  /* the nbdkit server, 0 when not running */
	char dir[64];               /* private directory: the socket, the pidfile */
	char sock[PATH_MAX];
	char uri[PATH_MAX + 64];    /* nbd+unix:///disk?socket=SOCK */
};

/* Can FUSE mount here? false (and why, in *why) when /dev/fuse is missing
 * or not usable by this user: `rpifs qemu` then serves over NBD. */
bool qemu_fuse_usable(const char **why);

/* Start nbdkit serving ROOTFS (the plugin's KEY=VALUE keys, NULL-terminated,
 * at most QEMU_NBD_MAX_KEYS; overlay= when not NULL) on a socket in a new
 * private directory; returns once it accepts connections. dry: only print
 * the command (n->uri names a placeholder socket). 0 or -errno, with a
 * message. */
#define QEMU_NBD_MAX_KEYS 32
int qemu_nbd_start(struct qemu_nbd *n, const char *rootfs, char *const *keys,
		   const char *overlay, bool dry);
/* Stop the server and remove its directory. */
void qemu_nbd_stop(struct qemu_nbd *n);

#endif
