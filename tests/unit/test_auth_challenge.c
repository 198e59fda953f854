/* Unit tests for auth/challenge: WWW-Authenticate parsing and scopes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/challenge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct auth_challenge *parse_ok(const char *hdr)
{
	struct auth_challenge *c = NULL;

	assert_int_equal(auth_challenge_parse(hdr, &c), 0);
	assert_non_null(c);
	return c;
}

static void parse_bad(const char *hdr)
{
	struct auth_challenge *c = (struct auth_challenge *)1;

	assert_int_equal(auth_challenge_parse(hdr, &c), -EINVAL);
	assert_null(c);
}

static void test_docker_hub(void **state)
{
	struct auth_challenge *c;

	(void)state;
	c = parse_ok("Bearer realm=\"https://auth.docker.io/token\","
		     "service=\"registry.docker.io\","
		     "scope=\"repository:library/alpine:pull\"");
	assert_int_equal(c->scheme, AUTH_SCHEME_BEARER);
	assert_string_equal(c->scheme_name, "Bearer");
	assert_string_equal(c->realm, "https://auth.docker.io/token");
	assert_string_equal(c->service, "registry.docker.io");
	assert_string_equal(c->scope, "repository:library/alpine:pull");
	assert_null(c->error);
	assert_null(c->next);
	auth_challenge_free(c);
}

static void test_acr(void **state)
{
	struct auth_challenge *c;

	(void)state;
	c = parse_ok("Bearer realm=\"https://x.azurecr.io/oauth2/token\","
		     "service=\"x.azurecr.io\"");
	assert_int_equal(c->scheme, AUTH_SCHEME_BEARER);
	assert_string_equal(c->realm, "https://x.azurecr.io/oauth2/token");
	assert_string_equal(c->service, "x.azurecr.io");
	assert_null(c->scope);
	auth_challenge_free(c);

	/* ACR on a catalog request, with an error code */
	c = parse_ok("Bearer realm=\"https://x.azurecr.io/oauth2/token\","
		     "service=\"x.azurecr.io\",scope=\"registry:catalog:*\","
		     "error=\"invalid_token\"");
	assert_string_equal(c->scope, "registry:catalog:*");
	assert_string_equal(c->error, "invalid_token");
	auth_challenge_free(c);
}

static void test_ghcr_quay(void **state)
{
	struct auth_challenge *c;

	(void)state;
	c = parse_ok("Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\","
		     "scope=\"repository:user/image:pull\"");
	assert_string_equal(c->realm, "https://ghcr.io/token");
	assert_string_equal(c->scope, "repository:user/image:pull");
	auth_challenge_free(c);

	c = parse_ok("Bearer realm=\"https://quay.io/v2/auth\",service=\"quay.io\"");
	assert_string_equal(c->realm, "https://quay.io/v2/auth");
	assert_string_equal(c->service, "quay.io");
	auth_challenge_free(c);
}

static void test_distribution_insufficient_scope(void **state)
{
	struct auth_challenge *c;

	(void)state;
	/* distribution 2.8's format for a missing action, two scopes */
	c = parse_ok("Bearer realm=\"http://127.0.0.1:5001/oauth2/token\","
		     "service=\"test-registry\","
		     "scope=\"repository:a/b:pull repository:a/b:delete\","
		     "error=\"insufficient_scope\"");
	assert_string_equal(c->realm, "http://127.0.0.1:5001/oauth2/token");
	assert_string_equal(c->scope,
			    "repository:a/b:pull repository:a/b:delete");
	assert_string_equal(c->error, "insufficient_scope");
	auth_challenge_free(c);
}

static void test_basic(void **state)
{
	struct auth_challenge *c;

	(void)state;
	c = parse_ok("Basic realm=\"Registry Realm\"");
	assert_int_equal(c->scheme, AUTH_SCHEME_BASIC);
	assert_string_equal(c->realm, "Registry Realm");
	auth_challenge_free(c);

	c = parse_ok("basic REALM=registry");
	assert_int_equal(c->scheme, AUTH_SCHEME_BASIC);
	assert_string_equal(c->realm, "registry");
	auth_challenge_free(c);
}

