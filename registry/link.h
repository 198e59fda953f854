/*
 * link — URLs as the registry layer handles them: RFC 8288 Link headers as
 * registries use them for pagination, resolution of relative references
 * (Link targets, redirect Locations), origins (scheme, host, port) for the
 * rule that credentials never leave the registry's origin, and URLs fit for
 * logs.
 *
 * Pure functions over strings: no I/O, thread-safe.
 */
#ifndef ACRFS_LINK_H
#define ACRFS_LINK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Find the target of the link with rel "next" in a Link header value (which
 * may hold several comma-separated links; rel may be quoted, unquoted, or a
 * space-separated list of relation types) and resolve it against `base_url`
 * (the absolute URL of the page that carried it): absolute URLs, absolute
 * paths, relative paths and query-only references are handled per RFC 3986.
 * A target on another origin (scheme, host or port) is refused (-EPERM):
 * pagination never leaves the registry.
 *
 * Returns 0 with *next = a malloc'd absolute URL (caller frees), 0 with
 * *next = NULL when there is no next link, -EINVAL for a malformed header,
 * -ENOMEM.
 */
int link_next(const char *header, const char *base_url, char **next);

/*
 * Resolve the reference `ref` (a Location header, a Link target) against the
 * absolute http(s) URL `base`: an absolute http(s) URL is taken as is, a
 * network-path reference ("//host/p") gets base's scheme, absolute and
 * relative paths and query-only references are merged with base. Any other
 * scheme, or a reference holding control characters or spaces, is -EINVAL.
 * *out is malloc'd (caller frees). 0, -EINVAL or -ENOMEM.
 */
int url_resolve(const char *base, const char *ref, char **out);

/*
 * Do two absolute http(s) URLs have the same origin: scheme, host and port
 * (compared case-insensitively, default ports 80 / 443 filled in, user info
 * ignored)? False when either cannot be parsed.
 */
bool url_same_origin(const char *a, const char *b);

/* Is `url` an https URL? */
bool url_is_https(const char *url);

/* Is the host of `url` a loopback address (127.0.0.0/8, [::1], localhost)? */
bool url_is_loopback(const char *url);

/*
 * `url` fit for a log line: without its query and fragment (a storage URL's
 * query holds a signature: SAS "sig=", "se=", ...), marked when it had
 * one ("?[query]"), at most `outsz` - 1 bytes (cut, never overrun). Control characters
 * are left to the logger, which escapes them.
 */
void url_for_log(const char *url, char *out, size_t outsz);

/* A buffer size url_for_log output always fits in usefully. */
#define URL_LOG_MAX 512

/*
 * Split an absolute http(s) URL into its origin ("https://host:port", no
 * trailing slash) and path+query. Returns 0 or -EINVAL. Caller frees both.
 */
int url_split(const char *url, char **origin, char **pathq);

#endif
