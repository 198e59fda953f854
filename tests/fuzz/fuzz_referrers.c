/*
 * fuzz_referrers — the referrers index (registry/referrers.h): a page of
 * GET /v2/<repo>/referrers/<digest>, or the tag schema's index, and a
 * referrer's own manifest.
 *
 * Input: the bytes a registry sends. Parsed into an empty list, with and
 * without a `why` buffer (the two agree), and again after the first parse's
 * referrers (pages add up: the count only grows, never past REFERRERS_MAX).
 * What a success must hold: every referrer a sha256 digest, a media type
 * with a '/', annotations within REFERRER_MAX_ANNOTATIONS with keys of 1 to
 * REFERRER_MAX_KEY bytes and values of at most REFERRER_MAX_VALUE, all
 * NUL-terminated strings. A failure returns one of the documented errors
 * with a reason. referrer_from_manifest holds to the same bounds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "registry/referrers.h"
#include "tests/fuzz/fuzz.h"

static void check_annotations(const struct referrer *r)
{
	FUZZ_CHECK(r->nannotations <= REFERRER_MAX_ANNOTATIONS);
	FUZZ_CHECK((r->nannotations == 0) || r->annotations);
	for (size_t i = 0; i < r->nannotations; i++) {
		const struct annotation *a = &r->annotations[i];
		size_t k;

		FUZZ_CHECK(a->key && a->value);
		k = strlen(a->key);
		FUZZ_CHECK(k >= 1 && k <= REFERRER_MAX_KEY);
		FUZZ_CHECK(strlen(a->value) <= REFERRER_MAX_VALUE);
	}
}

static void check_list(const struct referrers *l)
{
	char ds[DIGEST_STR_SIZE];
	struct digest d;

	FUZZ_CHECK(l->n <= REFERRERS_MAX && l->n <= l->cap);
	for (size_t i = 0; i < l->n; i++) {
		const struct referrer *r = &l->v[i];

		FUZZ_CHECK(digest_parse(&d, digest_format(&r->digest, ds)) == 0);
		FUZZ_CHECK(digest_equal(&d, &r->digest));
		FUZZ_CHECK(r->media_type && strchr(r->media_type, '/'));
		FUZZ_CHECK(!r->artifact_type || (strlen(r->artifact_type) <= 255 && strchr(r->artifact_type, '/')));
		check_annotations(r);
	}
}

static int parse(const uint8_t *data, size_t size, struct referrers *l, bool with_why)
{
	char why[160];
	size_t before = l->n;
	int rc;

	why[0] = 'x';
	rc = referrers_parse(data, size, l, with_why ? why : NULL, with_why ? sizeof(why) : 0);
	if (rc) {
		FUZZ_CHECK(rc == -EINVAL || rc == -EFBIG || rc == -ENOMEM);
		FUZZ_CHECK(!with_why || (why[0] && memchr(why, '\0', sizeof(why))));
	}
	FUZZ_CHECK(l->n >= before);
	check_list(l);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct referrers a = REFERRERS_INIT, b = REFERRERS_INIT;
	struct referrer one;
	char why[160];
	int ra, rb, rc;

	fuzz_setup();
	ra = parse(data, size, &a, true);
	rb = parse(data, size, &b, false);
	FUZZ_CHECK(ra == rb);
	FUZZ_CHECK(ra || a.n == b.n);
	if (!ra) /* a second page with the same referrers */
		(void)parse(data, size, &a, true);
	referrers_clear(&a);
	referrers_clear(&b);
	FUZZ_CHECK(a.n == 0 && b.n == 0);

	memset(&one, 0, sizeof(one));
	rc = referrer_from_manifest(data, size, &one, why, sizeof(why));
	if (rc) {
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM || rc == -EFBIG);
		FUZZ_CHECK(why[0]);
	} else {
		FUZZ_CHECK(!one.artifact_type || (*one.artifact_type && strchr(one.artifact_type, '/')));
		check_annotations(&one);
	}
	referrer_release(&one);
	return 0;
}
