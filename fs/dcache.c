/*
 * Design: a chained hash table of entries keyed by string. lock guards
 * every entry field, the table, and dlist refcounts; cond is broadcast when
 * a fetch completes. Each completed fill bumps `fills` and leaves its
 * uncached error in `fill_err`: a waiter that saw `fills` move while it
 * waited and finds an error returns it instead of fetching in turn, and
 * so does a caller arriving within DCACHE_FAIL_HOLD_S of the failure (the
 * kernel may hand a directory's readers over one after the other).
 *
 * Memory budget (dcache_set_budget): each entry is a budget unit of its
 * own, charged with what its published list takes (`bytes`, c->lock).
 * Every change of `bytes` (a publish, an invalidation) is followed, with
 * no lock held, by budget_follow(), which reads `bytes` under c->lock and
 * charges without it: budget_charge may run evict functions, entry_evict
 * among them, which take c->lock. The eviction of an entry detaches its
 * list when nobody else holds it (else -EBUSY) and sets `bytes` to 0; it
 * does not bump `gen`: an evicted list is not stale, so a fill in flight
 * still publishes. Entries are never freed before dcache_free, so a
 * pointer to one stays valid after c->lock is dropped.
 *
 * Lock order: dcache.lock, then ref_lock (a leaf); nothing else is taken
 * while dcache.lock is held, and it is never held across the fetch
 * callback or a budget call.
 */
#include "fs/dcache.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/memsize.h"
#include "image/budget.h"

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
	uint64_t bytes;	    /* what `list` takes, 0 without one (see Design) */
	struct dcache *cache;	  /* for entry_evict */
	struct budget_unit unit;  /* charged with `bytes` (budget_follow) */
	struct entry *sync_next;  /* on an invalidation's list to follow, */
	bool sync_queued;	  /* while this is set */
};

struct dcache {
	unsigned ttl;
	dcache_fetch_fn fetch;
	dcache_fetch_meta_fn fetch_meta; /* NULL: fetch */
	void (*meta_free)(void *meta);
	void *ctx;
	struct budget *budget; /* NULL: none (dcache_set_budget) */
	size_t (*meta_bytes)(const void *meta);
	pthread_mutex_t lock; /* guards everything below and the entries */
	pthread_cond_t cond;
	uint64_t bytes; /* the entries' bytes */
	struct entry *buckets[NBUCKETS];
};

/*
 * dlist refs are guarded by a global lock rather than the owning cache's
 * so that dlist_put() needs no cache pointer; it is a leaf lock.
 */
static pthread_mutex_t ref_lock = PTHREAD_MUTEX_INITIALIZER;

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

void dcache_set_budget(struct dcache *c, struct budget *b, size_t (*meta_bytes)(const void *meta))
{
	c->budget = b;
	c->meta_bytes = meta_bytes;
}

/* What list `l` takes (see dcache.h); no lock needed, `l` is not shared yet. */
static uint64_t list_bytes(const struct dcache *c, const struct dlist *l)
{
	uint64_t n = mem_size(l) + strvec_memsize(&l->names);

	if (l->meta)
		n += c->meta_bytes ? c->meta_bytes(l->meta) : mem_size(l->meta);
	return n;
}

uint64_t dcache_bytes(struct dcache *c)
{
	uint64_t n;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	n = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return n;
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
			budget_uncharge(&e->unit); /* waits for an eviction of it */
			dlist_put(e->list);
			free(e->key);
			free(e);
		}
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

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

/* The budget's evict function: drop the entry's list unless someone holds it. */
static int entry_evict(struct budget_unit *u)
{
	struct entry *e = (struct entry *)((char *)u - offsetof(struct entry, unit));
	struct dcache *c = e->cache;
	struct dlist *l;

	pthread_mutex_lock(&c->lock);
	l = e->list;
	if (l) {
		bool held;

		/* Only c->lock hands out references: none can appear now. */
		pthread_mutex_lock(&ref_lock);
		held = l->refs > 1;
		pthread_mutex_unlock(&ref_lock);
		if (held) {
			pthread_mutex_unlock(&c->lock);
			return -EBUSY;
		}
		e->list = NULL;
	}
	c->bytes -= e->bytes;
	e->bytes = 0;
	pthread_mutex_unlock(&c->lock);
	dlist_put(l);
	return 0;
}

/* Bring the entry's charge to its bytes; no lock held (see Design). */
static void follow(struct dcache *c, struct entry *e)
{
	if (c->budget)
		budget_follow(&e->unit, &c->lock, &e->bytes);
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
	e->cache = c;
	budget_unit_init(&e->unit, c->budget, entry_evict);
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
		budget_touch(&e->unit);
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
		budget_touch(&e->unit);
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int dcache_get(struct dcache *c, const char *key, struct dlist **out)
{
	struct strvec names = STRVEC_INIT;
	struct dlist *l = NULL, *old = NULL;
	struct entry *e;
	void *meta = NULL;
	uint64_t gen, lb = 0;
	bool published = false;
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
			budget_touch(&e->unit);
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
				budget_touch(&e->unit);
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

	/* The list is made (and measured) before the lock is taken again. */
	if (cacheable(rc)) {
		l = calloc(1, sizeof(*l));
		if (!l)
			rc = -ENOMEM;
	}
	if (l) {
		l->err = rc;
		if (!rc) {
			l->names = names;
			l->meta = meta;
			l->meta_free = c->meta_free;
			names = (struct strvec)STRVEC_INIT;
			meta = NULL;
		}
		l->refs = 1; /* the caller's */
		lb = list_bytes(c, l);
	}
	pthread_mutex_lock(&c->lock);
	e->loading = false;
	e->fills++;
	e->fill_err = l ? 0 : rc;
	e->failed_at = now_s();
	if (l) {
		if (e->gen == gen) {
			list_ref(l);
			old = e->list;
			e->list = l;
			c->bytes += lb - e->bytes;
			e->bytes = lb;
			e->fetched_at = now_s();
			published = true;
		}
		*out = l;
		rc = 0;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	dlist_put(old);
	strvec_clear(&names);
	if (meta && c->meta_free)
		c->meta_free(meta);
	if (published)
		follow(c, e);
	return rc;
}

void dcache_invalidate(struct dcache *c, const char *key)
{
	struct entry *todo = NULL, *e;
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < NBUCKETS; i++) {
		for (e = c->buckets[i]; e; e = e->next) {
			if (key && strcmp(e->key, key) != 0)
				continue;
			e->gen++;
			e->fill_err = 0; /* no held failure either */
			if (e->list) {
				dlist_put(e->list);
				e->list = NULL;
				c->bytes -= e->bytes;
				e->bytes = 0;
				/* Its charge follows below; an invalidation that
				 * queued it already and has not taken it off its
				 * list yet will read the bytes set here. */
				if (c->budget && !e->sync_queued) {
					e->sync_queued = true;
					e->sync_next = todo;
					todo = e;
				}
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
	while (todo) {
		e = todo;
		pthread_mutex_lock(&c->lock);
		todo = e->sync_next;
		e->sync_queued = false;
		pthread_mutex_unlock(&c->lock);
		follow(c, e);
	}
}
