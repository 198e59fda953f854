/*
 * manifest — image manifests and indexes (OCI and Docker schema 2): fetch,
 * verify, parse.
 *
 * Manifest bytes are hostile input. manifest_parse() type-checks every field
 * it reads, accepts sizes only as integers in [0, 2^53 - 1], validates every
 * digest (sha256 only), caps the input at MANIFEST_MAX_BYTES and the number
 * of layers / index entries at MANIFEST_MAX_ENTRIES, and rejects a key that
 * appears twice in an object it reads (two parsers must not be able to see
 * two different manifests in the same bytes). Platform strings (os,
 * architecture, variant) are limited to [A-Za-z0-9._+-]{1,64}: fs/ builds
 * directory names from them.
 *
 * Known kinds:
 *   MANIFEST_IMAGE  application/vnd.oci.image.manifest.v1+json,
 *                   application/vnd.docker.distribution.manifest.v2+json
 *   MANIFEST_INDEX  application/vnd.oci.image.index.v1+json,
 *                   application/vnd.docker.distribution.manifest.list.v2+json
 * The media type is the JSON "mediaType"; when absent, the Content-Type
 * (parameters dropped); when both are absent (old OCI manifests), the shape
 * decides ("manifests" → index, "config" + "layers" → image).
 *
 * Thread-safety: a struct manifest is immutable once returned and may be read
 * from any thread. The registry_* functions block and are thread-safe.
 */
#ifndef ACRFS_MANIFEST_H
#define ACRFS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "registry/registry.h"

#define MANIFEST_MAX_BYTES (4u << 20)
#define MANIFEST_MAX_ENTRIES 10000
#define MANIFEST_MAX_SIZE ((1ull << 53) - 1) /* largest descriptor size accepted */

#define MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

enum manifest_kind { MANIFEST_IMAGE = 1, MANIFEST_INDEX = 2 };

struct descriptor {
	char *media_type;
	struct digest digest;
	uint64_t size;
	char **urls;
	size_t nurls; /* foreign layers */
	char *os, *architecture, *variant; /* index entries only (else NULL) */
};

/* Every pointer is owned by the manifest; manifest_free() releases them all. */
struct manifest {
	enum manifest_kind kind;
	char *media_type;	 /* from the JSON mediaType, else Content-Type */
	struct digest digest;	 /* sha256 of the exact bytes */
	char *bytes;		 /* the exact bytes as served (NUL-terminated for convenience) */
	size_t len;
	struct descriptor config; /* image only */
	struct descriptor *layers; /* image only, manifest order */
	size_t nlayers;
	struct descriptor *manifests; /* index only */
	size_t nmanifests;
};

/*
 * Parse `len` bytes (copied: the caller keeps its buffer). `content_type`
 * may be NULL. *out = the manifest (caller frees with manifest_free), or
 * NULL and:
 *   -EFBIG    more than MANIFEST_MAX_BYTES bytes or MANIFEST_MAX_ENTRIES
 *             layers / index entries;
 *   -ENOTSUP  schema 1, or a media type that is neither an image manifest
 *             nor an index (artifact manifests, unknown types);
 *   -EINVAL   not JSON, not an object, a missing or mistyped field, a bad
 *             digest, a size out of range, a duplicate key, a bad platform;
 *   -ENOMEM.
 * The reason is logged once (error level). Does not block.
 */
int manifest_parse(const void *bytes, size_t len, const char *content_type,
		   struct manifest **out);

/*
 * The same, without logging: the reason goes to `why` (size `whysz`,
 * always NUL-terminated when whysz > 0) for a caller that logs it with its
 * own context.
 */
int manifest_parse_why(const void *bytes, size_t len, const char *content_type,
		       struct manifest **out, char *why, size_t whysz);

/*
 * GET /v2/<repo>/manifests/<ref> (ref: a tag or "sha256:<hex>") with
 * Accept: OCI manifest + index, Docker schema 2 manifest + list; scope
 * repository:<repo>:pull. m->digest is the sha256 of the exact bytes; when
 * ref is a digest they must match, and a Docker-Content-Digest header must
 * agree with them (else -EIO, logged with both digests).
 * Returns 0 and *out (caller frees), or *out = NULL and: -ENOENT (404 /
 * MANIFEST_UNKNOWN / NAME_UNKNOWN, or an invalid repo name or ref), -EIO
 * (digest mismatch, unparseable manifest, unexpected status, an answer
 * longer than MANIFEST_MAX_BYTES), -ENOTSUP, -EFBIG (too many entries, see
 * manifest_parse), -EACCES, or a transport errno (registry.h).
 * Blocks; thread-safe.
 */
int registry_manifest_get(struct registry *r, const char *repo, const char *ref,
			  struct manifest **out);

/*
 * HEAD the same. *digest from Docker-Content-Digest; when the registry sends
 * none (or no Content-Type while media_type is wanted), falls back to
 * registry_manifest_get() and hashes the bytes. When ref is a digest, the
 * answer must name it (else -EIO). *media_type (may pass NULL) is malloc'd,
 * caller frees; NULL on failure. Errors as registry_manifest_get().
 * Blocks; thread-safe.
 */
int registry_manifest_head(struct registry *r, const char *repo, const char *ref,
			   struct digest *digest, char **media_type);

/* Free a manifest (NULL is fine; half-built manifests too). */
void manifest_free(struct manifest *m);

/* MANIFEST_IMAGE / MANIFEST_INDEX for a known media type, else 0. */
enum manifest_kind manifest_kind_of(const char *media_type);

#endif
