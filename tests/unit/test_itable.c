/*
 * Inode table: keys whose hashes collide, growth, forgets in any order,
 * inode numbers far apart, concurrent references. (Basic use and the
 * budget charge are in test_dcache.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/itable.h"

/*
 * `n` keys of 10-digit ids after distinct prefixes that all hash to
 * `target`, for one chain of them. White box: fs/itable.c's hash_key is a
 * hash of the prefix and digit count plus the number, so a probe key's hash
 * (struct inode.hash) gives the number to use after its prefix. The test
 * asserts the collisions, so that a new hash fails here, not silently.
 */
static void colliding_keys(struct itable *t, char (*keys)[32], int n, uint32_t target)
{
	for (int j = 1, k = 0; k < n; j++) {
		char probe[32];
		struct inode *p;
		uint32_t num;

		snprintf(probe, sizeof(probe), "X/%d|abc|R:1000000000", j);
		assert_int_equal(itable_ref(t, probe, 4, "repo", probe + 2, &p), 0);
		num = target - (p->hash - 1000000000u);
		itable_forget(t, p->ino, 1);
		if (num >= 1000000000u)
			snprintf(keys[k++], sizeof(keys[0]), "X/%d|abc|R:%" PRIu32, j, num);
	}
}

/* Reference `key` again: the same inode, with one lookup more; then give
 * that lookup back. */
static void assert_found(struct itable *t, const char *key, struct inode *want)
{
	struct inode *n;
	uint64_t nl = want->nlookup;

	assert_int_equal(itable_ref(t, key, 4, "repo", key + 2, &n), 0);
	assert_ptr_equal(n, want);
	assert_int_equal(n->nlookup, nl + 1);
	assert_string_equal(n->key, key);
	assert_ptr_equal(itable_get(t, n->ino), n);
	itable_forget(t, n->ino, 1);
	assert_int_equal(n->nlookup, nl);
}

/*
 * Keys with equal hashes are different inodes; each stays findable by key
 * and by number while the table grows past them, and forgetting one (first,
 * middle or last of their chain) leaves the others. The table's bytes come
 * back to what they were.
 */
static void test_colliding_keys(void **s)
{
	enum { NZ = 40, NOTHER = 5000 };
	struct itable *t;
	struct inode *z[NZ], *other[NOTHER];
	char key[64], zk[NZ][32];
	uint64_t bytes0;
	/* Forget order: middle, last, first, then the rest. */
	int order[NZ], k = 0;

	(void)s;
	assert_int_equal(itable_new(&t, 1, "D/"), 0);
	bytes0 = itable_bytes(t);
	colliding_keys(t, zk, NZ, 0x9abcdef0u);
	for (int i = 0; i < NZ; i++) {
		assert_int_equal(itable_ref(t, zk[i], 4, "repo", zk[i] + 2, &z[i]), 0);
		assert_int_equal(z[i]->hash, 0x9abcdef0u);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(z[i]->ino, z[j]->ino);
		assert_ptr_equal(z[i]->b, z[i]->key + 2);
	}
	/* Grow the table several times (1024 buckets at first). */
	for (int i = 0; i < NOTHER; i++) {
		snprintf(key, sizeof(key), "X/1|abc|R:%d", i + 100);
		assert_int_equal(itable_ref(t, key, 4, "repo", key + 2, &other[i]), 0);
	}
	assert_int_equal(itable_count(t), 1 + NZ + NOTHER);
	for (int i = 0; i < NZ; i++)
		assert_found(t, zk[i], z[i]);
	for (int i = 0; i < NOTHER; i += 7) {
		snprintf(key, sizeof(key), "X/1|abc|R:%d", i + 100);
		assert_found(t, key, other[i]);
	}

	order[k++] = NZ / 2;
	order[k++] = NZ - 1;
	order[k++] = 0;
	for (int i = 1; i < NZ - 1; i++)
		if (i != NZ / 2)
			order[k++] = i;
	for (k = 0; k < NZ; k++) {
		uint64_t ino = z[order[k]]->ino;

		itable_forget(t, ino, 1);
		assert_null(itable_get(t, ino));
		z[order[k]] = NULL;
		for (int i = 0; i < NZ; i++) {
			if (z[i])
				assert_found(t, zk[i], z[i]);
		}
	}
	/* A forgotten key comes back as a new inode. */
	assert_int_equal(itable_ref(t, zk[NZ / 2], 4, "repo", zk[NZ / 2] + 2, &z[0]), 0);
	assert_true(z[0]->ino > other[NOTHER - 1]->ino);
	itable_forget(t, z[0]->ino, 1);

	for (int i = NOTHER - 1; i >= 0; i--)
		itable_forget(t, other[i]->ino, 1);
	assert_int_equal(itable_count(t), 1);
	/* Only the grown arrays are left of the nodes. */
	assert_true(itable_bytes(t) > bytes0);
	itable_free(t);
}

