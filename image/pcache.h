/*
 * pcache — the persistent cache directory (-o cache_dir=DIR).
 *
 * Layout (everything below DIR is ours; other files are left alone):
 *
 *   DIR/                      0700, must be owned by the effective user
 *   DIR/v1/index/<hex>.idx    one layer index file per blob digest (0600)
 *   DIR/v1/rootfs/<hex>.rfs   one rootfs file per list of layers (0600;
 *                             named by image.c's key of the list)
 *   DIR/v1/blobs/<hex>        a local copy of a compressed blob (0600)
 *   DIR/v1/blobs/<hex>.<sfx>  a derived copy (e.g. ".tar": the decompressed
 *                             bytes of a zstd layer), same accounting
 *
 * Every file is written atomically: a temporary file in the same directory
 * (O_EXCL, 0600), fsync, rename over the final name, fsync of the directory.
 * A crash leaves either the old file, the new one, or a stale "*.tmp.*" that
 * pcache_open removes once it is an hour old (younger ones may belong to
 * another acrfs sharing the directory).
 *
 * Blob files are bounded by `max_blob_bytes` (cache_max): an in-memory LRU
 * table, rebuilt at open from the files' mtimes, orders them by last use;
 * pcache_blob_pread touches an entry (in memory; on disk the mtime is
 * refreshed at most once a minute so the order survives a remount), and
 * writing a new blob evicts least-recently-used blobs until the new one
 * fits. A blob larger than the whole budget is not cached. Index and rootfs
 * files have a second table and bound (pcache_set_index_max, index_max),
 * kept the same way: a load touches the file, a store evicts the least
 * recently used index and rootfs files until it fits. Their content is
 * checked by the reader, not here. Two processes sharing one directory each
 * keep their own tables: the bounds then hold per process, not jointly.
 *
 * Thread-safety: every function is thread-safe. One mutex guards the LRU
 * table and the byte counts; no file I/O happens under it except unlink of
 * evicted files. Reads and writes of file contents block on the disk.
 */
#ifndef ACRFS_PCACHE_H
#define ACRFS_PCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/digest.h"

/* Index files above this size are refused on load (-EFBIG). */
#define PCACHE_INDEX_MAX (1024ull << 20)
/* The bound on index and rootfs files together, until pcache_set_index_max. */
#define PCACHE_INDEX_BYTES_DEFAULT (1024ull << 20)

struct pcache;
struct pcache_writer;

/*
 * The default directory: "$XDG_CACHE_HOME/acrfs" when XDG_CACHE_HOME is an
 * absolute path, else "$HOME/.cache/acrfs". Appended to `out`. 0, -ENOENT
 * (neither variable usable) or -ENOMEM.
 */
int pcache_default_dir(struct buf *out);

/*
 * Open (creating as needed, parents 0700) the cache at `dir` (NULL: the
 * default). An existing DIR owned by us with group/other bits is tightened
 * to 0700; one owned by another user, or not a directory, is refused with
 * -EPERM / -ENOTDIR and a log line. `max_blob_bytes` bounds the blob files
 * (0: keep no blob copies; old ones are evicted). Scans DIR/v1/blobs to
 * rebuild the LRU table, evicting at once if it is over the bound.
 * *out = NULL on failure. Blocks (disk).
 */
int pcache_open(struct pcache **out, const char *dir, uint64_t max_blob_bytes);
/* NULL is fine. Writers must have been committed or aborted before; the
 * stores of the *_async functions are waited for. */
void pcache_free(struct pcache *pc);
/* Wait until every store of the *_async functions begun so far is done
 * (their files are on disk, or their failures logged). */
void pcache_flush(struct pcache *pc);
/*
 * Bound the index and rootfs files together to `max` bytes (-o index_max;
 * PCACHE_INDEX_BYTES_DEFAULT until called), evicting the least recently
 * used at once if they are over it. 0: keep none (stores fail with
 * -ENOSPC, old files are evicted).
 */
void pcache_set_index_max(struct pcache *pc, uint64_t max);

/* The cache's root directory. Borrowed until pcache_free. */
const char *pcache_dir(const struct pcache *pc);

/* ---- index files -------------------------------------------------------- */

/*
 * Append the index file stored for `d` to `out` and mark it used. 0,
 * -ENOENT (none),
 * -EFBIG (larger than PCACHE_INDEX_MAX), -EIO, -ENOMEM.
 */
