/* test_idmap.c - host ids to image ids (src/engine/idmap.c).
 *
 * Parsing (good, malformed, past 32 bits), overlapping ranges refused on
 * either side (adjacent ones allowed), the mapping at range edges, POSIX
 * ACL values and v3 file capabilities translated byte for byte against the
 * kernel's xattr formats written out here (linux/posix_acl_xattr.h,
 * linux/capability.h), unmapped ids reported, malformed values refused,
 * and the map file next to a tree (ROOTFS.rpifs/idmap) read with comments,
 * absent, or refused naming its bad line.
 */
#include <stdint.h>
#include <sys/stat.h>
#include "check.h"
#include "idmap.h"

static const struct rpifs_idmap ns[] = {
	{ 100000, 0, 65536 },   /* mmdebstrap --mode=unshare: root inside = 100000 */
	{ 1000, 1000, 1 },      /* the user itself, e.g. files the kernel stage wrote */
};
#define NS (sizeof(ns) / sizeof(ns[0]))

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void acl_entry(uint8_t *p, uint16_t tag, uint16_t perm, uint32_t id)
{
	p[0] = (uint8_t)tag;
	p[1] = (uint8_t)(tag >> 8);
	p[2] = (uint8_t)perm;
	p[3] = (uint8_t)(perm >> 8);
	le32(p + 4, id);
}

/* version 2; user::rwx, user:ID1:r-x, group::r-x, group:ID2:rwx, mask::rwx,
 * other::r-- */
static size_t make_acl(uint8_t *v, uint32_t id1, uint32_t id2)
{
	le32(v, 2);
	acl_entry(v + 4, 0x01, 7, UINT32_MAX);
	acl_entry(v + 12, 0x02, 5, id1);
	acl_entry(v + 20, 0x04, 5, UINT32_MAX);
	acl_entry(v + 28, 0x08, 7, id2);
	acl_entry(v + 36, 0x10, 7, UINT32_MAX);
	acl_entry(v + 44, 0x20, 4, UINT32_MAX);
	return 52;
}

static void test_parse(void)
{
	struct rpifs_idmap m;

	CHECK(idmap_parse("100000:0:65536", &m) == 0 && m.host == 100000 && m.image == 0 &&
	      m.count == 65536);
	CHECK(idmap_parse("0:0:4294967295", &m) == 0 && m.count == UINT32_MAX);
	CHECK(idmap_parse("2:0:4294967295", &m) == -ERANGE, "a range past 2^32-1");
	CHECK(idmap_parse("4294967296:0:1", &m) == -ERANGE, "a host id past 32 bits");
	CHECK(idmap_parse("100000:0:0", &m) == -EINVAL, "count 0");
	CHECK(idmap_parse("100000:0", &m) == -EINVAL);
	CHECK(idmap_parse("100000:0:65536:", &m) == -EINVAL);
	CHECK(idmap_parse("100000 0 65536", &m) == -EINVAL);
	CHECK(idmap_parse("-1:0:1", &m) == -EINVAL);
	CHECK(idmap_parse("", &m) == -EINVAL);
	CHECK(idmap_parse("a:0:1", &m) == -EINVAL);
}

static void test_check(void)
{
	size_t a = 99, b = 99;
	const struct rpifs_idmap host_overlap[] = { { 100000, 0, 65536 }, { 165535, 70000, 10 } };
	const struct rpifs_idmap host_overlap3[] = { { 100000, 0, 65536 }, { 1000, 0, 1 },
						     { 999, 5, 2 } };
	const struct rpifs_idmap image_shared[] = { { 100000, 0, 65536 }, { 1000, 0, 1 } };
	const struct rpifs_idmap adjacent[] = { { 100000, 0, 1000 }, { 101000, 1000, 1000 } };

	CHECK(idmap_check(ns, NS, &a, &b) == 0);
	CHECK(idmap_check(host_overlap, 2, &a, &b) == -EINVAL && a == 0 && b == 1,
	      "host ranges overlap at 165535");
	CHECK(idmap_check(host_overlap3, 3, &a, &b) == -EINVAL && a == 1 && b == 2,
	      "host ranges overlap at 1000 (got %zu %zu)", a, b);
	CHECK(idmap_check(image_shared, 2, &a, &b) == 0,
	      "two host ids may show as one image id (the user's files as root)");
	CHECK(idmap_check(adjacent, 2, &a, &b) == 0, "adjacent ranges are fine");
}

static void test_map(void)
{
	uint32_t id = 7;

	CHECK(idmap_map(ns, NS, 100000, &id) == 0 && id == 0);
	CHECK(idmap_map(ns, NS, 100042, &id) == 0 && id == 42);
	CHECK(idmap_map(ns, NS, 165535, &id) == 0 && id == 65535, "the range's last id");
	CHECK(idmap_map(ns, NS, 165536, &id) == -ERANGE, "one past the range");
	CHECK(idmap_map(ns, NS, 99999, &id) == -ERANGE, "one before the range");
	CHECK(idmap_map(ns, NS, 1000, &id) == 0 && id == 1000);
	CHECK(idmap_map(ns, NS, 0, &id) == -ERANGE, "host root is not in the map");
	CHECK(idmap_map(NULL, 0, 123456, &id) == 0 && id == 123456, "no map: identity");
}

