/*
 * jsonr — the strict reading of registry JSON (manifests, indexes, referrer
 * lists) over cJSON's tree, shared by manifest.c and referrers.c.
 *
 * Every accessor checks the type of what it reads, rejects a key that
 * appears twice in an object (cJSON would silently give the first: two
 * parsers must not see two different documents in the same bytes), and on
 * failure writes one sentence into the reader's `why` and returns the
 * errno; the first failure ends a parse.
 *
 * Pure functions: no I/O, thread-safe.
 */
#ifndef ACRFS_JSONR_H
#define ACRFS_JSONR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

struct cJSON;

/* Where a failure is told: `why` of size `whysz` (0: nowhere). */
struct jr {
	char *why;
	size_t whysz;
};

/* Write the sentence (truncated to whysz) and return `err`. */
int jr_fail(struct jr *p, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The member `key` of object `obj` (*it = NULL if absent); -EINVAL if it
 * appears twice. `where` names the object in the sentence. */
int jr_member(struct jr *p, const struct cJSON *obj, const char *where, const char *key,
	      const struct cJSON **it);

/* Is `s` 1..max bytes of printable ASCII without blanks? */
bool jr_printable(const char *s, size_t max);

/* The required "size" member: an integer in [0, 2^53). 0 or -EINVAL. */
int jr_size(struct jr *p, const struct cJSON *obj, const char *where, uint64_t *out);

/* The required "digest" member: "sha256:<64 lowercase hex>". 0 or -EINVAL. */
int jr_digest(struct jr *p, const struct cJSON *obj, const char *where, struct digest *d);

#endif
