/* identity.c - the image's labels and ids from the tree's /etc/fstab and
 * cmdline.txt (the rules are in identity.h). Pure: texts in, values out;
 * image.c reads the files from the scanned tree. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "cmdline.h"
#include "identity.h"
#include "log.h"

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* fstab's field (len bytes at f) with \NNN octal escapes undone, as
 * getmntent() does (\040 space, \011 tab, \012 newline, \134 backslash).
 * false: it does not fit in cap bytes with its NUL. */
static bool unescape(const char *f, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = f[i];

		if (c == '\\' && i + 3 < len &&
		    f[i + 1] >= '0' && f[i + 1] <= '3' && f[i + 2] >= '0' && f[i + 2] <= '7' &&
		    f[i + 3] >= '0' && f[i + 3] <= '7') {
			c = (char)((f[i + 1] - '0') << 6 | (f[i + 2] - '0') << 3 | (f[i + 3] - '0'));
			i += 3;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* "/boot/firmware/" and "/boot/firmware" are one mount point; "/" stays. */
static size_t trim_slashes(const char *s, size_t len)
{
	while (len > 1 && s[len - 1] == '/')
		len--;
	return len;
}

int fstab_spec(const char *text, const char *mnt, char *spec, size_t cap, unsigned *line)
{
	const char *p = text;
	size_t mlen = trim_slashes(mnt, strlen(mnt));
	unsigned n = 0;
	int ret = -ENOENT;

	while (p && *p) {
		const char *eol = strchr(p, '\n'), *f1, *f2;
		size_t l1, l2;
		char mp[4096];

		if (!eol)
			eol = p + strlen(p);
		n++;
		while (p < eol && is_blank(*p))
			p++;
		if (p == eol || *p == '#')
			goto next;
		for (f1 = p; p < eol && !is_blank(*p); p++)
			;
		l1 = (size_t)(p - f1);
		while (p < eol && is_blank(*p))
			p++;
		for (f2 = p; p < eol && !is_blank(*p); p++)
			;
		l2 = (size_t)(p - f2);
		if (!l2 || !unescape(f2, l2, mp, sizeof(mp)))
			goto next;
		l2 = trim_slashes(mp, strlen(mp));
		if (l2 != mlen || strncmp(mp, mnt, mlen))
			goto next;
		/* The last entry wins: mount -a mounts it over the earlier ones. */
		if (unescape(f1, l1, spec, cap)) {
			*line = n;
			ret = 0;
		}
next:
		p = *eol ? eol + 1 : eol;
	}
	return ret;
}

enum id_kind id_spec(const char *spec, size_t len, char *val, size_t cap)
{
	static const struct { const char *prefix; enum id_kind kind; } forms[] = {
		{ "LABEL=", ID_LABEL }, { "UUID=", ID_UUID }, { "PARTUUID=", ID_PARTUUID },
		{ "/dev/disk/by-label/", ID_LABEL }, { "/dev/disk/by-uuid/", ID_UUID },
		{ "/dev/disk/by-partuuid/", ID_PARTUUID },
	};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t pl = strlen(forms[i].prefix);
		const char *v = spec + pl;
		size_t vl = len - pl;

		if (len < pl || strncmp(spec, forms[i].prefix, pl))
			continue;
		/* LABEL="a b", as libmount takes it. */
		if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
			v++;
			vl -= 2;
		}
		if (!vl || vl >= cap || memchr(v, '\0', vl))
			return ID_OTHER;
		memcpy(val, v, vl);
		val[vl] = '\0';
		return forms[i].kind;
	}
	return ID_OTHER;
}

/* One name the tree gives a filesystem: where it says so, and what. */
struct claim {
	const char *path;
	unsigned line;
	const char *pre;            /* "" (fstab) or "root=" (cmdline) */
	enum id_kind kind;
	char val[256];
};

static const char *kind_name(enum id_kind k)
{
	return k == ID_LABEL ? "LABEL" : k == ID_UUID ? "UUID" : "PARTUUID";
}

bool id_uuid(const char *s, uint8_t out[16])
{
	size_t o = 0;

	if (strlen(s) != 36)
		return false;
	for (size_t i = 0; i < 36;) {
		uint32_t b;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return false;
			continue;
		}
		if (!cmdline_hex(s + i, 2, &b))
			return false;
		out[o++] = (uint8_t)b;
		i += 2;
	}
	return o == 16;
}

/* XXXX-XXXX, as blkid shows a FAT volume serial. */
static bool parse_serial(const char *s, uint32_t *out)
{
	uint32_t hi, lo;

	if (strlen(s) != 9 || s[4] != '-' || !cmdline_hex(s, 4, &hi) || !cmdline_hex(s + 5, 4, &lo))
		return false;
	*out = hi << 16 | lo;
	return true;
}

