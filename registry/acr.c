/*
 * acr — see acr.h. No state of its own: each call is one request, or one
 * listing (reg_get_pages), whose pages are parsed into growable arrays.
 */
#include "registry/acr.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "registry/errors.h"
#include "registry/http.h"
#include "registry/internal.h"
#include "registry/link.h"
#include "registry/names.h"

/* ---- small parsers ---------------------------------------------------------- */

static int digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int acr_time_parse(const char *s, struct timespec *out)
{
	struct tm tm;
	int y, mo, d, h, mi, se;
	long ns = 0, scale = 100000000;
	const char *p;
	time_t t;

	out->tv_sec = 0;
	out->tv_nsec = 0;
	if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -EINVAL;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		int nd = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, nd++) {
			if (nd >= 9)
				return -EINVAL;
			ns += (*p - '0') * scale;
			scale /= 10;
		}
		if (!nd)
			return -EINVAL;
	}
	if ((*p != 'Z' && *p != 'z') || p[1])
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	out->tv_sec = t;
	out->tv_nsec = ns;
	return 0;
}

char *acr_time_format(const struct timespec *t, char *buf, size_t size)
{
	struct tm tm;
	time_t s = t->tv_sec;
	int n;

	if (!size)
		return buf;
	buf[0] = '\0';
	if (!gmtime_r(&s, &tm))
		return buf;
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%07ldZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (long)(t->tv_nsec / 100));
	if (n < 0 || (size_t)n >= size)
		buf[0] = '\0';
	return buf;
}

char *acr_attrs_format(const struct acr_attrs *a, char *buf, size_t size)
{
	int n = snprintf(buf, size,
			 "{\"deleteEnabled\":%s,\"writeEnabled\":%s,\"readEnabled\":%s,"
			 "\"listEnabled\":%s}",
			 a->delete_enabled ? "true" : "false", a->write_enabled ? "true" : "false",
			 a->read_enabled ? "true" : "false", a->list_enabled ? "true" : "false");

	if (size && (n < 0 || (size_t)n >= size))
		buf[0] = '\0';
	return buf;
}

bool acr_locked(const struct acr_attrs *a)
{
	return !a->delete_enabled || !a->write_enabled;
}

const char *acr_lock_name(const struct acr_attrs *a)
{
	if (!a->write_enabled && !a->delete_enabled)
		return "writeEnabled=false, deleteEnabled=false";
	if (!a->write_enabled)
		return "writeEnabled=false";
	if (!a->delete_enabled)
		return "deleteEnabled=false";
	return "";
}

static bool json_bool(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : true;
}

static void parse_attrs(const cJSON *obj, struct acr_attrs *a)
{
	const cJSON *ca = cJSON_GetObjectItemCaseSensitive(obj, "changeableAttributes");

	if (!cJSON_IsObject(ca))
		ca = NULL; /* absent: nothing locked */
	a->delete_enabled = json_bool(ca, "deleteEnabled");
	a->write_enabled = json_bool(ca, "writeEnabled");
	a->read_enabled = json_bool(ca, "readEnabled");
	a->list_enabled = json_bool(ca, "listEnabled");
}

static void parse_time_field(const cJSON *obj, const char *key, struct timespec *t)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsString(v) || acr_time_parse(v->valuestring, t)) {
		t->tv_sec = 0;
		t->tv_nsec = 0;
	}
}

static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One tag object of a _tags answer; -EINVAL for an unusable one (skipped). */
static int parse_tag(const cJSON *o, const char *what, struct acr_tag *t)
{
	const char *name = json_str(o, "name"), *dg = json_str(o, "digest");

	memset(t, 0, sizeof(*t));
	if (!name || !tag_valid(name)) {
		log_warn("%s: skipping an invalid tag name %.80s", what, name ? name : "(none)");
		return -EINVAL;
	}
	t->name = strdup(name);
	if (!t->name)
		return -ENOMEM;
	t->has_digest = dg && digest_parse(&t->digest, dg) == 0;
	parse_time_field(o, "createdTime", &t->created);
	parse_time_field(o, "lastUpdateTime", &t->updated);
	parse_attrs(o, &t->attrs);
	return 0;
}

/* ---- requests ----------------------------------------------------------------- */

static int scope_of(const char *repo, const char *action, struct buf *scope)
{
	return buf_addf(scope, "repository:%s:%s", repo, action);
}

/* GET `url` (one JSON object) needing `scope`; *root is the caller's. */
static int get_json(struct registry *r, const char *scope, const char *url, cJSON **root)
{
	static const char *const hdrs[] = { "Accept: application/json", NULL };
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	char lu[URL_LOG_MAX];
	int rc;

	*root = NULL;
	req.url = url;
	req.headers = hdrs;
	req.max_body = 1u << 20;
	rc = reg_send(r, scope, &req, &resp);
	if (rc || resp.status != 200) {
		rc = reg_fail("GET", url, rc, &resp);
		if (!rc)
			rc = -EIO;
		goto out;
	}
	*root = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len);
	if (!cJSON_IsObject(*root)) {
		url_for_log(url, lu, sizeof(lu));
		log_error("GET %s: the answer is not a JSON object", lu);
		cJSON_Delete(*root);
		*root = NULL;
		rc = -EIO;
	}
