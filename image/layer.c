/*
 * layer — one layer blob. Design note.
 *
 * State machine, guarded by l->lock (a leaf lock; never held across I/O):
 * NEW → LOADING (one thread builds, others wait on l->cond) → LOADED, or →
 * FAILED with a deadline; a layer_load after the deadline tries again. The
 * fields published at LOADED (tree, zidx, frames, usize, block sums) are
 * immutable from then on and read without the lock; the release/acquire
 * pair of the mutex orders their writes before any reader sees LOADED.
 *
 * Eviction (under a memory budget, image/budget.h): LOADED → NEW again, the
 * published state handed to common/reclaim (freed once every request that
 * might still look at the tree has left), only when no pin is held and an
 * index file holds what the load built. Pins (l->pins) are what readers and
 * merges take so that zidx, frames and the block sums stay while they read;
 * a FUSE request that only walks the tree is covered by the reclaim read
 * side instead. A load from the index file feeds tree_add the same entries
 * in the same order as the load from the blob did, so the tree gets the same
 * node ids, which the FUSE layer's inode keys carry.
 *
 * What is cached where:
 *   - the index file (pcache, keyed by the blob digest): everything needed to
 *     rebuild the tree and to read file data without the blob — the tar
 *     entries as the parser reported them, the zran index (gzip) or the
 *     frame table (zstd), sizes, the block sums (below) — plus a SHA-256
 *     over all of it. It is written only after the blob's digest was
 *     verified. Index files are bounded by index_max (LRU); a layer whose
 *     index file is gone is built again from the blob's local copy when
 *     there is one (stream_local: read back through the same sink, its
 *     digest checked as it is read), else from the registry.
 *   - the blob's local copy (pcache blob files, bounded by cache_max, LRU):
 *     gzip and tar layers keep the compressed blob as streamed ("<hex>");
 *     zstd layers keep the decompressed tar instead ("<hex>.tar"), because a
 *     zstd layer is usually a single frame with no random access at all: the
 *     copy turns every read into a plain pread. If a copy does not fit the
 *     budget or is evicted later, reads fall back to ranged reads of the
 *     source: gzip through the zran index (one span at most), zstd from the
 *     start of the frame holding the offset (for a single-frame layer that is
 *     the start of the blob: a reader streams it once, but random reads
 *     re-decode — documented cost).
 *   - memory: the tree, the zran index (windows deflated) or frame table,
 *     the block sums (1 MiB per GB of blob). A load holds the serialised
 *     entries (~40 bytes + path per entry) until the index file is written;
 *     a reader holds ~2 MiB at most.
 *
 * Integrity: every byte served is proven against the blob digest.
 *   - The streaming pass is the only one the registry's digest covers, so it
 *     also records SHA-256 sums of fixed LAYER_BLOCK blocks of the blob
 *     (image/blockhash, fed by the stream sink with exactly the bytes the
 *     digest hashes; one place, so a later pipeline can move it to the
 *     receiving thread). One mechanism for every layer type: the blocks are
 *     of the *compressed* blob, the bytes any read fetches — a zran span, a
 *     range of a tar, a zstd frame from its start — and hashing compressed
 *     bytes costs a third of hashing their output.
 *   - Every fill of struct fetch is widened to whole blocks and each block
 *     checked before any byte of it reaches inflate, zstd or the caller,
 *     whatever the bytes came from: a 206, a 200 that ignored Range (the
 *     registry skips to the offset; the check does not care how), a short
 *     body completed by further requests, or the local copy.
 *   - A ranged answer that does not match is fetched once more (a transient
 *     fault — a proxy, a storage node — costs one request), then the read
 *     fails with -EIO; each mismatch is one log line naming layer, block and
 *     source. Transport errors are not retried here: registry_blob_pread
 *     already resumes them.
 *   - A local copy that does not match is removed (it would fail every
 *     later read) and the read goes on by range: right bytes, one log line.
 *   - zstd's decompressed copy is uncompressed data the digest never
 *     covered: its blocks are hashed while it is written during the verified
 *     pass (a second blockhash on the decompressed stream, only while the copy
 *     is being kept) and checked on every read like the blob's; a bad copy
 *     is dropped and the layer decoded from the blob. That hashing is ~3× the
 *     bytes of the compressed sums (measured below); the alternatives were
 *     worse — keeping the compressed blob instead makes every random read of
 *     a single-frame layer decode from its start, and nothing cheaper than a
 *     cryptographic sum can stand for the digest.
 *   - zran's CRC-32 check blocks stay: they cost one CRC pass over output
 *     already inflated and catch an inflate or index bug, which the sums of
 *     the input cannot.
 *   - The index file: checksum, magic, version, kind, digest and sizes are
 *     checked before use (image/lindex.c); anything wrong → log, remove,
 *     rebuild from the blob. An index file of version 1 (no sums) is rebuilt.
 *
 * Block size: 32 KiB. What it trades (per GB of blob):
 *     block    sums in the index   4 KiB tar read fetches   gzip random read adds
 *     16 KiB   2 MiB               16-32 KiB                < 32 KiB
 *     32 KiB   1 MiB               32-64 KiB                < 64 KiB
 *     64 KiB   512 KiB             64-128 KiB               < 128 KiB
 *     256 KiB  128 KiB             256-512 KiB              < 512 KiB
 * Hashing speed does not depend on it above 16 KiB (1.56 GB/s at 16 KiB,
 * 1.61 at 64 KiB and 1 MiB, digest_of_buf per block, SHA-NI). 32 KiB keeps
 * the documented bound of a 4 KiB random gzip read — the compressed bytes of
 * one span plus 64 KiB (the widening adds less than one block at each end)
 * — and its sums (1 MiB per GB) are small next to the zran windows (~4 MiB
 * per GB of output) and the tar entries.
 *
 * Cold-path cost: one more SHA-256 pass over the compressed bytes (and, for
 * a zstd layer whose copy is kept, over the decompressed ones). The block
 * sums of the integrity work were measured first on a worker of their own
 * (bench/mkcontent.py's image, 456 MB of gzip: CPU 7.13 s → 7.83 s).
 *
 * Two cores on one layer (the pipeline). A blob of PIPE_MIN bytes or more
 * is loaded by two threads: the thread calling layer_load receives it (the
 * source's stream: HTTP, the blob digest), hashes its blocks and writes the
 * local copy; it hands the bytes through a bpipe (PIPE_SLOTS × PIPE_SLOT,
 * 8 MiB) to a decoding thread that inflates, parses the tar and builds the
 * tree and the zran index. Neither holds a lock while it works; the bpipe's
 * backpressure bounds the memory; the digest verdict, known when the stream
 * returns, still decides whether anything built is kept (the decoding
 * thread is stopped and its work dropped on a mismatch). Measured with
 * tests/tools/acrfs-image listing rootfs of a one-layer image (320 MB gzip
 * of /usr/lib/x86_64-linux-gnu, 1.08 GB of tar) from a loopback registry
 * into an empty cache, CPU seconds on the shared 2-core machine: before, all
 * on one thread (zlib, block sums on a worker) 5.7-6.0 s in all; now
 * receiving 1.1-1.2 s, decoding 1.9-2.1 s (ISA-L) — the decoding thread is
 * the critical path, ~1.15× `igzip -d` of the layer (1.6-1.8 s).
 */
#include "image/layer.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "common/log.h"
#include "common/memsize.h"
#include "common/reclaim.h"
#include "image/budget.h"
#include "image/blockhash.h"
#include "image/bpipe.h"
#include "image/decomp.h"
#include "image/lindex.h"
#include "image/pfetch.h"
#include "image/zran.h"

#define READER_BUF (1u << 20)     /* a reader's first fills */
#define AHEAD_MAX (4u << 20)      /* read-ahead fills grow to this */
#define AHEAD_KEEP (256u << 10)   /* a reader keeps this much before a new fill */
#define RANDOM_BUF (256u << 10)   /* a random gzip read's fetch unit */
#define ZSR_IN (64u << 10)
#ifndef PIPE_MIN
#define PIPE_MIN (4u << 20) /* blobs from this size decode on a second thread */
#endif
#define LOCAL_CHUNK (1u << 20) /* bytes read at a time from a blob's local copy */
#define PIPE_SLOT (1u << 20)
#define PIPE_SLOTS 8
#ifndef PFETCH_MIN
#define PFETCH_MIN (32u << 20) /* a stream of this size may switch to ranges */
#endif
#define PFETCH_CONNS 4
#define PFETCH_CHUNK (8u << 20)
#define SWITCH_AT (16u << 20)  /* stream this much before deciding */