static void test_acl(void)
{
	uint8_t v[52], want[52];
	size_t len, n;
	uint32_t bad = 0;

	/* user:100042 and group:100004 (host) are user:42 and group:4 (adm) */
	len = make_acl(v, 100042, 100004);
	n = make_acl(want, 42, 4);
	CHECK(idmap_xattr(ns, NS, "system.posix_acl_access", v, &len, &bad) == 0);
	CHECK(len == n && !memcmp(v, want, n), "ACL translated byte for byte");

	len = make_acl(v, 100042, 1000);
	n = make_acl(want, 42, 1000);
	CHECK(idmap_xattr(ns, NS, "system.posix_acl_default", v, &len, &bad) == 0);
	CHECK(len == n && !memcmp(v, want, n), "default ACL translated");

	len = make_acl(v, 100042, 5);
	memcpy(want, v, len);
	CHECK(idmap_xattr(ns, NS, "system.posix_acl_access", v, &len, &bad) == -ERANGE &&
	      bad == 5, "group 5 is outside the map (got %u)", bad);

	len = make_acl(v, 100042, 4);
	CHECK(idmap_xattr(NULL, 0, "system.posix_acl_access", v, &len, &bad) == 0 &&
	      !memcmp(v + 16, "\xca\x86\x01\x00", 4), "no map: the ACL is left alone");

	len = 51;
	CHECK(idmap_xattr(ns, NS, "system.posix_acl_access", v, &len, &bad) == -EINVAL,
	      "a truncated ACL");
	len = make_acl(v, 1, 2);
	le32(v, 1);
	CHECK(idmap_xattr(ns, NS, "system.posix_acl_access", v, &len, &bad) == -EINVAL,
	      "an ACL of another version");
}

static void test_caps(void)
{
	/* cap_net_raw (bit 13) permitted + effective, set by the namespace's
	 * root: v3 with rootid 100000 (what getfattr -e hex shows on the host). */
	uint8_t v[24], want[24];
	size_t len;
	uint32_t bad = 0;

	memset(v, 0, sizeof(v));
	le32(v, 0x03000001);
	le32(v + 4, 1u << 13);
	le32(v + 20, 100000);
	memset(want, 0, sizeof(want));
	le32(want, 0x02000001);
	le32(want + 4, 1u << 13);
	len = 24;
	CHECK(idmap_xattr(ns, NS, "security.capability", v, &len, &bad) == 0);
	CHECK(len == 20 && !memcmp(v, want, 20), "v3 for the image's root becomes v2");

	/* v3 for a non-root id of the namespace: stays v3, root id mapped */
	memset(v, 0, sizeof(v));
	le32(v, 0x03000000);
	le32(v + 4, 1u << 13);
	le32(v + 20, 101000);
	memcpy(want, v, 24);
	le32(want + 20, 1000);
	len = 24;
	CHECK(idmap_xattr(ns, NS, "security.capability", v, &len, &bad) == 0);
	CHECK(len == 24 && !memcmp(v, want, 24), "v3 keeps a mapped non-root root id");

	/* v2 carries no id: unchanged */
	memset(v, 0, sizeof(v));
	le32(v, 0x02000001);
	le32(v + 4, 1u << 13);
	memcpy(want, v, 20);
	len = 20;
	CHECK(idmap_xattr(ns, NS, "security.capability", v, &len, &bad) == 0 && len == 20 &&
	      !memcmp(v, want, 20));

	memset(v, 0, sizeof(v));
	le32(v, 0x03000001);
	le32(v + 20, 0);
	len = 24;
	CHECK(idmap_xattr(ns, NS, "security.capability", v, &len, &bad) == -ERANGE && bad == 0,
	      "host root's v3 capability is outside a namespace map");
	len = 22;
	CHECK(idmap_xattr(ns, NS, "security.capability", v, &len, &bad) == -EINVAL,
	      "a v3 capability of the wrong size");

	/* other attributes: untouched */
	memcpy(v, "\x02\x00\x00\x00", 4);
	len = 4;
	CHECK(idmap_xattr(ns, NS, "user.comment", v, &len, &bad) == 0 && len == 4);
}

static void test_load(void)
{
	char dir[] = "/tmp/rpifs-idmap.XXXXXX", root[64], state[80], file[96];
	struct rpifs_idmap *m = NULL;
	size_t n = 9;

	must(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(root, sizeof(root), "%s/rootfs", dir);
	snprintf(state, sizeof(state), "%s.rpifs", root);
	snprintf(file, sizeof(file), "%s/idmap", state);
	must(mkdir(root, 0755) == 0 && mkdir(state, 0755) == 0, "mkdir");

	CHECK(idmap_load(root, &m, &n) == 0 && n == 0 && m == NULL, "no file: no map");
	put(file, "# written by rpifs build (mmdebstrap --mode=unshare)\n"
		  "100000:0:65536\n\n  1000:1000:1  \n");
	CHECK(idmap_load(root, &m, &n) == 0 && n == 2);
	CHECK(n == 2 && m[0].host == 100000 && m[0].image == 0 && m[0].count == 65536 &&
	      m[1].host == 1000 && m[1].image == 1000 && m[1].count == 1);
	free(m);
	m = NULL;
	char slash[80];
	snprintf(slash, sizeof(slash), "%s/", root);
	CHECK(idmap_load(slash, &m, &n) == 0 && n == 2, "ROOTFS/ names the same state");
	free(m);
	m = NULL;
	put(file, "100000:0:65536\n100000 0 65536\n");
	fprintf(stderr, "(expected: a message naming %s:2)\n", file);
	CHECK(idmap_load(root, &m, &n) == -EINVAL && n == 0 && m == NULL,
	      "a bad line is refused");
	unlink(file);
	rmdir(state);
	rmdir(root);
	rmdir(dir);
}

int main(void)
{
	test_parse();
	test_check();
	test_map();
	test_acl();
	test_caps();
	test_load();
	return check_done();
}
