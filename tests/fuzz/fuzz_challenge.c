/*
 * fuzz_challenge — WWW-Authenticate values and token scopes
 * (auth/challenge.h).
 *
 * Input: a header value. auth_challenge_parsen() must stop at a NUL byte
 * and agree with auth_challenge_parse() of the same string; a success is a
 * non-empty list of challenges with a scheme name each, the picked one a
 * member of it (Bearer first, else Basic). Every scope parameter, and the
 * input itself read as a scope list, goes through auth_scope_parse() and
 * auth_scope_covers() (a well-formed list covers itself); the input cut at
 * its first newline is a repository name and actions for
 * auth_scope_repository(), whose result must parse back into them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/challenge.h"
#include "tests/fuzz/fuzz.h"

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* Parse every space-separated scope of `list`; covers itself if all parse. */
static void check_scope_list(const char *list, const char *other)
{
	char *copy = strdup(list), *save = NULL, *tok;
	bool all_ok = true;

	if (!copy)
		abort();
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		struct auth_scope s;
		int rc = auth_scope_parse(tok, &s);

		if (rc) {
			FUZZ_CHECK(rc == -EINVAL && !s.type && !s.name && !s.actions);
			all_ok = false;
			continue;
		}
		FUZZ_CHECK(*s.type && *s.name && !strchr(s.type, ':') &&
			   !strchr(s.actions, ':'));
		FUZZ_CHECK(strlen(s.type) + strlen(s.name) + strlen(s.actions) + 2 ==
			   strlen(tok));
		auth_scope_clear(&s);
	}
	free(copy);
	/* Quadratic in the list's length (fine for the few scopes a token
	 * carries): only short lists are compared with themselves. */
	if (all_ok && strlen(list) <= 1024)
		FUZZ_CHECK(auth_scope_covers(list, list));
	FUZZ_CHECK(auth_scope_covers(list, ""));
	FUZZ_CHECK(auth_scope_covers(list, NULL));
	(void)auth_scope_covers(list, other);
	if (strlen(list) <= 1024)
		(void)auth_scope_covers(other, list);
}

static void check_list(const struct auth_challenge *list)
{
	const struct auth_challenge *c, *pick = auth_challenge_pick(list), *first_basic = NULL;
	bool any_bearer = false;

	FUZZ_CHECK(list);
	for (c = list; c; c = c->next) {
		FUZZ_CHECK(c->scheme_name && *c->scheme_name);
		if (!strcasecmp(c->scheme_name, "bearer"))
			FUZZ_CHECK(c->scheme == AUTH_SCHEME_BEARER);
		else if (!strcasecmp(c->scheme_name, "basic"))
			FUZZ_CHECK(c->scheme == AUTH_SCHEME_BASIC);
		else
			FUZZ_CHECK(c->scheme == AUTH_SCHEME_OTHER);
		if (c->scheme == AUTH_SCHEME_BEARER && !any_bearer) {
			any_bearer = true;
			FUZZ_CHECK(pick == c);
		}
		if (c->scheme == AUTH_SCHEME_BASIC && !first_basic)
			first_basic = c;
		if (c->scope)
			check_scope_list(c->scope, list->scope ? list->scope : "");
	}
	if (!any_bearer)
		FUZZ_CHECK(pick == first_basic);
}

static bool same_lists(const struct auth_challenge *a, const struct auth_challenge *b)
{
	for (; a && b; a = a->next, b = b->next)
		if (a->scheme != b->scheme || !str_eq(a->scheme_name, b->scheme_name) ||
		    !str_eq(a->realm, b->realm) || !str_eq(a->service, b->service) ||
		    !str_eq(a->scope, b->scope) || !str_eq(a->error, b->error) ||
		    !str_eq(a->error_description, b->error_description) ||
		    !str_eq(a->token68, b->token68))
			return false;
	return !a && !b;
}

/* name "\n" actions → auth_scope_repository → auth_scope_parse. */
static void check_repository_scope(const char *s)
{
	const char *nl = strchr(s, '\n');
	char *name, *scope = NULL;
	struct auth_scope p;

	if (!nl)
		return;
	name = strndup(s, (size_t)(nl - s));
	if (!name)
		abort();
	if (auth_scope_repository(name, nl + 1, &scope) == 0) {
		FUZZ_CHECK(auth_scope_parse(scope, &p) == 0);
		FUZZ_CHECK(!strcmp(p.type, "repository") && !strcmp(p.name, name) &&
			   !strcmp(p.actions, nl + 1));
		FUZZ_CHECK(auth_scope_covers(scope, scope));
		auth_scope_clear(&p);
	} else {
		FUZZ_CHECK(!scope);
	}
	free(scope);
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_challenge *a = (struct auth_challenge *)1, *b = NULL;
	char *s = malloc(size + 1);
	int rca, rcb;

	fuzz_setup();
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	rca = auth_challenge_parsen((const char *)data, size, &a);
	rcb = auth_challenge_parse(s, &b);
	FUZZ_CHECK(rca == rcb);
	if (rca) {
		FUZZ_CHECK(rca == -EINVAL && !a && !b);
	} else {
		check_list(a);
		FUZZ_CHECK(same_lists(a, b));
	}
	auth_challenge_free(a);
	auth_challenge_free(b);
	check_scope_list(s, "repository:a/b:pull registry:catalog:*");
	check_repository_scope(s);
	free(s);
	return 0;
}
