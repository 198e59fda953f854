#include "registry/link.h"

#include <errno.h>
#include <stdbool.h>
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

static int resolve(const char *ref, size_t reflen, const char *base, char **out)
{
	char *origin = NULL, *bpath = NULL, *rorigin = NULL, *rpath = NULL;
	struct buf b = BUF_INIT;
	char *r = strndup(ref, reflen);
	int rc;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	rc = url_split(base, &origin, &bpath);
	if (rc)
		goto out;
	if (strncasecmp(r, "http://", 7) == 0 || strncasecmp(r, "https://", 8) == 0) {
		rc = url_split(r, &rorigin, &rpath);
		if (rc)
			goto out;
		if (strcasecmp(rorigin, origin) != 0) {
			rc = -EPERM;
			goto out;
		}
		rc = buf_addf(&b, "%s%s", origin, rpath);
	} else if (r[0] == '/' && r[1] == '/') {
		rc = -EPERM; /* network-path reference: another host */
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
	free(r);
	free(origin);
	free(bpath);
	free(rorigin);
	free(rpath);
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
			return resolve(lt, (size_t)(gt - lt), base_url, next);
		p = pend;
	}
	return 0;
}
