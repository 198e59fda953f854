/*
 * Design: manifest_parse() is a strict reader over cJSON's tree. Every
 * accessor goes through jr_member() / get_*() below, which check the type,
 * reject duplicate keys, and write one sentence into `why` on failure; the
 * first failure ends the parse. The struct is built in place and released
 * by manifest_free() whatever state it is in.
 *
 * The fetch functions hash the exact bytes they received; nothing in here
 * trusts a header or a JSON field for a digest.
 */
#include "registry/manifest.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "registry/http.h"
#include "registry/internal.h"
#include "registry/jsonr.h"
#include "registry/names.h"

#define MEDIA_TYPE_MAX 255
#define PLATFORM_MAX 64
#define URLS_MAX 64
#define URL_MAX 8192

static const char *const accept_hdrs[] = {
	"Accept: " MEDIA_OCI_MANIFEST ", " MEDIA_OCI_INDEX ", " MEDIA_DOCKER_MANIFEST
	", " MEDIA_DOCKER_LIST,
	NULL,
};

enum manifest_kind manifest_kind_of(const char *mt)
{
	if (!mt)
		return 0;
	if (strcmp(mt, MEDIA_OCI_MANIFEST) == 0 || strcmp(mt, MEDIA_DOCKER_MANIFEST) == 0)
		return MANIFEST_IMAGE;
	if (strcmp(mt, MEDIA_OCI_INDEX) == 0 || strcmp(mt, MEDIA_DOCKER_LIST) == 0)
		return MANIFEST_INDEX;
	return 0;
}

static bool is_schema1(const char *mt)
{
	return strncmp(mt, "application/vnd.docker.distribution.manifest.v1+", 48) == 0;
}

/* A string member; NULL (and 0) when absent and !required. */
static int get_str(struct jr *p, const cJSON *obj, const char *where, const char *key,
		   bool required, const cJSON **it)
{
	int rc = jr_member(p, obj, where, key, it);

	if (rc)
		return rc;
	if (!*it)
		return required ? jr_fail(p, -EINVAL, "%s: \"%s\" is missing", where, key) : 0;
	if (!cJSON_IsString(*it) || !(*it)->valuestring)
		return jr_fail(p, -EINVAL, "%s: \"%s\" is not a string", where, key);
	return 0;
}

static int dup_media_type(struct jr *p, const char *where, const char *s, char **out)
{
	if (!jr_printable(s, MEDIA_TYPE_MAX) || !strchr(s, '/'))
		return jr_fail(p, -EINVAL, "%s: \"mediaType\" is not a media type", where);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static bool platform_ok(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++) {
		char c = *s;

		if (n >= PLATFORM_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '+' || c == '-'))
			return false;
	}
	return n > 0;
}

static int get_platform_str(struct jr *p, const cJSON *obj, const char *where,
			    const char *key, bool required, char **out)
{
	const cJSON *it;
	int rc = get_str(p, obj, where, key, required, &it);

	if (rc || !it)
		return rc;
	if (!platform_ok(it->valuestring))
		return jr_fail(p, -EINVAL, "%s: platform \"%s\" is not [A-Za-z0-9._+-]{1,%d}",
			     where, key, PLATFORM_MAX);
	*out = strdup(it->valuestring);
	return *out ? 0 : -ENOMEM;
}

static void descriptor_release(struct descriptor *d)
{
	free(d->media_type);
	for (size_t i = 0; i < d->nurls; i++)
		free(d->urls[i]);
	free(d->urls);
	free(d->os);
	free(d->architecture);
	free(d->variant);
	memset(d, 0, sizeof(*d));
}