/*
 * Keys the hash reads unusually: a trailing number longer than any
 * integer, keys of digits only, one with no digits, and the same digits
 * after different prefixes.
 */
static void test_odd_keys(void **s)
{
	const char *keys[] = {
		"X/1|abc|R:123456789012345678901234567890",
		"X/1|abc|R:123456789012345678901234567891",
		"X/1|abc|R:0",
		"X/1|abc|R:",
		"12345",
		"012345",
		"7",
		"",
		"P/3/linux-amd64|sha256:0123456789abcdef",
		"P/3/linux-arm64|sha256:0123456789abcdef",
		"T/a/b:v1",
		"T/a/c:v1",
	};
	enum { N = sizeof(keys) / sizeof(keys[0]) };
	struct itable *t;
	struct inode *n[N];

	(void)s;
	assert_int_equal(itable_new(&t, 1, "D/"), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(itable_ref(t, keys[i], 2, "a", NULL, &n[i]), 0);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(n[i], n[j]);
	}
	for (int i = 0; i < N; i++) {
		struct inode *again;

		assert_int_equal(itable_ref(t, keys[i], 2, "a", NULL, &again), 0);
		assert_ptr_equal(again, n[i]);
		assert_int_equal(again->nlookup, 2);
	}
	for (int i = 0; i < N; i++)
		itable_forget(t, n[i]->ino, 2);
	assert_int_equal(itable_count(t), 1);
	itable_free(t);
}

/* Names a registry chooses that differ only in leading zeros do not share
 * a hash (and a chain): hash_key counts the digits. */
static void test_leading_zeros(void **s)
{
	struct itable *t;
	struct inode *n[6];
	char key[32];

	(void)s;
	assert_int_equal(itable_new(&t, 1, "D/"), 0);
	for (int i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "T/repo:t%0*d", i + 1, 7);
		assert_int_equal(itable_ref(t, key, 2, "repo", NULL, &n[i]), 0);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(n[i]->hash, n[j]->hash);
	}
	itable_free(t);
}

/*
 * Live inodes whose numbers are a multiple of the table's size apart, as
 * forgets can leave them, are each found by number and key, and go when
 * forgotten.
 */
