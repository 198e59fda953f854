/*
 * Design: struct registry is immutable after registry_new() except for the
 * HTTP layer's own pool, the authn state (its own locks), the modules' slots
 * (atomic) and the ACR verdict (acr_lock); requests run without any lock
 * held here.
 */
#include "registry/registry.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/challenge.h"
#include "auth/util.h"
#include "common/log.h"
#include "registry/authn.h"
#include "registry/errors.h"
#include "registry/http.h"
#include "registry/internal.h"
#include "registry/link.h"
#include "registry/names.h"

struct registry {
	char *url;  /* https://host:port */
	char *host; /* host:port */
	struct http *http;
	struct authn *authn; /* credentials, challenge, tokens (own locks) */
	/* Modules' own state (internal.h reg_ext_*); set once, atomically. */
	struct {
		void *p;
		void (*free_fn)(void *p);
	} ext[REG_EXT_COUNT];
	enum registry_acr acr_mode;
	/* The ACR verdict (registry_is_acr): acr_lock guards acr_state, a leaf
	 * lock never held across the probe; acr_cond wakes the callers that
	 * wait for a probe in flight. */
	pthread_mutex_t acr_lock;
	pthread_cond_t acr_cond;
	enum { ACR_UNKNOWN, ACR_PROBING, ACR_YES, ACR_NO } acr_state;
};

int registry_url_parse(const char *arg, char **url, char **host)
{
	const char *scheme = "https", *h = arg;
	size_t n;
	char *hh;

	*url = *host = NULL;
	if (strncasecmp(arg, "https://", 8) == 0) {
		h = arg + 8;
	} else if (strncasecmp(arg, "http://", 7) == 0) {
		scheme = "http";
		h = arg + 7;
	} else if (strstr(arg, "://")) {
		return -EINVAL;
	}
	n = strlen(h);
	if (n && h[n - 1] == '/')
		n--;
	if (!n || n > 253 + 6)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
		      c == '[' || c == ']'))
			return -EINVAL;
	}
	if (h[0] == ':' || h[0] == '.' || h[0] == '-')
		return -EINVAL;
	hh = strndup(h, n);
	if (!hh)
		return -ENOMEM;
	for (char *p = hh; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	*url = malloc(strlen(scheme) + 3 + n + 1);
	if (!*url) {
		free(hh);
		return -ENOMEM;
	}
	sprintf(*url, "%s://%s", scheme, hh);
	*host = hh;
	return 0;
}

int registry_new(struct registry **out, const struct registry_opts *o)
{
	struct registry *r;
	struct http_opts ho = { 0 };
	char *origin = NULL, *path = NULL;
	int rc;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->acr_lock, NULL);
	pthread_cond_init(&r->acr_cond, NULL);
	r->acr_mode = o->acr;
	rc = url_split(o->url, &origin, &path);
	if (rc)
		goto fail;
	r->url = origin;
	origin = NULL;
	r->host = strdup(strstr(r->url, "://") + 3);
	if (!r->host) {
		rc = -ENOMEM;
		goto fail;
	}
	ho.ca_file = o->ca_file;
	ho.max_retries = o->max_retries;
	ho.backoff_ms = o->backoff_ms;
	ho.deadline_ms = o->timeout_ms;
	rc = http_new(&r->http, &ho);
	if (rc)
		goto fail;
	rc = authn_new(&r->authn, r->http, o->creds, r->url);
	if (rc)
		goto fail;
	free(path);
	*out = r;
	return 0;
fail:
	free(origin);
	free(path);
	registry_free(r);
	return rc;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	for (int i = 0; i < REG_EXT_COUNT; i++)
		if (r->ext[i].p)
			r->ext[i].free_fn(r->ext[i].p);
	authn_free(r->authn);
	http_free(r->http);
	pthread_cond_destroy(&r->acr_cond);
	pthread_mutex_destroy(&r->acr_lock);
	free(r->url);
	free(r->host);
	free(r);
}

const char *registry_host(const struct registry *r)
{
	return r->host;
}

const char *registry_client_version(void)
{
	return curl_version();
}

uint64_t registry_request_count(const struct registry *r)
{
	return http_request_count(r->http);
}