int pcache_index_load(struct pcache *pc, const struct digest *d, struct buf *out);
/* Store (atomically replace) the index file for `d`, evicting least
 * recently used index and rootfs files to stay within the bound. 0, -ENOSPC
 * (the bound is 0), -EFBIG (the file alone is over it) or -errno (logged). */
int pcache_index_store(struct pcache *pc, const struct digest *d, const void *data,
		       size_t len);
/*
 * pcache_index_store on a thread of its own, taking `data` (left empty):
 * the caller does not wait for the disk (the fsync of a 6.5 MB index file
 * took 0.13 s here while a load's blob copy was being written). -ENOSPC or
 * -EFBIG at once when the bound refuses the file, else 0. Until the store
 * is done, loads, stores and removals of that file wait for it, and
 * pcache_free waits for it. A later failure is logged and leaves no file.
 */
int pcache_index_store_async(struct pcache *pc, const struct digest *d, struct buf *data);
/* Remove it (a corrupt one). 0 or -ENOENT. */
int pcache_index_remove(struct pcache *pc, const struct digest *d);

/* The same for rootfs files (image/lindex.h), named by `key`. */
int pcache_rootfs_load(struct pcache *pc, const struct digest *key, struct buf *out);
int pcache_rootfs_store(struct pcache *pc, const struct digest *key, const void *data,
			size_t len);
int pcache_rootfs_store_async(struct pcache *pc, const struct digest *key, struct buf *data);
int pcache_rootfs_remove(struct pcache *pc, const struct digest *key);

/* ---- blob files --------------------------------------------------------- */

/*
 * Start writing the blob file for `d` with suffix `sfx` ("" for the blob
 * itself, else e.g. "tar"; [a-z0-9] only). Bytes are only accounted, and
 * LRU blobs evicted, as they are written. -EFBIG at once if `size_hint` (0:
 * unknown) is larger than the budget; -ENOSPC when the budget is 0.
 * *out = NULL on failure. The writer belongs to one thread.
 */
int pcache_blob_begin(struct pcache *pc, const struct digest *d, const char *sfx,
		      uint64_t size_hint, struct pcache_writer **out);
/*
 * Append bytes, evicting LRU blobs as needed. Bytes are gathered into writes
 * of up to 1 MiB (at most the size hint): accounting, eviction and errors
 * come as a batch is written, at the latest at commit. 0, or -EFBIG once
 * the file would exceed the budget (the temporary file is dropped at once; commit will
 * fail), or a write error. Errors are sticky. Give a size hint when the size
 * is known: a file of unknown size that turns out too large may have evicted
 * other blobs before it was refused.
 */
int pcache_blob_write(struct pcache_writer *w, const void *data, size_t len);
/* fsync + rename into place + enter the LRU table; frees the writer
 * (also on failure, which removes the temporary file). 0 or -errno. */
int pcache_blob_commit(struct pcache_writer *w);
/*
 * pcache_blob_commit on a thread of its own (its fsync took 0.02-0.17 s for
 * 300 MB here): until it is done, pcache_blob_pread, _stat and _remove of
 * the blob wait for it, and pcache_free waits for it. A failure is logged
 * and leaves no file.
 */
void pcache_blob_commit_async(struct pcache_writer *w);
/* Drop the temporary file and the writer. NULL is fine. */
void pcache_blob_abort(struct pcache_writer *w);

/*
 * Read up to `len` bytes at `off` of the blob file (d, sfx) and mark it used.
 * Returns the bytes read (short only at its end), or -ENOENT when there is
 * no such file (never cached, or evicted — the caller falls back to the
 * registry), or -EIO.
 */
ssize_t pcache_blob_pread(struct pcache *pc, const struct digest *d, const char *sfx,
			  void *buf, size_t len, uint64_t off);
/*
 * Remove the blob file (d, sfx) — a copy found damaged — and forget it.
 * 0, or -ENOENT when there was none.
 */
int pcache_blob_remove(struct pcache *pc, const struct digest *d, const char *sfx);
/* Whether the blob file (d, sfx) is present; *size = its size if so. */
int pcache_blob_stat(struct pcache *pc, const struct digest *d, const char *sfx,
		     uint64_t *size);

struct pcache_stats {
	uint64_t blob_bytes;    /* bytes in blob files now */
	uint64_t blob_files;
	uint64_t evictions;     /* files evicted since open */
	uint64_t max_blob_bytes;
	uint64_t index_bytes;	/* index and rootfs files now */
	uint64_t index_files;
	uint64_t index_evictions; /* of them, since open */
	uint64_t max_index_bytes;
};
void pcache_stats(struct pcache *pc, struct pcache_stats *st);

#endif
