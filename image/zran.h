/*
 * zran — random access into gzip streams (design after zlib's examples/zran.c).
 *
 * A gzip layer blob is decoded once, front to back, by a zran_builder. While
 * it streams the uncompressed bytes to a sink (the tar parser), it records an
 * *access point* roughly every `span` uncompressed bytes (at the first
 * deflate block boundary at least `span` bytes after the previous point, so
 * a span is `span` plus part of one deflate block — a block is usually tens
 * of KiB, but can hold MiBs of extremely compressible data): where a deflate
 * block starts (uncompressed offset, compressed offset, bit offset) and the
 * 32 KiB of output that precede it (the inflate dictionary). Later any byte
 * range can be produced by resuming inflate at the last access point at or
 * before it — never more than one span of inflate work, never more than one
 * span (+ one 64 KiB read chunk) of compressed bytes fetched.
 *
 * Integrity. The builder verifies every gzip member's CRC-32 and ISIZE. It
 * also records a CRC-32 of every *check block* of uncompressed data (64 KiB
 * pieces counted from each access point), and every random or sequential
 * read verifies the blocks it serves: compressed bytes that changed between
 * indexing and reading (a bad cache file, a misbehaving Range server) give
 * -EIO, never wrong bytes. A CRC-32 is no proof against a server that forges
 * data on purpose: acrfs's layers also check the compressed bytes against
 * SHA-256 block sums before they get here (image/layer.c); the CRCs remain
 * the check of inflate and of the index itself.
 *
 * Multi-member gzip (concatenated members, e.g. eStargz's one member per
 * file) is supported everywhere; access points may fall in any member. Bytes
 * after the last member that are not another gzip member are an error (as
 * they are for Go's compress/gzip, which docker and containerd use).
 *
 * Memory: an index holds per access point ~40 bytes plus its window, stored
 * deflated (level 1) when that saves space, raw otherwise; plus 4 bytes per
 * 64 KiB of uncompressed data for the check CRCs. zran_index_memsize() tells.
 *
 * Thread-safety: a builder or a reader belongs to one thread at a time. A
 * finished index is immutable: any number of threads may use it at once
 * (zran_read, readers) as long as it outlives them. Nothing here takes locks.
 * Blocking: only through the caller's read callback.
 */
#ifndef ACRFS_ZRAN_H
#define ACRFS_ZRAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"

#define ZRAN_SPAN_DEFAULT (4u << 20) /* SOCI's default */
#define ZRAN_SPAN_MIN (64u << 10)    /* 1–4 MiB is the useful range; smaller */
#define ZRAN_SPAN_MAX (64u << 20)    /* spans are accepted for tests       */
#define ZRAN_WINDOW 32768u           /* deflate's maximum distance */
#define ZRAN_CHECK_BLOCK (64u << 10) /* granularity of the check CRCs */
#define ZRAN_READ_CHUNK (64u << 10)  /* compressed bytes asked for at once */

/*
 * Receives uncompressed bytes, in order. `data` is borrowed for the duration
 * of the call. Return 0 to go on or a -errno to stop: the builder then
 * returns that value from feed() (and from every later call).
 */
typedef int (*zran_sink_fn)(void *ctx, const void *data, size_t n);

/*
 * Fills `buf` with up to `len` compressed bytes starting at offset
 * `comp_off` of the gzip blob. Returns the number of bytes stored (short
 * reads are fine; the caller asks again), 0 at end of data, or -errno. May
 * block (disk, network). Called only from the thread that called into zran.
 */
typedef ssize_t (*zran_read_fn)(void *ctx, void *buf, size_t len, uint64_t comp_off);

struct zran_builder;
struct zran_index;
struct zran_reader;

/* ---- the inflate engine ------------------------------------------------ */

/*
 * Inflate is zlib's or, when acrfs is built with it (Makefile: ISAL), Intel
 * ISA-L's (igzip, ~2x faster here); ISA-L is then the default. Both decode
 * the same deflate streams to the same bytes, and an index built with one is
 * read with the other: access points are deflate block boundaries either
 * way (ISA-L finds them where a piece of input ends inside a block header,
 * so its points may sit a block or two later than zlib's). The format of
 * saved indexes does not depend on the engine.
 *
 * The engine is process-wide and taken by each builder and reader when it is
 * created. zran_engine_set is for tests and benchmarks: 0, -EINVAL, or
 * -ENOTSUP for ISA-L in a build without it. Thread-safe (atomic).
 */
enum zran_engine {
	ZRAN_ENGINE_ZLIB = 0,
	ZRAN_ENGINE_ISAL = 1,
};
int zran_engine_set(enum zran_engine e);
enum zran_engine zran_engine_get(void);
const char *zran_engine_name(enum zran_engine e); /* "zlib", "isa-l" (static) */

/* ---- building ---------------------------------------------------------- */

/*
 * *out = a builder recording an access point about every `span` uncompressed
 * bytes (0 = ZRAN_SPAN_DEFAULT). -EINVAL for a span outside
 * [ZRAN_SPAN_MIN, ZRAN_SPAN_MAX], -ENOMEM.
 */
int zran_builder_new(struct zran_builder **out, uint32_t span);

