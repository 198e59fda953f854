/*
 * token — the bearer-token cache and the token endpoint's reply parser.
 *
 * Times are milliseconds since the epoch on the local wall clock
 * (auth_now_ms()); the cache's clock can be replaced for tests.
 *
 * Expiry rule (why a token is handed out or not). A token stored at time S
 * that expires at E has lifetime L = E - S. auth_tokens_get() returns it
 * only while now < E - margin, where
 *     margin = max(1 s, min(30 s, L / 5)).
 * So a 1 h ACR token is refreshed 30 s before it dies, a 60 s token at 48 s
 * (80 %), a 5 s test token at 4 s (80 %), a 3 s token at 2 s (the 1 s floor
 * wins) — and no caller ever receives a token with less than 1 s left.
 * A token whose lifetime is not above the margin floor is not cached.
 *
 * How E is derived from a reply: see auth_token_reply_parse().
 *
 * Thread-safety: every auth_tokens_* function may be called from any thread;
 * one mutex guards the cache (a leaf lock: no other lock is taken while it
 * is held). Nothing here does I/O; auth_tokens_get_or_claim() may wait on a
 * condition variable for another thread's fetch (bounded, see there).
 */
#ifndef ACRFS_AUTH_TOKEN_H
#define ACRFS_AUTH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

struct auth_tokens;

/* Clock for expiry decisions: milliseconds since the epoch. */
typedef int64_t (*auth_clock_fn)(void *ctx);

/* Margin floor and cap, and the default lifetime when nothing is known. */
#define AUTH_TOKEN_MARGIN_MIN_MS 1000
#define AUTH_TOKEN_MARGIN_MAX_MS 30000
#define AUTH_TOKEN_DEFAULT_LIFETIME_MS 60000
/* docker's minimum for expires_in (see auth_token_reply_parse()). */
#define AUTH_TOKEN_MIN_EXPIRES_IN_S 60
/* How long auth_tokens_get_or_claim() waits for another thread's fetch. */
#define AUTH_TOKEN_CLAIM_WAIT_MS 30000

/* Create an empty cache using auth_now_ms(). 0 or -ENOMEM (*out NULL). */
int auth_tokens_new(struct auth_tokens **out);

/* Wipe every token and free the cache. NULL is fine. No thread may still
 * be using the cache. */
void auth_tokens_free(struct auth_tokens *c);

/* Replace the clock (tests). now == NULL restores auth_now_ms(). */
void auth_tokens_set_clock(struct auth_tokens *c, auth_clock_fn now, void *ctx);

/*
 * Look up a token for (realm, service, scope). `service` may be NULL (no
 * service parameter); `scope` may be NULL or "" (no scope) or a
 * space-separated scope list. An entry stored for exactly this key is
 * preferred; otherwise any entry for the same realm and service whose scope
 * covers `scope` (auth_scope_covers()) is used. Only tokens valid under the
 * expiry rule above are returned.
 * Returns 0 with *token_out a copy (caller frees with auth_secret_free()),
 * -ENOENT if there is none, -EINVAL, -ENOMEM. Never blocks.
 */
int auth_tokens_get(struct auth_tokens *c, const char *realm,
		    const char *service, const char *scope, char **token_out);

/*
 * Single-flight variant of auth_tokens_get(): if no valid token is cached
 * and no other thread is fetching this key, the key is marked as being
 * fetched by the caller and -ENOENT is returned — the caller must then fetch
 * and call either auth_tokens_put() or auth_tokens_abandon() for the same
 * key. If another thread is fetching it, waits (up to
 * AUTH_TOKEN_CLAIM_WAIT_MS, then takes the claim over) and returns its
 * result. Returns 0 with a copy in *token_out, -ENOENT (you fetch),
 * -EINVAL, -ENOMEM. May block; call it without holding other locks.
 */
int auth_tokens_get_or_claim(struct auth_tokens *c, const char *realm,
			     const char *service, const char *scope,
			     char **token_out);

/* Give up a claim from auth_tokens_get_or_claim() (the fetch failed). */
void auth_tokens_abandon(struct auth_tokens *c, const char *realm,
			 const char *service, const char *scope);

/*
 * Store a copy of `token` for the key, replacing any entry of that key;
 * `expires_at_ms` on this cache's clock. Also releases a claim on the key
 * and wakes waiters. The token is registered with log_secret(). A token
 * whose lifetime is too short to be handed out is not stored (returns 0).
 * 0, -EINVAL, -ENOMEM.
 */
int auth_tokens_put(struct auth_tokens *c, const char *realm,
		    const char *service, const char *scope, const char *token,
		    int64_t expires_at_ms);

/*
 * Forget tokens after the registry rejected one (401 invalid_token):
 * removes every entry for (realm, service) that auth_tokens_get() could
 * return for `scope`, so the next get misses. scope NULL: every entry of
 * (realm, service); realm NULL: everything. Returns the number removed.
 */
int auth_tokens_invalidate(struct auth_tokens *c, const char *realm,
			   const char *service, const char *scope);

/* Number of cached entries (valid or not). For tests and stats. */
size_t auth_tokens_count(struct auth_tokens *c);

/*
 * A parsed token endpoint reply. Strings are owned by the struct; clear
 * with auth_token_reply_clear() (wipes the secrets).
 */
struct auth_token_reply {
	char *token; /* access_token, else token; never NULL on success */
	char *refresh_token; /* NULL if the reply has none */
	int64_t expires_at_ms; /* local clock */
	int64_t lifetime_ms; /* expires_at_ms - now_ms as computed */
};

/*
 * Parse the JSON reply of a token request (GET or POST to the realm),
 * fetched at local time now_ms. The token is access_token if present and
 * non-empty, else token (-EINVAL if neither). Expiry — the earliest of
 * what is known:
 *  - expires_in (seconds; < 60 raised to 60 as docker does) counted from
 *    issued_at (RFC 3339) clamped into [now - 60 s, now] (so a skewed
 *    server clock can't shift it by more than a minute), else from now;
 *  - the JWT's exp claim. If the JWT also has iat, the lifetime exp - iat
 *    is counted from iat clamped the same way (skew-proof); else exp is
 *    taken as an absolute time.
 *  - if neither is known: now + 60 s.
 * Taking the minimum resolves "docker's 60 s floor" against short-lived
 * JWTs: a 3 s token with expires_in=3 and exp=iat+3 expires after 3 s,
 * not 60 s; the floor only applies to opaque tokens.
 * The token and refresh token are registered with log_secret().
 * 0, -EINVAL (not JSON, no token, wrong types), -ENOMEM. *out is zeroed on
 * failure.
 */
int auth_token_reply_parse(const char *json, size_t len, int64_t now_ms,
			   struct auth_token_reply *out);
void auth_token_reply_clear(struct auth_token_reply *r);

/*
 * Read the exp and iat claims (seconds) of a JWT's payload without
 * verifying anything. Either output may be NULL; a missing claim yields
 * -1. 0 if the token is a JWT with at least an exp claim, -EINVAL if it is
 * not a JWT or has no numeric exp, -ENOMEM.
 */
int auth_jwt_times(const char *jwt, int64_t *exp_s, int64_t *iat_s);

/*
 * Parse an RFC 3339 time ("2024-01-02T03:04:05Z", optional fraction,
 * "Z" or ±hh:mm) into milliseconds since the epoch. 0 or -EINVAL.
 */
int auth_parse_rfc3339(const char *s, int64_t *ms_out);

#endif
