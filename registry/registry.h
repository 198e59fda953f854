/*
 * registry — a client for one OCI / Docker v2 registry.
 *
 * Owns the HTTP layer and (from issue 3 on) drives auth. Every function that
 * talks to the registry blocks, is thread-safe, and returns 0 or -errno
 * after logging the failure once (URL, status, registry error code):
 * -ENOENT (404 / *_UNKNOWN), -EACCES (401 / 403), -EPERM (405 UNSUPPORTED),
 * -EIO (retries exhausted, malformed answer), -ECONNREFUSED, -ETIMEDOUT,
 * -EPROTO (TLS), -ENOMEM.
 */
#ifndef ACRFS_REGISTRY_H
#define ACRFS_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/strvec.h"

struct registry;
struct auth_creds;

/* Whether to use Azure Container Registry's own API (/acr/v1), -o acr=. */
enum registry_acr {
	REGISTRY_ACR_AUTO = 0, /* *.azurecr.io, or a registry that answers /acr/v1 */
	REGISTRY_ACR_ON,       /* always (an ACR behind another name) */
	REGISTRY_ACR_OFF,      /* never: a plain OCI registry, no /acr/v1 request */
};

struct registry_opts {
	const char *url;     /* normalised base URL (registry_url_parse) */
	const char *ca_file; /* extra CA, or NULL */
	int max_retries;     /* -1: default */
	long backoff_ms;     /* 0: default */
	long timeout_ms;     /* deadline of one request with its retries (http.h); 0: 30 s */
	/* Credentials (auth/creds.h), copied by registry_new; NULL: anonymous. */
	const struct auth_creds *creds;
	enum registry_acr acr; /* default REGISTRY_ACR_AUTO */
};

/*
 * Normalise the REGISTRY argument: "host[:port]" → "https://host[:port]",
 * "https://host[:port]" and "http://host[:port]" kept (a trailing '/' is
 * dropped; any other path, a query, user info or an empty host → -EINVAL).
 * *url and *host ("host[:port]") are malloc'd; caller frees.
 */
int registry_url_parse(const char *arg, char **url, char **host);

int registry_new(struct registry **out, const struct registry_opts *o);
void registry_free(struct registry *r);

/* "host[:port]" of the registry. Borrowed. */
const char *registry_host(const struct registry *r);

/*
 * The start-up check: GET /v2/. When the registry challenges, the
 * credentials are proven now: a token without scope is fetched from the
 * realm (or Basic credentials sent) and GET /v2/ repeated with it, once.
 * 0 when the answer is 200 (or 401 for anonymous users: they get what
 * anonymous may). Else -errno, and a sentence naming the cause in *why
 * (caller releases): unreachable host, TLS failure, "not a registry" (no
 * challenge, non-JSON...), or -EACCES "authentication failed for user 'x'
 * (from SOURCE): HTTP 401 from URL".
 */
int registry_ping(struct registry *r, struct buf *why);

/*
 * Bounds on one listing (a catalog or a tag list, all its pages): a
 * registry announcing endless "next" pages, or huge ones, gets -EIO and a
 * log line naming the limit, never unbounded memory.
 */
#define REGISTRY_LIST_MAX_PAGES 5000
#define REGISTRY_LIST_MAX_PAGE_BYTES (8u << 20)
#define REGISTRY_LIST_MAX_BYTES (32u << 20)

/* Every repository in /v2/_catalog, all pages, sorted, validated names. */
int registry_catalog(struct registry *r, struct strvec *repos);

/* Every tag of `repo` from /v2/<repo>/tags/list, all pages, sorted. */
int registry_tags(struct registry *r, const char *repo, struct strvec *tags);

/*
 * Is this registry Azure Container Registry, whose /acr/v1 API (tag times,
 * digests and locks in the listing, untag, repository delete) acrfs may use?
 * REGISTRY_ACR_ON / _OFF decide; with REGISTRY_ACR_AUTO a host *.azurecr.io
 * is, and any other registry is if it answers ACR's API: the first call
 * sends one probe, GET /acr/v1/_catalog?n=1 without credentials (ACR: 401
 * with a Bearer challenge for registry:catalog:*, or 200 with
 * "repositories"; distribution: 404), and remembers the answer for the
 * registry's lifetime (a probe that got no answer is repeated next time).
 * Concurrent first callers share the one probe. Blocks only then;
 * thread-safe.
 */
bool registry_is_acr(const struct registry *r);

/* The HTTP library's version string, e.g. "libcurl/7.88.1 OpenSSL/3.0.x". */
const char *registry_client_version(void);

/* HTTP requests sent so far (every attempt counts). */
uint64_t registry_request_count(const struct registry *r);

/* The HTTP layer's counters (registry/http.h), for .acrfs/status. Thread-safe. */
struct http_stats;
void registry_http_stats(const struct registry *r, struct http_stats *out);

#endif
