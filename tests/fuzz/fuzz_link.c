/*
 * fuzz_link — Link headers and URL splitting (registry/link.h).
 *
 * Input: a Link header value (cut at a NUL byte, as a header line is).
 * link_next() against a few base URLs: the result is 0 (with or without a
 * next URL), -EINVAL or -EPERM, and a next URL never leaves the base's
 * origin (same scheme, host and port: pagination cannot be redirected to
 * another host). url_split() of the input: an origin that is a prefix of
 * it and a path starting with '/'.
 */
#include <errno.h>
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
	FUZZ_CHECK(!strcasecmp(o, bo));
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
