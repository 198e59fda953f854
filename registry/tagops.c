/*
 * tagops — see tagops.h.
 *
 * Design note. The OCI API has one destructive primitive that every registry
 * implements, DELETE of a manifest by digest, and it is blunt: it removes the
 * manifest and every tag that points at it. Removing *one* tag therefore
 * starts with a question — does any other tag of the repository point at the
 * digest? — which the API can only answer one tag at a time: a fresh tag
 * list, then HEAD of every other tag (GET for those that are indexes, whose
 * children would break, and for the indexes they list in turn: an index may
 * reach the digest through another index). Only a clear "no" leads to DELETE by digest, after
 * one more HEAD of the tag itself; anything else (a sibling found, a tag
 * that could not be checked, more than TAGOPS_SCAN_MAX tags) removes only
 * the tag, which leaves the image in place, untagged. The window between the
 * last HEAD and the DELETE is one round trip; a tag pushed at that very
 * moment to the same digest would go with it — the API offers no
 * compare-and-delete to close it.
 *
 * Nothing here holds state or locks: each call is a sequence of requests.
 */
#include "registry/tagops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "registry/acr.h"
#include "registry/blob.h"
#include "registry/errors.h"
#include "registry/http.h"
#include "registry/internal.h"
#include "registry/manifest.h"
#include "registry/names.h"

#define MEDIA_OCI_EMPTY "application/vnd.oci.empty.v1+json"
/* sha256("{}"), the OCI empty descriptor's digest. */
#define EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define COPY_DEPTH_MAX 2 /* index → image; nested indexes one level more */

/* One request without redirects; body collected. */
static int tsend(struct registry *r, const char *scope, const char *method, const char *url,
		const char *const *hdrs, const void *body, size_t len, struct http_resp *resp)
{
	struct http_req req = { 0 };

	req.method = method;
	req.url = url;
	req.headers = hdrs;
	req.body = body;
	req.body_len = len;
	req.max_body = 1u << 20;
	return reg_send(r, scope, &req, resp);
}

static bool ok_status(long s)
{
	return s == 200 || s == 201 || s == 202 || s == 204;
}

int registry_tag_resolve(struct registry *r, const char *repo, const char *tag, struct digest *d,
			 char **media_type)
{
	if (!tag_valid(tag) || !repo_name_valid(repo))
		return -ENOENT;
	return registry_manifest_head(r, repo, tag, d, media_type);
}

/*
 * DELETE `url` needing repository:<repo>:delete. 0 on 200/202/204, else
 * -errno, logged — except a 400 / 405 when `quiet` (a probe whose refusal is
 * an answer, not a failure: logged at debug level).
 */
static int delete_url(struct registry *r, const char *repo, const char *url, bool quiet,
		      long *status)
{
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf scope = BUF_INIT;
	int rc = buf_addf(&scope, "repository:%s:delete", repo);

	if (!rc)
		rc = tsend(r, scope.data, "DELETE", url, NULL, NULL, 0, &resp);
	if (status)
		*status = rc ? 0 : resp.status;
	if (!rc && quiet && (resp.status == 400 || resp.status == 405)) {
		char code[64];

		registry_error_parse(resp.body.data, resp.body.len, code, sizeof(code), NULL, 0);
		log_debug("DELETE %s: HTTP %ld %s", url, resp.status, code);
		rc = registry_errno(resp.status, code);
	} else if (!rc && !ok_status(resp.status)) {
		rc = reg_fail("DELETE", url, 0, &resp);
		if (!rc)
			rc = -EIO;
	} else if (rc) {
		rc = reg_fail("DELETE", url, rc, &resp);
	}
	http_resp_release(&resp);
	buf_release(&scope);
	return rc;
}

int registry_manifest_delete(struct registry *r, const char *repo, const struct digest *d)
{
	struct buf url = BUF_INIT;
	char ds[DIGEST_STR_SIZE];
	int rc;

	if (!repo_name_valid(repo))
		return -ENOENT;
	rc = buf_addf(&url, "%s/v2/%s/manifests/%s", reg_url(r), repo, digest_format(d, ds));
	if (!rc)
		rc = delete_url(r, repo, url.data, false, NULL);
	if (!rc)
		log_info("deleted manifest %s of %s", ds, repo);
	buf_release(&url);
	return rc;
}