/* XXXXXXXX-NN: an MBR disk id and a partition number. */
static bool parse_partuuid(const char *s, uint32_t *disk, uint32_t *part)
{
	return strlen(s) == 11 && s[8] == '-' && cmdline_hex(s, 8, disk) && cmdline_hex(s + 9, 2, part) &&
	       *disk;
}

/* Both claims name the same value of their (common) kind? */
static bool same_value(const struct claim *a, const struct claim *b)
{
	uint8_t ua[16], ub[16];
	uint32_t da, db, p;

	/* Two spellings of one malformed id agree: the id's own check then
	 * names the problem, not a contradiction. */
	switch (a->kind) {
	case ID_UUID:
		if (!id_uuid(a->val, ua) || !id_uuid(b->val, ub))
			return !strcasecmp(a->val, b->val);
		return !memcmp(ua, ub, 16);
	case ID_PARTUUID:
		if (!parse_partuuid(a->val, &da, &p) || !parse_partuuid(b->val, &db, &p))
			return !strcasecmp(a->val, b->val);
		return da == db;
	default:
		return !strcmp(a->val, b->val);     /* ext4 labels are case-sensitive */
	}
}

/* The claims of kind k among c[0..n): agreeing, the first of them in *out
 * (NULL: none). Disagreeing: an error naming both, and how to settle it. */
static int pick(const struct claim *const *c, size_t n, enum id_kind k, const char *field,
		const char *opt, const struct claim **out)
{
	const struct claim *first = NULL;

	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!c[i] || c[i]->kind != k)
			continue;
		if (!first) {
			first = c[i];
			continue;
		}
		if (same_value(first, c[i]))
			continue;
		log_error("%s:%u says %s%s=%s but %s:%u says %s%s=%s: the image has one %s; "
			  "make the two agree%s%s", first->path, first->line, first->pre,
			  kind_name(k), first->val, c[i]->path, c[i]->line, c[i]->pre,
			  kind_name(k), c[i]->val, field, opt ? ", or choose it with " : "",
			  opt ? opt : "");
		return -EINVAL;
	}
	*out = first;
	return 0;
}

/* The characters a FAT short name (and so the volume label) can hold. */
static bool fat_label_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == ' ' || (c && strchr("!#$%&'()-@^_`{}~", c));
}

/* A FAT label named by where ("--boot-label", "FILE:LINE: LABEL"): at most
 * 11 characters of the short-name set; lower case is stored upper case,
 * which a LABEL= in the tree would then not match: say so. */
static int check_fat_label(const char *label, const char *where, bool from_tree)
{
	char upper[ID_FAT_LABEL_MAX + 1];
	bool lower = false;

	for (const unsigned char *s = (const unsigned char *)label; *s; s++) {
		if (!fat_label_char(*s) || s - (const unsigned char *)label >= ID_FAT_LABEL_MAX) {
			log_error("%s=%s: FAT labels are at most %d characters: letters, digits, "
				  "spaces and !#$%%&'()-@^_`{}~, stored upper case; %s",
				  where, label, ID_FAT_LABEL_MAX, from_tree ?
				  "shorten it there (and tune the tree's other references to it), "
				  "or choose one with --boot-label" : "choose another");
			return -EINVAL;
		}
		lower |= *s >= 'a' && *s <= 'z';
		upper[s - (const unsigned char *)label] =
			(char)(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s);
		upper[s - (const unsigned char *)label + 1] = '\0';
	}
	if (lower)
		log_warn("%s=%s: FAT labels are upper case: the FAT is labelled %s%s", where,
			 label, upper, from_tree ?
			 " (blkid and /dev/disk/by-label show that spelling: write it so there)" :
			 "");
	return 0;
}

/* A claim from fstab's entry on mnt, or from cmdline's root=. */
static bool claim_fstab(struct claim *c, const struct identity_in *in, const char *mnt)
{
	char spec[512];

	if (!in->fstab || !mnt || fstab_spec(in->fstab, mnt, spec, sizeof(spec), &c->line))
		return false;
	c->path = in->fstab_path;
	c->pre = "";
	c->kind = id_spec(spec, strlen(spec), c->val, sizeof(c->val));
	return c->kind != ID_OTHER;
}

static bool claim_cmdline(struct claim *c, const struct identity_in *in)
{
	const char *v;
	size_t len;

	if (!in->cmdline || cmdline_root(in->cmdline, &v, &len))
		return false;
	c->path = in->cmdline_path;
	c->line = 1;
	c->pre = "root=";
	c->kind = id_spec(v, len, c->val, sizeof(c->val));
	return c->kind != ID_OTHER;
}

