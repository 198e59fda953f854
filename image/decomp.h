/*
 * decomp — one streaming decoder for layer blobs, whatever their media type.
 *
 * A layer blob is streamed through decomp_feed() once (as it comes off the
 * network); the uncompressed tar bytes go to the caller's sink, in order.
 *
 *   DECOMP_TAR   pass-through.
 *   DECOMP_GZIP  image/zran's builder: the random-access index of the
 *                layer comes for free and is handed out by decomp_finish().
 *   DECOMP_ZSTD  libzstd ZSTD_decompressStream, any number of frames
 *                (skippable frames are skipped). The start of every frame
 *                (compressed and uncompressed offset) is recorded, so a read
 *                can begin at the frame holding the offset
 *                (decomp_frames_read). A layer made of ONE frame — what
 *                `zstd` and most builders produce — has no random access:
 *                every read would decode from the start of the blob. For such
 *                layers the cache layer should keep the decompressed bytes
 *                (decomp_frames_count() == 1 tells); zstd:chunked-style layers
 *                (a frame per file or per chunk) get cheap random access.
 *
 * Errors: 0 or -errno. Corrupt or truncated data is -EIO (the bytes already
 * handed to the sink are unverified until finish succeeds; acrfs also checks
 * the blob digest). After an error every later call returns it again.
 *
 * Thread-safety: a decomp belongs to one thread at a time; finished frame
 * tables and zran indexes are immutable and may be shared. Nothing blocks
 * except through the caller's callbacks.
 */
#ifndef ACRFS_DECOMP_H
#define ACRFS_DECOMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image/zran.h"

enum decomp_kind {
	DECOMP_TAR = 0,
	DECOMP_GZIP = 1,
	DECOMP_ZSTD = 2,
};

/*
 * The kind for a layer media type (case-insensitive, parameters after ';'
 * ignored):
 *   application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]
 *   application/vnd.oci.image.layer.nondistributable.v1.tar[+gzip|+zstd]
 *   application/vnd.docker.image.rootfs.diff.tar.gzip
 *   application/vnd.docker.image.rootfs.foreign.diff.tar.gzip
 *   application/vnd.docker.image.rootfs.diff.tar        (BuildKit, uncompressed)
 *   application/vnd.docker.image.rootfs.diff.tar.zstd   (BuildKit, zstd)
 * Returns a DECOMP_* value (>= 0), or -ENOTSUP for anything else (NULL too).
 */
int decomp_kind_from_media_type(const char *mt);

/* "tar", "gzip", "zstd" (static string; "?" for an unknown value). */
const char *decomp_kind_name(enum decomp_kind kind);

/* Same contract as zran_sink_fn: 0 to go on, -errno to stop. */
typedef int (*decomp_sink_fn)(void *ctx, const void *data, size_t n);

struct decomp;
struct decomp_frames;

/*
 * *out = a decoder of `kind`; `span` is the zran span for gzip (0 =
 * default; ignored for other kinds). -EINVAL for a bad kind or (gzip) span,
 * -ENOMEM.
 */
int decomp_new(struct decomp **out, enum decomp_kind kind, uint32_t span);

/* Decode the next `len` bytes of the blob into `sink` (NULL: drop). */
int decomp_feed(struct decomp *d, const void *comp, size_t len, decomp_sink_fn sink,
		void *ctx);

/*
 * End of the blob. 0, or -EIO if it ended inside a gzip member / zstd frame
 * or held none, or an earlier error. On success, if `zidx` is not NULL,
 * *zidx is the gzip layer's zran index (caller frees) or NULL for the other
 * kinds. The decoder must still be freed.
 */
int decomp_finish(struct decomp *d, struct zran_index **zidx);

/*
 * After a successful decomp_finish of a zstd layer: *out = its frame table
 * (caller frees with decomp_frames_free), and the decoder no longer owns it.
 * -EINVAL for other kinds or before finish.
 */
int decomp_take_frames(struct decomp *d, struct decomp_frames **out);

/* Uncompressed / compressed bytes seen so far. */
uint64_t decomp_usize(const struct decomp *d);
uint64_t decomp_csize(const struct decomp *d);

void decomp_free(struct decomp *d); /* NULL is fine */

/* ---- zstd frame table ---------------------------------------------------- */

size_t decomp_frames_count(const struct decomp_frames *f);
uint64_t decomp_frames_usize(const struct decomp_frames *f);
uint64_t decomp_frames_csize(const struct decomp_frames *f);
/*
 * The frame a read at `uoff` (< usize) starts in: its compressed and
 * uncompressed start offsets. 0, or -EINVAL past the end.
 */
int decomp_frames_find(const struct decomp_frames *f, uint64_t uoff, uint64_t *comp_off,
		       uint64_t *frame_uoff);
/*
 * Read up to `len` uncompressed bytes at `uoff`, decoding from the start of
 * the frame holding `uoff` with compressed bytes from `rd` (64 KiB pieces).
 * Returns the bytes read (short only at the end), 0 at or past the end, or
 * -EIO / -ENOMEM / `rd`'s error. Cost grows with the distance from the
 * frame start: see the note on single-frame layers above. Thread-safe as
 * far as `rd` is.
 */
ssize_t decomp_frames_read(const struct decomp_frames *f, zran_read_fn rd, void *ctx,
			   uint64_t uoff, void *out, size_t len);
void decomp_frames_free(struct decomp_frames *f); /* NULL is fine */

#endif
