#include "auth/form.h"

#include "auth/util.h"
#include "common/base64.h"
#include "common/buf.h"
#include "common/log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static int add_enc(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	int rc = 0;

	for (i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c)) {
			rc = buf_addch(b, (char)c);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			rc = buf_add(b, e, 3);
		}
	}
	return rc;
}

/* Append "&key=<encoded value>" (no '&' when the buffer is empty). */
static int add_param(struct buf *b, const char *key, const char *val)
{
	int rc = 0;

	if (b->len)
		rc = buf_addch(b, '&');
	if (!rc)
		rc = buf_adds(b, key);
	if (!rc)
		rc = buf_addch(b, '=');
	if (!rc)
		rc = add_enc(b, val, strlen(val));
	return rc;
}

/* Finish a body that may hold a secret: detach or wipe. */
static int finish(struct buf *b, int rc, char **out, bool secret)
{
	if (!rc) {
		*out = buf_detach(b, NULL);
		if (*out)
			return 0;
		rc = -ENOMEM;
	}
	if (secret)
		buf_release_secret(b);
	else
		buf_release(b);
	return rc;
}

int auth_form_encode(const char *s, char **out)
{
	struct buf b = BUF_INIT;

	*out = NULL;
	if (!s)
		return -EINVAL;
	return finish(&b, buf_grow(&b, 0) ?: add_enc(&b, s, strlen(s)), out,
		      false);
}

/* Check "http(s)://authority…" and return the length of scheme://authority. */
static int realm_origin(const char *realm, size_t *n)
{
	const char *p;
	size_t alen;

	if (!realm)
		return -EINVAL;
	if (strncasecmp(realm, "https://", 8) == 0)
		p = realm + 8;
	else if (strncasecmp(realm, "http://", 7) == 0)
		p = realm + 7;
	else
		return -EINVAL;
	alen = strcspn(p, "/?#");
	if (!alen || memchr(p, '@', alen) || strpbrk(realm, " \t\r\n"))
		return -EINVAL;
	*n = (size_t)(p - realm) + alen;
	return 0;
}

int auth_form_token_url(const char *realm, const char *service,
			const char *scope, char **out)
{
	struct buf b = BUF_INIT;
	size_t n;
	bool first;
	int rc;

	*out = NULL;
	rc = realm_origin(realm, &n);
	if (rc)
		return rc;
	if (strchr(realm, '#'))
		return -EINVAL;
	rc = buf_adds(&b, realm);
	first = !strchr(realm, '?');
	if (!rc && service) {
		rc = buf_adds(&b, first ? "?service=" : "&service=");
		first = false;
		if (!rc)
			rc = add_enc(&b, service, strlen(service));
	}
	while (!rc && scope && *scope) {
		size_t len;

		scope += strspn(scope, " ");
		len = strcspn(scope, " ");
		if (!len)
			break;
		rc = buf_adds(&b, first ? "?scope=" : "&scope=");
		first = false;
		if (!rc)
			rc = add_enc(&b, scope, len);
		scope += len;
	}
	return finish(&b, rc, out, false);
}

