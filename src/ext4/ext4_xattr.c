/* ext4_xattr.c - extended attributes: what they cost, where they go.
 *
 * libext2fs puts each new attribute in the inode body if it still fits
 * there (XATTR_ROOM bytes), else in the inode's one xattr block. The rule
 * of where an inode's attributes go is here once: the build sets them in
 * xattr_order(), and the size estimate asks ext4_xattr_in_block().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <et/com_err.h>

#include "ext4_i.h"
#include "log.h"

/* Bytes one attribute takes where libext2fs stores it, inode body or
 * block: entry header and name without its namespace prefix (libext2fs's
 * ea_names table), and the value, each rounded to 4; a POSIX ACL shrinks
 * to ext4's format (4-byte entries, 8 for named users and groups). */
static size_t xattr_cost(const struct xattr *x)
{
	static const char *const prefix[] = {
		"gnu.", "system.posix_acl_default", "system.posix_acl_access",
		"system.richacl", "security.", "trusted.", "system.", "user.",
	};
	size_t nl = strlen(x->name), vl = x->len;

	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (!strncmp(x->name, prefix[i], strlen(prefix[i]))) {
			nl -= strlen(prefix[i]);
			break;
		}
	if (!strncmp(x->name, "system.posix_acl_", 17) && vl >= 4 &&
	    (vl - 4) % 8 == 0) {
		const uint8_t *v = x->value;

		vl = 4;
		for (size_t o = 4; o < x->len; o += 8) {
			unsigned tag = v[o] | (unsigned)v[o + 1] << 8;

			vl += tag == 0x02 || tag == 0x08 ? 8 : 4;   /* ACL_USER, ACL_GROUP */
		}
	}
	return EXT2_EXT_ATTR_LEN(nl) + EXT2_EXT_ATTR_SIZE(vl);
}

size_t ext4_xattr_bytes(const struct tree_node *n)
{
	size_t i, sz = 0;

	for (i = 0; i < n->nxattrs; i++)
		sz += xattr_cost(&n->xattrs[i]);
	return sz;
}

bool ext4_xattr_in_block(const struct tree_node *n)
{
	return ext4_xattr_bytes(n) > XATTR_ROOM;
}

/* The order to set n's attributes in. libext2fs puts each new attribute in
 * the inode body if it still fits there, else in the one xattr block, so
 * the order decides the packing. The kernel packs in creation order, which
 * the scan cannot see: in name order, an attribute set a real ext4 with
 * 256-byte inodes holds can overflow the block (a 60-byte value the kernel
 * put in the inode body, sorted after bigger ones that filled it). So the
 * subset that fills the inode body best (a 0/1 knapsack over its few dozen
 * bytes) goes first, then the rest, each part in name order: whatever fits
 * anywhere fits this way, since the block gets the least. Deterministic. */
static int xattr_order(const struct tree_node *n, size_t *order)
{
	const size_t room = XATTR_ROOM;
	size_t k = n->nxattrs, i, c, o = 0;
	size_t *best;
	uint8_t *take;
	bool *first;

	/* All fit in the body: the knapsack would take them all. */
	if (ext4_xattr_bytes(n) <= room) {
		for (i = 0; i < k; i++)
			order[i] = i;
		return 0;
	}
	best = calloc(room + 1, sizeof(*best));
	take = calloc(k * (room + 1), 1);     /* take[i][c] */
	first = calloc(k, sizeof(*first));
	if (!best || !take || !first) {
		free(best);
		free(take);
		free(first);
		return -ENOMEM;
	}
	for (i = 0; i < k; i++) {
		size_t w = xattr_cost(&n->xattrs[i]);

		for (c = room; c >= w; c--)     /* w >= 16: no wrap */
			if (best[c - w] + w > best[c]) {
				best[c] = best[c - w] + w;
				take[i * (room + 1) + c] = 1;
			}
	}
	for (i = k, c = room; i-- > 0;)
		if (take[i * (room + 1) + c]) {
			first[i] = true;
			c -= xattr_cost(&n->xattrs[i]);
		}
	for (i = 0; i < k; i++)
		if (first[i])
			order[o++] = i;
	for (i = 0; i < k; i++)
		if (!first[i])
			order[o++] = i;
	free(best);
	free(take);
	free(first);
	return 0;
}

/* Extended attributes, including POSIX ACLs: ext2fs_xattr_set translates
 * system.posix_acl_* from the Linux xattr format to ext4's. */
int ext4_set_xattrs(struct build *b, ext2_ino_t ino, const struct tree_node *n)
{
	struct ext2_xattr_handle *h = NULL;
	errcode_t err, cerr;
	const char *what = "opening";
	const char *name = "";
	size_t i, *order;
	int ret;

	if (!n || !n->nxattrs)
		return 0;
	order = malloc(n->nxattrs * sizeof(*order));
	if (!order)
		return -ENOMEM;
	ret = xattr_order(n, order);
	if (ret < 0) {
		free(order);
		return ret;
	}
	err = ext2fs_xattrs_open(b->fs, ino, &h);
	if (!err) {
		what = "reading";
		err = ext2fs_xattrs_read(h);
	}
	for (i = 0; !err && i < n->nxattrs; i++) {
		const struct xattr *x = &n->xattrs[order[i]];

		what = "setting";
		name = x->name;
		err = ext2fs_xattr_set(h, name, x->value, x->len);
	}
	free(order);
	if (h) {
		cerr = ext2fs_xattrs_close(&h);
		if (!err) {
			what = "writing";
			err = cerr;
		}
	}
	if (err) {
		char *p = ext4_path(n);

		/* Not a full filesystem: one inode's attributes must fit in
		 * the inode plus one block (no ea_inode feature). */
		if (err == EXT2_ET_EA_NO_SPACE)
			log_error("ext4: /%s: extended attributes larger than "
				  "ext4 can store for one inode (%u bytes)", p, BS);
		else
			log_error("ext4: %s extended attribute %s of /%s: %s",
				  what, name, p, error_message(err));
		ext4_free_path(p);
		return err == EXT2_ET_EA_NO_SPACE ? -E2BIG : ext4_err(err);
	}
	return 0;
}