out:
	http_resp_release(&resp);
	return rc;
}

/* DELETE `url` needing repository:<repo>:delete; 200/202/204 → 0. */
static int delete_acr(struct registry *r, const char *repo, const char *url)
{
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf scope = BUF_INIT;
	int rc = scope_of(repo, "delete", &scope);

	if (rc)
		return rc;
	req.method = "DELETE";
	req.url = url;
	req.max_body = 1u << 20;
	rc = reg_send(r, scope.data, &req, &resp);
	if (rc || (resp.status != 200 && resp.status != 202 && resp.status != 204)) {
		rc = reg_fail("DELETE", url, rc, &resp);
		if (!rc)
			rc = -EIO;
	}
	http_resp_release(&resp);
	buf_release(&scope);
	return rc;
}

/* ---- tags --------------------------------------------------------------------- */

/*
 * The items of one /acr/v1 listing (`key`: "tags" or "manifests"), page by
 * page, into a growing array of `elem`-byte records, each filled by
 * `parse` (0: kept; -ENOMEM: stop; another -errno: the item is skipped).
 */
struct items_ctx {
	const char *repo;
	const char *key;
	size_t elem;
	int (*parse)(const cJSON *o, const char *repo, void *out);
	void *v;
	size_t n, cap;
};

static int items_page(void *vctx, cJSON *root)
{
	struct items_ctx *c = vctx;
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, c->key), *it;
	int rc;

	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr)) {
		log_error("%s: \"%s\" of /acr/v1 is not an array", c->repo, c->key);
		return -EIO;
	}
	cJSON_ArrayForEach(it, arr) {
		if (c->n == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 64;
			void *g = reallocarray(c->v, cap, c->elem);

			if (!g)
				return -ENOMEM;
			c->v = g;
			c->cap = cap;
		}
		rc = c->parse(it, c->repo, (char *)c->v + c->n * c->elem);
		if (rc == -ENOMEM)
			return rc;
		if (!rc)
			c->n++;
	}
	return 0;
}

/* GET every page of /acr/v1/<repo>/<what>?n=ACR_PAGE into `c` (metadata_read). */
static int get_items(struct registry *r, const char *repo, const char *what,
		     struct items_ctx *c)
{
	struct buf url = BUF_INIT, scope = BUF_INIT;
	int rc;

	rc = buf_addf(&url, "%s/acr/v1/%s/%s?n=%d", reg_url(r), repo, what, ACR_PAGE);
	if (!rc)
		rc = scope_of(repo, "metadata_read", &scope);
	if (!rc)
		rc = reg_get_pages(r, scope.data, url.data, items_page, c);
	buf_release(&url);
	buf_release(&scope);
	return rc;
}

static int parse_tag_item(const cJSON *o, const char *repo, void *out)
{
	return parse_tag(o, repo, out);
}

static int tag_cmp(const void *a, const void *b)
{
	return strcmp(((const struct acr_tag *)a)->name, ((const struct acr_tag *)b)->name);
}

void acr_tags_free(struct acr_tag *tags, size_t n)
{
	if (!tags)
		return;
	for (size_t i = 0; i < n; i++)
		free(tags[i].name);
	free(tags);
}

int registry_acr_tags(struct registry *r, const char *repo, struct acr_tag **tags, size_t *n)
{
	struct items_ctx c = { repo, "tags", sizeof(struct acr_tag), parse_tag_item, NULL, 0, 0 };
	struct acr_tag *v;
	size_t i, w;
	int rc;

	*tags = NULL;
	*n = 0;
	if (!repo_name_valid(repo))
		return -ENOENT;
	rc = get_items(r, repo, "_tags", &c);
	v = c.v;
	if (rc) {
		acr_tags_free(v, c.n);
		return rc;
	}
	/* By name, each once (a tag seen on two pages keeps its first answer). */
	if (c.n)
		qsort(v, c.n, sizeof(*v), tag_cmp);
	for (i = w = 0; i < c.n; i++) {
		if (w && strcmp(v[w - 1].name, v[i].name) == 0) {
			free(v[i].name);
			continue;
		}
		v[w++] = v[i];
	}
	*tags = v;
	*n = w;
	return 0;
}

