/* build_fs.h - small file and path helpers for `rpifs build`.
 *
 * Everything the build stages write into ROOTFS goes through
 * build_fs_write_atomic()/build_fs_copy_atomic(): the file appears complete
 * or not at all, and a symlink at the destination is replaced, never
 * followed.
 */
#ifndef RPIFS_BUILD_FS_H
#define RPIFS_BUILD_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* mkdir -p. 0 or -errno. */
int build_fs_mkdir_p(const char *path, mode_t mode);
/* The whole file, NUL-terminated (*len without the NUL). 0 or -errno. */
int build_fs_read(const char *path, char **out, size_t *len);
/* Write data to path.tmp, fsync, rename over path. 0 or -errno. */
int build_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Copy the regular file src (opened with O_NOFOLLOW when nofollow) to dst
 * atomically. 0 or -errno. */
int build_fs_copy_atomic(const char *src, const char *dst, mode_t mode, bool nofollow);
/* Copy from an open fd (its current offset is ignored). */
int build_fs_copy_fd_atomic(int in, const char *dst, mode_t mode);
/* rm -rf that never leaves the file system it starts on and never follows
 * symlinks; detaches mounts found below path first. Refuses "/". */
int build_fs_remove_tree(const char *path);
/* Move every entry below from into to by rename(2): a directory that
 * exists in both (reached through a symlink too, as a merged /usr's
 * lib -> usr/lib) is merged, anything else replaced; a non-directory over
 * a real directory is refused (-EISDIR), so is a directory over a
 * non-directory (-ENOTDIR). from and to on one file system. The failing
 * path is logged. 0 or -errno. */
int build_fs_move_in(const char *from, const char *to);
/* lchown(uid, gid) of path and everything below it (no symlink followed,
 * this file system only). 0 or -errno. */
int build_fs_chown_tree(const char *path, uid_t uid, gid_t gid);
/* Lazily unmount everything mounted at or below path (deepest first). */
int build_fs_unmount_below(const char *path);

bool build_fs_exists(const char *path);           /* lstat succeeds */
bool build_fs_is_dir(const char *path);           /* stat: a directory */
bool build_fs_is_nonempty_file(const char *path); /* stat: regular, size > 0 */
bool build_fs_dir_is_empty(const char *path);     /* exists, no entries */

/* Find prog in PATH (or check it when it contains a '/'). */
bool build_fs_have_program(const char *prog);

/* realpath() of a path that may not exist yet: the parent must exist. */
int build_fs_abspath(const char *path, char **out);

#endif