/* Collapse runs of spaces in a scope list for the single POST parameter. */
static int add_scope_param(struct buf *b, const char *scope)
{
	struct buf s = BUF_INIT;
	int rc = 0;

	while (!rc && *scope) {
		size_t len;

		scope += strspn(scope, " ");
		len = strcspn(scope, " ");
		if (!len)
			break;
		if (s.len)
			rc = buf_addch(&s, ' ');
		if (!rc)
			rc = buf_add(&s, scope, len);
		scope += len;
	}
	if (!rc && s.len)
		rc = add_param(b, "scope", buf_cstr(&s));
	buf_release(&s);
	return rc;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

static int common_params(struct buf *b, const char *grant,
			 const char *service, const char *scope)
{
	int rc = add_param(b, "grant_type", grant);

	if (!rc)
		rc = add_param(b, "client_id", AUTH_FORM_CLIENT_ID);
	if (!rc && service)
		rc = add_param(b, "service", service);
	if (!rc && scope)
		rc = add_scope_param(b, scope);
	return rc;
}

int auth_form_refresh_body(const char *service, const char *scope,
			   const char *refresh_token, char **out)
{
	struct buf b = BUF_INIT;
	int rc;

	*out = NULL;
	if (!refresh_token || !*refresh_token)
		return -EINVAL;
	log_secret(refresh_token);
	/* Size it once: a realloc would leave a copy of the secret behind. */
	rc = buf_grow(&b, 3 * (strlen(refresh_token) + slen(service) +
			       slen(scope)) + 128);
	if (!rc)
		rc = common_params(&b, "refresh_token", service, scope);
	if (!rc)
		rc = add_param(&b, "refresh_token", refresh_token);
	return finish(&b, rc, out, true);
}

int auth_form_password_body(const char *service, const char *scope,
			    const char *username, const char *password,
			    char **out)
{
	struct buf b = BUF_INIT;
	int rc;

	*out = NULL;
	if (!username || !password)
		return -EINVAL;
	log_secret(password);
	rc = buf_grow(&b, 3 * (strlen(password) + strlen(username) +
			       slen(service) + slen(scope)) + 128);
	if (!rc)
		rc = common_params(&b, "password", service, scope);
	if (!rc)
		rc = add_param(&b, "username", username);
	if (!rc)
		rc = add_param(&b, "password", password);
	return finish(&b, rc, out, true);
}

int auth_form_exchange_url(const char *realm, char **out)
{
	struct buf b = BUF_INIT;
	size_t n;
	int rc;

	*out = NULL;
	rc = realm_origin(realm, &n);
	if (rc)
		return rc;
	rc = buf_add(&b, realm, n);
	if (!rc)
		rc = buf_adds(&b, "/oauth2/exchange");
	return finish(&b, rc, out, false);
}

int auth_form_exchange_body(const char *service, const char *tenant,
			    const char *aad_token, char **out)
{
	struct buf b = BUF_INIT;
	int rc;

	*out = NULL;
	if (!service || !aad_token || !*aad_token)
		return -EINVAL;
	log_secret(aad_token);
	rc = buf_grow(&b, 3 * (strlen(aad_token) + strlen(service) +
			       slen(tenant)) + 128);
	if (!rc)
		rc = add_param(&b, "grant_type", "access_token");
	if (!rc)
		rc = add_param(&b, "service", service);
	if (!rc && tenant && *tenant)
		rc = add_param(&b, "tenant", tenant);
	if (!rc)
		rc = add_param(&b, "access_token", aad_token);
	return finish(&b, rc, out, true);
}

int auth_exchange_reply_parse(const char *json, size_t len,
			      char **refresh_out)
{
	const cJSON *it;
	cJSON *o;
	int rc = -EINVAL;

	*refresh_out = NULL;
	if (!json)
		return -EINVAL;
	o = cJSON_ParseWithLength(json, len);
	it = cJSON_GetObjectItemCaseSensitive(o, "refresh_token");
	if (cJSON_IsObject(o) && cJSON_IsString(it) && it->valuestring &&
	    *it->valuestring) {
		*refresh_out = strdup(it->valuestring);
		rc = *refresh_out ? 0 : -ENOMEM;
		if (!rc)
			log_secret(*refresh_out);
	}
	auth_json_free_secret(o);
	return rc;
}

int auth_basic_header(const char *user, const char *pass, char **out)
{
	struct buf raw = BUF_INIT, hdr = BUF_INIT;
	char *b64 = NULL;
	int rc;

	*out = NULL;
	if (!user || !pass || strchr(user, ':'))
		return -EINVAL;
	log_secret(pass);
	rc = buf_grow(&raw, strlen(user) + strlen(pass) + 1);
	if (!rc)
		rc = buf_addf(&raw, "%s:%s", user, pass);
	if (!rc)
		rc = base64_encode(raw.data, raw.len, &b64);
	buf_release_secret(&raw);
	if (!rc) {
		log_secret(b64);
		rc = buf_grow(&hdr, strlen(b64) + 6);
	}
	if (!rc)
		rc = buf_addf(&hdr, "Basic %s", b64);
	auth_secret_free(b64);
	return finish(&hdr, rc, out, true);
}
