/* fuzz_fat_names.c - libFuzzer target for FAT name generation and LFN
 * encoding: no crash, no undefined behaviour, and the invariants hold:
 * short names are 11 valid bytes, tails keep the name valid, LFN slots
 * decode back to the UTF-16 units with the right checksum and ordinals. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fat_names.h"

static void valid_sfn(const uint8_t sfn[11])
{
	static const char bad[] = "\"*+,./:;<=>?[\\]|";

	for (int i = 0; i < 11; i++) {
		if (sfn[i] < 0x20 && !(i == 0 && sfn[i] == 0x05))
			abort();
		if (sfn[i] != 0x05 && strchr(bad, sfn[i]) && sfn[i])
			abort();
		if (sfn[i] >= 'a' && sfn[i] <= 'z')
			abort();
	}
	if (sfn[0] == ' ')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[512];
	uint8_t sfn[11], tailed[11], ntres;
	uint16_t units[FAT_LFN_MAX_UNITS + 8];
	uint8_t slots[FAT_LFN_SLOTS_MAX][32];
	bool lossy;
	int n;

	if (size == 0 || size >= sizeof(name))
		return 0;
	memcpy(name, data, size);
	name[size] = '\0';
	if (strlen(name) != size)
		return 0;               /* names hold no NUL */

	if (fat_name_is_short(name, sfn, &ntres)) {
		valid_sfn(sfn);
		if (ntres & ~(FAT_NTRES_LOWER_BASE | FAT_NTRES_LOWER_EXT))
			abort();
	}
	fat_name_basis(name, sfn, &lossy);
	for (unsigned t = 1; t <= 1000000; t = t * 10 + 3) {
		fat_name_tail(sfn, t > 999999 ? 999999 : t, tailed);
		valid_sfn(tailed);
	}
	n = fat_utf8_to_utf16(name, units, FAT_LFN_MAX_UNITS);
	if (n > 0) {
		uint8_t csum = fat_lfn_checksum(sfn);
		int k = fat_lfn_encode(units, n, csum, slots);

		if (k != (n + 12) / 13)
			abort();
		/* Decode: slots are in on-disk order, highest ordinal first. */
		for (int i = 0; i < k; i++) {
			int ord = k - i;
			const uint8_t *s = slots[i];
			static const int pos[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };

			if ((s[0] & 0x3f) != ord || (i == 0) != !!(s[0] & 0x40) ||
			    s[11] != 0x0f || s[13] != csum)
				abort();
			for (int j = 0; j < 13; j++) {
				int u = (ord - 1) * 13 + j;
				uint16_t v = (uint16_t)(s[pos[j]] | s[pos[j] + 1] << 8);

				if (u < n && v != units[u])
					abort();
				if (u == n && v != 0x0000)
					abort();
				if (u > n && v != 0xffff)
					abort();
			}
		}
	}
	return 0;
}
