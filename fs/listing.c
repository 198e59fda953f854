/*
 * Design: a chained hash table from directory inode to its state (newest and
 * previous listing, mtime, when the newest was taken), guarded by `lock`, a
 * leaf lock; it doubles when the load passes 1. Listings are reference
 * counted under the same lock, so readdir serves one without holding it.
 *
 * Why the mtime: the kernel (fs/fuse/readdir.c) keeps a directory's listing
 * until, at the start of a later listing, the directory's mtime differs from
 * the one recorded when it began caching; with auto_inval_data it asks for
 * the attributes first when they have expired. So the attribute timeout
 * given out here ends when the newest listing turns `ttl` old, and the first
 * attribute request after that gets a new mtime.
 *
 * Memory budget (listings_set_budget): a directory's state is one unit,
 * charged with what its kept listings take (`bytes`, under `lock`). The
 * eviction of a directory drops both of its listings when no reader holds
 * either (else -EBUSY) and keeps the rest of the state: the mtime and when
 * the newest listing was taken (`listed`, `listed_at`), so the kernel's copy
 * goes stale on time although nothing is kept here. A reader going on from
 * an offset of an evicted listing gets one rebuilt from the dirent cache
 * (ll.c): the same names, unless the registry changed meanwhile, which is
 * what it gets today when two newer listings came (see listing.h). Charges
 * follow `bytes` with no lock held (budget_follow): the evict function
 * takes `lock`. A state stays allocated while a publish is charging it
 * (`pins`), so listings_forget frees it then only when the last one is done.
 * A listing holds the tag list with metadata it was made from (`hold`,
 * ns_list_held): the attributes of its entries, which readdirplus and later
 * requests make from that metadata, cannot lose it to an eviction of the
 * list while the listing is kept. The list stays counted in the dirent
 * cache (not here) while it is the one published there.
 */
#include "fs/listing.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "common/memsize.h"
#include "fs/dcache.h"
#include "image/budget.h"

struct dstate {
	struct dstate *next;
	uint64_t ino;
	struct timespec mtime;
	double listed_at; /* monotonic time the newest listing was taken */
	bool listed;	  /* one was: listed_at holds (its listing may be evicted) */
	bool stale;	  /* it turned ttl old and the mtime moved on */
	struct listing *cur, *prev;
	uint64_t bytes;	  /* what cur and prev take */
	struct listings *t;	 /* for state_evict */
	struct budget_unit unit; /* charged with `bytes` */
	unsigned pins;		 /* publishes charging it now */
	bool gone;		 /* forgotten: the last unpin frees it */
};

struct listings {
	pthread_mutex_t lock; /* guards everything below, the states and listing.refs */
	struct dstate **buckets;
	size_t nbuckets, count;
	uint32_t gen; /* of the last listing published */
	double ttl;
	struct timespec mtime0;
	double (*clock)(void);
	struct budget *budget; /* NULL: none */
	uint64_t bytes;	       /* the states' bytes */
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t bucket_of(const struct listings *t, uint64_t ino)
{
	return (size_t)(ino * 0x9e3779b97f4a7c15ull >> 16) % t->nbuckets;
}

static struct dstate *find(const struct listings *t, uint64_t ino)
{
	struct dstate *s;

