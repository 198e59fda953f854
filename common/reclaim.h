/*
 * reclaim — deferred freeing of memory that readers borrow without a lock
 * (quiescent-state reclamation, one domain per process).
 *
 * A reader brackets the time it may hold borrowed pointers with
 * reclaim_enter() / reclaim_leave(): the FUSE edge does it around every
 * request, a worker thread around every job. A writer that unpublishes an
 * object (so that no reader entering afterwards can find it) hands it to
 * reclaim_retire(); the object is freed once every reader that entered
 * before the retire has left. Nothing a reader does between enter and leave
 * is slowed down: entering and leaving are two atomic operations.
 *
 * How: two reader counters and a current phase. Retired objects wait on a
 * list; the reclaimer thread (started at the first retire) moves the list
 * aside, flips the phase, waits until the old phase's counter is zero and
 * frees what it moved (then, at most every 100 ms, hands free heap memory back
 * to the system: malloc_trim). A reader that stays inside for a long time (a request
 * blocked on the network) only delays freeing.
 *
 * Rules: enter/leave nest (each leave takes the token its enter gave). A
 * thread inside must never wait for reclamation (reclaim_barrier) — that
 * would wait for itself. Free functions run on the reclaimer thread and must
 * not block on readers.
 *
 * Thread-safe. reclaim_barrier() waits until everything retired before it
 * is freed (tests, shutdown); reclaim_shutdown() frees what is left and
 * stops the thread (at exit, with no reader inside).
 */
#ifndef ACRFS_RECLAIM_H
#define ACRFS_RECLAIM_H

#include <stdint.h>

/* What a retired object embeds (its fields are reclaim.c's). */
struct reclaim_node {
	void (*fn)(struct reclaim_node *n);
	struct reclaim_node *next;
};

/* Enter a read side; returns the token for reclaim_leave. */
unsigned reclaim_enter(void);
void reclaim_leave(unsigned token);

/*
 * Call `fn(n)` (which frees the object embedding `n`) once every reader
 * inside now has left. Cannot fail: if the reclaimer thread cannot be
 * started, the object waits until a later retire starts it.
 */
void reclaim_retire(struct reclaim_node *n, void (*fn)(struct reclaim_node *n));

/* Block until everything retired before the call is freed. Never call
 * while inside a read side. */
void reclaim_barrier(void);

/* Objects freed so far and objects waiting (for .acrfs/status and tests). */
void reclaim_counts(uint64_t *freed, uint64_t *pending);

/* Stop the reclaimer thread after freeing everything retired (no reader may
 * be inside). Safe to call when nothing was ever retired; retiring after it
 * starts the thread again. */
void reclaim_shutdown(void);

#endif