/*
 * May this identity delete in `repo`, and does the registry allow deletes at
 * all? DELETE of a random digest nobody has: 404 = yes; 405 UNSUPPORTED →
 * -EPERM; 401/403 → -EACCES. Other answers are not taken as a refusal (0).
 * Changes nothing: no manifest has that digest.
 */
static int delete_probe(struct registry *r, const char *repo)
{
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf url = BUF_INIT, scope = BUF_INIT;
	unsigned char rnd[32];
	struct digest d;
	char ds[DIGEST_STR_SIZE];
	int rc;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	rc = digest_of_buf(&d, rnd, sizeof(rnd));
	if (!rc)
		rc = buf_addf(&url, "%s/v2/%s/manifests/%s", reg_url(r), repo, digest_format(&d, ds));
	if (!rc)
		rc = buf_addf(&scope, "repository:%s:delete", repo);
	if (!rc)
		rc = tsend(r, scope.data, "DELETE", url.data, NULL, NULL, 0, &resp);
	if (rc) {
		rc = reg_fail("DELETE", url.data, rc, &resp);
	} else if (resp.status == 405 || resp.status == 401 || resp.status == 403) {
		char code[64];
		const char *hint;

		registry_error_parse(resp.body.data, resp.body.len, code, sizeof(code), NULL, 0);
		hint = registry_error_hint(code);
		rc = resp.status == 405 ? -EPERM : -EACCES;
		log_error("%s: the registry does not let this identity delete (%s: HTTP %ld%s%s from "
			  "DELETE of an unknown digest); nothing changed", repo,
			  hint ? hint : rc == -EPERM ? "deletes are disabled" : "no delete rights",
			  resp.status, code[0] ? " " : "", code);
	}
	http_resp_release(&resp);
	buf_release(&url);
	buf_release(&scope);
	return rc;
}

/*
 * Does the index `ref` of `repo` reach `d`: list it, or list an index that
 * reaches it (index -> index -> image)? Nested indexes are fetched by digest,
 * at most TAGOPS_INDEX_DEPTH_MAX levels below `ref` and *budget fetches in
 * all; past either bound the answer is unknown (-ELOOP / -E2BIG), which the
 * caller takes as "shared".
 */
static int index_reaches(struct registry *r, const char *repo, const char *ref,
			 const struct digest *d, int depth, unsigned *budget, bool *reaches)
{
	struct manifest *m = NULL;
	char ds[DIGEST_STR_SIZE];
	int rc = registry_manifest_get(r, repo, ref, &m);

	*reaches = false;
	if (rc)
		return rc;
	for (size_t i = 0; i < m->nmanifests && !*reaches; i++)
		if (digest_equal(&m->manifests[i].digest, d))
			*reaches = true;
	for (size_t i = 0; i < m->nmanifests && !*reaches && !rc; i++) {
		const struct descriptor *c = &m->manifests[i];

		if (manifest_kind_of(c->media_type) != MANIFEST_INDEX)
			continue;
		if (depth >= TAGOPS_INDEX_DEPTH_MAX) {
			rc = -ELOOP;
		} else if (!*budget) {
			rc = -E2BIG;
		} else {
			(*budget)--;
			rc = index_reaches(r, repo, digest_format(&c->digest, ds), d, depth + 1,
					   budget, reaches);
		}
	}
	manifest_free(m);
	return rc;
}

/*
 * ACR: the same question from the repository's manifest listing — the
 * digest, media type and tags of every manifest, one request per page of
 * 1,000, no HEAD per tag — plus a GET of every tagged index (and of the
 * indexes it lists) that could reach `d`. An image that is itself locked
 * counts as shared: only the tag can go. -EACCES when the identity may not
 * read metadata (the caller asks the /v2 way); else 0 with *shared, *why.
 */
