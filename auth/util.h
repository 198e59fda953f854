/*
 * util — small helpers shared by the auth modules: wiping secrets, base64
 * (standard and URL alphabets) and the wall clock in milliseconds.
 *
 * All functions are thread-safe and never block.
 */
#ifndef ACRFS_AUTH_UTIL_H
#define ACRFS_AUTH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Overwrite `n` bytes at p with zeros in a way the compiler keeps. */
void auth_wipe(void *p, size_t n);

/* Wipe the C string s (strlen bytes) and free it. NULL is fine. */
void auth_secret_free(char *s);

/* Wall-clock time (CLOCK_REALTIME) in milliseconds since the epoch. */
int64_t auth_now_ms(void);

/*
 * Base64-encode n bytes (standard alphabet, with padding). *out is a new
 * NUL-terminated string, caller frees. 0 or -ENOMEM.
 */
int auth_b64_encode(const void *in, size_t n, char **out);

/*
 * Decode base64 of either alphabet ("+/" or "-_"), padding optional,
 * no whitespace allowed. *out receives n bytes plus a terminating NUL (so a
 * decoded text can be used as a C string); *outlen the byte count (may be
 * NULL). Caller frees *out. 0, -EINVAL on a malformed input, or -ENOMEM.
 */
int auth_b64_decode(const char *in, size_t n, char **out, size_t *outlen);

/*
 * Strict wrapper for strdup of possibly-NULL strings: *out = copy or NULL.
 * 0 or -ENOMEM.
 */
int auth_strdup(const char *s, char **out);

struct cJSON;
/*
 * cJSON_Delete() after wiping every string value in the tree: for parsed
 * documents that held secrets. NULL is fine.
 */
void auth_json_free_secret(struct cJSON *o);

#endif
