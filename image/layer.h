/*
 * layer — one layer blob of an image: its tree, lazily built, and its files'
 * contents.
 *
 * layer_load() is single-flight: the first caller builds the tree, every
 * concurrent caller waits for that result. Building either reads the layer's
 * index file from the persistent cache (pcache; no blob bytes are fetched
 * then) or streams the blob once from its source (or from its local copy
 * when only the index file is gone): digest check, decompression (tar,
 * gzip with a zran index, zstd with a frame table) and tar parsing in one
 * pass, writing a new index file at the end (in the background).
 * A failed load (network, digest mismatch, corrupt data) is remembered for
 * LAYER_RETRY_SEC seconds and reported as -EIO; nothing of the layer is
 * served. A media type acrfs cannot decode gives an empty tree and one log
 * line, never invented content.
 *
 * File contents: layer_pread() for one-off reads, or a layer_reader per open
 * file, which keeps an inflate (or zstd) state and a read-ahead buffer so
 * that sequential reads stream: once a reader reads on sequentially, a
 * helper thread fetches (and checks) the next compressed bytes while it
 * inflates. Compressed bytes come from the blob's local copy in the cache
 * when there is one, else from ranged reads of the source (for readers 1
 * MiB at a time, then read-ahead pieces growing to 4 MiB, never past the
 * file's data; for a random gzip read at most the compressed bytes of one
 * zran span plus 64 KiB).
 *
 * Every byte served is proven against the blob digest: the streaming pass
 * records a SHA-256 of each LAYER_BLOCK block of the blob (kept in the index
 * file), and every read — from a Range request, a server that ignored Range,
 * or a local copy — is widened to whole blocks and checked before any byte
 * of it is used. A mismatch is one log line naming the layer, the block and
 * the source, and -EIO (a ranged read is fetched once more first; a damaged
 * local copy is removed and the blob read by range instead), never a wrong
 * byte. zstd layers' decompressed copies are checked the same way.
 *
 * Thread-safety: every function may be called from any thread, except that a
 * layer_reader belongs to one thread at a time. layer_load and the reads
 * block (network, disk); no lock is held across that I/O.
 */
#ifndef ACRFS_LAYER_H
#define ACRFS_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "image/pcache.h"
#include "image/tree.h"
#include "common/digest.h"

#define LAYER_RETRY_SEC 10 /* a failed load is retried after this long */
#define LAYER_BLOCK (32u << 10) /* reads are verified in blocks of this size */

typedef int (*blob_sink_fn)(void *ctx, const void *data, size_t n);

/*
 * Where blob bytes come from. Production wires these to registry_blob_*
 * (fs/image_reg.h); tests feed local files. Every function may be called from
 * several threads at once and may block.
 */
struct blob_source {
	/*
	 * Pass the whole blob `d` (`size` bytes) through `sink` once and verify
	 * its digest at the end. 0; the sink's error; -EIO on a digest or size
	 * mismatch (the caller then discards everything it built); other -errno.
	 */
	int (*stream)(void *ctx, const struct digest *d, uint64_t size, blob_sink_fn sink,
		      void *sink_ctx);
	/* Up to `len` bytes at `off` (one ranged request). Bytes read, 0 at
	 * the end, or -errno. */
	ssize_t (*pread)(void *ctx, const struct digest *d, uint64_t size, void *buf,
			 size_t len, uint64_t off);
	/* A small blob (at most `max` bytes), verified, appended to `out`.
	 * Used by image for the config. 0 or -errno. */
	int (*get)(void *ctx, const struct digest *d, size_t max, struct buf *out);
	void *ctx;
	/*
	 * Optional (NULL: never asked). After a pread of `d`: 1 if the server
	 * answered it as a range, 0 if it ignored Range (sent the blob from its
	 * start), -1 if not known. Never blocks. A big blob whose ranges work is
	 * loaded by several concurrent preads (image/pfetch) instead of stream.
	 */
	int (*ranges)(void *ctx, const struct digest *d);
};

struct layer;
struct layer_reader;

/*
 * How a big blob (32 MiB or more, on a source that answers ranges) is
 * fetched: AUTO streams it and, if after 16 MiB the stream turns out to be
 * what bounds the load (the decoding thread waits for bytes), fetches the
 * rest by 4 concurrent ranged reads; STREAM never switches, RANGES always
 * does (for tests and benchmarks). Process-wide, thread-safe; AUTO by
 * default.
 */
enum layer_fetch { LAYER_FETCH_AUTO, LAYER_FETCH_STREAM, LAYER_FETCH_RANGES };
void layer_fetch_policy(enum layer_fetch p);

/*
 * *out = a layer (not loaded yet) for blob `d` of `size` bytes and
 * `media_type` (copied), at position `index` of its image (0 = bottom): every
 * node of its tree has attr.layer == index, which tree_merge carries into the
 * rootfs so a rootfs read knows its layer. A layer object belongs to one
 * image; the same blob in another image gets its own object (and shares the
 * index file and local copy through the cache). `src` is copied; its ctx must outlive the layer.
 * `pc` (may be NULL: no index files, no local copies) must outlive it too.
 * `span`: zran span for gzip (0 = ZRAN_SPAN_DEFAULT). Nothing is fetched.
 * 0, -EINVAL, -ENOMEM; *out = NULL on failure.
 */
int layer_new_src(struct layer **out, const struct blob_source *src, const char *media_type,
		  const struct digest *d, uint64_t size, unsigned index, struct pcache *pc,
		  uint32_t span);

