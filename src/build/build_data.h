/* build_data.h - find the data files rpifs ships (data/ in the source tree,
 * DATADIR/rpifs once installed): kernel config fragments, board profiles.
 *
 * Looked up in $RPIFS_DATADIR, then the source tree's data/ when the
 * running binary is the one in the build tree, then the install location.
 */
#ifndef RPIFS_BUILD_DATA_H
#define RPIFS_BUILD_DATA_H

/* Path of NAME ("rpi3-minimal.config", "boards/rpi3.conf"). 0 or -ENOENT
 * (*searched then lists where it looked; free both). */
int build_data_find(const char *name, char **path, char **searched);

#endif
