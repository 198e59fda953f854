/*
 * referrers — see referrers.h.
 *
 * Design: one strict reader (read_descriptor / read_artifact) over cJSON
 * objects serves the three shapes that carry a referrer's facts: an index
 * descriptor (API page, tag-schema index) and a referrer's own manifest,
 * whose top level has the same "artifactType" and "annotations" members.
 * The API is walked with reg_get_pages (registry.c), the loop every listing
 * shares; the tag schema is an ordinary manifest GET (manifest.c).
 */
#include "registry/referrers.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "registry/internal.h"
#include "registry/jsonr.h"
#include "registry/manifest.h"
#include "registry/names.h"

#define MEDIA_TYPE_MAX 255

/* A media type: printable ASCII without blanks, with a '/', at most 255 bytes. */
static bool media_type_ok(const char *s)
{
	return jr_printable(s, MEDIA_TYPE_MAX) && strchr(s, '/');
}

/* The optional media-type member `key` into *out (malloc'd; NULL if absent). */
static int read_media_type(struct jr *p, const cJSON *obj, const char *where, const char *key,
			   bool required, char **out)
{
	const cJSON *it;
	int rc = jr_member(p, obj, where, key, &it);

	if (rc)
		return rc;
	if (!it || cJSON_IsNull(it))
		return required ? jr_fail(p, -EINVAL, "%s: \"%s\" is missing", where, key) : 0;
	if (!cJSON_IsString(it) || !media_type_ok(it->valuestring))
		return jr_fail(p, -EINVAL, "%s: \"%s\" is not a media type", where, key);
	*out = strdup(it->valuestring);
	return *out ? 0 : -ENOMEM;
}

static int read_annotations(struct jr *p, const cJSON *obj, const char *where,
			    struct referrer *r)
{
	const cJSON *ann, *c, *dup;
	int n, rc = jr_member(p, obj, where, "annotations", &ann);

	if (rc || !ann || cJSON_IsNull(ann))
		return rc;
	if (!cJSON_IsObject(ann))
		return jr_fail(p, -EINVAL, "%s: \"annotations\" is not an object", where);
	n = cJSON_GetArraySize(ann);
	if (n > REFERRER_MAX_ANNOTATIONS)
		return jr_fail(p, -EINVAL, "%s: %d annotations (at most %d)", where, n,
			     REFERRER_MAX_ANNOTATIONS);
	if (!n)
		return 0;
	r->annotations = calloc((size_t)n, sizeof(*r->annotations));
	if (!r->annotations)
		return -ENOMEM;
	cJSON_ArrayForEach(c, ann) {
		struct annotation *a = &r->annotations[r->nannotations];
		size_t kl = c->string ? strlen(c->string) : 0;

		if (!kl || kl > REFERRER_MAX_KEY)
			return jr_fail(p, -EINVAL, "%s: an annotation key is empty or longer than %d",
				     where, REFERRER_MAX_KEY);
		rc = jr_member(p, ann, where, c->string, &dup);
		if (rc)
			return rc;
		if (!cJSON_IsString(c) || strlen(c->valuestring) > REFERRER_MAX_VALUE)
			return jr_fail(p, -EINVAL, "%s: annotation \"%.64s\" is not a string of at most "
				     "%u bytes", where, c->string, REFERRER_MAX_VALUE);
		a->key = strdup(c->string);
		a->value = strdup(c->valuestring);
		r->nannotations++; /* counted half-built: referrer_release frees it */
		if (!a->key || !a->value)
			return -ENOMEM;
	}
	return 0;
}

/* "artifactType" and "annotations": members of a descriptor and of a manifest. */
static int read_artifact(struct jr *p, const cJSON *obj, const char *where,
			 struct referrer *r)
{
	int rc = read_media_type(p, obj, where, "artifactType", false, &r->artifact_type);

	return rc ? rc : read_annotations(p, obj, where, r);
}

static int read_descriptor(struct jr *p, const cJSON *obj, const char *where,
			   struct referrer *r)
{
	int rc;

	if (!cJSON_IsObject(obj))
		return jr_fail(p, -EINVAL, "%s is not an object", where);
	rc = read_media_type(p, obj, where, "mediaType", true, &r->media_type);
	if (!rc)
		rc = jr_digest(p, obj, where, &r->digest);
	if (!rc)
		rc = jr_size(p, obj, where, &r->size);
	return rc ? rc : read_artifact(p, obj, where, r);
}

void referrer_release(struct referrer *r)
{
	if (!r)
		return;
	free(r->media_type);
	free(r->artifact_type);
	for (size_t i = 0; i < r->nannotations; i++) {
		free(r->annotations[i].key);
		free(r->annotations[i].value);
	}
	free(r->annotations);
	memset(r, 0, sizeof(*r));
}