/* NULL is fine. No reader may be left. */
void layer_free(struct layer *l);

/* The layer object's own memory (the struct, its media type), without its
 * loaded state (which a budget counts on its own: layer_set_budget). */
size_t layer_memory(const struct layer *l);

/* From now on the layer owns its source's ctx: layer_free calls
 * release(src->ctx). For a standalone layer with a source of its own. */
void layer_own_source(struct layer *l, void (*release)(void *ctx));

/*
 * Build the tree if not yet built (single-flight; see above). 0, or -EIO
 * (failed now or within the last LAYER_RETRY_SEC seconds), -ENOMEM. Blocks.
 */
int layer_load(struct layer *l);

/*
 * The layer's tree after a successful layer_load, else NULL. Borrowed until
 * layer_free, or, for a layer under a memory budget (layer_set_budget), only
 * while the caller holds a pin (layer_pin) or stays inside the read side it
 * was inside when it asked (common/reclaim.h): an evicted tree is freed once
 * such readers left. Never modify it (it is shared, read lock-free by every
 * thread). Node attrs carry the data location used by layer_pread.
 */
struct tree *layer_tree(const struct layer *l);

/*
 * layer_load, then the tree (as layer_tree), counted as a use of the layer
 * for the budget's LRU. Loads again when the tree was evicted meanwhile.
 * 0 or layer_load's errors. Blocks.
 */
int layer_get_tree(struct layer *l, const struct tree **out);

/*
 * Memory budget (image/budget.h): from now on the layer's loaded state (tree,
 * zran index or frame table, block sums) counts against `b` and may be
 * evicted when it is the least recently used, unless pinned. Only a layer
 * whose index file is in the cache is evicted (its next use rebuilds it
 * from there, with the same node ids, without a blob request); one loaded
 * without a cache directory stays. Call before the first load; `b` must
 * outlive the layer.
 */
struct budget;
void layer_set_budget(struct layer *l, struct budget *b);

/* After the budget evicted the layer's loaded state: fn(ctx), on the evicting
 * thread, no lock held (fn must not block). Set before the first load. */
void layer_set_evict_hook(struct layer *l, void (*fn)(void *ctx), void *ctx);

/* Load if needed and keep the loaded state until layer_unpin (readers and
 * merges do). 0 or layer_load's errors. Blocks. */
int layer_pin(struct layer *l);
void layer_unpin(struct layer *l);

const struct digest *layer_digest(const struct layer *l);
const char *layer_media_type(const struct layer *l); /* borrowed */
uint64_t layer_size(const struct layer *l);          /* compressed (blob) size */
/* DECOMP_* kind, or -ENOTSUP for an unsupported media type. */
int layer_kind(const struct layer *l);
/* Uncompressed size once loaded (0 before the first load, or for an
 * unsupported type); kept after an eviction. */
uint64_t layer_usize(const struct layer *l);

/*
 * Read up to `len` bytes (any size) at `off` of the regular file described
 * by `a` (a node attr of this layer's tree, or of a merged tree whose
 * a->layer is this layer). Holes of sparse files read as zeros. Returns the
 * bytes read (short only at the end of the file), 0 at or past it, -EINVAL
 * if `a` is not a regular file, -EIO (data unavailable or not matching the
 * digest-verified sums; a failed load), -ENOMEM. After an error `buf` may
 * hold a prefix of the right bytes, never a wrong one. The layer is loaded
 * if it is not (again, after an eviction) and pinned while it reads. Blocks;
 * thread-safe.
 */
ssize_t layer_pread(struct layer *l, const struct tree_attr *a, void *buf, size_t len,
		    uint64_t off);

/*
 * A reader for one open file `a` of layer `l` (`l` borrowed, it must outlive
 * the reader; `a` is copied). Pins the layer (loading it again if it was
 * evicted) until layer_reader_free. Keeps decompression state and a 1 MiB
 * compressed buffer (about 2 MiB in all for gzip); a long sequential read
 * adds a read-ahead thread and grows both buffers to 4 MiB. -EINVAL if not
 * a regular file, layer_load's errors, -ENOMEM. Blocks.
 */
int layer_reader_new(struct layer_reader **out, struct layer *l, const struct tree_attr *a);
/* Like layer_pread, continuing the reader's state. One thread at a time. */
ssize_t layer_reader_pread(struct layer_reader *rd, void *buf, size_t len, uint64_t off);
void layer_reader_free(struct layer_reader *rd); /* NULL is fine */

struct layer_stats {
	uint64_t stream_bytes;   /* blob bytes streamed (indexing passes) */
	uint64_t range_bytes;    /* blob bytes fetched by ranged reads */
	uint64_t range_requests; /* ranged reads sent to the source */
	uint64_t local_bytes;    /* bytes read from local copies in the cache */
	uint64_t loads_blob;     /* trees built by streaming the blob */
	uint64_t loads_index;    /* trees built from an index file */
	uint64_t loads_local;    /* of loads_blob, from the blob's local copy */
	uint64_t index_rejected; /* index files found corrupt and rebuilt */
	uint64_t evictions;      /* loaded states evicted under the budget */
	uint64_t blocks_rejected; /* blocks read that did not match their sums */
	/* CPU of the last load from the blob, µs: the thread receiving and
	 * hashing it, and the one decompressing and parsing it (the same
	 * thread, counted in the first, for blobs under 4 MiB). */
	uint64_t load_cpu_recv_us, load_cpu_decode_us;
};
void layer_stats(const struct layer *l, struct layer_stats *st);

#endif
