/*
 * fuzz_link — Link headers and URL splitting (registry/link.h).
 *
 * Input: a Link header value (cut at a NUL byte, as a header line is).
 * link_next() against a few base URLs: the result is 0 (with or without a
 * next URL), -EINVAL or -EPERM, and a next URL never leaves the base's
 * origin (same scheme, host and port, as the oracle's own norm_origin reads
 * them: pagination cannot be redirected to another host). url_split() of the input: an origin that is a prefix of
 * it and a path starting with '/'.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry/link.h"
#include "tests/fuzz/fuzz.h"

static const char *const bases[] = {
	"https://reg.example:5000/v2/_catalog?n=100",
	"http://127.0.0.1:5000/v2/ns/deep/repo/tags/list",
	"https://myreg.azurecr.io/acr/v1/repo/_tags?orderby=timedesc",
};

/*
 * The oracle's own reading of an origin from url_split ("scheme://[user@]host[:port]"):
 * lower case, without user info, the port as a number with the scheme's default filled
 * in. A port that is not 1-5 digits gives "" (no origin).
 */
static void norm_origin(const char *o, char *out, size_t cap)
{
	const char *rest = strstr(o, "://") + 3, *at = strrchr(rest, '@'), *host, *colon;
	bool https = !strncasecmp(o, "https", 5);
	unsigned long port = https ? 443 : 80;
	size_t hlen, i;

	host = at ? at + 1 : rest;
	colon = *host == '[' ? strchr(host, ']') : host;
	colon = colon ? strchr(colon, ':') : NULL;
	hlen = colon ? (size_t)(colon - host) : strlen(host);
	if (colon && colon[1]) {
		if (strlen(colon + 1) > 5 || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
			out[0] = '\0';
			return;
		}
		port = strtoul(colon + 1, NULL, 10);
	}
	if (hlen >= cap - 16)
		hlen = cap - 16;
	for (i = 0; i < hlen; i++)
		out[i] = (char)tolower((unsigned char)host[i]);
	snprintf(out + hlen, cap - hlen, "|%d|%lu", https, port);
}

static void check_next(const char *header, const char *base)
{
	char *next = NULL, *o = NULL, *pq = NULL, *bo = NULL, *bpq = NULL;
	int rc = link_next(header, base, &next);

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EPERM);
	if (rc || !next) {
		FUZZ_CHECK(!next);
		return;
	}
	FUZZ_CHECK(url_split(base, &bo, &bpq) == 0);
	FUZZ_CHECK(url_split(next, &o, &pq) == 0);
	{
		char no[320], nb[320];

		norm_origin(o, no, sizeof(no));
		norm_origin(bo, nb, sizeof(nb));
		FUZZ_CHECK(no[0] && !strcmp(no, nb));
	}
	FUZZ_CHECK(pq[0] == '/');
	free(next);
	free(o);
	free(pq);
	free(bo);
	free(bpq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *o = NULL, *pq = NULL;
	size_t i;

	fuzz_setup();
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	for (i = 0; i < sizeof(bases) / sizeof(bases[0]); i++)
		check_next(s, bases[i]);
	if (url_split(s, &o, &pq) == 0) {
		FUZZ_CHECK(!strncmp(s, o, strlen(o)));
		FUZZ_CHECK(pq[0] == '/');
		free(o);
		free(pq);
	} else {
		FUZZ_CHECK(!o && !pq);
	}
	free(s);
	return 0;
}
