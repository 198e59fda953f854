/*
 * view — tag / digest -> view objects. See view.h.
 *
 * Design: a dcache maps "repo:tag" to a one-name list holding the digest
 * string (':' occurs in neither a repository nor a tag name); its fetch
 * function GETs the manifest and inserts the object before answering, so a
 * tag costs one request. Objects live in a chained hash table keyed by
 * "repo@sha256:<hex>", guarded by one mutex that is never held across I/O.
 * Referrer lists live in a second dcache keyed "repo@sha256:<hex>" (the
 * subject); its names are the referrers' digests (sorted, for lookups) and
 * its metadata the struct referrers in the registry's order.
 *
 * Memory: both dcaches are under the budget like every cached list. The
 * objects are counted in it as one unit that is never evicted (`unit`,
 * charged with `obj_bytes`): their pointers are handed out without
 * references until views_free, so none can be freed on demand. Their
 * layers' trees and indexes and their merged trees are the images' own
 * units (image_set_budget).
 */
#include "fs/view.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/memsize.h"
#include "common/strvec.h"
#include "fs/dcache.h"
#include "fs/image_reg.h"
#include "image/budget.h"
#include "image/image.h"
#include "registry/manifest.h"
#include "registry/referrers.h"

#define NBUCKETS 4096u

struct vplat {
	char *name;
	struct digest digest;
};

struct vobj {
	char *key; /* "repo@sha256:<hex>" */
	struct vobj *next;
	bool index;
	struct digest digest;
	char digest_str[DIGEST_STR_SIZE];
	char *media_type;
	/* index: its manifest (bytes) and platforms; image: everything is in img */
	struct manifest *m;
	struct vplat *plats;
	size_t nplats;
	struct image *img;
	struct views *views;
	/* View roots (inodes) that showed this image's rootfs/ or layers/:
	 * told when its trees are evicted (views_set_evicted). v->lock. */
	uint64_t roots[VOBJ_ROOTS];
	size_t nroots, next_root;
	uint64_t bytes; /* what it takes (vobj_memory) */
};

struct views {
	struct registry *reg;
	struct view_source src;
	struct pcache *pc;
	struct budget *budget; /* NULL: none */
	void (*evicted)(void *ctx, uint64_t root, const char *name); /* views_set_evicted */
	void *evicted_ctx;
	struct dcache *tags; /* "repo:tag" -> [digest] */
	struct dcache *refs; /* "repo@sha256:<hex>" -> referrer digests + struct referrers */
	bool no_api;	     /* atomic: the registry answered the referrers API with 404 */
	view_referrers_fn refs_fn; /* NULL: registry_refs */
	void *refs_ctx;
	pthread_mutex_t lock; /* guards buckets and obj_bytes */
	uint64_t obj_bytes;	  /* the objects' bytes */
	struct budget_unit unit;  /* charged with obj_bytes, never evicted */
	struct vobj *buckets[NBUCKETS];
};

static size_t hash_str(const char *s)
{
	size_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void vobj_free(struct vobj *o)
{
	size_t i;

	if (!o)
		return;
	for (i = 0; i < o->nplats; i++)
		free(o->plats[i].name);
	free(o->plats);
	manifest_free(o->m);
	image_unref(o->img);
	free(o->media_type);
	free(o->key);
	free(o);
}

static bool plat_taken(const struct vobj *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->nplats; i++)
		if (!strcmp(o->plats[i].name, name))
			return true;
	return false;
}

/* Name the platforms of index `o` (see view.h). 0 or -ENOMEM. */
static int name_platforms(struct vobj *o)
{
	const struct manifest *m = o->m;
	size_t i;

	o->plats = calloc(m->nmanifests ? m->nmanifests : 1, sizeof(*o->plats));
	if (!o->plats)
		return -ENOMEM;
	for (i = 0; i < m->nmanifests; i++) {
		const struct descriptor *d = &m->manifests[i];
		char hex[DIGEST_HEX_LEN + 1], name[DIGEST_STR_SIZE + 160];
		struct vplat *p = &o->plats[o->nplats];

		digest_hex(&d->digest, hex);
		if (d->os && d->architecture && !strcmp(d->os, "unknown") &&
		    !strcmp(d->architecture, "unknown"))
			continue; /* attestation manifests */
		if (d->os && d->architecture)
			snprintf(name, sizeof(name), "%s-%s%s%s", d->os, d->architecture,
				 d->variant ? "-" : "", d->variant ? d->variant : "");
		else
			digest_format(&d->digest, name);
		if (plat_taken(o, name)) {
			size_t len = strlen(name);

			snprintf(name + len, sizeof(name) - len, "-%.12s", hex);
			if (plat_taken(o, name))
				continue; /* the same manifest listed twice */
		}
		p->name = strdup(name);
		if (!p->name)
			return -ENOMEM;
		p->digest = d->digest;
		o->nplats++;
	}
	return 0;
}

