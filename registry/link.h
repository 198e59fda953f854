/*
 * link — RFC 8288 Link headers as registries use them for pagination.
 */
#ifndef ACRFS_LINK_H
#define ACRFS_LINK_H

/*
 * Find the target of the link with rel "next" in a Link header value (which
 * may hold several comma-separated links; rel may be quoted, unquoted, or a
 * space-separated list of relation types) and resolve it against `base_url`
 * (the absolute URL of the page that carried it): absolute URLs, absolute
 * paths, relative paths and query-only references are handled per RFC 3986.
 * An absolute target on another scheme, host or port is refused (-EPERM):
 * pagination never leaves the registry.
 *
 * Returns 0 with *next = a malloc'd absolute URL (caller frees), 0 with
 * *next = NULL when there is no next link, -EINVAL for a malformed header,
 * -ENOMEM.
 */
int link_next(const char *header, const char *base_url, char **next);

/*
 * Split an absolute http(s) URL into its origin ("https://host:port", no
 * trailing slash) and path+query. Returns 0 or -EINVAL. Caller frees both.
 */
int url_split(const char *url, char **origin, char **pathq);

#endif
