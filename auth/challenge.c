/*
 * Design: a recursive-descent parser over [p, end) with one cursor; every
 * read checks the cursor against `end`, so a truncated or NUL-cut header can
 * never be read past. The grammar (RFC 7235 §2.1, §4.1, with the list rule
 * of RFC 7230 §7 that tolerates empty elements) is ambiguous after a comma:
 * what follows is either another auth-param of the same challenge or a new
 * challenge. A lookahead decides: `token OWS "="` is a parameter, anything
 * else starts a new challenge. Unquoted values are parsed leniently (any
 * visible character but ',', '"' and '\'), because some registries send
 * `realm=https://…` unquoted.
 */
#include "auth/challenge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cursor {
	const char *p;
	const char *end;
};

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_t68char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c && strchr("-._~+/", c) != NULL;
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static bool is_valuechar(unsigned char c)
{
	if (c >= 0x80)
		return true;
	return c > 0x20 && c < 0x7f && c != ',' && c != '"' && c != '\\';
}

static void skip_ows(struct cursor *c)
{
	while (c->p < c->end && is_ows((unsigned char)*c->p))
		c->p++;
}

static size_t span(const struct cursor *c, bool (*ok)(unsigned char))
{
	const char *q = c->p;

	while (q < c->end && ok((unsigned char)*q))
		q++;
	return (size_t)(q - c->p);
}

static bool at(const struct cursor *c, char ch)
{
	return c->p < c->end && *c->p == ch;
}

static int dupn(const char *s, size_t n, char **out)
{
	*out = strndup(s, n);
	return *out ? 0 : -ENOMEM;
}

/* Quoted-string at the cursor (which points at '"'): unescaped copy. */
static int parse_quoted(struct cursor *c, char **out)
{
	char *v, *o;

	*out = NULL;
	c->p++; /* opening quote */
	v = malloc((size_t)(c->end - c->p) + 1);
	if (!v)
		return -ENOMEM;
	o = v;
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p++;

		if (ch == '"') {
			*o = '\0';
			*out = v;
			return 0;
		}
		if (ch == '\\') {
			if (c->p >= c->end)
				break;
			ch = (unsigned char)*c->p++;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			break;
		*o++ = (char)ch;
	}
	free(v);
	return -EINVAL;
}

static int parse_value(struct cursor *c, char **out)
{
	size_t n;

	if (at(c, '"'))
		return parse_quoted(c, out);
	n = span(c, is_valuechar);
	if (!n)
		return -EINVAL;
	c->p += n;
	return dupn(c->p - n, n, out);
}

/* Store value v under key k (length kn) in ch; takes ownership of v. */
static void store_param(struct auth_challenge *ch, const char *k, size_t kn,
			char *v)
{
	static const struct {
		const char *name;
		size_t off;
	} keys[] = {
		{ "realm", offsetof(struct auth_challenge, realm) },
		{ "service", offsetof(struct auth_challenge, service) },
		{ "scope", offsetof(struct auth_challenge, scope) },
		{ "error", offsetof(struct auth_challenge, error) },
		{ "error_description",
		  offsetof(struct auth_challenge, error_description) },
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char **slot = (char **)((char *)ch + keys[i].off);

		if (strlen(keys[i].name) == kn &&
		    strncasecmp(keys[i].name, k, kn) == 0 && !*slot) {
			*slot = v;
			return;
		}
	}
	free(v);
}

/* Lookahead: does `token OWS "="` start at the cursor? */
static bool param_ahead(const struct cursor *c)
{
	struct cursor l = *c;
	size_t n = span(&l, is_tchar);

	if (!n)
		return false;
	l.p += n;
	skip_ows(&l);
	return at(&l, '=');
}

/* Skip OWS and commas (empty list elements). */
static void skip_seps(struct cursor *c)
{
	while (c->p < c->end && (is_ows((unsigned char)*c->p) || *c->p == ','))
		c->p++;
}

/*
 * Parameters of one challenge, cursor after the scheme's whitespace. On
 * return the cursor is at the end or at the start of the next challenge.
 */