	for (s = t->buckets[bucket_of(t, ino)]; s; s = s->next)
		if (s->ino == ino)
			return s;
	return NULL;
}

int listings_new(struct listings **out, double ttl, const struct timespec *mtime0,
		 double (*clock)(void))
{
	struct listings *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->nbuckets = 64;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->ttl = ttl > 0 ? ttl : 0;
	t->mtime0 = *mtime0;
	t->clock = clock ? clock : mono_now;
	*out = t;
	return 0;
}

void listings_set_budget(struct listings *t, struct budget *b)
{
	t->budget = b;
}

uint64_t listings_bytes(struct listings *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->bytes;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void listing_free(struct listing *l)
{
	if (l) {
		ns_ents_free(l->ents, l->n);
		dlist_put(l->hold);
		free(l);
	}
}

/* Drop a reference; the caller holds the lock. */
static void unref(struct listing *l)
{
	if (l && !--l->refs)
		listing_free(l);
}

/* What listing `l` takes: the struct, the entries and their strings. */
static uint64_t listing_bytes(const struct listing *l)
{
	uint64_t n = mem_size(l) + mem_size(l->ents);

	for (size_t i = 0; i < l->n; i++)
		n += mem_size(l->ents[i].name) + mem_size(l->ents[i].target);
	return n;
}

/* Detach cur and prev (the lock held); their bytes leave the count. */
static void state_drop(struct listings *t, struct dstate *s)
{
	unref(s->cur);
	unref(s->prev);
	s->cur = s->prev = NULL;
	t->bytes -= s->bytes;
	s->bytes = 0;
}

/* Free a state nobody can reach any more; no lock held. */
static void state_free(struct dstate *s)
{
	budget_uncharge(&s->unit); /* waits for an eviction of it */
	unref(s->cur);
	unref(s->prev);
	free(s);
}

void listings_free(struct listings *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct dstate *s = t->buckets[i], *next; s; s = next) {
			next = s->next;
			state_free(s);
		}
	free(t->buckets);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* The budget's evict function: drop the directory's listings unless a
 * reader holds one. */
static int state_evict(struct budget_unit *u)
{
	struct dstate *s = (struct dstate *)((char *)u - offsetof(struct dstate, unit));
	struct listings *t = s->t;
	struct listing *cur, *prev;

	pthread_mutex_lock(&t->lock);
	if (s->gone) { /* being freed: nothing is left to give back */
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	if ((s->cur && s->cur->refs > 1) || (s->prev && s->prev->refs > 1)) {
		pthread_mutex_unlock(&t->lock);
		return -EBUSY;
	}
	cur = s->cur;
	prev = s->prev;
	s->cur = s->prev = NULL;
	t->bytes -= s->bytes;
	s->bytes = 0;
	pthread_mutex_unlock(&t->lock);
	listing_free(cur); /* their only reference was the table's */
	listing_free(prev);
	return 0;
}

/* Bring the charge of `s` (pinned) to its bytes, then unpin it; no lock held. */
static void follow_unpin(struct listings *t, struct dstate *s)
{
	bool last;

	if (t->budget)
		budget_follow(&s->unit, &t->lock, &s->bytes);
	pthread_mutex_lock(&t->lock);
	last = !--s->pins && s->gone;
	pthread_mutex_unlock(&t->lock);
	if (last)
		state_free(s);
}

/* Double the table (best effort: on -ENOMEM chains just get longer). */
static void grow(struct listings *t)
{
	size_t old = t->nbuckets;
	struct dstate **ob = t->buckets, **nb = calloc(old * 2, sizeof(*nb));

	if (!nb)
		return;
	t->buckets = nb;
	t->nbuckets = old * 2;
	for (size_t i = 0; i < old; i++)
		for (struct dstate *s = ob[i], *next; s; s = next) {
			size_t b = bucket_of(t, s->ino);

			next = s->next;
			s->next = nb[b];
			nb[b] = s;
		}
	free(ob);
}

int listings_publish(struct listings *t, uint64_t ino, struct ns_ent *ents, size_t n,
		     struct dlist *hold, bool resume, const struct listing **out)
{
	struct listing *l = calloc(1, sizeof(*l));
	struct dstate *s;

	*out = NULL;
	if (!l) {
		ns_ents_free(ents, n);
		dlist_put(hold);
		return -ENOMEM;
	}
	l->ents = ents;
	l->n = n;
	l->hold = hold;
	l->refs = 2; /* the table's and the caller's */
	l->bytes = listing_bytes(l);
	pthread_mutex_lock(&t->lock);
	s = find(t, ino);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			pthread_mutex_unlock(&t->lock);
			listing_free(l);
			return -ENOMEM;
		}
		s->ino = ino;
		s->mtime = t->mtime0;
		s->t = t;
		budget_unit_init(&s->unit, t->budget, state_evict);
		if (t->count >= t->nbuckets)
			grow(t);
		s->next = t->buckets[bucket_of(t, ino)];
		t->buckets[bucket_of(t, ino)] = s;
		t->count++;
	}
	/* Generations stay below 2^31: offsets are positive. */
	t->gen = t->gen >= 0x7fffffffu ? 1 : t->gen + 1;
	l->gen = t->gen;
	if (s->prev) {
		s->bytes -= s->prev->bytes;
		t->bytes -= s->prev->bytes;
		unref(s->prev);
	}
	s->prev = s->cur;
	s->cur = l;
	s->bytes += l->bytes;
	t->bytes += l->bytes;
	/* A listing rebuilt for a reader going on is not a new listing to the
	 * kernel: its copy is as old as the listing it began with. */
	if (!resume || !s->listed) {
		s->listed_at = t->clock();
		s->listed = true;
		s->stale = false;
	}
	s->pins++;
	pthread_mutex_unlock(&t->lock);
	*out = l;
	follow_unpin(t, s);
	return 0;
}

const struct listing *listings_get(struct listings *t, uint64_t ino, uint32_t gen)
{
	struct listing *l = NULL;
	struct dstate *s;

	pthread_mutex_lock(&t->lock);
	s = find(t, ino);
	if (s) {
		l = s->prev && s->prev->gen == gen ? s->prev : s->cur;
		if (l) {
			l->refs++;
			budget_touch(&s->unit);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return l;
}

void listing_put(struct listings *t, const struct listing *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&t->lock);
	unref((struct listing *)l);
	pthread_mutex_unlock(&t->lock);
}

/* A new mtime: now, but always later than the previous one. */
static void mtime_next(struct timespec *m)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec > m->tv_sec || (now.tv_sec == m->tv_sec && now.tv_nsec > m->tv_nsec)) {
		*m = now;
	} else if (++m->tv_nsec == 1000000000) {
		m->tv_sec++;
		m->tv_nsec = 0;
	}
}

void listings_attr(struct listings *t, uint64_t ino, struct timespec *mtime, double *timeout)
{
	struct dstate *s;

	*timeout = t->ttl;
	pthread_mutex_lock(&t->lock);
	s = find(t, ino);
	if (s && s->listed && !s->stale) {
		double age = t->clock() - s->listed_at;

		if (age >= t->ttl) {
			s->stale = true;
			mtime_next(&s->mtime);
		} else {
			*timeout = t->ttl - age;
		}
	}
	*mtime = s ? s->mtime : t->mtime0;
	pthread_mutex_unlock(&t->lock);
}

void listings_forget(struct listings *t, uint64_t ino)
{
	struct dstate **pp, *s = NULL;
	bool now = false;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->buckets[bucket_of(t, ino)]; *pp; pp = &(*pp)->next)
		if ((*pp)->ino == ino) {
			s = *pp;
			*pp = s->next;
			t->count--;
			break;
		}
	if (s) {
		state_drop(t, s);
		s->gone = true;
		now = !s->pins; /* else the last publish charging it frees it */
	}
	pthread_mutex_unlock(&t->lock);
	if (now)
		state_free(s);
}

uint64_t listing_offset(uint32_t gen, uint64_t next)
{
	return (uint64_t)gen << 32 | (next & 0xffffffffu);
}

void listing_offset_split(uint64_t off, uint32_t *gen, uint64_t *next)
{
	*gen = (uint32_t)(off >> 32);
	*next = off & 0xffffffffu;
}
