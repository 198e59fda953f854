/*
 * pfetch — see pfetch.h. Design note.
 *
 * Chunk k is [off + k·chunk, min(off + (k+1)·chunk, size)) and lives in slot
 * k % W of W = conns + 1 buffers. Fetcher threads take chunk numbers in
 * order from `next`; a fetcher holding chunk k waits until its slot is free
 * (k < consumed + W), reads the chunk without the lock, and marks the slot
 * ready. The calling thread (the consumer) waits for chunk `consumed`,
 * hashes it and hands it to the sink without the lock, then frees its slot.
 * So at most conns reads are in flight, at most W chunks are held, and the
 * sink sees the blob in order. A fetcher that fails records the first
 * error and everybody stops; so does a sink error.
 *
 * Lock: pf->lock (a leaf) guards next, consumed, ready[], err and stop;
 * pf->cond is broadcast on every change of them. A slot's bytes belong to
 * its fetcher until it is marked ready, then to the consumer until freed.
 */
#include "image/pfetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define PIECE (128u << 10)

struct pf {
	const struct blob_source *src;
	const struct digest *d;
	uint64_t size;
	uint64_t off; /* where chunk 0 starts */
	size_t chunk;
	uint64_t nchunks;
	unsigned w;           /* slots */
	unsigned char **buf;  /* w buffers of `chunk` bytes */

	pthread_mutex_t lock; /* leaf; guards the five fields below */
	pthread_cond_t cond;
	uint64_t next;     /* the next chunk a fetcher takes */
	uint64_t consumed; /* chunks the consumer is done with */
	uint64_t *ready;   /* per slot: 1 + the chunk it holds, 0 when none */
	int err;           /* the first error */
	bool stop;
};

static size_t chunk_len(const struct pf *p, uint64_t k)
{
	uint64_t off = p->off + k * p->chunk;

	return p->size - off < p->chunk ? (size_t)(p->size - off) : p->chunk;
}

/* Exactly chunk k into its slot. 0 or -errno. */
static int read_chunk(struct pf *p, uint64_t k)
{
	unsigned char *buf = p->buf[k % p->w];
	size_t len = chunk_len(p, k), got = 0;
	uint64_t off = p->off + k * p->chunk;

	while (got < len) {
		ssize_t r = p->src->pread(p->src->ctx, p->d, p->size, buf + got, len - got,
					  off + got);

		if (r < 0)
			return (int)r;
		if (r == 0 || (size_t)r > len - got)
			return -EIO; /* the registry logged what it got */
		got += (size_t)r;
	}
	return 0;
}

static void fail(struct pf *p, int rc)
{
	pthread_mutex_lock(&p->lock);
	if (!p->err)
		p->err = rc;
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void *fetcher_main(void *arg)
{
	struct pf *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop && p->next < p->nchunks) {
		uint64_t k = p->next++;
		int rc;

		while (!p->stop && k >= p->consumed + p->w)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->lock);
		rc = read_chunk(p, k);
		pthread_mutex_lock(&p->lock);
		if (rc) {
			if (!p->err)
				p->err = rc;
			p->stop = true;
		} else {
			p->ready[k % p->w] = k + 1;
		}
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/*
 * Hash `len` bytes and hand them to the sink, PIECE bytes at a time: every
 * pass over a piece (the digest, and the sink's block sums, local copy and
 * pipe) then reads it from the cache, not from memory.
 */
static int pass_on(const unsigned char *data, size_t len, struct digest_hasher *h,
		   blob_sink_fn sink, void *sink_ctx)
{
	int rc = 0;

	while (!rc && len) {
		size_t k = len < PIECE ? len : PIECE;

		rc = digest_hasher_update(h, data, k);
		if (!rc)
			rc = sink(sink_ctx, data, k);
		data += k;
		len -= k;
	}
	return rc;
}

/* Hand chunks in order to the sink until the end or an error. */
static int consume(struct pf *p, struct digest_hasher *h, blob_sink_fn sink, void *sink_ctx)
{
	uint64_t k;
	int rc = 0;

	for (k = 0; !rc && k < p->nchunks; k++) {
		unsigned s = (unsigned)(k % p->w);
		size_t len = chunk_len(p, k);

		pthread_mutex_lock(&p->lock);
		while (!p->err && p->ready[s] != k + 1)
			pthread_cond_wait(&p->cond, &p->lock);
		rc = p->err;
		pthread_mutex_unlock(&p->lock);
		if (rc)
			break;
		rc = pass_on(p->buf[s], len, h, sink, sink_ctx);
		if (rc) {
			fail(p, rc);
			break;
		}
		pthread_mutex_lock(&p->lock);
		p->ready[s] = 0;
		p->consumed = k + 1;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
	return rc;
}

int pfetch_stream(const struct blob_source *src, const struct digest *d, uint64_t size,
		  uint64_t off, struct digest_hasher *h, unsigned conns, size_t chunk,
		  blob_sink_fn sink, void *sink_ctx)
{
	pthread_t th[PFETCH_CONNS_MAX];
	char ds[DIGEST_STR_SIZE], gs[DIGEST_STR_SIZE];
	struct digest got;
	unsigned i, started = 0;
	struct pf p;
	int rc;

	if (!src || !src->pread || !d || off >= size || !h || conns == 0 ||
	    conns > PFETCH_CONNS_MAX || chunk == 0 || !sink)
		return -EINVAL;
	if (!src->ranges)
		return -ENOTSUP;
	memset(&p, 0, sizeof(p));
	p.src = src;
	p.d = d;
	p.size = size;
	p.off = off;
	p.chunk = chunk;
	p.nchunks = (size - off + chunk - 1) / chunk;
	p.w = conns + 1;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	p.buf = calloc(p.w, sizeof(*p.buf));
	p.ready = calloc(p.w, sizeof(*p.ready));
	rc = p.buf && p.ready ? 0 : -ENOMEM;
	for (i = 0; !rc && i < p.w; i++)
		if (!(p.buf[i] = malloc(chunk)))
			rc = -ENOMEM;
	/* The first chunk alone: then the source knows whether ranges work. */
	if (!rc)
		rc = read_chunk(&p, 0);
	if (!rc && src->ranges(src->ctx, d) != 1)
		rc = -ENOTSUP;
	if (rc)
		goto out;
	p.ready[0] = 1;
	p.next = 1;
	for (i = 0; i < conns && i + 1 < p.nchunks; i++, started++)
		if (pthread_create(&th[i], NULL, fetcher_main, &p))
			break;
	if (started == 0 && p.nchunks > 1) {
		rc = -ENOTSUP; /* no thread: let the caller stream */
		goto out;
	}
	rc = consume(&p, h, sink, sink_ctx);
	if (!rc) {
		rc = digest_hasher_final(h, d, &got);
		if (rc == -EBADMSG) {
			log_error("blob %s, read by ranges, hashes to %s", digest_format(d, ds),
				  digest_format(&got, gs));
			rc = -EIO;
		}
	}
out:
	if (started)
		fail(&p, rc ? rc : -ECANCELED); /* wake and stop every fetcher */
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (i = 0; p.buf && i < p.w; i++)
		free(p.buf[i]);
	free(p.buf);
	free(p.ready);
	pthread_cond_destroy(&p.cond);
	pthread_mutex_destroy(&p.lock);
	return rc;
}
