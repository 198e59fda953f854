/* Registry directory listings: generations, offsets, mtimes and the TTL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/listing.h"
#include "image/budget.h"

static double fake_now;

static double fake_clock(void)
{
	return fake_now;
}

static const struct timespec T0 = { 1700000000, 0 };

/* A listing of `n` entries named e0, e1, ... */
static struct ns_ent *ents_of(size_t n)
{
	struct ns_ent *e = calloc(n ? n : 1, sizeof(*e));

	assert_non_null(e);
	for (size_t i = 0; i < n; i++) {
		char name[16];

		snprintf(name, sizeof(name), "e%zu", i);
		e[i].name = strdup(name);
		e[i].kind = NS_TAG;
		e[i].target = strdup(name);
	}
	return e;
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static struct listings *new_table(double ttl)
{
	struct listings *t;

	fake_now = 1000;
	assert_int_equal(listings_new(&t, ttl, &T0, fake_clock), 0);
	return t;
}

static void test_offsets(void **s)
{
	uint32_t gen;
	uint64_t next;

	(void)s;
	listing_offset_split(listing_offset(7, 3), &gen, &next);
	assert_int_equal(gen, 7);
	assert_int_equal(next, 3);
	/* The largest generation still gives a positive off_t. */
	assert_true((int64_t)listing_offset(0x7fffffff, 0xffffffff) > 0);
	listing_offset_split(0, &gen, &next);
	assert_int_equal(gen, 0);
	assert_int_equal(next, 0);
}

/* A reader goes on in the listing it started, also after a newer one. */
static void test_generations(void **s)
{
	struct listings *t = new_table(60);
	const struct listing *a, *b, *c, *got;

	(void)s;
	assert_null(listings_get(t, 5, 1));
	assert_int_equal(listings_publish(t, 5, ents_of(2), 2, NULL, false, &a), 0);
	assert_int_equal(listings_publish(t, 5, ents_of(3), 3, NULL, false, &b), 0);
	assert_int_not_equal(a->gen, b->gen);
	got = listings_get(t, 5, a->gen);
	assert_ptr_equal(got, a);
	assert_int_equal(got->n, 2);
	listing_put(t, got);
	got = listings_get(t, 5, b->gen);
	assert_ptr_equal(got, b);
	listing_put(t, got);
	/* A third one: the first is no longer kept; its readers get the newest. */
	assert_int_equal(listings_publish(t, 5, ents_of(4), 4, NULL, false, &c), 0);
	got = listings_get(t, 5, a->gen);
	assert_ptr_equal(got, c);
	listing_put(t, got);
	/* The reader that still holds `a` can use it. */
	assert_string_equal(a->ents[1].name, "e1");
	listing_put(t, a);
	listing_put(t, b);
	listing_put(t, c);
	/* Another directory is another state. */
	assert_null(listings_get(t, 6, c->gen));
	listings_free(t);
}

/* The mtime moves on exactly when the newest listing turned ttl old, and the
 * attribute timeout ends at that moment. */
static void test_ttl(void **s)
{
	struct listings *t = new_table(10);
	const struct listing *l;
	struct timespec m, m1, m2;
	double to;

	(void)s;
	listings_attr(t, 9, &m, &to); /* never listed */
	assert_true(same_time(&m, &T0));
	assert_true(to == 10);
	assert_int_equal(listings_publish(t, 9, ents_of(1), 1, NULL, false, &l), 0);
	listing_put(t, l);
	fake_now += 4;
	listings_attr(t, 9, &m, &to);
	assert_true(same_time(&m, &T0)); /* still current: the kernel keeps its copy */
	assert_true(to > 5.99 && to < 6.01);
	fake_now += 6;
	listings_attr(t, 9, &m1, &to);
	assert_false(same_time(&m1, &T0)); /* ten seconds old: moved on */
	assert_true(to == 10);
	listings_attr(t, 9, &m, &to);
	assert_true(same_time(&m, &m1)); /* once per listing */
	/* The kernel reads again; the new listing keeps the new mtime until it
	 * is stale in its turn. */
	assert_int_equal(listings_publish(t, 9, ents_of(1), 1, NULL, false, &l), 0);
	listing_put(t, l);
	listings_attr(t, 9, &m, &to);
	assert_true(same_time(&m, &m1));
	fake_now += 10;
	listings_attr(t, 9, &m2, &to);
	assert_false(same_time(&m2, &m1));
	assert_true(m2.tv_sec > m1.tv_sec || (m2.tv_sec == m1.tv_sec && m2.tv_nsec > m1.tv_nsec));
	listings_free(t);
}

/* ttl 0: every attribute request after a listing moves the mtime on. */
static void test_ttl0(void **s)
{
	struct listings *t = new_table(0);
	const struct listing *l;
	struct timespec m1, m2, m3;
	double to;

	(void)s;
	assert_int_equal(listings_publish(t, 2, ents_of(1), 1, NULL, false, &l), 0);
	listing_put(t, l);
	listings_attr(t, 2, &m1, &to);
	assert_true(to == 0);
	assert_false(same_time(&m1, &T0));
	assert_int_equal(listings_publish(t, 2, ents_of(1), 1, NULL, false, &l), 0);
	listing_put(t, l);
	listings_attr(t, 2, &m2, &to);
	assert_false(same_time(&m2, &m1));
	listings_attr(t, 2, &m3, &to); /* no listing since: no reason to move */
	assert_true(same_time(&m3, &m2));
	listings_free(t);
}

/* Forgetting a directory drops its state; a reader's reference survives. */
static void test_forget(void **s)
{
	struct listings *t = new_table(60);
	const struct listing *l;
	struct timespec m;
	double to;

	(void)s;
	assert_int_equal(listings_publish(t, 3, ents_of(2), 2, NULL, false, &l), 0);
	fake_now += 100;
	listings_attr(t, 3, &m, &to);
	assert_false(same_time(&m, &T0));
	listings_forget(t, 3);
	assert_null(listings_get(t, 3, l->gen));
	listings_attr(t, 3, &m, &to);
	assert_true(same_time(&m, &T0));
	assert_string_equal(l->ents[0].name, "e0");
	listing_put(t, l);
	listings_forget(t, 3); /* twice is fine */
	listings_free(t);
}

/* Many directories: the table grows and keeps each one's listing. */
static void test_many(void **s)
{
	struct listings *t = new_table(60);
	const struct listing *l;

	(void)s;
	for (uint64_t ino = 1; ino <= 1000; ino++) {
		assert_int_equal(listings_publish(t, ino, ents_of(ino % 3), ino % 3, NULL, false, &l), 0);
		listing_put(t, l);
	}
	for (uint64_t ino = 1; ino <= 1000; ino += 7) {
		l = listings_get(t, ino, 0);
		assert_non_null(l);
		assert_int_equal(l->n, ino % 3);
		listing_put(t, l);
	}
	for (uint64_t ino = 1; ino <= 1000; ino += 2)
		listings_forget(t, ino);
	assert_null(listings_get(t, 1, 0));
	l = listings_get(t, 2, 0);
	assert_non_null(l);
	listing_put(t, l);
	listings_free(t);
	listings_free(NULL);
}

/* ---- the memory budget ----------------------------------------------------- */

static uint64_t charged(struct budget *b, uint64_t *units)
{
	struct budget_stats st;

	budget_get_stats(b, &st);
	if (units)
		*units = st.units;
	return st.bytes;
}

/* What one listing of ents_of(n) takes. */
static uint64_t listing_size(size_t n)
{
	struct listings *t = new_table(60);
	const struct listing *l;
	uint64_t bytes;

	assert_int_equal(listings_publish(t, 1, ents_of(n), n, NULL, false, &l), 0);
	listing_put(t, l);
	bytes = listings_bytes(t);
	listings_free(t);
	return bytes;
}

/*
 * Under a budget of four directories' listings, many directories listed:
 * the charge stays within the bound (one over at most), the least recently
 * used go — the newest listing of a directory too — while a listing a
 * reader holds stays; an evicted directory's mtime still moves on when its
 * listing turns ttl old, and a listing rebuilt for a reader going on keeps
 * the age of the one it replaces.
 */
static void test_budget_evict(void **s)
{
	uint64_t one = listing_size(10), units;
	struct listings *t = new_table(10);
	const struct listing *l, *held;
	struct budget_stats st;
	struct timespec m;
	struct budget *b;
	double to;

	(void)s;
	assert_true(one > 10 * 2 * 16);
	assert_int_equal(budget_new(&b, 4 * one), 0);
	listings_set_budget(t, b);
	assert_int_equal(listings_publish(t, 1, ents_of(10), 10, NULL, false, &held), 0);
	for (uint64_t ino = 2; ino <= 40; ino++) {
		assert_int_equal(listings_publish(t, ino, ents_of(10), 10, NULL, false, &l), 0);
		listing_put(t, l);
		assert_true(charged(b, NULL) <= 4 * one + one);
		assert_int_equal(charged(b, NULL), listings_bytes(t));
	}
	budget_get_stats(b, &st);
	assert_true(st.evictions >= 34);
	assert_true(st.busy >= 1);
	/* The oldest is held: kept. The next ones went; the newest stay. */
	l = listings_get(t, 1, held->gen);
	assert_ptr_equal(l, held);
	listing_put(t, l);
	assert_null(listings_get(t, 2, 0));
	l = listings_get(t, 40, 0);
	assert_non_null(l);
	assert_int_equal(l->n, 10);
	listing_put(t, l);
	listing_put(t, held);

	/* Directory 2 lost its listing: its mtime moves on all the same. */
	listings_attr(t, 2, &m, &to);
	assert_true(same_time(&m, &T0));
	assert_true(to > 9.99 && to < 10.01);
	fake_now += 10;
	listings_attr(t, 2, &m, &to);
	assert_false(same_time(&m, &T0));

	/* A reader going on in directory 3 (evicted) 6 s later: the rebuilt
	 * listing does not make the directory's listing younger. */
	fake_now -= 10;
	fake_now += 6;
	assert_null(listings_get(t, 3, 1));
	assert_int_equal(listings_publish(t, 3, ents_of(10), 10, NULL, true, &l), 0);
	listing_put(t, l);
	listings_attr(t, 3, &m, &to);
	assert_true(to > 3.99 && to < 4.01);
	fake_now += 4;
	listings_attr(t, 3, &m, &to);
	assert_false(same_time(&m, &T0));

	/* Forgetting uncharges; so does freeing the table. */
	assert_int_equal(charged(b, NULL), listings_bytes(t));
	listings_forget(t, 3);
	assert_int_equal(charged(b, NULL), listings_bytes(t));
	listings_free(t);
	assert_int_equal(charged(b, &units), 0);
	assert_int_equal(units, 0);
	budget_free(b);
}

/*
 * Threads publish, read and forget listings of a few directories under a
 * budget of two, so that evictions, forgets and publishes race: every
 * listing read is whole, and once they are done the charge is exactly what
 * the table keeps.
 */
struct stress {
	struct listings *t;
	unsigned seed;
	int bad;
};

static void *stress_thread(void *p)
{
	struct stress *x = p;
	unsigned r = x->seed;

	for (int i = 0; i < 3000; i++) {
		uint64_t ino;
		const struct listing *l;
		int op;

		r = r * 1103515245u + 12345u;
		ino = 1 + (r >> 8) % 12;
		op = (int)((r >> 20) % 10);
		if (op < 4) {
			size_t n = 1 + ino % 5;

			if (listings_publish(x->t, ino, ents_of(n), n, NULL, op == 0, &l) || l->n != n)
				x->bad++;
			listing_put(x->t, l);
		} else if (op < 9) {
			l = listings_get(x->t, ino, (uint32_t)(r >> 4) % 64);
			if (l && l->n != 1 + ino % 5)
				x->bad++;
			for (size_t k = 0; l && k < l->n; k++) { /* all there (ASan) */
				char name[32];

				snprintf(name, sizeof(name), "e%zu", k);
				x->bad += strcmp(l->ents[k].name, name) != 0;
			}
			listing_put(x->t, l);
		} else {
			listings_forget(x->t, ino);
		}
	}
	return NULL;
}

static void test_budget_threads(void **s)
{
	uint64_t one = listing_size(3), units;
	struct listings *t = new_table(60);
	struct stress x[6];
	pthread_t id[6];
	struct budget *b;
	struct budget_stats st;
	int i;

	(void)s;
	assert_int_equal(budget_new(&b, 2 * one), 0);
	listings_set_budget(t, b);
	for (i = 0; i < 6; i++) {
		x[i] = (struct stress){ t, (unsigned)i * 104729u + 3u, 0 };
		assert_int_equal(pthread_create(&id[i], NULL, stress_thread, &x[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(id[i], NULL);
		assert_int_equal(x[i].bad, 0);
	}
	budget_get_stats(b, &st);
	assert_true(st.evictions > 0);
	assert_int_equal(st.bytes, listings_bytes(t));
	listings_free(t);
	assert_int_equal(charged(b, &units), 0);
	assert_int_equal(units, 0);
	budget_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offsets),	   cmocka_unit_test(test_generations),
		cmocka_unit_test(test_ttl),	   cmocka_unit_test(test_ttl0),
		cmocka_unit_test(test_forget),	   cmocka_unit_test(test_many),
		cmocka_unit_test(test_budget_evict), cmocka_unit_test(test_budget_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