static void test_multiple(void **state)
{
	struct auth_challenge *c;

	(void)state;
	c = parse_ok("Basic realm=\"x\", Bearer realm=\"y\",service=\"z\"");
	assert_int_equal(c->scheme, AUTH_SCHEME_BASIC);
	assert_string_equal(c->realm, "x");
	assert_null(c->service);
	assert_non_null(c->next);
	assert_int_equal(c->next->scheme, AUTH_SCHEME_BEARER);
	assert_string_equal(c->next->realm, "y");
	assert_string_equal(c->next->service, "z");
	assert_null(c->next->next);
	assert_ptr_equal(auth_challenge_pick(c), c->next);
	auth_challenge_free(c);

	/* token68 and bare schemes between others */
	c = parse_ok("Negotiate, NTLM abc+/def==,Basic realm=\"r\" , "
		     "Bearer realm=\"t\"");
	assert_int_equal(c->scheme, AUTH_SCHEME_OTHER);
	assert_string_equal(c->scheme_name, "Negotiate");
	assert_null(c->token68);
	assert_string_equal(c->next->scheme_name, "NTLM");
	assert_string_equal(c->next->token68, "abc+/def==");
	assert_int_equal(c->next->next->scheme, AUTH_SCHEME_BASIC);
	assert_string_equal(c->next->next->realm, "r");
	assert_int_equal(c->next->next->next->scheme, AUTH_SCHEME_BEARER);
	assert_null(c->next->next->next->next);
	assert_int_equal(auth_challenge_pick(c)->scheme, AUTH_SCHEME_BEARER);
	auth_challenge_free(c);

	c = parse_ok("Basic realm=\"only\"");
	assert_ptr_equal(auth_challenge_pick(c), c);
	auth_challenge_free(c);
	c = parse_ok("Negotiate");
	assert_null(auth_challenge_pick(c));
	auth_challenge_free(c);
}

static void test_case_and_whitespace(void **state)
{
	struct auth_challenge *c;

	(void)state;
	c = parse_ok("  bEaReR \t REALM = \"https://r/t\" ,\tSeRvIcE=svc ,, "
		     "Scope=\"repository:x:pull\"  ,  ");
	assert_int_equal(c->scheme, AUTH_SCHEME_BEARER);
	assert_string_equal(c->scheme_name, "bEaReR");
	assert_string_equal(c->realm, "https://r/t");
	assert_string_equal(c->service, "svc");
	assert_string_equal(c->scope, "repository:x:pull");
	assert_null(c->next);
	auth_challenge_free(c);
}

static void test_escapes_and_unquoted(void **state)
{
	struct auth_challenge *c;

	(void)state;
	c = parse_ok("Bearer realm=\"a\\\"b\\\\c\\d, e\",service=\"\"");
	assert_string_equal(c->realm, "a\"b\\cd, e");
	assert_string_equal(c->service, "");
	auth_challenge_free(c);

	/* unquoted URL values (lenient) and duplicates: first wins */
	c = parse_ok("Bearer realm=https://auth.example.com/token?x=1,"
		     "service=reg.example.com,realm=\"second\"");
	assert_string_equal(c->realm, "https://auth.example.com/token?x=1");
	assert_string_equal(c->service, "reg.example.com");
	auth_challenge_free(c);

	/* a comma inside a quoted value is not a separator */
	c = parse_ok("Bearer scope=\"a,b\", realm=\"r\"");
	assert_string_equal(c->scope, "a,b");
	assert_string_equal(c->realm, "r");
	assert_null(c->next);
	auth_challenge_free(c);

	/* unknown params are ignored; error_description kept */
	c = parse_ok("Bearer realm=\"r\", foo=bar, "
		     "error_description=\"The access token expired\"");
	assert_string_equal(c->error_description, "The access token expired");
	auth_challenge_free(c);
}

