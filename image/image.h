/*
 * image — one image (a manifest of kind "image"): its manifest bytes, its
 * config blob fetched on demand, its layers, and the merged rootfs; plus a
 * cache of images keyed by manifest digest, so an image reached by two tags
 * (or by tag and by digest) is built once.
 *
 * Everything is lazy: image_new fetches nothing; image_config fetches the
 * config once (single-flight, digest verified by the source, at most
 * IMAGE_CONFIG_MAX bytes); image_rootfs loads every layer (in parallel, up
 * to IMAGE_LOAD_THREADS at a time, each layer single-flight) and merges their
 * trees with OCI whiteouts (single-flight; the merged tree is kept).
 *
 * With a persistent cache, the merged tree is saved as a rootfs file
 * (image/lindex.h, named by a key of the layer list: digests, sizes and
 * media types in order) and a later image_rootfs of the same layers, in
 * this mount or the next, reads it instead: no layer is loaded until a
 * file is read (image_pread loads its layer). A file that does not decode
 * is logged, removed and replaced by a new merge.
 *
 * One blob listed at several positions of the manifest (same digest, media
 * type and size) is one layer object, loaded once, with one tree: a hostile
 * manifest listing a layer thousands of times costs one tree, not thousands.
 * Every position is still applied in order by the merge.
 *
 * Reading a rootfs file: its attr's `layer` field is the index of the layer
 * holding the data (for a blob listed several times, its first position);
 * image_pread does the dispatch.
 *
 * Thread-safety: every function may be called from any thread. The image's
 * lock guards only the single-flight states; it is never held across I/O.
 * Ownership: pointers returned are borrowed until the image is freed (its
 * last reference dropped).
 */
#ifndef ACRFS_IMAGE_H
#define ACRFS_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "image/layer.h"
#include "image/pcache.h"
#include "image/tree.h"
#include "common/digest.h"

#define IMAGE_CONFIG_MAX (16u << 20)
#define IMAGE_LOAD_THREADS 4

struct image;
struct imgcache;

/* A blob as a manifest describes it. Strings are borrowed by the callee
 * only for the duration of the call (everything is copied). */
struct image_blob {
	const char *media_type;
	struct digest digest;
	uint64_t size;
};

/* What an image is made of, independent of how the manifest was parsed. */
struct image_desc {
	struct digest digest;     /* of the manifest */
	const char *media_type;   /* of the manifest */
	const void *bytes;        /* the manifest's exact bytes */
	size_t len;
	struct image_blob config;
	const struct image_blob *layers; /* manifest order, 0 = bottom */
	size_t nlayers;
};

/*
 * *out = an image with one reference, reading blobs through `src` (copied;
 * if src_release is not NULL the image owns src->ctx and calls
 * src_release(src->ctx) when freed; else src->ctx must outlive it). `pc`
 * (may be NULL) must outlive it. `span`: zran span for its gzip layers
 * (0 = default). Nothing is fetched. 0, -EINVAL, -ENOMEM; *out = NULL on
 * failure (src->ctx is then released too, if owned).
 */
int image_new_src(struct image **out, const struct blob_source *src,
		  void (*src_release)(void *ctx), const struct image_desc *d, struct pcache *pc,
		  uint32_t span);

/* References. image_unref frees the image with its last reference. NULL is
 * fine for both. */
struct image *image_ref(struct image *img);
void image_unref(struct image *img);

/*
 * The image's own memory: the struct, the manifest's bytes and the layer
 * objects (layer_memory); not the config (fetched on demand), nor the
 * loaded states and the merged tree, which a budget counts on their own
 * (image_set_budget). Constant over the image's life.
 */
size_t image_memory(const struct image *img);

const struct digest *image_digest(const struct image *img);
const char *image_media_type(const struct image *img);
/* The manifest's exact bytes. */
void image_manifest(const struct image *img, const void **bytes, size_t *len);
const struct image_blob *image_config_blob(const struct image *img);

size_t image_nlayers(const struct image *img);
/* Layer i (0 = bottom), or NULL if i is out of range. Not loaded yet unless
 * layer_load or image_rootfs was called. Positions listing the same blob
 * return the same object (its tree's attr.layer is the first position). */
struct layer *image_layer(const struct image *img, size_t i);

/*
 * The config blob's exact bytes (*out borrowed until the image is freed).
 * Fetched on first use, once even under concurrent calls. 0, -EFBIG (larger
 * than IMAGE_CONFIG_MAX), -EIO (fetch or verification failed: retried by the
 * next call), -ENOMEM. Blocks.
 */
int image_config(struct image *img, const struct buf **out);

/*
 * The merged rootfs (*out borrowed until the image is freed, or, under a
 * memory budget, until the caller leaves the reclaim read side it is in
 * (common/reclaim.h); never modify it). Loads the layers that are not
 * loaded yet, in parallel (unless the rootfs file is there); merges again
 * (or reads the file) after an eviction. An image of one
 * layer whose tree needs no merge (tree_is_plain) shows that tree itself:
 * no copy, and its node ids are the layer's. 0, -EIO (a
 * layer failed, see layer_load; or the merged tree would exceed the bounds
 * of tree.h, logged), -ENOMEM. Blocks.
 */
int image_rootfs(struct image *img, const struct tree **out);

/* Rootfs files read (image_rootfs without a merge) and rejected (invalid:
 * merged again), since the image was made. */
void image_rootfs_stats(const struct image *img, uint64_t *loaded, uint64_t *rejected);

/*
 * Put the image's merged tree and its layers' loaded states under memory
 * budget `b` (image/budget.h, layer_set_budget): each is evicted when least
 * recently used and rebuilt at its next use. Call before any load; `b` must
 * outlive the image.
 */
struct budget;
void image_set_budget(struct image *img, struct budget *b);

/* After the budget evicted the merged tree (`rootfs` true) or a layer's
 * loaded state (false; the rootfs too, then a call with true first, when
 * the rootfs is that layer's tree): fn(ctx, rootfs), on the evicting thread, no lock
 * held (fn must not block; the FUSE edge queues kernel invalidations). Set
 * before any load. */
void image_set_evict_hook(struct image *img, void (*fn)(void *ctx, bool rootfs), void *ctx);

/* Read a regular file of the rootfs (or of layer a->layer's own tree). */
ssize_t image_pread(struct image *img, const struct tree_attr *a, void *buf, size_t len,
		    uint64_t off);

/* ---- the image cache ------------------------------------------------------ */

/*
 * *out = a cache of images. Images nobody references are kept, least
 * recently released freed first, up to `max_idle` of them (0: free at once).
 * `pc` and `span` are passed to every image.
 */
int imgcache_new(struct imgcache **out, struct pcache *pc, uint32_t span, size_t max_idle);
/* Frees the idle images; images still referenced stay valid until their
 * last image_unref. NULL is fine. */
void imgcache_free(struct imgcache *c);

/*
 * The image for d->digest with one more reference (caller image_unref's
 * it): the cached one if any — src and d are then ignored and, if
 * src_release is set, src->ctx is released at once — else a new one built
 * by image_new_src. 0 or -errno.
 */
int imgcache_get_src(struct imgcache *c, const struct blob_source *src,
		     void (*src_release)(void *ctx), const struct image_desc *d,
		     struct image **out);

/* Images in the cache (referenced or idle). */
size_t imgcache_count(struct imgcache *c);

#endif
