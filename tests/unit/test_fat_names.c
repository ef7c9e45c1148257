/* test_fat_names.c - 8.3 names, basis names, tails, LFN checksum and
 * encoding, UTF-8 -> UTF-16. Prints one line per failed check; exit 1 on
 * any failure. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "fat_names.h"


static void show(char out[12], const uint8_t sfn[11])
{
	for (int i = 0; i < 11; i++)
		out[i] = (char)sfn[i];
	out[11] = '\0';
}

/* name is 8.3-storable (or not); if so its 11 bytes and case bits. */
static void t_short(const char *name, bool want, const char *want_sfn,
		    uint8_t want_ntres)
{
	uint8_t sfn[11];
	uint8_t ntres = 0xAA;
	char s[12];
	bool got = fat_name_is_short(name, sfn, &ntres);

	CHECK(got == want, "is_short(\"%s\") = %d, want %d", name, got, want);
	if (!got || !want)
		return;
	show(s, sfn);
	CHECK(!memcmp(sfn, want_sfn, 11), "is_short(\"%s\") sfn \"%s\", want \"%s\"",
	      name, s, want_sfn);
	CHECK(ntres == want_ntres, "is_short(\"%s\") ntres 0x%02x, want 0x%02x",
	      name, ntres, want_ntres);
}

static void t_basis(const char *name, const char *want_sfn, bool want_lossy)
{
	uint8_t sfn[11];
	bool lossy = !want_lossy;
	char s[12];

	fat_name_basis(name, sfn, &lossy);
	show(s, sfn);
	CHECK(!memcmp(sfn, want_sfn, 11), "basis(\"%s\") = \"%s\", want \"%s\"",
	      name, s, want_sfn);
	CHECK(lossy == want_lossy, "basis(\"%s\") lossy %d, want %d", name, lossy,
	      want_lossy);
	CHECK(sfn[0] != 0xE5, "basis(\"%s\") starts with 0xE5", name);
}

static void t_tail(const char *basis, unsigned n, const char *want)
{
	uint8_t out[11];
	char s[12];

	fat_name_tail((const uint8_t *)basis, n, out);
	show(s, out);
	CHECK(!memcmp(out, want, 11), "tail(\"%s\", %u) = \"%s\", want \"%s\"",
	      basis, n, s, want);
}

static void t_utf16(const char *name, int want, const uint16_t *units)
{
	uint16_t out[FAT_LFN_MAX_UNITS];
	int n = fat_utf8_to_utf16(name, out, FAT_LFN_MAX_UNITS);

	CHECK(n == want, "utf8_to_utf16 of %zu bytes = %d, want %d", strlen(name), n, want);
	if (n == want && n > 0 && units)
		for (int i = 0; i < n; i++)
			CHECK(out[i] == units[i], "utf16 unit %d = 0x%04x, want 0x%04x",
			      i, out[i], units[i]);
}

