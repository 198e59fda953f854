/* Dirent cache: TTL, negative entries, single-flight, invalidation races. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/dcache.h"
#include "fs/itable.h"
#include "image/budget.h"

struct counter {
	int calls; /* atomic */
	int result;
	useconds_t delay;
	struct dcache *c; /* for the invalidate-during-fetch test */
};

static int fetch(void *ctx, const char *key, struct strvec *out)
{
	struct counter *k = ctx;

	__atomic_add_fetch(&k->calls, 1, __ATOMIC_SEQ_CST);
	if (k->delay)
		usleep(k->delay);
	if (k->c)
		dcache_invalidate(k->c, key);
	if (k->result)
		return k->result;
	return strvec_push(out, key);
}

static void test_hit_and_negative(void **s)
{
	struct counter k = { 0, 0, 0, NULL };
	struct dcache *c;
	struct dlist *l;

	(void)s;
	assert_int_equal(dcache_new(&c, 60, fetch, &k), 0);
	assert_int_equal(dcache_get(c, "a", &l), 0);
	assert_true(dlist_has(l, "a"));
	dlist_put(l);
	assert_int_equal(dcache_get(c, "a", &l), 0);
	dlist_put(l);
	assert_int_equal(k.calls, 1);
	k.result = -ENOENT;
	assert_int_equal(dcache_get(c, "b", &l), 0);
	assert_int_equal(l->err, -ENOENT);
	assert_false(dlist_has(l, "b"));
	dlist_put(l);
	assert_int_equal(dcache_get(c, "b", &l), 0);
	dlist_put(l);
	assert_int_equal(k.calls, 2);
	k.result = -EIO; /* never cached, only held for a moment */
	assert_int_equal(dcache_get(c, "c", &l), -EIO);
	assert_int_equal(dcache_get(c, "c", &l), -EIO);
	assert_int_equal(k.calls, 3); /* the second caller took the held failure */
	dcache_invalidate(c, "c");    /* which an invalidation drops */
	assert_int_equal(dcache_get(c, "c", &l), -EIO);
	assert_int_equal(k.calls, 4);
	assert_int_equal(dcache_peek(c, "a", &l), 0);
	dlist_put(l);
	assert_int_equal(dcache_peek(c, "zz", &l), -ENOENT);
	dcache_invalidate(c, "a");
	assert_int_equal(dcache_peek(c, "a", &l), -ENOENT);
	dcache_free(c);
}

static void test_ttl_expiry(void **s)
{
	struct counter k = { 0, 0, 0, NULL };
	struct dcache *c;
	struct dlist *l;

	(void)s;
	assert_int_equal(dcache_new(&c, 1, fetch, &k), 0);
	assert_int_equal(dcache_get(c, "a", &l), 0);
	dlist_put(l);
	usleep(1100000);
	assert_int_equal(dcache_get(c, "a", &l), 0);
	dlist_put(l);
	assert_int_equal(k.calls, 2);
	dcache_free(c);
}

struct th {
	struct dcache *c;
	int rc;
};

static void *getter(void *p)
{
	struct th *t = p;
	struct dlist *l = NULL;

	t->rc = dcache_get(t->c, "shared", &l);
	if (!t->rc && !dlist_has(l, "shared"))
		t->rc = -EBADMSG;
	dlist_put(l);
	return NULL;
}

