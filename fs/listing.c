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
 */
#include "fs/listing.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct dstate {
	struct dstate *next;
	uint64_t ino;
	struct timespec mtime;
	double listed_at; /* monotonic time `cur` was taken */
	bool stale;	  /* `cur` turned ttl old and the mtime moved on */
	struct listing *cur, *prev;
};

struct listings {
	pthread_mutex_t lock; /* guards everything below and listing.refs */
	struct dstate **buckets;
	size_t nbuckets, count;
	uint32_t gen; /* of the last listing published */
	double ttl;
	struct timespec mtime0;
	double (*clock)(void);
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

/* Drop a reference; the caller holds the lock. */
static void unref(struct listing *l)
{
	if (l && !--l->refs) {
		ns_ents_free(l->ents, l->n);
		free(l);
	}
}

static void state_free(struct dstate *s)
{
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
		     const struct listing **out)
{
	struct listing *l = calloc(1, sizeof(*l));
	struct dstate *s;

	*out = NULL;
	if (!l) {
		ns_ents_free(ents, n);
		return -ENOMEM;
	}
	l->ents = ents;
	l->n = n;
	l->refs = 2; /* the table's and the caller's */
	pthread_mutex_lock(&t->lock);
	s = find(t, ino);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			pthread_mutex_unlock(&t->lock);
			ns_ents_free(ents, n);
			free(l);
			return -ENOMEM;
		}
		s->ino = ino;
		s->mtime = t->mtime0;
		if (t->count >= t->nbuckets)
			grow(t);
		s->next = t->buckets[bucket_of(t, ino)];
		t->buckets[bucket_of(t, ino)] = s;
		t->count++;
	}
	/* Generations stay below 2^31: offsets are positive. */
	t->gen = t->gen >= 0x7fffffffu ? 1 : t->gen + 1;
	l->gen = t->gen;
	unref(s->prev);
	s->prev = s->cur;
	s->cur = l;
	s->listed_at = t->clock();
	s->stale = false;
	pthread_mutex_unlock(&t->lock);
	*out = l;
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
		if (l)
			l->refs++;
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
	if (s && s->cur && !s->stale) {
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

	pthread_mutex_lock(&t->lock);
	for (pp = &t->buckets[bucket_of(t, ino)]; *pp; pp = &(*pp)->next)
		if ((*pp)->ino == ino) {
			s = *pp;
			*pp = s->next;
			t->count--;
			break;
		}
	if (s)
		state_free(s);
	pthread_mutex_unlock(&t->lock);
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
