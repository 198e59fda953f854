/*
 * Design: the cache is a small array of entries (at most MAX_ENTRIES; on
 * overflow expired entries go first, then the one expiring soonest), each
 * keyed by (realm, service, scope) with NULL service/scope stored as "".
 * `lock` guards entries[], nentries, claims and the clock pointer; `cond`
 * (on CLOCK_MONOTONIC) wakes threads waiting for a claimed fetch. Tokens
 * are wiped when replaced, evicted, invalidated and on free.
 *
 * The usable-until time is computed once at put time from the lifetime the
 * token had when it was stored (see the expiry rule in token.h).
 */
#include "auth/token.h"

#include "auth/challenge.h"
#include "auth/util.h"
#include "common/base64.h"
#include "common/log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ENTRIES 512

struct entry {
	char *realm;
	char *service;
	char *scope;
	char *token;
	int64_t stored_ms;
	int64_t expires_ms;
	int64_t usable_until_ms;
};

struct claim {
	char *realm;
	char *service;
	char *scope;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	struct claim *next;
};

struct auth_tokens {
	/* lock order: leaf (log's secret lock may be taken inside) */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct entry entries[MAX_ENTRIES];
	size_t nentries;
	struct claim *claims;
	auth_clock_fn now;
	void *now_ctx;
};

static int64_t default_clock(void *ctx)
{
	(void)ctx;
	return auth_now_ms();
}

int auth_tokens_new(struct auth_tokens **out)
{
	struct auth_tokens *c;
	pthread_condattr_t ca;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (pthread_mutex_init(&c->lock, NULL)) {
		free(c);
		return -ENOMEM;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&c->cond, &ca)) {
		pthread_condattr_destroy(&ca);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return -ENOMEM;
	}
	pthread_condattr_destroy(&ca);
	c->now = default_clock;
	*out = c;
	return 0;
}

static void entry_clear(struct entry *e)
{
	free(e->realm);
	free(e->service);
	free(e->scope);
	auth_secret_free(e->token);
	memset(e, 0, sizeof(*e));
}

static void claim_free(struct claim *cl)
{
	free(cl->realm);
	free(cl->service);
	free(cl->scope);
	free(cl);
}