static void test_single_flight(void **s)
{
	struct counter k = { 0, 0, 200000, NULL };
	struct th t[8];
	pthread_t id[8];
	struct dcache *c;
	int i;

	(void)s;
	assert_int_equal(dcache_new(&c, 60, fetch, &k), 0);
	for (i = 0; i < 8; i++) {
		t[i].c = c;
		pthread_create(&id[i], NULL, getter, &t[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(id[i], NULL);
		assert_int_equal(t[i].rc, 0);
	}
	assert_int_equal(k.calls, 1);
	dcache_free(c);
}

struct th_err {
	struct dcache *c;
	int rc;
};

static void *getter_any(void *p)
{
	struct th_err *t = p;
	struct dlist *l = NULL;

	t->rc = dcache_get(t->c, "shared", &l);
	dlist_put(l);
	return NULL;
}

/* A failed fill hands its error to the callers waiting for it: one fetch, not 8. */
static void test_single_flight_error(void **s)
{
	struct counter k = { 0, -ETIMEDOUT, 300000, NULL };
	struct th_err t[8];
	pthread_t id[8];
	struct dcache *c;
	struct dlist *l;
	int i;

	(void)s;
	assert_int_equal(dcache_new(&c, 60, fetch, &k), 0);
	for (i = 0; i < 8; i++) {
		t[i].c = c;
		pthread_create(&id[i], NULL, getter_any, &t[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(id[i], NULL);
		assert_int_equal(t[i].rc, -ETIMEDOUT);
	}
	assert_int_equal(k.calls, 1);
	/* A caller right after the failure (as the kernel hands a directory's
	 * readers over one by one) takes it too, without a fetch. */
	k.result = 0;
	k.delay = 0;
	assert_int_equal(dcache_get(c, "shared", &l), -ETIMEDOUT);
	assert_int_equal(k.calls, 1);
	/* The error is not cached: once the hold (1 s) is over, the next caller
	 * fetches, and may succeed. */
	usleep(1100000);
	assert_int_equal(dcache_get(c, "shared", &l), 0);
	assert_true(dlist_has(l, "shared"));
	dlist_put(l);
	assert_int_equal(k.calls, 2);
	dcache_free(c);
}

static void test_invalidate_during_fetch(void **s)
{
	struct counter k = { 0, 0, 0, NULL };
	struct dcache *c;
	struct dlist *l;

	(void)s;
	assert_int_equal(dcache_new(&c, 60, fetch, &k), 0);
	k.c = c; /* the fetch races with an invalidation */
	assert_int_equal(dcache_get(c, "a", &l), 0);
	assert_true(dlist_has(l, "a")); /* the caller still gets its answer */
	dlist_put(l);
	k.c = NULL;
	/* but it was not published as fresh: the next get fetches again */
	assert_int_equal(dcache_get(c, "a", &l), 0);
	dlist_put(l);
	assert_int_equal(k.calls, 2);
	dcache_free(c);
}

/* ---- the memory budget ----------------------------------------------------- */

/* What one list of fetch() ("k000": one name, its key) is charged. */
static uint64_t one_list_bytes(void)
{
	struct counter k = { 0, 0, 0, NULL };
	struct dcache *c;
	struct dlist *l;
	uint64_t n;

	assert_int_equal(dcache_new(&c, 60, fetch, &k), 0);
	assert_int_equal(dcache_get(c, "k000", &l), 0);
	dlist_put(l);
	n = dcache_bytes(c);
	dcache_free(c);
	return n;
}

static uint64_t charged(struct budget *b, uint64_t *units)
{
	struct budget_stats st;

	budget_get_stats(b, &st);
	if (units)
		*units = st.units;
	return st.bytes;
}

static void get_key(struct dcache *c, unsigned i)
{
	char key[16];
	struct dlist *l;

	snprintf(key, sizeof(key), "k%03u", i);
	assert_int_equal(dcache_get(c, key, &l), 0);
	assert_true(dlist_has(l, key));
	dlist_put(l);
}

static int peek_key(struct dcache *c, unsigned i)
{
	char key[16];
	struct dlist *l;
	int rc;

	snprintf(key, sizeof(key), "k%03u", i);
	rc = dcache_peek_stale(c, key, &l);
	dlist_put(l);
	return rc;
}

/*
 * Many keys under a budget of ten lists: the charge stays within the bound
 * (one list over at most), the least recently used lists go one by one (a
 * list used all along stays), and an evicted key is fetched again.
 */
static void test_budget_lru(void **s)
{
	struct counter k = { 0, 0, 0, NULL };
	uint64_t one = one_list_bytes(), units;
	struct budget_stats st;
	struct budget *b;
	struct dcache *c;
	unsigned i;

	(void)s;
	assert_true(one > 0);
	assert_int_equal(budget_new(&b, 10 * one), 0);
	assert_int_equal(dcache_new(&c, 60, fetch, &k), 0);
	dcache_set_budget(c, b, NULL);
	for (i = 0; i < 100; i++) {
		get_key(c, i);
		get_key(c, 0); /* used all along */
		assert_true(charged(b, NULL) <= 10 * one + one);
		assert_int_equal(charged(b, NULL), dcache_bytes(c));
	}
	assert_int_equal(k.calls, 100); /* k000 never went */
	budget_get_stats(b, &st);
	assert_true(st.evictions >= 89);
	assert_true(st.units <= 11);
	assert_int_equal(peek_key(c, 0), 0);
	assert_int_equal(peek_key(c, 99), 0);
	/* An early key was evicted: no stale list to peek at, and a get fetches. */
	assert_int_equal(peek_key(c, 1), -ENOENT);
	get_key(c, 1);
	assert_int_equal(k.calls, 101);
	get_key(c, 1);
	assert_int_equal(k.calls, 101);
	dcache_free(c);
	assert_int_equal(charged(b, &units), 0);
	assert_int_equal(units, 0);
	budget_free(b);
}

/*
 * A list a caller holds is not evicted (-EBUSY: the budget counts it as
 * busy and goes on with others); once dropped it may go. Invalidation
 * uncharges at once; dcache_free leaves nothing charged.
 */
static void test_budget_held_and_invalidate(void **s)
{
	struct counter k = { 0, 0, 0, NULL };
	uint64_t one = one_list_bytes(), units;
	struct budget_stats st;
	struct dlist *held;
	struct budget *b;
	struct dcache *c;
	unsigned i;

	(void)s;
	assert_int_equal(budget_new(&b, 3 * one), 0);
	assert_int_equal(dcache_new(&c, 60, fetch, &k), 0);
	dcache_set_budget(c, b, NULL);
	assert_int_equal(dcache_get(c, "k000", &held), 0);
	for (i = 1; i < 20; i++)
		get_key(c, i);
	budget_get_stats(b, &st);
	assert_true(st.busy >= 1);
	assert_true(st.bytes <= 3 * one + one);
	assert_int_equal(peek_key(c, 0), 0); /* the oldest, but held */
	assert_string_equal(held->names.v[0], "k000");
	dlist_put(held);
	for (i = 20; i < 24; i++)
		get_key(c, i);
	assert_int_equal(peek_key(c, 0), -ENOENT); /* dropped, then evicted */
	get_key(c, 0);
	assert_int_equal(k.calls, 25);

	/* Invalidation: one key, then everything. */
	assert_int_equal(charged(b, &units), dcache_bytes(c));
	dcache_invalidate(c, "k000");
	assert_int_equal(charged(b, NULL), dcache_bytes(c));
	dcache_invalidate(c, NULL);
	assert_int_equal(dcache_bytes(c), 0);
	assert_int_equal(charged(b, &units), 0);
	assert_int_equal(units, 0);
	get_key(c, 5);
	assert_int_equal(charged(b, &units), one);
	assert_int_equal(units, 1);
	dcache_free(c);
	assert_int_equal(charged(b, &units), 0);
	assert_int_equal(units, 0);
	budget_free(b);
}

/* Metadata counts with the list, as meta_bytes measures it. */
static int fetch_meta(void *ctx, const char *key, struct strvec *out, void **meta)
{
	(void)ctx;
	*meta = malloc(1000);
	if (!*meta)
		return -ENOMEM;
	return strvec_push(out, key);
}

static size_t meta_10k(const void *meta)
{
	(void)meta;
	return 10000;
}

static void test_budget_meta(void **s)
{
	struct counter k = { 0, 0, 0, NULL };
	uint64_t one = one_list_bytes(), plain;
	struct budget *b;
	struct dcache *c;
	struct dlist *l;

	(void)s;
	assert_int_equal(budget_new(&b, 0), 0); /* no bound: counted all the same */
	assert_int_equal(dcache_new(&c, 60, fetch, &k), 0);
	dcache_set_meta(c, fetch_meta, free);
	dcache_set_budget(c, b, NULL);
	assert_int_equal(dcache_get(c, "k000", &l), 0);
	dlist_put(l);
	plain = dcache_bytes(c);
	assert_true(plain >= one + 1000); /* malloc_usable_size of the meta */
	assert_true(plain < one + 1100);
	assert_int_equal(charged(b, NULL), plain);
	dcache_free(c);
	assert_int_equal(dcache_new(&c, 60, fetch, &k), 0);
	dcache_set_meta(c, fetch_meta, free);
	dcache_set_budget(c, b, meta_10k);
	assert_int_equal(dcache_get(c, "k000", &l), 0);
	dlist_put(l);
	assert_int_equal(dcache_bytes(c), one + 10000);
	assert_int_equal(charged(b, NULL), one + 10000);
	dcache_free(c);
	assert_int_equal(charged(b, NULL), 0);
	budget_free(b);
}

/*
 * Threads get, peek and invalidate overlapping keys under a budget of a few
 * lists, so that every charge evicts others while they are fetched, held,
 * invalidated: every answer is right, and once they are done the charge is
 * exactly what the cache holds (no charge lost or left behind by a race
 * between a publish, an invalidation and an eviction). Under ASan a list
 * freed by an eviction while in use would show.
 */
struct stress {
	struct dcache *c;
	unsigned seed;
	int bad;
};

static void *stress_thread(void *p)
{
	struct stress *t = p;
	unsigned r = t->seed;

	for (int i = 0; i < 3000; i++) {
		char key[16];
		struct dlist *l = NULL;
		int op;

		r = r * 1103515245u + 12345u;
		snprintf(key, sizeof(key), "k%03u", (r >> 8) % 40);
		op = (int)((r >> 20) % 10);
		if (op < 6) {
			if (dcache_get(t->c, key, &l) || !dlist_has(l, key) || l->names.n != 1)
				t->bad++;
			if (l && op == 0)
				sched_yield(); /* held a while: evictions find it busy */
		} else if (op < 8) {
			if (!dcache_peek_stale(t->c, key, &l) && !dlist_has(l, key))
				t->bad++;
		} else if (op < 9) {
			dcache_invalidate(t->c, key);
		} else if ((r >> 28) == 0) {
			dcache_invalidate(t->c, NULL);
		}
		dlist_put(l);
	}
	return NULL;
}

static void test_budget_threads(void **s)
{
	struct counter k = { 0, 0, 0, NULL };
	uint64_t one = one_list_bytes(), units;
	struct stress t[6];
	pthread_t id[6];
	struct budget_stats st;
	struct budget *b;
	struct dcache *c;
	int i;

	(void)s;
	assert_int_equal(budget_new(&b, 5 * one), 0);
	assert_int_equal(dcache_new(&c, 60, fetch, &k), 0);
	dcache_set_budget(c, b, NULL);
	for (i = 0; i < 6; i++) {
		t[i] = (struct stress){ c, (unsigned)i * 7919u + 1u, 0 };
		assert_int_equal(pthread_create(&id[i], NULL, stress_thread, &t[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(id[i], NULL);
		assert_int_equal(t[i].bad, 0);
	}
	budget_get_stats(b, &st);
	assert_true(st.evictions > 0);
	assert_int_equal(st.bytes, dcache_bytes(c));
	/* The last charges may have found lists held (best effort): one more,
	 * with nothing held, trims to the bound. */
	get_key(c, 100);
	budget_get_stats(b, &st);
	assert_int_equal(st.bytes, dcache_bytes(c));
	assert_true(st.bytes <= 5 * one + one);
	dcache_free(c);
	assert_int_equal(charged(b, &units), 0);
	assert_int_equal(units, 0);
	budget_free(b);
}

static void test_itable(void **s)
{
	struct itable *t;
	struct inode *a, *a2, *b;
	uint64_t ino;

	(void)s;
	assert_int_equal(itable_new(&t, 1, "D/"), 0);
	assert_non_null(itable_get(t, 1));
	assert_int_equal(itable_ref(t, "D/x", 1, "x", NULL, &a), 0);
	assert_int_equal(itable_ref(t, "D/x", 1, "x", NULL, &a2), 0);
	assert_ptr_equal(a, a2);
	assert_int_equal(a->nlookup, 2);
	assert_int_equal(itable_ref(t, "T/x:v1", 2, "x", "v1", &b), 0);
	assert_int_not_equal(a->ino, b->ino);
	assert_string_equal(b->key, "T/x:v1");
	assert_string_equal(b->a, "x");
	assert_string_equal(b->b, "v1");
	assert_null(a->b);
	assert_int_equal(b->kind, 2);
	ino = a->ino;
	itable_forget(t, ino, 1);
	assert_non_null(itable_get(t, ino));
	itable_forget(t, ino, 1);
	assert_null(itable_get(t, ino));
	itable_forget(t, 1, 100); /* the root never goes */
	assert_non_null(itable_get(t, 1));
	/* growth past the initial buckets keeps every inode findable */
	for (int i = 0; i < 5000; i++) {
		char key[32];
		struct inode *n;

		snprintf(key, sizeof(key), "D/r%d", i);
		assert_int_equal(itable_ref(t, key, 1, key + 2, NULL, &n), 0);
		assert_ptr_equal(itable_get(t, n->ino), n);
	}
	assert_int_equal(itable_count(t), 5000 + 2);
	/* after growing, a key still finds its inode, payloads intact */
	for (int i = 0; i < 5000; i += 997) {
		char key[32];
		struct inode *n, *again;

		snprintf(key, sizeof(key), "D/r%d", i);
		assert_int_equal(itable_ref(t, key, 1, "other", NULL, &n), 0);
		assert_string_equal(n->a, key + 2); /* the first creation's payload */
		assert_int_equal(n->nlookup, 2);
		assert_int_equal(itable_ref(t, key, 1, key + 2, NULL, &again), 0);
		assert_ptr_equal(again, n);
	}
	assert_int_equal(itable_count(t), 5000 + 2);
	itable_free(t);
}

/* A unit the budget may evict: counts the evictions. */
struct tree_unit {
	struct budget_unit u;
	int evicted;
};

static int tree_unit_evict(struct budget_unit *u)
{
	((struct tree_unit *)u)->evicted++;
	return 0;
}

/*
 * The inode table's memory is charged to the budget in steps (never
 * evicted itself): growing it evicts other units, forgetting shrinks the
 * charge; a payload that is a suffix of the key costs no copy.
 */
static void test_itable_budget(void **s)
{
	struct itable *t;
	struct budget *b;
	struct budget_stats st;
	struct tree_unit tu;
	struct inode *n, *m;
	uint64_t before, per, i, ninodes = 20000;
	/* Arrays, not literals: a compiler may store a literal that is the
	 * tail of another inside it. */
	char key[64], k7[] = "V1|sha256:ab|R:7", b8[] = "1|sha256:ab|R:8";

	(void)s;
	assert_int_equal(itable_new(&t, 1, "D/"), 0);
	assert_int_equal(budget_new(&b, 2u << 20), 0);
	itable_set_budget(t, b);
	memset(&tu, 0, sizeof(tu));
	budget_unit_init(&tu.u, b, tree_unit_evict);
	budget_charge(&tu.u, 1u << 20); /* a tree: half the budget */

	/* b inside the key: not copied; elsewhere: copied. */
	before = itable_bytes(t);
	assert_int_equal(itable_ref(t, k7, 4, "repo", k7 + 2, &n), 0);
	assert_ptr_equal(n->b, n->key + 2);
	per = itable_bytes(t) - before;
	assert_int_equal(itable_ref(t, "V1|sha256:ab|R:8", 4, "repo", b8, &m), 0);
	assert_ptr_not_equal(m->b, m->key + 2);
	assert_string_equal(m->b, "1|sha256:ab|R:8");
	assert_true(itable_bytes(t) - before - per > per); /* its copy of b: 16 bytes more */
	itable_forget(t, n->ino, 1);
	itable_forget(t, m->ino, 1);
	assert_int_equal(itable_bytes(t), before);

	/* Growing past the budget (with the tree): the tree goes, not the table. */
	for (i = 0; i < ninodes; i++) {
		snprintf(key, sizeof(key), "V1|sha256:abcdef|R:%" PRIu64, i);
		assert_int_equal(itable_ref(t, key, 4, "some/repo", key + 2, &n), 0);
		itable_charge(t);
	}
	budget_get_stats(b, &st);
	assert_true(itable_bytes(t) > 2u << 20); /* > 100 bytes each, with slots */
	assert_true(itable_bytes(t) < ninodes * 200);
	assert_int_equal(tu.evicted, 1);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.units, 1); /* the table */
	/* Its first ITABLE_UNCOUNTED bytes are not counted. */
	assert_true(st.bytes + ITABLE_UNCOUNTED + ITABLE_CHARGE_STEP > itable_bytes(t));
	assert_true(st.bytes + ITABLE_UNCOUNTED <= itable_bytes(t));

	/* The kernel forgets them: the charge follows. */
	for (i = 4; i < ninodes + 4; i++) /* ino 1 the root, 2 and 3 the two above */
		itable_forget(t, i, 1);
	itable_charge(t);
	assert_int_equal(itable_count(t), 1);
	budget_get_stats(b, &st);
	assert_true(itable_bytes(t) < ITABLE_UNCOUNTED); /* the buckets stay */
	assert_true(st.bytes < ITABLE_CHARGE_STEP);
	itable_free(t); /* uncharges */
	budget_get_stats(b, &st);
	assert_int_equal(st.units, 0);
	assert_int_equal(st.bytes, 0);
	budget_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_and_negative),
		cmocka_unit_test(test_ttl_expiry),
		cmocka_unit_test(test_single_flight),
		cmocka_unit_test(test_single_flight_error),
		cmocka_unit_test(test_invalidate_during_fetch),
		cmocka_unit_test(test_budget_lru),
		cmocka_unit_test(test_budget_held_and_invalidate),
		cmocka_unit_test(test_budget_meta),
		cmocka_unit_test(test_budget_threads),
		cmocka_unit_test(test_itable),
		cmocka_unit_test(test_itable_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
