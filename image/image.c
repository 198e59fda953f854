/*
 * image — one image and the image cache. Design note.
 *
 * An image owns one struct layer per distinct layer blob (digest, media type
 * and size): a manifest may list one blob many times, and each copy would
 * cost a tree, a load and memory. layers[i] is the object for position i;
 * positions listing the same blob share the object of the first of them,
 * whose index i0 the tree carries as attr.layer (layers[i0] is that object,
 * so a rootfs read still finds its layer). `owned` lists each object once.
 * The merge applies every position in order (a blob listed again above
 * others is applied again), except that a position repeating the one just
 * below it is skipped: applying a layer twice in a row changes nothing. The
 * config and the rootfs are filled single-flight: state NONE → LOADING (one
 * thread works without the lock) → DONE; a failure goes back to NONE with
 * the error kept for the waiters, so the next call retries (layers remember
 * their own failures for LAYER_RETRY_SEC, which keeps retries cheap).
 *
 * Locks. img->lock (leaf) guards cfg_state, cfg_err, root_state, root_err
 * and the published cfg / rootfs pointers (immutable once DONE). The
 * reference count of an image in a cache is guarded by the cache's lock
 * (c->lock), so that a lookup can revive an idle image without racing with
 * its release; an image outside a cache uses img->lock for it. Lock order:
 * c->lock before img->lock (never the other way round).
 *
 * Memory: per image the manifest bytes, the config (≤ 16 MiB, once asked
 * for), the layer trees and indexes, and the merged tree (a copy of the
 * visible nodes). The cache keeps at most max_idle unreferenced images.
 * Under a memory budget (image_set_budget) the merged tree is a unit of its
 * own: evicted (DONE → NONE, the tree handed to common/reclaim) when least
 * recently used, merged again at the next image_rootfs. A merge pins its
 * layers (layer_pin), so they stay loaded while it reads them; the merge
 * is deterministic, so a tree merged again has the same node ids.
 *
 * The rootfs file (image/lindex.h): a merge saves its tree in the cache
 * directory, named by rootfs_key_of the layer list, and image_rootfs reads
 * it before loading any layer. The restored tree has the merge's node ids
 * and readdir cookies, so it can stand in for a merge at any time, after an
 * eviction too. Its layers load when a file is read (image_pread pins the
 * layer, which loads it) or when layers/<i> is opened. The file is encoded
 * in the merging thread before the tree is published (a few milliseconds
 * on a load that took the layers' whole inflate) and written to disk in
 * the background (pcache_rootfs_store_async).
 *
 * One layer: the common shape of an application image is a single fat
 * layer, where the merge would copy every node of the layer's tree. When
 * that tree holds nothing a merge changes (tree_is_plain: no whiteouts, no
 * links to lower layers), image_rootfs returns the layer's tree itself, on
 * the layer's own load, pin-free read side and budget unit: half the
 * memory and no merge. Whether it is plain is decided at the first load and
 * kept (`plain`): the layer's bytes are content-addressed, so every load of
 * it builds the same tree, with the same node ids. That tree is saved as the
 * image's rootfs file too: before the layer is loaded, image_rootfs reads
 * the file (280 KB against a 3.9 MB index file for a 1 GB layer of 5,850
 * entries, whose zran access points a listing does not need: 3.2 ms against
 * 11.6 ms, KIND=single bench/remount.sh) and keeps the restored tree, with
 * the same ids, until it is evicted.
 */
#include "image/image.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/memsize.h"
#include "common/reclaim.h"
#include "image/budget.h"
#include "image/lindex.h"

enum fill { F_NONE, F_LOADING, F_DONE };

/* An image of one layer: is that layer's tree its rootfs? */
enum plain { PLAIN_UNKNOWN, PLAIN_YES, PLAIN_NO };

