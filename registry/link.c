/*
 * link — see link.h. url_split() and url_resolve() know just enough of
 * RFC 3986 for what registries send: absolute http(s) URLs, absolute and
 * relative paths, query-only references.
 */
#include "registry/link.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"

int url_split(const char *url, char **origin, char **pathq)
{
	const char *p, *slash;
	size_t olen;

	*origin = *pathq = NULL;
	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return -EINVAL;
	if (!*p || *p == '/')
		return -EINVAL;
	slash = p + strcspn(p, "/?#");
	olen = (size_t)(slash - url);
	*origin = strndup(url, olen);
	*pathq = strdup(*slash == '/' ? slash : "/");
	if (*slash == '?') {
		free(*pathq);
		*pathq = malloc(strlen(slash) + 2);
		if (*pathq) {
			(*pathq)[0] = '/';
			strcpy(*pathq + 1, slash);
		}
	}
	if (!*origin || !*pathq) {
		free(*origin);
		free(*pathq);
		*origin = *pathq = NULL;
		return -ENOMEM;
	}
	return 0;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* Does the parameter list [p, end) carry rel=next (quoted or not, in a list)? */
static bool has_rel_next(const char *p, const char *end)
{
	while (p < end) {
		const char *name, *val;
		size_t nlen, vlen;
		bool quoted = false;

		while (p < end && (is_ws(*p) || *p == ';'))
			p++;
		name = p;
		while (p < end && *p != '=' && *p != ';' && !is_ws(*p))
			p++;
		nlen = (size_t)(p - name);
		while (p < end && is_ws(*p))
			p++;
		if (p >= end || *p != '=') {
			continue;
		}
		p++;
		while (p < end && is_ws(*p))
			p++;
		if (p < end && *p == '"') {
			quoted = true;
			p++;
		}
		val = p;
		if (quoted) {
			while (p < end && *p != '"')
				p += (*p == '\\' && p + 1 < end) ? 2 : 1;
		} else {
			while (p < end && *p != ';' && !is_ws(*p))
				p++;
		}
		vlen = (size_t)(p - val);
		if (quoted && p < end)
			p++;
		if (nlen == 3 && strncasecmp(name, "rel", 3) == 0) {
			/* A space-separated list of relation types. */
			const char *v = val, *vend = val + vlen;

			while (v < vend) {
				const char *w;

				while (v < vend && is_ws(*v))
					v++;
				w = v;
				while (v < vend && !is_ws(*v))
					v++;
				if (v - w == 4 && strncasecmp(w, "next", 4) == 0)
					return true;
			}
		}
	}
	return false;
}

/* Length of the scheme prefix ("http://" 7, "https://" 8), or 0. */
static size_t scheme_len(const char *u)
{
	if (strncasecmp(u, "http://", 7) == 0)
		return 7;
	if (strncasecmp(u, "https://", 8) == 0)
		return 8;
	return 0;
}

int url_resolve(const char *base, const char *r, char **out)
{
	char *origin = NULL, *bpath = NULL;
	struct buf b = BUF_INIT;
	size_t sl = scheme_len(base);
	int rc;

	*out = NULL;
	for (const char *p = r; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
			return -EINVAL;
	rc = url_split(base, &origin, &bpath);
	if (rc)
		goto out;
	if (scheme_len(r)) {
		char *ro = NULL, *rp = NULL;

		/* Absolute: validated by splitting it. */
		rc = url_split(r, &ro, &rp);
		free(ro);
		free(rp);
		if (!rc)
			rc = buf_adds(&b, r);
	} else if (strstr(r, "://") && strcspn(r, "/?#") > (size_t)(strstr(r, "://") - r)) {
		rc = -EINVAL; /* another scheme */
	} else if (r[0] == '/' && r[1] == '/') {
		/* Network-path reference: another host, base's scheme. */
		rc = buf_add(&b, base, sl - 2);
		if (!rc)
			rc = buf_adds(&b, r);
		if (!rc && (b.len <= sl || b.data[sl] == '/' || b.data[sl] == '?'))
			rc = -EINVAL;
	} else if (r[0] == '/') {
		rc = buf_addf(&b, "%s%s", origin, r);
	} else if (r[0] == '?') {
		size_t plen = strcspn(bpath, "?");

		rc = buf_addf(&b, "%s%.*s%s", origin, (int)plen, bpath, r);
	} else if (r[0] == '\0') {
		rc = buf_adds(&b, base);
	} else {
		/* Merge with the base path's directory. */
		size_t plen = strcspn(bpath, "?");
		size_t dir = plen;

		while (dir > 0 && bpath[dir - 1] != '/')
			dir--;
		rc = buf_addf(&b, "%s%.*s%s", origin, (int)dir, bpath, r);
	}
	if (!rc)
		*out = buf_detach(&b, NULL);
out:
	buf_release(&b);
	free(origin);
	free(bpath);
	return rc;
}

/* The parts of an origin, normalised: scheme, host (lower case), port. */
struct origin {
	bool https;
	char host[256];
	unsigned long port;
};

static int origin_parse(const char *url, struct origin *o)
{
	size_t sl = scheme_len(url), alen, hlen;
	const char *auth, *at, *host, *end, *colon = NULL;

	if (!sl)
		return -1;
	o->https = sl == 8;
	auth = url + sl;
	alen = strcspn(auth, "/?#");
	at = memrchr(auth, '@', alen);
	host = at ? at + 1 : auth;
	end = auth + alen;
	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));

		if (!rb)
			return -1;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -1;
			colon = rb + 1;
		}
		hlen = (size_t)(rb + 1 - host);
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		hlen = (size_t)((colon ? colon : end) - host);
	}
	if (!hlen || hlen >= sizeof(o->host))
		return -1;
	for (size_t i = 0; i < hlen; i++)
		o->host[i] = (char)tolower((unsigned char)host[i]);
	o->host[hlen] = '\0';
	o->port = o->https ? 443 : 80;
	if (colon && colon + 1 < end) {
		/* Digits only: strtoul alone would take "+5000", " 5000", "-1". */
		if (end - (colon + 1) > 5 ||
		    strspn(colon + 1, "0123456789") < (size_t)(end - (colon + 1)))
			return -1;
		o->port = strtoul(colon + 1, NULL, 10);
		if (o->port == 0 || o->port > 65535)
			return -1;
	}
	return 0;
}