void referrers_clear(struct referrers *l)
{
	for (size_t i = 0; i < l->n; i++)
		referrer_release(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The referrers of an index object `root`, appended to `out`. */
static int parse_index(struct jr *p, const cJSON *root, struct referrers *out)
{
	const cJSON *arr, *it;
	char where[48];
	size_t n;
	int rc;

	if (!cJSON_IsObject(root))
		return jr_fail(p, -EINVAL, "referrers: not a JSON object");
	rc = jr_member(p, root, "referrers", "manifests", &arr);
	if (rc)
		return rc;
	if (!cJSON_IsArray(arr))
		return jr_fail(p, -EINVAL, "referrers: \"manifests\" is %s",
			     arr ? "not an array" : "missing");
	n = (size_t)cJSON_GetArraySize(arr);
	if (out->n + n > REFERRERS_MAX)
		return jr_fail(p, -EFBIG, "referrers: more than %d", REFERRERS_MAX);
	if (out->n + n > out->cap) {
		size_t cap = out->n + n > 2 * out->cap ? out->n + n : 2 * out->cap;
		struct referrer *v = realloc(out->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		out->v = v;
		out->cap = cap;
	}
	n = 0;
	cJSON_ArrayForEach(it, arr) {
		struct referrer *r = &out->v[out->n];

		memset(r, 0, sizeof(*r));
		snprintf(where, sizeof(where), "manifests[%zu]", n++); /* cannot truncate */
		rc = read_descriptor(p, it, where, r);
		if (rc) {
			referrer_release(r); /* half-built: never in the list */
			return rc;
		}
		out->n++;
	}
	return 0;
}

int referrers_parse(const void *bytes, size_t len, struct referrers *out, char *why,
		    size_t whysz)
{
	struct jr p = { why, whysz };
	cJSON *root;
	int rc;

	if (whysz)
		why[0] = '\0';
	root = cJSON_ParseWithLength(bytes, len);
	rc = root ? parse_index(&p, root, out) : jr_fail(&p, -EINVAL, "referrers: not JSON");
	cJSON_Delete(root);
	return rc;
}

int referrer_from_manifest(const void *bytes, size_t len, struct referrer *out, char *why,
			   size_t whysz)
{
	struct jr p = { why, whysz };
	const cJSON *cfg;
	cJSON *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if (whysz)
		why[0] = '\0';
	root = cJSON_ParseWithLength(bytes, len);
	if (!cJSON_IsObject(root)) {
		rc = jr_fail(&p, -EINVAL, "manifest: not a JSON object");
		goto out;
	}
	rc = read_artifact(&p, root, "manifest", out);
	if (!rc && !out->artifact_type)
		rc = jr_member(&p, root, "manifest", "config", &cfg);
	if (!rc && !out->artifact_type && cJSON_IsObject(cfg))
		rc = read_media_type(&p, cfg, "config", "mediaType", false, &out->artifact_type);
out:
	cJSON_Delete(root);
	if (rc)
		referrer_release(out);
	return rc;
}

struct page_ctx {
	struct referrers *out;
	const char *url;
};

static int api_page(void *vctx, cJSON *root)
{
	struct page_ctx *c = vctx;
	struct jr p;
	char why[256];
	int rc;

	p.why = why;
	p.whysz = sizeof(why);
	why[0] = '\0';
	rc = parse_index(&p, root, c->out);
	if (rc && rc != -ENOMEM) {
		log_error("GET %s: %s", c->url, why);
		rc = -EIO;
	}
	return rc;
}

/* "/v2/<repo>/<what><hex>" URL and the pull scope; repo already checked. */
static int subject_url(struct registry *r, const char *repo, const char *what,
		       const struct digest *subject, struct buf *url, struct buf *scope)
{
	char s[DIGEST_STR_SIZE];
	int rc;

	digest_format(subject, s);
	rc = buf_addf(url, "%s/v2/%s/%s%s", reg_url(r), repo, what, s);
	if (!rc)
		rc = buf_addf(scope, "repository:%s:pull", repo);
	return rc;
}

int registry_referrers(struct registry *r, const char *repo, const struct digest *subject,
		       struct referrers *out)
{
	struct buf url = BUF_INIT, scope = BUF_INIT;
	struct page_ctx c = { out, NULL };
	int rc;

	*out = (struct referrers)REFERRERS_INIT;
	if (!repo_name_valid(repo))
		return -ENOENT;
	rc = subject_url(r, repo, "referrers/", subject, &url, &scope);
	if (!rc) {
		c.url = url.data;
		rc = reg_get_pages(r, scope.data, url.data, api_page, &c);
	}
	buf_release(&url);
	buf_release(&scope);
	if (rc)
		referrers_clear(out);
	return rc;
}

int registry_referrers_tag(struct registry *r, const char *repo, const struct digest *subject,
			   struct referrers *out)
{
	char tag[DIGEST_STR_SIZE], why[256];
	struct manifest *m = NULL;
	int rc;

	*out = (struct referrers)REFERRERS_INIT;
	/* "sha256:<hex>" -> "sha256-<hex>" */
	digest_format(subject, tag);
	tag[strcspn(tag, ":")] = '-';
	rc = registry_manifest_get(r, repo, tag, &m);
	if (rc == -ENOENT)
		return 0;
	if (!rc && m->kind != MANIFEST_INDEX) {
		log_error("%s:%s: the referrers tag holds %s, not an index", repo, tag,
			  m->media_type);
		rc = -EIO;
	}
	if (!rc) {
		rc = referrers_parse(m->bytes, m->len, out, why, sizeof(why));
		if (rc && rc != -ENOMEM) {
			log_error("%s:%s: %s", repo, tag, why);
			rc = -EIO;
		}
	}
	if (rc == -ENOTSUP || rc == -EFBIG)
		rc = -EIO; /* a tag of ours that holds something else */
	manifest_free(m);
	if (rc)
		referrers_clear(out);
	return rc;
}