void registry_http_stats(const struct registry *r, struct http_stats *out)
{
	http_stats_get(r->http, out);
}

const char *reg_url(const struct registry *r)
{
	return r->url;
}

struct http *reg_http(struct registry *r)
{
	return r->http;
}

void *reg_ext_get(const struct registry *r, enum reg_ext which)
{
	return __atomic_load_n(&r->ext[which].p, __ATOMIC_ACQUIRE);
}

void *reg_ext_install(const struct registry *r, enum reg_ext which, void *p,
		      void (*free_fn)(void *p))
{
	struct registry *w = (struct registry *)r; /* the slot is the mutable part */
	void *expected = NULL;

	/* The destructor is written before the object is published: a reader
	 * that sees p (acquire) sees free_fn too, and only registry_free, with
	 * no other thread left, reads it. Every installer passes the same one. */
	__atomic_store_n(&w->ext[which].free_fn, free_fn, __ATOMIC_RELAXED);
	if (__atomic_compare_exchange_n(&w->ext[which].p, &expected, p, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return p;
	return expected;
}

/* http_do() with one more header line, `authz` (NULL: none). */
static int send_with(struct registry *r, const struct http_req *req, const char *authz,
		     struct http_resp *resp)
{
	struct http_req rq = *req;
	const char **h;
	size_t n = 0;
	int rc;

	if (!authz)
		return http_do(r->http, req, resp);
	while (req->headers && req->headers[n])
		n++;
	h = calloc(n + 2, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		h[i] = req->headers[i];
	h[n] = authz;
	rq.headers = h;
	rc = http_do(r->http, &rq, resp);
	free(h);
	return rc;
}

/*
 * reg_send with the reason of a failed token request in *why (NULL: the
 * authn layer logs it). See registry/authn.h for the protocol: at most one
 * retry, after answering a 401 challenge; internal.h for the origin rules.
 */
static int send_auth(struct registry *r, const char *scope, const struct http_req *req,
		     struct http_resp *resp, struct buf *why)
{
	char *hdr = NULL, *again = NULL;
	bool answer = true;
	int rc, arc;

	if (!url_same_origin(req->url, r->url)) {
		char lu[URL_LOG_MAX];

		if (url_is_https(r->url) && !url_is_https(req->url)) {
			url_for_log(req->url, lu, sizeof(lu));
			http_set_error("refusing to send a request of %s to %s (https to http "
				       "downgrade)", r->url, lu);
			return -EIO;
		}
		/* Another origin: no credentials, no challenge answered. */
		return http_do(r->http, req, resp);
	}
	/* A token service that just refused must not be asked twice. */
	rc = authn_prepare(r->authn, scope, &hdr, why);
	if (rc == -EACCES)
		answer = false;
	else if (rc)
		goto out; /* the token service failed: that is the answer */
	rc = send_with(r, req, hdr, resp);
	if (!rc && answer && resp->status == 401 && resp->www_authenticate &&
	    !resp->cross_origin) {
		arc = authn_challenged(r->authn, scope, resp->www_authenticate, hdr, &again, why);
		if (arc && arc != -EACCES) {
			rc = arc;
		} else if (!arc && again) {
			http_resp_release(resp);
			rc = send_with(r, req, again, resp);
		}
	}
out:
	auth_secret_free(hdr);
	auth_secret_free(again);
	return rc;
}

int reg_send(struct registry *r, const char *scope, const struct http_req *req,
	     struct http_resp *resp)
{
	return send_auth(r, scope, req, resp, NULL);
}

int reg_fail(const char *method, const char *url, int rc, const struct http_resp *resp)
{
	char code[64], msg[256], lu[URL_LOG_MAX], eu[URL_LOG_MAX];
	const char *hint;
	int err;

	url_for_log(url, lu, sizeof(lu));
	url = lu;
	if (rc) {
		log_error("%s %s: %s (after %u attempt%s)", method, url, http_strerror(),
			  resp->attempts, resp->attempts == 1 ? "" : "s");
		return rc;
	}
	if (resp->cross_origin && (resp->status == 401 || resp->status == 403)) {
		url_for_log(resp->effective_url ? resp->effective_url : "", eu, sizeof(eu));
		log_error("%s %s: redirected to %s, which answered HTTP %ld; not the registry's "
			  "answer", method, url, eu, resp->status);
		return -EIO;
	}
	registry_error_parse(resp->body.data, resp->body.len, code, sizeof(code), msg,
			     sizeof(msg));
	err = registry_errno(resp->status, code);
	hint = registry_error_hint(code);
	if (err == -ENOENT)
		log_debug("%s %s: HTTP %ld %s %s", method, url, resp->status, code, msg);
	else
		log_error("%s %s: HTTP %ld%s%s%s%s%s%s%s", method, url, resp->status,
			  code[0] ? " " : "", code, msg[0] ? " (" : "", msg,
			  msg[0] ? ")" : "", hint ? ": " : "", hint ? hint : "");
	return err;
}

int registry_ping(struct registry *r, struct buf *why)
{
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf url = BUF_INIT, authwhy = BUF_INIT;
	int rc;

	rc = buf_addf(&url, "%s/v2/", r->url);
	if (rc)
		goto out;
	req.url = url.data;
	/* Answers a challenge now, so wrong credentials fail the mount. */
	rc = send_auth(r, NULL, &req, &resp, &authwhy);
	if (rc && authwhy.len) {
		/* The token service failed: its sentence says why. */
		buf_adds(why, buf_cstr(&authwhy));
		goto out;
	}
	if (rc) {
		const char *what = rc == -EPROTO ? "TLS handshake with" :
				   rc == -EHOSTUNREACH ? "cannot resolve" :
				   rc == -ECONNREFUSED ? "cannot connect to" :
				   rc == -ETIMEDOUT ? "timed out talking to" :
							"cannot talk to";

		buf_addf(why, "%s %s failed: %s", what, r->url, http_strerror());
		if (rc == -EHOSTUNREACH || rc == -ECONNREFUSED)
			buf_reset(why), buf_addf(why, "%s %s: %s", what, r->url, http_strerror());
		goto out;
	}
	if (resp.status == 200) {
		rc = 0;
		goto out;
	}
	if (resp.status == 401 && resp.www_authenticate) {
		if (authn_anonymous(r->authn)) {
			/* Anonymous users get what anonymous may; not an error. */
			rc = 0;
			log_warn("%s asks for credentials and none were found (see --help); "
				 "continuing anonymously%s%s", r->url, authwhy.len ? ": " : "",
				 buf_cstr(&authwhy));
			goto out;
		}
		rc = -EACCES;
		if (authwhy.len) {
			buf_adds(why, buf_cstr(&authwhy));
		} else {
			buf_adds(why, "authentication failed for ");
			authn_describe(r->authn, why);
			buf_addf(why, ": HTTP 401 from %s", url.data);
		}
		goto out;
	}
	if (resp.status == 401 || resp.status == 403) {
		rc = -EACCES;
		buf_addf(why, "%s/v2/ answered HTTP %ld without an authentication challenge",
			 r->url, resp.status);
	} else {
		rc = -EPROTO;
		buf_addf(why,
			 "%s does not look like a container registry: GET /v2/ answered HTTP %ld%s%s",
			 r->url, resp.status, resp.content_type ? " " : "",
			 resp.content_type ? resp.content_type : "");
	}
out:
	http_resp_release(&resp);
	buf_release(&url);
	buf_release(&authwhy);
	return rc;
}

int reg_get_pages(struct registry *r, const char *scope, const char *first_url,
		  int (*page)(void *ctx, cJSON *root), void *ctx)
{
	static const char *const hdrs[] = { "Accept: application/json", NULL };
	char *url = strdup(first_url), *next = NULL, lu[URL_LOG_MAX];
	uint64_t total = 0;
	int rc = 0, pages = 0;

	if (!url)
		return -ENOMEM;
	url_for_log(first_url, lu, sizeof(lu));
	while (url) {
		struct http_req req = { 0 };
		struct http_resp resp = HTTP_RESP_INIT;
		cJSON *root;

		if (pages >= REGISTRY_LIST_MAX_PAGES) {
			log_error("GET %s: more than %d pages (the limit of one listing); giving up",
				  lu, REGISTRY_LIST_MAX_PAGES);
			rc = -EIO;
			break;
		}
		req.url = url;
		req.headers = hdrs;
		req.max_body = REGISTRY_LIST_MAX_PAGE_BYTES;
		rc = reg_send(r, scope, &req, &resp);
		if (rc == -EFBIG) {
			log_error("GET %s: a page larger than %u MiB (the limit of one page); giving "
				  "up", lu, REGISTRY_LIST_MAX_PAGE_BYTES >> 20);
			rc = -EIO;
			http_resp_release(&resp);
			break;
		}
		if (rc || resp.status != 200) {
			rc = reg_fail("GET", url, rc, &resp);
			if (!rc)
				rc = -EIO;
			http_resp_release(&resp);
			break;
		}
		total += resp.body.len;
		if (total > REGISTRY_LIST_MAX_BYTES) {
			log_error("GET %s: the pages hold more than %u MiB (the limit of one listing); "
				  "giving up after %d pages", lu, REGISTRY_LIST_MAX_BYTES >> 20,
				  pages + 1);
			rc = -EIO;
			http_resp_release(&resp);
			break;
		}
		root = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len);
		if (!cJSON_IsObject(root)) {
			log_error("GET %s: the answer is not a JSON object", lu);
			cJSON_Delete(root);
			http_resp_release(&resp);
			rc = -EIO;
			break;
		}
		rc = page(ctx, root);
		cJSON_Delete(root);
		if (!rc) {
			rc = link_next(resp.link, url, &next);
			if (rc)
				log_error("GET %s: unusable Link header \"%.200s\"", lu,
					  resp.link ? resp.link : "");
		}
		http_resp_release(&resp);
		if (rc)
			break;
		if (next && strcmp(next, url) == 0) {
			log_error("GET %s: the next page link points at the same page", lu);
			free(next);
			next = NULL;
			rc = -EIO;
			break;
		}
		pages++;
		free(url);
		url = next;
		next = NULL;
	}
	free(url);
	return rc;
}

struct list_ctx {
	const char *key;      /* "repositories" or "tags" */
	struct strvec *out;
	bool (*valid)(const char *);
	const char *what;
};

static int list_page(void *vctx, cJSON *root)
{
	struct list_ctx *c = vctx;
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, c->key), *it;
	int rc;

	/* "tags": null is how distribution says "no tags". */
	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr)) {
		log_error("%s: \"%s\" is not an array", c->what, c->key);
		return -EIO;
	}
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it) || !c->valid(it->valuestring)) {
			log_warn("%s: skipping invalid name %.80s", c->what,
				 cJSON_IsString(it) ? it->valuestring : "(not a string)");
			continue;
		}
		rc = strvec_push(c->out, it->valuestring);
		if (rc)
			return rc;
	}
	return 0;
}