int registry_acr_tag(struct registry *r, const char *repo, const char *tag, struct acr_tag *out)
{
	struct buf url = BUF_INIT, scope = BUF_INIT;
	cJSON *root = NULL;
	const cJSON *t;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!repo_name_valid(repo) || !tag_valid(tag))
		return -ENOENT;
	rc = buf_addf(&url, "%s/acr/v1/%s/_tags/%s", reg_url(r), repo, tag);
	if (!rc)
		rc = scope_of(repo, "metadata_read", &scope);
	if (!rc)
		rc = get_json(r, scope.data, url.data, &root);
	if (rc)
		goto out;
	t = cJSON_GetObjectItemCaseSensitive(root, "tag");
	rc = cJSON_IsObject(t) ? parse_tag(t, repo, out) : -EINVAL;
	if (!rc && strcmp(out->name, tag) != 0)
		rc = -EINVAL;
	if (rc == -EINVAL) {
		log_error("GET /acr/v1/%s/_tags/%s: the answer does not describe that tag", repo, tag);
		rc = -EIO;
	}
	if (rc) {
		free(out->name);
		memset(out, 0, sizeof(*out));
	}
out:
	cJSON_Delete(root);
	buf_release(&url);
	buf_release(&scope);
	return rc;
}

/* ---- repository ----------------------------------------------------------------- */

int registry_acr_repo(struct registry *r, const char *repo, struct acr_repo *out)
{
	struct buf url = BUF_INIT, scope = BUF_INIT;
	cJSON *root = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!repo_name_valid(repo))
		return -ENOENT;
	rc = buf_addf(&url, "%s/acr/v1/%s", reg_url(r), repo);
	if (!rc)
		rc = scope_of(repo, "metadata_read", &scope);
	if (!rc)
		rc = get_json(r, scope.data, url.data, &root);
	if (!rc) {
		parse_time_field(root, "createdTime", &out->created);
		parse_time_field(root, "lastUpdateTime", &out->updated);
		parse_attrs(root, &out->attrs);
	}
	cJSON_Delete(root);
	buf_release(&url);
	buf_release(&scope);
	return rc;
}

int registry_acr_untag(struct registry *r, const char *repo, const char *tag)
{
	struct buf url = BUF_INIT;
	int rc;

	if (!repo_name_valid(repo) || !tag_valid(tag))
		return -ENOENT;
	rc = buf_addf(&url, "%s/acr/v1/%s/_tags/%s", reg_url(r), repo, tag);
	if (!rc)
		rc = delete_acr(r, repo, url.data);
	buf_release(&url);
	return rc;
}

int registry_acr_repo_delete(struct registry *r, const char *repo)
{
	struct buf url = BUF_INIT;
	int rc;

	if (!repo_name_valid(repo))
		return -ENOENT;
	rc = buf_addf(&url, "%s/acr/v1/%s", reg_url(r), repo);
	if (!rc)
		rc = delete_acr(r, repo, url.data);
	buf_release(&url);
	return rc;
}

/* ---- manifests ------------------------------------------------------------------ */

static void manifest_clear(struct acr_manifest *m)
{
	for (size_t i = 0; i < m->ntags; i++)
		free(m->tags[i]);
	free(m->tags);
	free(m->media_type);
}

void acr_manifests_free(struct acr_manifest *m, size_t n)
{
	if (!m)
		return;
	for (size_t i = 0; i < n; i++)
		manifest_clear(&m[i]);
	free(m);
}

static int parse_manifest(const cJSON *o, const char *repo, struct acr_manifest *m)
{
	const char *dg = json_str(o, "digest"), *mt = json_str(o, "mediaType");
	const cJSON *tags = cJSON_GetObjectItemCaseSensitive(o, "tags"), *t;
	size_t nt = cJSON_IsArray(tags) ? (size_t)cJSON_GetArraySize(tags) : 0;

	memset(m, 0, sizeof(*m));
	if (!dg || digest_parse(&m->digest, dg)) {
		log_warn("%s: skipping a manifest with an invalid digest %.80s", repo,
			 dg ? dg : "(none)");
		return -EINVAL;
	}
	m->media_type = strdup(mt ? mt : "");
	m->tags = calloc(nt ? nt : 1, sizeof(*m->tags));
	if (!m->media_type || !m->tags)
		goto nomem;
	if (!cJSON_IsArray(tags))
		tags = NULL;
	cJSON_ArrayForEach(t, tags) {
		if (!cJSON_IsString(t) || !tag_valid(t->valuestring))
			continue;
		m->tags[m->ntags] = strdup(t->valuestring);
		if (!m->tags[m->ntags])
			goto nomem;
		m->ntags++;
	}
	parse_attrs(o, &m->attrs);
	return 0;
nomem:
	manifest_clear(m);
	memset(m, 0, sizeof(*m));
	return -ENOMEM;
}

static int parse_manifest_item(const cJSON *o, const char *repo, void *out)
{
	return parse_manifest(o, repo, out);
}

int registry_acr_manifests(struct registry *r, const char *repo, struct acr_manifest **out,
			   size_t *n)
{
	struct items_ctx c = { repo, "manifests", sizeof(struct acr_manifest), parse_manifest_item,
			       NULL, 0, 0 };
	int rc;

	*out = NULL;
	*n = 0;
	if (!repo_name_valid(repo))
		return -ENOENT;
	rc = get_items(r, repo, "_manifests", &c);
	if (rc) {
		acr_manifests_free(c.v, c.n);
		return rc;
	}
	*out = c.v;
	*n = c.n;
	return 0;
}
