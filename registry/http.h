/*
 * http — libcurl underneath the registry client.
 *
 * One struct http per mount: a pool of curl easy handles (each keeps its own
 * connections alive for reuse; a handle is used by one thread at a time), a
 * share handle for DNS and TLS sessions, timeouts, the extra CA file and the
 * retry policy. http_do() performs one logical request: connection errors
 * and 502/503/504 are retried with exponential backoff (a Retry-After
 * honoured) up to `max_retries` times; the final response, whatever its
 * status, is returned to the caller.
 *
 * Throttling. A 429 slows the whole mount down instead of failing requests:
 * it sets a time before which no request of this struct http is sent (now +
 * its Retry-After, or the backoff without one), every request about to be
 * sent waits until then, and the request that got the 429 is sent again
 * without using up a retry. Time spent waiting for the throttle does not
 * count against a request's deadline (it is waiting its turn, not stuck),
 * up to HTTP_THROTTLE_MAX_MS per request; past that, or when a Retry-After
 * is longer than `retry_after_max_s`, the 429 is the answer.
 *
 * Deadline. A logical request — every attempt, backoff, Retry-After wait and
 * redirect hop of it — is bounded by `deadline_ms` from the call:
 *   - a request whose body is collected (req->sink NULL: manifests, lists,
 *     tokens, errors) must be complete by then;
 *   - a streamed body (req->sink set: blobs of any size) must have *started*
 *     by then (response headers of a 2xx received); from then on only stalls
 *     end it: slower than 1 KiB/s for `low_speed_time_s` (default: the
 *     deadline, at most 30 s). A 1 GB blob that keeps flowing is never cut;
 *     a server that accepts and never answers, or stops sending, is.
 * No retry wait is started that would end after the deadline. A request
 * that ran out of time is -ETIMEDOUT.
 *
 * Redirects (req->follow_redirects, GET and HEAD only) are followed here,
 * not by libcurl, at most 5 hops, so that the rules are ours: a redirect from
 * https to http is refused (-EIO, "refusing redirect ... downgrade"); once a
 * hop leaves the origin (scheme, host, port) of req->url, no Authorization
 * line of req->headers is sent on that hop or any later one; and
 * resp->cross_origin tells the caller that the final answer (a 401 with its
 * WWW-Authenticate, say) is another host's, not the one it asked.
 *
 * Thread-safe: any thread may call http_do() concurrently. http_new() must
 * run before the process starts threads of its own (curl_global_init).
 */
#ifndef ACRFS_HTTP_H
#define ACRFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct http;

/* The most one request waits for a throttled registry (429s), in all. */
#define HTTP_THROTTLE_MAX_MS (5 * 60 * 1000)

struct http_opts {
	const char *ca_file;	 /* extra CA bundle (PEM), or NULL */
	long connect_timeout_ms; /* 0: 10 s */
	long low_speed_time_s;	 /* abort a transfer slower than 1 KiB/s for this long; 0: 30 s */
	int max_retries;	 /* -1: default 4 */
	long backoff_ms;	 /* first backoff; 0: 200 ms (doubles, capped at 5 s) */
	long retry_after_max_s;	 /* longest Retry-After waited for; 0: 30 s */
	long deadline_ms;	 /* bound on a logical request (see above); 0: 30 s */
};

/* Streaming body sink: return 0 to continue, -errno to abort the transfer. */
typedef int (*http_sink_fn)(void *ctx, const void *data, size_t n);

struct http_req {
	const char *method;	   /* "GET" if NULL */
	const char *url;	   /* absolute */
	const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
	const void *body;	   /* request body for PUT/POST, or NULL */
	size_t body_len;
	const char *range;	   /* "a-b" (inclusive) or NULL */
	bool follow_redirects;	   /* GET/HEAD: follow 3xx (see above for the rules) */
	http_sink_fn sink;	   /* NULL: body is collected in resp->body */
	void *sink_ctx;
	uint64_t max_body;	   /* collected body limit (0: 64 MiB); beyond → -EFBIG */
};

struct http_resp {
	long status;		/* 0 if no response */
	struct buf body;	/* only when req->sink == NULL */
	char *content_type;	/* each header: NULL if absent; caller frees via http_resp_release */
	char *link;		/* the raw Link header(s), joined with ", " */
	char *www_authenticate;
	char *docker_content_digest;
	char *location;
	char *content_range;
	char *effective_url;	/* the URL that gave this answer (after redirects) */
	long retry_after_s;	/* -1 if absent */
	int64_t content_length; /* -1 if unknown */
	unsigned attempts;	/* how many tries this took (all hops) */
	unsigned redirects;	/* redirect hops followed */
	bool cross_origin;	/* the answer came from another origin than req->url */
};

#define HTTP_RESP_INIT { 0, BUF_INIT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1, -1, 0, 0, false }

int http_new(struct http **out, const struct http_opts *o);
void http_free(struct http *h);

/*
 * Perform `req`. Returns 0 when an HTTP response arrived (any status: look
 * at resp->status), or -errno when none did after the retries:
 * -ECONNREFUSED / -EHOSTUNREACH (cannot connect), -ETIMEDOUT (deadline or
 * stall, see above), -EPROTO (TLS handshake or certificate failure: see
 * http_strerror), -EIO (other transport error, a refused redirect), -EFBIG
 * (a collected body over req->max_body), -ENOMEM, or the sink's error. A
 * request whose sink has already received bytes is not retried (the caller
 * resumes with a Range). Retried statuses (429, 502, 503, 504) that stay so
 * end with 0 and that status. `resp` must be HTTP_RESP_INIT or released;
 * the caller releases it. Blocks, at most about the deadline (streams: see
 * above).
 */
int http_do(struct http *h, const struct http_req *req, struct http_resp *resp);

void http_resp_release(struct http_resp *resp);

/*
 * A short description of the last transport failure on this thread, e.g.
 * "SSL certificate problem: unable to get local issuer certificate". Borrowed,
 * valid until this thread's next http_do().
 */
const char *http_strerror(void);

/*
 * Set this thread's http_strerror() text, for a layer above that refuses a
 * request itself (printf format; truncated to the buffer).
 */
void http_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Number of HTTP requests sent so far (every attempt counts). */
uint64_t http_request_count(const struct http *h);

/*
 * Counters for .acrfs/status, kept by http_do for every attempt. The kind
 * comes from the request URL's path (the last of /_catalog, /tags/list or
 * /_tags, /manifests/, /blobs/; a path under /oauth2/ or ending in /token is
 * the token service), the class from the final status of the attempt
 * (HTTP_C_ERROR: no response, a transport error).
 */
enum http_kind { HTTP_K_CATALOG, HTTP_K_TAGS, HTTP_K_MANIFEST, HTTP_K_BLOB, HTTP_K_TOKEN,
		 HTTP_K_OTHER, HTTP_K_N };
enum http_class { HTTP_C_2XX, HTTP_C_3XX, HTTP_C_4XX, HTTP_C_5XX, HTTP_C_ERROR, HTTP_C_N };
struct http_stats {
	uint64_t requests[HTTP_K_N][HTTP_C_N]; /* attempts */
	uint64_t retries;		      /* attempts after the first of a request */
	uint64_t bytes;			      /* response body bytes received */
};
/* A copy of the counters (each read atomically; not one instant). Thread-safe. */
void http_stats_get(const struct http *h, struct http_stats *out);
/* "catalog", "tags", "manifest", "blob", "token", "other". */
const char *http_kind_name(enum http_kind k);
/* The kind of a request to `url`. */
enum http_kind http_kind_of(const char *url);

#endif