struct image {
	struct digest digest;
	char *media_type;
	void *bytes;
	size_t len;
	struct image_blob config;
	struct layer **layers;   /* per manifest position; borrowed from owned */
	size_t nlayers;
	struct layer **owned;    /* the distinct layers, each once */
	size_t nowned;
	struct blob_source src;
	void (*src_release)(void *ctx);
	struct pcache *pc;	  /* NULL: no rootfs file */
	struct digest rootfs_key; /* its name: rootfs_key_of the layer list */
	uint64_t st_rfs_load, st_rfs_rej; /* atomic: rootfs files read, rejected */

	struct imgcache *cache; /* NULL if not in a cache */
	unsigned refs;          /* c->lock if cached, else lock */
	uint64_t idle_tick;     /* c->lock; 0 while referenced */

	pthread_mutex_t lock; /* leaf; guards the fields below */
	pthread_cond_t cond;
	enum fill cfg_state, root_state;
	int cfg_err, root_err;
	struct buf cfg;
	struct tree *rootfs;
	struct budget_unit bu; /* the rootfs's bytes */
	void (*evicted)(void *ctx, bool rootfs); /* image_set_evict_hook; set before use */
	int plain; /* atomic: enum plain (one layer only) */
	void *evicted_ctx;
};

/* A merged tree evicted, freed by the reclaimer. */
struct retired_tree {
	struct reclaim_node rn;
	struct tree *t;
};

struct imgcache {
	struct pcache *pc;
	uint32_t span;
	size_t max_idle;

	pthread_mutex_t lock; /* before any img->lock; guards the fields below */
	struct image **v;
	size_t n, cap;
	uint64_t tick;
};

static void image_destroy(struct image *img)
{
	size_t i;

	if (!img)
		return;
	budget_uncharge(&img->bu);
	for (i = 0; img->owned && i < img->nowned; i++)
		layer_free(img->owned[i]);
	free(img->owned);
	free(img->layers);
	tree_free(img->rootfs);
	buf_release(&img->cfg);
	if (img->src_release)
		img->src_release(img->src.ctx);
	free(img->media_type);
	free((char *)img->config.media_type);
	free(img->bytes);
	pthread_cond_destroy(&img->cond);
	pthread_mutex_destroy(&img->lock);
	free(img);
}

/* The first position j <= i listing the same blob as position i. O(i):
 * manifests hold at most a few thousand layers. */
static size_t same_blob(const struct image_desc *d, size_t i)
{
	const struct image_blob *b = &d->layers[i];
	size_t j;

	for (j = 0; j < i; j++) {
		const struct image_blob *c = &d->layers[j];

		if (digest_equal(&c->digest, &b->digest) && c->size == b->size &&
		    !strcmp(c->media_type ? c->media_type : "", b->media_type ? b->media_type : ""))
			return j;
	}
	return i;
}

/*
 * What the merged tree is made of: every position's blob (digest, size and
 * media type, as same_blob tells them apart), in order. Two images with the
 * same layers share a rootfs file.
 */
static int rootfs_key_of(const struct image_desc *d, struct digest *out)
{
	struct buf b = BUF_INIT;
	int rc = buf_adds(&b, "acrfs rootfs\n");

	for (size_t i = 0; !rc && i < d->nlayers; i++) {
		const struct image_blob *l = &d->layers[i];

		rc = buf_add(&b, l->digest.raw, DIGEST_RAW_LEN);
		if (!rc)
			rc = buf_addf(&b, " %llu %s\n", (unsigned long long)l->size,
				      l->media_type ? l->media_type : "");
	}
	if (!rc)
		rc = digest_of_buf(out, b.data, b.len);
	buf_release(&b);
	return rc;
}