static void test_garbage(void **state)
{
	struct auth_challenge *c = NULL;

	(void)state;
	parse_bad("");
	parse_bad("   ");
	parse_bad(" , ,");
	parse_bad("=foo");
	parse_bad("Bearer realm=,service=x");
	parse_bad("Bearer realm=\"unterminated");
	parse_bad("Bearer realm=\"esc at end\\");
	parse_bad("Bearer realm=\"x\" service=\"y\"");
	parse_bad("Bearer realm=\"x\"service=\"y\"");
	parse_bad("Bearer \"quoted\"");
	parse_bad("Bearer realm=\"a\nb\"");
	parse_bad("Bearer realm \"x\"");
	parse_bad("Bearer realm=\"x\",=y");
	parse_bad("Bea\"rer realm=x");
	parse_bad("Bearer realm=x y");
	assert_int_equal(auth_challenge_parse(NULL, &c), -EINVAL);
	assert_null(c);
	/* RFC 7235 reads "realm=" after a scheme as a token68, not a param */
	c = parse_ok("Bearer realm=");
	assert_string_equal(c->token68, "realm=");
	assert_null(c->realm);
	auth_challenge_free(c);
}

static void test_truncated(void **state)
{
	static const char full[] =
		"Bearer realm=\"https://x.azurecr.io/oauth2/token\","
		"service=\"x.azurecr.io\",scope=\"repository:a:pull\"";
	size_t n;

	(void)state;
	/* Every prefix, as an exact-size heap copy so ASan sees overreads. */
	for (n = 0; n <= sizeof(full) - 1; n++) {
		char *p = malloc(n ? n : 1);
		struct auth_challenge *c = NULL;
		int rc;

		memcpy(p, full, n);
		rc = auth_challenge_parsen(p, n, &c);
		if (rc == 0) {
			assert_non_null(c);
			assert_int_equal(c->scheme, n >= 6 ? AUTH_SCHEME_BEARER
							   : AUTH_SCHEME_OTHER);
		} else {
			assert_int_equal(rc, -EINVAL);
			assert_null(c);
		}
		auth_challenge_free(c);
		free(p);
	}
	/* a cut right after the realm's closing quote is complete */
	{
		struct auth_challenge *c = NULL;

		n = strlen("Bearer realm=\"https://x.azurecr.io/oauth2/token\"");
		assert_int_equal(auth_challenge_parsen(full, n, &c), 0);
		assert_string_equal(c->realm,
				    "https://x.azurecr.io/oauth2/token");
		assert_null(c->service);
		auth_challenge_free(c);
		/* and one inside the quoted value is not */
		assert_int_equal(auth_challenge_parsen(full, n - 1, &c),
				 -EINVAL);
	}
	/* an embedded NUL ends the header */
	{
		static const char nul[] = "Basic realm=\"a\"\0garbage\"";
		struct auth_challenge *c = NULL;

		assert_int_equal(auth_challenge_parsen(nul, sizeof(nul), &c), 0);
		assert_string_equal(c->realm, "a");
		auth_challenge_free(c);
	}
}

static void test_too_long(void **state)
{
	size_t n = AUTH_CHALLENGE_MAX_LEN + 10;
	char *p = malloc(n + 1);
	struct auth_challenge *c = NULL;

	(void)state;
	memcpy(p, "Bearer realm=\"", 14);
	memset(p + 14, 'a', n - 15);
	p[n - 1] = '"';
	p[n] = '\0';
	assert_int_equal(auth_challenge_parse(p, &c), -EINVAL);
	free(p);
}

static void test_scope_build(void **state)
{
	char *s = NULL;

	(void)state;
	assert_int_equal(auth_scope_repository("library/alpine", "pull", &s), 0);
	assert_string_equal(s, "repository:library/alpine:pull");
	free(s);
	assert_int_equal(auth_scope_repository("a/b", "pull,push", &s), 0);
	assert_string_equal(s, "repository:a/b:pull,push");
	free(s);
	assert_int_equal(auth_scope_repository("", "pull", &s), -EINVAL);
	assert_null(s);
	assert_int_equal(auth_scope_repository("a b", "pull", &s), -EINVAL);
	assert_int_equal(auth_scope_repository("a", "pu:ll", &s), -EINVAL);
	assert_int_equal(auth_scope_repository("a", "", &s), -EINVAL);
	assert_int_equal(auth_scope_catalog(&s), 0);
	assert_string_equal(s, "registry:catalog:*");
	free(s);
}

