/* Dirent cache: TTL, negative entries, single-flight, invalidation races. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/dcache.h"
#include "fs/itable.h"

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
	k.result = -EIO; /* never cached */
	assert_int_equal(dcache_get(c, "c", &l), -EIO);
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
	/* The error is not cached: the next caller fetches, and may succeed. */
	k.result = 0;
	k.delay = 0;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_and_negative),
		cmocka_unit_test(test_ttl_expiry),
		cmocka_unit_test(test_single_flight),
		cmocka_unit_test(test_single_flight_error),
		cmocka_unit_test(test_invalidate_during_fetch),
		cmocka_unit_test(test_itable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
