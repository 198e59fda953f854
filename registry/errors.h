/*
 * errors — the one translation of registry answers into errno.
 */
#ifndef ACRFS_REGISTRY_ERRORS_H
#define ACRFS_REGISTRY_ERRORS_H

#include <stddef.h>

/*
 * Parse a registry error body ({"errors":[{"code","message","detail"}]}) and
 * copy the first error's code and message (truncated, NUL-terminated) into
 * the given buffers; either may be NULL. A detail that is a string is
 * appended to the message after ": ". Bodies that are absent or not JSON
 * leave "" in both. Never fails.
 */
void registry_error_parse(const char *body, size_t len, char *code, size_t codesz,
			  char *msg, size_t msgsz);

/*
 * errno for a final HTTP status and registry error code (code may be "" or
 * NULL): 404 / *_UNKNOWN (TAG_UNKNOWN too) → -ENOENT, 401 / 403 / DENIED /
 * UNAUTHORIZED → -EACCES, 405 / UNSUPPORTED / REGISTRY_DISALLOWED_OPERATION
 * (an ACR lock) → -EPERM, 429 / 5xx (retries exhausted) → -EIO, 400 →
 * -EINVAL, 409 → -EBUSY, 413 → -EFBIG; other non-2xx → -EIO; 2xx/3xx → 0.
 */
int registry_errno(long status, const char *code);

/*
 * What a log line should add for registry error `code`, or NULL: for ACR's
 * REGISTRY_DISALLOWED_OPERATION, REGISTRY_LOCKED_HINT — the words acrfs also
 * uses when it refuses a change to a locked tag or repository itself, so
 * both read the same.
 */
#define REGISTRY_LOCKED_HINT "locked in the registry (deleteEnabled or writeEnabled is false)"
const char *registry_error_hint(const char *code);

#endif
