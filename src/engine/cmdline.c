/* cmdline.c - the disk id in boot/cmdline.txt (the rules are in cmdline.h). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include "cmdline.h"

/* Whitespace as the kernel's isspace() has it; '\n' ends the line first. */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool cmdline_hex(const char *p, int n, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < n; i++) {
		int d = hexval(p[i]);

		if (d < 0)
			return false;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return true;
}

/* The value of root= (len bytes at v, quotes already dropped):
 * PARTUUID=XXXXXXXX-NN and nothing else. */
static int partuuid_disk_id(const char *v, size_t len, uint32_t *id)
{
	static const char key[] = "PARTUUID=";
	const size_t klen = sizeof(key) - 1;
	uint32_t disk, part;

	if (len != klen + 11 || strncmp(v, key, klen))
		return -EINVAL;
	v += klen;
	if (!cmdline_hex(v, 8, &disk) || v[8] != '-' || !cmdline_hex(v + 9, 2, &part) || !disk)
		return -EINVAL;
	*id = disk;
	return 0;
}

int cmdline_root(const char *line, const char **value, size_t *len)
{
	const char *p = line, *root = NULL;
	size_t root_len = 0;

	for (;;) {
		const char *w, *s;
		bool quoted = false;

		while (is_space(*p))
			p++;
		if (!*p || *p == '\n')
			break;
		for (w = p; *p && *p != '\n' && (quoted || !is_space(*p)); p++)
			if (*p == '"')
				quoted = !quoted;
		if (p - w == 2 && !strncmp(w, "--", 2))
			break;
		/* "root=..." quoted whole: the kernel drops both quotes. */
		s = *w == '"' ? w + 1 : w;
		if (p - s >= 5 && !strncmp(s, "root=", 5)) {
			root = s + 5;
			root_len = (size_t)(p - root);
			if (s != w && root_len && root[root_len - 1] == '"')
				root_len--;
		}
	}
	if (!root)
		return -ENOENT;
	/* root="PARTUUID=...": the value's own quotes go too. */
	if (root_len && root[0] == '"') {
		root++;
		root_len--;
		if (root_len && root[root_len - 1] == '"')
			root_len--;
	}
	*value = root;
	*len = root_len;
	return 0;
}

int cmdline_disk_id(const char *line, uint32_t *disk_id)
{
	const char *root;
	size_t root_len;
	uint32_t id;
	int ret;

	ret = cmdline_root(line, &root, &root_len);
	if (ret)
		return ret;
	ret = partuuid_disk_id(root, root_len, &id);
	if (ret)
		return ret;
	*disk_id = id;
	return 0;
}