/* LAYER_FETCH_* (atomic; tests and benchmarks change it). */
static int fetch_policy = LAYER_FETCH_AUTO;
/* Blobs being fetched by this process now (atomic). */
static int fetches_active;

void layer_fetch_policy(enum layer_fetch p)
{
	__atomic_store_n(&fetch_policy, (int)p, __ATOMIC_RELAXED);
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum lstate { L_NEW, L_LOADING, L_LOADED, L_FAILED };

struct layer {
	struct blob_source src;
	void (*src_release)(void *ctx); /* set: we own src.ctx */
	char *media_type;
	struct digest digest;
	uint64_t size;
	struct pcache *pc;
	uint32_t span;
	unsigned index; /* position in the image: the tree's attr.layer */
	int kind;       /* DECOMP_* or -ENOTSUP */

	/* Lock order: l->lock is a leaf (pcache's lock is never taken under it). */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* LOADING → LOADED / FAILED */
	enum lstate state;
	time_t fail_until;   /* FAILED: monotonic seconds */

	/* Published at LOADED, immutable afterwards. */
	struct tree *tree;
	struct zran_index *zidx;
	struct lindex_frame *frames;
	size_t nframes;
	uint64_t usize;
	struct blocksums cblocks; /* the blob's block sums */
	struct blocksums ublocks; /* zstd: the decompressed copy's (n == 0: none) */

	struct budget_unit bu; /* its bytes: what LOADED holds */
	unsigned pins;         /* l->lock: readers and merges of the loaded state */
	bool evictable;        /* l->lock; written by the loader before LOADED */
	void (*evicted)(void *ctx); /* layer_set_evict_hook; set before use */
	void *evicted_ctx;

	/* Counters (atomic). */
	uint64_t st_stream, st_range, st_reqs, st_local, st_lblob, st_lidx, st_llocal, st_rej,
		st_bad;
	uint64_t st_evict;
	uint64_t st_cpu_recv, st_cpu_dec; /* µs of CPU of the last load from the blob */
};

static void count(uint64_t *c, uint64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

static time_t now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static const char *short_digest(const struct layer *l, char out[DIGEST_STR_SIZE])
{
	return digest_format(&l->digest, out);
}

/* ---- new / free / accessors --------------------------------------------- */

int layer_new_src(struct layer **out, const struct blob_source *src, const char *media_type,
		  const struct digest *d, uint64_t size, unsigned index, struct pcache *pc,
		  uint32_t span)
{
	struct layer *l;

	*out = NULL;
	if (!src || !src->stream || !src->pread || !d)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->media_type = strdup(media_type ? media_type : "");
	if (!l->media_type) {
		free(l);
		return -ENOMEM;
	}
	l->src = *src;
	l->digest = *d;
	l->size = size;
	l->pc = pc;
	l->span = span;
	l->index = index;
	l->kind = decomp_kind_from_media_type(media_type);
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	*out = l;
	return 0;
}

void layer_free(struct layer *l)
{
	if (!l)
		return;
	budget_uncharge(&l->bu);
	tree_free(l->tree);
	zran_index_free(l->zidx);
	free(l->frames);
	blocksums_release(&l->cblocks);
	blocksums_release(&l->ublocks);
	free(l->media_type);
	if (l->src_release)
		l->src_release(l->src.ctx);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

size_t layer_memory(const struct layer *l)
{
	return mem_size(l) + mem_size(l->media_type);
}

void layer_own_source(struct layer *l, void (*release)(void *ctx))
{
	l->src_release = release;
}

/* What an eviction took from a layer, freed by the reclaimer. */
struct retired {
	struct reclaim_node rn;
	struct lindex_content c;
};

static void retired_free(struct reclaim_node *rn)
{
	struct retired *r = (struct retired *)rn; /* rn is the first member */

	lindex_content_release(&r->c);
	free(r);
}

/* The budget's evict function (image/budget.h). */
static int layer_evict(struct budget_unit *u)
{
	struct layer *l = (struct layer *)((char *)u - offsetof(struct layer, bu));
	struct retired *r = calloc(1, sizeof(*r));

	if (!r)
		return -EBUSY;
	pthread_mutex_lock(&l->lock);
	if (l->state != L_LOADED) {
		pthread_mutex_unlock(&l->lock);
		free(r);
		return 0; /* nothing held (evicted meanwhile, or loading again) */
	}
	if (l->pins || !l->evictable) {
		pthread_mutex_unlock(&l->lock);
		free(r);
		return -EBUSY;
	}
	r->c.tree = l->tree;
	r->c.zidx = l->zidx;
	r->c.frames = l->frames;
	r->c.nframes = l->nframes;
	r->c.cblocks = l->cblocks;
	r->c.ublocks = l->ublocks;
	l->tree = NULL;
	l->zidx = NULL;
	l->frames = NULL;
	l->nframes = 0;
	memset(&l->cblocks, 0, sizeof(l->cblocks));
	memset(&l->ublocks, 0, sizeof(l->ublocks));
	l->state = L_NEW; /* usize stays: the same on every load */
	pthread_mutex_unlock(&l->lock);
	count(&l->st_evict, 1);
	reclaim_retire(&r->rn, retired_free);
	if (l->evicted)
		l->evicted(l->evicted_ctx);
	return 0;
}

void layer_set_evict_hook(struct layer *l, void (*fn)(void *ctx), void *ctx)
{
	l->evicted = fn;
	l->evicted_ctx = ctx;
}

/* Bytes the loaded state holds (l->lock held, LOADED). */
static uint64_t loaded_bytes(const struct layer *l)
{
	return tree_memory(l->tree) + (l->zidx ? zran_index_memsize(l->zidx) : 0) +
	       l->nframes * sizeof(*l->frames) + (l->cblocks.n + l->ublocks.n) * DIGEST_RAW_LEN +
	       sizeof(*l);
}

void layer_set_budget(struct layer *l, struct budget *b)
{
	budget_unit_init(&l->bu, b, layer_evict);
}

/* Load `l` (again, if evicted since) and, under its lock while LOADED, take
 * its tree (`out`, may be NULL) and a pin (`pin`); a use for the LRU. */
static int take_loaded(struct layer *l, bool pin, const struct tree **out)
{
	int rc, tries;

	for (tries = 0; tries < 100; tries++) {
		bool loaded;

		rc = layer_load(l);
		if (rc)
			return rc;
		pthread_mutex_lock(&l->lock);
		loaded = l->state == L_LOADED;
		if (loaded) {
			l->pins += pin;
			if (out)
				*out = l->tree;
		}
		pthread_mutex_unlock(&l->lock);
		if (loaded) {
			budget_touch(&l->bu);
			return 0;
		}
	}
	return -EAGAIN; /* evicted 100 times over between load and look: not seen */
}

int layer_get_tree(struct layer *l, const struct tree **out)
{
	*out = NULL;
	return take_loaded(l, false, out);
}

int layer_pin(struct layer *l)
{
	return take_loaded(l, true, NULL);
}

void layer_unpin(struct layer *l)
{
	pthread_mutex_lock(&l->lock);
	l->pins--;
	pthread_mutex_unlock(&l->lock);
}

struct tree *layer_tree(const struct layer *l)
{
	struct layer *m = (struct layer *)l;
	struct tree *t;

	pthread_mutex_lock(&m->lock);
	t = m->state == L_LOADED ? m->tree : NULL;
	pthread_mutex_unlock(&m->lock);
	return t;
}

const struct digest *layer_digest(const struct layer *l)
{
	return &l->digest;
}

const char *layer_media_type(const struct layer *l)
{
	return l->media_type;
}

uint64_t layer_size(const struct layer *l)
{
	return l->size;
}

int layer_kind(const struct layer *l)
{
	return l->kind;
}

uint64_t layer_usize(const struct layer *l)
{
	struct layer *m = (struct layer *)l;
	uint64_t n;

	pthread_mutex_lock(&m->lock);
	n = m->usize;
	pthread_mutex_unlock(&m->lock);
	return n;
}

void layer_stats(const struct layer *l, struct layer_stats *st)
{
	st->stream_bytes = __atomic_load_n(&l->st_stream, __ATOMIC_RELAXED);
	st->range_bytes = __atomic_load_n(&l->st_range, __ATOMIC_RELAXED);
	st->range_requests = __atomic_load_n(&l->st_reqs, __ATOMIC_RELAXED);
	st->local_bytes = __atomic_load_n(&l->st_local, __ATOMIC_RELAXED);
	st->loads_blob = __atomic_load_n(&l->st_lblob, __ATOMIC_RELAXED);
	st->loads_index = __atomic_load_n(&l->st_lidx, __ATOMIC_RELAXED);
	st->loads_local = __atomic_load_n(&l->st_llocal, __ATOMIC_RELAXED);
	st->index_rejected = __atomic_load_n(&l->st_rej, __ATOMIC_RELAXED);
	st->blocks_rejected = __atomic_load_n(&l->st_bad, __ATOMIC_RELAXED);
	st->evictions = __atomic_load_n(&l->st_evict, __ATOMIC_RELAXED);
	st->load_cpu_recv_us = __atomic_load_n(&l->st_cpu_recv, __ATOMIC_RELAXED);
	st->load_cpu_decode_us = __atomic_load_n(&l->st_cpu_dec, __ATOMIC_RELAXED);
}

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- building from the blob --------------------------------------------- */

struct build {
	struct layer *l;
	struct decomp *dec;
	struct tar_parser *tp;
	struct tree *tree;
	struct buf ents;
	uint64_t nents;
	struct pcache_writer *cw; /* compressed copy (gzip, tar) */
	struct pcache_writer *uw; /* decompressed copy (zstd) */
	struct blockhash *cbh;    /* sums of the blob's blocks */
	struct blockhash *ubh;    /* sums of the decompressed copy's, while uw lives */
	struct bpipe *pipe;       /* blob bytes, receiving thread → decoding thread */
	/* Whether the stream should become parallel ranges (see the note). */
	bool deciding;
	struct digest_hasher *sha; /* the blob's SHA-256 so far, while deciding */
	uint64_t seen;             /* bytes through the sink */
	double t_first, t_blocked; /* s: the first byte came; spent in bpipe_write */
	int rq_fd;                 /* the receiving thread's schedstat, while deciding */
	double rq_first;           /* its runq_wait() when the first byte came */
	double rq_blocked;         /* of which inside bpipe_write (in t_blocked too) */
	/* Written by the decoding thread, read by the receiving one (atomics). */
	uint64_t dec_bytes;  /* blob bytes decoded so far */
	uint64_t dec_cpu_ns; /* the decoding thread's CPU for them */
	uint64_t switch_at;        /* where the stream was stopped, or 0 */
	bool local;                /* the blob comes from its local copy */
};

static int build_entry_cb(void *ctx, const struct tar_entry *e)
{
	struct build *b = ctx;
	int rc;

	if (b->l->pc) {
		rc = lindex_entry_encode(&b->ents, e);
		if (rc)
			return rc;
		b->nents++;
	}
	return tree_add(b->tree, e, b->l->index);
}

/* The decompressed copy cannot be kept after all: stop writing and hashing it. */
static void build_drop_ucopy(struct build *b)
{
	pcache_blob_abort(b->uw);
	b->uw = NULL;
	blockhash_free(b->ubh);
	b->ubh = NULL;
}

static int build_tar_sink(void *ctx, const void *data, size_t n)
{
	struct build *b = ctx;

	if (b->uw && (pcache_blob_write(b->uw, data, n) || blockhash_feed(b->ubh, data, n)))
		build_drop_ucopy(b);
	return tar_parser_feed(b->tp, data, n);
}

/* The decoding thread: decompress, parse, index (bpipe's consumer). */
static int build_decode(void *ctx, const void *data, size_t n)
{
	struct build *b = ctx;
	double t = thread_cpu();
	int rc = decomp_feed(b->dec, data, n, build_tar_sink, b);

	__atomic_add_fetch(&b->dec_cpu_ns, (uint64_t)((thread_cpu() - t) * 1e9), __ATOMIC_RELAXED);
	__atomic_add_fetch(&b->dec_bytes, n, __ATOMIC_RELAXED);
	return rc;
}

/*
 * Seconds a thread has waited for a core, from its /proc schedstat file
 * ("<run ns> <wait ns> <slices>") open as `fd`; 0 when there is none.
 */
static double runq_wait(int fd)
{
	char t[96], *e;
	unsigned long long wait;
	ssize_t n;

	if (fd < 0 || (n = pread(fd, t, sizeof(t) - 1, 0)) <= 0)
		return 0;
	t[n] = '\0';
	(void)strtoull(t, &e, 10);
	wait = strtoull(e, NULL, 10);
	return (double)wait / 1e9;
}

/*
 * Whether the stream, not decoding, bounds the load: the stream's own rate
 * (its bytes over the time the receiving thread was neither waiting for
 * the decoding one nor for a core) is below the rate the decoding thread
 * decodes at per CPU second. CPU, not wall time, on the decoding side: on
 * a busy machine the decoding thread may wait for a core, which ranges
 * would not change. Only a load alone: several loads are several streams
 * already, and compete for the cores, which makes each stream look slow
 * (measured: 3 layers from a loopback registry took 1.6-1.9x the wall time
 * and 1.4x the CPU when switched).
 */
static bool stream_bounds(struct build *b)
{
	double rq = runq_wait(b->rq_fd) - b->rq_first - b->rq_blocked;
	double busy = mono_now() - b->t_first - b->t_blocked - rq;
	uint64_t db = __atomic_load_n(&b->dec_bytes, __ATOMIC_RELAXED);
	uint64_t dns = __atomic_load_n(&b->dec_cpu_ns, __ATOMIC_RELAXED);

	if (__atomic_load_n(&fetches_active, __ATOMIC_RELAXED) > 1)
		return false;
	if (db == 0 || dns == 0 || busy <= 0)
		return false; /* decoding has not shown its rate: keep the stream */
	return (double)b->seen / busy < (double)db / ((double)dns / 1e9);
}

/*
 * While deciding: hash what came (pfetch would go on from it), and time how
 * long the receiving thread waits for the decoding one. After SWITCH_AT
 * bytes, if the stream is what bounds the load (stream_bounds), stop it
 * there (-ECANCELED) and let fetch_blob fetch the rest by concurrent
 * ranges.
 */
static int decide_write(struct build *b, const void *data, size_t n)
{
	enum layer_fetch p = (enum layer_fetch)__atomic_load_n(&fetch_policy, __ATOMIC_RELAXED);
	double t, rq;
	int rc = digest_hasher_update(b->sha, data, n);

	if (rc)
		return rc;
	if (b->seen == 0) {
		b->t_first = mono_now();
		b->rq_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
		b->rq_first = runq_wait(b->rq_fd);
	}
	t = mono_now();
	rq = runq_wait(b->rq_fd);
	rc = bpipe_write(b->pipe, data, n);
	b->rq_blocked += runq_wait(b->rq_fd) - rq;
	b->t_blocked += mono_now() - t;
	b->seen += n;
	if (rc || b->seen < SWITCH_AT)
		return rc;
	b->deciding = false;
	if (p == LAYER_FETCH_AUTO && stream_bounds(b))
		p = LAYER_FETCH_RANGES;
	if (b->rq_fd >= 0)
		close(b->rq_fd);
	b->rq_fd = -1;
	if (p == LAYER_FETCH_RANGES) {
		b->switch_at = b->seen;
		return -ECANCELED;
	}
	digest_hasher_free(b->sha); /* the stream verifies the digest */
	b->sha = NULL;
	return 0;
}

/* Every blob byte, once, in order: the stream sink, on the receiving thread. */
static int build_blob_sink(void *ctx, const void *data, size_t n)
{
	struct build *b = ctx;
	int rc;

	count(&b->l->st_stream, n);
	rc = blockhash_feed(b->cbh, data, n);
	if (rc)
		return rc;
	if (b->cw && pcache_blob_write(b->cw, data, n)) {
		pcache_blob_abort(b->cw);
		b->cw = NULL;
	}
	if (b->deciding)
		return decide_write(b, data, n);
	b->seen += n;
	return bpipe_write(b->pipe, data, n);
}

/*
 * Whether the stream of a big blob may switch to ranges: the policy allows
 * it and one ranged read (of its first byte: cheap even where Range is
 * ignored) came back as a range. Then the sink starts deciding.
 */
static int may_switch(struct build *b)
{
	struct layer *l = b->l;
	unsigned char probe;

	if (l->size < PFETCH_MIN || !l->src.ranges ||
	    __atomic_load_n(&fetch_policy, __ATOMIC_RELAXED) == LAYER_FETCH_STREAM)
		return 0;
	if (l->src.pread(l->src.ctx, &l->digest, l->size, &probe, 1, 0) != 1 ||
	    l->src.ranges(l->src.ctx, &l->digest) != 1)
		return 0;
	b->deciding = true;
	return digest_hasher_new(&b->sha);
}

/*
 * The blob from its local copy, through the same sink as a download, its
 * digest checked as it is read (-EBADMSG at the end when it does not
 * match; the build is then dropped, nothing of it served). -ENOENT or -EIO
 * when the copy goes (evicted) or is short.
 */
static int stream_local(struct build *b)
{
	struct layer *l = b->l;
	struct digest_hasher *h = NULL;
	char *buf = malloc(LOCAL_CHUNK);
	uint64_t off = 0;
	int rc = buf ? digest_hasher_new(&h) : -ENOMEM;

	while (!rc && off < l->size) {
		size_t want = l->size - off < LOCAL_CHUNK ? (size_t)(l->size - off) : LOCAL_CHUNK;
		ssize_t n = pcache_blob_pread(l->pc, &l->digest, "", buf, want, off);

		if (n < 0)
			rc = (int)n;
		else if ((size_t)n != want)
			rc = -EIO;
		if (rc)
			break;
		count(&l->st_local, want);
		rc = digest_hasher_update(h, buf, want);
		if (!rc)
			rc = build_blob_sink(b, buf, want);
		off += want;
	}
	if (!rc)
		rc = digest_hasher_final(h, &l->digest, NULL);
	digest_hasher_free(h);
	free(buf);
	return rc;
}

/* Stream the blob (b->local: from its local copy); when the sink stopped it
 * to switch, the rest by ranges. */
static int fetch_blob(struct build *b)
{
	struct layer *l = b->l;
	char ds[DIGEST_STR_SIZE];
	int rc;

	if (b->local)
		return stream_local(b);
	rc = may_switch(b);

	if (!rc)
		rc = l->src.stream(l->src.ctx, &l->digest, l->size, build_blob_sink, b);
	if (rc != -ECANCELED || !b->switch_at)
		return rc;
	log_info("layer %s: decoding waits for the stream; the last %llu bytes by %u "
		 "concurrent ranges",
		 short_digest(l, ds), (unsigned long long)(l->size - b->switch_at),
		 PFETCH_CONNS);
	rc = pfetch_stream(&l->src, &l->digest, l->size, b->switch_at, b->sha, PFETCH_CONNS,
			   PFETCH_CHUNK, build_blob_sink, b);
	return rc == -ENOTSUP ? -EIO : rc;
}

/* Recover the frame starts from decomp's table by bisection (its API finds
 * the frame of an offset; it does not enumerate). O(frames · log usize). */
static int frames_collect(const struct decomp_frames *f, uint64_t a, uint64_t fa,
			  uint64_t b, uint64_t fb, struct lindex_frame **v, size_t *n, size_t *cap)
{
	uint64_t c, fm, mid;
	int rc;

	while (fa != fb) {
		if (b - a == 1) {
			/* b starts a frame */
			if (*n == *cap) {
				size_t nc = *cap ? 2 * *cap : 16;
				struct lindex_frame *nv = realloc(*v, nc * sizeof(*nv));

				if (!nv)
					return -ENOMEM;
				*v = nv;
				*cap = nc;
			}
			if (decomp_frames_find(f, b, &c, &fm))
				return -EIO;
			(*v)[*n].coff = c;
			(*v)[*n].uoff = fm;
			(*n)++;
			return 0;
		}
		mid = a + (b - a) / 2;
		if (decomp_frames_find(f, mid, &c, &fm))
			return -EIO;
		rc = frames_collect(f, a, fa, mid, fm, v, n, cap);
		if (rc)
			return rc;
		a = mid;
		fa = fm;
	}
	return 0;
}

static int frames_from_decomp(struct layer *l, struct decomp *dec, struct lindex_content *o)
{
	struct decomp_frames *f = NULL;
	uint64_t c, u0, ulast;
	size_t cap = 0;
	int rc = decomp_take_frames(dec, &f);

	if (rc)
		return rc;
	o->usize = decomp_frames_usize(f);
	if (o->usize == 0) {
		rc = 0; /* an empty layer: nothing to read, no table */
		goto out;
	}
	cap = 16;
	o->frames = malloc(cap * sizeof(*o->frames));
	if (!o->frames) {
		rc = -ENOMEM;
		goto out;
	}
	rc = decomp_frames_find(f, 0, &c, &u0);
	if (rc)
		goto out;
	o->frames[0].coff = c;
	o->frames[0].uoff = 0;
	o->nframes = 1;
	rc = decomp_frames_find(f, o->usize - 1, &c, &ulast);
	if (!rc)
		rc = frames_collect(f, 0, u0, o->usize - 1, ulast, &o->frames, &o->nframes,
				    &cap);
out:
	(void)l;
	decomp_frames_free(f);
	return rc;
}

/* Build the layer's tree from its blob: downloaded, or (local) read from
 * its local copy. */
static int build_layer(struct layer *l, struct lindex_content *o, bool *indexed, bool local)
{
	struct build b;
	char ds[DIGEST_STR_SIZE];
	struct buf idx = BUF_INIT;
	bool big = l->size >= PIPE_MIN;
	double cpu0 = thread_cpu(), cpu_recv;
	int rc;

	memset(&b, 0, sizeof(b));
	b.rq_fd = -1;
	memset(o, 0, sizeof(*o));
	b.l = l;
	b.local = local;
	rc = decomp_new(&b.dec, (enum decomp_kind)l->kind, l->span);
	if (!rc)
		rc = tar_parser_new(&b.tp, build_entry_cb, &b);
	if (!rc)
		rc = tree_new(&b.tree);
	if (!rc)
		rc = blockhash_new(&b.cbh, LAYER_BLOCK, false);
	if (!rc)
		rc = bpipe_new(&b.pipe, big ? PIPE_SLOT : 64u << 10, PIPE_SLOTS, big, build_decode,
			       &b);
	if (rc)
		goto out;
	if (l->pc) {
		if (l->kind == DECOMP_ZSTD) {
			(void)pcache_blob_begin(l->pc, &l->digest, "tar", 0, &b.uw);
			if (b.uw && blockhash_new(&b.ubh, LAYER_BLOCK, big))
				build_drop_ucopy(&b);
		} else if (!local) {
			(void)pcache_blob_begin(l->pc, &l->digest, "", l->size, &b.cw);
		}
	}
	__atomic_add_fetch(&fetches_active, 1, __ATOMIC_RELAXED);
	rc = fetch_blob(&b);
	__atomic_sub_fetch(&fetches_active, 1, __ATOMIC_RELAXED);
	if (!rc)
		rc = bpipe_close(b.pipe); /* the decoding thread is done */
	cpu_recv = thread_cpu() - cpu0;
	if (rc) {
		log_error("layer %s: streaming the blob failed: %s", short_digest(l, ds),
			  strerror(-rc));
		rc = -EIO;
		goto out;
	}
	__atomic_store_n(&l->st_cpu_recv, (uint64_t)(cpu_recv * 1e6), __ATOMIC_RELAXED);
	__atomic_store_n(&l->st_cpu_dec, (uint64_t)(bpipe_worker_cpu(b.pipe) * 1e6),
			 __ATOMIC_RELAXED);
	if (big)
		log_info("layer %s: %llu bytes streamed; CPU: receiving thread %.2f s, decoding "
			 "thread %.2f s",
			 short_digest(l, ds), (unsigned long long)l->size, cpu_recv,
			 bpipe_worker_cpu(b.pipe));
	rc = decomp_finish(b.dec, &o->zidx);
	if (!rc)
		rc = tar_parser_finish(b.tp);
	if (rc) {
		log_error("layer %s (%s): not a valid %s layer: %s", short_digest(l, ds),
			  l->media_type, decomp_kind_name((enum decomp_kind)l->kind),
			  strerror(-rc));
		rc = -EIO;
		goto out;
	}
	if (l->kind == DECOMP_ZSTD)
		rc = frames_from_decomp(l, b.dec, o);
	else
		o->usize = decomp_usize(b.dec);
	if (!rc)
		rc = blockhash_finish(b.cbh, &o->cblocks);
	if (rc)
		goto out;
	if (b.uw && (o->usize == 0 || blockhash_finish(b.ubh, &o->ublocks)))
		build_drop_ucopy(&b);
	o->tree = b.tree;
	b.tree = NULL;
	/* The digest is verified: the copies, the sums and the index may be kept.
	 * The blob copy's commit and the index file's store wait for the disk
	 * (fsync: 0.02-0.17 s and 0.02-0.14 s here while the copies of a
	 * 3-layer image were written): both are done in the background and the
	 * tree is served at once. The index does not depend on the blob copy
	 * (it does on the zstd copy's, committed here). */
	if (b.cw) {
		pcache_blob_commit_async(b.cw);
		b.cw = NULL;
	}
	if (b.uw && pcache_blob_commit(b.uw)) {
		log_warn("layer %s: could not keep a local copy", short_digest(l, ds));
		blocksums_release(&o->ublocks);
	}
	b.uw = NULL;
	if (l->pc) {
		struct lindex_key k = { l->kind, l->digest, l->size, l->index };

		rc = lindex_build(&k, o, &b.ents, b.nents, &idx);
		if (!rc)
			rc = pcache_index_store_async(l->pc, &l->digest, &idx);
		if (rc && rc != -ENOSPC) /* ENOSPC: -o index_max=0 */
			log_warn("layer %s: index file not written: %s", short_digest(l, ds),
				 strerror(-rc));
		*indexed = rc == 0;
		rc = 0;
	}
out:
	if (rc)
		lindex_content_release(o);
	bpipe_free(b.pipe); /* first: its worker may still be decoding */
	digest_hasher_free(b.sha);
	if (b.rq_fd >= 0)
		close(b.rq_fd);
	pcache_blob_abort(b.cw);
	pcache_blob_abort(b.uw);
	blockhash_free(b.cbh);
	blockhash_free(b.ubh);
	tree_free(b.tree);
	tar_parser_free(b.tp);
	decomp_free(b.dec);
	buf_release(&b.ents);
	buf_release(&idx);
	return rc;
}

static int load_from_index(struct layer *l, struct lindex_content *o)
{
	struct buf file = BUF_INIT;
	char ds[DIGEST_STR_SIZE];
	const char *why = "unreadable";
	struct lindex_key k = { l->kind, l->digest, l->size, l->index };
	int rc;

	rc = pcache_index_load(l->pc, &l->digest, &file);
	if (rc == -ENOENT)
		goto out;
	if (!rc)
		rc = lindex_parse(&k, file.data, file.len, o, &why);
	if (rc && rc != -ENOMEM) {
		log_warn("layer %s: index file in %s is invalid (%s); rebuilding it from the blob",
			 short_digest(l, ds), pcache_dir(l->pc), why);
		count(&l->st_rej, 1);
		(void)pcache_index_remove(l->pc, &l->digest);
		rc = -ENOENT;
	}
out:
	buf_release(&file);
	return rc;
}

/*
 * Build the layer's tree from its blob. When its index file is gone
 * (index_max evicted it, or it was damaged) but the blob's local copy
 * stays, the copy is read instead of the registry; a copy that does not
 * match the digest is removed and the blob downloaded. (A zstd layer keeps
 * a copy of its decompressed tar, not of its blob: it is downloaded.)
 */
static int load_from_blob(struct layer *l, struct lindex_content *o, bool *indexed)
{
	char ds[DIGEST_STR_SIZE];
	uint64_t size;
	int rc;

	if (l->pc && l->kind != DECOMP_ZSTD &&
	    pcache_blob_stat(l->pc, &l->digest, "", &size) == 0 && size == l->size) {
		rc = build_layer(l, o, indexed, true);
		if (!rc) {
			count(&l->st_llocal, 1);
			return 0;
		}
		log_warn("layer %s: its local copy could not be indexed; downloading the blob",
			 short_digest(l, ds));
		(void)pcache_blob_remove(l->pc, &l->digest, "");
	}
	return build_layer(l, o, indexed, false);
}

/* *indexed: an index file holds what was loaded (an eviction can be undone
 * without the blob). */
static int do_load(struct layer *l, struct lindex_content *o, bool *indexed)
{
	char ds[DIGEST_STR_SIZE];
	int rc;

	memset(o, 0, sizeof(*o));
	*indexed = false;
	if (l->kind < 0) {
		log_error("layer %s: unsupported media type \"%s\"; it is shown as an empty "
			  "directory",
			  short_digest(l, ds), l->media_type);
		return tree_new(&o->tree);
	}
	if (l->pc) {
		rc = load_from_index(l, o);
		if (rc == 0) {
			count(&l->st_lidx, 1);
			*indexed = true;
			return 0;
		}
		if (rc != -ENOENT)
			return rc;
	}
	rc = load_from_blob(l, o, indexed);
	if (!rc)
		count(&l->st_lblob, 1);
	return rc;
}

int layer_load(struct layer *l)
{
	struct lindex_content o;
	uint64_t bytes = 0;
	bool evictable;
	int rc;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		if (l->state == L_LOADED) {
			pthread_mutex_unlock(&l->lock);
			budget_touch(&l->bu);
			return 0;
		}
		if (l->state == L_FAILED && now_sec() < l->fail_until) {
			pthread_mutex_unlock(&l->lock);
			return -EIO;
		}
		if (l->state != L_LOADING)
			break;
		pthread_cond_wait(&l->cond, &l->lock);
		if (l->state == L_FAILED) {
			pthread_mutex_unlock(&l->lock);
			return -EIO;
		}
	}
	l->state = L_LOADING;
	pthread_mutex_unlock(&l->lock);

	rc = do_load(l, &o, &evictable);

	pthread_mutex_lock(&l->lock);
	l->evictable = evictable;
	if (rc) {
		l->state = L_FAILED;
		l->fail_until = now_sec() + LAYER_RETRY_SEC;
		rc = rc == -ENOMEM ? rc : -EIO;
	} else {
		l->tree = o.tree;
		l->zidx = o.zidx;
		l->frames = o.frames;
		l->nframes = o.nframes;
		l->usize = o.usize;
		l->cblocks = o.cblocks;
		l->ublocks = o.ublocks;
		l->state = L_LOADED;
		bytes = loaded_bytes(l);
	}
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	/* Counted (and others evicted) only if it can go: see layer_set_budget. */
	if (!rc && evictable)
		budget_charge(&l->bu, bytes);
	return rc;
}

/* ---- reading verified bytes ---------------------------------------------- */

/*
 * A buffered, verified window over one byte sequence: the blob (its local
 * copy, else ranged reads of the source) or a zstd layer's decompressed copy
 * (local only). Each fill asks for about `want` bytes, widened to whole
 * blocks, and checks every block against the sums before any byte of it is
 * handed out; the buffer holds `want` plus two blocks. Fills stop at `limit`
 * unless the caller asks for bytes beyond it.
 *
 * Read-ahead (readers): once two fills in a row were sequential, each fill
 * starts the next one on a helper thread, into a second buffer, while the
 * caller inflates the first — the fetch (a Range request, or a pread of the
 * local copy) and its SHA-256 check run on the other core. The read-ahead
 * fills double from `want` to AHEAD_MAX (fewer, larger Range requests for a
 * long sequential read: a request's round trip is paid once per 4 MiB), and
 * never go past `limit` (a reader's: the end of its file's data). fill_buf
 * touches nothing of the fetch but its own buffer and results, so the two
 * need no lock; the helper is joined before its buffer is used or reused.
 * A reader's buffers start with AHEAD_KEEP bytes of room: a sequential fill
 * carries the last bytes of the previous window over, so the small backward
 * steps of kernel readahead (reads arriving swapped) stay within the window
 * instead of fetching again.
 */
enum fetch_what { FETCH_BLOB, FETCH_UCOPY };

struct fetch;

struct ahead {
	struct fetch *f;
	pthread_t thread;
	bool running;       /* started, not joined */
	unsigned char *buf; /* same size as fetch.buf */
	uint64_t off;       /* asked for: [off, off + n) */
	size_t n;
	uint64_t boff;      /* what buf holds after the join, when rc == 0 */
	size_t blen;
	int rc;
};

struct fetch {
	struct layer *l;
	const struct blocksums *sums;
	const char *sfx; /* the local copy: "" (the blob) or "tar" */
	bool remote;     /* may read the source (the blob only) */
	unsigned char *buf; /* keep bytes of room, then a fill */
	unsigned char *win; /* the window: win[0, blen) holds [boff, boff + blen) */
	size_t want;
	size_t keep;        /* room in front of a fill (readers: AHEAD_KEEP) */
	uint64_t boff;
	size_t blen;
	uint64_t limit;
	bool may_ahead;    /* a reader's fetch: read ahead when sequential */
	uint64_t last_end; /* where the last fill ended */
	size_t ahead_n;    /* the next read-ahead's size */
	size_t cap;        /* bytes buf (and ah.buf) can hold */
	struct ahead ah;
};

static int fetch_init(struct fetch *f, struct layer *l, enum fetch_what what, size_t want,
		      uint64_t limit)
{
	memset(f, 0, sizeof(*f));
	f->l = l;
	f->remote = what == FETCH_BLOB;
	f->sums = f->remote ? &l->cblocks : &l->ublocks;
	f->sfx = f->remote ? "" : "tar";
	f->want = want ? want : 1;
	f->limit = limit < f->sums->len ? limit : f->sums->len;
	f->last_end = UINT64_MAX;
	f->ahead_n = f->want;
	if (f->sums->bsize < BLOCKHASH_MIN || f->sums->bsize > BLOCKHASH_MAX)
		return -EIO; /* no sums: nothing may be read */
	f->cap = f->want + 2 * (size_t)f->sums->bsize;
	f->buf = malloc(f->cap);
	f->win = f->buf;
	return f->buf ? 0 : -ENOMEM;
}

/* A reader's fetch: read ahead when sequential, keep some history. */
static int fetch_reader(struct fetch *f)
{
	unsigned char *b = realloc(f->buf, AHEAD_KEEP + f->cap);

	if (!b)
		return -ENOMEM;
	f->buf = f->win = b;
	f->keep = AHEAD_KEEP;
	f->may_ahead = true;
	return 0;
}

/* Wait for the read-ahead, if one runs. */
static void ahead_join(struct fetch *f)
{
	if (f->ah.running) {
		pthread_join(f->ah.thread, NULL);
		f->ah.running = false;
	}
}

static void fetch_free(struct fetch *f)
{
	ahead_join(f);
	free(f->buf);
	free(f->ah.buf);
	f->buf = f->win = f->ah.buf = NULL;
}

/*
 * Check buf[0, len) read at `off` from `from`; one log line if it fails,
 * saying what happens `then` (an error when that is the end of the read).
 */
static int fetch_verify(const struct fetch *f, const unsigned char *buf, uint64_t off,
			size_t len, const char *from, const char *then, bool final)
{
	struct layer *l = f->l;
	char ds[DIGEST_STR_SIZE];
	uint64_t bad = 0, b0, b1;
	int rc = blocksums_verify(f->sums, off, buf, len, &bad);

	if (rc != -EBADMSG)
		return rc;
	count(&l->st_bad, 1);
	b0 = bad * f->sums->bsize;
	b1 = b0 + f->sums->bsize < f->sums->len ? b0 + f->sums->bsize : f->sums->len;
	log_msg(final ? LOG_LVL_ERROR : LOG_LVL_WARN,
		"layer %s: block %llu (%s bytes %llu-%llu) %s does not match its "
		"digest-verified sum; %s",
		short_digest(l, ds), (unsigned long long)bad, f->remote ? "blob" : "tar",
		(unsigned long long)b0, (unsigned long long)(b1 - 1), from, then);
	return rc;
}

/* Exactly `len` bytes at `off` from the source into buf. 0 or -errno. */
static int fetch_source(const struct fetch *f, unsigned char *buf, uint64_t off, size_t len)
{
	struct layer *l = f->l;
	size_t got = 0;

	while (got < len) {
		ssize_t r = l->src.pread(l->src.ctx, &l->digest, l->size, buf + got, len - got,
					 off + got);

		count(&l->st_reqs, 1);
		if (r <= 0 || (size_t)r > len - got) {
			char ds[DIGEST_STR_SIZE];

			log_error("layer %s: ranged read at %llu failed: %s", short_digest(l, ds),
				  (unsigned long long)(off + got),
				  r < 0 ? strerror((int)-r) : r ? "too much data" : "short data");
			return r < 0 ? (int)r : -EIO;
		}
		count(&l->st_range, (uint64_t)r);
		got += (size_t)r;
	}
	return 0;
}

/*
 * Fill buf with the blocks holding [off, off + n) (n <= want, off <
 * length), verified; *boff and *blen say what it holds. The local copy first: a
 * damaged one is removed (it would fail every read) and the blob read by
 * range instead. A ranged read that does not match is fetched once more (a
 * transient fault), then -EIO. -ENOENT: a decompressed copy is missing or
 * damaged (decode the blob). Touches only buf and the results: the caller
 * and the read-ahead run it at once on their own buffers.
 */
static int fill_buf(const struct fetch *f, unsigned char *buf, uint64_t off, size_t n,
		    uint64_t *boff, size_t *blen)
{
	struct layer *l = f->l;
	uint32_t bs = f->sums->bsize;
	uint64_t start = off - off % bs, end = off + n;
	size_t len;
	int rc, attempt;

	end = end % bs ? end + (bs - end % bs) : end;
	if (end > f->sums->len)
		end = f->sums->len;
	len = (size_t)(end - start);
	*blen = 0;
	if (l->pc) {
		ssize_t r = pcache_blob_pread(l->pc, &l->digest, f->sfx, buf, len, start);

		if (r == (ssize_t)len) {
			rc = fetch_verify(f, buf, start, len, "of the local copy",
					  f->remote ? "dropping the copy, reading by range"
						    : "dropping the copy, decoding the blob",
					  false);
			if (!rc) {
				count(&l->st_local, len);
				*boff = start;
				*blen = len;
				return 0;
			}
			if (rc != -EBADMSG)
				return rc;
			(void)pcache_blob_remove(l->pc, &l->digest, f->sfx);
		}
	}
	if (!f->remote)
		return -ENOENT;
	for (attempt = 0;; attempt++) {
		rc = fetch_source(f, buf, start, len);
		if (!rc)
			rc = fetch_verify(f, buf, start, len, "from a ranged read",
					  attempt ? "Input/output error" : "fetching it again",
					  attempt > 0);
		if (rc != -EBADMSG)
			break;
		if (attempt) {
			rc = -EIO;
			break;
		}
	}
	if (rc)
		return rc;
	*boff = start;
	*blen = len;
	return 0;
}

/* The bytes a fill at `off` asks for: `want`, or less at `limit` and the end. */
static size_t fill_size(const struct fetch *f, uint64_t off, size_t len)
{
	size_t n = f->want;

	if (off < f->limit && f->limit - off < n)
		n = (size_t)(f->limit - off);
	else if (off >= f->limit && len < n)
		n = len;
	if (n > f->sums->len - off)
		n = (size_t)(f->sums->len - off);
	return n;
}

static void *ahead_main(void *arg)
{
	struct ahead *a = arg;

	a->rc = fill_buf(a->f, a->buf + a->f->keep, a->off, a->n, &a->boff, &a->blen);
	return NULL;
}

/* After a fill: start the next one on a helper thread, if it is worth it. */
static void ahead_start(struct fetch *f)
{
	uint64_t next = f->boff + f->blen;
	size_t n, cap = AHEAD_MAX + 2 * (size_t)f->sums->bsize;

	if (!f->may_ahead || f->ah.running || next >= f->limit)
		return;
	if (f->cap < cap) { /* both buffers grow to the largest fill once */
		unsigned char *b = realloc(f->buf, f->keep + cap), *a;

		if (!b)
			return;
		f->win = b + (f->win - f->buf);
		f->buf = b;
		a = realloc(f->ah.buf, f->keep + cap);
		if (!a)
			return;
		f->ah.buf = a;
		f->cap = cap;
	}
	n = f->limit - next < f->ahead_n ? (size_t)(f->limit - next) : f->ahead_n;
	if (f->ahead_n < AHEAD_MAX)
		f->ahead_n *= 2;
	f->ah.f = f;
	f->ah.off = next;
	f->ah.n = n;
	f->ah.running = pthread_create(&f->ah.thread, NULL, ahead_main, &f->ah) == 0;
}

/*
 * Fill the window for a read at `off`: from the read-ahead when it holds it.
 * A fill that starts where the window ends keeps up to `keep` bytes of it
 * in front (they move to the room before the new bytes).
 */
static int fetch_fill(struct fetch *f, uint64_t off, size_t len)
{
	/* Sequential: at the end of the last fill, or a little after it (the
	 * kernel's readahead asks the later of two reads first): then fill
	 * from the end of the last one. */
	bool seq = f->last_end != UINT64_MAX && off - off % f->sums->bsize >= f->last_end &&
		   off - f->last_end <= f->keep;
	size_t k = seq && f->boff + f->blen == f->last_end ? f->blen : 0;
	unsigned char *tail = f->win + f->blen;
	uint64_t boff;
	size_t blen;
	int rc;

	if (k > f->keep)
		k = f->keep;
	ahead_join(f);
	if (f->ah.buf && f->ah.rc == 0 && f->ah.blen && off >= f->ah.boff &&
	    off < f->ah.boff + f->ah.blen) {
		unsigned char *t = f->buf;

		if (k && f->ah.boff != f->boff + f->blen)
			k = 0;
		memcpy(f->ah.buf + f->keep - k, tail - k, k);
		f->buf = f->ah.buf;
		f->ah.buf = t;
		boff = f->ah.boff;
		blen = f->ah.blen;
		rc = 0;
	} else {
		uint64_t start = seq ? f->last_end : off;

		memmove(f->buf + f->keep - k, tail - k, k);
		f->blen = 0; /* the window is being overwritten */
		rc = fill_buf(f, f->buf + f->keep, start, fill_size(f, start, len + (off - start)),
			      &boff, &blen);
		if (!rc && boff != f->last_end)
			k = 0;
	}
	f->ah.blen = 0; /* used, or not what is needed */
	if (rc)
		return rc;
	f->win = f->buf + f->keep - k;
	f->boff = boff - k;
	f->blen = blen + k;
	f->last_end = boff + blen;
	if (seq)
		ahead_start(f);
	return 0;
}

/* A zran_read_fn: up to `len` verified bytes at `off` (short reads are fine). */
static ssize_t fetch_read(void *ctx, void *out, size_t len, uint64_t off)
{
	struct fetch *f = ctx;
	size_t n;
	int rc;

	if (off >= f->sums->len || len == 0)
		return 0;
	if (off < f->boff || off >= f->boff + f->blen) {
		/* Never more than `want` (the buffer's size): a larger read is
		 * served in pieces by the caller's loop. */
		rc = fetch_fill(f, off, len);
		if (rc)
			return rc;
	}
	n = (size_t)(f->boff + f->blen - off);
	if (n > len)
		n = len;
	memcpy(out, f->win + (off - f->boff), n);
	return (ssize_t)n;
}

/* All of [off, off + len) through `f`; *done = the bytes copied. 0 or -errno. */
static int fetch_all(struct fetch *f, void *buf, size_t len, uint64_t off, size_t *done)
{
	*done = 0;
	while (*done < len) {
		ssize_t n = fetch_read(f, (char *)buf + *done, len - *done, off + *done);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		*done += (size_t)n;
	}
	return 0;
}

/* ---- zstd: a streaming decoder over the frame table ---------------------- */

struct zsr {
	struct layer *l;
	struct fetch f;
	ZSTD_DStream *zs;
	unsigned char in[ZSR_IN];
	size_t inpos, inlen;
	uint64_t coff;      /* next compressed offset to fetch */
	uint64_t upos;      /* uncompressed offset of the next output byte */
	unsigned char *out; /* the last output chunk, kept for small jumps back */
	size_t outcap, outlen;
	uint64_t out_u;
	bool valid;
};

static int zsr_init(struct zsr *z, struct layer *l)
{
	int rc;

	memset(z, 0, sizeof(*z));
	z->l = l;
	rc = fetch_init(&z->f, l, FETCH_BLOB, READER_BUF, l->size);
	if (rc)
		return rc;
	rc = fetch_reader(&z->f); /* it decodes a frame front to back */
	if (rc)
		return rc;
	z->zs = ZSTD_createDStream();
	z->outcap = ZSTD_DStreamOutSize();
	z->out = malloc(z->outcap);
	return z->zs && z->out ? 0 : -ENOMEM;
}

static void zsr_fini(struct zsr *z)
{
	fetch_free(&z->f);
	ZSTD_freeDStream(z->zs);
	free(z->out);
}

static size_t frame_of(const struct layer *l, uint64_t u)
{
	size_t lo = 0, hi = l->nframes;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->frames[mid].uoff <= u)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Full read of [uoff, uoff+len) (the caller clamps to usize). */
static ssize_t zsr_pread(struct zsr *z, void *buf, size_t len, uint64_t uoff)
{
	struct layer *l = z->l;
	size_t done = 0;

	while (done < len) {
		uint64_t u = uoff + done;
		size_t fi;

		if (z->outlen && u >= z->out_u && u < z->out_u + z->outlen) {
			size_t n = (size_t)(z->out_u + z->outlen - u);

			if (n > len - done)
				n = len - done;
			memcpy((char *)buf + done, z->out + (u - z->out_u), n);
			done += n;
			continue;
		}
		fi = frame_of(l, u);
		if (!z->valid || u < z->upos || l->frames[fi].uoff > z->upos) {
			ZSTD_DCtx_reset(z->zs, ZSTD_reset_session_only);
			z->coff = l->frames[fi].coff;
			z->upos = l->frames[fi].uoff;
			z->inpos = z->inlen = 0;
			z->outlen = 0;
			z->valid = true;
		}
		/* Decode one output chunk. */
		{
			ZSTD_inBuffer ib;
			ZSTD_outBuffer ob = { z->out, z->outcap, 0 };
			size_t ret;

			if (z->inpos == z->inlen) {
				ssize_t got = fetch_read(&z->f, z->in, sizeof(z->in), z->coff);

				if (got <= 0) {
					z->valid = false;
					return got < 0 ? got : -EIO;
				}
				z->coff += (uint64_t)got;
				z->inpos = 0;
				z->inlen = (size_t)got;
			}
			ib.src = z->in;
			ib.size = z->inlen;
			ib.pos = z->inpos;
			ret = ZSTD_decompressStream(z->zs, &ob, &ib);
			z->inpos = ib.pos;
			if (ZSTD_isError(ret)) {
				char ds[DIGEST_STR_SIZE];

				log_error("layer %s: zstd: %s at offset %llu", short_digest(l, ds),
					  ZSTD_getErrorName(ret), (unsigned long long)z->upos);
				z->valid = false;
				return -EIO;
			}
			z->out_u = z->upos;
			z->outlen = ob.pos;
			z->upos += ob.pos;
		}
	}
	return (ssize_t)len;
}

/* ---- reading files ------------------------------------------------------- */

struct layer_reader {
	struct layer *l;        /* pinned */
	const struct tree_attr *a; /* &attr (a reader), or the caller's (layer_pread) */
	struct tree_attr attr;  /* a copy: the tree may be evicted meanwhile */
	struct tar_sparse *sparse; /* attr.sparse, copied */
	struct fetch f;         /* tar, gzip: the blob; zstd: its decompressed copy */
	struct zran_reader *zr; /* gzip */
	struct zsr *zsr;        /* zstd without a (good) decompressed copy */
};

/* The fetch a reader of `l` keeps (want: bytes per fill), with `limit`. */
static int reader_fetch_init(struct layer_reader *rd, size_t want, uint64_t limit)
{
	struct layer *l = rd->l;

	if (l->kind != DECOMP_ZSTD)
		return fetch_init(&rd->f, l, FETCH_BLOB, want, limit);
	if (l->pc && l->ublocks.n)
		return fetch_init(&rd->f, l, FETCH_UCOPY, want, l->usize);
	memset(&rd->f, 0, sizeof(rd->f)); /* decode the blob (zsr) */
	return 0;
}

static void reader_fini(struct layer_reader *rd)
{
	zran_reader_free(rd->zr);
	fetch_free(&rd->f);
	if (rd->zsr) {
		zsr_fini(rd->zsr);
		free(rd->zsr);
	}
}

/* zstd: [uoff, uoff+len) from the decompressed copy, else decoded. */
static ssize_t uread_zstd(struct layer_reader *rd, void *buf, size_t len, uint64_t uoff)
{
	size_t done = 0;
	int rc;

	if (rd->f.buf) {
		rc = fetch_all(&rd->f, buf, len, uoff, &done);
		if (rc != -ENOENT)
			return rc ? rc : (ssize_t)len;
	}
	if (!rd->zsr) {
		rd->zsr = malloc(sizeof(*rd->zsr));
		if (!rd->zsr)
			return -ENOMEM;
		rc = zsr_init(rd->zsr, rd->l);
		if (rc) {
			zsr_fini(rd->zsr);
			free(rd->zsr);
			rd->zsr = NULL;
			return rc;
		}
	}
	return zsr_pread(rd->zsr, (char *)buf + done, len - done, uoff + done);
}

/* Read exactly [uoff, uoff+len) of the uncompressed layer (clamped by the
 * caller to the file's data, which lies within usize). */
static ssize_t uread(struct layer_reader *rd, void *buf, size_t len, uint64_t uoff)
{
	struct layer *l = rd->l;
	size_t done = 0;
	int rc;

	if (len > l->usize || uoff > l->usize - len)
		return -EIO;
	if (l->kind == DECOMP_ZSTD)
		return uread_zstd(rd, buf, len, uoff);
	if (l->kind != DECOMP_GZIP) {
		rc = fetch_all(&rd->f, buf, len, uoff, &done);
		return rc ? rc : (ssize_t)len;
	}
	while (done < len) {
		ssize_t n = rd->zr ? zran_reader_pread(rd->zr, uoff + done,
						       (char *)buf + done, len - done)
				   : zran_read(l->zidx, fetch_read, &rd->f, uoff + done,
					       (char *)buf + done, len - done);

		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

static ssize_t file_read(struct layer_reader *rd, void *buf, size_t len, uint64_t off)
{
	const struct tree_attr *a = rd->a;
	size_t done = 0;
	ssize_t n;

	if (off >= a->size || len == 0)
		return 0;
	if (len > a->size - off)
		len = (size_t)(a->size - off);
	if (!a->sparse) {
		if (off + len > a->stored_size)
			return -EIO;
		n = uread(rd, buf, len, a->data_offset + off);
		return n < 0 ? n : (ssize_t)len;
	}
	while (done < len) {
		uint64_t stored = 0;
		bool hole = false;
		uint64_t m = tar_sparse_locate(a->sparse, a->nsparse, a->size, off + done,
					       &stored, &hole);

		if (m == 0)
			break;
		if (m > len - done)
			m = len - done;
		if (hole) {
			memset((char *)buf + done, 0, (size_t)m);
		} else {
			if (stored + m > a->stored_size)
				return -EIO;
			n = uread(rd, (char *)buf + done, (size_t)m, a->data_offset + stored);
			if (n < 0)
				return n;
		}
		done += (size_t)m;
	}
	return (ssize_t)done;
}

static int check_file(const struct tree_attr *a)
{
	if (!a || (a->mode & 0170000) != 0100000)
		return -EINVAL;
	return 0;
}

ssize_t layer_pread(struct layer *l, const struct tree_attr *a, void *buf, size_t len,
		    uint64_t off)
{
	struct layer_reader rd;
	uint64_t limit = l->size, cstart, cend;
	size_t want;
	ssize_t n;

	if (check_file(a))
		return -EINVAL;
	if (off >= a->size || len == 0)
		return 0;
	if (len > a->size - off)
		len = (size_t)(a->size - off);
	n = layer_pin(l);
	if (n)
		return n;
	memset(&rd, 0, sizeof(rd));
	rd.l = l;
	rd.a = a;
	if (l->kind == DECOMP_GZIP) {
		/* Fetch in RANDOM_BUF pieces up to the end of the span(s) the
		 * read needs, not beyond (zran may ask one chunk more). */
		want = RANDOM_BUF;
		if (!a->sparse && zran_index_comp_range(l->zidx, a->data_offset + off, len,
							&cstart, &cend) == 0)
			limit = cend;
	} else {
		want = len < READER_BUF ? len : READER_BUF; /* the bytes asked for */
	}
	n = reader_fetch_init(&rd, want, limit);
	if (!n)
		n = file_read(&rd, buf, len, off);
	reader_fini(&rd);
	layer_unpin(l);
	return n;
}

int layer_reader_new(struct layer_reader **out, struct layer *l, const struct tree_attr *a)
{
	struct layer_reader *rd;
	uint64_t limit = l->size, cstart = UINT64_MAX;
	int rc;

	*out = NULL;
	if (check_file(a))
		return -EINVAL;
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	rd->attr = *a;
	rd->attr.symlink = NULL;
	rd->attr.xattrs = NULL;
	rd->attr.nxattrs = 0;
	if (a->sparse) {
		rd->sparse = malloc(a->nsparse * sizeof(*rd->sparse));
		if (!rd->sparse) {
			free(rd);
			return -ENOMEM;
		}
		memcpy(rd->sparse, a->sparse, a->nsparse * sizeof(*rd->sparse));
		rd->attr.sparse = rd->sparse;
	}
	rd->a = a = &rd->attr;
	rc = layer_pin(l);
	if (rc) {
		free(rd->sparse);
		free(rd);
		return rc;
	}
	rd->l = l;
	/* Read ahead no further than the file's data needs; its first fill
	 * starts where its data does (as if a fill had ended there). */
	if (l->kind == DECOMP_TAR) {
		cstart = a->data_offset;
		limit = a->data_offset + a->stored_size;
	} else if (l->kind == DECOMP_GZIP && a->stored_size &&
		   zran_index_comp_range(l->zidx, a->data_offset, a->stored_size, &cstart,
					 &limit)) {
		cstart = UINT64_MAX;
		limit = l->size;
	}
	rc = reader_fetch_init(rd, READER_BUF, limit);
	if (!rc && rd->f.buf) {
		rc = fetch_reader(&rd->f);
		if (cstart != UINT64_MAX)
			rd->f.last_end = cstart - cstart % rd->f.sums->bsize;
	}
	if (!rc && l->kind == DECOMP_GZIP)
		rc = zran_reader_new(&rd->zr, l->zidx, fetch_read, &rd->f);
	if (rc) {
		layer_reader_free(rd);
		return rc;
	}
	*out = rd;
	return 0;
}

ssize_t layer_reader_pread(struct layer_reader *rd, void *buf, size_t len, uint64_t off)
{
	return file_read(rd, buf, len, off);
}

void layer_reader_free(struct layer_reader *rd)
{
	if (!rd)
		return;
	reader_fini(rd);
	if (rd->l)
		layer_unpin(rd->l);
	free(rd->sparse);
	free(rd);
}
