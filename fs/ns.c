/*
 * Design: ns holds no mutable state of its own besides the dcache (which
 * locks itself); every answer is derived from the catalog and tag-list
 * snapshots it hands out by reference.
 */
#include "fs/ns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/strvec.h"
#include "fs/dcache.h"
#include "registry/names.h"

#define CATALOG_KEY "catalog"

struct ns {
	struct ns_source src;
	struct dcache *cache;
};

static int fetch(void *ctx, const char *key, struct strvec *out)
{
	struct ns *ns = ctx;
	int rc;

	if (strcmp(key, CATALOG_KEY) == 0) {
		rc = ns->src.catalog(ns->src.ctx, out);
		/* Any refusal means "no catalog here": cache it as absent. */
		if (rc == -EACCES || rc == -EPERM || rc == -EINVAL || rc == -ENOENT) {
			log_info("the catalog of %s is not available (%s); repositories "
				 "are reachable by path", ns->src.what, strerror(-rc));
			rc = rc == -EACCES ? -EACCES : -ENOENT;
		}
		return rc;
	}
	if (strncmp(key, "tags:", 5) == 0)
		return ns->src.tags(ns->src.ctx, key + 5, out);
	return -EINVAL;
}

static int fetch_meta(void *ctx, const char *key, struct strvec *out, void **meta)
{
	struct ns *ns = ctx;
	struct ns_tag_meta *m = NULL;
	int rc;

	if (strncmp(key, "tags:", 5) != 0)
		return fetch(ctx, key, out);
	rc = ns->src.tags_meta(ns->src.ctx, key + 5, out, &m);
	*meta = m;
	return rc;
}

int ns_new(struct ns **out, const struct ns_source *src, unsigned ttl_s)
{
	struct ns *ns = calloc(1, sizeof(*ns));
	int rc;

	*out = NULL;
	if (!ns)
		return -ENOMEM;
	ns->src = *src;
	rc = dcache_new(&ns->cache, ttl_s, fetch, ns);
	if (rc) {
		free(ns);
		return rc;
	}
	if (src->tags_meta)
		dcache_set_meta(ns->cache, fetch_meta, free);
	*out = ns;
	return 0;
}

void ns_set_budget(struct ns *ns, struct budget *b)
{
	dcache_set_budget(ns->cache, b, NULL); /* a tag list's meta is one array */
}

uint64_t ns_bytes(struct ns *ns)
{
	return dcache_bytes(ns->cache);
}

void ns_free(struct ns *ns)
{
	if (!ns)
		return;
	dcache_free(ns->cache);
	free(ns);
}

/* A dcache list: fetched when not fresh, or (`cached_only`) whatever was last
 * published, never fetching (-ENODATA when there is none). */
static int get_list(struct ns *ns, const char *key, bool cached_only, struct dlist **out)
{
	if (!cached_only)
		return dcache_get(ns->cache, key, out);
	return dcache_peek_stale(ns->cache, key, out) ? -ENODATA : 0;
}

static int get_tags_how(struct ns *ns, const char *repo, bool cached_only, struct dlist **out)
{
	struct buf key = BUF_INIT;
	int rc = buf_addf(&key, "tags:%s", repo);

	*out = NULL;
	if (!rc)
		rc = get_list(ns, key.data, cached_only, out);
	buf_release(&key);
	return rc;
}

static int get_tags(struct ns *ns, const char *repo, struct dlist **out)
{
	return get_tags_how(ns, repo, false, out);
}

/* The catalog, or NULL when the registry has none for us. */
static int get_catalog_how(struct ns *ns, bool cached_only, struct dlist **out)
{
	int rc = get_list(ns, CATALOG_KEY, cached_only, out);

	if (!rc && (*out)->err) {
		dlist_put(*out);
		*out = NULL;
	}
	return rc;
}

static int get_catalog(struct ns *ns, struct dlist **out)
{
	return get_catalog_how(ns, false, out);
}

