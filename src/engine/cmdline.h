/* cmdline.h - the disk id in boot/cmdline.txt: the one reading of it.
 *
 * The card boots when the kernel finds its root partition by
 * root=PARTUUID=XXXXXXXX-NN, XXXXXXXX being the MBR's disk id (8 hex
 * digits) and NN the partition number (2 hex digits). `rpifs build config`
 * writes that line; the mount (image.c) and the build's next run
 * (build_config.c) read the disk id back from it with this function, so the
 * MBR always carries the id the kernel will look for.
 *
 * The line is read as the kernel reads its command line:
 * - the first line only (the firmware passes only that); a trailing
 *   newline, "\r" and spaces change nothing;
 * - words are separated by whitespace; double quotes protect spaces inside
 *   a word (foo="a root=b" is one word, not a root=);
 * - root= is the word that counts, and the last one wins (the kernel keeps
 *   the last); every other word, resume=PARTUUID=... among them, is not
 *   about the root and is skipped; words after a lone "--" are init's;
 * - the value may be quoted (root="PARTUUID=..." or "root=PARTUUID=...",
 *   the quotes dropped as the kernel drops them); hex digits may be upper
 *   or lower case (the kernel compares PARTUUIDs ignoring case).
 * A root= of another form (LABEL=, /dev/mmcblk0p2, a GPT PARTUUID, not
 * exactly 8 + 2 hex digits, disk id 0) names no disk id: the image then
 * derives its own, and the card boots only if the kernel finds its root
 * some other way.
 */
#ifndef RPIFS_CMDLINE_H
#define RPIFS_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of the line's root= (the last one, read by the rules above,
 * quotes dropped): *value points into line, *len bytes. 0, or -ENOENT when
 * there is no root=. What identity.c reads LABEL=, UUID= and PARTUUID= in
 * (an initramfs finds its root by any of them). */
int cmdline_root(const char *line, const char **value, size_t *len);

/* The disk id of the line's root=PARTUUID=XXXXXXXX-NN. line is
 * NUL-terminated; only what precedes its first '\n' is read. 0 and *disk_id
 * (never 0); -ENOENT when there is no root=; -EINVAL when the last root= is
 * of another form (*disk_id untouched either way). */
int cmdline_disk_id(const char *line, uint32_t *disk_id);

/* n hex digits at p (either case; no sign, no 0x, no spaces, which
 * strtoul would take) into *out, most significant first: the digits of
 * PARTUUIDs and UUIDs, here and in identity.c. false on any other byte. */
bool cmdline_hex(const char *p, int n, uint32_t *out);

#endif