bool url_same_origin(const char *a, const char *b)
{
	struct origin x, y;

	if (origin_parse(a, &x) || origin_parse(b, &y))
		return false;
	return x.https == y.https && x.port == y.port && strcmp(x.host, y.host) == 0;
}

bool url_is_https(const char *url)
{
	return scheme_len(url) == 8;
}

bool url_is_loopback(const char *url)
{
	struct origin o;

	if (origin_parse(url, &o))
		return false;
	return strcmp(o.host, "localhost") == 0 || strcmp(o.host, "[::1]") == 0 ||
	       (strncmp(o.host, "127.", 4) == 0 &&
		strspn(o.host, "0123456789.") == strlen(o.host));
}

void url_for_log(const char *url, char *out, size_t outsz)
{
	size_t n = strcspn(url, "?#");
	const char *mark = url[n] ? "?[query]" : "";

	if (!outsz)
		return;
	/* Cut the path first so that the mark always shows. */
	if (n + strlen(mark) >= outsz)
		n = outsz - 1 > strlen(mark) ? outsz - 1 - strlen(mark) : 0;
	snprintf(out, outsz, "%.*s%s", (int)n, url, mark); /* sized above: cannot truncate */
}

/* Resolve a Link target; another origin is refused (-EPERM). */
static int resolve_next(const char *ref, size_t reflen, const char *base, char **out)
{
	char *r = strndup(ref, reflen);
	int rc;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	rc = url_resolve(base, r, out);
	if (!rc && !url_same_origin(*out, base)) {
		free(*out);
		*out = NULL;
		rc = -EPERM;
	}
	free(r);
	return rc;
}

int link_next(const char *header, const char *base_url, char **next)
{
	const char *p = header;

	*next = NULL;
	if (!header)
		return 0;
	while (*p) {
		const char *lt, *gt, *params, *pend;

		while (is_ws(*p) || *p == ',')
			p++;
		if (!*p)
			break;
		if (*p != '<')
			return -EINVAL;
		lt = p + 1;
		gt = strchr(lt, '>');
		if (!gt)
			return -EINVAL;
		params = gt + 1;
		/* Parameters run to the next comma outside quotes. */
		pend = params;
		while (*pend && *pend != ',') {
			if (*pend == '"') {
				pend++;
				while (*pend && *pend != '"')
					pend += (*pend == '\\' && pend[1]) ? 2 : 1;
				if (*pend)
					pend++;
			} else {
				pend++;
			}
		}
		if (has_rel_next(params, pend))
			return resolve_next(lt, (size_t)(gt - lt), base_url, next);
		p = pend;
	}
	return 0;
}
