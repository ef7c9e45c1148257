/* test_digest.c - the digest is frozen: identifiers of every image depend on
 * it. These values were produced by this implementation when it was written;
 * a change here changes every user's disk id and UUIDs. */
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "digest.h"

int main(void)
{
	struct digest d;
	uint8_t out[16];
	uint64_t a, b, c;

	digest_init(&d);
	a = digest_final(&d);
	digest_str(&d, "boot");
	b = digest_final(&d);
	c = digest_derive(&d, "disk-id");
	digest_fill(&d, "ext4-uuid", out, sizeof(out));
	printf("empty %016llx boot %016llx disk-id %016llx uuid0 %02x\n",
	       (unsigned long long)a, (unsigned long long)b, (unsigned long long)c, out[0]);
	CHECK(a != b && b != c && c != digest_derive(&d, "disk-ie"), "distinct inputs collide");
	CHECK(a == 0xd1fd9291f837f2e7ull && b == 0x73455f688cb2e9f6ull &&
	      c == 0x63b240c435903f42ull && out[0] == 0xb8,
	      "digest changed: every image's identifiers would change");
	return check_done();
}