static int parse_params(struct cursor *c, struct auth_challenge *ch)
{
	for (;;) {
		const char *k = c->p;
		size_t kn = span(c, is_tchar);
		char *v;
		int rc;

		if (!kn)
			return -EINVAL;
		c->p += kn;
		skip_ows(c);
		if (!at(c, '='))
			return -EINVAL;
		c->p++;
		skip_ows(c);
		rc = parse_value(c, &v);
		if (rc)
			return rc;
		store_param(ch, k, kn, v);
		skip_ows(c);
		if (c->p >= c->end)
			return 0;
		if (!at(c, ','))
			return -EINVAL;
		skip_seps(c);
		if (c->p >= c->end || !param_ahead(c))
			return 0;
	}
}

/* Token68 or parameters after the scheme; cursor after the scheme. */
static int parse_challenge_body(struct cursor *c, struct auth_challenge *ch)
{
	struct cursor l;
	size_t n;

	if (c->p >= c->end || at(c, ','))
		return 0; /* scheme alone */
	if (!is_ows((unsigned char)*c->p))
		return -EINVAL;
	skip_ows(c);
	if (c->p >= c->end || at(c, ','))
		return 0;
	/* token68: 1*t68char *"=" followed by OWS then end or ',' */
	l = *c;
	n = span(&l, is_t68char);
	if (n) {
		l.p += n;
		while (at(&l, '='))
			l.p++;
		skip_ows(&l);
		if (l.p >= l.end || at(&l, ',')) {
			const char *e = l.p;

			while (e > c->p && is_ows((unsigned char)e[-1]))
				e--;
			if (dupn(c->p, (size_t)(e - c->p), &ch->token68))
				return -ENOMEM;
			c->p = l.p;
			return 0;
		}
	}
	return parse_params(c, ch);
}

static enum auth_scheme classify(const char *name)
{
	if (strcasecmp(name, "bearer") == 0)
		return AUTH_SCHEME_BEARER;
	if (strcasecmp(name, "basic") == 0)
		return AUTH_SCHEME_BASIC;
	return AUTH_SCHEME_OTHER;
}

int auth_challenge_parsen(const char *hdr, size_t len,
			  struct auth_challenge **out)
{
	struct auth_challenge *head = NULL, **tail = &head;
	struct cursor c;
	int rc = 0;

	*out = NULL;
	if (!hdr)
		return -EINVAL;
	len = strnlen(hdr, len);
	if (len > AUTH_CHALLENGE_MAX_LEN)
		return -EINVAL;
	c.p = hdr;
	c.end = hdr + len;
	for (;;) {
		struct auth_challenge *ch;
		size_t n;

		skip_seps(&c);
		if (c.p >= c.end)
			break;
		n = span(&c, is_tchar);
		if (!n) {
			rc = -EINVAL;
			goto fail;
		}
		ch = calloc(1, sizeof(*ch));
		if (!ch || dupn(c.p, n, &ch->scheme_name)) {
			free(ch);
			rc = -ENOMEM;
			goto fail;
		}
		*tail = ch;
		tail = &ch->next;
		ch->scheme = classify(ch->scheme_name);
		c.p += n;
		rc = parse_challenge_body(&c, ch);
		if (rc)
			goto fail;
		skip_ows(&c);
		if (c.p < c.end && !at(&c, ',')) {
			/* parse_params stops before a new challenge's scheme */
			if (c.p[-1] != ',' && !is_ows((unsigned char)c.p[-1])) {
				rc = -EINVAL;
				goto fail;
			}
		}
	}
	if (!head)
		return -EINVAL;
	*out = head;
	return 0;
fail:
	auth_challenge_free(head);
	return rc;
}

int auth_challenge_parse(const char *hdr, struct auth_challenge **out)
{
	if (!hdr) {
		*out = NULL;
		return -EINVAL;
	}
	return auth_challenge_parsen(hdr, strlen(hdr), out);
}