/* The disk id the PARTUUID claims name (all agreeing, pick() checked), with
 * a warning for what the MBR cannot give: a GPT id, another partition. */
static uint32_t disk_id_of(const struct claim *const *c, size_t n, const uint32_t *want_part)
{
	uint32_t id = 0, disk, part;

	for (size_t i = 0; i < n; i++) {
		if (!c[i] || c[i]->kind != ID_PARTUUID)
			continue;
		if (!parse_partuuid(c[i]->val, &disk, &part)) {
			log_warn("%s:%u: %sPARTUUID=%s is not an MBR partition's id (XXXXXXXX-NN, "
				 "not zero): the image's disk id is derived, and that name will "
				 "not find it", c[i]->path, c[i]->line, c[i]->pre, c[i]->val);
			continue;
		}
		if (part != want_part[i])
			log_warn("%s:%u: %sPARTUUID=%s names partition %" PRIu32 ": in the image "
				 "it is partition %" PRIu32, c[i]->path, c[i]->line, c[i]->pre,
				 c[i]->val, part, want_part[i]);
		id = disk;
	}
	return id;
}

/* The label: --label's, else gpt exactly when a PARTUUID= in the tree is a
 * GPT partition's. A PARTUUID of the other form contradicts --label; both
 * forms in the tree contradict each other. */
static int resolve_label(struct identity *id, const struct identity_in *in,
			 const struct claim *const *c, size_t n)
{
	const struct claim *mbr = NULL, *gpt = NULL;
	uint32_t disk, part;
	uint8_t u[16];

	for (size_t i = 0; i < n; i++) {
		if (!c[i] || c[i]->kind != ID_PARTUUID)
			continue;
		if (!gpt && id_uuid(c[i]->val, u))
			gpt = c[i];
		else if (!mbr && parse_partuuid(c[i]->val, &disk, &part))
			mbr = c[i];
	}
	switch (in->label) {
	case RPIFS_LABEL_DOS:
		if (gpt) {
			log_error("%s:%u: %sPARTUUID=%s is a GPT partition's id, but --label dos "
				  "makes an MBR, whose ids are XXXXXXXX-NN: drop --label dos (the "
				  "image is then gpt), or name the partition there by LABEL=, UUID= "
				  "or an MBR PARTUUID", gpt->path, gpt->line, gpt->pre, gpt->val);
			return -EINVAL;
		}
		break;
	case RPIFS_LABEL_GPT:
		if (mbr) {
			log_error("%s:%u: %sPARTUUID=%s is an MBR partition's id (XXXXXXXX-NN), "
				  "but --label gpt makes a GPT, whose ids are 8-4-4-4-12 GUIDs: drop "
				  "--label gpt (the image is then dos), or name the partition there "
				  "by LABEL=, UUID= or a GPT PARTUUID", mbr->path, mbr->line,
				  mbr->pre, mbr->val);
			return -EINVAL;
		}
		id->gpt = true;
		break;
	default:
		if (gpt && mbr) {
			log_error("%s:%u says %sPARTUUID=%s (a GPT partition's id) but %s:%u says "
				  "%sPARTUUID=%s (an MBR partition's): the image has one partition "
				  "table; make the two agree", gpt->path, gpt->line, gpt->pre,
				  gpt->val, mbr->path, mbr->line, mbr->pre, mbr->val);
			return -EINVAL;
		}
		if (gpt)
			log_info("partition table gpt: %s:%u names a GPT partition (%sPARTUUID=%s)",
				 gpt->path, gpt->line, gpt->pre, gpt->val);
		id->gpt = gpt != NULL;
		break;
	}
	return 0;
}

/* gpt: partition 2's GUID from / and root=, partition 1's from the boot
 * entry; a malformed one is derived instead, with a warning. */
static int resolve_gpt(struct identity *id, const struct identity_in *in,
		       const struct claim *const *root, const struct claim *boot)
{
	const struct claim *c;
	int ret;

	if (in->disk_id) {
		log_error("--disk-id 0x%08" PRIx32 " is an MBR's identifier, and the image is "
			  "gpt: drop it, or choose --label dos", in->disk_id);
		return -EINVAL;
	}
	ret = pick(root, 2, ID_PARTUUID, "root partition (PARTUUID=)", NULL, &c);
	if (ret < 0)
		return ret;
	if (c && id_uuid(c->val, id->root_partuuid))
		id->has_root_partuuid = true;
	else if (c)
		log_warn("%s:%u: %sPARTUUID=%s is not a GPT partition's id (8-4-4-4-12 hex "
			 "digits): partition 2's is derived, and that name will not find it",
			 c->path, c->line, c->pre, c->val);
	if (boot && boot->kind == ID_PARTUUID) {
		if (id_uuid(boot->val, id->boot_partuuid))
			id->has_boot_partuuid = true;
		else
			log_warn("%s:%u: PARTUUID=%s is not a GPT partition's id (8-4-4-4-12 "
				 "hex digits): partition 1's is derived, and that name will not "
				 "find it", boot->path, boot->line, boot->val);
	}
	if (id->has_root_partuuid && id->has_boot_partuuid &&
	    !memcmp(id->root_partuuid, id->boot_partuuid, 16)) {
		log_error("%s:%u: PARTUUID=%s names the boot partition and the root partition "
			  "alike: each GPT partition has its own; correct one of them",
			  boot->path, boot->line, boot->val);
		return -EINVAL;
	}
	return 0;
}

