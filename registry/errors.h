/*
 * errors — the one translation of registry answers into errno.
 */
#ifndef ACRFS_REGISTRY_ERRORS_H
#define ACRFS_REGISTRY_ERRORS_H

#include <stddef.h>

/*
 * Parse a registry error body ({"errors":[{"code","message","detail"}]}) and
 * copy the first error's code and message (truncated, NUL-terminated) into
 * the given buffers; either may be NULL. Bodies that are absent or not JSON
 * leave "" in both. Never fails.
 */
void registry_error_parse(const char *body, size_t len, char *code, size_t codesz,
			  char *msg, size_t msgsz);

/*
 * errno for a final HTTP status and registry error code (code may be "" or
 * NULL): 404 / *_UNKNOWN → -ENOENT, 401 / 403 / DENIED / UNAUTHORIZED →
 * -EACCES, 405 / UNSUPPORTED → -EPERM, 429 / 5xx (retries exhausted) → -EIO,
 * 400 → -EINVAL, 409 → -EBUSY, 413 → -EFBIG; other non-2xx → -EIO;
 * 2xx/3xx → 0.
 */
int registry_errno(long status, const char *code);

#endif