static char *join(const char *dir, const char *name)
{
	struct buf b = BUF_INIT;

	if (*dir ? buf_addf(&b, "%s/%s", dir, name) : buf_adds(&b, name))
		return NULL;
	return buf_detach(&b, NULL);
}

/* Is `path` a repository in the catalog, and/or a prefix of one? */
static void catalog_probe(const struct dlist *cat, const char *path, bool *is_repo,
			  bool *is_ns)
{
	size_t len = strlen(path), i;

	*is_repo = *is_ns = false;
	if (!*path) {
		*is_ns = cat->names.n > 0;
		return;
	}
	i = strvec_lower_bound(&cat->names, path);
	if (i < cat->names.n && strcmp(cat->names.v[i], path) == 0) {
		*is_repo = true;
		i++;
	}
	/* Entries sharing the prefix "path" sort together; look for "path/". */
	for (; i < cat->names.n && strncmp(cat->names.v[i], path, len) == 0; i++) {
		if (cat->names.v[i][len] == '/') {
			*is_ns = true;
			return;
		}
	}
}

bool ns_catalog_has(struct ns *ns, const char *repo)
{
	struct dlist *cat = NULL;
	bool is_repo = false, is_ns;

	if (dcache_peek(ns->cache, CATALOG_KEY, &cat) == 0 && !cat->err)
		catalog_probe(cat, repo, &is_repo, &is_ns);
	dlist_put(cat);
	return is_repo;
}

/* Should we ask for P's tags? Not for the root or a pure namespace. */
static bool may_have_tags(const struct dlist *cat, const char *dir)
{
	bool is_repo, is_ns;

	if (!*dir)
		return false;
	if (!cat)
		return true;
	catalog_probe(cat, dir, &is_repo, &is_ns);
	return is_repo || !is_ns;
}

/*
 * Is `tag` a tag of `dir`, asked without its tag list: 0, -ENOENT, or
 * -ENODATA when the list must decide — it is cached (then it answers
 * without a request), or there is no probe, or the probe could not tell.
 */
static int tag_probe(struct ns *ns, const char *dir, const char *tag)
{
	struct dlist *tags = NULL;
	struct buf key = BUF_INIT;
	bool cached;
	int rc;

	if (!ns->src.tag_probe)
		return -ENODATA;
	rc = buf_addf(&key, "tags:%s", dir);
	cached = !rc && dcache_peek(ns->cache, key.data, &tags) == 0;
	dlist_put(tags);
	buf_release(&key);
	if (rc || cached)
		return -ENODATA;
	rc = ns->src.tag_probe(ns->src.probe_ctx, dir, tag);
	return rc == 0 || rc == -ENOENT ? rc : -ENODATA;
}

bool ns_lookup_probes(const struct ns *ns)
{
	return ns->src.tag_probe != NULL;
}

static int found(enum ns_kind k, const char *target, enum ns_kind *kind, char **out)
{
	*kind = k;
	*out = strdup(target);
	return *out ? 0 : -ENOMEM;
}