int image_new_src(struct image **out, const struct blob_source *src,
		  void (*src_release)(void *ctx), const struct image_desc *d, struct pcache *pc,
		  uint32_t span)
{
	struct image *img;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (!src || !d || (d->nlayers && !d->layers)) {
		if (src && src_release)
			src_release(src->ctx);
		return -EINVAL;
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		if (src_release)
			src_release(src->ctx);
		return -ENOMEM;
	}
	pthread_mutex_init(&img->lock, NULL);
	pthread_cond_init(&img->cond, NULL);
	img->src = *src;
	img->src_release = src_release;
	img->refs = 1;
	img->digest = d->digest;
	img->media_type = strdup(d->media_type ? d->media_type : "");
	img->bytes = malloc(d->len ? d->len : 1);
	img->config = d->config;
	img->config.media_type = strdup(d->config.media_type ? d->config.media_type : "");
	img->layers = calloc(d->nlayers ? d->nlayers : 1, sizeof(*img->layers));
	img->owned = calloc(d->nlayers ? d->nlayers : 1, sizeof(*img->owned));
	if (!img->media_type || !img->bytes || !img->config.media_type || !img->layers ||
	    !img->owned) {
		rc = -ENOMEM;
		goto fail;
	}
	if (d->len)
		memcpy(img->bytes, d->bytes, d->len);
	img->len = d->len;
	img->pc = pc;
	rc = rootfs_key_of(d, &img->rootfs_key);
	if (rc)
		goto fail;
	img->nlayers = d->nlayers;
	for (i = 0; i < d->nlayers; i++) {
		size_t j = same_blob(d, i);

		if (j < i) {
			img->layers[i] = img->layers[j];
			continue;
		}
		rc = layer_new_src(&img->owned[img->nowned], src, d->layers[i].media_type,
				   &d->layers[i].digest, d->layers[i].size, (unsigned)i, pc, span);
		if (rc)
			goto fail;
		img->layers[i] = img->owned[img->nowned++];
	}
	*out = img;
	return 0;
fail:
	image_destroy(img);
	return rc;
}

size_t image_memory(const struct image *img)
{
	size_t n = mem_size(img) + mem_size(img->media_type) + mem_size(img->bytes) +
		   mem_size(img->config.media_type) + mem_size(img->layers) + mem_size(img->owned);

	for (size_t i = 0; i < img->nowned; i++)
		n += layer_memory(img->owned[i]);
	return n;
}

const struct digest *image_digest(const struct image *img)
{
	return &img->digest;
}

const char *image_media_type(const struct image *img)
{
	return img->media_type;
}

void image_manifest(const struct image *img, const void **bytes, size_t *len)
{
	*bytes = img->bytes;
	*len = img->len;
}

const struct image_blob *image_config_blob(const struct image *img)
{
	return &img->config;
}

size_t image_nlayers(const struct image *img)
{
	return img->nlayers;
}

struct layer *image_layer(const struct image *img, size_t i)
{
	return i < img->nlayers ? img->layers[i] : NULL;
}

/* ---- single-flight fills ------------------------------------------------- */

/* Wait for the fill at *state. Returns 1 if the caller must do the work
 * (state set to LOADING), 0 when DONE, or the error of the attempt it
 * waited for. Called and returns with img->lock held. */
static int fill_begin(struct image *img, enum fill *state, const int *err)
{
	bool waited = false;

	while (*state == F_LOADING) {
		pthread_cond_wait(&img->cond, &img->lock);
		waited = true;
	}
	if (*state == F_DONE)
		return 0;
	if (waited && *err)
		return *err;
	*state = F_LOADING;
	return 1;
}

int image_config(struct image *img, const struct buf **out)
{
	struct buf b = BUF_INIT;
	char ds[DIGEST_STR_SIZE];
	int rc;

	*out = NULL;
	pthread_mutex_lock(&img->lock);
	rc = fill_begin(img, &img->cfg_state, &img->cfg_err);
	if (rc <= 0) {
		if (rc == 0)
			*out = &img->cfg;
		pthread_mutex_unlock(&img->lock);
		return rc;
	}
	pthread_mutex_unlock(&img->lock);

	if (img->config.size > IMAGE_CONFIG_MAX) {
		log_error("image %s: config %s is %llu bytes, more than the %u allowed",
			  digest_format(&img->digest, ds), img->config.media_type,
			  (unsigned long long)img->config.size, IMAGE_CONFIG_MAX);
		rc = -EFBIG;
	} else if (!img->src.get) {
		rc = -ENOTSUP;
	} else {
		rc = img->src.get(img->src.ctx, &img->config.digest, IMAGE_CONFIG_MAX, &b);
		if (!rc && b.len != img->config.size) {
			log_error("image %s: config is %zu bytes, the manifest says %llu",
				  digest_format(&img->digest, ds), b.len,
				  (unsigned long long)img->config.size);
			rc = -EIO;
		}
		if (rc && rc != -ENOMEM && rc != -EFBIG)
			rc = -EIO;
	}

	pthread_mutex_lock(&img->lock);
	if (rc) {
		buf_release(&b);
		img->cfg_state = F_NONE;
		img->cfg_err = rc;
	} else {
		img->cfg = b;
		img->cfg_state = F_DONE;
		*out = &img->cfg;
	}
	pthread_cond_broadcast(&img->cond);
	pthread_mutex_unlock(&img->lock);
	return rc;
}