void auth_challenge_free(struct auth_challenge *list)
{
	while (list) {
		struct auth_challenge *next = list->next;

		free(list->scheme_name);
		free(list->realm);
		free(list->service);
		free(list->scope);
		free(list->error);
		free(list->error_description);
		free(list->token68);
		free(list);
		list = next;
	}
}

const struct auth_challenge *
auth_challenge_pick(const struct auth_challenge *list)
{
	const struct auth_challenge *c, *basic = NULL;

	for (c = list; c; c = c->next) {
		if (c->scheme == AUTH_SCHEME_BEARER)
			return c;
		if (c->scheme == AUTH_SCHEME_BASIC && !basic)
			basic = c;
	}
	return basic;
}

int auth_scope_repository(const char *name, const char *actions, char **out)
{
	size_t n;

	*out = NULL;
	if (!name || !actions || !*name || !*actions)
		return -EINVAL;
	if (strpbrk(name, " \t\r\n") || strpbrk(actions, " \t\r\n:"))
		return -EINVAL;
	n = strlen(name);
	if (name[0] == ':' || name[n - 1] == ':')
		return -EINVAL;
	if (asprintf(out, "repository:%s:%s", name, actions) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

int auth_scope_catalog(char **out)
{
	*out = strdup(AUTH_SCOPE_CATALOG);
	return *out ? 0 : -ENOMEM;
}

void auth_scope_clear(struct auth_scope *s)
{
	if (!s)
		return;
	free(s->type);
	free(s->name);
	free(s->actions);
	s->type = s->name = s->actions = NULL;
}

int auth_scope_parse(const char *scope, struct auth_scope *out)
{
	const char *first, *last;

	memset(out, 0, sizeof(*out));
	if (!scope || strpbrk(scope, " \t\r\n"))
		return -EINVAL;
	first = strchr(scope, ':');
	last = strrchr(scope, ':');
	if (!first || first == last || first == scope || last == first + 1)
		return -EINVAL;
	out->type = strndup(scope, (size_t)(first - scope));
	out->name = strndup(first + 1, (size_t)(last - first - 1));
	out->actions = strdup(last + 1);
	if (!out->type || !out->name || !out->actions) {
		auth_scope_clear(out);
		return -ENOMEM;
	}
	return 0;
}

/* Is `action` listed in the comma-separated `list` (or is "*" listed)? */
static bool has_action(const char *list, const char *action, size_t an)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ",");

		if ((n == an && strncmp(p, action, an) == 0) ||
		    (n == 1 && *p == '*'))
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

/* Is one wanted scope (want, length wn) covered by the scope list have? */
static bool covers_one(const char *have, const char *want, size_t wn)
{
	struct auth_scope w, h;
	char *wcopy = strndup(want, wn), *hcopy, *save = NULL, *tok;
	const char *a;
	bool ok = true;

	if (!wcopy || auth_scope_parse(wcopy, &w)) {
		free(wcopy);
		return false;
	}
	free(wcopy);
	hcopy = strdup(have ? have : "");
	if (!hcopy) {
		auth_scope_clear(&w);
		return false;
	}
	/* An empty action list needs only a scope for the same resource. */
	a = w.actions;
	do {
		size_t an = strcspn(a, ",");
		bool found = false;

		strcpy(hcopy, have ? have : "");
		save = NULL;
		for (tok = strtok_r(hcopy, " ", &save); tok && !found;
		     tok = strtok_r(NULL, " ", &save)) {
			if (auth_scope_parse(tok, &h))
				continue;
			if (strcmp(h.type, w.type) == 0 &&
			    strcmp(h.name, w.name) == 0 &&
			    (an == 0 || has_action(h.actions, a, an)))
				found = true;
			auth_scope_clear(&h);
		}
		if (!found)
			ok = false;
		a += an;
		if (*a == ',')
			a++;
	} while (ok && *a);
	free(hcopy);
	auth_scope_clear(&w);
	return ok;
}

bool auth_scope_covers(const char *have, const char *want)
{
	const char *p = want ? want : "";

	while (*p) {
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (n && !covers_one(have, p, n))
			return false;
		p += n;
	}
	return true;
}
