/*
 * blockhash — SHA-256 of every fixed-size block of a byte stream, and the
 * check of bytes read back later against those sums.
 *
 * A layer blob is hashed block by block while it streams through its
 * digest-verified pass (layer.c feeds every byte, in order, exactly once):
 * the sums are then as trustworthy as the blob digest itself, and any later
 * read — a Range request, a 200 that ignored Range, a local copy — is
 * widened to whole blocks and checked before a byte of it is used.
 *
 * Blocks are counted from offset 0: block i covers [i·bsize, (i+1)·bsize),
 * the last one shorter when the stream length is not a multiple. A stream of
 * 0 bytes has no block.
 *
 * A blockhash may hash on a worker thread of its own (`worker`): the bytes
 * are copied into a ring of batches (image/bpipe) and the calling thread
 * goes on at once. Without a worker it hashes in the calling thread,
 * without copying (when the thread cannot be started: in the calling
 * thread, batch by batch).
 *
 * Thread-safety: a blockhash belongs to one thread at a time (its worker is
 * internal). struct blocksums is immutable once built and may be read by any
 * number of threads. Nothing blocks except on the worker's progress.
 */
#ifndef ACRFS_BLOCKHASH_H
#define ACRFS_BLOCKHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

#define BLOCKHASH_MIN (4u << 10)   /* accepted block sizes: powers of two */
#define BLOCKHASH_MAX (1u << 20)   /* in [MIN, MAX] */

/* The sums of a stream: n = ceil(len / bsize) SHA-256 sums, block order. */
struct blocksums {
	uint32_t bsize;
	uint64_t len;        /* bytes the sums cover */
	uint64_t n;          /* blocks */
	unsigned char *sum;  /* n * DIGEST_RAW_LEN bytes (NULL when n == 0) */
};

struct blockhash;

/*
 * *out = a hasher of `bsize`-byte blocks (a power of two in
 * [BLOCKHASH_MIN, BLOCKHASH_MAX], else -EINVAL), hashing on a worker thread
 * when `worker` is true. 0, -EINVAL, -ENOMEM; *out = NULL on failure.
 */
int blockhash_new(struct blockhash **out, uint32_t bsize, bool worker);

/* The next `n` bytes of the stream (borrowed for the call). 0, or -ENOMEM /
 * -EIO (libcrypto), sticky: every later call returns it again. */
int blockhash_feed(struct blockhash *h, const void *data, size_t n);

/*
 * End of the stream: *out = the sums of everything fed (the caller releases
 * them with blocksums_release). 0 or the sticky error. The hasher is spent
 * (and must still be freed).
 */
int blockhash_finish(struct blockhash *h, struct blocksums *out);

/* Stops the worker, drops everything. NULL is fine. */
void blockhash_free(struct blockhash *h);

/* ceil(len / bsize): the number of blocks of a `len`-byte stream (UINT64_MAX,
 * a count no table has, when bsize is 0 and len is not). */
uint64_t blocksums_count(uint64_t len, uint32_t bsize);

/*
 * Check `len` bytes `data` that were read at stream offset `off`. `off`
 * must start a block and `off + len` must end one (or be the end of the
 * stream); else -EINVAL. 0 when every block matches; -EBADMSG at the first
 * block that does not, with *bad = its index.
 */
int blocksums_verify(const struct blocksums *s, uint64_t off, const void *data, size_t len,
		     uint64_t *bad);

/* Free what *s holds and zero it. */
void blocksums_release(struct blocksums *s);

#endif
