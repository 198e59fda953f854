/*
 * blockhash: per-block SHA-256 sums of a stream, with and without the worker
 * thread, in any feeding pattern, compared with sums computed directly; the
 * verification of bytes read back (every block checked, the first bad one
 * named, misaligned ranges refused).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "image/blockhash.h"

#define BS (4u << 10)

static unsigned char *gen(size_t n, uint32_t seed)
{
	unsigned char *p = malloc(n ? n : 1);
	uint64_t x = seed;
	size_t i;

	assert_non_null(p);
	for (i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (unsigned char)(x >> 33);
	}
	return p;
}

/* Sums of `len` bytes computed block by block with digest_of_buf. */
static void oracle(const unsigned char *p, size_t len, uint32_t bs, struct blocksums *o)
{
	uint64_t i, n = blocksums_count(len, bs);

	o->bsize = bs;
	o->len = len;
	o->n = n;
	o->sum = malloc(n ? n * DIGEST_RAW_LEN : 1);
	assert_non_null(o->sum);
	for (i = 0; i < n; i++) {
		size_t k = len - i * bs < bs ? len - i * bs : bs;
		struct digest d;

		assert_int_equal(digest_of_buf(&d, p + i * bs, k), 0);
		memcpy(o->sum + i * DIGEST_RAW_LEN, d.raw, DIGEST_RAW_LEN);
	}
}

/* Feed `len` bytes in pieces of `step` (0: pseudo-random sizes up to 3 blocks). */
static void hash_stream(const unsigned char *p, size_t len, uint32_t bs, bool worker,
			size_t step, struct blocksums *out)
{
	struct blockhash *h;
	size_t off = 0;
	uint32_t x = 7;

	assert_int_equal(blockhash_new(&h, bs, worker), 0);
	while (off < len) {
		size_t k = step;

		if (!k) {
			x = x * 1103515245u + 12345u;
			k = 1 + (x >> 8) % (3 * bs);
		}
		if (k > len - off)
			k = len - off;
		assert_int_equal(blockhash_feed(h, p + off, k), 0);
		off += k;
	}
	assert_int_equal(blockhash_finish(h, out), 0);
	assert_int_equal(blockhash_feed(h, p, 1), -EINVAL);
	blockhash_free(h);
}

static void test_matches_direct_sums(void **state)
{
	static const size_t lens[] = { 0, 1, BS - 1, BS, BS + 1, 5 * BS, (300u << 10) + 17,
				       (2u << 20) + BS, 3u << 20 };
	static const size_t steps[] = { 1, 7, BS, 65536, 1u << 20, 0 };
	size_t i, j, w;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		unsigned char *p = gen(lens[i], (uint32_t)i);
		struct blocksums want;

		oracle(p, lens[i], BS, &want);
		for (w = 0; w < 2; w++) {
			for (j = 0; j < sizeof(steps) / sizeof(steps[0]); j++) {
				struct blocksums got;

				if (steps[j] == 1 && lens[i] > 100000)
					continue; /* byte by byte: only the small cases */
				hash_stream(p, lens[i], BS, w == 1, steps[j], &got);
				assert_int_equal(got.bsize, BS);
				assert_int_equal(got.len, lens[i]);
				assert_int_equal(got.n, want.n);
				if (want.n)
					assert_memory_equal(got.sum, want.sum, want.n * DIGEST_RAW_LEN);
				blocksums_release(&got);
			}
		}
		blocksums_release(&want);
		free(p);
	}
}

/* Blocks as large as a worker batch or larger (1 MiB). */
static void test_big_blocks(void **state)
{
	size_t len = (5u << 20) + 3;
	unsigned char *p = gen(len, 99);
	struct blocksums want, got;

	(void)state;
	oracle(p, len, BLOCKHASH_MAX, &want);
	hash_stream(p, len, BLOCKHASH_MAX, true, 100000, &got);
	assert_int_equal(got.n, 6);
	assert_memory_equal(got.sum, want.sum, want.n * DIGEST_RAW_LEN);
	blocksums_release(&got);
	hash_stream(p, len, BLOCKHASH_MAX, false, 0, &got);
	assert_memory_equal(got.sum, want.sum, want.n * DIGEST_RAW_LEN);
	blocksums_release(&got);
	blocksums_release(&want);
	free(p);
}

