/*
 * progress — the layer loads in progress, for the user who waits on one:
 * .acrfs/loads, the "loads" of .acrfs/status and the progress line of
 * `acrfs -f` on a terminal.
 *
 * One table per process (loads of every mount of it; acrfs has one). A load
 * is begun when a layer blob starts to stream ("fetching <size>" is logged),
 * advanced by its sink with the bytes received, and ended when the stream
 * returns; the end logs one line with size, time and rate. Readers take a
 * snapshot: a copy, consistent per load, never blocking a load for longer
 * than a copy of the table.
 *
 * Thread-safety: every function may be called from any thread.
 * progress_advance() takes no lock (one atomic add): it runs for every chunk
 * of every blob. A `struct progress_load` belongs to the thread that began
 * it until it ends it.
 */
#ifndef ACRFS_PROGRESS_H
#define ACRFS_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

#define PROGRESS_REPO_MAX 256 /* longer repository names are cut */

struct progress_load;

/*
 * Enter a load of blob `d` (`total` bytes, 0: unknown) of repository `repo`
 * (copied, cut to PROGRESS_REPO_MAX - 1 bytes). Returns NULL when out of
 * memory: progress_advance / progress_end accept NULL, so a caller never
 * fails because of this bookkeeping.
 */
struct progress_load *progress_begin(const char *repo, const struct digest *d, uint64_t total);

/* `n` more bytes received. NULL is fine. Lock-free. */
void progress_advance(struct progress_load *p, uint64_t n);

/*
 * Leave the table and free `p` (NULL is fine). `rc` is the load's result:
 * 0 logs "<repo> <digest>: <size> in <s> s (<rate>)" at info level, an
 * error logs nothing (the caller logged why).
 */
void progress_end(struct progress_load *p, int rc);

/* One load as a snapshot shows it. */
struct progress_snap {
	char repo[PROGRESS_REPO_MAX];
	struct digest digest;
	uint64_t done;	 /* bytes received so far */
	uint64_t total;	 /* 0: unknown */
	double elapsed;	 /* seconds since progress_begin */
};

/*
 * Copy the loads in progress, oldest first, into *out (caller frees; NULL
 * when there are none). Returns how many, or -ENOMEM.
 */
long progress_snapshot(struct progress_snap **out);

/* Loads ended so far with rc 0, and the bytes they received. */
void progress_totals(uint64_t *loads, uint64_t *bytes);

/*
 * One line for `s` (no newline): "<repo> sha256:<12 hex> <done>/<total> <pct>
 * <rate>/s <elapsed>", sizes in KiB/MiB/GiB. Always NUL-terminates `buf`
 * (cut if `size` is short). Returns `buf`.
 */
char *progress_format(const struct progress_snap *s, char *buf, size_t size);

/* A byte count for people: "512 B", "1.5 KiB", "12.3 MiB", "4.00 GiB". */
char *progress_bytes(uint64_t n, char *buf, size_t size);

#endif
