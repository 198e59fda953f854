/*
 * budget — see budget.h. Units are kept on one list in no particular order,
 * each with the tick of its last use; a trim scans the list for the oldest
 * (O(units) per eviction: units are layers and images, thousands at most,
 * and trims happen only after a load).
 */
#include "image/budget.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct budget {
	uint64_t max;
	uint64_t clock; /* atomic: the tick source */

	pthread_mutex_t lock; /* leaf; guards everything below and the units' fields */
	pthread_cond_t evicted; /* an eviction finished */
	struct budget_unit *head;
	uint64_t bytes, peak, units, evictions, busy;
	uint64_t trims; /* numbers each trim (budget_unit.skip) */
};

int budget_new(struct budget **out, uint64_t max)
{
	struct budget *b = calloc(1, sizeof(*b));

	*out = NULL;
	if (!b)
		return -ENOMEM;
	b->max = max;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->evicted, NULL);
	*out = b;
	return 0;
}

void budget_free(struct budget *b)
{
	if (!b)
		return;
	pthread_cond_destroy(&b->evicted);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

void budget_unit_init(struct budget_unit *u, struct budget *b,
		      int (*evict)(struct budget_unit *u))
{
	u->b = b;
	u->evict = evict;
	u->bytes = 0;
	u->tick = 0;
	u->skip = 0;
	u->prev = u->next = NULL;
	u->listed = u->evicting = false;
}

/* b->lock held. */
static void list_add(struct budget *b, struct budget_unit *u)
{
	u->prev = NULL;
	u->next = b->head;
	if (b->head)
		b->head->prev = u;
	b->head = u;
	u->listed = true;
	b->bytes += u->bytes;
	b->units++;
}

/* b->lock held. */
static void list_del(struct budget *b, struct budget_unit *u)
{
	if (u->prev)
		u->prev->next = u->next;
	else
		b->head = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->prev = u->next = NULL;
	u->listed = false;
	b->bytes -= u->bytes;
	b->units--;
}

/* b->lock held: the least recently used listed unit other than `keep`,
 * those trim `trim` found busy and those that cannot be evicted. */
static struct budget_unit *oldest(struct budget *b, const struct budget_unit *keep,
				  uint64_t trim)
{
	struct budget_unit *u, *best = NULL;
	uint64_t bt = 0;

	for (u = b->head; u; u = u->next) {
		uint64_t t = __atomic_load_n(&u->tick, __ATOMIC_RELAXED);

		if (u != keep && u->evict && u->skip != trim && (!best || t < bt)) {
			best = u;
			bt = t;
		}
	}
	return best;
}

void budget_touch(struct budget_unit *u)
{
	if (u->b)
		__atomic_store_n(&u->tick, __atomic_add_fetch(&u->b->clock, 1, __ATOMIC_RELAXED),
				 __ATOMIC_RELAXED);
}

void budget_charge(struct budget_unit *u, uint64_t bytes)
{
	struct budget *b = u->b;
	struct budget_unit *v;
	uint64_t trim;

	if (!b)
		return;
	budget_touch(u);
	pthread_mutex_lock(&b->lock);
	while (u->evicting)
		pthread_cond_wait(&b->evicted, &b->lock);
	if (u->listed)
		list_del(b, u);
	u->bytes = bytes;
	list_add(b, u);
	trim = ++b->trims;
	while (b->max && b->bytes > b->max && (v = oldest(b, u, trim))) {
		int rc;

		/* Unlisted and marked, v is left alone by charge and uncharge
		 * (they wait) until it is marked again below. */
		list_del(b, v);
		v->evicting = true;
		pthread_mutex_unlock(&b->lock);
		rc = v->evict(v);
		pthread_mutex_lock(&b->lock);
		v->evicting = false;
		if (rc) {
			b->busy++;
			v->skip = trim; /* not again in this trim */
			list_add(b, v);
		} else {
			b->evictions++;
			v->bytes = 0;
		}
		pthread_cond_broadcast(&b->evicted);
	}
	if (b->bytes > b->peak)
		b->peak = b->bytes;
	pthread_mutex_unlock(&b->lock);
}

void budget_uncharge(struct budget_unit *u)
{
	struct budget *b = u->b;

	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	while (u->evicting)
		pthread_cond_wait(&b->evicted, &b->lock);
	if (u->listed)
		list_del(b, u);
	u->bytes = 0;
	pthread_mutex_unlock(&b->lock);
}

void budget_follow(struct budget_unit *u, pthread_mutex_t *lock, const uint64_t *bytes)
{
	uint64_t want, now;

	if (!u->b)
		return;
	pthread_mutex_lock(lock);
	want = *bytes;
	pthread_mutex_unlock(lock);
	for (;;) {
		if (want)
			budget_charge(u, want);
		else
			budget_uncharge(u);
		pthread_mutex_lock(lock);
		now = *bytes;
		pthread_mutex_unlock(lock);
		if (now == want)
			return;
		want = now;
	}
}

void budget_get_stats(struct budget *b, struct budget_stats *st)
{
	pthread_mutex_lock(&b->lock);
	st->max = b->max;
	st->bytes = b->bytes;
	st->peak = b->peak;
	st->units = b->units;
	st->evictions = b->evictions;
	st->busy = b->busy;
	pthread_mutex_unlock(&b->lock);
}