/*
 * Consume the next `len` compressed bytes (any chunking, down to single
 * bytes), passing every uncompressed byte they yield to `sink` (NULL: drop
 * them). 0, the sink's error, -EIO for data that is not valid gzip (a bad
 * header, a corrupt deflate stream, a CRC or length mismatch, garbage after
 * a member), -ENOMEM. After an error every later call returns it again.
 * Bytes handed to the sink before a member's CRC is checked are unverified:
 * a caller that must not act on bad data waits for finish() (acrfs also
 * checks the blob digest).
 */
int zran_builder_feed(struct zran_builder *b, const void *comp, size_t len,
		      zran_sink_fn sink, void *ctx);

/*
 * End of input. On success *out is the index (caller frees with
 * zran_index_free) and the builder is spent. -EIO if the input stopped
 * inside a member (truncated) or held no member at all; any earlier error.
 * The builder must still be freed.
 */
int zran_builder_finish(struct zran_builder *b, struct zran_index **out);

/* NULL is fine. */
void zran_builder_free(struct zran_builder *b);

/* ---- the index --------------------------------------------------------- */

void zran_index_free(struct zran_index *idx);          /* NULL is fine */
uint64_t zran_index_usize(const struct zran_index *idx); /* uncompressed bytes */
uint64_t zran_index_csize(const struct zran_index *idx); /* compressed bytes */
uint32_t zran_index_span(const struct zran_index *idx);
size_t zran_index_npoints(const struct zran_index *idx);
/* Heap bytes held by the index (points, windows, check CRCs). */
size_t zran_index_memsize(const struct zran_index *idx);

/*
 * The compressed byte range [*cstart, *cend) that zran_read of
 * [uoff, uoff + len) needs: from the access point at or before uoff to the
 * access point after the span holding the last byte (csize for the last
 * span). zran_read asks `rd` for whole ZRAN_READ_CHUNK pieces, so it may ask
 * for (but never needs) up to one chunk beyond *cend. Lets a caller fetch
 * the range with one HTTP Range request. -EINVAL if uoff >= usize or len == 0.
 */
int zran_index_comp_range(const struct zran_index *idx, uint64_t uoff, uint64_t len,
			  uint64_t *cstart, uint64_t *cend);

/*
 * Append the serialized index to `out`. The format (version 1): magic
 * "ACRFSZRI", version, span, check-block size, usize, csize, counts, the
 * points, the windows, the check CRCs, and a CRC-32 of all the preceding
 * bytes; every integer little-endian. 0 or -ENOMEM (out unchanged then).
 */
int zran_index_save(const struct zran_index *idx, struct buf *out);

/*
 * Parse `len` bytes produced by zran_index_save. *out = the index (caller
 * frees) or NULL with -EBADMSG for anything truncated, corrupt, inconsistent
 * or of another version (never reads outside data[0, len)), or -ENOMEM.
 * `data` is not retained.
 */
int zran_index_load(struct zran_index **out, const void *data, size_t len);

/* ---- random reads ------------------------------------------------------ */

/*
 * Read up to `len` uncompressed bytes at `uoff` into `out`: resumes at the
 * last access point <= uoff and inflates at most to the end of the check
 * block holding the last byte asked for (so within one span). Compressed
 * bytes come from `rd` in ZRAN_READ_CHUNK pieces. Returns the bytes read —
 * fewer than `len` only at the end of the data, 0 at or past it — or -EIO
 * (compressed data does not match the index, or `rd` ran out of data),
 * -ENOMEM, or an error returned by `rd`. Allocates ~200 KiB scratch per call;
 * for a sequence of reads of one file use a zran_reader.
 * Thread-safe as far as `rd` is.
 */
ssize_t zran_read(const struct zran_index *idx, zran_read_fn rd, void *ctx,
		  uint64_t uoff, void *out, size_t len);

/* ---- sequential reader ------------------------------------------------- */

/*
 * A reader for one open file: it keeps an inflate state and the last
 * 1 MiB of output (FUSE reads of up to 256 KiB, several in flight, arrive
 * that much out of order), so reads at increasing offsets — and the
 * backward/forward reorderings of kernel readahead — go on inflating where
 * the last one stopped. A backward jump past the kept output, or a forward
 * jump of 1 MiB or more into a later span, re-seeks through the access
 * point (one span of work at most). ~2.3 MiB of memory per reader.
 *
 * `idx` is borrowed and must outlive the reader; `rd`/`ctx` are used by
 * every pread. One thread at a time.
 */
int zran_reader_new(struct zran_reader **out, const struct zran_index *idx,
		    zran_read_fn rd, void *ctx);
/* Like zran_read, through the reader's state. After an error the reader
 * re-seeks on the next call. */
ssize_t zran_reader_pread(struct zran_reader *r, uint64_t uoff, void *out, size_t len);

struct zran_stats {
	uint64_t comp_bytes;  /* compressed bytes obtained from rd */
	uint64_t out_bytes;   /* uncompressed bytes inflated */
	uint64_t seeks;       /* restarts at an access point */
};
/* Counters since zran_reader_new. */
void zran_reader_stats(const struct zran_reader *r, struct zran_stats *st);
void zran_reader_free(struct zran_reader *r); /* NULL is fine */

#endif
