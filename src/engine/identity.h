/* identity.h - the image's identity (FAT label and serial, ext4 label and
 * UUID, MBR disk id) from what the tree itself expects: one concept.
 *
 * A tree made elsewhere (Debian's raspi images, Raspberry Pi OS) finds its
 * partitions by name: /etc/fstab mounts LABEL=RASPIROOT on / and
 * LABEL=RASPIFIRM on /boot/firmware, cmdline.txt says root=LABEL=... or
 * root=PARTUUID=XXXXXXXX-02. The image carries those names, so the tree
 * boots with no flags:
 *
 *   fstab's / entry, cmdline's root=   LABEL=X     ext4 label X
 *                                      UUID=U      ext4 UUID U
 *                                      PARTUUID=D-NN  MBR disk id D
 *                                      PARTUUID=G  partition 2's GPT GUID G
 *   fstab's boot entry (the served     LABEL=Y     FAT label Y
 *   directory's mount point)           UUID=XXXX-XXXX  FAT serial
 *                                      PARTUUID=D-NN  MBR disk id D
 *                                      PARTUUID=G  partition 1's GPT GUID G
 *
 * The partition table (--label): a GPT partition's PARTUUID (G, 8-4-4-4-12)
 * makes the image gpt (a notice says which line), an MBR one (D-NN) keeps
 * it dos. A PARTUUID of the other form than --label asks for, or both
 * forms in the tree, is refused naming the file, the line and the option.
 *
 * (/dev/disk/by-label/X, by-uuid/U, by-partuuid/P are the same names.)
 * The options (--boot-label, --root-label, --disk-id) override. Two
 * sources naming different values for one field are an error naming both
 * (file:line and the value), unless an option settles the field. Nothing
 * named: "BOOT", "rootfs", and the disk id, serial and UUID derived from the
 * tree, as before.
 *
 * FAT labels are at most 11 characters of the short-name set, stored in
 * upper case: a longer one or another character is refused (the tree could
 * not find the partition by it), lower case is upper-cased with a warning.
 */
#ifndef RPIFS_IDENTITY_H
#define RPIFS_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "rpifs.h"

/* What names a filesystem: fstab's first field, or root='s value. */
enum id_kind { ID_OTHER, ID_LABEL, ID_UUID, ID_PARTUUID };

/* spec (len bytes, not NUL-terminated; fstab escapes already undone):
 * its kind and value (quotes dropped), NUL-terminated into val (cap bytes).
 * ID_OTHER for /dev/mmcblk0p2 and the like, or a value that does not fit. */
enum id_kind id_spec(const char *spec, size_t len, char *val, size_t cap);

/* s (NUL-terminated): 8-4-4-4-12 hex digits, either case, into out[16] in
 * text order. false: not such a UUID. */
bool id_uuid(const char *s, uint8_t out[16]);

/* The last entry of fstab (text, NUL-terminated) mounted on mnt ("/",
 * "/boot/firmware"; trailing slashes do not count): its first field with
 * the octal escapes (\040 for a space) undone into spec (cap bytes), its
 * line number (from 1) in *line. 0, or -ENOENT: none (or the field does not
 * fit). Comments (#) and blank lines are skipped. */
int fstab_spec(const char *text, const char *mnt, char *spec, size_t cap, unsigned *line);

/* What identity_resolve() reads. The texts may be NULL (no such file). */
struct identity_in {
	const char *fstab, *fstab_path;     /* /etc/fstab, and its name for messages */
	const char *cmdline, *cmdline_path; /* the served cmdline.txt */
	const char *boot_mnt;               /* "/boot/firmware", "/boot"; NULL: no boot dir */
	/* The options; NULL / 0: not given. */
	const char *boot_label, *root_label;
	uint32_t disk_id;
	enum rpifs_label label;             /* AUTO: from the PARTUUIDs */
};

#define ID_FAT_LABEL_MAX 11
#define ID_EXT4_LABEL_MAX 16

struct identity {
	/* Labels as the filesystems get them: the option's string, or the
	 * tree's name (copied here), or the default. */
	const char *boot_label, *root_label;
	bool boot_label_tree, root_label_tree;  /* taken from the tree */
	uint32_t disk_id;                   /* 0: derive it (dos) */
	bool gpt;                           /* the label: gpt, else dos */
	/* gpt: the partitions' GUIDs the tree names (text order); else derive. */
	bool has_root_partuuid, has_boot_partuuid;
	uint8_t root_partuuid[16], boot_partuuid[16];
	bool has_uuid, has_serial;          /* else derive them */
	uint8_t uuid[16];                   /* the ext4 UUID */
	uint32_t serial;                    /* the FAT volume serial */
	char boot_buf[ID_FAT_LABEL_MAX + 1], root_buf[ID_EXT4_LABEL_MAX + 1];
};

/* Fill *id (which then points into itself: do not copy it) from in. 0, or
 * -EINVAL (logged, naming the files, lines and values, and how to fix it):
 * a contradiction, a FAT label over 11 characters or of other characters,
 * a LABEL/UUID that the filesystem cannot carry. */
int identity_resolve(struct identity *id, const struct identity_in *in);

#endif