static uint16_t slot_unit(const uint8_t *slot, int j)
{
	static const int off[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
	return (uint16_t)(slot[off[j]] | slot[off[j] + 1] << 8);
}

int main(void)
{
	/* --- 8.3 detection --- */
	t_short("config.txt", true, "CONFIG  TXT", FAT_NTRES_LOWER_BASE | FAT_NTRES_LOWER_EXT);
	t_short("CONFIG.TXT", true, "CONFIG  TXT", 0);
	t_short("README.md", true, "README  MD ", FAT_NTRES_LOWER_EXT);
	t_short("kernel8.IMG", true, "KERNEL8 IMG", FAT_NTRES_LOWER_BASE);
	t_short("start.elf", true, "START   ELF", 0x18);
	t_short("overlays", true, "OVERLAYS   ", FAT_NTRES_LOWER_BASE);
	t_short("12345678.123", true, "12345678123", 0);
	t_short("a_b-c~1", true, "A_B-C~1    ", FAT_NTRES_LOWER_BASE);
	t_short("Config.txt", false, NULL, 0);     /* mixed case base */
	t_short("config.Txt", false, NULL, 0);
	t_short("a.b.c", false, NULL, 0);
	t_short(".hidden", false, NULL, 0);
	t_short("my file.txt", false, NULL, 0);
	t_short("a+b.txt", false, NULL, 0);
	t_short("[x].txt", false, NULL, 0);
	t_short("123456789.txt", false, NULL, 0);
	t_short("file.text", false, NULL, 0);
	t_short("name.", false, NULL, 0);
	t_short("\xe5" "bc.txt", false, NULL, 0);   /* 0xE5 lead: not ASCII */
	t_short("\xc3\xa9.txt", false, NULL, 0);    /* é */

	/* --- basis names --- */
	t_basis("Config.txt", "CONFIG  TXT", false);
	t_basis("Long File Name.txt", "LONGFILETXT", true);
	t_basis("a.b.c", "AB      C  ", true);
	t_basis(".hidden", "HIDDEN     ", true);
	t_basis(".txt", "TXT        ", true);
	t_basis("...", "           ", true);          /* empty base: tail fills it */
	t_basis("a+b[1].tar.gz", "A_B_1_TAGZ ", true);
	t_basis("caf\xc3\xa9.txt", "CAF_    TXT", true);    /* one '_' per character */
	t_basis("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "___        ", true);
	t_basis("\xf0\x9f\x98\x80.png", "_       PNG", true);  /* emoji */
	t_basis("\xe5" "x", "_X         ", true);           /* invalid byte, never 0xE5 */
	t_basis("file.jpeg", "FILE    JPE", true);
	t_basis("verylongname", "VERYLONG   ", true);
	t_basis("name.", "NAME       ", true);

	/* --- tails --- */
	t_tail("LONGFILETXT", 1, "LONGFI~1TXT");
	t_tail("LONGFILETXT", 9, "LONGFI~9TXT");
	t_tail("LONGFILETXT", 10, "LONGF~10TXT");
	t_tail("LONGFILETXT", 100, "LONG~100TXT");
	t_tail("LONGFILETXT", 100000, "L~100000TXT");
	t_tail("LONGFILETXT", 999999, "L~999999TXT");
	t_tail("AB      C  ", 1, "AB~1    C  ");
	t_tail("AB      C  ", 10, "AB~10   C  ");
	t_tail("HIDDEN     ", 1, "HIDDEN~1   ");
	t_tail("           ", 1, "~1         ");
	t_tail("ABCDEF  TXT", 10, "ABCDE~10TXT");

	/* --- LFN checksum ---
	 * Measured here: mkfs.fat -F 32 on a 64 MiB file, then mcopy of
	 * "Long File Name.txt" and "Config.txt": mcopy wrote short entries
	 * LONGFI~1TXT with LFN checksum 0xd4 and CONFIG  TXT with 0x39. */
	CHECK(fat_lfn_checksum((const uint8_t *)"LONGFI~1TXT") == 0xd4,
	      "checksum(LONGFI~1TXT) = 0x%02x, want 0xd4",
	      fat_lfn_checksum((const uint8_t *)"LONGFI~1TXT"));
	CHECK(fat_lfn_checksum((const uint8_t *)"CONFIG  TXT") == 0x39,
	      "checksum(CONFIG  TXT) = 0x%02x, want 0x39",
	      fat_lfn_checksum((const uint8_t *)"CONFIG  TXT"));

	/* --- LFN encoding --- */
	{
		/* mcopy's slots for "Config.txt" (checksum 0x39), hex from that
		 * image: 43 'C' ... '.' 't' 'x' 't' 0000 ffff ffff. */
		static const uint8_t want[32] = {
			0x41, 0x43, 0x00, 0x6f, 0x00, 0x6e, 0x00, 0x66, 0x00, 0x69, 0x00,
			0x0f, 0x00, 0x39, 0x67, 0x00, 0x2e, 0x00, 0x74, 0x00, 0x78, 0x00,
			0x74, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff };
		uint16_t u[FAT_LFN_MAX_UNITS];
		uint8_t slots[FAT_LFN_SLOTS_MAX][32];
		int n = fat_utf8_to_utf16("Config.txt", u, FAT_LFN_MAX_UNITS);
		int k = fat_lfn_encode(u, n, 0x39, slots);
		CHECK(k == 1, "Config.txt: %d slots, want 1", k);
		CHECK(!memcmp(slots[0], want, 32), "Config.txt slot differs from mcopy's");
	}
	{
		/* "Long File Name.txt": 18 units, 2 slots; mcopy wrote
		 * 42 'e' '.' 't' 'x' 't' 0000 ffff*7 then 01 'L'... */
		uint16_t u[FAT_LFN_MAX_UNITS];
		uint8_t slots[FAT_LFN_SLOTS_MAX][32];
		int n = fat_utf8_to_utf16("Long File Name.txt", u, FAT_LFN_MAX_UNITS);
		int k = fat_lfn_encode(u, n, 0xd4, slots);
		CHECK(n == 18 && k == 2, "Long File Name.txt: %d units %d slots", n, k);
		CHECK(slots[0][0] == 0x42 && slots[1][0] == 0x01, "ordinals 0x%02x 0x%02x",
		      slots[0][0], slots[1][0]);
		CHECK(slot_unit(slots[0], 0) == 'e' && slot_unit(slots[0], 4) == 't',
		      "second part of the name in the first physical slot");
		CHECK(slot_unit(slots[0], 5) == 0x0000, "terminator after 18 units");
		for (int j = 6; j < 13; j++)
			CHECK(slot_unit(slots[0], j) == 0xFFFF, "padding unit %d", j);
		CHECK(slot_unit(slots[1], 0) == 'L' && slot_unit(slots[1], 12) == 'm',
		      "first 13 units in ordinal 1");
		for (int s = 0; s < 2; s++)
			CHECK(slots[s][11] == 0x0F && slots[s][12] == 0 && slots[s][13] == 0xd4 &&
			      slots[s][26] == 0 && slots[s][27] == 0, "slot %d fixed fields", s);
	}
	{
		/* Exactly 13 units: one slot, no terminator, no padding. */
		uint16_t u[FAT_LFN_MAX_UNITS];
		uint8_t slots[FAT_LFN_SLOTS_MAX][32];
		int n = fat_utf8_to_utf16("abcdefghijklm", u, FAT_LFN_MAX_UNITS);
		int k = fat_lfn_encode(u, n, 0, slots);
		CHECK(n == 13 && k == 1 && slots[0][0] == 0x41, "13 units: %d slots", k);
		for (int j = 0; j < 13; j++)
			CHECK(slot_unit(slots[0], j) == (uint16_t)('a' + j), "13 units: unit %d", j);
		/* 26 units: two full slots. */
		n = fat_utf8_to_utf16("abcdefghijklmnopqrstuvwxyz", u, FAT_LFN_MAX_UNITS);
		k = fat_lfn_encode(u, n, 0, slots);
		CHECK(k == 2 && slots[0][0] == 0x42 && slot_unit(slots[0], 12) == 'z',
		      "26 units");
		/* 14 units: second slot holds one unit, 0x0000, 11 x 0xFFFF. */
		n = fat_utf8_to_utf16("abcdefghijklmn", u, FAT_LFN_MAX_UNITS);
		k = fat_lfn_encode(u, n, 0, slots);
		CHECK(k == 2 && slot_unit(slots[0], 0) == 'n' && slot_unit(slots[0], 1) == 0 &&
		      slot_unit(slots[0], 2) == 0xFFFF && slot_unit(slots[0], 12) == 0xFFFF,
		      "14 units");
		/* 255 units: 20 slots, the first physical one is 0x54. */
		for (int i = 0; i < 255; i++)
			u[i] = 'x';
		k = fat_lfn_encode(u, 255, 0, slots);
		CHECK(k == 20 && slots[0][0] == (20 | 0x40) && slots[19][0] == 1 &&
		      slot_unit(slots[0], 8) == 0 && slot_unit(slots[0], 9) == 0xFFFF,
		      "255 units: %d slots", k);
		CHECK(fat_lfn_encode(u, 0, 0, slots) < 0, "0 units refused");
		CHECK(fat_lfn_encode(u, 256, 0, slots) < 0, "256 units refused");
	}

	/* --- UTF-8 -> UTF-16 --- */
	{
		static const uint16_t ascii[] = { 'a', 'B', '.' };
		static const uint16_t e_acute[] = { 0x00e9 };
		static const uint16_t nihongo[] = { 0x65e5, 0x672c, 0x8a9e };
		static const uint16_t emoji[] = { 0xd83d, 0xde00, 'x' };
		static const uint16_t maxcp[] = { 0xdbff, 0xdfff };
		t_utf16("aB.", 3, ascii);
		t_utf16("\xc3\xa9", 1, e_acute);
		t_utf16("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 3, nihongo);
		t_utf16("\xf0\x9f\x98\x80x", 3, emoji);
		t_utf16("\xf4\x8f\xbf\xbf", 2, maxcp);          /* U+10FFFF */
		t_utf16("", 0, NULL);
		t_utf16("\xe5" "bc", -EILSEQ, NULL);             /* lead, no continuation */
		t_utf16("\x80", -EILSEQ, NULL);                  /* lone continuation */
		t_utf16("\xc3", -EILSEQ, NULL);                  /* truncated */
		t_utf16("\xc0\xaf", -EILSEQ, NULL);              /* overlong '/' */
		t_utf16("\xe0\x80\xaf", -EILSEQ, NULL);          /* overlong */
		t_utf16("\xed\xa0\x80", -EILSEQ, NULL);          /* surrogate D800 */
		t_utf16("\xf4\x90\x80\x80", -EILSEQ, NULL);      /* above U+10FFFF */
		t_utf16("\xf8\x88\x80\x80\x80", -EILSEQ, NULL);  /* 5-byte form */
		t_utf16("\xff", -EILSEQ, NULL);

		uint16_t out[4];
		CHECK(fat_utf8_to_utf16("abcde", out, 4) == -ENAMETOOLONG, "max respected");
		CHECK(fat_utf8_to_utf16("abc\xf0\x9f\x98\x80", out, 4) == -ENAMETOOLONG,
		      "surrogate pair must fit whole");
		char big[300];
		memset(big, 'a', 256);
		big[256] = '\0';
		uint16_t u[300];
		CHECK(fat_utf8_to_utf16(big, u, 300) == -ENAMETOOLONG, "256 units refused");
		big[255] = '\0';
		CHECK(fat_utf8_to_utf16(big, u, 300) == 255, "255 units accepted");
	}

	return check_done();
}
