/*
 * dcache — the dirent cache: named lists (a catalog, a repository's tags)
 * fetched from the registry, kept for `ttl` seconds, shared by reference.
 *
 * A list is an immutable, reference-counted snapshot (struct dlist): either
 * a sorted vector of names or a cached error (-ENOENT, -EACCES: negative
 * entries). Transport errors are returned but never cached.
 *
 * Filling is single-flight: the first caller to miss marks the entry
 * LOADING, drops the lock, fetches, relocks and publishes; concurrent
 * callers for the same key wait for that result instead of sending their
 * own request — a failed fill too: its (uncached) error is every waiter's
 * answer, so n callers of an unreachable registry wait one fetch, not n in
 * turn. A caller that arrives within a second of the failure gets the same
 * error (the kernel serializes readers of one directory, so "concurrent"
 * callers may arrive one after the other); later ones fetch again. A
 * generation counter keeps a fetch that raced with
 * dcache_invalidate() from being published as fresh (its caller still gets
 * its result).
 *
 * Under a memory budget (dcache_set_budget) each entry's list counts
 * against it and is evicted, least recently used first, when nobody holds
 * it (a list a caller holds is not: -EBUSY to the budget). An evicted key
 * is fetched again at its next dcache_get; dcache_peek and
 * dcache_peek_stale answer -ENOENT for it, as after an invalidation.
 *
 * Thread-safe. dcache_get() blocks while a fetch runs (no lock is held
 * during the fetch). dcache_get() and dcache_invalidate() may run the
 * budget's evictions (of any owner's units): their callers must hold no
 * lock an evict function takes.
 */
#ifndef ACRFS_DCACHE_H
#define ACRFS_DCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/strvec.h"

struct dcache;

struct dlist {
	int err;	     /* 0, or the cached -errno (then names is empty) */
	struct strvec names; /* sorted, unique */
	/* NULL, or what a dcache_fetch_meta_fn returned with the names (e.g.
	 * one record per name, in names' order); immutable, freed with the list. */
	void *meta;
	/* private */
	unsigned refs;
	void (*meta_free)(void *meta);
};

/* Fill `out` (empty on entry) for `key`; return 0 or -errno. */
typedef int (*dcache_fetch_fn)(void *ctx, const char *key, struct strvec *out);

/* Fill `out` and, optionally, *meta (NULL on entry) for `key`; 0 or -errno.
 * *meta is kept only with a list fetched without error. */
typedef int (*dcache_fetch_meta_fn)(void *ctx, const char *key, struct strvec *out, void **meta);

/* ttl_s = 0: every dcache_get() fetches (concurrent callers still share). */
int dcache_new(struct dcache **out, unsigned ttl_s, dcache_fetch_fn fetch, void *ctx);
void dcache_free(struct dcache *c);

/*
 * Fetch with `fetch` instead of the dcache_new one from now on: lists then
 * carry the metadata it returns, freed with `meta_free`. Call before the
 * first dcache_get (not thread-safe against it).
 */
void dcache_set_meta(struct dcache *c, dcache_fetch_meta_fn fetch, void (*meta_free)(void *));

/*
 * Count the lists in memory budget `b` (image/budget.h; must outlive the
 * cache), one unit per key, charged with what its list takes: the struct
 * dlist, the names (array and strings) and the metadata, measured by
 * meta_bytes (NULL: mem_size(meta), for a meta that is one allocation).
 * Call before the first dcache_get (not thread-safe against it).
 * dcache_free uncharges everything.
 */
struct budget;
void dcache_set_budget(struct dcache *c, struct budget *b, size_t (*meta_bytes)(const void *meta));

/* What the published lists take now (as charged), budget or not. 0 for NULL. */
uint64_t dcache_bytes(struct dcache *c);

/*
 * The list for `key`: from the cache when fresh, else fetched. On 0, *out is
 * a reference the caller drops with dlist_put(); (*out)->err may be a cached
 * -ENOENT/-EACCES. Returns -errno only for failures that were not cached
 * (transport errors, -ENOMEM).
 */
int dcache_get(struct dcache *c, const char *key, struct dlist **out);

/* Is a fresh entry for `key` (list or negative) cached? Never fetches. */
int dcache_peek(struct dcache *c, const char *key, struct dlist **out);

/* The last list published for `key`, fresh or not (none after an
 * invalidation or an eviction by the memory budget: -ENOENT): for what may
 * be shown late but must cost no request. */
int dcache_peek_stale(struct dcache *c, const char *key, struct dlist **out);

/* Forget `key` (NULL: everything). Never blocks on a fetch; uncharges
 * what it dropped before it returns (unless another invalidation of the
 * same entry in flight does it). */
void dcache_invalidate(struct dcache *c, const char *key);

void dlist_put(struct dlist *l);
/* Is `name` in the list? */
int dlist_has(const struct dlist *l, const char *name);

#endif
