/*
 * acr — Azure Container Registry's own data-plane API, /acr/v1 (REFERENCE,
 * "ACR's data plane beyond /v2"): a repository's tags with their digests,
 * times and locks (one request per page of up to 1,000), one tag, a
 * repository's attributes, its manifests with their media types and tags,
 * untag, and repository delete.
 *
 * Callers ask registry_is_acr() (registry.h) first; on another registry
 * these routes do not exist (-ENOENT). Scopes: repository:<r>:metadata_read
 * for the GETs, repository:<r>:delete for untag and repository delete. An
 * identity without metadata_read gets -EACCES from the GETs, and callers
 * then fall back to /v2 (tags without metadata).
 *
 * Every answer is untrusted JSON: names are checked against the
 * distribution grammar (invalid ones skipped with a log line), digests
 * parsed, times parsed as RFC 3339 UTC ("Z", 0-9 fractional digits; anything
 * else reads as "unknown", tv_sec 0), attributes taken only when boolean
 * (absent: true, as an unlocked item).
 *
 * Every function blocks, is thread-safe (no state of its own), logs a
 * failure once with its context and returns 0 or -errno as registry.h says:
 * -ENOENT (no such repository / tag), -EACCES, -EPERM (a lock:
 * REGISTRY_DISALLOWED_OPERATION), -EIO, -ENOMEM, transport errors.
 */
#ifndef ACRFS_ACR_H
#define ACRFS_ACR_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/digest.h"
#include "registry/registry.h"

/* Page size asked of /acr/v1 listings: ACR's largest. */
#define ACR_PAGE 1000

/* changeableAttributes. */
struct acr_attrs {
	bool delete_enabled, write_enabled, read_enabled, list_enabled;
};

struct acr_tag {
	char *name;
	bool has_digest;
	struct digest digest;
	struct timespec created, updated; /* tv_sec 0: unknown */
	struct acr_attrs attrs;
};

struct acr_repo {
	struct timespec created, updated;
	struct acr_attrs attrs;
};

struct acr_manifest {
	struct digest digest;
	char *media_type; /* "" when absent */
	char **tags;	  /* the tags on it (may be none) */
	size_t ntags;
	struct acr_attrs attrs;
};

/*
 * Every tag of `repo`: GET /acr/v1/<repo>/_tags?n=1000, all pages. *tags
 * (caller frees with acr_tags_free) is sorted by name, names unique.
 */
int registry_acr_tags(struct registry *r, const char *repo, struct acr_tag **tags, size_t *n);
void acr_tags_free(struct acr_tag *tags, size_t n);

/* One tag: GET /acr/v1/<repo>/_tags/<tag> (-ENOENT: TAG_UNKNOWN). out->name
 * is malloc'd (acr_tags_free(out, 1) frees it, not out). */
int registry_acr_tag(struct registry *r, const char *repo, const char *tag,
		     struct acr_tag *out);

/* The repository's times and attributes: GET /acr/v1/<repo>. */
int registry_acr_repo(struct registry *r, const char *repo, struct acr_repo *out);

/* Every manifest of `repo` with its media type and tags:
 * GET /acr/v1/<repo>/_manifests?n=1000, all pages. Caller frees. */
int registry_acr_manifests(struct registry *r, const char *repo, struct acr_manifest **out,
			   size_t *n);
void acr_manifests_free(struct acr_manifest *m, size_t n);

/* Untag: DELETE /acr/v1/<repo>/_tags/<tag> → 202. The manifest and the
 * other tags stay. */
int registry_acr_untag(struct registry *r, const char *repo, const char *tag);

/* Delete the repository: DELETE /acr/v1/<repo> → 202. */
int registry_acr_repo_delete(struct registry *r, const char *repo);

/* A lock on the item: deleteEnabled or writeEnabled false. */
bool acr_locked(const struct acr_attrs *a);
/* "writeEnabled=false" / "deleteEnabled=false" / "writeEnabled=false,
 * deleteEnabled=false", or "" when unlocked. Static storage. */
const char *acr_lock_name(const struct acr_attrs *a);

/* Parse an ACR time (RFC 3339 UTC with Z, up to 9 fractional digits).
 * 0 or -EINVAL. */
int acr_time_parse(const char *s, struct timespec *out);
/* Write `t` as RFC 3339 UTC with 7 fractional digits (ACR's form) into
 * `buf` (at least ACR_TIME_SIZE bytes). Returns buf. */
#define ACR_TIME_SIZE 32
char *acr_time_format(const struct timespec *t, char *buf, size_t size);

/* The attributes as ACR spells them:
 * {"deleteEnabled":true,"writeEnabled":true,"readEnabled":true,"listEnabled":true}
 * into `buf` (at least ACR_ATTRS_SIZE bytes). Returns buf. */
#define ACR_ATTRS_SIZE 96
char *acr_attrs_format(const struct acr_attrs *a, char *buf, size_t size);

#endif
