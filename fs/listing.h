/*
 * listing — the listings of registry directories (root, namespaces,
 * repositories) as the kernel caches them.
 *
 * acrfs runs in the kernel's no-opendir mode, where the kernel keeps every
 * directory's listing and serves it again without asking, until the
 * directory's mtime differs from the one it had when the listing was read.
 * For registry directories, whose names change in the registry, this module
 * keeps per directory inode:
 *   - the listings readdir serves: a new one is taken at offset 0 and the
 *     offsets of a listing carry its generation, so a reader that started on
 *     an older one goes on in it (the newest two are kept);
 *   - the directory's mtime: it moves on once the newest listing is `ttl`
 *     seconds old, the first time the attributes are asked for after that,
 *     so the kernel drops its copy at its next listing and reads a new one;
 *     and how long the kernel may keep the attributes (until that moment).
 * With ttl 0 the mtime moves on at every attribute request after a listing:
 * every listing asks (the kernel asks for the attributes first).
 *
 * Memory budget (listings_set_budget): the listings count against it, one
 * unit per directory, and are evicted, least recently used first, when no
 * reader holds them — the newest too: the kernel keeps its own copy, and
 * what a listing here is for is a reader that goes on from an offset. Such
 * a reader finds no listing and gets one rebuilt from the dirent cache
 * (listings_publish with `resume`), in which it goes on at its index: right
 * as long as the directory's names did not change; if they did, it may miss
 * or repeat a name — as it may today when two newer listings were published
 * before it went on (only the newest two are kept). Counting them without
 * evicting (like the inode table) would leave a bound of their own making:
 * every directory the kernel remembers keeps its newest listing. The mtime
 * and listing age are kept through an eviction, so the kernel's copy still
 * goes stale on time.
 *
 * Thread-safe (one mutex, never held while calling out).
 */
#ifndef ACRFS_LISTING_H
#define ACRFS_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fs/ns.h"

struct listings;

/* One listing of one directory: immutable once published. */
struct listing {
	uint32_t gen;	     /* 1 ... 2^31 - 1: offsets carry it (listing_offset) */
	struct ns_ent *ents; /* sorted by name, as ns_list gives them */
	size_t n;
	/* private */
	unsigned refs;
	uint64_t bytes;	    /* what it takes (the budget's count) */
	struct dlist *hold; /* ns_list_held's, dropped with the listing */
};

/*
 * `ttl`: seconds a listing stays current (>= 0). `mtime0`: the mtime of a
 * directory never listed. `clock`: monotonic seconds (NULL: CLOCK_MONOTONIC;
 * tests pass their own). 0 or -ENOMEM.
 */
int listings_new(struct listings **out, double ttl, const struct timespec *mtime0,
		 double (*clock)(void));
void listings_free(struct listings *t); /* NULL is fine; uncharges everything */

/*
 * Count the listings in memory budget `b` (image/budget.h; must outlive the
 * table): see above. Call before the first publish.
 */
struct budget;
void listings_set_budget(struct listings *t, struct budget *b);
/* What the kept listings take now, in bytes (budget or not). */
uint64_t listings_bytes(struct listings *t);

/*
 * Publish `ents` (n of them, as ns_list_held returned them, with its `hold`,
 * which may be NULL) as the newest listing of directory `ino`, taken now —
 * or, with `resume`, rebuilt for a reader going on from an offset whose
 * listing is gone: then the directory's listing age stays that of the
 * listing the reader began with (the kernel's copy is that old), unless it
 * has none. Ownership of `ents` and `hold` passes to the table in every
 * case: `hold` is dropped with the listing (so the metadata the entries'
 * attributes come from stays while the listing does). 0 with *out (a
 * reference, dropped with listing_put), or -ENOMEM (then both were freed).
 * Charges the budget (no lock may be held that an evict function takes).
 */
struct dlist;
int listings_publish(struct listings *t, uint64_t ino, struct ns_ent *ents, size_t n,
		     struct dlist *hold, bool resume, const struct listing **out);

/*
 * The listing of `ino` with generation `gen` (from a readdir offset); when
 * that one is no longer kept, the newest. A reference, or NULL when `ino`
 * has none (never listed, forgotten, or its listings evicted).
 */
const struct listing *listings_get(struct listings *t, uint64_t ino, uint32_t gen);
void listing_put(struct listings *t, const struct listing *l); /* NULL is fine */

/*
 * The mtime to report for directory `ino` and how long (seconds) the kernel
 * may keep its attributes. Moves the mtime on when the newest listing has
 * just turned stale (see above), so call it for every attribute reply
 * (lookup, readdirplus, getattr) of a registry directory.
 */
void listings_attr(struct listings *t, uint64_t ino, struct timespec *mtime, double *timeout);

/* The kernel forgot `ino`: drop what is kept for it. */
void listings_forget(struct listings *t, uint64_t ino);

/*
 * Readdir offsets of a listing: the offset after entry `k` of the stream
 * ("." is 0, ".." 1, entry i of the listing 2 + i) is gen << 32 | (k + 1);
 * an offset splits back into (gen, index of the next entry).
 */
uint64_t listing_offset(uint32_t gen, uint64_t next);
void listing_offset_split(uint64_t off, uint32_t *gen, uint64_t *next);

#endif
