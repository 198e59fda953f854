/*
 * Design: struct authn is the registry layer's half of authentication; all
 * protocol detail (challenge grammar, scopes, expiry, form bodies) lives in
 * auth/, which does no I/O. The credentials and the Basic header are
 * immutable after authn_new(). `mu` guards only the last challenge (scheme,
 * realm, service): readers copy it out under the lock and work on the copy,
 * so the lock is never held across a token request. Tokens live in two
 * auth_tokens caches (their own locks, single-flight claims): `tokens` for
 * access tokens keyed by (realm, service, scope), `refresh` for the ACR
 * refresh token that an Azure AD token was exchanged for, keyed by
 * (exchange URL, service, ""). A request without scope is keyed by "".
 *
 * Bounds: authn_prepare() fetches at most one token; authn_challenged() at
 * most one (after dropping a rejected one); an Azure AD fetch may exchange
 * once more when the cached refresh token is refused. reg_send() retries a
 * request at most once, so one operation costs at most two registry
 * requests and two token requests (three with the AAD re-exchange).
 */
#include "registry/authn.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/challenge.h"
#include "auth/creds.h"
#include "auth/form.h"
#include "auth/token.h"
#include "auth/util.h"
#include "common/log.h"
#include "registry/http.h"
#include "registry/link.h"

#define AUTHZ "Authorization: "
#define AUTHZ_BEARER AUTHZ "Bearer "
#define AUTHZ_BASIC AUTHZ "Basic "
/* Lifetime assumed for an exchanged refresh token that is not a JWT. */
#define REFRESH_DEFAULT_LIFETIME_MS (3600 * 1000LL)
/* Largest token service reply accepted. */
#define TOKEN_REPLY_MAX (1u << 20)

struct authn {
	struct http *http;	     /* borrowed from the registry */
	struct auth_creds creds;     /* private copy, immutable */
	char *basic;		     /* AUTHZ_BASIC line from the credentials, or NULL */
	struct auth_tokens *tokens;  /* access tokens (own lock) */
	struct auth_tokens *refresh; /* AAD: exchanged refresh tokens (own lock) */
	char *exchange_url;	     /* AAD: <registry origin>/oauth2/exchange, or NULL */
	const char *no_exchange;     /* why exchange_url is NULL (for the report) */

	/* Guards the last challenge. Leaf lock: nothing is called under it. */
	pthread_mutex_t mu;
	enum auth_scheme scheme; /* AUTH_SCHEME_OTHER until a challenge came */
	char *realm;
	char *service;
};

static const char *nz(const char *s)
{
	return s ? s : "";
}

int authn_new(struct authn **out, struct http *http, const struct auth_creds *creds,
	      const char *registry_url)
{
	struct authn *a;
	char *basic = NULL;
	int rc;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->mu, NULL);
	a->http = http;
	a->scheme = AUTH_SCHEME_OTHER;
	if (creds) {
		a->creds.kind = creds->kind;
		if (auth_strdup(creds->username, &a->creds.username) ||
		    auth_strdup(creds->secret, &a->creds.secret) ||
		    auth_strdup(creds->tenant, &a->creds.tenant) ||
		    auth_strdup(creds->source, &a->creds.source)) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if (!a->creds.source && !(a->creds.source = strdup("anonymous"))) {
		rc = -ENOMEM;
		goto fail;
	}
	/* Basic answers a Basic challenge: a username with a password, or
	   an ACR refresh token under its (null GUID) username. */
	if (a->creds.secret && a->creds.username && *a->creds.username &&
	    (a->creds.kind == AUTH_CRED_BASIC || a->creds.kind == AUTH_CRED_REFRESH_TOKEN)) {
		rc = auth_basic_header(a->creds.username, a->creds.secret, &basic);
		if (rc == -ENOMEM)
			goto fail;
		if (rc) {
			log_warn("username '%s' contains ':', which RFC 7617 (Basic) cannot "
				 "carry",
				 a->creds.username);
		} else {
			size_t n = strlen(AUTHZ) + strlen(basic) + 1;

			a->basic = malloc(n);
			if (!a->basic) {
				rc = -ENOMEM;
				goto fail;
			}
			snprintf(a->basic, n, "%s%s", AUTHZ, basic);
		}
	}
	/* The AAD token goes to the registry itself, over https (loopback: tests). */
	if (!registry_url) {
		a->no_exchange = "no registry origin";
	} else if (!url_is_https(registry_url) && !url_is_loopback(registry_url)) {
		a->no_exchange = "the registry is not https; an Azure AD token is sent only over "
				 "https";
	} else {
		rc = auth_form_exchange_url(registry_url, &a->exchange_url);
		if (rc == -ENOMEM)
			goto fail;
		if (rc)
			a->no_exchange = "no exchange URL for the registry";
	}
	rc = auth_tokens_new(&a->tokens);
	if (!rc)
		rc = auth_tokens_new(&a->refresh);
	if (rc)
		goto fail;
	auth_secret_free(basic);
	*out = a;
	return 0;
fail:
	auth_secret_free(basic);
	authn_free(a);
	return rc;
}