static int parse_urls(struct jr *p, const cJSON *obj, const char *where, struct descriptor *d)
{
	const cJSON *arr, *u;
	int n, rc = jr_member(p, obj, where, "urls", &arr);

	if (rc || !arr || cJSON_IsNull(arr))
		return rc;
	if (!cJSON_IsArray(arr))
		return jr_fail(p, -EINVAL, "%s: \"urls\" is not an array", where);
	n = cJSON_GetArraySize(arr);
	if (n > URLS_MAX)
		return jr_fail(p, -EINVAL, "%s: more than %d urls", where, URLS_MAX);
	if (n == 0)
		return 0;
	d->urls = calloc((size_t)n, sizeof(*d->urls));
	if (!d->urls)
		return -ENOMEM;
	cJSON_ArrayForEach(u, arr) {
		if (!cJSON_IsString(u) || !u->valuestring)
			return jr_fail(p, -EINVAL, "%s: an entry of \"urls\" is not a string", where);
		if (!jr_printable(u->valuestring, URL_MAX))
			return jr_fail(p, -EINVAL, "%s: an entry of \"urls\" is not a URL", where);
		d->urls[d->nurls] = strdup(u->valuestring);
		if (!d->urls[d->nurls])
			return -ENOMEM;
		d->nurls++;
	}
	return 0;
}

static int parse_platform(struct jr *p, const cJSON *obj, const char *where,
			  struct descriptor *d)
{
	const cJSON *plat;
	int rc = jr_member(p, obj, where, "platform", &plat);

	if (rc || !plat || cJSON_IsNull(plat))
		return rc;
	if (!cJSON_IsObject(plat))
		return jr_fail(p, -EINVAL, "%s: \"platform\" is not an object", where);
	rc = get_platform_str(p, plat, where, "os", true, &d->os);
	if (!rc)
		rc = get_platform_str(p, plat, where, "architecture", true, &d->architecture);
	if (!rc)
		rc = get_platform_str(p, plat, where, "variant", false, &d->variant);
	return rc;
}

static int parse_descriptor(struct jr *p, const cJSON *obj, const char *where,
			    bool index_entry, struct descriptor *d)
{
	const cJSON *mt;
	int rc;

	if (!cJSON_IsObject(obj))
		return jr_fail(p, -EINVAL, "%s is not an object", where);
	rc = get_str(p, obj, where, "mediaType", true, &mt);
	if (!rc)
		rc = dup_media_type(p, where, mt->valuestring, &d->media_type);
	if (!rc)
		rc = jr_digest(p, obj, where, &d->digest);
	if (!rc)
		rc = jr_size(p, obj, where, &d->size);
	if (!rc)
		rc = parse_urls(p, obj, where, d);
	if (!rc && index_entry)
		rc = parse_platform(p, obj, where, d);
	return rc;
}

static int parse_list(struct jr *p, const cJSON *root, const char *key, bool index_entry,
		      struct descriptor **out, size_t *nout)
{
	const cJSON *arr, *it;
	char where[64];
	int n, rc = jr_member(p, root, "manifest", key, &arr);

	if (rc)
		return rc;
	if (!arr)
		return jr_fail(p, -EINVAL, "manifest: \"%s\" is missing", key);
	if (!cJSON_IsArray(arr))
		return jr_fail(p, -EINVAL, "manifest: \"%s\" is not an array", key);
	n = cJSON_GetArraySize(arr);
	if (n > MANIFEST_MAX_ENTRIES)
		return jr_fail(p, -EFBIG, "manifest: %d entries in \"%s\" (at most %d)", n, key,
			     MANIFEST_MAX_ENTRIES);
	if (n == 0)
		return 0;
	*out = calloc((size_t)n, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr) {
		snprintf(where, sizeof(where), "%s[%zu]", key, *nout); /* cannot truncate */
		rc = parse_descriptor(p, it, where, index_entry, &(*out)[*nout]);
		(*nout)++; /* counted even when half-built: manifest_free releases it */
		if (rc)
			return rc;
	}
	return 0;
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	free(m->media_type);
	free(m->bytes);
	descriptor_release(&m->config);
	for (size_t i = 0; i < m->nlayers; i++)
		descriptor_release(&m->layers[i]);
	free(m->layers);
	for (size_t i = 0; i < m->nmanifests; i++)
		descriptor_release(&m->manifests[i]);
	free(m->manifests);
	free(m);
}

/* The media type of a Content-Type header: parameters and blanks dropped. */
static char *content_type_base(const char *ct)
{
	size_t n;

	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, "; \t");
	return strndup(ct, n);
}

