/*
 * view — what a tag or digest directory shows: the manifest behind it, as an
 * image (struct image: manifest, config, layers, rootfs) or as an index (its
 * platforms), resolved lazily and kept per mount.
 *
 * Resolution: a tag is turned into a manifest with one GET of
 * /v2/<repo>/manifests/<tag>; the answer (tag -> digest) is cached for the
 * mount's TTL in a dcache (single-flight: concurrent lookups of one tag send
 * one request; "no such tag" is cached too). A digest is resolved with a GET
 * by digest, verified against it. Either way the manifest becomes a view
 * object keyed by (repository, digest); objects are immutable, built once
 * (concurrent builders: the first one inserted wins, the others are dropped
 * before anything of theirs was fetched) and kept until views_free. The
 * trees of the layers looked at stay in memory until views_free, or, under
 * a memory budget (views_set_budget), until they are the least recently
 * used and the budget is exceeded (image/budget.h).
 *
 * Index platforms are named "<os>-<architecture>[-<variant>]"; an entry whose
 * os and architecture are both "unknown" (attestations) is skipped; one
 * without a platform is named by its digest; a name seen twice gets
 * "-<first 12 hex digits of its digest>" appended.
 *
 * Referrers (views_referrers): the list of a subject's referrers is asked
 * of the referrers API, and of the tag schema when the registry answers the
 * API with 404 (registry/referrers.h); from then on the views ask the tag
 * schema directly (a registry with the API never answers 404 for it). Lists
 * are cached for the mount's TTL like tag resolutions (a dcache keyed
 * "repo@sha256:<hex>": single-flight; new referrers are pushed at any time,
 * so they are not kept longer).
 *
 * Thread-safe; views_tag / views_digest / views_referrers block on the
 * registry (no lock is held while they do).
 */
#ifndef ACRFS_VIEW_H
#define ACRFS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

struct views;
struct vobj;
struct image;
struct pcache;
struct registry;

struct manifest;
struct referrers;
struct dlist;

/* Where manifests come from: registry_manifest_get, or a test's fake. The
 * function has registry_manifest_get's contract (a digest ref is verified). */
struct view_source {
	int (*manifest)(void *ctx, const char *repo, const char *ref, struct manifest **out);
	void *ctx;
};

/* Where referrer lists come from (views_set_referrers_source): the function
 * fills the referrers of `subject` in `repo` with the contract of
 * registry_referrers_tag (0 and an empty list when there are none). */
typedef int (*view_referrers_fn)(void *ctx, const char *repo, const struct digest *subject,
				 struct referrers *out);

/*
 * Views over registry `r` (image objects read their blobs through it).
 * `src` NULL: manifests from registry_manifest_get on `r`; else copied, its
 * ctx must outlive the views. `r` and `pc` (may be NULL) must outlive the
 * views. 0 or -ENOMEM.
 */
int views_new(struct views **out, struct registry *r, const struct view_source *src,
	      struct pcache *pc, unsigned ttl_s);
void views_free(struct views *v); /* NULL is fine */

/* Put every image built from now on under memory budget `b`
 * (image_set_budget; `b` must outlive the views), and the tag resolutions
 * and referrer lists cached (each a unit evicted when least recently used,
 * fetched again at its next use: fs/dcache.h). Call before the first
 * lookup. */
struct budget;
void views_set_budget(struct views *v, struct budget *b);

/* What the cached tag resolutions and referrer lists take now, in bytes. */
uint64_t views_list_bytes(struct views *v);
/*
 * What the view objects take now, in bytes: their manifests, platforms and
 * images (image_memory: not the trees, which count on their own). Under a
 * budget they count as memory that cannot be given back (the objects live
 * until views_free): the more there are, the less room for trees.
 */
uint64_t views_object_bytes(struct views *v);

/*
 * Under a budget, when an image's merged tree or a layer's state is evicted,
 * fn(ctx, root, name) is called with name "rootfs" or "layers" for each view
 * root inode that showed its rootfs/ or layers/ (noted with
 * views_note_root; the last VOBJ_ROOTS of them), on the evicting thread with
 * no lock held: the FUSE edge has the kernel drop that entry, so that it
 * forgets the inodes below it too. Set before the first lookup.
 */
#define VOBJ_ROOTS 8
void views_set_evicted(struct views *v, void (*fn)(void *ctx, uint64_t root, const char *name),
		       void *ctx);
void views_note_root(struct views *v, struct vobj *o, uint64_t root);

/* Take referrer lists from `fn` (a test's fake) instead of the registry
 * (registry_referrers, then registry_referrers_tag after a 404). `ctx` must
 * outlive the views. Call before the first views_referrers. */
void views_set_referrers_source(struct views *v, view_referrers_fn fn, void *ctx);

/*
 * The object `tag` of `repo` names now (*out borrowed until views_free).
 * 0, -ENOENT (no such tag), -EACCES, -ENOTSUP (not an image or index:
 * schema 1, artifacts), -EIO (unparseable, digest mismatch), transport
 * errors. Blocks.
 */
int views_tag(struct views *v, const char *repo, const char *tag, struct vobj **out);
/* The object of digest `d` in `repo` (fetched and verified on first use). */
int views_digest(struct views *v, const char *repo, const struct digest *d,
		 struct vobj **out);
/*
 * The referrers of the object with digest `subject` in `repo`, in the
 * registry's order, each digest once (the first time it is listed): from
 * the cache when fresher than the TTL, else fetched (see above). On 0,
 * *list is borrowed until dlist_put(*hold). -EACCES and the source's other
 * errors (-EIO: an unparseable answer, logged); nothing is returned then.
 * Blocks.
 */
int views_referrers(struct views *v, const char *repo, const struct digest *subject,
		    struct dlist **hold, const struct referrers **list);
/* Forget what `tag` of `repo` resolved to (after the tag changed). */
void views_invalidate_tag(struct views *v, const char *repo, const char *tag);

/*
 * How many view objects are images, and how many of their layers are
 * loaded (trees in memory), for .acrfs/status. Takes the views' lock, then
 * each layer's (a leaf); no I/O.
 */
void views_count(struct views *v, size_t *images, size_t *layers_loaded);

/* Reading an object: every pointer is borrowed until views_free. */
bool vobj_is_index(const struct vobj *o);
const struct digest *vobj_digest(const struct vobj *o);
const char *vobj_digest_str(const struct vobj *o); /* "sha256:<hex>" */
const char *vobj_media_type(const struct vobj *o);
void vobj_bytes(const struct vobj *o, const void **bytes, size_t *len);
struct image *vobj_image(const struct vobj *o); /* NULL for an index */
/* Index platforms (0 for an image). */
size_t vobj_nplatforms(const struct vobj *o);
const char *vobj_platform_name(const struct vobj *o, size_t i);
const struct digest *vobj_platform_digest(const struct vobj *o, size_t i);
/* Index of the platform called `name`, or -1. */
long vobj_platform_find(const struct vobj *o, const char *name);

#endif