static int acr_siblings(struct registry *r, const char *repo, const char *except,
			const struct digest *d, bool *shared, struct buf *why)
{
	struct acr_manifest *m = NULL;
	unsigned budget = TAGOPS_INDEX_FETCH_MAX;
	char ds[DIGEST_STR_SIZE];
	size_t n = 0, i, j;
	int rc;

	*shared = true;
	rc = registry_acr_manifests(r, repo, &m, &n);
	if (rc == -EACCES)
		return rc;
	if (rc) {
		buf_addf(why, "the manifest list could not be read (%s)", strerror(-rc));
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (!digest_equal(&m[i].digest, d))
			continue;
		for (j = 0; j < m[i].ntags; j++)
			if (strcmp(m[i].tags[j], except) != 0) {
				buf_addf(why, "tag %s points at it", m[i].tags[j]);
				goto out;
			}
		if (acr_locked(&m[i].attrs)) {
			buf_addf(why, "the image is locked in the registry (%s)",
				 acr_lock_name(&m[i].attrs));
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		bool lists = false;

		if (manifest_kind_of(m[i].media_type) != MANIFEST_INDEX || !m[i].ntags ||
		    digest_equal(&m[i].digest, d))
			continue;
		rc = index_reaches(r, repo, digest_format(&m[i].digest, ds), d, 0, &budget, &lists);
		if (rc) {
			buf_addf(why, "tag %s could not be checked (%s)", m[i].tags[0],
				 rc == -ELOOP ? "indexes nested too deep" :
				 rc == -E2BIG ? "too many nested indexes" : strerror(-rc));
			goto out;
		}
		if (lists) {
			buf_addf(why, "tag %s is an index reaching it", m[i].tags[0]);
			goto out;
		}
	}
	*shared = false;
out:
	acr_manifests_free(m, n);
	return 0;
}

/*
 * Is `d` still needed by a tag of `repo` other than `except`? *shared is set
 * to true unless a fresh tag list and a HEAD of every other tag prove the
 * contrary; *why names the reason for the log. Cost: 1 tag list (all pages)
 * + up to TAGOPS_SCAN_MAX HEADs (stops at the first sibling) + a GET per
 * sibling that is an index + a GET per index nested in those (at most
 * TAGOPS_INDEX_FETCH_MAX in all). On ACR, acr_siblings answers instead unless
 * the identity may not read metadata.
 */
static void siblings_check(struct registry *r, const char *repo, const char *except,
			   const struct digest *d, bool *shared, struct buf *why)
{
	struct strvec tags = STRVEC_INIT;
	unsigned budget = TAGOPS_INDEX_FETCH_MAX;
	int rc;

	*shared = true;
	if (registry_is_acr(r) && acr_siblings(r, repo, except, d, shared, why) != -EACCES)
		return;
	rc = registry_tags(r, repo, &tags);
	if (rc) {
		buf_addf(why, "the tag list could not be read (%s)", strerror(-rc));
		goto out;
	}
	if (tags.n > TAGOPS_SCAN_MAX) {
		buf_addf(why, "%zu tags are more than the %d checked", tags.n, TAGOPS_SCAN_MAX);
		goto out;
	}
	for (size_t i = 0; i < tags.n; i++) {
		struct digest td;
		char *mt = NULL;
		bool lists = false;

		if (strcmp(tags.v[i], except) == 0)
			continue;
		rc = registry_manifest_head(r, repo, tags.v[i], &td, &mt);
		if (rc == -ENOENT)
			continue; /* went away since the list */
		if (!rc && manifest_kind_of(mt) == MANIFEST_INDEX && !digest_equal(&td, d))
			rc = index_reaches(r, repo, tags.v[i], d, 0, &budget, &lists);
		free(mt);
		if (rc) {
			buf_addf(why, "tag %s could not be checked (%s)", tags.v[i],
				 rc == -ELOOP ? "indexes nested too deep" :
				 rc == -E2BIG ? "too many nested indexes" : strerror(-rc));
			goto out;
		}
		if (digest_equal(&td, d) || lists) {
			buf_addf(why, "tag %s %s it", tags.v[i], lists ? "is an index reaching" :
									 "points at");
			goto out;
		}
	}
	*shared = false;
out:
	strvec_clear(&tags);
}

/* The tag must point at `d` now: 0, -ENOENT (gone) or -EAGAIN (moved, logged). */
static int verify_tag(struct registry *r, const char *repo, const char *tag,
		      const struct digest *d)
{
	struct digest now;
	char a[DIGEST_STR_SIZE], b[DIGEST_STR_SIZE];
	int rc = registry_manifest_head(r, repo, tag, &now, NULL);

	if (rc == -ENOENT)
		log_info("%s:%s: the tag is gone", repo, tag);
	if (rc)
		return rc;
	if (!digest_equal(&now, d)) {
		log_error("%s:%s: the tag changed from %s to %s meanwhile; nothing done", repo, tag,
			  digest_format(d, a), digest_format(&now, b));
		return -EAGAIN;
	}
	return 0;
}

/* Resolve a relative Location against the registry; add ?/&digest=. */
static int upload_url(struct registry *r, const char *loc, const struct digest *d, struct buf *out)
{
	char hex[DIGEST_HEX_LEN + 1];
	int rc;

	if (loc[0] == '/')
		rc = buf_addf(out, "%s%s", reg_url(r), loc);
	else if (strncmp(loc, "http://", 7) == 0 || strncmp(loc, "https://", 8) == 0)
		rc = buf_adds(out, loc);
	else
		return -EIO;
	if (!rc)
		rc = buf_addf(out, "%cdigest=sha256%%3A%s", strchr(loc, '?') ? '&' : '?',
			      digest_hex(d, hex));
	return rc;
}

/*
 * Upload `len` bytes as blob `d` of `repo`, monolithically: PUT to `loc`
 * (an upload session the registry already opened, may be NULL) or to a new
 * session (POST /v2/<repo>/blobs/uploads/ → 202 Location). 201 expected.
 */
static int blob_upload(struct registry *r, const char *repo, const char *loc,
		       const struct digest *d, const void *data, size_t len)
{
	static const char *const hdrs[] = { "Content-Type: application/octet-stream", NULL };
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf url = BUF_INIT, scope = BUF_INIT, put = BUF_INIT;
	char *sess = NULL;
	int rc = buf_addf(&scope, "repository:%s:pull,push", repo);

	if (rc)
		goto out;
	if (!loc) {
		rc = buf_addf(&url, "%s/v2/%s/blobs/uploads/", reg_url(r), repo);
		if (!rc)
			rc = tsend(r, scope.data, "POST", url.data, NULL, "", 0, &resp);
		if (!rc && resp.status == 202 && resp.location) {
			sess = strdup(resp.location);
			if (!sess)
				rc = -ENOMEM;
		} else {
			rc = reg_fail("POST", url.data, rc, &resp);
			if (!rc)
				rc = -EIO;
		}
		http_resp_release(&resp);
		if (rc)
			goto out;
		loc = sess;
	}
	rc = upload_url(r, loc, d, &put);
	if (rc) {
		log_error("%s: unusable upload location \"%.200s\"", repo, loc);
		goto out;
	}
	rc = tsend(r, scope.data, "PUT", put.data, hdrs, data, len, &resp);
	if (rc || resp.status != 201) {
		rc = reg_fail("PUT", put.data, rc, &resp);
		if (!rc)
			rc = -EIO;
	}
	http_resp_release(&resp);
out:
	free(sess);
	buf_release(&url);
	buf_release(&scope);
	buf_release(&put);
	return rc;
}

/* HEAD /v2/<repo>/blobs/<d>: 0 present, -ENOENT absent, else -errno. */
static int blob_exists(struct registry *r, const char *repo, const struct digest *d)
{
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf url = BUF_INIT, scope = BUF_INIT;
	char ds[DIGEST_STR_SIZE];
	int rc = buf_addf(&url, "%s/v2/%s/blobs/%s", reg_url(r), repo, digest_format(d, ds));

	if (!rc)
		rc = buf_addf(&scope, "repository:%s:pull,push", repo);
	if (rc)
		goto out;
	req.method = "HEAD";
	req.url = url.data;
	req.follow_redirects = true;
	rc = reg_send(r, scope.data, &req, &resp);
	if (!rc && resp.status == 200)
		goto out;
	rc = reg_fail("HEAD", url.data, rc, &resp);
	if (!rc)
		rc = -EIO;
out:
	http_resp_release(&resp);
	buf_release(&url);
	buf_release(&scope);
	return rc;
}

/*
 * Make blob `desc` of `src` present in `dst`: already there, mounted (201),
 * or copied through memory when the registry opens an upload instead (202).
 * A foreign layer (with urls) the source registry does not hold is skipped.
 */
static int blob_bring(struct registry *r, const char *src, const char *dst,
		      const struct descriptor *desc)
{
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf url = BUF_INIT, scope = BUF_INIT, data = BUF_INIT;
	char ds[DIGEST_STR_SIZE];
	char *loc = NULL;
	int rc;

	digest_format(&desc->digest, ds);
	rc = blob_exists(r, dst, &desc->digest);
	if (rc != -ENOENT)
		return rc;
	rc = buf_addf(&url, "%s/v2/%s/blobs/uploads/?mount=%s&from=%s", reg_url(r), dst, ds, src);
	if (!rc)
		rc = buf_addf(&scope, "repository:%s:pull,push repository:%s:pull", dst, src);
	if (!rc)
		rc = tsend(r, scope.data, "POST", url.data, NULL, "", 0, &resp);
	if (rc) {
		rc = reg_fail("POST", url.data, rc, &resp);
		goto out;
	}
	if (resp.status == 201) {
		log_debug("mounted %s from %s into %s", ds, src, dst);
		goto out;
	}
	if (resp.status != 202) {
		rc = reg_fail("POST", url.data, 0, &resp);
		if (!rc)
			rc = -EIO;
		goto out;
	}
	/* Not mounted: the registry opened an upload session instead. Copy. */
	if (resp.location && !(loc = strdup(resp.location))) {
		rc = -ENOMEM;
		goto out;
	}
	if (desc->size > TAGOPS_BLOB_COPY_MAX) {
		log_error("%s: blob %s (%llu bytes) could not be mounted from %s and is too large "
			  "to copy through memory (limit %llu)", dst, ds,
			  (unsigned long long)desc->size, src,
			  (unsigned long long)TAGOPS_BLOB_COPY_MAX);
		rc = -EFBIG;
		goto out;
	}
	log_info("%s: blob %s could not be mounted from %s; copying %llu bytes", dst, ds, src,
		 (unsigned long long)desc->size);
	rc = registry_blob_get(r, src, &desc->digest, (size_t)desc->size, &data);
	if (rc == -ENOENT && desc->nurls) {
		log_info("%s: foreign layer %s is not in the registry; left to its urls", dst, ds);
		rc = 0;
		goto out;
	}
	if (!rc)
		rc = blob_upload(r, dst, loc, &desc->digest, data.data ? data.data : "", data.len);
out:
	free(loc);
	http_resp_release(&resp);
	buf_release(&url);
	buf_release(&scope);
	buf_release(&data);
	return rc;
}

/*
 * PUT `bytes` as manifest `ref` of `repo` with Content-Type `media_type`;
 * 201, and the registry must name digest `want` (checked by HEAD when it sends
 * no Docker-Content-Digest).
 */
static int manifest_put(struct registry *r, const char *repo, const char *ref,
			const char *media_type, const void *bytes, size_t len,
			const struct digest *want)
{
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf url = BUF_INIT, scope = BUF_INIT, ct = BUF_INIT;
	const char *hdrs[2] = { NULL, NULL };
	struct digest got;
	char a[DIGEST_STR_SIZE], b[DIGEST_STR_SIZE];
	int rc = buf_addf(&url, "%s/v2/%s/manifests/%s", reg_url(r), repo, ref);

	if (!rc)
		rc = buf_addf(&scope, "repository:%s:pull,push", repo);
	if (!rc)
		rc = buf_addf(&ct, "Content-Type: %s", media_type);
	if (rc)
		goto out;
	hdrs[0] = ct.data;
	rc = tsend(r, scope.data, "PUT", url.data, hdrs, bytes, len, &resp);
	if (rc || resp.status != 201) {
		rc = reg_fail("PUT", url.data, rc, &resp);
		if (!rc)
			rc = -EIO;
		goto out;
	}
	if (resp.docker_content_digest) {
		if (digest_parse(&got, resp.docker_content_digest) != 0) {
			log_error("PUT %s: unusable Docker-Content-Digest \"%.100s\"", url.data,
				  resp.docker_content_digest);
			rc = -EIO;
			goto out;
		}
	} else {
		rc = registry_manifest_head(r, repo, ref, &got, NULL);
		if (rc)
			goto out;
	}
	if (!digest_equal(&got, want)) {
		log_error("PUT %s: the registry stored %s, not the source's %s", url.data,
			  digest_format(&got, a), digest_format(want, b));
		rc = -EIO;
	}
out:
	http_resp_release(&resp);
	buf_release(&url);
	buf_release(&scope);
	buf_release(&ct);
	return rc;
}

static int copy_rec(struct registry *r, const char *src_repo, const char *src_ref,
		    const char *dst_repo, const char *dst_ref, struct digest *out, int depth)
{
	struct manifest *m = NULL;
	char ds[DIGEST_STR_SIZE];
	int rc;

	if (depth > COPY_DEPTH_MAX) {
		log_error("%s@%s: indexes nested deeper than %d; not copied", src_repo, src_ref,
			  COPY_DEPTH_MAX);
		return -EIO;
	}
	rc = registry_manifest_get(r, src_repo, src_ref, &m);
	if (rc)
		return rc;
	if (strcmp(src_repo, dst_repo) != 0) {
		if (m->kind == MANIFEST_INDEX) {
			for (size_t i = 0; !rc && i < m->nmanifests; i++) {
				digest_format(&m->manifests[i].digest, ds);
				rc = copy_rec(r, src_repo, ds, dst_repo, ds, NULL, depth + 1);
			}
		} else {
			rc = blob_bring(r, src_repo, dst_repo, &m->config);
			for (size_t i = 0; !rc && i < m->nlayers; i++)
				rc = blob_bring(r, src_repo, dst_repo, &m->layers[i]);
		}
	}
	if (!rc)
		rc = manifest_put(r, dst_repo, dst_ref, m->media_type, m->bytes, m->len,
				  &m->digest);
	if (!rc && out)
		*out = m->digest;
	manifest_free(m);
	return rc;
}

int registry_tag_copy(struct registry *r, const char *src_repo, const char *src_ref,
		      const char *dst_repo, const char *dst_ref, struct digest *out)
{
	struct digest d;

	if (!repo_name_valid(src_repo) || !repo_name_valid(dst_repo))
		return -ENOENT;
	if (!tag_valid(dst_ref) && digest_parse(&d, dst_ref) != 0)
		return -EINVAL;
	return copy_rec(r, src_repo, src_ref, dst_repo, dst_ref, out, 0);
}

/* The empty config blob {} must exist in `repo` for the placeholder. */
static int empty_blob_ensure(struct registry *r, const char *repo)
{
	struct digest d;
	int rc;

	digest_parse(&d, EMPTY_DIGEST);
	rc = blob_exists(r, repo, &d);
	if (rc == -ENOENT)
		rc = blob_upload(r, repo, NULL, &d, "{}", 2);
	return rc;
}

/*
 * The registry-neutral untag: PUT a unique placeholder manifest at the tag
 * (the tag leaves `d`), then DELETE the placeholder by digest (only that tag
 * points at it). If the delete fails, the tag is put back on `d`.
 */
static int placeholder_untag(struct registry *r, const char *repo, const char *tag,
			     const struct digest *d)
{
	struct manifest *orig = NULL;
	struct buf body = BUF_INIT;
	unsigned char rnd[16];
	char hex[33], ds[DIGEST_STR_SIZE], pds[DIGEST_STR_SIZE];
	struct digest pd;
	int rc, rc2;

	rc = delete_probe(r, repo);
	if (rc)
		return rc;
	/* The exact bytes, to put the tag back if the second step fails. */
	rc = registry_manifest_get(r, repo, digest_format(d, ds), &orig);
	if (!rc)
		rc = empty_blob_ensure(r, repo);
	if (rc)
		goto out;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		rc = -EIO;
		goto out;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		sprintf(hex + 2 * i, "%02x", rnd[i]);
	rc = buf_addf(&body,
		      "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST "\","
		      "\"config\":{\"mediaType\":\"" MEDIA_OCI_EMPTY "\",\"digest\":\"" EMPTY_DIGEST
		      "\",\"size\":2},\"layers\":[],\"annotations\":{\"io.acrfs.untag\":"
		      "\"%s:%s %lld %s\"}}",
		      repo, tag, (long long)time(NULL), hex);
	if (!rc)
		rc = digest_of_buf(&pd, body.data, body.len);
	if (rc)
		goto out;
	/* Last look: the tag must still be on d before we move it. */
	rc = verify_tag(r, repo, tag, d);
	if (rc)
		goto out;
	rc = manifest_put(r, repo, tag, MEDIA_OCI_MANIFEST, body.data, body.len, &pd);
	if (rc)
		goto out;
	rc = registry_manifest_delete(r, repo, &pd);
	if (rc) {
		rc2 = manifest_put(r, repo, tag, orig->media_type, orig->bytes, orig->len, d);
		if (rc2)
			log_error("%s:%s: could not delete placeholder %s nor put the tag back on "
				  "%s (%s): the tag now names the placeholder", repo, tag,
				  digest_format(&pd, pds), ds, strerror(-rc2));
		else
			log_error("%s:%s: could not delete the placeholder; the tag is back on %s",
				  repo, tag, ds);
	}
out:
	manifest_free(orig);
	buf_release(&body);
	return rc;
}

/* Remove only the tag; `d` stays (other tags need it). */
static int untag_only(struct registry *r, const char *repo, const char *tag,
		      const struct digest *d)
{
	struct buf url = BUF_INIT;
	long status = 0;
	int rc;

	if (registry_is_acr(r)) {
		/* ACR untags through its own API (its /v2 deletes only by digest). */
		rc = registry_acr_untag(r, repo, tag);
		goto out;
	}
	/* OCI delete-by-tag: removes the tag only (distribution 3, OCI 1.1). */
	rc = buf_addf(&url, "%s/v2/%s/manifests/%s", reg_url(r), repo, tag);
	if (!rc)
		rc = delete_url(r, repo, url.data, true, &status);
	if (!rc || rc == -EACCES || rc == -ENOENT || (status != 400 && status != 405))
		goto out;
	log_info("%s:%s: the registry does not delete by tag (HTTP %ld); untagging with a "
		 "placeholder", repo, tag, status);
	rc = placeholder_untag(r, repo, tag, d);
out:
	if (!rc)
		log_info("untagged %s:%s", repo, tag);
	buf_release(&url);
	return rc;
}

/*
 * ACR: may tag `tag` of `repo` change? Its attributes from
 * GET /acr/v1/<repo>/_tags/<tag> (*t, caller frees t->name) and the
 * repository's from GET /acr/v1/<repo>: a lock is -EPERM, logged with its
 * name, before anything changed. -EACCES when the
 * identity may not read metadata (then the registry's own refusal, 405
 * REGISTRY_DISALLOWED_OPERATION, is what guards the lock).
 */
static int acr_tag_unlocked(struct registry *r, const char *repo, const char *tag,
			    const char *what, struct acr_tag *t)
{
	struct acr_repo info;
	int rc = registry_acr_tag(r, repo, tag, t);

	if (rc)
		return rc;
	if (acr_locked(&t->attrs)) {
		log_error("%s:%s is %s (%s): not %s; nothing changed", repo, tag,
			  REGISTRY_LOCKED_HINT, acr_lock_name(&t->attrs), what);
		return -EPERM;
	}
	/* A repository with writeEnabled=false locks every image in it. */
	rc = registry_acr_repo(r, repo, &info);
	if (!rc && !info.attrs.write_enabled) {
		log_error("%s:%s: repository %s is %s (writeEnabled=false): not %s; nothing "
			  "changed", repo, tag, repo, REGISTRY_LOCKED_HINT, what);
		return -EPERM;
	}
	return rc == -EACCES ? 0 : rc;
}

int registry_tag_untag(struct registry *r, const char *repo, const char *tag,
		       const struct digest *expect, bool *deleted_image)
{
	struct buf why = BUF_INIT;
	struct digest d;
	char ds[DIGEST_STR_SIZE];
	bool shared;
	int rc;

	if (deleted_image)
		*deleted_image = false;
	rc = -EACCES;
	if (registry_is_acr(r)) {
		/* The tag's digest and lock from ACR's API, not a HEAD. */
		struct acr_tag t;

		rc = acr_tag_unlocked(r, repo, tag, "removed", &t);
		if (!rc && !t.has_digest)
			rc = -EACCES; /* no digest in the answer: ask /v2 */
		if (!rc)
			d = t.digest;
		free(t.name);
		if (rc && rc != -EACCES && rc != -ENOENT)
			return rc;
	}
	if (rc)
		rc = registry_tag_resolve(r, repo, tag, &d, NULL);
	if (rc == -ENOENT)
		log_info("%s:%s: no such tag (any more)", repo, tag);
	if (rc)
		return rc;
	if (expect && !digest_equal(&d, expect)) {
		log_error("%s:%s: the tag changed to %s meanwhile; nothing done", repo, tag,
			  digest_format(&d, ds));
		return -EAGAIN;
	}
	siblings_check(r, repo, tag, &d, &shared, &why);
	digest_format(&d, ds);
	if (shared) {
		log_info("%s:%s: removing only the tag, %s stays: %s", repo, tag, ds,
			 buf_cstr(&why));
		rc = untag_only(r, repo, tag, &d);
		goto out;
	}
	/* No other tag needs it: the image goes, after one last look at the tag. */
	rc = verify_tag(r, repo, tag, &d);
	if (!rc)
		rc = registry_manifest_delete(r, repo, &d);
	if (!rc && deleted_image)
		*deleted_image = true;
out:
	buf_release(&why);
	return rc;
}

int registry_tag_move(struct registry *r, const char *src_repo, const char *src_tag,
		      const char *dst_repo, const char *dst_tag, bool noreplace)
{
	struct digest ds_, old, copied;
	char a[DIGEST_STR_SIZE];
	bool had_old = false, same;
	int rc;

	if (!repo_name_valid(src_repo) || !repo_name_valid(dst_repo) || !tag_valid(src_tag))
		return -ENOENT;
	if (!tag_valid(dst_tag))
		return -EINVAL;
	same = strcmp(src_repo, dst_repo) == 0;
	if (same && strcmp(src_tag, dst_tag) == 0)
		return 0;
	rc = registry_tag_resolve(r, src_repo, src_tag, &ds_, NULL);
	if (rc)
		return rc;
	rc = registry_tag_resolve(r, dst_repo, dst_tag, &old, NULL);
	if (rc == 0) {
		had_old = true;
		if (noreplace)
			return -EEXIST;
	} else if (rc != -ENOENT) {
		return rc;
	}
	if (registry_is_acr(r)) {
		/* A locked source cannot go, a locked target cannot be overwritten. */
		struct acr_tag t;

		rc = acr_tag_unlocked(r, src_repo, src_tag, "moved", &t);
		free(t.name);
		if (!rc && had_old) {
			rc = acr_tag_unlocked(r, dst_repo, dst_tag, "replaced", &t);
			free(t.name);
		}
		if (rc && rc != -EACCES)
			return rc;
	}
	/* Refuse before changing anything if the source cannot be removed. */
	rc = delete_probe(r, src_repo);
	if (rc)
		return rc;
	digest_format(&ds_, a);
	if (!(had_old && same && digest_equal(&old, &ds_))) {
		rc = registry_tag_copy(r, src_repo, a, dst_repo, dst_tag, &copied);
		if (rc) {
			log_error("moving %s:%s to %s:%s: the copy failed (%s); nothing changed",
				  src_repo, src_tag, dst_repo, dst_tag, strerror(-rc));
			return rc;
		}
	}
	rc = registry_tag_untag(r, src_repo, src_tag, &ds_, NULL);
	if (rc) {
		log_error("moving %s:%s to %s:%s: copied, but the source could not be removed "
			  "(%s): both tags exist now", src_repo, src_tag, dst_repo, dst_tag,
			  strerror(-rc));
		return rc;
	}
	log_info("moved %s:%s to %s:%s (%s)", src_repo, src_tag, dst_repo, dst_tag, a);
	if (had_old && !digest_equal(&old, &ds_)) {
		/* Replaced: the image dst named before goes, unless another tag needs it. */
		struct buf why = BUF_INIT;
		bool shared;

		siblings_check(r, dst_repo, dst_tag, &old, &shared, &why);
		digest_format(&old, a);
		if (shared)
			log_info("%s:%s replaced; its previous image %s stays: %s", dst_repo,
				 dst_tag, a, buf_cstr(&why));
		else if (registry_manifest_delete(r, dst_repo, &old))
			log_warn("%s:%s replaced; its previous image %s could not be deleted",
				 dst_repo, dst_tag, a);
		buf_release(&why);
	}
	return 0;
}

int registry_repo_delete(struct registry *r, const char *repo)
{
	struct acr_repo info;
	int rc;

	if (!repo_name_valid(repo))
		return -ENOENT;
	if (!registry_is_acr(r)) {
		log_error("%s: cannot delete repository %s: this registry has no API for it "
			  "(only ACR's DELETE /acr/v1/<repo>); with no tags left, its own "
			  "garbage collection removes it", registry_host(r), repo);
		return -EPERM;
	}
	rc = registry_acr_repo(r, repo, &info);
	if (!rc && acr_locked(&info.attrs)) {
		log_error("repository %s is %s (%s): not deleted; nothing changed", repo,
			  REGISTRY_LOCKED_HINT, acr_lock_name(&info.attrs));
		return -EPERM;
	}
	if (rc && rc != -EACCES)
		return rc;
	rc = registry_acr_repo_delete(r, repo);
	if (!rc)
		log_info("deleted repository %s", repo);
	return rc;
}