/* The image's hook (image_set_evict_hook): tell the roots that showed it. */
static void vobj_evicted(void *ctx, bool rootfs)
{
	struct vobj *o = ctx;
	struct views *v = o->views;
	uint64_t roots[VOBJ_ROOTS];
	size_t n, i;

	pthread_mutex_lock(&v->lock);
	n = o->nroots;
	memcpy(roots, o->roots, n * sizeof(*roots));
	pthread_mutex_unlock(&v->lock);
	for (i = 0; i < n && v->evicted; i++)
		v->evicted(v->evicted_ctx, roots[i], rootfs ? "rootfs" : "layers");
}

/* What a manifest kept by an index object takes. */
static size_t manifest_memory(const struct manifest *m)
{
	size_t n = mem_size(m) + mem_size(m->media_type) + mem_size(m->bytes) +
		   mem_size(m->layers) + mem_size(m->manifests);

	for (size_t i = 0; i < m->nmanifests; i++) {
		const struct descriptor *d = &m->manifests[i];

		n += mem_size(d->media_type) + mem_size(d->os) + mem_size(d->architecture) +
		     mem_size(d->variant) + mem_size(d->urls);
		for (size_t j = 0; j < d->nurls; j++)
			n += mem_size(d->urls[j]);
	}
	return n;
}

/* What object `o` takes (see Memory). */
static uint64_t vobj_memory(const struct vobj *o)
{
	uint64_t n = mem_size(o) + mem_size(o->key) + mem_size(o->media_type) +
		     mem_size(o->plats);

	for (size_t i = 0; i < o->nplats; i++)
		n += mem_size(o->plats[i].name);
	if (o->m)
		n += manifest_memory(o->m);
	if (o->img)
		n += image_memory(o->img);
	return n;
}

/* Build an object from manifest `m` (taken in every case). */
static int vobj_build(struct views *v, const char *repo, struct manifest *m, struct vobj **out)
{
	struct vobj *o = calloc(1, sizeof(*o));
	int rc = -ENOMEM;

	*out = NULL;
	if (!o) {
		manifest_free(m);
		return -ENOMEM;
	}
	o->digest = m->digest;
	digest_format(&m->digest, o->digest_str);
	o->index = m->kind == MANIFEST_INDEX;
	o->media_type = strdup(m->media_type ? m->media_type : "");
	if (asprintf(&o->key, "%s@%s", repo, o->digest_str) < 0)
		o->key = NULL;
	if (!o->media_type || !o->key) {
		manifest_free(m);
		goto fail;
	}
	if (o->index) {
		o->m = m;
		rc = name_platforms(o);
	} else {
		rc = image_new(&o->img, v->reg, repo, m, v->pc); /* takes m */
		if (!rc && v->budget) {
			o->views = v;
			image_set_budget(o->img, v->budget);
			image_set_evict_hook(o->img, vobj_evicted, o);
		}
	}
	if (rc)
		goto fail;
	o->bytes = vobj_memory(o);
	*out = o;
	return 0;
fail:
	vobj_free(o);
	return rc;
}

static struct vobj *find_locked(struct views *v, const char *key)
{
	struct vobj *o;

	for (o = v->buckets[hash_str(key) % NBUCKETS]; o; o = o->next)
		if (!strcmp(o->key, key))
			return o;
	return NULL;
}

/* Insert `o` unless an object with its key exists: then free `o` and give
 * that one. Returns the object to use. Charges the budget (no lock held). */
