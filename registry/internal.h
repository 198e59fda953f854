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
 * resp->status set, or -errno when no response arrived, or the token
 * service's failure (-ETIMEDOUT, -EIO, ...) when a token was needed and
 * could not be had for another reason than a refusal.
 *
 * Trust boundary: credentials and challenges belong to the registry's
 * origin. A request to another origin (an upload Location elsewhere) is
 * sent without any Authorization and its 401 is never answered; one from
 * an https registry to plain http is refused (-EIO). A challenge is
 * recorded only from an answer of the registry's own origin: a 401 that a
 * redirect target (storage host) sent stands as it is (resp->cross_origin).
 */
int reg_send(struct registry *r, const char *scope, const struct http_req *req,
	     struct http_resp *resp);

/*
 * Log a failed exchange once, with its context (method, URL without its
 * query, status, registry error code and message), and return its errno.
 * `rc` is what reg_send returned. 404s are logged at debug level (lookups of
 * names that do not exist are routine). A 401/403 from a redirect target
 * (resp->cross_origin) says nothing about the user's rights: -EIO.
 */
int reg_fail(const char *method, const char *url, int rc, const struct http_resp *resp);

/*
 * GET every page of a paginated list starting at `first_url` (needing
 * `scope`), calling `page` with each page's parsed JSON object (a non-zero
 * return stops the walk with that errno). Follows Link rel="next" until
 * there is none (never stops because a page was short), within the
 * REGISTRY_LIST_MAX_* bounds (registry.h); a failed page is logged once
 * (reg_fail) and its errno returned.
 */
struct cJSON;
int reg_get_pages(struct registry *r, const char *scope, const char *first_url,
		  int (*page)(void *ctx, struct cJSON *root), void *ctx);

/*
 * Per-registry state of a registry module (blob.c's redirect table and byte
 * counter, ...), created by the module on first use. registry.c knows only
 * the slot and the destructor the module installed with it, so it calls no
 * module back by name.
 *
 * reg_ext_get: the installed object, or NULL. Lock-free.
 * reg_ext_install: install `p` with destructor `free_fn` if the slot is
 * empty (atomic compare-and-swap) and return `p`; if another thread won the
 * race, return the object installed first (the caller frees its own `p`).
 * registry_free() calls free_fn(p) for each installed object.
 */
enum reg_ext { REG_EXT_BLOB = 0, REG_EXT_COUNT };
void *reg_ext_get(const struct registry *r, enum reg_ext which);
void *reg_ext_install(const struct registry *r, enum reg_ext which, void *p,
		      void (*free_fn)(void *p));

#endif
