/* build_userns.h - `rpifs build rootfs` as an ordinary user.
 *
 * mmdebstrap --mode=unshare builds the tree in a user namespace whose root
 * is the user's first subordinate id (/etc/subuid, /etc/subgid): on the
 * host, every file of the tree is owned by SUB + the namespace's id. The
 * steps after the bootstrap (fstab, hostname, getty, root's password, the
 * rename into place, removing an old tree) need that namespace's root too,
 * also on a later run that only changes the hostname. Rather than hooks
 * inside mmdebstrap (which cover only the run that bootstraps), rpifs
 * enters a namespace of its own with the same map, plus the user's own id
 * (so its root may also rename into and remove from the user's
 * directories), and runs the same C code the root build runs there.
 *
 * The map the image needs travels with the tree as ROOTFS.rpifs/idmap
 * (see src/engine/idmap.h), which the mount reads by itself.
 */
#ifndef RPIFS_BUILD_USERNS_H
#define RPIFS_BUILD_USERNS_H

#include <stdint.h>
#include <sys/types.h>

struct build_userns {
	char *user;                 /* the name /etc/subuid lists */
	uid_t uid;
	gid_t gid;
	uint32_t sub;               /* first subordinate id: root inside */
	uint32_t count;             /* the same range in /etc/subuid and /etc/subgid */
};

/* Fill u from the user's first /etc/subuid and /etc/subgid ranges; quiet.
 * 0, -ENOENT (no range) or -EINVAL (the two differ, or less than 65536). */
int build_userns_lookup(struct build_userns *u);
void build_userns_free(struct build_userns *u);

/* Before anything is created: everything an unprivileged build needs
 * (mmdebstrap, arch-test, newuidmap/newgidmap, a subordinate range, user
 * namespaces, qemu-aarch64 in binfmt_misc, a way through DIR and the
 * directories above it for the namespace's root, which is "others" to the
 * host; what rpifs creates below DIR it makes 0755). Each missing piece is
 * logged with what to run; the range found is left in u. 0 or -EPERM. */
int build_userns_check(struct build_userns *u, const char *dir);

/* Run fn(arg) in a fresh user namespace as its root: ids 0..count-1 are
 * the subordinate range, id `count` is the user. newuidmap/newgidmap's
 * output goes to log_fd (-1: discarded). As root, fn runs directly. fn's
 * -errno result is returned (through the child's exit status). */
int build_userns_call(const struct build_userns *u, int log_fd, int (*fn)(void *arg),
		      void *arg);

/* Before the kernel, firmware or config stage writes into a tree made in
 * a user namespace (ROOTFS.rpifs/idmap), as the user who made it: a
 * subordinate range, newuidmap/newgidmap, user namespaces, the same range
 * as the idmap's (another user's tree is refused), and, once the tree
 * exists, no directory below ROOTFS/boot or ROOTFS/lib/modules owned by
 * an id the namespace does not map (what `sudo rpifs build ...` left: its
 * root could not write there). With rootfs: the rootfs stage checks the
 * first four itself. Each problem logged with what to run. 0 or -EPERM. */
struct build_opts;
int build_userns_check_stages(const struct build_opts *o);

/* fn(arg) as the tree's owner: directly as root or for a tree with real
 * owners; else in the user's namespace (build_userns_call), so what fn
 * creates belongs to the namespace's root, as the rest of the tree. */
int build_userns_as_owner(const struct build_opts *o, int log_fd, int (*fn)(void *arg),
			  void *arg);

/* rm -rf of a tree made in the namespace (build_fs_remove_tree inside it). */
int build_userns_remove_tree(const struct build_userns *u, const char *path);

/* ROOTFS.rpifs/idmap for the tree: SUB:0:COUNT (the namespace), UID:0:1
 * and GID:0:1 (what the user writes outside it), 0:0:1 (what root writes:
 * `sudo rpifs build kernel` into such a tree). 0 or -errno (logged). */
int build_userns_write_idmap(const struct build_userns *u, const char *state_dir);

#endif