int registry_catalog(struct registry *r, struct strvec *repos)
{
	struct list_ctx c = { "repositories", repos, repo_name_valid, "catalog" };
	struct buf url = BUF_INIT;
	int rc;

	*repos = (struct strvec)STRVEC_INIT;
	rc = buf_addf(&url, "%s/v2/_catalog?n=1000", r->url);
	if (!rc)
		rc = reg_get_pages(r, "registry:catalog:*", url.data, list_page, &c);
	if (rc == -EINVAL) {
		/* Page size refused (PAGINATION_NUMBER_INVALID): the server's default. */
		strvec_clear(repos);
		buf_reset(&url);
		rc = buf_addf(&url, "%s/v2/_catalog", r->url);
		if (!rc)
			rc = reg_get_pages(r, "registry:catalog:*", url.data, list_page, &c);
	}
	buf_release(&url);
	if (rc)
		strvec_clear(repos);
	else
		strvec_sort_unique(repos);
	return rc;
}

int registry_tags(struct registry *r, const char *repo, struct strvec *tags)
{
	struct list_ctx c = { "tags", tags, tag_valid, repo };
	struct buf url = BUF_INIT, scope = BUF_INIT;
	int rc;

	*tags = (struct strvec)STRVEC_INIT;
	if (!repo_name_valid(repo))
		return -ENOENT;
	rc = buf_addf(&url, "%s/v2/%s/tags/list", r->url, repo);
	if (!rc)
		rc = buf_addf(&scope, "repository:%s:pull", repo);
	if (!rc)
		rc = reg_get_pages(r, scope.data, url.data, list_page, &c);
	buf_release(&url);
	buf_release(&scope);
	if (rc)
		strvec_clear(tags);
	else
		strvec_sort_unique(tags);
	return rc;
}

