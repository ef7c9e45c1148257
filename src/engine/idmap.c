/* idmap.c - host ids to image ids (see idmap.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "idmap.h"
#include "log.h"
#include "vector.h"

/* Linux's xattr formats (include/uapi/linux/posix_acl_xattr.h and
 * capability.h), little-endian whatever the host. */
#define ACL_XATTR_VERSION 2u
#define ACL_USER          0x02u
#define ACL_GROUP         0x08u
#define VFS_CAP_REVISION_MASK 0xff000000u
#define VFS_CAP_REVISION_2    0x02000000u
#define VFS_CAP_REVISION_3    0x03000000u
#define XATTR_CAPS_SZ_2       20u
#define XATTR_CAPS_SZ_3       24u

static uint32_t get_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static int parse_u32(const char **s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (**s < '0' || **s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(*s, &end, 10);
	if (errno || v > UINT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	*s = end;
	return 0;
}

int idmap_parse(const char *s, struct rpifs_idmap *out)
{
	int ret;

	if ((ret = parse_u32(&s, &out->host)) < 0)
		return ret;
	if (*s++ != ':')
		return -EINVAL;
	if ((ret = parse_u32(&s, &out->image)) < 0)
		return ret;
	if (*s++ != ':')
		return -EINVAL;
	if ((ret = parse_u32(&s, &out->count)) < 0)
		return ret;
	if (*s || out->count == 0)
		return -EINVAL;
	if ((uint64_t)out->host + out->count - 1 > UINT32_MAX ||
	    (uint64_t)out->image + out->count - 1 > UINT32_MAX)
		return -ERANGE;
	return 0;
}

static bool overlap(uint32_t a, uint32_t b, uint32_t count_a, uint32_t count_b)
{
	return (uint64_t)a < (uint64_t)b + count_b && (uint64_t)b < (uint64_t)a + count_a;
}

int idmap_check(const struct rpifs_idmap *m, size_t n, size_t *a, size_t *b)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (overlap(m[i].host, m[j].host, m[i].count, m[j].count)) {
				*a = i;
				*b = j;
				return -EINVAL;
			}
	return 0;
}

int idmap_map(const struct rpifs_idmap *m, size_t n, uint32_t host, uint32_t *image)
{
	if (n == 0) {
		*image = host;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (host >= m[i].host && (uint64_t)host < (uint64_t)m[i].host + m[i].count) {
			*image = m[i].image + (host - m[i].host);
			return 0;
		}
	return -ERANGE;
}

/* A POSIX ACL: a version word, then 8-byte entries (tag, perm, id). Only
 * named users and groups carry an id; the others hold ACL_UNDEFINED_ID. */
static int map_acl(const struct rpifs_idmap *m, size_t n, uint8_t *v, size_t len,
		   uint32_t *bad)
{
	if (len < 4 || (len - 4) % 8 || get_le32(v) != ACL_XATTR_VERSION)
		return -EINVAL;
	for (size_t o = 4; o < len; o += 8) {
		unsigned tag = v[o] | (unsigned)v[o + 1] << 8;
		uint32_t id;

		if (tag != ACL_USER && tag != ACL_GROUP)
			continue;
		if (idmap_map(m, n, get_le32(v + o + 4), &id) < 0) {
			*bad = get_le32(v + o + 4);
			return -ERANGE;
		}
		put_le32(v + o + 4, id);
	}
	return 0;
}

/* A file capability: v2 holds no id; v3 adds the root id it is for (the
 * kernel writes v3 when a namespace's root sets a capability). */
static int map_caps(const struct rpifs_idmap *m, size_t n, uint8_t *v, size_t *len,
		    uint32_t *bad)
{
	uint32_t magic, rootid;

	if (*len < 4)
		return -EINVAL;
	magic = get_le32(v);
	if ((magic & VFS_CAP_REVISION_MASK) != VFS_CAP_REVISION_3)
		return 0;
	if (*len != XATTR_CAPS_SZ_3)
		return -EINVAL;
	if (idmap_map(m, n, get_le32(v + 20), &rootid) < 0) {
		*bad = get_le32(v + 20);
		return -ERANGE;
	}
	if (rootid == 0) {
		/* For the image's root: what the kernel shows root without a
		 * namespace, and what getcap on the card prints. */
		put_le32(v, (magic & ~VFS_CAP_REVISION_MASK) | VFS_CAP_REVISION_2);
		*len = XATTR_CAPS_SZ_2;
	} else {
		put_le32(v + 20, rootid);
	}
	return 0;
}

int idmap_xattr(const struct rpifs_idmap *m, size_t n, const char *name,
		void *value, size_t *len, uint32_t *bad)
{
	if (!strcmp(name, "system.posix_acl_access") ||
	    !strcmp(name, "system.posix_acl_default"))
		return map_acl(m, n, value, *len, bad);
	if (!strcmp(name, "security.capability"))
		return map_caps(m, n, value, len, bad);
	return 0;
}

int idmap_load(const char *rootfs, struct rpifs_idmap **m, size_t *n)
{
	char *path = NULL, *line = NULL;
	size_t cap = 0, lcap = 0;
	unsigned lineno = 0;
	FILE *f = NULL;
	int ret = 0;

	*m = NULL;
	*n = 0;
	/* "ROOTFS/" and "ROOTFS" name the same state directory. */
	size_t rl = strlen(rootfs);
	while (rl > 1 && rootfs[rl - 1] == '/')
		rl--;
	if (asprintf(&path, "%.*s.rpifs/idmap", (int)rl, rootfs) < 0) {
		path = NULL;
		ret = -ENOMEM;
		goto out;
	}
	f = fopen(path, "re");
	if (!f) {
		if (errno != ENOENT) {
			ret = -errno;
			log_error("%s: %s", path, strerror(errno));
		}
		goto out;
	}
	while (getline(&line, &lcap, f) >= 0) {
		char *s = line, *e;

		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		for (e = s + strlen(s); e > s && (e[-1] == '\n' || e[-1] == ' ' ||
						  e[-1] == '\t' || e[-1] == '\r'); e--)
			;
		*e = '\0';
		if (!*s || *s == '#')
			continue;
		if ((ret = VEC_RESERVE(*m, cap, *n + 1, 4)) < 0)
			goto out;
		if ((ret = idmap_parse(s, &(*m)[*n])) < 0) {
			log_error("%s:%u: '%s' is not HOST:IMAGE:COUNT (decimal ids, "
				  "COUNT > 0)", path, lineno, s);
			goto out;
		}
		(*n)++;
	}
	if (ferror(f)) {
		ret = -EIO;
		log_error("%s: read error", path);
	}
out:
	if (ret < 0) {
		free(*m);
		*m = NULL;
		*n = 0;
	}
	if (f)
		fclose(f);
	free(line);
	free(path);
	return ret;
}
