/* build_archive.h - unpack archives without letting them out of the target.
 *
 * Reads what libarchive reads (tar with any compression, zip, cpio...) and
 * Debian packages: a .deb is an `ar` archive holding data.tar.*, read by a
 * second libarchive reader nested on the first.
 *
 * Every path is resolved inside the target directory as if it were "/":
 * symlinks already in the target are followed but cannot lead out (an
 * absolute target restarts at the target, ".." stops there), so usrmerge's
 * "lib -> usr/lib" keeps working. Refused, with the entry named: absolute
 * entry paths, ".." components, and symlinks whose relative target climbs
 * above the target. libarchive's own ARCHIVE_EXTRACT_SECURE_SYMLINKS is not
 * used: it replaces such directory symlinks by directories.
 * Owners are the archive's numeric ids (applied when running as root),
 * never names looked up in the host's passwd.
 */
#ifndef RPIFS_BUILD_ARCHIVE_H
#define RPIFS_BUILD_ARCHIVE_H

#include <stdbool.h>

/* Unpack archive into the existing directory root. 0 or -errno; a refused
 * entry gives -EPERM. Errors are reported, naming the archive and entry.
 * On failure root may hold part of the archive: unpack into a scratch
 * directory and move the result into place. */
int build_archive_extract(const char *archive, const char *root);

/* open(2) path inside the directory rootfd, resolving symlinks as if
 * rootfd were "/". Returns an fd or -errno. */
int build_archive_root_open(int rootfd, const char *path, int flags);

#endif
