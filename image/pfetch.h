/*
 * pfetch — stream a big blob as several concurrent ranged reads.
 *
 * One HTTP stream is bound by one TCP connection (a far registry, a storage
 * host that caps each connection). pfetch_stream reads the blob with
 * `conns` ranged reads of `chunk` bytes in flight at once, each on a thread
 * of its own, and hands every byte to the sink exactly once, in order, on
 * the calling thread — which also computes the blob's SHA-256 and checks it
 * against the digest at the end, the way a source's stream() does. Memory:
 * (conns + 1) × chunk bytes at most.
 *
 * Ranges must be honoured: the first chunk is read alone, then the source's
 * `ranges` function says whether that read was answered as a range. If it
 * was not (or the source cannot tell), pfetch_stream returns -ENOTSUP before
 * the sink saw any byte and the caller streams the blob instead (the first
 * chunk is then fetched twice — that costs only on servers that ignore
 * Range).
 *
 * Thread-safety: any thread; the source's pread must be callable from
 * several threads at once (struct blob_source promises it). Blocks
 * (network, the sink). No lock is held across a read or the sink.
 */
#ifndef ACRFS_PFETCH_H
#define ACRFS_PFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "image/layer.h"

#define PFETCH_CONNS_MAX 16

/*
 * Pass blob `d` (`size` bytes) through `sink` once, in order, fetched by
 * `conns` (1..PFETCH_CONNS_MAX) concurrent ranged reads of `chunk` bytes,
 * and verify its digest. 0; the sink's error; -EIO on a digest mismatch, a
 * short blob or a read that returned more or less than asked for (nothing
 * built from the bytes may be kept then); -ENOTSUP (nothing passed to the
 * sink) when ranges are not known to be honoured; -EINVAL; -ENOMEM; a read's
 * error.
 */
int pfetch_stream(const struct blob_source *src, const struct digest *d, uint64_t size,
		  unsigned conns, size_t chunk, blob_sink_fn sink, void *sink_ctx);

#endif
