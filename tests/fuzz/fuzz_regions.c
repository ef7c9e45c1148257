/* fuzz_regions.c - libFuzzer target for the region map: regions decoded
 * from the input are added in input order; finalize either refuses an
 * overlap or yields a map whose reads equal a flat reference. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "regions.h"

#define SIZE 8192

static int reader(void *ctx, uint32_t id, void *buf, size_t len, uint64_t off)
{
	uint8_t *b = buf;

	(void)ctx;
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(id * 131 + off + i);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t mem[SIZE], ref[SIZE], got[SIZE];
	static uint8_t owner[SIZE];
	struct regions r;
	bool overlap = false;
	int ret;

	for (size_t i = 0; i < SIZE; i++)
		mem[i] = (uint8_t)(i * 7 + 3);
	memset(ref, 0, sizeof(ref));
	memset(owner, 0, sizeof(owner));
	regions_init(&r);
	for (size_t i = 0; i + 5 <= size && i < 5 * 200; i += 5) {
		uint64_t start = (uint64_t)(data[i] | data[i + 1] << 8) % SIZE;
		uint64_t len = (uint64_t)(data[i + 2] | data[i + 3] << 8) % 600;
		int kind = data[i + 4] % 3;
		uint32_t id = data[i + 4];

		if (start + len > SIZE)
			len = SIZE - start;
		for (uint64_t k = start; k < start + len; k++) {
			if (owner[k])
				overlap = true;
			owner[k] = 1;
			ref[k] = kind == 0 ? 0 : kind == 1 ? mem[k] : (uint8_t)(id * 131 + 11 + (k - start));
		}
		if (kind == 0)
			ret = regions_add_zero(&r, start, len, RW_GAP);
		else if (kind == 1)
			ret = regions_add_mem(&r, start, len, mem + start, RW_EXT4_META);
		else
			ret = regions_add_file(&r, start, len, id, 11, RW_EXT4_FILE);
		if (ret)
			abort();
	}
	ret = regions_finalize(&r, SIZE);
	if (overlap != (ret != 0))
		abort();
	if (!ret) {
		for (size_t i = 0; i + 1 < r.n; i++)
			if (r.v[i].start + r.v[i].len > r.v[i + 1].start || !r.v[i].len)
				abort();
		uint64_t off = size ? data[0] * 31u % SIZE : 0;
		if (regions_read(&r, got, SIZE - off, off, reader, NULL) ||
		    memcmp(got, ref + off, SIZE - off))
			abort();
	}
	regions_free(&r);
	return 0;
}
