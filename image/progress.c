/*
 * progress — see image/progress.h. Design: a doubly linked list of the loads
 * in progress, in the order they began, guarded by `mu` (a leaf lock: held
 * only to link, unlink or copy; never across I/O or logging). A load's
 * `done` is written with atomic adds by its sink and read atomically by the
 * snapshot, so advancing never takes the lock. A load is freed only by the
 * thread that ends it, after unlinking it under `mu`, so a snapshot never
 * reads a freed load.
 */
#include "image/progress.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

struct progress_load {
	struct progress_load *prev, *next; /* guarded by mu */
	char repo[PROGRESS_REPO_MAX];
	struct digest digest;
	uint64_t total;
	uint64_t done; /* atomic */
	struct timespec t0; /* CLOCK_MONOTONIC */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* guarded by mu */
static struct progress_load *head, *tail;
static size_t nloads;
static uint64_t ended_loads, ended_bytes;

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

struct progress_load *progress_begin(const char *repo, const struct digest *d, uint64_t total)
{
	struct progress_load *p = calloc(1, sizeof(*p));
	char ds[DIGEST_STR_SIZE], size[32];

	if (!p)
		return NULL;
	snprintf(p->repo, sizeof(p->repo), "%s", repo ? repo : ""); /* cut on purpose */
	p->digest = *d;
	p->total = total;
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	pthread_mutex_lock(&mu);
	p->prev = tail;
	if (tail)
		tail->next = p;
	else
		head = p;
	tail = p;
	nloads++;
	pthread_mutex_unlock(&mu);
	log_info("layer %.19s of %s: fetching %s", digest_format(d, ds), p->repo,
		 total ? progress_bytes(total, size, sizeof(size)) : "(size unknown)");
	return p;
}

void progress_advance(struct progress_load *p, uint64_t n)
{
	if (p)
		__atomic_add_fetch(&p->done, n, __ATOMIC_RELAXED);
}

void progress_end(struct progress_load *p, int rc)
{
	char ds[DIGEST_STR_SIZE], size[32], rate[32];
	uint64_t done;
	double secs;

	if (!p)
		return;
	pthread_mutex_lock(&mu);
	if (p->prev)
		p->prev->next = p->next;
	else
		head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		tail = p->prev;
	nloads--;
	done = __atomic_load_n(&p->done, __ATOMIC_RELAXED);
	if (!rc) {
		ended_loads++;
		ended_bytes += done;
	}
	pthread_mutex_unlock(&mu);
	if (!rc) {
		secs = since(&p->t0);
		progress_bytes(done, size, sizeof(size));
		progress_bytes(secs > 0.001 ? (uint64_t)((double)done / secs) : done, rate,
			       sizeof(rate));
		log_info("layer %.19s of %s: %s fetched in %.1f s (%s/s)",
			 digest_format(&p->digest, ds), p->repo, size, secs, rate);
	}
	free(p);
}

long progress_snapshot(struct progress_snap **out)
{
	struct progress_snap *v = NULL;
	const struct progress_load *p;
	long n = 0;

	*out = NULL;
	pthread_mutex_lock(&mu);
	if (nloads) {
		v = calloc(nloads, sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&mu);
			return -ENOMEM;
		}
	}
	for (p = head; p; p = p->next, n++) {
		memcpy(v[n].repo, p->repo, sizeof(v[n].repo));
		v[n].digest = p->digest;
		v[n].done = __atomic_load_n(&p->done, __ATOMIC_RELAXED);
		v[n].total = p->total;
		v[n].elapsed = since(&p->t0);
	}
	pthread_mutex_unlock(&mu);
	*out = v;
	return n;
}

void progress_totals(uint64_t *loads, uint64_t *bytes)
{
	pthread_mutex_lock(&mu);
	*loads = ended_loads;
	*bytes = ended_bytes;
	pthread_mutex_unlock(&mu);
}

char *progress_bytes(uint64_t n, char *buf, size_t size)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, size, "%" PRIu64 " B", n);
		return buf;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	/* Three significant digits: "1.50 KiB", "12.3 MiB", "456 MiB". */
	snprintf(buf, size, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

char *progress_format(const struct progress_snap *s, char *buf, size_t size)
{
	char hex[DIGEST_HEX_LEN + 1], done[32], total[32], rate[32], pct[16];
	double r = s->elapsed > 0.001 ? (double)s->done / s->elapsed : 0;

	progress_bytes(s->done, done, sizeof(done));
	if (s->total) {
		progress_bytes(s->total, total, sizeof(total));
		snprintf(pct, sizeof(pct), "%3u%%",
			 (unsigned)(s->done >= s->total ? 100 : s->done * 100 / s->total));
	} else {
		snprintf(total, sizeof(total), "?");
		snprintf(pct, sizeof(pct), "  ?%%");
	}
	progress_bytes((uint64_t)r, rate, sizeof(rate));
	/* A cut line is still a useful line: truncation is accepted here. */
	snprintf(buf, size, "%s sha256:%.12s %s / %s %s %s/s %.0f s", s->repo,
		 digest_hex(&s->digest, hex), done, total, pct, rate, s->elapsed);
	return buf;
}