/* Is the host name *.azurecr.io? */
static bool acr_host(const struct registry *r)
{
	const char *h = r->host, *colon = strrchr(h, ':');
	size_t n = colon && !strchr(h, ']') ? (size_t)(colon - h) : strlen(h);
	static const char sfx[] = ".azurecr.io";

	return n > sizeof(sfx) - 1 && strncmp(h + n - (sizeof(sfx) - 1), sfx, sizeof(sfx) - 1) == 0;
}

/*
 * Does an answer to GET /acr/v1/_catalog without credentials come from ACR's
 * API? Its catalog (200 with "repositories"), or its refusal: a Bearer
 * challenge naming the catalog scope. distribution has no such route (404).
 */
static bool acr_answer(const struct http_resp *resp)
{
	struct auth_challenge *list = NULL;
	const struct auth_challenge *c;
	bool yes = false;

	if (resp->status == 200) {
		cJSON *root = cJSON_ParseWithLength(resp->body.data ? resp->body.data : "",
						    resp->body.len);

		yes = cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "repositories"));
		cJSON_Delete(root);
		return yes;
	}
	if (resp->status != 401 || !resp->www_authenticate ||
	    auth_challenge_parse(resp->www_authenticate, &list))
		return false;
	c = auth_challenge_pick(list);
	yes = c && c->scheme == AUTH_SCHEME_BEARER && c->scope &&
	      strstr(c->scope, AUTH_SCOPE_CATALOG) != NULL;
	auth_challenge_free(list);
	return yes;
}

