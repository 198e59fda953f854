/*
 * digest — content digests ("sha256:<64 lowercase hex>") and a streaming
 * SHA-256 hasher (OpenSSL libcrypto EVP).
 *
 * struct digest is a small value type (copy it with `=`), deliberately not
 * opaque: manifests, trees and caches embed digests by the thousand and
 * compare them, and a heap object per digest would buy nothing.
 *
 * Only sha256 is accepted. The OCI spec also names sha512, but neither the
 * registries acrfs targets nor the images they hold use it; a string with any
 * other algorithm, upper-case hex, the wrong length or trailing bytes is
 * rejected with -EINVAL. digest_algorithm() extracts the algorithm name of a
 * rejected string so the caller can say *why* in its one log line.
 *
 * Thread-safety: the plain functions are pure and thread-safe. A
 * digest_hasher belongs to one thread at a time. Nothing here blocks.
 */
#ifndef ACRFS_DIGEST_H
#define ACRFS_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#define DIGEST_RAW_LEN 32  /* bytes of a SHA-256 sum */
#define DIGEST_HEX_LEN 64  /* hex digits of a SHA-256 sum */
#define DIGEST_STR_SIZE 72 /* "sha256:" + 64 hex + NUL */

struct digest {
	unsigned char raw[DIGEST_RAW_LEN]; /* the SHA-256 sum */
};

/*
 * Parse the NUL-terminated string `s` ("sha256:" + 64 lowercase hex digits,
 * nothing else). 0, or -EINVAL (and *d zeroed) for anything else, including
 * NULL.
 */
int digest_parse(struct digest *d, const char *s);
/* The same for the `len` bytes at `s` (no NUL needed; embedded NUL rejected). */
int digest_parse_n(struct digest *d, const char *s, size_t len);

/*
 * Copy the algorithm part of a digest-like string (what precedes the first
 * ':', at most 32 bytes, bytes outside [a-z0-9+._-] replaced by '?') into
 * `out` (always NUL-terminated; size `outsz` >= 1) — for messages about a
 * rejected digest ("unsupported digest algorithm sha512"). Returns `out`.
 * A string without ':' yields "".
 */
const char *digest_algorithm(const char *s, char *out, size_t outsz);

/* Write "sha256:<hex>" into `out` (always DIGEST_STR_SIZE bytes). Returns out. */
char *digest_format(const struct digest *d, char out[DIGEST_STR_SIZE]);
/* Write just the 64 hex digits plus NUL into `out`. Returns out. */
char *digest_hex(const struct digest *d, char out[DIGEST_HEX_LEN + 1]);

/* memcmp-order comparison: <0, 0, >0. */
int digest_cmp(const struct digest *a, const struct digest *b);
bool digest_equal(const struct digest *a, const struct digest *b);

/* SHA-256 of a buffer (`data` may be NULL when len == 0). 0 or -ENOMEM/-EIO. */
int digest_of_buf(struct digest *out, const void *data, size_t len);

/* A streaming SHA-256 hasher. Opaque; one thread at a time. */
struct digest_hasher;

/* *out = a fresh hasher, or NULL with -ENOMEM / -EIO (libcrypto failure). */
int digest_hasher_new(struct digest_hasher **out);
/* Hash `len` more bytes. 0 or -EIO; -EINVAL after final. */
int digest_hasher_update(struct digest_hasher *h, const void *data, size_t len);
/*
 * Finish. If `got` is not NULL it receives the sum. If `expected` is not NULL
 * the sum is compared with it: 0 when equal, -EBADMSG when not. -EIO on a
 * libcrypto failure, -EINVAL if called twice. The hasher must still be freed.
 */
int digest_hasher_final(struct digest_hasher *h, const struct digest *expected,
			struct digest *got);
/* Free; NULL is fine. */
void digest_hasher_free(struct digest_hasher *h);

#endif