int ns_lookup(struct ns *ns, const char *dir, const char *name, enum ns_kind *kind,
	      char **target)
{
	struct dlist *cat = NULL, *tags = NULL, *probe = NULL;
	bool comp_ok = name_component_valid(name, strlen(name));
	bool is_repo, is_ns, denied;
	char *path = NULL;
	int rc;

	*target = NULL;
	if (name[0] == ':') {
		/* ":tag" — the tag's unambiguous spelling. */
		if (!*dir || !tag_valid(name + 1))
			return -ENOENT;
		rc = get_tags(ns, dir, &tags);
		if (!rc)
			rc = dlist_has(tags, name + 1) ? found(NS_TAG, name + 1, kind, target) :
			     tags->err			 ? tags->err :
							   -ENOENT;
		dlist_put(tags);
		return rc;
	}
	if (!comp_ok && (!*dir || !tag_valid(name)))
		return -ENOENT;
	rc = get_catalog(ns, &cat);
	if (rc)
		return rc;
	if (comp_ok) {
		path = join(dir, name);
		if (!path) {
			rc = -ENOMEM;
			goto out;
		}
		if (strlen(path) > 255) {
			rc = -ENOENT;
			goto out;
		}
	}
	if (cat && path) {
		catalog_probe(cat, path, &is_repo, &is_ns);
		if (is_repo || is_ns) {
			rc = found(NS_DIR, path, kind, target);
			goto out;
		}
	}
	if (*dir && tag_valid(name) && may_have_tags(cat, dir)) {
		int asked = tag_probe(ns, dir, name);

		if (!asked) {
			rc = found(NS_TAG, name, kind, target);
			goto out;
		}
		if (asked != -ENOENT) {
			rc = get_tags(ns, dir, &tags);
			if (rc)
				goto out;
			if (dlist_has(tags, name)) {
				rc = found(NS_TAG, name, kind, target);
				goto out;
			}
		}
	}
	/*
	 * `dir` is a repository we may not read: a tag-like name in it is most
	 * likely one of its tags, so the answer is EACCES, not ENOENT — unless a
	 * repository the catalog does not show is there.
	 */
	denied = tags && tags->err == -EACCES;
	if (!path) {
		rc = denied ? -EACCES : -ENOENT;
		goto out;
	}
	if (denied && cat) {
		rc = -EACCES; /* the catalog has nothing at `path` (checked above) */
		goto out;
	}
	/* Not in the catalog: maybe a repository the catalog does not show. */
	rc = get_tags(ns, path, &probe);
	if (rc)
		goto out;
	if (!probe->err || (!cat && !denied)) {
		/* A repository; or, with no catalog to tell, a possible namespace. */
		rc = found(NS_DIR, path, kind, target);
	} else {
		rc = denied ? -EACCES : -ENOENT;
	}
out:
	dlist_put(cat);
	dlist_put(tags);
	dlist_put(probe);
	free(path);
	return rc;
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ns_ent *)a)->name, ((const struct ns_ent *)b)->name);
}

void ns_ents_free(struct ns_ent *ents, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(ents[i].name);
		free(ents[i].target);
	}
	free(ents);
}

static int list_how(struct ns *ns, const char *dir, bool cached_only, struct ns_ent **out,
		    size_t *nout, struct dlist **hold)
{
	struct dlist *cat = NULL, *tags = NULL;
	struct strvec dirs = STRVEC_INIT;
	struct ns_ent *ents = NULL;
	size_t n = 0, i, len = strlen(dir);
	int rc;

	*out = NULL;
	*nout = 0;
	rc = get_catalog_how(ns, cached_only, &cat);
	if (rc)
		return rc;
	if (cat) {
		i = len ? strvec_lower_bound(&cat->names, dir) : 0;
		for (; i < cat->names.n; i++) {
			const char *r = cat->names.v[i], *rest, *slash;

			if (len && strncmp(r, dir, len) != 0)
				break;
			if (len && r[len] != '/')
				continue;
			rest = len ? r + len + 1 : r;
			slash = strchr(rest, '/');
			rc = strvec_push_owned(&dirs, slash ? strndup(rest, (size_t)(slash - rest)) :
							      strdup(rest));
			if (rc)
				goto out;
		}
		strvec_sort_unique(&dirs);
	}
	if (may_have_tags(cat, dir)) {
		rc = get_tags_how(ns, dir, cached_only, &tags);
		if (rc)
			goto out;
		if (tags->err == -EACCES && !dirs.n) {
			rc = -EACCES;
			goto out;
		}
	}
	ents = calloc(dirs.n + (tags ? tags->names.n : 0) + 1, sizeof(*ents));
	if (!ents) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < dirs.n; i++, n++) {
		ents[n].kind = NS_DIR;
		ents[n].name = strdup(dirs.v[i]);
		ents[n].target = join(dir, dirs.v[i]);
		if (!ents[n].name || !ents[n].target) {
			n++;
			rc = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; tags && i < tags->names.n; i++, n++) {
		const char *t = tags->names.v[i];
		struct buf b = BUF_INIT;

		ents[n].kind = NS_TAG;
		if (strvec_find(&dirs, t) >= 0)
			buf_addf(&b, ":%s", t);
		else
			buf_adds(&b, t);
		ents[n].name = b.data ? buf_detach(&b, NULL) : NULL;
		ents[n].target = strdup(t);
		if (!ents[n].name || !ents[n].target) {
			n++;
			rc = -ENOMEM;
			goto out;
		}
	}
	qsort(ents, n, sizeof(*ents), ent_cmp);
	*out = ents;
	*nout = n;
	ents = NULL;
	n = 0;
	if (hold && tags && !tags->err && tags->meta) {
		*hold = tags;
		tags = NULL;
	}
out:
	ns_ents_free(ents, n);
	strvec_clear(&dirs);
	dlist_put(cat);
	dlist_put(tags);
	return rc;
}

