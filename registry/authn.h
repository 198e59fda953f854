/*
 * authn — one registry's authentication state, driven by reg_send().
 *
 * What it holds: the resolved credentials (a private copy), the last
 * challenge the registry sent (scheme, realm, service), the bearer tokens it
 * obtained (auth/token.h cache, per exact scope, single-flight), the
 * precomputed Basic header, and for Azure AD credentials the ACR refresh
 * token obtained by /oauth2/exchange.
 *
 * The protocol, as reg_send() uses it:
 *   1. authn_prepare(): once a challenge is known, the header to send with a
 *      request needing `scope` — Basic for a Basic challenge, else a bearer
 *      token for exactly that scope (cached, or fetched now from the realm).
 *   2. The request goes out. On 401 with WWW-Authenticate,
 *      authn_challenged() records the challenge and says whether to retry
 *      and with what: a token fetched for the scope (or the challenge's own
 *      scope when the request has none); after a rejected token
 *      (invalid_token, expired) the cached one is dropped and a fresh one
 *      fetched; insufficient_scope, rejected Basic credentials or a
 *      rejected registry token are final. reg_send() retries at most once.
 *
 * Token requests, by credential kind (auth/form.h builds them):
 *   none / basic   GET <realm>?service=&scope= (Basic header for basic)
 *   refresh token  POST <realm> grant_type=refresh_token
 *   registry token sent as is, never fetched
 *   Azure AD       POST <registry origin>/oauth2/exchange once (cached until
 *                  the refresh token's exp), then the refresh-token POST;
 *                  never to another origin (the realm's host may be anyone
 *                  the registry names), and only over https (plain http
 *                  only to a loopback registry, for tests)
 * They go through the registry's http layer. A failed token request is
 * reported once: into *why when the caller passes one (the start-up check
 * words it), else logged at error level, with the token URL and status and
 * never a body that may hold a secret (only an OAuth2 error code).
 *
 * Thread-safety: every function may be called from any thread. A leaf
 * mutex guards the challenge; the token caches have their own; no lock is
 * held across network I/O. authn_prepare() and authn_challenged() block
 * while a token is fetched (or another thread fetches the same one).
 */
#ifndef ACRFS_REGISTRY_AUTHN_H
#define ACRFS_REGISTRY_AUTHN_H

#include <stdbool.h>

#include "common/buf.h"

struct authn;
struct auth_creds;
struct http;

/*
 * Create the state. `http` is borrowed (must outlive the authn); `creds`
 * is copied (NULL: anonymous); `registry_url` is the registry's origin
 * ("https://host:port"; the Azure AD exchange goes there only). 0,
 * -ENOMEM; *out is NULL on failure.
 */
int authn_new(struct authn **out, struct http *http, const struct auth_creds *creds,
	      const char *registry_url);

/* Wipe every secret and free. NULL is fine. */
void authn_free(struct authn *a);

/*
 * The "Authorization: …" line to send with a request needing `scope`
 * (NULL or "": none), or *hdr_out NULL when no challenge is known yet or
 * the credentials cannot answer it. *hdr_out is a secret: free it with
 * auth_secret_free(). Returns 0, or -errno when a token was needed and the
 * token service refused (-EACCES: the caller should let the registry's
 * answer stand rather than ask again) or failed otherwise (-ETIMEDOUT,
 * -EIO, ...: the operation fails with it); the failure was reported (see
 * above).
 */
int authn_prepare(struct authn *a, const char *scope, char **hdr_out, struct buf *why);

/*
 * The registry answered 401 with `www_auth` to a request needing `scope`
 * that carried `sent` (the header from authn_prepare(), or NULL). On 0,
 * *hdr_out is the header to retry with (a secret, auth_secret_free()), or
 * NULL: do not retry, the 401 stands. -errno: a token could not be had
 * (reported as above): -EACCES, the 401 stands; another errno is the
 * operation's failure. The caller passes only challenges of the registry's
 * own origin (never one from a redirect target).
 */
int authn_challenged(struct authn *a, const char *scope, const char *www_auth, const char *sent,
		     char **hdr_out, struct buf *why);

/* True when the credentials are anonymous (kind none). */
bool authn_anonymous(const struct authn *a);

/*
 * Append who authenticates, for messages: "user 'x' (from SOURCE)",
 * "anonymous access", "Azure AD token (from aad_token_file P)"… Never a
 * secret.
 */
void authn_describe(const struct authn *a, struct buf *out);

#endif
