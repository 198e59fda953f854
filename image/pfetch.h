/*
 * pfetch — the rest of a big blob as several concurrent ranged reads.
 *
 * One HTTP stream is bound by one TCP connection (a far registry, a storage
 * host that caps each connection). pfetch_stream reads the blob from an
 * offset to its end with `conns` ranged reads of `chunk` bytes in flight at
 * once, each on a thread of its own, and hands every byte to the sink
 * exactly once, in order, on the calling thread — which also goes on
 * computing the blob's SHA-256 (the caller hashed what came before) and
 * checks it against the digest at the end, the way a source's stream()
 * does. Memory: (conns + 1) × chunk bytes at most.
 *
 * Ranges must be honoured: the first chunk is read alone, then the source's
 * `ranges` function must say that read was answered as a range, else
 * -ENOTSUP before the sink saw any byte. (layer.c switches a stream to
 * pfetch only after a ranged read came back as one.)
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
 * Pass bytes [off, size) of blob `d` through `sink` once, in order, fetched
 * by `conns` (1..PFETCH_CONNS_MAX) concurrent ranged reads of `chunk` bytes;
 * `h` holds the SHA-256 state of bytes [0, off) (borrowed; it is updated
 * and finished here) and the whole is verified against `d`. 0; the sink's
 * error; -EIO on a digest mismatch or a read that returned more or less
 * than asked for (nothing built from the bytes may be kept then); -ENOTSUP
 * (nothing passed to the sink) when ranges turn out not to be honoured;
 * -EINVAL; -ENOMEM; a read's error.
 */
int pfetch_stream(const struct blob_source *src, const struct digest *d, uint64_t size,
		  uint64_t off, struct digest_hasher *h, unsigned conns, size_t chunk,
		  blob_sink_fn sink, void *sink_ctx);

#endif
