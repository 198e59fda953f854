/*
 * Design: a chained hash table of entries keyed by string. lock guards
 * every entry field, the table, and dlist refcounts; cond is broadcast when
 * a fetch completes. Each completed fill bumps `fills` and leaves its
 * uncached error in `fill_err`: a waiter that saw `fills` move while it
 * waited and finds an error returns it instead of fetching in turn, and
 * so does a caller arriving within DCACHE_FAIL_HOLD_S of the failure (the
 * kernel may hand a directory's readers over one after the other).
 * Lock order: dcache.lock is a leaf (nothing else is taken while it is
 * held, and it is never held across the fetch callback).
 */
#include "fs/dcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUCKETS 1024
/* How long a failed fill's error answers later callers without a fetch. */
#define DCACHE_FAIL_HOLD_S 1.0

struct entry {
	struct entry *next;
	char *key;
	struct dlist *list; /* published result, or NULL */
	double fetched_at;  /* monotonic seconds */
	bool loading;
	uint64_t gen;	    /* bumped by invalidate */
	uint64_t fills;	    /* fills completed (published or not) */
	int fill_err;	    /* the last completed fill's uncached error, or 0 */
	double failed_at;   /* when that fill failed (monotonic seconds) */
};

struct dcache {
	unsigned ttl;
	dcache_fetch_fn fetch;
	dcache_fetch_meta_fn fetch_meta; /* NULL: fetch */
	void (*meta_free)(void *meta);
	void *ctx;
	pthread_mutex_t lock; /* guards everything below and dlist refs */
	pthread_cond_t cond;
	struct entry *buckets[NBUCKETS];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % NBUCKETS;
}

int dcache_new(struct dcache **out, unsigned ttl_s, dcache_fetch_fn fetch, void *ctx)
{
	struct dcache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->ttl = ttl_s;
	c->fetch = fetch;
	c->ctx = ctx;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	*out = c;
	return 0;
}

void dcache_set_meta(struct dcache *c, dcache_fetch_meta_fn fetch, void (*meta_free)(void *))
{
	c->fetch_meta = fetch;
	c->meta_free = meta_free;
}

static void list_free(struct dlist *l)
{
	if (l->meta && l->meta_free)
		l->meta_free(l->meta);
	strvec_clear(&l->names);
	free(l);
}

void dcache_free(struct dcache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < NBUCKETS; i++) {
		struct entry *e = c->buckets[i], *n;

		for (; e; e = n) {
			n = e->next;
			dlist_put(e->list);
			free(e->key);
			free(e);
		}
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/*
 * dlist refs are guarded by a global lock rather than the owning cache's
 * so that dlist_put() needs no cache pointer; it is a leaf lock.
 */
static pthread_mutex_t ref_lock = PTHREAD_MUTEX_INITIALIZER;

void dlist_put(struct dlist *l)
{
	bool last;

	if (!l)
		return;
	pthread_mutex_lock(&ref_lock);
	last = --l->refs == 0;
	pthread_mutex_unlock(&ref_lock);
	if (last)
		list_free(l);
}

static struct dlist *list_ref(struct dlist *l)
{
	pthread_mutex_lock(&ref_lock);
	l->refs++;
	pthread_mutex_unlock(&ref_lock);
	return l;
}

int dlist_has(const struct dlist *l, const char *name)
{
	return !l->err && strvec_find(&l->names, name) >= 0;
}

static struct entry *find(struct dcache *c, const char *key, bool create)
{
	unsigned h = hash(key);
	struct entry *e;

	for (e = c->buckets[h]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	if (!create)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return NULL;
	}
	e->next = c->buckets[h];
	c->buckets[h] = e;
	return e;
}

static bool fresh(const struct dcache *c, const struct entry *e)
{
	return e->list && c->ttl > 0 && now_s() - e->fetched_at < (double)c->ttl;
}

static bool cacheable(int err)
{
	return err == 0 || err == -ENOENT || err == -EACCES;
}

int dcache_peek(struct dcache *c, const char *key, struct dlist **out)
{
	struct entry *e;
	int rc = -ENOENT;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	e = find(c, key, false);
	if (e && fresh(c, e)) {
		*out = list_ref(e->list);
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int dcache_peek_stale(struct dcache *c, const char *key, struct dlist **out)
{
	struct entry *e;
	int rc = -ENOENT;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	e = find(c, key, false);
	if (e && e->list) {
		*out = list_ref(e->list);
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int dcache_get(struct dcache *c, const char *key, struct dlist **out)
{
	struct strvec names = STRVEC_INIT;
	struct dlist *l;
	struct entry *e;
	void *meta = NULL;
	uint64_t gen;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	e = find(c, key, true);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	for (;;) {
		if (fresh(c, e)) {
			*out = list_ref(e->list);
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		if (!e->loading && e->fill_err && now_s() - e->failed_at < DCACHE_FAIL_HOLD_S) {
			/* It failed a moment ago: that is the answer (see Design). */
			rc = e->fill_err;
			pthread_mutex_unlock(&c->lock);
			return rc;
		}
		if (!e->loading)
			break;
		/* Someone is fetching: wait for their result. */
		{
			struct dlist *before = e->list;
			uint64_t g = e->gen, fill = e->fills;

			while (e->loading)
				pthread_cond_wait(&c->cond, &c->lock);
			/* The fill we waited for failed: that is our answer too. */
			if (e->fills != fill && e->fill_err) {
				rc = e->fill_err;
				pthread_mutex_unlock(&c->lock);
				return rc;
			}
			/* With ttl=0 nothing is fresh: share the result just fetched. */
			if (e->list && (e->list != before || e->gen != g) && !c->ttl) {
				*out = list_ref(e->list);
				pthread_mutex_unlock(&c->lock);
				return 0;
			}
		}
	}
	e->loading = true;
	gen = e->gen;
	pthread_mutex_unlock(&c->lock);

	rc = c->fetch_meta ? c->fetch_meta(c->ctx, key, &names, &meta) :
			     c->fetch(c->ctx, key, &names);

	l = calloc(1, sizeof(*l));
	pthread_mutex_lock(&c->lock);
	e->loading = false;
	e->fills++;
	if (!l && cacheable(rc))
		rc = -ENOMEM;
	e->fill_err = cacheable(rc) ? 0 : rc;
	e->failed_at = now_s();
	if (cacheable(rc)) {
		l->err = rc;
		if (!rc) {
			l->names = names;
			l->meta = meta;
			l->meta_free = c->meta_free;
			meta = NULL;
		} else {
			strvec_clear(&names);
		}
		names = (struct strvec)STRVEC_INIT;
		l->refs = 1; /* the caller's */
		if (e->gen == gen) {
			list_ref(l);
			if (e->list)
				dlist_put(e->list);
			e->list = l;
			e->fetched_at = now_s();
		}
		*out = l;
		rc = 0;
	} else {
		free(l);
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	strvec_clear(&names);
	if (meta && c->meta_free)
		c->meta_free(meta);
	return rc;
}

void dcache_invalidate(struct dcache *c, const char *key)
{
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < NBUCKETS; i++) {
		struct entry *e;

		for (e = c->buckets[i]; e; e = e->next) {
			if (key && strcmp(e->key, key) != 0)
				continue;
			e->gen++;
			e->fill_err = 0; /* no held failure either */
			if (e->list) {
				dlist_put(e->list);
				e->list = NULL;
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
}