void authn_free(struct authn *a)
{
	if (!a)
		return;
	auth_tokens_free(a->tokens);
	auth_tokens_free(a->refresh);
	auth_secret_free(a->basic);
	free(a->creds.username);
	auth_secret_free(a->creds.secret);
	free(a->creds.tenant);
	free(a->creds.source);
	free(a->realm);
	free(a->service);
	free(a->exchange_url);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

bool authn_anonymous(const struct authn *a)
{
	return a->creds.kind == AUTH_CRED_NONE;
}

void authn_describe(const struct authn *a, struct buf *out)
{
	const struct auth_creds *c = &a->creds;

	switch (c->kind) {
	case AUTH_CRED_NONE:
		buf_addf(out, "anonymous access");
		break;
	case AUTH_CRED_BASIC:
		buf_addf(out, "user '%.200s' (from %s)", nz(c->username), c->source);
		break;
	case AUTH_CRED_REFRESH_TOKEN:
		if (c->username && *c->username)
			buf_addf(out, "user '%.200s' (refresh token from %s)", c->username,
				 c->source);
		else
			buf_addf(out, "refresh token (from %s)", c->source);
		break;
	case AUTH_CRED_REGISTRY_TOKEN:
		buf_addf(out, "registry token (from %s)", c->source);
		break;
	case AUTH_CRED_AAD_TOKEN:
		buf_addf(out, "Azure AD token (from %s%s%.100s)", c->source,
			 c->tenant ? ", tenant " : "", c->tenant ? c->tenant : "");
		break;
	}
}

/* Copy the last challenge out. 0 or -ENOMEM. */
static int snapshot(struct authn *a, enum auth_scheme *scheme, char **realm, char **service)
{
	int rc;

	pthread_mutex_lock(&a->mu);
	*scheme = a->scheme;
	rc = auth_strdup(a->realm, realm);
	if (!rc)
		rc = auth_strdup(a->service, service);
	pthread_mutex_unlock(&a->mu);
	if (rc) {
		free(*realm);
		*realm = NULL;
	}
	return rc;
}

/* Remember the challenge for proactive authentication. 0 or -ENOMEM. */
static int record(struct authn *a, const struct auth_challenge *ch)
{
	char *realm = NULL, *service = NULL;
	bool changed;
	int rc;

	rc = auth_strdup(ch->realm, &realm);
	if (!rc)
		rc = auth_strdup(ch->service, &service);
	if (rc) {
		free(realm);
		return rc;
	}
	pthread_mutex_lock(&a->mu);
	changed = a->scheme != ch->scheme || strcmp(nz(a->realm), nz(realm)) ||
		  strcmp(nz(a->service), nz(service));
	a->scheme = ch->scheme;
	free(a->realm);
	free(a->service);
	a->realm = realm;
	a->service = service;
	pthread_mutex_unlock(&a->mu);
	if (changed)
		log_debug("registry challenge: realm=\"%s\" service=\"%s\" (%s)", nz(ch->realm),
			  nz(ch->service), ch->scheme == AUTH_SCHEME_BEARER ? "bearer" : "basic");
	return 0;
}

/* "Authorization: Bearer <tok>" into *out (a secret). 0 or -ENOMEM. */
static int bearer_line(const char *tok, char **out)
{
	size_t n = strlen(AUTHZ_BEARER) + strlen(tok) + 1;

	*out = malloc(n);
	if (!*out)
		return -ENOMEM;
	snprintf(*out, n, "%s%s", AUTHZ_BEARER, tok);
	return 0;
}

/*
 * The OAuth2 / registry error code of a token service's error body, if it
 * is a short plain word (anything else could be an echo of a secret).
 */
static void error_code(const struct buf *body, char *code, size_t n)
{
	cJSON *o = cJSON_ParseWithLength(body->data ? body->data : "", body->len);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");

	code[0] = '\0';
	if (!cJSON_IsString(e)) {
		const cJSON *errs = cJSON_GetObjectItemCaseSensitive(o, "errors");

		e = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(errs, 0), "code");
	}
	if (cJSON_IsString(e) && strlen(e->valuestring) < n &&
	    strspn(e->valuestring, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_.-") == strlen(e->valuestring))
		snprintf(code, n, "%s", e->valuestring);
	auth_json_free_secret(o);
}

/* Report a token failure once: into why if given, else the log. */
static void report(struct authn *a, struct buf *why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct authn *a, struct buf *why, const char *fmt, ...)
{
	struct buf m = BUF_INIT;
	va_list ap;

	buf_adds(&m, "authentication failed for ");
	authn_describe(a, &m);
	buf_adds(&m, ": ");
	va_start(ap, fmt);
	buf_vaddf(&m, fmt, ap);
	va_end(ap);
	if (why) {
		buf_reset(why);
		buf_adds(why, buf_cstr(&m));
	} else {
		log_error("%s", buf_cstr(&m));
	}
	buf_release(&m);
}

/*
 * One request to the token service. `shown` is the URL for messages (no
 * query). 0 with the 200 reply in *body (a secret: buf_release_secret), or
 * -errno after reporting: -EACCES (400/401/403: the credentials were
 * refused), -EIO (other status), or the transport error.
 */
static int token_http(struct authn *a, const char *method, const char *url, const char *shown,
		      const char *authz, const char *form, struct buf *body, struct buf *why)
{
	const char *hdrs[4];
	struct http_req req = {0};
	struct http_resp resp = HTTP_RESP_INIT;
	char code[65];
	size_t n = 0;
	int rc;

	hdrs[n++] = "Accept: application/json";
	if (form)
		hdrs[n++] = "Content-Type: application/x-www-form-urlencoded";
	if (authz)
		hdrs[n++] = authz;
	hdrs[n] = NULL;
	req.method = method;
	req.url = url;
	req.headers = hdrs;
	req.body = form;
	req.body_len = form ? strlen(form) : 0;
	req.max_body = TOKEN_REPLY_MAX;
	rc = http_do(a->http, &req, &resp);
	if (rc == -EFBIG) {
		report(a, why, "the token service %s answered more than %u bytes", shown,
		       TOKEN_REPLY_MAX);
		rc = -EIO;
	} else if (rc) {
		report(a, why, "cannot reach the token service %s: %s", shown, http_strerror());
	} else if (resp.status != 200) {
		error_code(&resp.body, code, sizeof(code));
		report(a, why, "HTTP %ld from %s%s%s%s", resp.status, shown, code[0] ? " (" : "",
		       code, code[0] ? ")" : "");
		rc = resp.status == 400 || resp.status == 401 || resp.status == 403 ? -EACCES
										    : -EIO;
	} else {
		*body = resp.body;
		resp.body = (struct buf)BUF_INIT;
	}
	buf_release_secret(&resp.body);
	http_resp_release(&resp);
	return rc;
}

/*
 * AAD: the ACR refresh token for (the registry's exchange URL, service),
 * from the cache or exchanged now. *fresh tells which. 0 or -errno
 * (reported).
 */
static int aad_refresh(struct authn *a, const char *service, char **rt, bool *fresh,
		       struct buf *why)
{
	struct buf body = BUF_INIT;
	const char *url = a->exchange_url;
	char *form = NULL;
	int64_t exp_s = -1, exp_ms;
	int rc;

	*rt = NULL;
	*fresh = false;
	if (!url) {
		report(a, why, "no Azure AD exchange: %s", a->no_exchange);
		return -EACCES;
	}
	rc = auth_tokens_get_or_claim(a->refresh, url, service, "", rt);
	if (rc != -ENOENT)
		goto out;
	rc = auth_form_exchange_body(service, a->creds.tenant, a->creds.secret, &form);
	if (!rc)
		rc = token_http(a, "POST", url, url, NULL, form, &body, why);
	if (!rc) {
		rc = auth_exchange_reply_parse(body.data ? body.data : "", body.len, rt);
		if (rc)
			report(a, why, "%s answered without a refresh_token", url);
	}
	if (rc) {
		auth_tokens_abandon(a->refresh, url, service, "");
		goto out;
	}
	*fresh = true;
	if (auth_jwt_times(*rt, &exp_s, NULL) == 0 && exp_s > 0)
		exp_ms = exp_s * 1000;
	else
		exp_ms = auth_now_ms() + REFRESH_DEFAULT_LIFETIME_MS;
	if (auth_tokens_put(a->refresh, url, service, "", *rt, exp_ms))
		auth_tokens_abandon(a->refresh, url, service, "");
	log_debug("exchanged the Azure AD token for an ACR refresh token at %s", url);
out:
	auth_secret_free(form);
	buf_release_secret(&body);
	return rc;
}

/* POST <realm> grant_type=refresh_token with `rt`. */
static int refresh_post(struct authn *a, const char *realm, const char *service, const char *scope,
			const char *rt, struct buf *body, struct buf *why)
{
	char *form = NULL;
	int rc;

	rc = auth_form_refresh_body(service, *scope ? scope : NULL, rt, &form);
	if (!rc)
		rc = token_http(a, "POST", realm, realm, NULL, form, body, why);
	auth_secret_free(form);
	return rc;
}

/* Ask the token service for a token for exactly `scope` ("" for none). */
static int fetch_token(struct authn *a, const char *realm, const char *service, const char *scope,
		       struct auth_token_reply *rep, struct buf *why)
{
	struct buf body = BUF_INIT;
	char *url = NULL, *rt = NULL;
	bool fresh;
	int rc;

	switch (a->creds.kind) {
	case AUTH_CRED_REFRESH_TOKEN:
		rc = refresh_post(a, realm, service, scope, a->creds.secret, &body, why);
		break;
	case AUTH_CRED_AAD_TOKEN:
		rc = aad_refresh(a, service, &rt, &fresh, why);
		if (rc)
			break;
		rc = refresh_post(a, realm, service, scope, rt, &body, why);
		if (rc == -EACCES && !fresh) {
			/* The cached refresh token may have expired: exchange anew, once. */
			auth_tokens_invalidate(a->refresh, a->exchange_url, service, "");
			auth_secret_free(rt);
			rc = aad_refresh(a, service, &rt, &fresh, why);
			if (!rc)
				rc = refresh_post(a, realm, service, scope, rt, &body, why);
		}
		break;
	default:
		rc = auth_form_token_url(realm, service, *scope ? scope : NULL, &url);
		if (rc) {
			report(a, why, "unusable token realm \"%s\"", realm);
			break;
		}
		rc = token_http(a, "GET", url, realm,
				a->creds.kind == AUTH_CRED_BASIC ? a->basic : NULL, NULL, &body,
				why);
		break;
	}
	if (!rc) {
		rc = auth_token_reply_parse(body.data ? body.data : "", body.len, auth_now_ms(),
					    rep);
		if (rc == -EINVAL) {
			report(a, why, "%s answered something that is not a token", realm);
			rc = -EIO;
		}
	}
	if (!rc)
		log_debug("token for \"%s\" from %s (valid %lld s)", scope, realm,
			  (long long)(rep->lifetime_ms / 1000));
	auth_secret_free(rt);
	free(url);
	buf_release_secret(&body);
	return rc;
}

/* A token for (realm, service, scope): cached, or fetched single-flight. */
static int get_token(struct authn *a, const char *realm, const char *service, const char *scope,
		     char **tok, struct buf *why)
{
	struct auth_token_reply rep = {0};
	int rc;

	rc = auth_tokens_get_or_claim(a->tokens, realm, service, scope, tok);
	if (rc != -ENOENT)
		return rc;
	rc = fetch_token(a, realm, service, scope, &rep, why);
	if (rc) {
		auth_tokens_abandon(a->tokens, realm, service, scope);
		return rc;
	}
	if (auth_tokens_put(a->tokens, realm, service, scope, rep.token, rep.expires_at_ms))
		auth_tokens_abandon(a->tokens, realm, service, scope);
	*tok = rep.token;
	rep.token = NULL;
	auth_token_reply_clear(&rep);
	return 0;
}

/* The Bearer line for a scope under the given challenge. */
static int bearer_for(struct authn *a, const char *realm, const char *service, const char *scope,
		      char **hdr, struct buf *why)
{
	char *tok = NULL;
	int rc;

	if (a->creds.kind == AUTH_CRED_REGISTRY_TOKEN)
		return bearer_line(a->creds.secret, hdr);
	rc = get_token(a, realm, service, scope, &tok, why);
	if (!rc)
		rc = bearer_line(tok, hdr);
	auth_secret_free(tok);
	return rc;
}

int authn_prepare(struct authn *a, const char *scope, char **hdr_out, struct buf *why)
{
	enum auth_scheme scheme;
	char *realm = NULL, *service = NULL;
	int rc;

	*hdr_out = NULL;
	rc = snapshot(a, &scheme, &realm, &service);
	if (rc)
		return rc;
	if (scheme == AUTH_SCHEME_BASIC && a->basic)
		rc = auth_strdup(a->basic, hdr_out);
	else if (scheme == AUTH_SCHEME_BEARER && realm)
		rc = bearer_for(a, realm, service, nz(scope), hdr_out, why);
	free(realm);
	free(service);
	return rc;
}

int authn_challenged(struct authn *a, const char *scope, const char *www_auth, const char *sent,
		     char **hdr_out, struct buf *why)
{
	struct auth_challenge *list = NULL;
	const struct auth_challenge *ch;
	bool sent_bearer = sent && strncmp(sent, AUTHZ_BEARER, strlen(AUTHZ_BEARER)) == 0;
	bool sent_basic = sent && strncmp(sent, AUTHZ_BASIC, strlen(AUTHZ_BASIC)) == 0;
	const char *want;
	int rc;

	*hdr_out = NULL;
	rc = auth_challenge_parse(www_auth, &list);
	if (rc) {
		if (rc != -ENOMEM)
			log_warn("unusable WWW-Authenticate challenge: %.200s", www_auth);
		return rc == -ENOMEM ? rc : 0;
	}
	ch = auth_challenge_pick(list);
	if (!ch || (ch->scheme == AUTH_SCHEME_BEARER && (!ch->realm || !*ch->realm))) {
		log_warn("no Bearer or Basic challenge with a realm in: %.200s", www_auth);
		goto out;
	}
	rc = record(a, ch);
	if (rc)
		goto out;
	want = scope && *scope ? scope : nz(ch->scope);
	if (ch->scheme == AUTH_SCHEME_BASIC) {
		/* Credentials we sent and were refused are final. */
		if (a->basic && !sent_basic)
			rc = auth_strdup(a->basic, hdr_out);
		goto out;
	}
	if (a->creds.kind == AUTH_CRED_REGISTRY_TOKEN) {
		if (!sent_bearer)
			rc = bearer_line(a->creds.secret, hdr_out);
		goto out;
	}
	if (sent_bearer) {
		if (ch->error && strcasecmp(ch->error, "insufficient_scope") == 0)
			goto out; /* the identity may not: EACCES */
		auth_tokens_invalidate(a->tokens, ch->realm, ch->service, want);
		log_debug("the registry refused the token for \"%s\" (%s); fetching a new one",
			  want, ch->error ? ch->error : "no reason given");
	}
	rc = bearer_for(a, ch->realm, ch->service, want, hdr_out, why);
out:
	auth_challenge_free(list);
	return rc;
}