int ns_list(struct ns *ns, const char *dir, struct ns_ent **out, size_t *nout)
{
	return list_how(ns, dir, false, out, nout, NULL);
}

int ns_list_held(struct ns *ns, const char *dir, struct ns_ent **out, size_t *nout,
		 struct dlist **hold)
{
	*hold = NULL;
	return list_how(ns, dir, false, out, nout, hold);
}

int ns_list_cached(struct ns *ns, const char *dir, struct ns_ent **out, size_t *nout)
{
	return list_how(ns, dir, true, out, nout, NULL);
}

int ns_tag_meta(struct ns *ns, const char *repo, const char *tag, struct ns_tag_meta *out)
{
	struct dlist *tags = NULL;
	long i;
	int rc;

	if (!ns->src.tags_meta)
		return -ENODATA;
	rc = get_tags_how(ns, repo, true, &tags);
	if (rc)
		return rc;
	i = tags->err ? -1 : strvec_find(&tags->names, tag);
	if (tags->err)
		rc = tags->err;
	else if (i < 0)
		rc = -ENOENT;
	else if (!tags->meta)
		rc = -ENODATA;
	else
		*out = ((const struct ns_tag_meta *)tags->meta)[i];
	dlist_put(tags);
	return rc;
}

int ns_repo_times(struct ns *ns, const char *repo, struct timespec *updated,
		  struct timespec *created)
{
	struct dlist *tags = NULL;
	const struct ns_tag_meta *m;
	int rc = -ENODATA;

	memset(updated, 0, sizeof(*updated));
	memset(created, 0, sizeof(*created));
	if (!ns->src.tags_meta || get_tags_how(ns, repo, true, &tags) || tags->err ||
	    !tags->meta)
		goto out;
	m = tags->meta;
	for (size_t i = 0; i < tags->names.n; i++) {
		const struct timespec *u = &m[i].updated, *c = &m[i].created;

		if (u->tv_sec > updated->tv_sec ||
		    (u->tv_sec == updated->tv_sec && u->tv_nsec > updated->tv_nsec))
			*updated = *u;
		if (c->tv_sec && (!created->tv_sec || c->tv_sec < created->tv_sec ||
				  (c->tv_sec == created->tv_sec && c->tv_nsec < created->tv_nsec)))
			*created = *c;
	}
	if (updated->tv_sec)
		rc = 0;
out:
	dlist_put(tags);
	return rc;
}

void ns_invalidate_tags(struct ns *ns, const char *repo)
{
	struct buf key = BUF_INIT;

	if (buf_addf(&key, "tags:%s", repo) == 0)
		dcache_invalidate(ns->cache, key.data);
	buf_release(&key);
}

void ns_invalidate_catalog(struct ns *ns)
{
	dcache_invalidate(ns->cache, CATALOG_KEY);
}
