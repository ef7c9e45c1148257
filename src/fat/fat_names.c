/* fat_names.c - FAT directory names: 8.3 short names and VFAT long names.
 *
 * Everything here is pure (no I/O, no locale, no clock): the same name gives
 * the same bytes on every host. Names are UTF-8 byte strings as Linux stores
 * them; short names are 11 bytes ("BASE    EXT"), ASCII only: we never emit
 * OEM code page bytes, anything outside ASCII goes to the long name.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "fat_names.h"

/* Characters allowed in a short name besides A-Z and 0-9 (FAT spec 6.1).
 * Space is legal on disk but never generated: Windows gives names with
 * spaces a long name, and so do we. */
static bool sfn_char_ok(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'()-@^_`{}~", c) != NULL;
}

static bool is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static bool is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static unsigned char to_upper(unsigned char c)
{
	return is_lower(c) ? (unsigned char)(c - 'a' + 'A') : c;
}

/* A 0xE5 first byte marks a deleted entry; 0x05 stands for it on disk.
 * Our short names are ASCII so this cannot trigger today, but the rule
 * belongs with whoever produces the 11 bytes. */
static void sfn_fix_lead(uint8_t sfn[11])
{
	if (sfn[0] == 0xE5)
		sfn[0] = 0x05;
}

/* Case of a run of characters: 1 = has lower, 2 = has upper (bit set). */
static int run_case(const char *s, size_t n)
{
	int c = 0;
	for (size_t i = 0; i < n; i++) {
		if (is_lower((unsigned char)s[i]))
			c |= 1;
		else if (is_upper((unsigned char)s[i]))
			c |= 2;
	}
	return c;
}

bool fat_name_is_short(const char *name, uint8_t sfn[11], uint8_t *ntres)
{
	size_t len = strlen(name);
	const char *dot = strchr(name, '.');
	size_t blen = dot ? (size_t)(dot - name) : len;
	size_t elen = dot ? len - blen - 1 : 0;

	/* One dot at most, base 1..8, extension 0..3; "NAME." (an empty
	 * extension after a dot) is not a name Linux or Windows would store
	 * as 8.3, it needs the long name to keep its dot. */
	if (blen < 1 || blen > 8 || elen > 3)
		return false;
	if (dot && (elen == 0 || strchr(dot + 1, '.')))
		return false;
	for (size_t i = 0; i < len; i++)
		if (i != blen && !sfn_char_ok((unsigned char)name[i]))
			return false;

	int bc = run_case(name, blen), ec = run_case(name + blen + 1 - !dot, elen);
	if (bc == 3 || ec == 3)
		return false;   /* mixed case within a part: NTRes cannot say it */

	memset(sfn, ' ', 11);
	for (size_t i = 0; i < blen; i++)
		sfn[i] = to_upper((unsigned char)name[i]);
	for (size_t i = 0; i < elen; i++)
		sfn[8 + i] = to_upper((unsigned char)dot[1 + i]);
	sfn_fix_lead(sfn);
	*ntres = (uint8_t)((bc == 1 ? FAT_NTRES_LOWER_BASE : 0) |
			   (ec == 1 ? FAT_NTRES_LOWER_EXT : 0));
	return true;
}

/* Length of the UTF-8 sequence starting at s (1 for an invalid byte, so a
 * bad byte becomes one '_' and scanning always advances). */
static size_t utf8_seq_len(const unsigned char *s)
{
	uint16_t u[2];
	char buf[5] = { 0 };
	size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 :
		   s[0] >= 0xC0 ? 2 : 1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == 0)
			return 1;
		buf[i] = (char)s[i];
	}
	return fat_utf8_to_utf16(buf, u, 2) > 0 ? n : 1;
}

/* Copies s[from, to) into sfn[o, max) as short-name characters: periods
 * and spaces dropped, what is not legal (every non-ASCII sequence) as '_',
 * upper-cased; what does not fit is cut. Anything dropped, replaced or cut
 * sets *lost. Returns the next free position. The extension holds no
 * period (it follows the last one), so one rule serves base and extension. */
static size_t sfn_part(const unsigned char *s, size_t from, size_t to, uint8_t *sfn, size_t o,
		       size_t max, bool *lost)
{
	for (size_t i = from; i < to;) {
		size_t n = utf8_seq_len(s + i);
		unsigned char c = s[i];

		i += n;
		if (c == '.' || c == ' ') {
			*lost = true;
			continue;
		}
		if (o == max) {
			*lost = true;
			break;
		}
		if (n > 1 || !sfn_char_ok(c)) {
			c = '_';
			*lost = true;
		}
		sfn[o++] = to_upper(c);
	}
	return o;
}

/* Windows' basis-name algorithm (FAT spec 7.2 / Microsoft KB 142982),
 * with one deliberate difference: periods inside the base are dropped
 * rather than ending it, as Linux does ("a.b.c" -> "AB~1.C"), which keeps
 * more of the name. Steps: upper-case; characters that are not legal in a
 * short name (including every non-ASCII character) become '_'; spaces and
 * leading periods are dropped; base = what precedes the last period, up to
 * 8 characters; extension = what follows it, up to 3. Anything replaced,
 * dropped or cut makes the name lossy: it then always gets a ~n tail. */
