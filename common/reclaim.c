/*
 * reclaim — see reclaim.h. Why it is correct:
 *
 * A reader reads the phase e, counts itself in active[e], and reads the phase
 * again; if it moved, it uncounts itself and retries. So once enter returns,
 * either the phase has not flipped since the reader counted itself (the
 * reclaimer's wait for active[e] will see it), or it flipped an even number
 * of times, and everything retired before the last flip was unpublished
 * before the reader could look. The reclaimer takes the retired list, flips
 * the phase and waits for the old phase's counter to drain: every reader
 * that could have seen an object of the list entered before the flip, under
 * the old phase. All atomics are sequentially consistent.
 */
#include "common/reclaim.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define TRIM_EVERY_NS 100000000ll /* malloc_trim at most every 100 ms */

static unsigned phase;     /* atomic: 0 or 1 */
static uint64_t active[2]; /* atomic: readers inside, per phase */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards what follows */
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;   /* the reclaimer: work or stop */
static pthread_cond_t freed_cond = PTHREAD_COND_INITIALIZER; /* barrier waiters */
static struct reclaim_node *pending, **pending_tail = &pending;
static uint64_t nretired, nfreed;
static bool running, stopping;
static pthread_t thread;

unsigned reclaim_enter(void)
{
	for (;;) {
		unsigned e = __atomic_load_n(&phase, __ATOMIC_SEQ_CST);

		__atomic_add_fetch(&active[e], 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&phase, __ATOMIC_SEQ_CST) == e)
			return e;
		__atomic_sub_fetch(&active[e], 1, __ATOMIC_SEQ_CST);
	}
}

void reclaim_leave(unsigned token)
{
	__atomic_sub_fetch(&active[token & 1], 1, __ATOMIC_SEQ_CST);
}

/* Wait for the readers of phase `e` to leave: short sleeps growing to 10 ms
 * (a reader may be blocked on the network for seconds). */
static void drain(unsigned e)
{
	long ns = 50000;

	while (__atomic_load_n(&active[e], __ATOMIC_SEQ_CST) != 0) {
		struct timespec ts = { 0, ns };

		nanosleep(&ts, NULL);
		if (ns < 10000000)
			ns *= 2;
	}
}

/*
 * What was freed goes back to the system: glibc keeps freed chunks in its
 * arenas (one per thread that allocated: loads run on many), so evicted
 * trees would leave the RSS where it was. At most every TRIM_EVERY_NS: a
 * trim walks every arena. false: skipped for that bound (the reclaimer
 * owes one: it trims when the bound has passed, even if nothing else is
 * freed by then).
 */
static bool trim_heap(void)
{
#ifdef __GLIBC__
	static long long last;
	struct timespec ts;
	long long now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
	if (now - last < TRIM_EVERY_NS)
		return false;
	last = now;
	malloc_trim(0);
#endif
	return true;
}

/* lock held: wait for work, or until an owed trim is due (then do it). */
static void wait_work(bool *trim_owed)
{
	struct timespec due;

	if (!*trim_owed) {
		pthread_cond_wait(&wake, &lock);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &due); /* the condition's clock */
	due.tv_nsec += TRIM_EVERY_NS;
	if (due.tv_nsec >= 1000000000l) {
		due.tv_sec++;
		due.tv_nsec -= 1000000000l;
	}
	if (pthread_cond_timedwait(&wake, &lock, &due) == ETIMEDOUT) {
		pthread_mutex_unlock(&lock);
		*trim_owed = !trim_heap();
		pthread_mutex_lock(&lock);
	}
}

static void *reclaimer(void *arg)
{
	bool trim_owed = false;

	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		struct reclaim_node *batch, *it;
		uint64_t n = 0;
		unsigned old;

		while (!pending && !stopping)
			wait_work(&trim_owed);
		if (!pending)
			break;
		batch = pending;
		pending = NULL;
		pending_tail = &pending;
		pthread_mutex_unlock(&lock);

		old = __atomic_load_n(&phase, __ATOMIC_SEQ_CST);
		__atomic_store_n(&phase, old ^ 1u, __ATOMIC_SEQ_CST);
		drain(old);
		while ((it = batch)) {
			batch = it->next;
			it->fn(it);
			n++;
		}
		trim_owed = !trim_heap();

		pthread_mutex_lock(&lock);
		nfreed += n;
		pthread_cond_broadcast(&freed_cond);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

void reclaim_retire(struct reclaim_node *n, void (*fn)(struct reclaim_node *n))
{
	n->fn = fn;
	n->next = NULL;
	pthread_mutex_lock(&lock);
	*pending_tail = n;
	pending_tail = &n->next;
	nretired++;
	if (!running) {
		stopping = false;
		running = pthread_create(&thread, NULL, reclaimer, NULL) == 0;
	}
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
}

void reclaim_barrier(void)
{
	uint64_t target;

	pthread_mutex_lock(&lock);
	target = nretired;
	while (nfreed < target)
		pthread_cond_wait(&freed_cond, &lock);
	pthread_mutex_unlock(&lock);
}

void reclaim_counts(uint64_t *freed, uint64_t *waiting)
{
	pthread_mutex_lock(&lock);
	*freed = nfreed;
	*waiting = nretired - nfreed;
	pthread_mutex_unlock(&lock);
}

void reclaim_shutdown(void)
{
	bool join;

	pthread_mutex_lock(&lock);
	join = running;
	stopping = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	if (join)
		pthread_join(thread, NULL);
	pthread_mutex_lock(&lock);
	running = false;
	stopping = false;
	pthread_mutex_unlock(&lock);
}
