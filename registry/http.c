/*
 * Design: easy handles live in a pool (pool_lock guards pool[] and npool);
 * a thread takes one for the duration of a request and puts it back, so
 * keep-alive connections survive across FUSE worker threads. The share
 * handle shares only DNS and TLS sessions (never connections: libcurl does
 * not allow a connection to be used from two threads); share_locks[] are
 * its lock callbacks' mutexes, leaf locks. No lock is held during a transfer.
 *
 * http_do() is a loop over redirect hops (http.h states the rules), each hop
 * a loop over attempts; both share one monotonic deadline. A collected body
 * gets CURLOPT_TIMEOUT_MS = the time left; a streamed one gets a progress
 * callback that aborts while no 2xx response has started by the deadline,
 * and libcurl's low-speed limit for stalls afterwards.
 */
#include "registry/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "registry/link.h"

#define POOL_MAX 32
#define MAX_REDIRECTS 5

struct http {
	struct http_opts o;
	char *ca_file;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock; /* guards pool, npool */
	CURL *pool[POOL_MAX];
	size_t npool;
	uint64_t nrequests; /* atomic */
	struct http_stats stats; /* atomic counters */
	int64_t throttled_until; /* atomic, monotonic ms: a 429 said "not before" */
};

static __thread char last_error[CURL_ERROR_SIZE + 64];

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_ALL);
}

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *ctx)
{
	struct http *h = ctx;

	(void)handle;
	(void)access;
	pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *ctx)
{
	struct http *h = ctx;

	(void)handle;
	pthread_mutex_unlock(&h->share_locks[data]);
}

int http_new(struct http **out, const struct http_opts *o)
{
	struct http *h;
	int i;

	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -ENOMEM;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (o)
		h->o = *o;
	if (!h->o.connect_timeout_ms)
		h->o.connect_timeout_ms = 10000;
	if (h->o.deadline_ms <= 0)
		h->o.deadline_ms = 30000;
	if (!h->o.low_speed_time_s)
		h->o.low_speed_time_s = h->o.deadline_ms < 30000 ? (h->o.deadline_ms + 999) / 1000 : 30;
	if (h->o.max_retries < 0)
		h->o.max_retries = 4;
	if (!h->o.backoff_ms)
		h->o.backoff_ms = 200;
	if (!h->o.retry_after_max_s)
		h->o.retry_after_max_s = 30;
	if (o && o->ca_file) {
		h->ca_file = strdup(o->ca_file);
		if (!h->ca_file)
			goto nomem;
	}
	h->o.ca_file = h->ca_file;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
	h->share = curl_share_init();
	if (!h->share)
		goto nomem;
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	*out = h;
	return 0;
nomem:
	http_free(h);
	return -ENOMEM;
}

void http_free(struct http *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->npool; i++)
		curl_easy_cleanup(h->pool[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	free(h->ca_file);
	free(h);
}

uint64_t http_request_count(const struct http *h)
{
	return __atomic_load_n(&h->nrequests, __ATOMIC_RELAXED);
}

void http_stats_get(const struct http *h, struct http_stats *out)
{
	const uint64_t *in = (const uint64_t *)&h->stats;
	uint64_t *o = (uint64_t *)out;
	size_t i;

	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		o[i] = __atomic_load_n(&in[i], __ATOMIC_RELAXED);
}

/* Count one attempt of `req` (http_do's only bookkeeping). */
static void stats_note(struct http *h, CURL *c, const struct http_req *req, int rc,
		       long status, int tries)
{
	enum http_class cls = HTTP_C_ERROR;
	curl_off_t got = 0;

	if (!rc && status >= 200 && status < 600)
		cls = (enum http_class)(status / 100 - 2);
	__atomic_add_fetch(&h->stats.requests[http_kind_of(req->url)][cls], 1,
			   __ATOMIC_RELAXED);
	if (tries)
		__atomic_add_fetch(&h->stats.retries, 1, __ATOMIC_RELAXED);
	if (curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &got) == CURLE_OK && got > 0)
		__atomic_add_fetch(&h->stats.bytes, (uint64_t)got, __ATOMIC_RELAXED);
}