int identity_resolve(struct identity *id, const struct identity_in *in)
{
	struct claim froot, fboot, croot;
	const struct claim *root[2], *disk[3], *c;
	/* The partition each disk[] claim is about: root 2, boot 1, root 2. */
	static const uint32_t disk_part[3] = { 2, 1, 2 };
	char where[600];
	int ret;

	memset(id, 0, sizeof(*id));
	root[0] = disk[0] = claim_fstab(&froot, in, "/") ? &froot : NULL;
	disk[1] = claim_fstab(&fboot, in, in->boot_mnt) ? &fboot : NULL;
	root[1] = disk[2] = claim_cmdline(&croot, in) ? &croot : NULL;

	/* ext4: label and UUID. */
	/* An option settles a field: the tree's claims on it are not read. */
	if (in->root_label) {
		id->root_label = in->root_label;
	} else if ((ret = pick(root, 2, ID_LABEL, "ext4 label", "--root-label", &c)) < 0) {
		goto out;
	} else if (c) {
		if (strlen(c->val) > ID_EXT4_LABEL_MAX) {
			log_error("%s:%u: %sLABEL=%s: ext4 labels are at most %d bytes; shorten "
				  "it there, or choose one with --root-label", c->path, c->line,
				  c->pre, c->val, ID_EXT4_LABEL_MAX);
			ret = -EINVAL;
			goto out;
		}
		strcpy(id->root_buf, c->val);
		id->root_label = id->root_buf;
		id->root_label_tree = true;
	} else {
		id->root_label = "rootfs";
	}
	ret = pick(root, 2, ID_UUID, "ext4 UUID", NULL, &c);
	if (ret < 0)
		goto out;
	if (c) {
		if (!id_uuid(c->val, id->uuid)) {
			log_error("%s:%u: %sUUID=%s is not an ext4 UUID (8-4-4-4-12 hex digits); "
				  "correct it there", c->path, c->line, c->pre, c->val);
			ret = -EINVAL;
			goto out;
		}
		id->has_uuid = true;
	}

	/* The partition table: its label, then its ids from every PARTUUID=. */
	ret = resolve_label(id, in, disk, 3);
	if (ret < 0)
		goto out;
	if (id->gpt) {
		ret = resolve_gpt(id, in, root, disk[1]);
		if (ret < 0)
			goto out;
	} else if (in->disk_id) {
		id->disk_id = in->disk_id;
	} else if ((ret = pick(disk, 3, ID_PARTUUID, "disk id (PARTUUID=XXXXXXXX-NN)",
			       "--disk-id", &c)) < 0) {
		goto out;
	} else {
		id->disk_id = disk_id_of(disk, 3, disk_part);
	}

	/* FAT: label and serial, from the boot mount point's entry alone. */
	if (in->boot_label) {
		ret = check_fat_label(in->boot_label, "--boot-label", false);
		if (ret < 0)
			goto out;
		id->boot_label = in->boot_label;
	} else if (disk[1] && fboot.kind == ID_LABEL) {
		snprintf(where, sizeof(where), "%s:%u: LABEL", fboot.path, fboot.line);
		ret = check_fat_label(fboot.val, where, true);
		if (ret < 0)
			goto out;
		for (size_t i = 0; fboot.val[i]; i++)
			id->boot_buf[i] = (char)(fboot.val[i] >= 'a' && fboot.val[i] <= 'z' ?
						 fboot.val[i] - 'a' + 'A' : fboot.val[i]);
		id->boot_label = id->boot_buf;
		id->boot_label_tree = true;
	} else {
		id->boot_label = "BOOT";
	}
	if (disk[1] && fboot.kind == ID_UUID) {
		if (!parse_serial(fboot.val, &id->serial)) {
			log_error("%s:%u: UUID=%s is not a FAT volume serial (XXXX-XXXX, hex); "
				  "correct it there", fboot.path, fboot.line, fboot.val);
			ret = -EINVAL;
			goto out;
		}
		id->has_serial = true;
	}
	ret = 0;
out:
	return ret;
}