static struct vobj *insert(struct views *v, struct vobj *o)
{
	struct vobj *have;
	size_t b = hash_str(o->key) % NBUCKETS;

	pthread_mutex_lock(&v->lock);
	have = find_locked(v, o->key);
	if (!have) {
		o->next = v->buckets[b];
		v->buckets[b] = o;
		v->obj_bytes += o->bytes;
		have = o;
		o = NULL;
	}
	pthread_mutex_unlock(&v->lock);
	if (o)
		vobj_free(o);
	else
		budget_follow(&v->unit, &v->lock, &v->obj_bytes);
	return have;
}

static struct vobj *find(struct views *v, const char *repo, const struct digest *d)
{
	char ds[DIGEST_STR_SIZE];
	struct buf key = BUF_INIT;
	struct vobj *o = NULL;

	if (buf_addf(&key, "%s@%s", repo, digest_format(d, ds)))
		return NULL;
	pthread_mutex_lock(&v->lock);
	o = find_locked(v, key.data);
	pthread_mutex_unlock(&v->lock);
	buf_release(&key);
	return o;
}

/* Fetch `ref` of `repo` and insert its object. */
static int fetch_obj(struct views *v, const char *repo, const char *ref, struct vobj **out)
{
	struct manifest *m = NULL;
	struct vobj *o;
	int rc;

	rc = v->src.manifest(v->src.ctx, repo, ref, &m);
	if (rc)
		return rc;
	if (m->kind != MANIFEST_IMAGE && m->kind != MANIFEST_INDEX) {
		manifest_free(m);
		return -ENOTSUP;
	}
	/* Someone may have built it meanwhile (another tag, the digest). */
	o = find(v, repo, &m->digest);
	if (o) {
		manifest_free(m);
		*out = o;
		return 0;
	}
	rc = vobj_build(v, repo, m, &o);
	if (rc) {
		log_error("%s:%s: cannot build its view: %s", repo, ref, strerror(-rc));
		return rc;
	}
	*out = insert(v, o);
	return 0;
}

/* dcache fetch: key "repo:tag" -> [digest string]. */
static int fetch_tag(void *ctx, const char *key, struct strvec *out)
{
	struct views *v = ctx;
	const char *colon = strchr(key, ':');
	struct vobj *o;
	char *repo;
	int rc;

	if (!colon)
		return -EINVAL;
	repo = strndup(key, (size_t)(colon - key));
	if (!repo)
		return -ENOMEM;
	rc = fetch_obj(v, repo, colon + 1, &o);
	free(repo);
	if (rc)
		return rc;
	return strvec_push(out, o->digest_str);
}

static int registry_source(void *ctx, const char *repo, const char *ref, struct manifest **out)
{
	return registry_manifest_get(ctx, repo, ref, out);
}

/* The registry's referrers: the API until it answers 404, then the tag schema. */
static int registry_refs(struct views *v, const char *repo, const struct digest *subject,
			 struct referrers *out)
{
	int rc = -ENOENT;

	if (!__atomic_load_n(&v->no_api, __ATOMIC_RELAXED))
		rc = registry_referrers(v->reg, repo, subject, out);
	if (rc != -ENOENT)
		return rc;
	if (!__atomic_exchange_n(&v->no_api, true, __ATOMIC_RELAXED))
		log_info("the registry has no referrers API (404): using the sha256-<hex> tags");
	return registry_referrers_tag(v->reg, repo, subject, out);
}

static void refs_free(void *meta)
{
	if (meta)
		referrers_clear(meta);
	free(meta);
}

/* What a struct referrers (a refs list's meta) takes. */
static size_t refs_bytes(const void *meta)
{
	const struct referrers *l = meta;
	size_t n = mem_size(l) + mem_size(l->v);

	for (size_t i = 0; i < l->n; i++) {
		const struct referrer *r = &l->v[i];

		n += mem_size(r->media_type) + mem_size(r->artifact_type) +
		     mem_size(r->annotations);
		for (size_t j = 0; j < r->nannotations; j++)
			n += mem_size(r->annotations[j].key) + mem_size(r->annotations[j].value);
	}
	return n;
}