const char *http_strerror(void)
{
	return last_error[0] ? last_error : "no error";
}

void http_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap); /* truncation is fine */
	va_end(ap);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static CURL *pool_get(struct http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->npool)
		c = h->pool[--h->npool];
	pthread_mutex_unlock(&h->pool_lock);
	if (!c)
		c = curl_easy_init();
	return c;
}

static void pool_put(struct http *h, CURL *c)
{
	pthread_mutex_lock(&h->pool_lock);
	if (h->npool < POOL_MAX) {
		h->pool[h->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		curl_easy_cleanup(c);
}

void http_resp_release(struct http_resp *r)
{
	buf_release(&r->body);
	free(r->content_type);
	free(r->link);
	free(r->www_authenticate);
	free(r->docker_content_digest);
	free(r->location);
	free(r->content_range);
	free(r->effective_url);
	*r = (struct http_resp)HTTP_RESP_INIT;
}

/* Reset the headers we collect: called at each new status line (redirects). */
static void resp_clear_headers(struct http_resp *r)
{
	free(r->content_type);
	free(r->link);
	free(r->www_authenticate);
	free(r->docker_content_digest);
	free(r->location);
	free(r->content_range);
	r->content_type = r->link = r->www_authenticate = NULL;
	r->docker_content_digest = r->location = r->content_range = NULL;
	r->retry_after_s = -1;
}

struct xfer {
	const struct http_req *req;
	struct http_resp *resp;
	uint64_t delivered;
	uint64_t max_body;
	int64_t deadline; /* monotonic ms */
	bool started;	  /* a 2xx response's headers are complete */
	bool late;	  /* the progress callback stopped it: deadline */
	int err;	  /* sink or body-limit error */
};

static char *dup_trimmed(const char *p, size_t n)
{
	char *s;

	while (n && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (n && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' ||
		     p[n - 1] == '\t'))
		n--;
	s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static long parse_retry_after(const char *v)
{
	char *end;
	long s;
	struct tm tm;

	if (!v || !*v)
		return -1;
	s = strtol(v, &end, 10);
	if (end != v && *end == '\0')
		return s < 0 ? 0 : s;
	memset(&tm, 0, sizeof(tm));
	if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
		time_t t = timegm(&tm), now = time(NULL);

		return t > now ? (long)(t - now) : 0;
	}
	return -1;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ctx)
{
	struct xfer *x = ctx;
	struct http_resp *r = x->resp;
	size_t n = size * nitems;
	const char *colon;
	size_t klen;
	char *v;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (redirects, 100 Continue): start afresh. */
		const char *sp = memchr(data, ' ', n);

		resp_clear_headers(r);
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		return n;
	}
	if ((n == 2 && data[0] == '\r') || (n == 1 && data[0] == '\n')) {
		/* The end of a response's headers. */
		if (r->status >= 200 && r->status < 300)
			x->started = true;
		return n;
	}
	colon = memchr(data, ':', n);
	if (!colon)
		return n;
	klen = (size_t)(colon - data);
	v = dup_trimmed(colon + 1, n - klen - 1);
	if (!v)
		return 0;
#define HDR(name) (klen == strlen(name) && strncasecmp(data, name, klen) == 0)
	if (HDR("Content-Type")) {
		free(r->content_type);
		r->content_type = v;
	} else if (HDR("Link")) {
		/* Several Link headers are equivalent to one joined with ", ". */
		if (r->link) {
			struct buf b = BUF_INIT;

			if (buf_addf(&b, "%s, %s", r->link, v)) {
				free(v);
				return 0;
			}
			free(v);
			free(r->link);
			r->link = buf_detach(&b, NULL);
		} else {
			r->link = v;
		}
	} else if (HDR("WWW-Authenticate")) {
		free(r->www_authenticate);
		r->www_authenticate = v;
	} else if (HDR("Docker-Content-Digest")) {
		free(r->docker_content_digest);
		r->docker_content_digest = v;
	} else if (HDR("Location")) {
		free(r->location);
		r->location = v;
	} else if (HDR("Content-Range")) {
		free(r->content_range);
		r->content_range = v;
	} else if (HDR("Retry-After")) {
		r->retry_after_s = parse_retry_after(v);
		free(v);
	} else {
		free(v);
	}
#undef HDR
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct xfer *x = ctx;
	size_t n = size * nmemb;

	if (x->req->sink) {
		/*
		 * Bodies of redirects and error statuses are not content: collect
		 * them (bounded) for the error JSON instead of feeding the sink.
		 */
		if (x->resp->status >= 200 && x->resp->status < 300) {
			int rc = x->req->sink(x->req->sink_ctx, data, n);

			if (rc) {
				x->err = rc;
				return 0;
			}
			x->delivered += n;
			return n;
		}
	}
	if (x->resp->body.len + n > x->max_body) {
		x->err = -EFBIG;
		return 0;
	}
	if (buf_add(&x->resp->body, data, n)) {
		x->err = -ENOMEM;
		return 0;
	}
	return n;
}

/* Streams: stop a transfer whose response has not started by the deadline. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct xfer *x = ctx;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (!x->started && mono_ms() >= x->deadline) {
		x->late = true;
		return 1;
	}
	return 0;
}

/* The one translation of CURLcode into errno. */
static int curl_errno(CURLcode cc)
{
	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_USE_SSL_FAILED:
		return -EPROTO;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static bool retryable_transport(int err)
{
	return err == -ECONNREFUSED || err == -ETIMEDOUT || err == -EIO;
}

/* 429 is not here: it throttles the mount (do_hop). */
static bool retryable_status(long s)
{
	return s == 502 || s == 503 || s == 504;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int attempt(struct http *h, CURL *c, const struct http_req *req,
		   struct http_resp *resp, struct xfer *x)
{
	struct curl_slist *hdrs = NULL, *tmp;
	char errbuf[CURL_ERROR_SIZE] = "";
	const char *method = req->method ? req->method : "GET";
	CURLcode cc;
	int64_t left = x->deadline - mono_ms();
	int rc = 0;

	if (left <= 0) {
		snprintf(last_error, sizeof(last_error), "no time left (deadline %ld ms)",
			 h->o.deadline_ms);
		return -ETIMEDOUT;
	}
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SHARE, h->share);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 left < h->o.connect_timeout_ms ? (long)left : h->o.connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->o.low_speed_time_s);
	if (req->sink) {
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	} else {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
	}
	curl_easy_setopt(c, CURLOPT_USERAGENT, "acrfs/" ACRFS_VERSION);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, NULL);
	if (h->o.ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, h->o.ca_file);
		curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
	/* Redirects are followed by http_do(), never by libcurl. */
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		if (req->body || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)req->body_len);
		}
	}
	if (req->range)
		curl_easy_setopt(c, CURLOPT_RANGE, req->range);
	for (const char *const *p = req->headers; p && *p; p++) {
		tmp = curl_slist_append(hdrs, *p);
		if (!tmp) {
			rc = -ENOMEM;
			goto out;
		}
		hdrs = tmp;
	}
	/* No "Expect: 100-continue" round trip for manifest PUTs. */
	tmp = curl_slist_append(hdrs, "Expect:");
	if (!tmp) {
		rc = -ENOMEM;
		goto out;
	}
	hdrs = tmp;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);

	__atomic_add_fetch(&h->nrequests, 1, __ATOMIC_RELAXED);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	if (cc == CURLE_OK) {
		curl_off_t cl = -1;

		if (curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK)
			resp->content_length = cl;
		goto out;
	}
	if (x->err) {
		rc = x->err;
		goto out;
	}
	rc = curl_errno(cc);
	if (x->late) {
		rc = -ETIMEDOUT;
		snprintf(last_error, sizeof(last_error), "no response within %ld ms",
			 h->o.deadline_ms);
	} else {
		snprintf(last_error, sizeof(last_error), "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(cc));
	}
	/* A partial transfer is a dropped connection, whatever the status. */
	resp->status = 0;
out:
	curl_slist_free_all(hdrs);
	return rc;
}

