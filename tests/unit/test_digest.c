/* Unit tests for common/digest: parsing, formatting, hashing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/digest.h"

/* sha256("") and sha256("abc"), from FIPS 180-2. */
#define EMPTY_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_parse_format_roundtrip(void **state)
{
	struct digest d;
	char s[DIGEST_STR_SIZE], hex[DIGEST_HEX_LEN + 1];

	(void)state;
	assert_int_equal(digest_parse(&d, "sha256:" ABC_HEX), 0);
	assert_int_equal(d.raw[0], 0xba);
	assert_int_equal(d.raw[31], 0xad);
	assert_string_equal(digest_format(&d, s), "sha256:" ABC_HEX);
	assert_string_equal(digest_hex(&d, hex), ABC_HEX);
	assert_int_equal(digest_parse_n(&d, "sha256:" ABC_HEX "junk", 71), 0);
	assert_string_equal(digest_format(&d, s), "sha256:" ABC_HEX);
}

static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"sha256:",
		"sha256",
		"sha256:" ABC_HEX "0",
		"sha256:" ABC_HEX "\n",
		"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
		"sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
		"sha256:ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"SHA256:" ABC_HEX,
		"sha512:" ABC_HEX,
		"sha384:" ABC_HEX,
		" sha256:" ABC_HEX,
		"sha256 " ABC_HEX,
		ABC_HEX,
	};
	struct digest d;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&d, 0xff, sizeof(d));
		assert_int_equal(digest_parse(&d, bad[i]), -EINVAL);
		assert_int_equal(d.raw[0], 0); /* zeroed on failure */
	}
	assert_int_equal(digest_parse(&d, NULL), -EINVAL);
	/* An embedded NUL inside the counted form is rejected too. */
	{
		char s[] = "sha256:" ABC_HEX;

		s[20] = '\0';
		assert_int_equal(digest_parse_n(&d, s, sizeof(s) - 1), -EINVAL);
	}
}

static void test_algorithm_name(void **state)
{
	char a[16];

	(void)state;
	assert_string_equal(digest_algorithm("sha512:abcd", a, sizeof(a)), "sha512");
	assert_string_equal(digest_algorithm("nocolon", a, sizeof(a)), "");
	assert_string_equal(digest_algorithm("Sh\x01:x", a, sizeof(a)), "?h?");
	assert_string_equal(digest_algorithm("averyveryverylongalgorithm:x", a, sizeof(a)),
			    "averyveryverylo");
	assert_string_equal(digest_algorithm(NULL, a, sizeof(a)), "");
}

static void test_cmp(void **state)
{
	struct digest a, b;

	(void)state;
	assert_int_equal(digest_parse(&a, "sha256:" ABC_HEX), 0);
	assert_int_equal(digest_parse(&b, "sha256:" EMPTY_HEX), 0);
	assert_true(digest_cmp(&a, &b) < 0); /* 0xba < 0xe3 */
	assert_true(digest_cmp(&b, &a) > 0);
	assert_false(digest_equal(&a, &b));
	b = a;
	assert_true(digest_equal(&a, &b));
	assert_int_equal(digest_cmp(&a, &b), 0);
}

static void test_of_buf(void **state)
{
	struct digest d, want;

	(void)state;
	assert_int_equal(digest_of_buf(&d, "abc", 3), 0);
	assert_int_equal(digest_parse(&want, "sha256:" ABC_HEX), 0);
	assert_true(digest_equal(&d, &want));
	assert_int_equal(digest_of_buf(&d, NULL, 0), 0);
	assert_int_equal(digest_parse(&want, "sha256:" EMPTY_HEX), 0);
	assert_true(digest_equal(&d, &want));
}

static void test_hasher_streaming(void **state)
{
	/* 1 MB of pseudo-random bytes hashed in odd-sized pieces must match
	 * the one-shot digest, and final() must verify against it. */
	size_t n = 1 << 20, off = 0, step = 1;
	unsigned char *data = malloc(n);
	struct digest_hasher *h;
	struct digest whole, got, other;
	uint32_t x = 12345;
	size_t i;

	(void)state;
	assert_non_null(data);
	for (i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (unsigned char)(x >> 24);
	}
	assert_int_equal(digest_of_buf(&whole, data, n), 0);

	assert_int_equal(digest_hasher_new(&h), 0);
	while (off < n) {
		size_t k = step < n - off ? step : n - off;

		assert_int_equal(digest_hasher_update(h, data + off, k), 0);
		off += k;
		step = step * 3 + 1;
	}
	assert_int_equal(digest_hasher_final(h, &whole, &got), 0);
	assert_true(digest_equal(&got, &whole));
	/* Used up: a second final or update is refused. */
	assert_int_equal(digest_hasher_final(h, NULL, NULL), -EINVAL);
	assert_int_equal(digest_hasher_update(h, "x", 1), -EINVAL);
	digest_hasher_free(h);

	/* One flipped byte → -EBADMSG against the expected digest. */
	data[n / 2] ^= 1;
	assert_int_equal(digest_hasher_new(&h), 0);
	assert_int_equal(digest_hasher_update(h, data, n), 0);
	assert_int_equal(digest_hasher_final(h, &whole, &other), -EBADMSG);
	assert_false(digest_equal(&other, &whole));
	digest_hasher_free(h);
	digest_hasher_free(NULL);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_format_roundtrip),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_algorithm_name),
		cmocka_unit_test(test_cmp),
		cmocka_unit_test(test_of_buf),
		cmocka_unit_test(test_hasher_streaming),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
