/*
 * blob — fetching blobs (configs, layers) from the registry, verified.
 *
 * Every function here blocks and is thread-safe. Blob requests carry scope
 * repository:<repo>:pull and follow redirects (registries hand blobs off to
 * storage hosts) by http.h's rules: the registry's Authorization never goes
 * to another origin (and a remembered storage URL is fetched without any),
 * an https registry is never followed to plain http, and a storage host's
 * 401/403 is an expired redirect, not a challenge: the registry is asked once
 * more for a fresh one, then the read is -EIO. Errors are logged once, with
 * URL (never its query), status and digest, and returned as -errno
 * (registry.h lists them); a blob whose bytes or length disagree with its
 * descriptor is -EIO. How long a call may block: http.h's deadline for a
 * response to start, then as long as bytes keep flowing; a dropped
 * connection is resumed (at most BLOB_MAX_RESUMES times) only after an
 * attempt that delivered bytes.
 */
#ifndef ACRFS_BLOB_H
#define ACRFS_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/digest.h"
#include "registry/registry.h"

/* Resumes of one registry_blob_stream() / registry_blob_pread() call. */
#define BLOB_MAX_RESUMES 16
/* Redirect targets remembered (per registry) and for how long. */
#define BLOB_REDIRECTS 256
#define BLOB_REDIRECT_TTL_S 600

/*
 * A small blob (a config): GET it whole, at most `max` bytes (else -EFBIG),
 * verify it against `d` and append it to `out`. On any failure — -EIO when
 * the bytes do not hash to `d` — `out` is left as it was.
 */
int registry_blob_get(struct registry *r, const char *repo, const struct digest *d, size_t max,
		      struct buf *out);

/*
 * Stream the whole blob `d` of `size` bytes through `sink` (return 0 to go
 * on, -errno to stop: that errno is returned), hashing as it goes. The sink
 * sees each byte exactly once, in order. A connection dropped mid-blob is
 * resumed with "Range: bytes=<next>-" (206 + a matching Content-Range
 * required; a 200 means the server ignored Range and the bytes already
 * delivered are skipped), at most BLOB_MAX_RESUMES times. After the last
 * byte the digest is checked: a mismatch is -EIO, and the caller must then
 * discard whatever it built from the bytes. A body longer or shorter than
 * `size` is -EIO.
 */
int registry_blob_stream(struct registry *r, const char *repo, const struct digest *d,
			 uint64_t size, int (*sink)(void *ctx, const void *data, size_t n),
			 void *ctx);

/*
 * Read [off, off + len) of the blob (clamped to `size`) into buf with
 * "Range: bytes=off-(off+len-1)". A 206 must carry a Content-Range with that
 * start and end and total `size` ("*" accepted); a 200 (Range ignored: logged
 * once per blob at info level) is read up to off and discarded, and the
 * transfer stops after len bytes. Redirect targets are remembered per digest
 * (BLOB_REDIRECTS entries, least recently used goes) and re-resolved through
 * the registry when the storage host answers 401/403/404 or the target is
 * older than BLOB_REDIRECT_TTL_S. A dropped connection resumes from the next
 * byte (BLOB_MAX_RESUMES). Returns the number of bytes read — the clamped
 * length; 0 when off >= size — or -errno (then buf holds nothing
 * meaningful). Never returns bytes it did not receive.
 */
ssize_t registry_blob_pread(struct registry *r, const char *repo, const struct digest *d,
			    uint64_t size, void *buf, size_t len, uint64_t off);

/*
 * What ranged reads of `d` showed so far: 1 when one was answered 206 (the
 * server honours Range), 0 when one was answered 200 (it ignores Range),
 * -1 when neither was seen (or forgotten: BLOB_REDIRECTS blobs are
 * remembered). No network I/O.
 */
int registry_blob_ranges(struct registry *r, const struct digest *d);

/* Bytes of blob content received from the network so far (all blob functions). */
uint64_t registry_blob_bytes_fetched(const struct registry *r);

/* Remembered redirect targets right now (for tests). */
size_t registry_blob_redirects(const struct registry *r);

#endif
