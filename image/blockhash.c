/*
 * blockhash — per-block SHA-256 of a stream. Design note.
 *
 * Without a worker, feed() runs one streaming hasher per block over the
 * caller's bytes (no copy) and appends each finished block's sum.
 *
 * With a worker, feed() copies the bytes into a bpipe of NBATCH batches of
 * `batch` bytes (a multiple of the block size, so a batch holds whole
 * blocks; only the last one may end in a partial block); the pipe's worker
 * hashes the batches in order and appends their sums. The producer waits
 * only when every batch is posted and not yet hashed: hashing (~1.6 GB/s
 * with SHA-NI) is faster than inflating, so on a cold load it never waits
 * in practice, and the copy (~10 GB/s) is the whole cost left on the
 * inflating thread.
 *
 * The sums array belongs to the worker while it runs and to the caller
 * after bpipe_close (which joins it).
 */
#include "image/blockhash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image/bpipe.h"

#define NBATCH 4
#define BATCH_BYTES (256u << 10)

struct blockhash {
	uint32_t bsize;
	int err; /* sticky */
	bool finished;
	uint64_t fed;

	unsigned char *sums; /* DIGEST_RAW_LEN each */
	uint64_t nsums, capsums;

	/* No worker: the block being hashed. */
	struct digest_hasher *cur;
	size_t cur_len;

	struct bpipe *pipe; /* worker: batches of whole blocks */
};

static bool pow2_ok(uint32_t b)
{
	return b >= BLOCKHASH_MIN && b <= BLOCKHASH_MAX && (b & (b - 1)) == 0;
}

uint64_t blocksums_count(uint64_t len, uint32_t bsize)
{
	if (!bsize)
		return len ? UINT64_MAX : 0; /* no valid count: callers compare it with n */
	return len / bsize + (len % bsize != 0);
}

static int sums_add(struct blockhash *h, const struct digest *d)
{
	if (h->nsums == h->capsums) {
		uint64_t cap = h->capsums ? 2 * h->capsums : 256;
		unsigned char *p = realloc(h->sums, (size_t)cap * DIGEST_RAW_LEN);

		if (!p)
			return -ENOMEM;
		h->sums = p;
		h->capsums = cap;
	}
	memcpy(h->sums + h->nsums * DIGEST_RAW_LEN, d->raw, DIGEST_RAW_LEN);
	h->nsums++;
	return 0;
}

/* Hash `len` bytes as consecutive blocks (the last one may be short). */
static int hash_blocks(struct blockhash *h, const unsigned char *p, size_t len)
{
	struct digest d;
	int rc = 0;

	while (!rc && len) {
		size_t k = len < h->bsize ? len : h->bsize;

		rc = digest_of_buf(&d, p, k);
		if (!rc)
			rc = sums_add(h, &d);
		p += k;
		len -= k;
	}
	return rc;
}

static int hash_batch(void *ctx, const void *data, size_t n)
{
	return hash_blocks(ctx, data, n);
}

int blockhash_new(struct blockhash **out, uint32_t bsize, bool worker)
{
	struct blockhash *h;
	int rc;

	*out = NULL;
	if (!pow2_ok(bsize))
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->bsize = bsize;
	if (worker) {
		/* Batches hold whole blocks: both are powers of two. */
		rc = bpipe_new(&h->pipe, bsize >= BATCH_BYTES ? bsize : BATCH_BYTES, NBATCH, true,
			       hash_batch, h);
		if (rc) {
			free(h);
			return rc;
		}
	}
	*out = h;
	return 0;
}

static int feed_sync(struct blockhash *h, const unsigned char *p, size_t n)
{
	struct digest d;
	int rc = 0;

	while (!rc && n) {
		size_t k = h->bsize - h->cur_len;

		if (k > n)
			k = n;
		if (!h->cur)
			rc = digest_hasher_new(&h->cur);
		if (!rc)
			rc = digest_hasher_update(h->cur, p, k);
		if (rc)
			break;
		h->cur_len += k;
		p += k;
		n -= k;
		if (h->cur_len == h->bsize) {
			rc = digest_hasher_final(h->cur, NULL, &d);
			digest_hasher_free(h->cur);
			h->cur = NULL;
			h->cur_len = 0;
			if (!rc)
				rc = sums_add(h, &d);
		}
	}
	return rc;
}

int blockhash_feed(struct blockhash *h, const void *data, size_t n)
{
	const unsigned char *p = data;
	int rc = 0;

	if (h->err)
		return h->err;
	if (h->finished)
		return -EINVAL;
	h->fed += n;
	rc = h->pipe ? bpipe_write(h->pipe, p, n) : feed_sync(h, p, n);
	if (rc)
		h->err = rc;
	return rc;
}

int blockhash_finish(struct blockhash *h, struct blocksums *out)
{
	struct digest d;
	int rc = h->err;

	memset(out, 0, sizeof(*out));
	if (rc)
		return rc;
	if (h->finished)
		return -EINVAL;
	h->finished = true;
	if (h->pipe) {
		rc = bpipe_close(h->pipe);
	} else if (h->cur) {
		rc = digest_hasher_final(h->cur, NULL, &d);
		digest_hasher_free(h->cur);
		h->cur = NULL;
		if (!rc)
			rc = sums_add(h, &d);
	}
	if (!rc && h->nsums != blocksums_count(h->fed, h->bsize))
		rc = -EIO; /* cannot happen */
	if (rc) {
		h->err = rc;
		return rc;
	}
	out->bsize = h->bsize;
	out->len = h->fed;
	out->n = h->nsums;
	out->sum = h->sums;
	h->sums = NULL;
	h->nsums = h->capsums = 0;
	return 0;
}

void blockhash_free(struct blockhash *h)
{
	if (!h)
		return;
	bpipe_free(h->pipe); /* first: its worker may still append sums */
	digest_hasher_free(h->cur);
	free(h->sums);
	free(h);
}

int blocksums_verify(const struct blocksums *s, uint64_t off, const void *data, size_t len,
		     uint64_t *bad)
{
	const unsigned char *p = data;
	uint64_t i, end;
	struct digest d;
	int rc;

	if (off > s->len || len > s->len - off || off % s->bsize ||
	    ((off + len) % s->bsize && off + len != s->len))
		return -EINVAL;
	end = off + len;
	for (i = off / s->bsize; off < end; i++) {
		size_t k = end - off < s->bsize ? (size_t)(end - off) : s->bsize;

		rc = digest_of_buf(&d, p, k);
		if (rc)
			return rc;
		if (memcmp(d.raw, s->sum + i * DIGEST_RAW_LEN, DIGEST_RAW_LEN)) {
			*bad = i;
			return -EBADMSG;
		}
		p += k;
		off += k;
	}
	return 0;
}

void blocksums_release(struct blocksums *s)
{
	free(s->sum);
	memset(s, 0, sizeof(*s));
}
