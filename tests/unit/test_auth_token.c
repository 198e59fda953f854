/* Unit tests for auth/token (cache, expiry, reply parsing) and auth/form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/form.h"
#include "auth/token.h"
#include "auth/util.h"
#include "common/base64.h"
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A settable clock (ms). */
static int64_t fake_now;

static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

/* base64url without padding. */
static char *b64url(const char *s)
{
	char *e = NULL, *p;
	size_t n;

	assert_int_equal(base64_encode(s, strlen(s), &e), 0);
	for (p = e; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	}
	n = strlen(e);
	while (n && e[n - 1] == '=')
		e[--n] = '\0';
	return e;
}

/* An unsigned JWT-shaped token with the given payload JSON. */
static char *make_jwt(const char *payload)
{
	char *h = b64url("{\"alg\":\"ES256\",\"typ\":\"JWT\"}");
	char *p = b64url(payload), *jwt = NULL;

	assert_true(asprintf(&jwt, "%s.%s.c2lnbmF0dXJl", h, p) > 0);
	free(h);
	free(p);
	return jwt;
}

static void test_b64(void **state)
{
	char *e = NULL, *d = NULL;
	size_t n;

	(void)state;
	assert_int_equal(base64_encode("user:pass", 9, &e), 0);
	assert_string_equal(e, "dXNlcjpwYXNz");
	free(e);
	assert_int_equal(base64_encode("ab", 2, &e), 0);
	assert_string_equal(e, "YWI=");
	free(e);
	assert_int_equal(base64_decode("YWI=", 4, &d, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(d, "ab");
	free(d);
	assert_int_equal(base64_decode("YWI", 3, &d, &n), 0);
	assert_string_equal(d, "ab");
	free(d);
	/* url alphabet: 0xfb 0xff -> "-_8" */
	assert_int_equal(base64_decode("-_8", 3, &d, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal((unsigned char)d[0], 0xfb);
	assert_int_equal((unsigned char)d[1], 0xff);
	free(d);
	assert_int_equal(base64_decode("Y", 1, &d, &n), -EINVAL);
	assert_int_equal(base64_decode("YW I", 4, &d, &n), -EINVAL);
	assert_null(d);
}

static void test_jwt_times(void **state)
{
	char *jwt;
	int64_t exp, iat;

	(void)state;
	jwt = make_jwt("{\"iss\":\"x\",\"exp\":1700000300,\"iat\":1700000000}");
	assert_int_equal(auth_jwt_times(jwt, &exp, &iat), 0);
	assert_int_equal(exp, 1700000300);
	assert_int_equal(iat, 1700000000);
	free(jwt);
	/* ACR-like: exp only, fractional seconds tolerated */
	jwt = make_jwt("{\"exp\":1700000123.9}");
	assert_int_equal(auth_jwt_times(jwt, &exp, &iat), 0);
	assert_int_equal(exp, 1700000123);
	assert_int_equal(iat, -1);
	free(jwt);
	jwt = make_jwt("{\"exp\":\"soon\"}");
	assert_int_equal(auth_jwt_times(jwt, &exp, NULL), -EINVAL);
	free(jwt);
	jwt = make_jwt("[1,2]");
	assert_int_equal(auth_jwt_times(jwt, &exp, NULL), -EINVAL);
	free(jwt);
	assert_int_equal(auth_jwt_times("opaque-token", &exp, NULL), -EINVAL);
	assert_int_equal(auth_jwt_times("a..b", &exp, NULL), -EINVAL);
	assert_int_equal(auth_jwt_times("a.!!!.b", &exp, NULL), -EINVAL);
	assert_int_equal(auth_jwt_times(NULL, &exp, NULL), -EINVAL);
	assert_int_equal(exp, -1);
}

static void test_rfc3339(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(auth_parse_rfc3339("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(auth_parse_rfc3339("2023-11-14T22:13:20Z", &t), 0);
	assert_int_equal(t, 1700000000000LL);
	assert_int_equal(auth_parse_rfc3339("2023-11-14T22:13:20.250Z", &t), 0);
	assert_int_equal(t, 1700000000250LL);
	assert_int_equal(
		auth_parse_rfc3339("2023-11-14T23:13:20.123456789+01:00", &t), 0);
	assert_int_equal(t, 1700000000123LL);
	assert_int_equal(auth_parse_rfc3339("2024-02-29T12:00:00-00:30", &t), 0);
	assert_int_equal(t, 1709209800000LL);
	assert_int_equal(auth_parse_rfc3339("2023-11-14 22:13:20", &t), -EINVAL);
	assert_int_equal(auth_parse_rfc3339("2023-13-14T22:13:20Z", &t), -EINVAL);
	assert_int_equal(auth_parse_rfc3339("2023-11-14T22:13:20Zjunk", &t),
			 -EINVAL);
	assert_int_equal(auth_parse_rfc3339("yesterday", &t), -EINVAL);
}

static const int64_t NOW = 1700000000000LL; /* 2023-11-14T22:13:20Z */

static void test_reply_docker_style(void **state)
{
	struct auth_token_reply r;

	(void)state;
	/* access_token preferred over token; issued_at + expires_in */
	{
		const char *j = "{\"token\":\"T1xx\",\"access_token\":\"A1xx\","
				"\"expires_in\":300,"
				"\"issued_at\":\"2023-11-14T22:13:10Z\","
				"\"refresh_token\":\"R1xx\"}";

		/* a length that cuts the JSON makes it invalid */
		assert_int_equal(auth_token_reply_parse(j, strlen(j) - 2, NOW, &r),
				 -EINVAL);
		assert_int_equal(auth_token_reply_parse(j, strlen(j), NOW, &r), 0);
		assert_string_equal(r.token, "A1xx");
		assert_string_equal(r.refresh_token, "R1xx");
		/* issued 10 s before "now" on the server clock */
		assert_int_equal(r.expires_at_ms, NOW - 10000 + 300000);
		assert_int_equal(r.lifetime_ms, 290000);
		auth_token_reply_clear(&r);
		assert_null(r.token);
	}
	{
		/* only "token"; expires_in < 60 raised to 60; no issued_at */
		const char *j = "{\"token\":\"T2xx\",\"expires_in\":10}";

		assert_int_equal(auth_token_reply_parse(j, strlen(j), NOW, &r), 0);
		assert_string_equal(r.token, "T2xx");
		assert_null(r.refresh_token);
		assert_int_equal(r.expires_at_ms, NOW + 60000);
		auth_token_reply_clear(&r);
	}
	{
		/* a server clock 1 h ahead: issued_at clamped to now */
		const char *j = "{\"token\":\"T3xx\",\"expires_in\":300,"
				"\"issued_at\":\"2023-11-14T23:13:20Z\"}";

		assert_int_equal(auth_token_reply_parse(j, strlen(j), NOW, &r), 0);
		assert_int_equal(r.expires_at_ms, NOW + 300000);
		auth_token_reply_clear(&r);
	}
	{
		/* nothing known: 60 s default */
		const char *j = "{\"access_token\":\"opaque\"}";

		assert_int_equal(auth_token_reply_parse(j, strlen(j), NOW, &r), 0);
		assert_int_equal(r.expires_at_ms, NOW + 60000);
		auth_token_reply_clear(&r);
	}
}

static void test_reply_acr_style(void **state)
{
	struct auth_token_reply r;
	char *jwt, *json;

	(void)state;
	/* ACR: {"access_token": JWT} with exp only (absolute) */
	jwt = make_jwt("{\"exp\":1700004500}");
	assert_true(asprintf(&json, "{\"access_token\":\"%s\"}", jwt) > 0);
	assert_int_equal(auth_token_reply_parse(json, strlen(json), NOW, &r), 0);
	assert_string_equal(r.token, jwt);
	assert_int_equal(r.expires_at_ms, 1700004500000LL);
	auth_token_reply_clear(&r);
	free(json);
	free(jwt);

	/* short-lived test token: expires_in=3 (would be 60) but the JWT says
	 * 3 s from iat: the minimum wins */
	jwt = make_jwt("{\"exp\":1700000003,\"iat\":1700000000}");
	assert_true(asprintf(&json,
			     "{\"token\":\"%s\",\"access_token\":\"%s\","
			     "\"expires_in\":3,"
			     "\"issued_at\":\"2023-11-14T22:13:20Z\"}",
			     jwt, jwt) > 0);
	assert_int_equal(auth_token_reply_parse(json, strlen(json), NOW + 400,
						&r),
			 0);
	assert_int_equal(r.expires_at_ms, NOW + 3000);
	auth_token_reply_clear(&r);
	free(json);
	free(jwt);

	/* iat/exp from a server 10 min behind: lifetime counted from the
	 * clamped iat (now - 60 s) keeps a 1 h token usable */
	jwt = make_jwt("{\"exp\":1699999400,\"iat\":1699995800}");
	assert_true(asprintf(&json, "{\"access_token\":\"%s\"}", jwt) > 0);
	assert_int_equal(auth_token_reply_parse(json, strlen(json), NOW, &r), 0);
	assert_int_equal(r.expires_at_ms, NOW - 60000 + 3600000);
	auth_token_reply_clear(&r);
	free(json);
	free(jwt);
}

static void test_reply_bad(void **state)
{
	struct auth_token_reply r;
	static const char *const bad[] = {
		"", "not json", "[]", "{}", "{\"token\":\"\"}",
		"{\"token\":42}", "{\"access_token\":null}", "{\"token\":\"x\"",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(auth_token_reply_parse(bad[i], strlen(bad[i]),
							NOW, &r),
				 -EINVAL);
		assert_null(r.token);
		assert_null(r.refresh_token);
	}
	assert_int_equal(auth_token_reply_parse(NULL, 0, NOW, &r), -EINVAL);
}

static void test_reply_redacts(void **state)
{
	struct auth_token_reply r;
	const char *j = "{\"access_token\":\"zqxSecretValue123\","
			"\"refresh_token\":\"refreshSecret456\"}";
	char out[256];

	(void)state;
	assert_int_equal(auth_token_reply_parse(j, strlen(j), NOW, &r), 0);
	log_redact("tok zqxSecretValue123 rt refreshSecret456 end", out,
		   sizeof(out));
	assert_string_equal(out, "tok [redacted] rt [redacted] end");
	auth_token_reply_clear(&r);
}

#define REALM "https://x.azurecr.io/oauth2/token"
#define SVC "x.azurecr.io"

static struct auth_tokens *new_cache(void)
{
	struct auth_tokens *c = NULL;

	assert_int_equal(auth_tokens_new(&c), 0);
	auth_tokens_set_clock(c, fake_clock, NULL);
	fake_now = NOW;
	return c;
}

static void expect_token(struct auth_tokens *c, const char *scope,
			 const char *want)
{
	char *t = NULL;
	int rc = auth_tokens_get(c, REALM, SVC, scope, &t);

	if (want) {
		assert_int_equal(rc, 0);
		assert_string_equal(t, want);
	} else {
		assert_int_equal(rc, -ENOENT);
		assert_null(t);
	}
	auth_secret_free(t);
}

static void test_cache_margin_long(void **state)
{
	struct auth_tokens *c = new_cache();

	(void)state;
	/* 1 h token: usable until 30 s before exp */
	assert_int_equal(auth_tokens_put(c, REALM, SVC, "repository:a:pull",
					 "tokA", NOW + 3600000),
			 0);
	expect_token(c, "repository:a:pull", "tokA");
	fake_now = NOW + 3600000 - 30001;
	expect_token(c, "repository:a:pull", "tokA");
	fake_now = NOW + 3600000 - 30000;
	expect_token(c, "repository:a:pull", NULL);
	/* other keys miss */
	fake_now = NOW;
	expect_token(c, "repository:b:pull", NULL);
	{
		char *t = NULL;

		assert_int_equal(auth_tokens_get(c, "https://other/token", SVC,
						 "repository:a:pull", &t),
				 -ENOENT);
		assert_int_equal(auth_tokens_get(c, REALM, "other",
						 "repository:a:pull", &t),
				 -ENOENT);
	}
	auth_tokens_free(c);
}

static void test_cache_margin_short(void **state)
{
	struct auth_tokens *c = new_cache();

	(void)state;
	/* 5 s token: refreshed at 80 % (4 s) */
	auth_tokens_put(c, REALM, SVC, "s5", "tok5", NOW + 5000);
	fake_now = NOW + 3999;
	expect_token(c, "s5", "tok5");
	fake_now = NOW + 4000;
	expect_token(c, "s5", NULL);
	/* 3 s token: the 1 s floor wins, usable for 2 s */
	fake_now = NOW;
	auth_tokens_put(c, REALM, SVC, "s3", "tok3", NOW + 3000);
	fake_now = NOW + 1999;
	expect_token(c, "s3", "tok3");
	fake_now = NOW + 2000;
	expect_token(c, "s3", NULL);
	/* 60 s token: 12 s margin */
	fake_now = NOW;
	auth_tokens_put(c, REALM, SVC, "s60", "tok60", NOW + 60000);
	fake_now = NOW + 47999;
	expect_token(c, "s60", "tok60");
	fake_now = NOW + 48000;
	expect_token(c, "s60", NULL);
	/* too short to ever hand out: not stored */
	fake_now = NOW;
	assert_int_equal(auth_tokens_put(c, REALM, SVC, "s1", "tok1", NOW + 1000),
			 0);
	expect_token(c, "s1", NULL);
	assert_int_equal(auth_tokens_put(c, REALM, SVC, "s0", "tok0", NOW - 5),
			 0);
	expect_token(c, "s0", NULL);
	auth_tokens_free(c);
}

/* Property: whatever the lifetime, a token handed out has >= 1 s left. */
static void test_cache_never_nearly_dead(void **state)
{
	struct auth_tokens *c = new_cache();
	int64_t life, t;

	(void)state;
	for (life = 0; life <= 130000; life += life < 10000 ? 250 : 5000) {
		fake_now = NOW;
		auth_tokens_put(c, REALM, SVC, "p", "tokP", NOW + life);
		for (t = NOW; t <= NOW + life + 1000; t += 50) {
			char *tok = NULL;

			fake_now = t;
			if (auth_tokens_get(c, REALM, SVC, "p", &tok) == 0) {
				assert_true(NOW + life - t >= 1000);
				auth_secret_free(tok);
			}
		}
		/* and it was handed out for most of a >= 3 s lifetime */
		if (life >= 3000) {
			char *tok = NULL;

			fake_now = NOW + life * 6 / 10;
			assert_int_equal(auth_tokens_get(c, REALM, SVC, "p", &tok),
					 0);
			auth_secret_free(tok);
		}
	}
	auth_tokens_free(c);
}

static void test_cache_cover_replace_invalidate(void **state)
{
	struct auth_tokens *c = new_cache();

	(void)state;
	auth_tokens_put(c, REALM, SVC, "repository:a:pull,push", "tokPP",
			NOW + 600000);
	/* a pull,push token serves a pull request */
	expect_token(c, "repository:a:pull", "tokPP");
	expect_token(c, "repository:a:delete", NULL);
	/* an exact entry is preferred */
	auth_tokens_put(c, REALM, SVC, "repository:a:pull", "tokP", NOW + 600000);
	expect_token(c, "repository:a:pull", "tokP");
	/* replace keeps one entry per key */
	auth_tokens_put(c, REALM, SVC, "repository:a:pull", "tokP2",
			NOW + 600000);
	assert_int_equal(auth_tokens_count(c), 2);
	expect_token(c, "repository:a:pull", "tokP2");
	/* an empty scope matches only an empty-scope entry */
	expect_token(c, "", NULL);
	auth_tokens_put(c, REALM, NULL, NULL, "tokNone", NOW + 600000);
	expect_token(c, NULL, NULL); /* service NULL != SVC */
	{
		char *t = NULL;

		assert_int_equal(auth_tokens_get(c, REALM, NULL, "", &t), 0);
		assert_string_equal(t, "tokNone");
		auth_secret_free(t);
	}
	/* invalidating pull removes both entries that could serve it */
	assert_int_equal(auth_tokens_invalidate(c, REALM, SVC,
						"repository:a:pull"),
			 2);
	expect_token(c, "repository:a:pull", NULL);
	assert_int_equal(auth_tokens_count(c), 1);
	assert_int_equal(auth_tokens_invalidate(c, NULL, NULL, NULL), 1);
	assert_int_equal(auth_tokens_count(c), 0);
	assert_int_equal(auth_tokens_put(c, REALM, SVC, "x", "", NOW + 9000),
			 -EINVAL);
	auth_tokens_free(c);
	auth_tokens_free(NULL);
}

static void test_cache_eviction(void **state)
{
	struct auth_tokens *c = new_cache();
	char scope[32], tok[32];
	int i;

	(void)state;
	for (i = 0; i < 600; i++) {
		snprintf(scope, sizeof(scope), "repository:r%d:pull", i);
		snprintf(tok, sizeof(tok), "token-%d", i);
		assert_int_equal(auth_tokens_put(c, REALM, SVC, scope, tok,
						 NOW + 100000 + i * 1000),
				 0);
	}
	assert_true(auth_tokens_count(c) <= 512);
	/* the newest (longest-lived) are kept, the soonest-expiring went */
	expect_token(c, "repository:r599:pull", "token-599");
	expect_token(c, "repository:r0:pull", NULL);
	auth_tokens_free(c);
}

/* Single flight: N threads ask at once; one fetches, all get its token. */
struct sf {
	struct auth_tokens *c;
	int fetches;
	int got;
	pthread_mutex_t m;
};

static void *sf_thread(void *arg)
{
	struct sf *s = arg;
	char *t = NULL;
	int rc = auth_tokens_get_or_claim(s->c, REALM, SVC, "repository:z:pull",
					  &t);

	if (rc == -ENOENT) {
		pthread_mutex_lock(&s->m);
		s->fetches++;
		pthread_mutex_unlock(&s->m);
		usleep(100000); /* the "HTTP request" */
		auth_tokens_put(s->c, REALM, SVC, "repository:z:pull", "tokZ",
				auth_now_ms() + 600000);
		return NULL;
	}
	if (rc == 0 && strcmp(t, "tokZ") == 0) {
		pthread_mutex_lock(&s->m);
		s->got++;
		pthread_mutex_unlock(&s->m);
	}
	auth_secret_free(t);
	return NULL;
}

static void test_single_flight(void **state)
{
	struct sf s = { 0 };
	pthread_t th[8];
	char *t = NULL;
	int i;

	(void)state;
	assert_int_equal(auth_tokens_new(&s.c), 0); /* real clock */
	pthread_mutex_init(&s.m, NULL);
	for (i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, sf_thread, &s), 0);
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(s.fetches, 1);
	assert_int_equal(s.got, 7);
	/* abandon: the next caller gets the claim */
	assert_int_equal(auth_tokens_get_or_claim(s.c, REALM, SVC, "q", &t),
			 -ENOENT);
	auth_tokens_abandon(s.c, REALM, SVC, "q");
	assert_int_equal(auth_tokens_get_or_claim(s.c, REALM, SVC, "q", &t),
			 -ENOENT);
	auth_tokens_abandon(s.c, REALM, SVC, "q");
	pthread_mutex_destroy(&s.m);
	auth_tokens_free(s.c);
}

/* ---- form builders ---- */

static void test_form_url(void **state)
{
	char *u = NULL;

	(void)state;
	assert_int_equal(auth_form_token_url(REALM, SVC,
					     "repository:a/b:pull registry:catalog:*",
					     &u),
			 0);
	assert_string_equal(u, REALM "?service=x.azurecr.io"
				     "&scope=repository%3Aa%2Fb%3Apull"
				     "&scope=registry%3Acatalog%3A%2A");
	free(u);
	assert_int_equal(auth_form_token_url("https://auth.io/token?a=1", "s s",
					     NULL, &u),
			 0);
	assert_string_equal(u, "https://auth.io/token?a=1&service=s%20s");
	free(u);
	assert_int_equal(auth_form_token_url("http://h:5001/t", NULL,
					     "  repository:x:pull  ", &u),
			 0);
	assert_string_equal(u, "http://h:5001/t?scope=repository%3Ax%3Apull");
	free(u);
	assert_int_equal(auth_form_token_url("ftp://h/t", NULL, NULL, &u),
			 -EINVAL);
	assert_null(u);
	assert_int_equal(auth_form_token_url("https:///t", NULL, NULL, &u),
			 -EINVAL);
	assert_int_equal(auth_form_token_url("https://u@h/t", NULL, NULL, &u),
			 -EINVAL);
}

static void test_form_bodies(void **state)
{
	char *b = NULL;

	(void)state;
	assert_int_equal(auth_form_refresh_body(SVC,
						"repository:a:pull repository:b:pull",
						"rt/+=x", &b),
			 0);
	assert_string_equal(b, "grant_type=refresh_token&client_id=acrfs"
			       "&service=x.azurecr.io"
			       "&scope=repository%3Aa%3Apull%20repository%3Ab%3Apull"
			       "&refresh_token=rt%2F%2B%3Dx");
	auth_secret_free(b);
	assert_int_equal(auth_form_password_body(SVC, NULL, "u@x", "p&ss w",
						 &b),
			 0);
	assert_string_equal(b, "grant_type=password&client_id=acrfs"
			       "&service=x.azurecr.io&username=u%40x"
			       "&password=p%26ss%20w");
	auth_secret_free(b);
	assert_int_equal(auth_form_exchange_body(SVC, "tid-1", "aad.tok", &b), 0);
	assert_string_equal(b, "grant_type=access_token&service=x.azurecr.io"
			       "&tenant=tid-1&access_token=aad.tok");
	auth_secret_free(b);
	assert_int_equal(auth_form_exchange_body(SVC, NULL, "aad", &b), 0);
	assert_string_equal(b, "grant_type=access_token&service=x.azurecr.io"
			       "&access_token=aad");
	auth_secret_free(b);
	assert_int_equal(auth_form_refresh_body(SVC, NULL, "", &b), -EINVAL);
	assert_null(b);
	assert_int_equal(auth_form_exchange_body(NULL, NULL, "aad", &b), -EINVAL);
}

static void test_form_exchange(void **state)
{
	char *u = NULL, *r = NULL;
	const char *j = "{\"refresh_token\":\"eyJhbGciOi.x.y\"}";

	(void)state;
	assert_int_equal(auth_form_exchange_url(REALM, &u), 0);
	assert_string_equal(u, "https://x.azurecr.io/oauth2/exchange");
	free(u);
	assert_int_equal(auth_form_exchange_url("http://127.0.0.1:5001/oauth2/"
						"token?x=1",
						&u),
			 0);
	assert_string_equal(u, "http://127.0.0.1:5001/oauth2/exchange");
	free(u);
	assert_int_equal(auth_form_exchange_url("x.azurecr.io/oauth2/token", &u),
			 -EINVAL);
	assert_int_equal(auth_exchange_reply_parse(j, strlen(j), &r), 0);
	assert_string_equal(r, "eyJhbGciOi.x.y");
	auth_secret_free(r);
	assert_int_equal(auth_exchange_reply_parse("{\"access_token\":\"a\"}", 20,
						   &r),
			 -EINVAL);
	assert_null(r);
	assert_int_equal(auth_exchange_reply_parse("nope", 4, &r), -EINVAL);
}

static void test_basic_header(void **state)
{
	char *h = NULL, out[128];

	(void)state;
	assert_int_equal(auth_basic_header("user", "pass", &h), 0);
	assert_string_equal(h, "Basic dXNlcjpwYXNz");
	auth_secret_free(h);
	assert_int_equal(auth_basic_header("Aladdin", "open sesame", &h), 0);
	assert_string_equal(h, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
	/* the encoded credential is a registered secret */
	log_redact("x QWxhZGRpbjpvcGVuIHNlc2FtZQ== y", out, sizeof(out));
	assert_string_equal(out, "x [redacted] y");
	auth_secret_free(h);
	assert_int_equal(auth_basic_header("a:b", "c", &h), -EINVAL);
	assert_null(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_jwt_times),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_reply_docker_style),
		cmocka_unit_test(test_reply_acr_style),
		cmocka_unit_test(test_reply_bad),
		cmocka_unit_test(test_reply_redacts),
		cmocka_unit_test(test_cache_margin_long),
		cmocka_unit_test(test_cache_margin_short),
		cmocka_unit_test(test_cache_never_nearly_dead),
		cmocka_unit_test(test_cache_cover_replace_invalidate),
		cmocka_unit_test(test_cache_eviction),
		cmocka_unit_test(test_single_flight),
		cmocka_unit_test(test_form_url),
		cmocka_unit_test(test_form_bodies),
		cmocka_unit_test(test_form_exchange),
		cmocka_unit_test(test_basic_header),
	};

	return cmocka_run_group_tests_name("auth_token", tests, NULL, NULL);
}
