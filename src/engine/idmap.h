/* idmap.h - host ids to image ids, for trees made in a user namespace.
 *
 * A tree built by an ordinary user in a user namespace (mmdebstrap
 * --mode=unshare, podman unshare, buildah) holds host ids: root inside is
 * the first subordinate id (e.g. 100000). The image must show the ids the
 * namespace saw. An id map is a list of ranges HOST:IMAGE:COUNT, as in
 * /proc/PID/uid_map read from outside (host first); the same map applies
 * to user and group ids, as mmdebstrap and podman map both alike.
 *
 * Ids live in three places: the owner (st_uid, st_gid), POSIX ACLs
 * (system.posix_acl_access/default: named users and groups) and
 * namespaced file capabilities (security.capability v3: the root id the
 * capabilities are for). The scan translates all three (tree.c), so
 * everything after it (sizes, digest, ext4) sees image ids only.
 *
 * An empty map is the identity. With a map, an id outside every range has
 * no image id: the caller refuses it, naming the file.
 */
#ifndef RPIFS_IDMAP_H
#define RPIFS_IDMAP_H

#include <stddef.h>
#include <stdint.h>
#include "rpifs.h"

/* Parse "HOST:IMAGE:COUNT" (decimal). 0, or -EINVAL (syntax, COUNT 0) or
 * -ERANGE (a range that passes 2^32 - 1). */
int idmap_parse(const char *s, struct rpifs_idmap *out);

/* 0 if no two ranges overlap on the host side (a host id with two image
 * ids), else -EINVAL with *a, *b the indexes of an overlapping pair. The
 * image side may overlap: several host ids can show as one image id (the
 * building user's own files, 1000:0:1, as root beside the namespace's
 * root, 100000:0:65536). */
int idmap_check(const struct rpifs_idmap *m, size_t n, size_t *a, size_t *b);

/* The image id of host id `host`: 0, or -ERANGE when no range holds it.
 * n == 0: the identity. */
int idmap_map(const struct rpifs_idmap *m, size_t n, uint32_t host, uint32_t *image);

/* Translate the ids inside attribute `name`'s value in place: POSIX ACL
 * entries of named users and groups; a v3 file capability's root id, and a
 * v3 capability whose root id maps to image root becomes the v2 form
 * (20 bytes: *len shrinks), which is what the image's root sees with no
 * user namespace. Other attributes are left alone. 0, -ERANGE (an id
 * outside the map; *bad is set to it) or -EINVAL (a malformed value). */
int idmap_xattr(const struct rpifs_idmap *m, size_t n, const char *name,
		void *value, size_t *len, uint32_t *bad);

/* Read the id map the build left next to the tree (ROOTFS.rpifs/idmap, one
 * HOST:IMAGE:COUNT per line, '#' comments): *m (malloc'd, caller frees)
 * and *n, both 0/NULL when there is no such file. 0 or -errno, logged
 * naming the file and line. */
int idmap_load(const char *rootfs, struct rpifs_idmap **m, size_t *n);

#endif