/* The probe (registry.h): 1 ACR, 0 not, -errno no answer. No credentials go. */
static int acr_probe(struct registry *r)
{
	static const char *const hdrs[] = { "Accept: application/json", NULL };
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	struct buf url = BUF_INIT;
	int rc = buf_addf(&url, "%s/acr/v1/_catalog?n=1", r->url);

	if (rc)
		return rc;
	req.url = url.data;
	req.headers = hdrs;
	req.max_body = 64u << 10;
	rc = http_do(r->http, &req, &resp);
	if (rc == -EFBIG) {
		rc = 0; /* an answer, and too large for ACR's one-name page */
	} else if (rc) {
		log_warn("GET %s: %s; not known yet whether %s is Azure Container Registry",
			 url.data, http_strerror(), r->url);
	} else {
		rc = acr_answer(&resp) ? 1 : 0;
		log_debug("GET %s: HTTP %ld: %s", url.data, resp.status,
			  rc ? "ACR's API" : "no ACR API here");
	}
	http_resp_release(&resp);
	buf_release(&url);
	return rc;
}

bool registry_is_acr(const struct registry *cr)
{
	struct registry *r = (struct registry *)cr; /* the verdict is the mutable part */
	bool yes;
	int rc;

	if (r->acr_mode != REGISTRY_ACR_AUTO)
		return r->acr_mode == REGISTRY_ACR_ON;
	if (acr_host(r))
		return true;
	pthread_mutex_lock(&r->acr_lock);
	while (r->acr_state == ACR_PROBING)
		pthread_cond_wait(&r->acr_cond, &r->acr_lock);
	if (r->acr_state != ACR_UNKNOWN) {
		yes = r->acr_state == ACR_YES;
		pthread_mutex_unlock(&r->acr_lock);
		return yes;
	}
	r->acr_state = ACR_PROBING;
	pthread_mutex_unlock(&r->acr_lock);

	rc = acr_probe(r);

	pthread_mutex_lock(&r->acr_lock);
	r->acr_state = rc < 0 ? ACR_UNKNOWN : rc ? ACR_YES : ACR_NO;
	pthread_cond_broadcast(&r->acr_cond);
	pthread_mutex_unlock(&r->acr_lock);
	if (rc > 0)
		log_info("%s answers Azure Container Registry's API (/acr/v1): tag times, digests "
			 "and locks come from it (-o acr=off: not)", r->url);
	return rc > 0;
}