void auth_tokens_free(struct auth_tokens *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nentries; i++)
		entry_clear(&c->entries[i]);
	while (c->claims) {
		struct claim *n = c->claims->next;

		claim_free(c->claims);
		c->claims = n;
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void auth_tokens_set_clock(struct auth_tokens *c, auth_clock_fn now, void *ctx)
{
	pthread_mutex_lock(&c->lock);
	c->now = now ? now : default_clock;
	c->now_ctx = now ? ctx : NULL;
	pthread_mutex_unlock(&c->lock);
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

static bool key_eq(const char *r1, const char *s1, const char *sc1,
		   const char *r2, const char *s2, const char *sc2)
{
	return strcmp(r1, nz(r2)) == 0 && strcmp(s1, nz(s2)) == 0 &&
	       strcmp(sc1, nz(sc2)) == 0;
}

static int64_t margin_ms(int64_t lifetime)
{
	int64_t m = lifetime / 5;

	if (m > AUTH_TOKEN_MARGIN_MAX_MS)
		m = AUTH_TOKEN_MARGIN_MAX_MS;
	if (m < AUTH_TOKEN_MARGIN_MIN_MS)
		m = AUTH_TOKEN_MARGIN_MIN_MS;
	return m;
}

/* Under lock: the valid token for the key, or NULL. */
static const char *lookup_locked(struct auth_tokens *c, const char *realm,
				 const char *service, const char *scope)
{
	int64_t now = c->now(c->now_ctx);
	size_t i;

	for (i = 0; i < c->nentries; i++) {
		struct entry *e = &c->entries[i];

		if (key_eq(e->realm, e->service, e->scope, realm, service,
			   scope) &&
		    now < e->usable_until_ms)
			return e->token;
	}
	if (!scope || !*scope)
		return NULL;
	for (i = 0; i < c->nentries; i++) {
		struct entry *e = &c->entries[i];

		if (strcmp(e->realm, realm) == 0 &&
		    strcmp(e->service, nz(service)) == 0 &&
		    now < e->usable_until_ms && *e->scope &&
		    auth_scope_covers(e->scope, scope))
			return e->token;
	}
	return NULL;
}

static int copy_out(const char *tok, char **token_out)
{
	*token_out = strdup(tok);
	return *token_out ? 0 : -ENOMEM;
}

int auth_tokens_get(struct auth_tokens *c, const char *realm,
		    const char *service, const char *scope, char **token_out)
{
	const char *tok;
	int rc = -ENOENT;

	*token_out = NULL;
	if (!c || !realm)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	tok = lookup_locked(c, realm, service, scope);
	if (tok)
		rc = copy_out(tok, token_out);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static struct claim **find_claim(struct auth_tokens *c, const char *realm,
				 const char *service, const char *scope)
{
	struct claim **p;

	for (p = &c->claims; *p; p = &(*p)->next)
		if (key_eq((*p)->realm, (*p)->service, (*p)->scope, realm,
			   service, scope))
			return p;
	return NULL;
}

static void claim_deadline(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += AUTH_TOKEN_CLAIM_WAIT_MS / 1000;
}

static bool ts_passed(const struct timespec *ts)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > ts->tv_sec ||
	       (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

int auth_tokens_get_or_claim(struct auth_tokens *c, const char *realm,
			     const char *service, const char *scope,
			     char **token_out)
{
	int rc;

	*token_out = NULL;
	if (!c || !realm)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		const char *tok = lookup_locked(c, realm, service, scope);
		struct claim **p, *cl;

		if (tok) {
			rc = copy_out(tok, token_out);
			break;
		}
		p = find_claim(c, realm, service, scope);
		if (p && !ts_passed(&(*p)->deadline)) {
			struct timespec dl = (*p)->deadline;

			pthread_cond_timedwait(&c->cond, &c->lock, &dl);
			continue;
		}
		if (p) {
			/* The fetcher is stuck or gone: take its claim over. */
			claim_deadline(&(*p)->deadline);
			rc = -ENOENT;
			break;
		}
		cl = calloc(1, sizeof(*cl));
		if (!cl || !(cl->realm = strdup(realm)) ||
		    !(cl->service = strdup(nz(service))) ||
		    !(cl->scope = strdup(nz(scope)))) {
			if (cl)
				claim_free(cl);
			rc = -ENOMEM;
			break;
		}
		claim_deadline(&cl->deadline);
		cl->next = c->claims;
		c->claims = cl;
		rc = -ENOENT;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Under lock: drop the claim for the key, if any, and wake waiters. */
static void release_claim_locked(struct auth_tokens *c, const char *realm,
				 const char *service, const char *scope)
{
	struct claim **p = find_claim(c, realm, service, scope);

	if (p) {
		struct claim *cl = *p;

		*p = cl->next;
		claim_free(cl);
	}
	pthread_cond_broadcast(&c->cond);
}

void auth_tokens_abandon(struct auth_tokens *c, const char *realm,
			 const char *service, const char *scope)
{
	if (!c || !realm)
		return;
	pthread_mutex_lock(&c->lock);
	release_claim_locked(c, realm, service, scope);
	pthread_mutex_unlock(&c->lock);
}

static void remove_at(struct auth_tokens *c, size_t i)
{
	entry_clear(&c->entries[i]);
	c->entries[i] = c->entries[c->nentries - 1];
	memset(&c->entries[c->nentries - 1], 0, sizeof(c->entries[0]));
	c->nentries--;
}

/* Under lock: make room for one entry. */
static void evict_locked(struct auth_tokens *c, int64_t now)
{
	size_t i, victim = 0;

	for (i = c->nentries; i-- > 0;)
		if (now >= c->entries[i].usable_until_ms)
			remove_at(c, i);
	if (c->nentries < MAX_ENTRIES)
		return;
	for (i = 1; i < c->nentries; i++)
		if (c->entries[i].usable_until_ms <
		    c->entries[victim].usable_until_ms)
			victim = i;
	remove_at(c, victim);
}

int auth_tokens_put(struct auth_tokens *c, const char *realm,
		    const char *service, const char *scope, const char *token,
		    int64_t expires_at_ms)
{
	struct entry ne = { 0 };
	int64_t now, life;
	size_t i;
	int rc = 0;

	if (!c || !realm || !token || !*token)
		return -EINVAL;
	log_secret(token);
	pthread_mutex_lock(&c->lock);
	now = c->now(c->now_ctx);
	life = expires_at_ms - now;
	if (life <= AUTH_TOKEN_MARGIN_MIN_MS) {
		/* Never usable: don't cache; a caller still has its copy. */
		goto out;
	}
	ne.realm = strdup(realm);
	ne.service = strdup(nz(service));
	ne.scope = strdup(nz(scope));
	ne.token = strdup(token);
	if (!ne.realm || !ne.service || !ne.scope || !ne.token) {
		entry_clear(&ne);
		rc = -ENOMEM;
		goto out;
	}
	ne.stored_ms = now;
	ne.expires_ms = expires_at_ms;
	ne.usable_until_ms = expires_at_ms - margin_ms(life);
	for (i = 0; i < c->nentries; i++)
		if (key_eq(c->entries[i].realm, c->entries[i].service,
			   c->entries[i].scope, realm, service, scope))
			break;
	if (i < c->nentries) {
		entry_clear(&c->entries[i]);
	} else {
		if (c->nentries == MAX_ENTRIES)
			evict_locked(c, now);
		i = c->nentries++;
	}
	c->entries[i] = ne;
out:
	release_claim_locked(c, realm, service, scope);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int auth_tokens_invalidate(struct auth_tokens *c, const char *realm,
			   const char *service, const char *scope)
{
	int n = 0;
	size_t i;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	for (i = c->nentries; i-- > 0;) {
		struct entry *e = &c->entries[i];
		bool hit;

		if (!realm)
			hit = true;
		else if (strcmp(e->realm, realm) || strcmp(e->service, nz(service)))
			hit = false;
		else if (!scope)
			hit = true;
		else
			hit = strcmp(e->scope, scope) == 0 ||
			      (*scope && *e->scope &&
			       auth_scope_covers(e->scope, scope));
		if (hit) {
			remove_at(c, i);
			n++;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

size_t auth_tokens_count(struct auth_tokens *c)
{
	size_t n;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	n = c->nentries;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* ---- reply parsing ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01. */
	y -= m <= 2;
	{
		const int64_t era = (y >= 0 ? y : y - 399) / 400;
		const unsigned yoe = (unsigned)(y - era * 400);
		const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
		const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

		return era * 146097 + (int64_t)doe - 719468;
	}
}

static bool digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

int auth_parse_rfc3339(const char *s, int64_t *ms_out)
{
	int Y, M, D, h, mi, sec, ms = 0, oh, om, sign;
	const char *p;
	int64_t t;

	if (!s || strnlen(s, 20) < 20)
		return -EINVAL;
	if (!digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) ||
	    s[7] != '-' || !digits(s + 8, 2, &D) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
	    s[16] != ':' || !digits(s + 17, 2, &sec))
		return -EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		int scale = 100;

		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			ms += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	t = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 +
	    mi * 60 + sec;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		if (!digits(p + 1, 2, &oh) || p[3] != ':' ||
		    !digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		t -= sign * (oh * 3600 + om * 60);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	*ms_out = t * 1000 + ms;
	return 0;
}

static bool num_claim(const cJSON *o, const char *k, int64_t *v)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
	    it->valuedouble > 1e15)
		return false;
	*v = (int64_t)it->valuedouble;
	return true;
}

int auth_jwt_times(const char *jwt, int64_t *exp_s, int64_t *iat_s)
{
	const char *d1, *d2;
	char *payload = NULL;
	size_t plen;
	cJSON *o = NULL;
	int64_t exp = -1, iat = -1;
	int rc;

	if (exp_s)
		*exp_s = -1;
	if (iat_s)
		*iat_s = -1;
	if (!jwt)
		return -EINVAL;
	d1 = strchr(jwt, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d1 || !d2 || d1 == jwt || d2 == d1 + 1)
		return -EINVAL;
	rc = base64_decode(d1 + 1, (size_t)(d2 - d1 - 1), &payload, &plen);
	if (rc)
		return rc;
	o = cJSON_ParseWithLength(payload, plen);
	if (!cJSON_IsObject(o) || !num_claim(o, "exp", &exp)) {
		rc = -EINVAL;
		goto out;
	}
	num_claim(o, "iat", &iat);
	if (exp_s)
		*exp_s = exp;
	if (iat_s)
		*iat_s = iat;
	rc = 0;
out:
	cJSON_Delete(o);
	free(payload);
	return rc;
}

static int64_t clamp_base(int64_t t, int64_t now)
{
	if (t > now)
		return now;
	if (t < now - 60000)
		return now - 60000;
	return t;
}

static int dup_secret(const cJSON *it, char **out)
{
	*out = NULL;
	if (!cJSON_IsString(it) || !it->valuestring || !*it->valuestring)
		return 0;
	*out = strdup(it->valuestring);
	if (!*out)
		return -ENOMEM;
	log_secret(*out);
	return 0;
}

void auth_token_reply_clear(struct auth_token_reply *r)
{
	if (!r)
		return;
	auth_secret_free(r->token);
	auth_secret_free(r->refresh_token);
	memset(r, 0, sizeof(*r));
}

int auth_token_reply_parse(const char *json, size_t len, int64_t now_ms,
			   struct auth_token_reply *out)
{
	const cJSON *it;
	cJSON *o = NULL;
	int64_t exp_at = INT64_MAX, exp_s, iat_s, t;
	bool known = false;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json)
		return -EINVAL;
	o = cJSON_ParseWithLength(json, len);
	if (!cJSON_IsObject(o)) {
		rc = -EINVAL;
		goto fail;
	}
	rc = dup_secret(cJSON_GetObjectItemCaseSensitive(o, "access_token"),
			&out->token);
	if (!rc && !out->token)
		rc = dup_secret(cJSON_GetObjectItemCaseSensitive(o, "token"),
				&out->token);
	if (!rc)
		rc = dup_secret(cJSON_GetObjectItemCaseSensitive(o, "refresh_token"),
				&out->refresh_token);
	if (rc)
		goto fail;
	if (!out->token) {
		rc = -EINVAL;
		goto fail;
	}
	it = cJSON_GetObjectItemCaseSensitive(o, "expires_in");
	if (cJSON_IsNumber(it) && it->valuedouble > 0 && it->valuedouble < 1e9) {
		int64_t secs = (int64_t)it->valuedouble;
		int64_t base = now_ms;
		const cJSON *ia = cJSON_GetObjectItemCaseSensitive(o, "issued_at");

		if (secs < AUTH_TOKEN_MIN_EXPIRES_IN_S)
			secs = AUTH_TOKEN_MIN_EXPIRES_IN_S;
		if (cJSON_IsString(ia) &&
		    auth_parse_rfc3339(ia->valuestring, &t) == 0)
			base = clamp_base(t, now_ms);
		exp_at = base + secs * 1000;
		known = true;
	}
	if (auth_jwt_times(out->token, &exp_s, &iat_s) == 0) {
		if (iat_s >= 0 && exp_s >= iat_s)
			t = clamp_base(iat_s * 1000, now_ms) +
			    (exp_s - iat_s) * 1000;
		else
			t = exp_s * 1000;
		if (t < exp_at)
			exp_at = t;
		known = true;
	}
	if (!known)
		exp_at = now_ms + AUTH_TOKEN_DEFAULT_LIFETIME_MS;
	out->expires_at_ms = exp_at;
	out->lifetime_ms = exp_at - now_ms;
	auth_json_free_secret(o);
	return 0;
fail:
	auth_json_free_secret(o);
	auth_token_reply_clear(out);
	return rc;
}
