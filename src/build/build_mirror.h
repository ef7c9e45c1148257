/* build_mirror.h - the Debian archive the host's apt configuration uses.
 *
 * rpifs never names an archive host itself: by default it uses the first
 * Debian archive in /etc/apt/sources.list, then /etc/apt/sources.list.d/
 * (*.list one-line entries, *.sources deb822 stanzas), as apt reads them.
 * $RPIFS_APT_DIR replaces /etc/apt (tests, chroots).
 */
#ifndef RPIFS_BUILD_MIRROR_H
#define RPIFS_BUILD_MIRROR_H

/* 0 and *url (free it; no trailing slash), or -ENOENT (nothing usable). */
int build_mirror_default(char **url);

#endif