static void test_inos_far_apart(void **s)
{
	enum { N = 20000 };
	struct itable *t;
	struct inode **n = calloc(N, sizeof(*n));
	char key[32];
	uint64_t live = 0;

	(void)s;
	assert_non_null(n);
	assert_int_equal(itable_new(&t, 1, "D/"), 0);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "D/f%d", i);
		assert_int_equal(itable_ref(t, key, 1, key + 2, NULL, &n[i]), 0);
	}
	for (int i = 0; i < N; i++)
		if (n[i]->ino % 1024 != 5) {
			itable_forget(t, n[i]->ino, 1);
			n[i] = NULL;
		} else {
			live++;
		}
	assert_true(live >= N / 1024);
	assert_int_equal(itable_count(t), 1 + live);
	for (int i = 0; i < N; i++) {
		if (!n[i])
			continue;
		snprintf(key, sizeof(key), "D/f%d", i);
		assert_ptr_equal(itable_get(t, n[i]->ino), n[i]);
		assert_found(t, key, n[i]);
	}
	/* More inodes after them: new numbers, the old ones still there. */
	for (int i = 0; i < N; i++) {
		struct inode *m;

		snprintf(key, sizeof(key), "D/g%d", i);
		assert_int_equal(itable_ref(t, key, 1, key + 2, NULL, &m), 0);
	}
	for (int i = 0; i < N; i++)
		if (n[i]) {
			uint64_t ino = n[i]->ino;

			assert_ptr_equal(itable_get(t, ino), n[i]);
			itable_forget(t, ino, 1);
			assert_null(itable_get(t, ino));
		}
	assert_int_equal(itable_count(t), 1 + N);
	free(n);
	itable_free(t);
}

struct refs {
	struct itable *t;
	struct inode **got;
	int n;
};

static void *ref_all(void *arg)
{
	struct refs *r = arg;
	char key[32];

	for (int i = 0; i < r->n; i++) {
		snprintf(key, sizeof(key), "X/1|abc|R:%d", i);
		if (itable_ref(r->t, key, 4, "repo", key + 2, &r->got[i]))
			r->got[i] = NULL;
	}
	return NULL;
}

/* Two threads referencing the same keys at once (the table growing under
 * them) get the same inodes, each with both lookups. */
static void test_concurrent_refs(void **s)
{
	enum { N = 20000 };
	struct itable *t;
	struct refs r[2];
	pthread_t th[2];

	(void)s;
	assert_int_equal(itable_new(&t, 1, "D/"), 0);
	for (int i = 0; i < 2; i++) {
		r[i].t = t;
		r[i].n = N;
		r[i].got = calloc(N, sizeof(*r[i].got));
		assert_non_null(r[i].got);
		assert_int_equal(pthread_create(&th[i], NULL, ref_all, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(itable_count(t), 1 + N);
	for (int i = 0; i < N; i++) {
		assert_non_null(r[0].got[i]);
		assert_ptr_equal(r[0].got[i], r[1].got[i]);
		assert_int_equal(r[0].got[i]->nlookup, 2);
	}
	for (int i = 0; i < 2; i++)
		free(r[i].got);
	itable_free(t);
}

/*
 * The hash is keyed per table: the same names hash differently in two
 * tables (a registry cannot pick names that share a chain without knowing
 * the seed), while names differing in a trailing number stay neighbours.
 */
static void test_seeded(void **s)
{
	struct itable *t[2];
	struct inode *n[2][3];
	const char *keys[3] = { "T/library/alpine:latest", "D/some/repo", "T/r:v1" };
	int differ = 0;

	(void)s;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(itable_new(&t[i], 1, "D/"), 0);
		for (int k = 0; k < 3; k++)
			assert_int_equal(itable_ref(t[i], keys[k], 2, "r", NULL, &n[i][k]), 0);
	}
	for (int k = 0; k < 3; k++)
		differ += n[0][k]->hash != n[1][k]->hash;
	assert_true(differ >= 2); /* 32-bit hashes: equal by chance ~2^-32 each */
	{
		struct inode *a, *b;

		assert_int_equal(itable_ref(t[0], "X/1|abc|R:41", 3, "r", NULL, &a), 0);
		assert_int_equal(itable_ref(t[0], "X/1|abc|R:42", 3, "r", NULL, &b), 0);
		assert_int_equal(b->hash - a->hash, 1);
	}
	itable_free(t[0]);
	itable_free(t[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_colliding_keys),
		cmocka_unit_test(test_odd_keys),
		cmocka_unit_test(test_leading_zeros),
		cmocka_unit_test(test_inos_far_apart),
		cmocka_unit_test(test_concurrent_refs),
		cmocka_unit_test(test_seeded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
