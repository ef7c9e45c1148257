/* parttable.h - the partition table, dos or gpt, written by libfdisk into
 * memory.
 *
 * dos: sector 0 alone (the MBR).
 * gpt: the protective MBR (sector 0), the primary header (LBA 1) and its
 * 128 entries (LBA 2..33) at the head of the disk; the backup entries and
 * the backup header in the last PT_GPT_TAIL_SECTORS sectors. Every byte of
 * both is a function of the arguments: the GUIDs are given, not random.
 */
#ifndef RPIFS_PARTTABLE_H
#define RPIFS_PARTTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The backup entries (32 sectors of 128 x 128 bytes) and header (1). */
#define PT_GPT_TAIL_SECTORS 33
#define PT_GPT_TAIL_BYTES ((uint64_t)PT_GPT_TAIL_SECTORS * 512)
/* Sector 0 and the primary header and entries. */
#define PT_GPT_HEAD_BYTES ((uint64_t)(1 + PT_GPT_TAIL_SECTORS) * 512)
#define PT_MAX_PARTS 4

enum pt_label { PT_DOS, PT_GPT };

struct pt_part {
	uint64_t start;         /* bytes, multiple of 512 */
	uint64_t size;          /* bytes, multiple of 512 */
	/* dos: the type byte (0x0c, 0x83); gpt: the type GUID's text. */
	uint8_t dos_type;
	const char *gpt_type;
	bool bootable;          /* dos: the active flag */
	uint8_t uuid[16];       /* gpt: the partition's unique GUID, text order */
	const char *name;       /* gpt: the partition's name (ASCII) */
};

struct parttable {
	enum pt_label label;
	uint64_t disk_size;     /* bytes, multiple of 512 */
	uint32_t disk_id;       /* dos: the identifier, != 0 */
	uint8_t disk_guid[16];  /* gpt: the disk GUID, text order */
	struct pt_part parts[PT_MAX_PARTS];
	size_t n;               /* <= 4 */
};

/* Bytes parttable_build() writes at the head of the disk: 512 (dos) or
 * PT_GPT_HEAD_BYTES; and at the end: 0 or PT_GPT_TAIL_BYTES. */
uint64_t parttable_head_bytes(enum pt_label label);
uint64_t parttable_tail_bytes(enum pt_label label);

/* Write the table t describes: its first parttable_head_bytes() bytes into
 * head, its last parttable_tail_bytes() into tail (NULL for dos). 0 or
 * -errno (logged, naming the partition, when libfdisk refuses); -EINVAL
 * untouched for a dos disk id 0, n > 4, a size not in sectors. */
int parttable_build(const struct parttable *t, uint8_t *head, uint8_t *tail);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (lower case) of 16 bytes. */
void parttable_uuid_str(const uint8_t u[16], char out[37]);

#endif