/* A 429 asked every request to wait until `until` (monotonic ms). */
static void throttle_set(struct http *h, int64_t until)
{
	int64_t cur = __atomic_load_n(&h->throttled_until, __ATOMIC_RELAXED);

	while (cur < until && !__atomic_compare_exchange_n(&h->throttled_until, &cur, until, true,
							    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/*
 * Wait out the mount's throttle, if any: the request is waiting its turn,
 * not stuck, so its deadline moves by the time waited (*throttled adds it
 * up; a request waits HTTP_THROTTLE_MAX_MS in all at most).
 */
static void throttle_wait(struct http *h, int64_t *deadline, int64_t *throttled)
{
	int64_t w = __atomic_load_n(&h->throttled_until, __ATOMIC_RELAXED) - mono_ms();

	if (w > HTTP_THROTTLE_MAX_MS - *throttled)
		w = HTTP_THROTTLE_MAX_MS - *throttled;
	if (w <= 0)
		return;
	sleep_ms(w);
	*throttled += w;
	*deadline += w;
}

/*
 * One hop: attempts with backoff until an answer that is not retried, the
 * retries are used up, or no time is left for the next wait. A 429 whose
 * Retry-After (or, without one, the backoff) is at most retry_after_max_s
 * throttles the whole mount (see http.h) and uses up no retry.
 */
static int do_hop(struct http *h, CURL *c, const struct http_req *req, struct http_resp *resp,
		  int64_t *deadline, int64_t *throttled)
{
	struct xfer x;
	long backoff = h->o.backoff_ms;
	char lu[URL_LOG_MAX];
	const char *method = req->method ? req->method : "GET";
	int rc = 0, tries;

	url_for_log(req->url, lu, sizeof(lu));
	for (tries = 0;; tries++) {
		long wait;

		throttle_wait(h, deadline, throttled);
		memset(&x, 0, sizeof(x));
		x.req = req;
		x.resp = resp;
		x.max_body = req->max_body ? req->max_body : 64u << 20;
		x.deadline = *deadline;
		buf_reset(&resp->body);
		resp->status = 0;
		resp->retry_after_s = -1;
		resp->content_length = -1;
		rc = attempt(h, c, req, resp, &x);
		stats_note(h, c, req, rc, resp->status, tries);
		resp->attempts++;
		if (x.delivered || x.late)
			break;
		if (!rc && resp->status == 429) {
			long ra = resp->retry_after_s;

			/* Longer than we hold a caller, or throttled long enough:
			 * the 429 is the answer. */
			if (ra > h->o.retry_after_max_s || *throttled >= HTTP_THROTTLE_MAX_MS)
				break;
			wait = ra >= 0 && ra * 1000 > backoff ? ra * 1000 : backoff;
			log_debug("%s %s: HTTP 429; retrying in %ld ms (every request of the mount waits)",
				  method, lu, wait);
			throttle_set(h, mono_ms() + wait);
			backoff = wait * 2 > 5000 ? 5000 : wait * 2;
			tries--; /* throttled, not failed */
			continue;
		}
		if (tries >= h->o.max_retries)
			break;
		if (rc && retryable_transport(rc)) {
			wait = backoff;
		} else if (!rc && retryable_status(resp->status)) {
			wait = backoff;
			if (resp->retry_after_s >= 0) {
				long ra = resp->retry_after_s;

				if (ra > h->o.retry_after_max_s)
					ra = h->o.retry_after_max_s;
				wait = ra * 1000 > backoff ? ra * 1000 : backoff;
			}
		} else {
			break;
		}
		if (mono_ms() + wait >= *deadline) {
			log_debug("%s %s: %s; no time left to retry (deadline %ld ms)", method, lu,
				  rc ? http_strerror() : "retryable status", h->o.deadline_ms);
			break;
		}
		if (rc)
			log_debug("%s %s: %s; retrying in %ld ms", method, lu, http_strerror(), wait);
		else
			log_debug("%s %s: HTTP %ld; retrying in %ld ms", method, lu, resp->status,
				  wait);
		sleep_ms(wait);
		backoff = wait * 2 > 5000 ? 5000 : wait * 2;
	}
	return rc;
}

static bool is_redirect(long s)
{
	return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

/* A copy of the NULL-terminated header list without Authorization lines. */
static const char **without_authorization(const char *const *hdrs)
{
	size_t n = 0, k = 0;
	const char **out;

	while (hdrs && hdrs[n])
		n++;
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncasecmp(hdrs[i], "Authorization:", 14) != 0)
			out[k++] = hdrs[i];
	return out;
}

int http_do(struct http *h, const struct http_req *req, struct http_resp *resp)
{
	struct http_req cur = *req;
	const char **hdrs = NULL; /* req->headers without Authorization, once off-origin */
	char *url = NULL;	  /* the current hop's URL when it is not req->url */
	const char *method = req->method ? req->method : "GET";
	bool follow = req->follow_redirects &&
		      (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
	int64_t deadline = mono_ms() + h->o.deadline_ms, throttled = 0;
	CURL *c;
	int rc;

	last_error[0] = '\0';
	resp->attempts = 0;
	resp->redirects = 0;
	resp->cross_origin = false;
	c = pool_get(h);
	if (!c)
		return -ENOMEM;
	for (;;) {
		char *next = NULL, from[URL_LOG_MAX], to[URL_LOG_MAX];

		rc = do_hop(h, c, &cur, resp, &deadline, &throttled);
		if (rc || !follow || !is_redirect(resp->status) || !resp->location)
			break;
		url_for_log(cur.url, from, sizeof(from));
		if (resp->redirects >= MAX_REDIRECTS) {
			/* The 3xx stands: the caller sees an unexpected status. */
			log_warn("%s %s: more than %d redirects; not following", method, from,
				 MAX_REDIRECTS);
			break;
		}
		rc = url_resolve(cur.url, resp->location, &next);
		if (rc) {
			if (rc != -ENOMEM) {
				url_for_log(resp->location, to, sizeof(to));
				http_set_error("unusable redirect Location \"%s\"", to);
				rc = -EIO;
			}
			break;
		}
		url_for_log(next, to, sizeof(to));
		if (url_is_https(cur.url) && !url_is_https(next)) {
			http_set_error("refusing redirect from %s to %s (https to http downgrade)",
				       from, to);
			free(next);
			rc = -EIO;
			break;
		}
		if (!url_same_origin(req->url, next) && !hdrs) {
			/* Credentials stay with the origin they were meant for, for good. */
			hdrs = without_authorization(req->headers);
			if (!hdrs) {
				free(next);
				rc = -ENOMEM;
				break;
			}
			cur.headers = hdrs;
		}
		resp->cross_origin = !url_same_origin(req->url, next);
		log_debug("%s %s: HTTP %ld, following to %s", method, from, resp->status, to);
		free(url);
		url = next;
		cur.url = url;
		resp->redirects++;
	}
	free(resp->effective_url);
	resp->effective_url = strdup(cur.url);
	if (!resp->effective_url && !rc)
		rc = -ENOMEM;
	pool_put(h, c);
	free(url);
	free(hdrs);
	return rc;
}
