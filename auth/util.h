/*
 * util — small helpers shared by the auth modules: wiping secrets, copies
 * of optional strings and the wall clock in milliseconds (base64 is in
 * common/base64.h).
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
