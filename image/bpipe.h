/*
 * bpipe — a bounded byte pipe from one thread to a worker thread.
 *
 * The producer copies bytes in (bpipe_write); they are cut into slots of a
 * fixed size, and a worker thread of the pipe's own hands each full slot,
 * in order, to the consumer function — the last, partial one at
 * bpipe_close. At most `nslots` slots exist: a producer that is ahead waits
 * for the worker (backpressure), so memory stays at nslots × slot bytes.
 * This is how a cold layer load uses both cores: the thread receiving the
 * blob (and hashing it) produces, the worker inflates and parses.
 *
 * Errors: the consumer's first error is sticky. The worker then stops
 * consuming (later slots are dropped) and every later bpipe_write and
 * bpipe_close returns that error.
 *
 * Without a thread (bpipe_new with `thread` false, or when the thread cannot
 * be started) the producer's own thread consumes each slot as it fills:
 * the same contract and the same slots, one core.
 *
 * Thread-safety: the producer side (bpipe_write, bpipe_close, bpipe_free)
 * belongs to one thread at a time; the consumer runs on the worker only.
 * Blocks: bpipe_write when every slot is full, bpipe_close until the worker
 * is done. No lock is held while copying or consuming.
 */
#ifndef ACRFS_BPIPE_H
#define ACRFS_BPIPE_H

#include <stdbool.h>
#include <stddef.h>

/* Receives the next `n` bytes (borrowed for the call). 0 or -errno. */
typedef int (*bpipe_consume_fn)(void *ctx, const void *data, size_t n);

struct bpipe;

/*
 * *out = a pipe of `nslots` (>= 2) slots of `slot` (> 0) bytes feeding
 * `fn(ctx, …)` on a worker thread (`thread` true) or inline. 0, -EINVAL,
 * -ENOMEM; *out = NULL on failure.
 */
int bpipe_new(struct bpipe **out, size_t slot, unsigned nslots, bool thread,
	      bpipe_consume_fn fn, void *ctx);

/* The next `n` bytes of the stream (borrowed for the call). 0 or the
 * consumer's first error. Blocks while every slot is full. */
int bpipe_write(struct bpipe *p, const void *data, size_t n);

/*
 * End of the stream: the last partial slot is consumed, the worker stops.
 * 0 or the consumer's first error; after it the consumer is never called
 * again. Call once; then only bpipe_free.
 */
int bpipe_close(struct bpipe *p);

/* Stops the worker (dropping slots not consumed yet) and frees. NULL ok. */
void bpipe_free(struct bpipe *p);

/* CPU seconds the worker thread used (0 without one); valid after
 * bpipe_close. For measurements. */
double bpipe_worker_cpu(const struct bpipe *p);

#endif
