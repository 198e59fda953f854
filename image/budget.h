/*
 * budget — a memory budget over things that can be unloaded and loaded again
 * (layer trees and indexes, merged rootfs trees), evicting the least recently
 * used when the total goes over the bound.
 *
 * An owner embeds a struct budget_unit per thing, sets its evict function
 * (budget_unit_init; NULL for memory that is counted but cannot be given
 * back on demand, e.g. the inode table the kernel holds: charging it makes
 * the other units go), charges the unit's bytes once the thing is loaded
 * (budget_charge: this may evict other units, never the one charged), marks
 * each use (budget_touch: one atomic store) and uncharges it when it frees
 * the thing on its own (budget_uncharge). The evict function runs without
 * any budget lock; it unloads the thing if nothing holds it (then its
 * memory is the owner's to reclaim: see common/reclaim.h for memory that
 * readers borrow without a lock) and returns 0, or returns -EBUSY. A unit
 * is never evicted twice at once, and budget_uncharge waits for an
 * eviction of it in progress, so an owner may free the unit after it.
 *
 * max == 0: no bound (units are still counted). Eviction is best effort:
 * when every unit is busy, or only the unit just charged is left, the total
 * stays over the bound until the next charge.
 *
 * Lock order: the budget's lock is a leaf; evict functions are called with
 * it released, so they may take the owner's locks. Thread-safe.
 */
#ifndef ACRFS_BUDGET_H
#define ACRFS_BUDGET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct budget;

/* Embedded in the owner; fields are budget.c's (the budget's lock). */
struct budget_unit {
	struct budget *b;
	int (*evict)(struct budget_unit *u);
	uint64_t bytes;
	uint64_t tick; /* atomic: last use */
	uint64_t skip; /* the trim that found it busy */
	struct budget_unit *prev, *next;
	bool listed, evicting;
};

struct budget_stats {
	uint64_t max;       /* the bound, 0 = none */
	uint64_t bytes;     /* charged now */
	uint64_t peak;      /* highest charged total seen after a trim */
	uint64_t units;     /* units charged now */
	uint64_t evictions; /* units evicted so far */
	uint64_t busy;      /* evictions refused with -EBUSY so far */
};

/* 0 or -ENOMEM. */
int budget_new(struct budget **out, uint64_t max);
/* Every unit must have been uncharged. NULL is fine. */
void budget_free(struct budget *b);

/* Before the unit's first use. `b` may be NULL (every call is then a no-op). */
void budget_unit_init(struct budget_unit *u, struct budget *b,
		      int (*evict)(struct budget_unit *u));

/* The thing holds `bytes` now: count them (the unit becomes the most
 * recently used) and evict others while over the bound. Blocks only on
 * evict functions. */
void budget_charge(struct budget_unit *u, uint64_t bytes);
/* The unit was used. Lock-free. */
void budget_touch(struct budget_unit *u);
/* The owner unloads or frees the thing itself: stop counting it. Waits
 * for an eviction of it in progress. */
void budget_uncharge(struct budget_unit *u);

/*
 * For owners whose things change size under their own lock `lock` and
 * whose evict function sets *bytes to 0 under it: bring the unit's charge
 * to *bytes (budget_charge, or budget_uncharge when 0). Reads *bytes under
 * `lock`, charges without it, reads again and goes on while it moved
 * meanwhile (a change or an eviction between the read and the charge).
 * Call it with no lock held after every change the owner makes to *bytes;
 * concurrent calls for one unit need no serializing: whichever charges
 * last reads *bytes after its charge, so the charge ends up right (an
 * eviction leaves both at 0). Blocks only as budget_charge does.
 */
void budget_follow(struct budget_unit *u, pthread_mutex_t *lock, const uint64_t *bytes);

void budget_get_stats(struct budget *b, struct budget_stats *st);

#endif
