/* test_sha256.c - SHA-256 (src/engine/sha256.c) against FIPS 180-2's
 * vectors, fed whole and in pieces of every size. */
#include <string.h>
#include "check.h"
#include "sha256.h"

static void hex_of(const void *p, size_t n, size_t piece, char out[65])
{
	struct sha256 s;
	uint8_t dig[32];
	const char *c = p;

	sha256_init(&s);
	for (size_t i = 0; i < n; i += piece)
		sha256_update(&s, c + i, n - i < piece ? n - i : piece);
	sha256_final(&s, dig);
	sha256_hex(dig, out);
}

int main(void)
{
	static const struct { const char *in; const char *want; } v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	char out[65];
	char *a = malloc(1000000);

	must(a != NULL, "malloc");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		for (size_t piece = 1; piece <= 70; piece++) {
			hex_of(v[i].in, strlen(v[i].in), piece, out);
			CHECK(!strcmp(out, v[i].want), "\"%s\" in pieces of %zu: %s", v[i].in,
			      piece, out);
		}
	memset(a, 'a', 1000000);
	hex_of(a, 1000000, 4093, out);
	CHECK(!strcmp(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
	      "a million 'a': %s", out);
	free(a);
	return check_done();
}