struct loader {
	struct image *img;
	size_t next; /* atomic: the next layer to load */
	int err;     /* atomic: the first error */
};

static void *load_worker(void *arg)
{
	struct loader *ld = arg;
	size_t i;

	while ((i = __atomic_fetch_add(&ld->next, 1, __ATOMIC_RELAXED)) < ld->img->nowned) {
		int rc = layer_load(ld->img->owned[i]);
		int zero = 0;

		if (rc)
			__atomic_compare_exchange_n(&ld->err, &zero, rc, false, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
	}
	return NULL;
}

static int load_layers(struct image *img)
{
	struct loader ld = { img, 0, 0 };
	pthread_t th[IMAGE_LOAD_THREADS];
	size_t n = img->nowned, started = 0, i;

	if (n > IMAGE_LOAD_THREADS)
		n = IMAGE_LOAD_THREADS;
	/* The calling thread works too; extra threads only for the rest. */
	for (i = 1; i < n; i++)
		if (pthread_create(&th[started], NULL, load_worker, &ld) == 0)
			started++;
	load_worker(&ld);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return ld.err;
}

/* Log why the rootfs is unavailable; the error for the caller. */
static int rootfs_failed(const struct image *img, int rc)
{
	char ds[DIGEST_STR_SIZE];

	log_error("image %s: rootfs unavailable: %s", digest_format(&img->digest, ds),
		  strerror(-rc));
	return rc == -ENOMEM ? rc : -EIO; /* a bound exceeded (-E2BIG) is logged by tree */
}

/* An image of one plain layer: its tree, loaded (again) if need be. 1 when
 * *out is the rootfs, 0 when the image needs a merge, or -errno. */
static int rootfs_shared(struct image *img, const struct tree **out)
{
	const struct tree *t;
	int plain = __atomic_load_n(&img->plain, __ATOMIC_RELAXED), rc;

	if (img->nlayers != 1 || plain == PLAIN_NO)
		return 0;
	rc = layer_get_tree(img->layers[0], &t);
	if (rc)
		return rootfs_failed(img, rc);
	if (plain == PLAIN_UNKNOWN) {
		plain = tree_is_plain(t) ? PLAIN_YES : PLAIN_NO;
		__atomic_store_n(&img->plain, plain, __ATOMIC_RELAXED);
	}
	if (plain == PLAIN_NO)
		return 0;
	*out = t;
	return 1;
}

/* Load every layer and merge their trees into *out. */
static int merge_layers(struct image *img, struct tree **out)
{
	struct tree **trees = NULL;
	size_t i, n = 0, pinned = 0;
	int rc;

	*out = NULL;
	rc = load_layers(img);
	if (!rc) {
		trees = calloc(img->nlayers ? img->nlayers : 1, sizeof(*trees));
		if (!trees)
			rc = -ENOMEM;
	}
	/* Pinned: a budget may evict a layer the moment it is loaded. */
	for (i = 0; !rc && i < img->nowned; i++) {
		rc = layer_pin(img->owned[i]);
		if (!rc)
			pinned++;
	}
	for (i = 0; !rc && i < img->nlayers; i++) {
		if (i && img->layers[i] == img->layers[i - 1])
			continue; /* the same layer again: nothing changes */
		trees[n] = layer_tree(img->layers[i]);
		if (!trees[n++])
			rc = -EIO;
	}
	if (!rc)
		rc = tree_merge(out, trees, n);
	for (i = 0; i < pinned; i++)
		layer_unpin(img->owned[i]);
	free(trees);
	return rc;
}

/*
 * The merged tree from the rootfs file a merge of the same layers wrote: no
 * layer is loaded (a read loads its layer). 0, -ENOENT (none, or invalid:
 * logged and removed), -ENOMEM.
 */
static int rootfs_from_file(struct image *img, struct tree **out)
{
	struct buf file = BUF_INIT;
	char ds[DIGEST_STR_SIZE];
	const char *why = "unreadable";
	int rc;

	*out = NULL;
	if (!img->pc)
		return -ENOENT;
	rc = pcache_rootfs_load(img->pc, &img->rootfs_key, &file);
	if (rc == -ENOENT)
		goto out;
	if (!rc)
		rc = lindex_rootfs_parse(&img->rootfs_key, img->nlayers, file.data, file.len, out,
					 &why);
	if (rc && rc != -ENOMEM) {
		log_warn("image %s: rootfs file in %s is invalid (%s); merging the layers again",
			 digest_format(&img->digest, ds), pcache_dir(img->pc), why);
		__atomic_add_fetch(&img->st_rfs_rej, 1, __ATOMIC_RELAXED);
		(void)pcache_rootfs_remove(img->pc, &img->rootfs_key);
		rc = -ENOENT;
	}
	if (!rc)
		__atomic_add_fetch(&img->st_rfs_load, 1, __ATOMIC_RELAXED);
out:
	buf_release(&file);
	return rc;
}

/* Save merged tree `t` as the rootfs file of the image's layers. Failures
 * are logged (pcache) and change nothing else. */
static void rootfs_to_file(struct image *img, const struct tree *t)
{
	struct buf file = BUF_INIT;
	char ds[DIGEST_STR_SIZE];
	int rc;

	if (!img->pc)
		return;
	rc = lindex_rootfs_build(&img->rootfs_key, img->nlayers, t, &file);
	if (!rc) /* the disk's part in the background */
		(void)pcache_rootfs_store_async(img->pc, &img->rootfs_key, &file);
	else
		log_info("image %s: rootfs not saved: %s", digest_format(&img->digest, ds),
			 strerror(-rc));
	buf_release(&file);
}

/* An image of one layer that may be plain. */
static bool one_layer(struct image *img)
{
	return img->nlayers == 1 && __atomic_load_n(&img->plain, __ATOMIC_RELAXED) != PLAIN_NO;
}

/* Does the image hold a rootfs tree of its own (merged or restored)? */
static bool rootfs_held(struct image *img)
{
	bool held;

	pthread_mutex_lock(&img->lock);
	held = img->root_state == F_DONE;
	pthread_mutex_unlock(&img->lock);
	return held;
}

int image_rootfs(struct image *img, const struct tree **out)
{
	struct tree *merged = NULL;
	int rc;

	*out = NULL;
	/* One plain layer: a tree restored from the rootfs file is kept while
	 * the image holds it; else the layer's own tree once it is loaded;
	 * before that, the rootfs file (a remount lists without loading the
	 * layer's index file, whose access points it does not need), else the
	 * layer, loaded (below). */
	if (one_layer(img) && (!img->pc || layer_tree(img->layers[0])) && !rootfs_held(img)) {
		rc = rootfs_shared(img, out);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	pthread_mutex_lock(&img->lock);
	rc = fill_begin(img, &img->root_state, &img->root_err);
	if (rc <= 0) {
		if (rc == 0)
			*out = img->rootfs;
		pthread_mutex_unlock(&img->lock);
		if (rc == 0)
			budget_touch(&img->bu);
		return rc;
	}
	pthread_mutex_unlock(&img->lock);

	rc = rootfs_from_file(img, &merged);
	if (rc == -ENOENT && one_layer(img)) {
		/* No file: share the layer's tree, and save it for the next mount. */
		pthread_mutex_lock(&img->lock);
		img->root_state = F_NONE;
		img->root_err = 0;
		pthread_cond_broadcast(&img->cond);
		pthread_mutex_unlock(&img->lock);
		rc = rootfs_shared(img, out);
		if (rc > 0)
			rootfs_to_file(img, *out);
		if (rc)
			return rc < 0 ? rc : 0;
		return image_rootfs(img, out); /* not plain after all: merged */
	}
	if (rc == -ENOENT) {
		rc = merge_layers(img, &merged);
		if (!rc)
			rootfs_to_file(img, merged);
	}
	if (rc)
		rc = rootfs_failed(img, rc);

	pthread_mutex_lock(&img->lock);
	if (rc) {
		img->root_state = F_NONE;
		img->root_err = rc;
	} else {
		img->rootfs = merged;
		img->root_state = F_DONE;
		*out = merged;
	}
	pthread_cond_broadcast(&img->cond);
	pthread_mutex_unlock(&img->lock);
	if (!rc)
		budget_charge(&img->bu, tree_memory(merged));
	return rc;
}

static void retired_tree_free(struct reclaim_node *rn)
{
	struct retired_tree *r = (struct retired_tree *)rn; /* rn is the first member */

	tree_free(r->t);
	free(r);
}

/* The budget's evict function for the merged tree (image/budget.h). */
static int rootfs_evict(struct budget_unit *u)
{
	struct image *img = (struct image *)((char *)u - offsetof(struct image, bu));
	struct retired_tree *r = malloc(sizeof(*r));

	if (!r)
		return -EBUSY;
	pthread_mutex_lock(&img->lock);
	if (img->root_state != F_DONE) {
		pthread_mutex_unlock(&img->lock);
		free(r);
		return 0; /* nothing held: NONE (a merge in progress charges anew) */
	}
	r->t = img->rootfs;
	img->rootfs = NULL;
	img->root_state = F_NONE;
	img->root_err = 0;
	pthread_mutex_unlock(&img->lock);
	reclaim_retire(&r->rn, retired_tree_free);
	if (img->evicted)
		img->evicted(img->evicted_ctx, true);
	return 0;
}

/* A layer's hook (layer_set_evict_hook): the image's. */
static void layer_evicted(void *ctx)
{
	struct image *img = ctx;

	if (!img->evicted)
		return;
	if (img->nlayers == 1 && __atomic_load_n(&img->plain, __ATOMIC_RELAXED) == PLAIN_YES)
		img->evicted(img->evicted_ctx, true); /* the rootfs was that tree */
	img->evicted(img->evicted_ctx, false);
}

void image_set_evict_hook(struct image *img, void (*fn)(void *ctx, bool rootfs), void *ctx)
{
	size_t i;

	img->evicted = fn;
	img->evicted_ctx = ctx;
	for (i = 0; i < img->nowned; i++)
		layer_set_evict_hook(img->owned[i], layer_evicted, img);
}

void image_set_budget(struct image *img, struct budget *b)
{
	size_t i;

	budget_unit_init(&img->bu, b, rootfs_evict);
	for (i = 0; i < img->nowned; i++)
		layer_set_budget(img->owned[i], b);
}

void image_rootfs_stats(const struct image *img, uint64_t *loaded, uint64_t *rejected)
{
	*loaded = __atomic_load_n(&img->st_rfs_load, __ATOMIC_RELAXED);
	*rejected = __atomic_load_n(&img->st_rfs_rej, __ATOMIC_RELAXED);
}

ssize_t image_pread(struct image *img, const struct tree_attr *a, void *buf, size_t len,
		    uint64_t off)
{
	if (!a || a->layer >= img->nlayers)
		return -EINVAL;
	return layer_pread(img->layers[a->layer], a, buf, len, off);
}

/* ---- references and the cache -------------------------------------------- */

static pthread_mutex_t *ref_lock(struct image *img)
{
	return img->cache ? &img->cache->lock : &img->lock;
}

struct image *image_ref(struct image *img)
{
	pthread_mutex_t *m;

	if (!img)
		return NULL;
	m = ref_lock(img);
	pthread_mutex_lock(m);
	img->refs++;
	img->idle_tick = 0;
	pthread_mutex_unlock(m);
	return img;
}

/* c->lock held: drop idle images beyond max_idle, oldest first; returns
 * them through a list to be destroyed after unlocking. */
static void trim(struct imgcache *c, struct image ***drop, size_t *ndrop)
{
	for (;;) {
		size_t idle = 0, oldest = SIZE_MAX, i;

		for (i = 0; i < c->n; i++)
			if (c->v[i]->refs == 0) {
				idle++;
				if (oldest == SIZE_MAX || c->v[i]->idle_tick < c->v[oldest]->idle_tick)
					oldest = i;
			}
		if (idle <= c->max_idle)
			return;
		(*drop)[(*ndrop)++] = c->v[oldest];
		c->v[oldest]->cache = NULL;
		c->v[oldest] = c->v[--c->n];
	}
}

void image_unref(struct image *img)
{
	struct imgcache *c;
	struct image **drop;
	size_t ndrop = 0, i;
	bool last;

	if (!img)
		return;
	/* img->cache only changes under c->lock; a cached image stays cached
	 * while we hold a reference, so reading it first is safe. */
	c = img->cache;
	if (!c) {
		pthread_mutex_lock(&img->lock);
		last = --img->refs == 0;
		pthread_mutex_unlock(&img->lock);
		if (last)
			image_destroy(img);
		return;
	}
	pthread_mutex_lock(&c->lock);
	drop = malloc((c->n + 1) * sizeof(*drop));
	if (--img->refs == 0) {
		img->idle_tick = ++c->tick;
		if (drop)
			trim(c, &drop, &ndrop);
	}
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < ndrop; i++)
		image_destroy(drop[i]);
	free(drop);
}

int imgcache_new(struct imgcache **out, struct pcache *pc, uint32_t span, size_t max_idle)
{
	struct imgcache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->pc = pc;
	c->span = span;
	c->max_idle = max_idle;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void imgcache_free(struct imgcache *c)
{
	size_t i;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->n; i++) {
		struct image *img = c->v[i];

		img->cache = NULL;
		if (img->refs == 0)
			image_destroy(img);
		/* else: it lives on until its last image_unref */
	}
	c->n = 0;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	free(c->v);
	free(c);
}

int imgcache_get_src(struct imgcache *c, const struct blob_source *src,
		     void (*src_release)(void *ctx), const struct image_desc *d,
		     struct image **out)
{
	struct image *img = NULL;
	size_t i;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->n; i++)
		if (digest_equal(&c->v[i]->digest, &d->digest)) {
			img = c->v[i];
			img->refs++;
			img->idle_tick = 0;
			break;
		}
	pthread_mutex_unlock(&c->lock);
	if (img) {
		if (src_release)
			src_release(src->ctx);
		*out = img;
		return 0;
	}
	/* Build outside the lock (it allocates only; nothing is fetched). */
	rc = image_new_src(&img, src, src_release, d, c->pc, c->span);
	if (rc)
		return rc;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->n; i++)
		if (digest_equal(&c->v[i]->digest, &d->digest))
			break;
	if (i < c->n) {
		/* Another thread inserted it meanwhile: use that one. */
		struct image *mine = img;

		img = c->v[i];
		img->refs++;
		img->idle_tick = 0;
		pthread_mutex_unlock(&c->lock);
		image_destroy(mine);
		*out = img;
		return 0;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		struct image **v = realloc(c->v, cap * sizeof(*v));

		if (!v) {
			pthread_mutex_unlock(&c->lock);
			image_destroy(img);
			return -ENOMEM;
		}
		c->v = v;
		c->cap = cap;
	}
	img->cache = c;
	c->v[c->n++] = img;
	pthread_mutex_unlock(&c->lock);
	*out = img;
	return 0;
}

size_t imgcache_count(struct imgcache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	return n;
}