/* Drop the entries of `l` whose digest an earlier entry has (keeps the order). */
static void refs_unique(struct referrers *l)
{
	size_t i, j, n = 0;

	for (i = 0; i < l->n; i++) {
		for (j = 0; j < n && !digest_equal(&l->v[j].digest, &l->v[i].digest); j++)
			;
		if (j < n)
			referrer_release(&l->v[i]);
		else
			l->v[n++] = l->v[i];
	}
	l->n = n;
}

/* dcache fetch: key "repo@sha256:<hex>" -> [referrer digests], meta: the list. */
static int fetch_refs(void *ctx, const char *key, struct strvec *out, void **meta)
{
	struct views *v = ctx;
	const char *at = strrchr(key, '@');
	struct referrers *l = calloc(1, sizeof(*l));
	char ds[DIGEST_STR_SIZE];
	struct digest d;
	char *repo = NULL;
	int rc = -ENOMEM;

	if (!at || digest_parse(&d, at + 1)) {
		rc = -EINVAL;
		goto out;
	}
	repo = strndup(key, (size_t)(at - key));
	if (!l || !repo)
		goto out;
	rc = v->refs_fn ? v->refs_fn(v->refs_ctx, repo, &d, l) : registry_refs(v, repo, &d, l);
	for (size_t i = 0; !rc && i < l->n; i++)
		rc = strvec_push(out, digest_format(&l->v[i].digest, ds));
	if (rc)
		goto out;
	strvec_sort_unique(out);
	if (out->n != l->n)
		refs_unique(l);
	*meta = l;
	l = NULL;
out:
	free(repo);
	refs_free(l);
	return rc;
}

int views_new(struct views **out, struct registry *r, const struct view_source *src,
	      struct pcache *pc, unsigned ttl_s)
{
	struct views *v = calloc(1, sizeof(*v));
	int rc;

	*out = NULL;
	if (!v)
		return -ENOMEM;
	v->reg = r;
	if (src) {
		v->src = *src;
	} else {
		v->src.manifest = registry_source;
		v->src.ctx = r;
	}
	v->pc = pc;
	pthread_mutex_init(&v->lock, NULL);
	budget_unit_init(&v->unit, NULL, NULL);
	rc = dcache_new(&v->tags, ttl_s, fetch_tag, v);
	if (!rc)
		rc = dcache_new(&v->refs, ttl_s, NULL, v);
	if (!rc)
		dcache_set_meta(v->refs, fetch_refs, refs_free);
	if (rc) {
		views_free(v);
		return rc;
	}
	*out = v;
	return 0;
}

void views_set_budget(struct views *v, struct budget *b)
{
	v->budget = b;
	budget_unit_init(&v->unit, b, NULL); /* objects are never evicted */
	dcache_set_budget(v->tags, b, NULL);
	dcache_set_budget(v->refs, b, refs_bytes);
}

uint64_t views_list_bytes(struct views *v)
{
	return dcache_bytes(v->tags) + dcache_bytes(v->refs);
}

uint64_t views_object_bytes(struct views *v)
{
	uint64_t n;

	pthread_mutex_lock(&v->lock);
	n = v->obj_bytes;
	pthread_mutex_unlock(&v->lock);
	return n;
}

void views_set_evicted(struct views *v, void (*fn)(void *ctx, uint64_t root, const char *name),
		       void *ctx)
{
	v->evicted = fn;
	v->evicted_ctx = ctx;
}

void views_note_root(struct views *v, struct vobj *o, uint64_t root)
{
	size_t i;

	if (!o->views)
		return; /* no budget: nothing is evicted */
	pthread_mutex_lock(&v->lock);
	for (i = 0; i < o->nroots && o->roots[i] != root; i++)
		;
	if (i == o->nroots) {
		/* Full: the oldest is forgotten (its entries stay until the
		 * kernel drops them on its own). */
		o->roots[o->next_root] = root;
		o->next_root = (o->next_root + 1) % VOBJ_ROOTS;
		if (o->nroots < VOBJ_ROOTS)
			o->nroots++;
	}
	pthread_mutex_unlock(&v->lock);
}

void views_set_referrers_source(struct views *v, view_referrers_fn fn, void *ctx)
{
	v->refs_fn = fn;
	v->refs_ctx = ctx;
}

