/*
 * base64 — encoding and decoding of base64 (RFC 4648), for tokens and
 * credentials (auth/) and for tar's LIBARCHIVE.xattr values (image/tar.c).
 *
 * Thread-safe; never blocks.
 */
#ifndef ACRFS_COMMON_BASE64_H
#define ACRFS_COMMON_BASE64_H

#include <stddef.h>

/*
 * Base64-encode n bytes (standard alphabet, with padding). *out is a new
 * NUL-terminated string, caller frees. 0 or -ENOMEM.
 */
int base64_encode(const void *in, size_t n, char **out);

/*
 * Decode base64 of either alphabet ("+/" or "-_"), padding optional,
 * no whitespace allowed. *out receives n bytes plus a terminating NUL (so a
 * decoded text can be used as a C string); *outlen the byte count (may be
 * NULL). Caller frees *out. 0, -EINVAL on a malformed input, or -ENOMEM.
 */
int base64_decode(const char *in, size_t n, char **out, size_t *outlen);

#endif
