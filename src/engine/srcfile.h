/* srcfile.h - the table of source files whose bytes the image serves.
 *
 * Each regular file of the tree that carries data gets an id. Reads open the
 * file relative to the tree's root fd, never following a symlink in any
 * component (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS where the kernel has
 * it, O_NOFOLLOW per component otherwise), and check the opened file against
 * the identity recorded at scan time (st_dev, st_ino). A file that changed
 * size is clipped or zero-padded to the recorded size, with one log line: a
 * read never comes back short.
 *
 * Thread model: the table is filled single-threaded before serving and is
 * immutable afterwards; srcfiles_pread() may be called from any thread (the
 * fd cache inside has its own lock).
 */
#ifndef RPIFS_SRCFILE_H
#define RPIFS_SRCFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/stat.h>

#define SRCFILE_NONE UINT32_MAX

struct tree_node;

/* A source file is its node in the scanned tree (tree.h): the identity and
 * times recorded at scan time are the node's st (st_dev, st_ino, st_size:
 * the size served, st_mtim, st_ctim, st_btime), its path is rebuilt from
 * the node's parents when the file is opened, and tree_node.warned says a
 * change has been logged once. */
struct srcfiles {
	int root_fd;        /* O_PATH|O_DIRECTORY fd of the tree root, owned */
	struct tree_node **v; /* id -> node; sized once (srcfiles_reserve) */
	size_t n, cap;
	struct fdcache *cache;
};

/* root_fd is taken over (closed by srcfiles_free). */
int srcfiles_init(struct srcfiles *sf, int root_fd);
void srcfiles_free(struct srcfiles *sf);
/* Room for n files in all, exactly (the scan knows the count). */
int srcfiles_reserve(struct srcfiles *sf, size_t n);
/* Register the regular file of node n, which must outlive sf: n->file
 * receives its id. Past the reserved room the table grows. */
int srcfiles_add(struct srcfiles *sf, struct tree_node *n);
/* fstatat(dirfd, name, st, flags) and the birth time in one statx() call;
 * *btime is {0,0} where the filesystem does not record it. 0 or -errno. */
int srcfile_stat(int dirfd, const char *name, int flags, struct stat *st,
		 struct timespec *btime);
/* Open relpath (relative, "." for the root itself) below root_fd with
 * flags, never following a symlink in any component and never leaving the
 * root: openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or O_NOFOLLOW component
 * by component where the kernel lacks openat2 or the path exceeds PATH_MAX.
 * O_NOFOLLOW, O_CLOEXEC and (unless O_PATH, and where permitted) O_NOATIME
 * are added. The fd or -errno. */
int srcfile_open_beneath(int root_fd, const char *relpath, int flags);
/* Do records a and b (of two scans) name the same file with the same
 * bytes, as far as a stat tells: device, inode, birth time, size, mtime
 * and ctime (which any write moves). */
bool srcfile_same(const struct tree_node *a, const struct tree_node *b);
/* Open file id read-only below the root, following no symlink, and check
 * that it is still the file that was registered (a regular file with the
 * same device, inode and birth time). The fd, with its current stat in *st,
 * or -errno: -ESTALE when another file stands there now. */
int srcfiles_open(const struct srcfiles *sf, uint32_t id, struct stat *st);
/* Read exactly len bytes at off of file id into buf. Bytes past the recorded
 * size, or past the current end of a file that shrank, read as zeros.
 * A file that vanished, cannot be opened, or is no longer the file that was
 * scanned reads as zeros (logged once per file) and 0 is returned: the disk
 * must stay readable. Returns -errno only for an I/O error of the source. */
int srcfiles_pread(struct srcfiles *sf, uint32_t id, void *buf, size_t len,
		   uint64_t off);
/* The same bytes as srcfiles_pread(), put into the pipe pipe_w (whose
 * write end is non-blocking) without copying them: spliced from the file's
 * page cache, zeros where srcfiles_pread() has zeros. Always exactly len
 * bytes on success. -EOPNOTSUPP (nothing written) where the source's
 * filesystem cannot splice, -EAGAIN when the pipe ran out of room: copy
 * instead. After any other error the pipe holds an unknown part and must be
 * dropped. */
int srcfiles_splice(struct srcfiles *sf, uint32_t id, uint64_t off, size_t len,
		    int pipe_w);

#endif