void fat_name_basis(const char *name, uint8_t sfn[11], bool *lossy)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t len = strlen(name);
	size_t start = 0, i;
	bool lost = false;

	memset(sfn, ' ', 11);
	while (start < len && (s[start] == '.' || s[start] == ' ')) {
		start++;
		lost = true;
	}
	/* The last period after the leading ones splits base and extension. */
	const unsigned char *last = NULL;
	for (i = start; i < len; i++)
		if (s[i] == '.')
			last = s + i;
	size_t bend = last ? (size_t)(last - s) : len;

	size_t o = sfn_part(s, start, bend, sfn, 0, 8, &lost);
	if (last) {
		o = sfn_part(s, bend + 1, len, sfn, 8, 11, &lost);
		if (o == 8)
			lost = true;    /* "name." : the trailing dot is lost */
	}
	/* An empty base ("...", " ") is not a valid short name; the tail
	 * will fill it ("~1"), so the name must be lossy. */
	if (sfn[0] == ' ')
		lost = true;
	sfn_fix_lead(sfn);
	*lossy = lost;
}

void fat_name_tail(const uint8_t basis[11], unsigned n, uint8_t out[11])
{
	char tail[9];
	int tl;
	size_t blen = 8;

	if (n < 1)
		n = 1;
	if (n > 999999)
		n = 999999;
	tl = snprintf(tail, sizeof tail, "~%u", n);     /* 2..7 chars */
	while (blen > 0 && basis[blen - 1] == ' ')
		blen--;
	if (blen > 8 - (size_t)tl)
		blen = 8 - (size_t)tl;
	memset(out, ' ', 11);
	memcpy(out, basis, blen);
	memcpy(out + blen, tail, (size_t)tl);
	memcpy(out + 8, basis + 8, 3);
	sfn_fix_lead(out);
}

uint8_t fat_lfn_checksum(const uint8_t sfn[11])
{
	uint8_t sum = 0;
	for (int i = 0; i < 11; i++)
		sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + sfn[i]);
	return sum;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. Code points above the BMP become surrogate pairs. */
int fat_utf8_to_utf16(const char *name, uint16_t *out, size_t max)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t n = 0;

	while (*s) {
		uint32_t cp;
		int extra;
		uint32_t min;
		if (s[0] < 0x80) {
			cp = s[0]; extra = 0; min = 0;
		} else if ((s[0] & 0xE0) == 0xC0) {
			cp = s[0] & 0x1F; extra = 1; min = 0x80;
		} else if ((s[0] & 0xF0) == 0xE0) {
			cp = s[0] & 0x0F; extra = 2; min = 0x800;
		} else if ((s[0] & 0xF8) == 0xF0) {
			cp = s[0] & 0x07; extra = 3; min = 0x10000;
		} else {
			return -EILSEQ;
		}
		for (int i = 1; i <= extra; i++) {
			if ((s[i] & 0xC0) != 0x80)  /* also stops at the NUL */
				return -EILSEQ;
			cp = (cp << 6) | (s[i] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return -EILSEQ;
		s += 1 + extra;

		size_t need = cp >= 0x10000 ? 2 : 1;
		if (n + need > max || n + need > FAT_LFN_MAX_UNITS)
			return -ENAMETOOLONG;
		if (need == 2) {
			cp -= 0x10000;
			out[n++] = (uint16_t)(0xD800 | (cp >> 10));
			out[n++] = (uint16_t)(0xDC00 | (cp & 0x3FF));
		} else {
			out[n++] = (uint16_t)cp;
		}
	}
	return (int)n;
}

/* Byte offsets of the 13 name units inside a 32-byte slot: name1 (5 units)
 * at 1, name2 (6) at 14, name3 (2) at 28. The slot layout itself is
 * struct fat_lfn in fat32.c; here we only fill bytes. */
static const uint8_t lfn_unit_off[13] = {
	1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30
};

int fat_lfn_encode(const uint16_t *units, int n, uint8_t csum,
		   uint8_t slots[][32])
{
	if (n < 1 || n > FAT_LFN_MAX_UNITS)
		return -EINVAL;
	int nslots = (n + 12) / 13;

	for (int k = 1; k <= nslots; k++) {
		/* Ordinal k lives in physical slot nslots - k: the highest
		 * ordinal comes first on disk and carries the 0x40 flag. */
		uint8_t *p = slots[nslots - k];
		memset(p, 0, 32);
		p[0] = (uint8_t)(k | (k == nslots ? 0x40 : 0));
		p[11] = 0x0F;   /* ATTR_LONG_NAME */
		p[12] = 0;      /* type */
		p[13] = csum;
		/* p[26..27] first cluster: always 0 */
		for (int j = 0; j < 13; j++) {
			int idx = (k - 1) * 13 + j;
			uint16_t u = idx < n ? units[idx] :
				     idx == n ? 0x0000 : 0xFFFF;
			p[lfn_unit_off[j]] = (uint8_t)(u & 0xFF);
			p[lfn_unit_off[j] + 1] = (uint8_t)(u >> 8);
		}
	}
	return nslots;
}