void views_free(struct views *v)
{
	size_t b;

	if (!v)
		return;
	dcache_free(v->tags);
	dcache_free(v->refs);
	budget_uncharge(&v->unit);
	for (b = 0; b < NBUCKETS; b++) {
		struct vobj *o = v->buckets[b], *next;

		for (; o; o = next) {
			next = o->next;
			vobj_free(o);
		}
	}
	pthread_mutex_destroy(&v->lock);
	free(v);
}

void views_count(struct views *v, size_t *images, size_t *layers_loaded)
{
	size_t b, i;

	*images = *layers_loaded = 0;
	pthread_mutex_lock(&v->lock);
	for (b = 0; b < NBUCKETS; b++)
		for (const struct vobj *o = v->buckets[b]; o; o = o->next) {
			if (!o->img)
				continue;
			(*images)++;
			for (i = 0; i < image_nlayers(o->img); i++)
				*layers_loaded += layer_tree(image_layer(o->img, i)) != NULL;
		}
	pthread_mutex_unlock(&v->lock);
}

int views_tag(struct views *v, const char *repo, const char *tag, struct vobj **out)
{
	struct buf key = BUF_INIT;
	struct dlist *l = NULL;
	struct digest d;
	int rc;

	*out = NULL;
	rc = buf_addf(&key, "%s:%s", repo, tag);
	if (!rc)
		rc = dcache_get(v->tags, key.data, &l);
	buf_release(&key);
	if (rc)
		return rc;
	rc = l->err;
	if (!rc && (l->names.n != 1 || digest_parse(&d, l->names.v[0])))
		rc = -EIO;
	dlist_put(l);
	if (rc)
		return rc;
	return views_digest(v, repo, &d, out);
}

int views_digest(struct views *v, const char *repo, const struct digest *d,
		 struct vobj **out)
{
	char ds[DIGEST_STR_SIZE];

	*out = find(v, repo, d);
	if (*out)
		return 0;
	return fetch_obj(v, repo, digest_format(d, ds), out);
}

int views_referrers(struct views *v, const char *repo, const struct digest *subject,
		    struct dlist **hold, const struct referrers **list)
{
	char ds[DIGEST_STR_SIZE];
	struct buf key = BUF_INIT;
	struct dlist *l = NULL;
	int rc;

	*hold = NULL;
	*list = NULL;
	rc = buf_addf(&key, "%s@%s", repo, digest_format(subject, ds));
	if (!rc)
		rc = dcache_get(v->refs, key.data, &l);
	buf_release(&key);
	if (rc)
		return rc;
	rc = l->err;
	if (!rc && !l->meta)
		rc = -EIO;
	if (rc) {
		dlist_put(l);
		return rc;
	}
	*hold = l;
	*list = l->meta;
	return 0;
}

void views_invalidate_tag(struct views *v, const char *repo, const char *tag)
{
	struct buf key = BUF_INIT;

	if (!buf_addf(&key, "%s:%s", repo, tag))
		dcache_invalidate(v->tags, key.data);
	buf_release(&key);
}

bool vobj_is_index(const struct vobj *o)
{
	return o->index;
}

const struct digest *vobj_digest(const struct vobj *o)
{
	return &o->digest;
}

const char *vobj_digest_str(const struct vobj *o)
{
	return o->digest_str;
}

const char *vobj_media_type(const struct vobj *o)
{
	return o->media_type;
}

void vobj_bytes(const struct vobj *o, const void **bytes, size_t *len)
{
	if (o->index) {
		*bytes = o->m->bytes;
		*len = o->m->len;
	} else {
		image_manifest(o->img, bytes, len);
	}
}

struct image *vobj_image(const struct vobj *o)
{
	return o->img;
}

size_t vobj_nplatforms(const struct vobj *o)
{
	return o->nplats;
}

const char *vobj_platform_name(const struct vobj *o, size_t i)
{
	return i < o->nplats ? o->plats[i].name : NULL;
}

const struct digest *vobj_platform_digest(const struct vobj *o, size_t i)
{
	return i < o->nplats ? &o->plats[i].digest : NULL;
}

long vobj_platform_find(const struct vobj *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->nplats; i++)
		if (!strcmp(o->plats[i].name, name))
			return (long)i;
	return -1;
}
