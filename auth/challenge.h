/*
 * challenge — parse `WWW-Authenticate` header values and handle token
 * scopes.
 *
 * A header value may hold several challenges (RFC 7235 §4.1):
 *   Basic realm="x", Bearer realm="y",service="z",scope="repository:a:pull"
 * auth_challenge_parse() returns them in order as a list. Scheme names and
 * parameter names are case-insensitive; values may be tokens or
 * quoted-strings (backslash escapes are removed); a challenge may instead
 * carry a token68 (kept in `token68`). Duplicate parameters: the first wins.
 * Parameters other than realm/service/scope/error/error_description are
 * ignored.
 *
 * Scopes are strings of the form `<type>:<name>:<actions>`, e.g.
 * `repository:library/alpine:pull,push` or `registry:catalog:*`. The type
 * ends at the first ':' and the actions start after the last ':', so a name
 * may contain ':' (distribution's rule). A "scope list" is several scopes
 * separated by spaces, as in a challenge's scope parameter.
 *
 * Everything here is pure: thread-safe, never blocks, no I/O.
 */
#ifndef ACRFS_AUTH_CHALLENGE_H
#define ACRFS_AUTH_CHALLENGE_H

#include <stdbool.h>
#include <stddef.h>

enum auth_scheme {
	AUTH_SCHEME_OTHER = 0,
	AUTH_SCHEME_BASIC,
	AUTH_SCHEME_BEARER,
};

/*
 * One parsed challenge. Read-only for callers; every string is owned by the
 * list and freed by auth_challenge_free(). Absent parameters are NULL.
 */
struct auth_challenge {
	enum auth_scheme scheme;
	char *scheme_name; /* as sent, e.g. "Bearer" or "Negotiate" */
	char *realm;
	char *service;
	char *scope; /* raw; may hold several space-separated scopes */
	char *error; /* e.g. "invalid_token", "insufficient_scope" */
	char *error_description;
	char *token68; /* for schemes that send a token68 instead of params */
	struct auth_challenge *next;
};

/* Upper bound on the header length accepted (longer → -EINVAL). */
#define AUTH_CHALLENGE_MAX_LEN 65536

/*
 * Parse the first `len` bytes of `hdr` (stops early at a NUL byte; never
 * reads past hdr + len). On success *out is a non-empty list, caller frees
 * with auth_challenge_free(). Returns 0, -EINVAL for anything that is not a
 * well-formed challenge list (empty, unterminated quote, missing value,
 * stray characters, control characters…), or -ENOMEM. *out is NULL on
 * failure.
 */
int auth_challenge_parsen(const char *hdr, size_t len,
			  struct auth_challenge **out);
/* Same for a NUL-terminated header value. */
int auth_challenge_parse(const char *hdr, struct auth_challenge **out);

/* Free a list returned by auth_challenge_parse(). NULL is fine. */
void auth_challenge_free(struct auth_challenge *list);

/*
 * The challenge acrfs should answer: the first Bearer one, else the first
 * Basic one, else NULL. Borrowed from the list.
 */
const struct auth_challenge *
auth_challenge_pick(const struct auth_challenge *list);

/* The catalog scope. */
#define AUTH_SCOPE_CATALOG "registry:catalog:*"

/*
 * Build "repository:<name>:<actions>" into *out (caller frees).
 * `actions` is a comma-separated list such as "pull" or "pull,push".
 * -EINVAL if name or actions is empty or holds a space, ':' appears in
 * actions, or name starts/ends with ':'; -ENOMEM.
 */
int auth_scope_repository(const char *name, const char *actions, char **out);

/* strdup of AUTH_SCOPE_CATALOG into *out (caller frees). 0 or -ENOMEM. */
int auth_scope_catalog(char **out);

/* A scope split into its parts; every field is owned by the struct. */
struct auth_scope {
	char *type; /* "repository", "registry", "repository(plugin)" */
	char *name; /* may contain ':' (e.g. host:port/repo) */
	char *actions; /* comma-separated, as sent; may be "" */
};

/*
 * Split one scope (no spaces) at the first and last ':'. 0, -EINVAL (fewer
 * than two ':', empty type or name, spaces), -ENOMEM. Clear with
 * auth_scope_clear(); *out is zeroed on failure.
 */
int auth_scope_parse(const char *scope, struct auth_scope *out);
void auth_scope_clear(struct auth_scope *s);

/*
 * Whether a token granted for the scope list `have` covers every scope in
 * the scope list `want`: for each wanted scope, the union of the actions of
 * all `have` scopes with the same type and name must include each wanted
 * action. An action "*" in `have` covers any action. A wanted scope list
 * that is empty or NULL is covered by anything; a malformed scope in
 * `have` is ignored, a malformed one in `want` is never covered.
 */
bool auth_scope_covers(const char *have, const char *want);

#endif