static void test_scope_parse(void **state)
{
	struct auth_scope sc;

	(void)state;
	assert_int_equal(auth_scope_parse("repository:a/b:pull,push", &sc), 0);
	assert_string_equal(sc.type, "repository");
	assert_string_equal(sc.name, "a/b");
	assert_string_equal(sc.actions, "pull,push");
	auth_scope_clear(&sc);
	/* a name holding ':' (host:port) — type at first, actions at last */
	assert_int_equal(auth_scope_parse("repository:host:5000/x:pull", &sc), 0);
	assert_string_equal(sc.type, "repository");
	assert_string_equal(sc.name, "host:5000/x");
	assert_string_equal(sc.actions, "pull");
	auth_scope_clear(&sc);
	assert_int_equal(auth_scope_parse("repository(plugin):p:pull", &sc), 0);
	assert_string_equal(sc.type, "repository(plugin)");
	auth_scope_clear(&sc);
	assert_int_equal(auth_scope_parse("registry:catalog:*", &sc), 0);
	assert_string_equal(sc.type, "registry");
	assert_string_equal(sc.name, "catalog");
	assert_string_equal(sc.actions, "*");
	auth_scope_clear(&sc);
	assert_int_equal(auth_scope_parse("repository:a:", &sc), 0);
	assert_string_equal(sc.actions, "");
	auth_scope_clear(&sc);
	assert_int_equal(auth_scope_parse("repository:pull", &sc), -EINVAL);
	assert_null(sc.type);
	assert_int_equal(auth_scope_parse(":a:pull", &sc), -EINVAL);
	assert_int_equal(auth_scope_parse("repository::pull", &sc), -EINVAL);
	assert_int_equal(auth_scope_parse("repository:a b:pull", &sc), -EINVAL);
	assert_int_equal(auth_scope_parse("nocolon", &sc), -EINVAL);
}

static void test_scope_covers(void **state)
{
	(void)state;
	assert_true(auth_scope_covers("repository:a:pull", "repository:a:pull"));
	assert_true(auth_scope_covers("repository:a:pull,push",
				      "repository:a:pull"));
	assert_true(auth_scope_covers("repository:a:pull,push",
				      "repository:a:push,pull"));
	assert_false(auth_scope_covers("repository:a:pull",
				       "repository:a:pull,push"));
	assert_false(auth_scope_covers("repository:a:pull", "repository:b:pull"));
	assert_false(auth_scope_covers("repository:a:pull",
				       "repository:ab:pull"));
	assert_false(auth_scope_covers("registry:a:pull", "repository:a:pull"));
	/* actions united over several scopes of one resource */
	assert_true(auth_scope_covers("repository:a:pull repository:a:delete",
				      "repository:a:delete,pull"));
	/* a list wanted: each must be covered */
	assert_true(auth_scope_covers(
		"repository:a:pull registry:catalog:*",
		"registry:catalog:* repository:a:pull"));
	assert_false(auth_scope_covers("repository:a:pull",
				       "repository:a:pull registry:catalog:*"));
	/* "*" covers any action */
	assert_true(auth_scope_covers("repository:a:*", "repository:a:delete"));
	assert_false(auth_scope_covers("repository:a:pull", "repository:a:*"));
	assert_true(auth_scope_covers("repository:h:5000/x:pull",
				      "repository:h:5000/x:pull"));
	/* empty/NULL wanted is covered; malformed wanted never */
	assert_true(auth_scope_covers("repository:a:pull", ""));
	assert_true(auth_scope_covers(NULL, NULL));
	assert_false(auth_scope_covers("repository:a:pull", "garbage"));
	assert_false(auth_scope_covers(NULL, "repository:a:pull"));
	assert_false(auth_scope_covers("", "repository:a:pull"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_docker_hub),
		cmocka_unit_test(test_acr),
		cmocka_unit_test(test_ghcr_quay),
		cmocka_unit_test(test_distribution_insufficient_scope),
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_multiple),
		cmocka_unit_test(test_case_and_whitespace),
		cmocka_unit_test(test_escapes_and_unquoted),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_scope_build),
		cmocka_unit_test(test_scope_parse),
		cmocka_unit_test(test_scope_covers),
	};

	return cmocka_run_group_tests_name("auth_challenge", tests, NULL, NULL);
}
