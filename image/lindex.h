/*
 * lindex — the layer index file: everything needed to rebuild a layer's
 * tree and read its files without the blob (the tar entries as the parser
 * reported them, the zran index for gzip or the frame table for zstd, the
 * sizes), encoded for the persistent cache (image/pcache.h) and decoded
 * from it. layer.c writes one after a digest-verified load and reads it at
 * the next mount.
 *
 * It also holds the block sums (image/blockhash.h) recorded during that
 * load: every later read of the blob, or of a zstd layer's decompressed
 * copy, is checked against them.
 *
 * The file is untrusted input: lindex_parse checks every byte it reads and
 * rejects a file written for another blob, another kind, another version
 * (an older acrfs's file is rebuilt, not upgraded), or whose checksum does
 * not match.
 *
 * Thread-safety: pure functions over caller-owned buffers; nothing blocks.
 * lindex_parse checks a big file's checksum on a thread of its own while it
 * decodes, and joins it before returning.
 */
#ifndef ACRFS_LINDEX_H
#define ACRFS_LINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/digest.h"
#include "image/blockhash.h"
#include "image/tar.h"
#include "image/tree.h"
#include "image/zran.h"

/* The start of a zstd frame: compressed and uncompressed offsets. */
struct lindex_frame {
	uint64_t coff, uoff;
};

/* What an index file must have been written for. */
struct lindex_key {
	int kind;             /* DECOMP_* */
	struct digest digest; /* of the blob */
	uint64_t csize;       /* the blob's size */
	unsigned layer;       /* attr.layer of every node lindex_parse builds */
};

/* What a layer knows after a load; everything is owned by the struct. */
struct lindex_content {
	struct tree *tree;
	struct zran_index *zidx;     /* gzip, else NULL */
	struct lindex_frame *frames; /* zstd, else NULL; frames[0].uoff == 0 */
	size_t nframes;
	uint64_t usize; /* uncompressed size */
	/* SHA-256 of each block of the blob (cblocks.len == the blob's size),
	 * and for a zstd layer whose decompressed copy was written, of each
	 * block of that copy (ublocks.len == usize; else ublocks.n == 0). */
	struct blocksums cblocks, ublocks;
};

/* Append the encoding of one tar entry to `ents`. 0 or -ENOMEM. */
int lindex_entry_encode(struct buf *ents, const struct tar_entry *e);

/*
 * The index file for key `k`: `nents` entries encoded in `ents`, and c's
 * zidx (gzip) or frames (zstd), usize and block sums (c->tree is not used),
 * appended to `out`. 0, -EINVAL (c->cblocks do not cover k->csize bytes),
 * or -ENOMEM.
 */
int lindex_build(const struct lindex_key *k, const struct lindex_content *c,
		 const struct buf *ents, uint64_t nents, struct buf *out);

/*
 * Decode index file bytes `data`/`len` written for `k` into *o (every field
 * set; caller releases with lindex_content_release). -EBADMSG with *why set
 * to a short static reason ("checksum mismatch", "bad entry", ...) for
 * anything wrong; -ENOMEM. On failure *o is empty.
 */
int lindex_parse(const struct lindex_key *k, const void *data, size_t len,
		 struct lindex_content *o, const char **why);

/* Free what *c holds and zero it. */
void lindex_content_release(struct lindex_content *c);

/*
 * The rootfs file: a merged tree (tree_merge of an image's layers), saved
 * so that a later mount shows the image's rootfs without loading its layers
 * or merging them again (image/image.c). `key` names the layer list it was
 * merged from (the image's rootfs key) and `nlayers` its length: every
 * node's layer is below it.
 *
 * lindex_rootfs_build appends the file for tree `t` to `out`: 0, -ENOTSUP
 * (tree_saveable says no: nothing appended) or -ENOMEM.
 * lindex_rootfs_parse rebuilds the tree (*out, caller frees; NULL on
 * failure) with the same node ids, names, attributes and readdir cookies,
 * treating the bytes as untrusted like lindex_parse: -EBADMSG with *why for
 * anything wrong (another key or layer count, a bad tree, a checksum
 * mismatch), -ENOMEM, -E2BIG.
 */
int lindex_rootfs_build(const struct digest *key, size_t nlayers, const struct tree *t,
			struct buf *out);
int lindex_rootfs_parse(const struct digest *key, size_t nlayers, const void *data,
			size_t len, struct tree **out, const char **why);

#endif
