/*
 * bpipe — see bpipe.h. Design note.
 *
 * A ring of nslots buffers. The producer fills ring[fill] and posts it when
 * full; the worker consumes posted slots ring[tail .. tail + count) in order
 * and retires them. The producer waits only when all nslots are posted.
 * Without a worker there is one buffer, consumed by the producer when full:
 * the consumer sees the same whole slots either way.
 *
 * Lock: p->lock guards tail, count, stop, err_w and done (a leaf lock, held
 * only to post, retire or stop — never while copying or consuming). The
 * slot being filled belongs to the producer; posted slots to the worker.
 */
#include "image/bpipe.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bpipe {
	size_t slot;
	unsigned nslots;
	bpipe_consume_fn fn;
	void *ctx;
	int err; /* sticky, the producer's view */
	bool closed;

	bool threaded;
	unsigned char **buf; /* nslots buffers of `slot` bytes */
	size_t *len;         /* bytes in each */
	unsigned fill;       /* the slot the producer fills */
	pthread_t thread;
	double wcpu; /* the worker's CPU seconds, written before it exits */

	pthread_mutex_t lock; /* leaf; guards the five fields below */
	pthread_cond_t posted, retired;
	unsigned tail, count; /* posted: ring[tail .. tail + count) */
	bool stop;            /* close (consume what is posted) or free (drop it) */
	int err_w;            /* the consumer's first error */
};

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker_main(void *arg)
{
	struct bpipe *p = arg;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		unsigned i;

		while (p->count == 0 && !p->stop)
			pthread_cond_wait(&p->posted, &p->lock);
		if (p->count == 0 || (p->stop && p->err_w))
			break;
		i = p->tail;
		pthread_mutex_unlock(&p->lock);
		if (!rc)
			rc = p->fn(p->ctx, p->buf[i], p->len[i]);
		pthread_mutex_lock(&p->lock);
		if (rc && !p->err_w)
			p->err_w = rc;
		p->tail = (p->tail + 1) % p->nslots;
		p->count--;
		pthread_cond_signal(&p->retired);
	}
	pthread_mutex_unlock(&p->lock);
	p->wcpu = thread_cpu();
	return NULL;
}

static void free_slots(struct bpipe *p)
{
	unsigned i;

	if (p->buf)
		for (i = 0; i < p->nslots; i++)
			free(p->buf[i]);
	free(p->buf);
	free(p->len);
	p->buf = NULL;
	p->len = NULL;
}

int bpipe_new(struct bpipe **out, size_t slot, unsigned nslots, bool thread,
	      bpipe_consume_fn fn, void *ctx)
{
	struct bpipe *p;
	unsigned i;

	*out = NULL;
	if (slot == 0 || nslots < 2 || !fn)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->slot = slot;
	p->nslots = nslots;
	p->fn = fn;
	p->ctx = ctx;
	p->buf = calloc(nslots, sizeof(*p->buf));
	p->len = calloc(nslots, sizeof(*p->len));
	for (i = 0; p->buf && p->len && i < (thread ? nslots : 1); i++)
		if (!(p->buf[i] = malloc(slot)))
			break;
	if (!p->buf || !p->len || i < (thread ? nslots : 1)) {
		free_slots(p);
		free(p);
		return -ENOMEM;
	}
	if (thread) {
		pthread_mutex_init(&p->lock, NULL);
		pthread_cond_init(&p->posted, NULL);
		pthread_cond_init(&p->retired, NULL);
		p->threaded = pthread_create(&p->thread, NULL, worker_main, p) == 0;
		if (!p->threaded) { /* consume in the producer's thread instead */
			pthread_cond_destroy(&p->retired);
			pthread_cond_destroy(&p->posted);
			pthread_mutex_destroy(&p->lock);
		}
	}
	*out = p;
	return 0;
}

/* Post the slot being filled; with `wait_free`, wait for a free one. */
static int post(struct bpipe *p, bool wait_free)
{
	int rc;

	if (!p->threaded) { /* slot 0, consumed here */
		rc = p->fn(p->ctx, p->buf[0], p->len[0]);
		p->len[0] = 0;
		return rc;
	}
	pthread_mutex_lock(&p->lock);
	p->count++;
	pthread_cond_signal(&p->posted);
	while (wait_free && p->count == p->nslots && !p->err_w)
		pthread_cond_wait(&p->retired, &p->lock);
	rc = p->err_w;
	if (p->count < p->nslots) { /* else an error stops the producer */
		p->fill = (p->tail + p->count) % p->nslots;
		p->len[p->fill] = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int bpipe_write(struct bpipe *p, const void *data, size_t n)
{
	const unsigned char *s = data;
	int rc = 0;

	if (p->err)
		return p->err;
	if (p->closed)
		return -EINVAL;
	while (!rc && n) {
		size_t k = p->slot - p->len[p->fill];

		if (k > n)
			k = n;
		memcpy(p->buf[p->fill] + p->len[p->fill], s, k);
		p->len[p->fill] += k;
		s += k;
		n -= k;
		if (p->len[p->fill] == p->slot)
			rc = post(p, true);
	}
	if (rc)
		p->err = rc;
	return rc;
}

/* Stop and join the worker; `drop`: without consuming what is still posted. */
static int stop_worker(struct bpipe *p, bool drop)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	if (drop && !p->err_w)
		p->err_w = -ECANCELED;
	pthread_cond_signal(&p->posted);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	p->threaded = false;
	rc = p->err_w;
	pthread_cond_destroy(&p->retired);
	pthread_cond_destroy(&p->posted);
	pthread_mutex_destroy(&p->lock);
	return rc;
}

int bpipe_close(struct bpipe *p)
{
	int rc = p->err;

	if (p->closed)
		return -EINVAL;
	p->closed = true;
	if (!rc && p->len[p->fill])
		rc = post(p, false);
	if (!rc && p->threaded)
		rc = stop_worker(p, false);
	if (rc)
		p->err = rc;
	return rc;
}

void bpipe_free(struct bpipe *p)
{
	if (!p)
		return;
	if (p->threaded)
		(void)stop_worker(p, true);
	free_slots(p);
	free(p);
}

double bpipe_worker_cpu(const struct bpipe *p)
{
	return p->wcpu;
}