static int parse_tree(struct jr *p, const cJSON *root, const char *content_type,
		      struct manifest *m)
{
	const cJSON *sv, *mt, *cfg, *has_manifests, *has_layers;
	int rc;

	if (!cJSON_IsObject(root))
		return jr_fail(p, -EINVAL, "manifest: not a JSON object");
	rc = jr_member(p, root, "manifest", "schemaVersion", &sv);
	if (rc)
		return rc;
	if (!sv)
		return jr_fail(p, -EINVAL, "manifest: \"schemaVersion\" is missing");
	if (!cJSON_IsNumber(sv))
		return jr_fail(p, -EINVAL, "manifest: \"schemaVersion\" is not a number");
	if (sv->valuedouble == 1)
		return jr_fail(p, -ENOTSUP, "manifest: Docker schema 1 is not supported");
	if (sv->valuedouble != 2)
		return jr_fail(p, -ENOTSUP, "manifest: schemaVersion %g is not supported",
			     sv->valuedouble);
	rc = get_str(p, root, "manifest", "mediaType", false, &mt);
	if (rc)
		return rc;
	if (mt) {
		rc = dup_media_type(p, "manifest", mt->valuestring, &m->media_type);
	} else if (content_type && *content_type) {
		m->media_type = content_type_base(content_type);
		if (!m->media_type)
			return -ENOMEM;
		if (!jr_printable(m->media_type, MEDIA_TYPE_MAX)) {
			free(m->media_type);
			m->media_type = NULL;
		}
	}
	if (rc)
		return rc;
	if ((rc = jr_member(p, root, "manifest", "manifests", &has_manifests)) ||
	    (rc = jr_member(p, root, "manifest", "layers", &has_layers)))
		return rc;
	if (!m->media_type) {
		/* Old OCI manifests may carry no mediaType; their shape says what they are. */
		const char *guess = has_manifests ? MEDIA_OCI_INDEX :
				    has_layers	  ? MEDIA_OCI_MANIFEST :
						    NULL;

		if (!guess)
			return jr_fail(p, -EINVAL, "manifest: no media type and no known shape");
		m->media_type = strdup(guess);
		if (!m->media_type)
			return -ENOMEM;
	}
	if (is_schema1(m->media_type))
		return jr_fail(p, -ENOTSUP, "manifest: Docker schema 1 is not supported");
	m->kind = manifest_kind_of(m->media_type);
	if (!m->kind)
		return jr_fail(p, -ENOTSUP, "manifest: media type %s is not an image or an index",
			     m->media_type);
	if (m->kind == MANIFEST_INDEX)
		return parse_list(p, root, "manifests", true, &m->manifests, &m->nmanifests);
	rc = jr_member(p, root, "manifest", "config", &cfg);
	if (rc)
		return rc;
	if (!cfg)
		return jr_fail(p, -EINVAL, "manifest: \"config\" is missing");
	rc = parse_descriptor(p, cfg, "config", false, &m->config);
	if (rc)
		return rc;
	return parse_list(p, root, "layers", false, &m->layers, &m->nlayers);
}

/* Does a string hold the escape \u0000? (Backslashes occur only in strings.) */
static bool has_nul_escape(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] != '\\')
			continue;
		if (s[i + 1] == 'u' && i + 6 <= len && memcmp(s + i + 2, "0000", 4) == 0)
			return true;
		i++; /* the escaped character */
	}
	return false;
}

int manifest_parse_why(const void *bytes, size_t len, const char *content_type,
		       struct manifest **out, char *why, size_t whysz)
{
	struct jr p = { why, whysz };
	struct manifest *m = NULL;
	cJSON *root = NULL;
	const char *end = NULL;
	int rc;

