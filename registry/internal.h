/*
 * internal — what the registry layer's own modules share; not for fs/.
 */
#ifndef ACRFS_REGISTRY_INTERNAL_H
#define ACRFS_REGISTRY_INTERNAL_H

#include "registry/http.h"
#include "registry/registry.h"

/* The registry's base URL, "https://host:port" (no trailing slash). Borrowed. */
const char *reg_url(const struct registry *r);
/* The registry's HTTP layer. Borrowed. */
struct http *reg_http(struct registry *r);

/*
 * Send one request on behalf of an operation that needs `scope` (e.g.
 * "repository:foo:pull", "registry:catalog:*"; NULL: none), adding
 * authentication as the registry demands it (a 401 challenge is answered
 * and the request retried once). Returns http_do()'s result: 0 with
 * resp->status set, or -errno when no response arrived.
 */
int reg_send(struct registry *r, const char *scope, const struct http_req *req,
	     struct http_resp *resp);

/*
 * Log a failed exchange once, with its context (method, URL, status,
 * registry error code and message), and return its errno. `rc` is what
 * reg_send returned. 404s are logged at debug level (lookups of names that
 * do not exist are routine).
 */
int reg_fail(const char *method, const char *url, int rc, const struct http_resp *resp);

/*
 * blob.c's per-registry state (remembered redirect targets, byte counter).
 * The slot lives in struct registry; blob.c fills it on first use (atomic
 * compare-and-swap) and registry_free() releases it with blobstate_free()
 * (NULL is fine).
 */
struct blobstate;
struct blobstate **reg_blobstate_slot(const struct registry *r);
void blobstate_free(struct blobstate *b);

#endif