static void test_bad_block_size(void **state)
{
	struct blockhash *h = (struct blockhash *)1;

	(void)state;
	assert_int_equal(blockhash_new(&h, 0, false), -EINVAL);
	assert_null(h);
	assert_int_equal(blockhash_new(&h, BS + 1, false), -EINVAL);
	assert_int_equal(blockhash_new(&h, BLOCKHASH_MIN / 2, true), -EINVAL);
	assert_int_equal(blockhash_new(&h, BLOCKHASH_MAX * 2, true), -EINVAL);
	blockhash_free(NULL);
}

/* Freed while the worker still has batches posted, or before finishing. */
static void test_free_unfinished(void **state)
{
	size_t len = 3u << 20;
	unsigned char *p = gen(len, 5);
	struct blockhash *h;
	int w;

	(void)state;
	for (w = 0; w < 2; w++) {
		assert_int_equal(blockhash_new(&h, BS, w == 1), 0);
		assert_int_equal(blockhash_feed(h, p, len), 0);
		blockhash_free(h);
	}
	assert_int_equal(blockhash_new(&h, BS, true), 0);
	blockhash_free(h);
	free(p);
}

static void test_verify(void **state)
{
	size_t len = 10 * BS + 100;
	unsigned char *p = gen(len, 11);
	struct blocksums s;
	uint64_t bad = 99;

	(void)state;
	hash_stream(p, len, BS, false, 0, &s);
	assert_int_equal(s.n, 11);
	assert_int_equal(blocksums_verify(&s, 0, p, len, &bad), 0);
	assert_int_equal(blocksums_verify(&s, 3 * BS, p + 3 * BS, 2 * BS, &bad), 0);
	assert_int_equal(blocksums_verify(&s, 10 * BS, p + 10 * BS, 100, &bad), 0);
	assert_int_equal(blocksums_verify(&s, 0, p, 0, &bad), 0);
	/* Not whole blocks, or past the end. */
	assert_int_equal(blocksums_verify(&s, 1, p + 1, BS, &bad), -EINVAL);
	assert_int_equal(blocksums_verify(&s, 0, p, BS + 1, &bad), -EINVAL);
	assert_int_equal(blocksums_verify(&s, 10 * BS, p + 10 * BS, 99, &bad), -EINVAL);
	assert_int_equal(blocksums_verify(&s, 10 * BS, p + 10 * BS, 101, &bad), -EINVAL);
	assert_int_equal(blocksums_verify(&s, 11 * BS, p, 0, &bad), -EINVAL);
	/* One flipped bit anywhere: the block holding it is named. */
	p[7 * BS + 5] ^= 0x10;
	assert_int_equal(blocksums_verify(&s, 0, p, len, &bad), -EBADMSG);
	assert_int_equal(bad, 7);
	assert_int_equal(blocksums_verify(&s, 6 * BS, p + 6 * BS, 2 * BS, &bad), -EBADMSG);
	assert_int_equal(bad, 7);
	assert_int_equal(blocksums_verify(&s, 0, p, 7 * BS, &bad), 0);
	p[7 * BS + 5] ^= 0x10;
	p[len - 1] ^= 1;
	assert_int_equal(blocksums_verify(&s, 8 * BS, p + 8 * BS, len - 8 * BS, &bad), -EBADMSG);
	assert_int_equal(bad, 10);
	blocksums_release(&s);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches_direct_sums),
		cmocka_unit_test(test_big_blocks),
		cmocka_unit_test(test_bad_block_size),
		cmocka_unit_test(test_free_unfinished),
		cmocka_unit_test(test_verify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
