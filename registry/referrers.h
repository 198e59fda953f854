/*
 * referrers — the artifacts that refer to a manifest (signatures, SBOMs,
 * attestations: manifests whose "subject" names it), OCI distribution 1.1.
 *
 * Two ways to ask, both answering an OCI index whose "manifests" are the
 * referrers' descriptors (mediaType, digest, size, artifactType and the
 * referrer's annotations):
 *   the referrers API  GET /v2/<repo>/referrers/<digest>, paginated with
 *                      Link rel="next" like tag lists (reg_get_pages: same
 *                      page count / size bounds); a registry that has the
 *                      API never answers 404 for it;
 *   the tag schema     the tag "sha256-<hex>" of the subject holds that index
 *                      (registries without the API: distribution 2.8, ACR
 *                      with customer-managed keys); no such tag = none.
 *
 * Index bytes are hostile input: referrers_parse type-checks each field it
 * reads, rejects duplicate keys in the objects it reads, validates digests
 * (sha256) and media types, and bounds the number of referrers
 * (REFERRERS_MAX over all pages), of annotations per referrer
 * (REFERRER_MAX_ANNOTATIONS) and their sizes (REFERRER_MAX_KEY,
 * REFERRER_MAX_VALUE). Keys and values are kept as given (a value may hold
 * any byte but NUL); what is fit for a file name or an xattr name is fs/'s
 * business.
 *
 * A struct referrers is immutable once returned and may be read from any
 * thread. The registry_* functions block and are thread-safe.
 */
#ifndef ACRFS_REFERRERS_H
#define ACRFS_REFERRERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "registry/registry.h"

#define REFERRERS_MAX 10000
#define REFERRER_MAX_ANNOTATIONS 256
#define REFERRER_MAX_KEY 255
#define REFERRER_MAX_VALUE (64u << 10)

struct annotation {
	char *key, *value;
};

/* One referrer, as its descriptor (or its own manifest) describes it. */
struct referrer {
	struct digest digest;
	char *media_type;    /* of the referrer's manifest */
	uint64_t size;
	char *artifact_type; /* "artifactType"; NULL when absent */
	struct annotation *annotations; /* in the JSON's order */
	size_t nannotations;
};

/* Owned by the list; referrers_clear() releases everything. */
struct referrers {
	struct referrer *v; /* in the registry's order */
	size_t n, cap;
};
#define REFERRERS_INIT { NULL, 0, 0 }

/*
 * Append the referrers of one index (`len` bytes of JSON; a page of the API
 * or the tag schema's index) to `out`. 0; -EINVAL (not JSON, not an object,
 * no "manifests" array, a mistyped or missing field, a bad digest, a
 * duplicate key, an annotation out of bounds), -EFBIG (more than
 * REFERRERS_MAX referrers in `out`), -ENOMEM; the reason in `why` (size
 * `whysz`, NUL-terminated when whysz > 0). On failure `out` may hold the
 * referrers appended before the bad one (the caller clears it). No I/O.
 */
int referrers_parse(const void *bytes, size_t len, struct referrers *out, char *why,
		    size_t whysz);

/*
 * What a referrer's own manifest (`len` bytes) says of it: its
 * "artifactType", else its config's mediaType (OCI 1.1), and its
 * "annotations"; digest, media type and size are left 0 / NULL. 0, -EINVAL
 * (as referrers_parse; reason in `why`), -ENOMEM. *out is released with
 * referrer_release(). No I/O.
 */
int referrer_from_manifest(const void *bytes, size_t len, struct referrer *out, char *why,
			   size_t whysz);

void referrer_release(struct referrer *r);
void referrers_clear(struct referrers *l); /* leaves it empty, reusable */

/*
 * The referrers API: GET /v2/<repo>/referrers/<subject>, all pages, into
 * `out` (empty on entry). 0; -ENOENT when the registry answers 404 (it has
 * no such API: ask registry_referrers_tag), -EIO (an unparseable page,
 * logged with its URL; page bounds), -EACCES, transport errors (registry.h).
 * On failure `out` is empty. Blocks; thread-safe.
 */
int registry_referrers(struct registry *r, const char *repo, const struct digest *subject,
		       struct referrers *out);

/*
 * The tag schema: GET /v2/<repo>/manifests/sha256-<hex> into `out` (empty
 * on entry). 0 (no such tag: no referrers, `out` empty); -EIO (not an
 * index, unparseable: logged), -EACCES, transport errors. Blocks;
 * thread-safe.
 */
int registry_referrers_tag(struct registry *r, const char *repo, const struct digest *subject,
			   struct referrers *out);

#endif
