/*
 * form — the token requests the registry layer sends, built here so that
 * every detail of the token protocol (docker, distribution, ACR) lives in
 * auth/. The registry layer only performs the HTTP exchange.
 *
 *   GET  <realm>?service=S&scope=A&scope=B        auth_form_token_url()
 *        (Authorization: auth_basic_header() or none for anonymous)
 *   POST <realm>  grant_type=refresh_token…       auth_form_refresh_body()
 *   POST <realm>  grant_type=password…            auth_form_password_body()
 *   POST <registry origin>/oauth2/exchange       auth_form_exchange_url()
 *        grant_type=access_token…                 auth_form_exchange_body()
 *        → {"refresh_token": R}                   auth_exchange_reply_parse()
 * POST bodies are application/x-www-form-urlencoded. Values are
 * percent-encoded (everything but ALPHA DIGIT "-._~"). Several scopes go
 * as repeated `scope=` parameters in the GET (as docker does) and as one
 * space-separated `scope` in POST forms (OAuth2, as docker does).
 *
 * Results are new strings the caller frees; those holding secrets (bodies
 * with tokens or passwords, the Basic header) must be freed with
 * auth_secret_free(), and their secret parts are registered with
 * log_secret(). All functions are thread-safe and never block.
 * They return 0, -EINVAL (missing required argument, malformed realm) or
 * -ENOMEM; *out is NULL on failure.
 */
#ifndef ACRFS_AUTH_FORM_H
#define ACRFS_AUTH_FORM_H

#include <stddef.h>

/* client_id sent in POST forms (docker's spec requires one). */
#define AUTH_FORM_CLIENT_ID "acrfs"

/*
 * `realm` must be an http:// or https:// URL; if it already has a query,
 * parameters are appended with '&'. service and scope may be NULL; scope
 * is a space-separated scope list.
 */
int auth_form_token_url(const char *realm, const char *service,
			const char *scope, char **out);

/* grant_type=refresh_token&client_id=…&service=…&scope=…&refresh_token=…
 * (service and scope omitted when NULL). */
int auth_form_refresh_body(const char *service, const char *scope,
			   const char *refresh_token, char **out);

/* grant_type=password&client_id=…&service=…&scope=…&username=…&password=… */
int auth_form_password_body(const char *service, const char *scope,
			    const char *username, const char *password,
			    char **out);

/* "<scheme>://<host[:port]>/oauth2/exchange" of a URL (the registry's). */
int auth_form_exchange_url(const char *realm, char **out);

/* grant_type=access_token&service=…[&tenant=…]&access_token=… */
int auth_form_exchange_body(const char *service, const char *tenant,
			    const char *aad_token, char **out);

/*
 * Parse the exchange reply {"refresh_token": "…"}: *refresh_out gets a
 * copy (registered with log_secret(); free with auth_secret_free()).
 * 0, -EINVAL (not JSON, no refresh_token), -ENOMEM.
 */
int auth_exchange_reply_parse(const char *json, size_t len,
			      char **refresh_out);

/* "Basic " + base64(user ":" pass); the base64 part is a registered
 * secret. A user containing ':' is -EINVAL (RFC 7617). */
int auth_basic_header(const char *user, const char *pass, char **out);

/* Percent-encode `s` (everything but ALPHA DIGIT "-._~"). */
int auth_form_encode(const char *s, char **out);

#endif