	*out = NULL;
	if (whysz)
		why[0] = '\0';
	if (len > MANIFEST_MAX_BYTES) {
		rc = jr_fail(&p, -EFBIG, "manifest: %zu bytes (at most %u)", len, MANIFEST_MAX_BYTES);
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = -ENOMEM;
		goto out;
	}
	m->bytes = malloc(len + 1);
	if (!m->bytes) {
		rc = -ENOMEM;
		goto out;
	}
	if (len)
		memcpy(m->bytes, bytes, len);
	m->bytes[len] = '\0';
	m->len = len;
	rc = digest_of_buf(&m->digest, m->bytes, len);
	if (rc)
		goto out;
	if (memchr(m->bytes, '\0', len)) {
		rc = jr_fail(&p, -EINVAL, "manifest: not JSON (a NUL byte)");
		goto out;
	}
	if (has_nul_escape(m->bytes, len)) {
		/* cJSON would cut the string there: we would read another value than others do. */
		rc = jr_fail(&p, -EINVAL, "manifest: a \\u0000 escape in a string");
		goto out;
	}
	/*
	 * The whole input must be one JSON value: no trailing bytes. cJSON checks
	 * that by finding the terminating NUL inside the length it is given.
	 */
	root = cJSON_ParseWithLengthOpts(m->bytes, len + 1, &end, 1);
	if (!root) {
		rc = jr_fail(&p, -EINVAL, "manifest: not JSON (error near byte %td)",
			   end ? end - m->bytes : (ptrdiff_t)0);
		goto out;
	}
	rc = parse_tree(&p, root, content_type, m);
	if (rc == -ENOMEM)
		jr_fail(&p, -ENOMEM, "manifest: out of memory");
out:
	cJSON_Delete(root);
	if (rc) {
		manifest_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int manifest_parse(const void *bytes, size_t len, const char *content_type,
		   struct manifest **out)
{
	char why[256];
	int rc = manifest_parse_why(bytes, len, content_type, out, why, sizeof(why));

	if (rc)
		log_error("invalid manifest: %s", why);
	return rc;
}

/* Check repo and ref; *ref_digest set (and *by_digest true) when ref is a digest. */
static int check_ref(const char *repo, const char *ref, struct digest *ref_digest,
		     bool *by_digest)
{
	*by_digest = false;
	if (!repo || !ref || !repo_name_valid(repo))
		return -ENOENT;
	if (digest_parse(ref_digest, ref) == 0) {
		*by_digest = true;
		return 0;
	}
	return tag_valid(ref) ? 0 : -ENOENT;
}

static int manifest_url(struct registry *r, const char *repo, const char *ref, struct buf *url,
			struct buf *scope)
{
	int rc = buf_addf(url, "%s/v2/%s/manifests/%s", reg_url(r), repo, ref);

	if (!rc)
		rc = buf_addf(scope, "repository:%s:pull", repo);
	return rc;
}

/*
 * A Docker-Content-Digest header against the digest we trust: 0 if absent or
 * equal, -EIO (logged) if it names another digest. A header we cannot parse
 * (another algorithm) is only noted: the bytes are what we verify.
 */
static int check_header_digest(const char *method, const char *url, const char *hdr,
			       const struct digest *want)
{
	struct digest hd;
	char a[DIGEST_STR_SIZE], b[DIGEST_STR_SIZE];

	if (!hdr)
		return 0;
	if (digest_parse(&hd, hdr) != 0) {
		log_debug("%s %s: ignoring Docker-Content-Digest \"%.100s\"", method, url, hdr);
		return 0;
	}
	if (digest_equal(&hd, want))
		return 0;
	log_error("%s %s: Docker-Content-Digest %s disagrees with %s", method, url,
		  digest_format(&hd, a), digest_format(want, b));
	return -EIO;
}

int registry_manifest_get(struct registry *r, const char *repo, const char *ref,
			  struct manifest **out)
{
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf url = BUF_INIT, scope = BUF_INIT;
	struct manifest *m = NULL;
	struct digest want, got;
	bool by_digest;
	char why[256], a[DIGEST_STR_SIZE], b[DIGEST_STR_SIZE];
	int rc;

	*out = NULL;
	rc = check_ref(repo, ref, &want, &by_digest);
	if (rc)
		return rc;
	rc = manifest_url(r, repo, ref, &url, &scope);
	if (rc)
		goto out;
	req.url = url.data;
	req.headers = accept_hdrs;
	req.follow_redirects = true;
	/* One byte over the limit tells "too big" from "exactly at the limit". */
	req.max_body = (uint64_t)MANIFEST_MAX_BYTES + 1;
	rc = reg_send(r, scope.data, &req, &resp);
	if (rc == -EFBIG) {
		/* A body that does not end is the server's fault, not a big file. */
		log_error("GET %s: the answer is larger than %u bytes (the limit of a manifest)",
			  url.data, MANIFEST_MAX_BYTES);
		rc = -EIO;
		goto out;
	}
	if (rc || resp.status != 200) {
		rc = reg_fail("GET", url.data, rc, &resp);
		if (!rc)
			rc = -EIO; /* a 2xx/3xx that is not 200 */
		goto out;
	}
	/* The digest first: bytes that are not what was asked for are not parsed. */
	rc = digest_of_buf(&got, resp.body.data, resp.body.len);
	if (rc)
		goto out;
	if (by_digest && !digest_equal(&got, &want)) {
		log_error("GET %s: the manifest's bytes hash to %s, not %s", url.data,
			  digest_format(&got, a), digest_format(&want, b));
		rc = -EIO;
		goto out;
	}
	rc = check_header_digest("GET", url.data, resp.docker_content_digest, &got);
	if (rc)
		goto out;
	rc = manifest_parse_why(resp.body.data, resp.body.len, resp.content_type, &m, why,
				sizeof(why));
	if (rc) {
		log_error("GET %s: invalid manifest: %s", url.data, why);
		if (rc == -EINVAL)
			rc = -EIO;
		goto out;
	}
	*out = m;
	m = NULL;
out:
	manifest_free(m);
	http_resp_release(&resp);
	buf_release(&url);
	buf_release(&scope);
	return rc;
}

int registry_manifest_head(struct registry *r, const char *repo, const char *ref,
			   struct digest *digest, char **media_type)
{
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf url = BUF_INIT, scope = BUF_INIT;
	struct manifest *m = NULL;
	struct digest want, hd;
	bool by_digest;
	char a[DIGEST_STR_SIZE];
	int rc;

	if (media_type)
		*media_type = NULL;
	memset(digest, 0, sizeof(*digest));
	rc = check_ref(repo, ref, &want, &by_digest);
	if (rc)
		return rc;
	rc = manifest_url(r, repo, ref, &url, &scope);
	if (rc)
		goto out;
	req.method = "HEAD";
	req.url = url.data;
	req.headers = accept_hdrs;
	req.follow_redirects = true;
	rc = reg_send(r, scope.data, &req, &resp);
	if (rc || resp.status != 200) {
		rc = reg_fail("HEAD", url.data, rc, &resp);
		if (!rc)
			rc = -EIO;
		goto out;
	}
	if (!resp.docker_content_digest || digest_parse(&hd, resp.docker_content_digest) != 0 ||
	    (media_type && !resp.content_type)) {
		/* Nothing to trust without the bytes: fetch and hash them. */
		log_debug("HEAD %s: no usable Docker-Content-Digest / Content-Type; using GET",
			  url.data);
		rc = registry_manifest_get(r, repo, ref, &m);
		if (rc)
			goto out;
		*digest = m->digest;
		if (media_type) {
			*media_type = strdup(m->media_type);
			if (!*media_type)
				rc = -ENOMEM;
		}
		goto out;
	}
	if (by_digest && !digest_equal(&hd, &want)) {
		log_error("HEAD %s: the registry answers for %s", url.data, digest_format(&hd, a));
		rc = -EIO;
		goto out;
	}
	*digest = hd;
	if (media_type) {
		*media_type = content_type_base(resp.content_type);
		if (!*media_type)
			rc = -ENOMEM;
	}
out:
	if (rc) {
		memset(digest, 0, sizeof(*digest));
		if (media_type) {
			free(*media_type);
			*media_type = NULL;
		}
	}
	manifest_free(m);
	http_resp_release(&resp);
	buf_release(&url);
	buf_release(&scope);
	return rc;
}
