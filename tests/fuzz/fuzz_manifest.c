/*
 * fuzz_manifest — manifest and index JSON (registry/manifest.h).
 *
 * Input: the bytes a registry sends for GET /v2/<repo>/manifests/<ref>.
 * Parsed without a Content-Type and with one of a few (chosen by the input,
 * so a crash reproduces), with and without a `why` buffer. What a success
 * must hold: the exact bytes and their digest, a kind that matches the
 * media type, bounded and typed descriptors, platform strings of
 * [A-Za-z0-9._+-]{1,64}. A failure returns one of the documented errors
 * with a reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "registry/manifest.h"
#include "tests/fuzz/fuzz.h"

static const char *const content_types[] = {
	MEDIA_OCI_MANIFEST,
	MEDIA_OCI_INDEX,
	MEDIA_DOCKER_MANIFEST,
	MEDIA_DOCKER_LIST,
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"application/vnd.oci.image.manifest.v1+json; charset=utf-8",
	" application/vnd.oci.image.index.v1+json",
	"application/json",
	"",
};

static bool platform_ok(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			     "0123456789._+-");

	return n > 0 && n <= 64 && !s[n];
}

static void check_descriptor(const struct descriptor *d, bool index_entry)
{
	size_t i;

	FUZZ_CHECK(d->media_type && strchr(d->media_type, '/'));
	FUZZ_CHECK(strlen(d->media_type) <= 255);
	FUZZ_CHECK(d->size <= MANIFEST_MAX_SIZE);
	FUZZ_CHECK((d->nurls == 0) == (d->urls == NULL));
	for (i = 0; i < d->nurls; i++)
		FUZZ_CHECK(d->urls[i] && *d->urls[i]);
	if (!index_entry) {
		FUZZ_CHECK(!d->os && !d->architecture && !d->variant);
		return;
	}
	FUZZ_CHECK(!d->os == !d->architecture);
	FUZZ_CHECK(!d->variant || d->os);
	FUZZ_CHECK(!d->os || platform_ok(d->os));
	FUZZ_CHECK(!d->architecture || platform_ok(d->architecture));
	FUZZ_CHECK(!d->variant || platform_ok(d->variant));
}

static void check_manifest(const struct manifest *m, const uint8_t *data, size_t size)
{
	struct digest d;
	size_t i;

	FUZZ_CHECK(m->len == size && !memcmp(m->bytes, data, size) && !m->bytes[size]);
	FUZZ_CHECK(digest_of_buf(&d, data, size) == 0 && digest_equal(&d, &m->digest));
	FUZZ_CHECK(m->media_type && m->kind == manifest_kind_of(m->media_type));
	if (m->kind == MANIFEST_IMAGE) {
		check_descriptor(&m->config, false);
		FUZZ_CHECK(!m->manifests && !m->nmanifests);
		FUZZ_CHECK(m->nlayers <= MANIFEST_MAX_ENTRIES);
		FUZZ_CHECK((m->nlayers == 0) == (m->layers == NULL));
		for (i = 0; i < m->nlayers; i++)
			check_descriptor(&m->layers[i], false);
	} else {
		FUZZ_CHECK(m->kind == MANIFEST_INDEX);
		FUZZ_CHECK(!m->layers && !m->nlayers && !m->config.media_type);
		FUZZ_CHECK(m->nmanifests <= MANIFEST_MAX_ENTRIES);
		FUZZ_CHECK((m->nmanifests == 0) == (m->manifests == NULL));
		for (i = 0; i < m->nmanifests; i++)
			check_descriptor(&m->manifests[i], true);
	}
}

/* One parse; the manifest's kind or the error. */
static int parse(const uint8_t *data, size_t size, const char *ct, bool with_why)
{
	struct manifest *m = (struct manifest *)1;
	char why[160];
	int rc;

	rc = manifest_parse_why(data, size, ct, &m, with_why ? why : NULL,
				with_why ? sizeof(why) : 0);
	if (rc) {
		FUZZ_CHECK(!m);
		FUZZ_CHECK(rc == -EFBIG || rc == -ENOTSUP || rc == -EINVAL);
		FUZZ_CHECK(!with_why || (why[0] && memchr(why, '\0', sizeof(why))));
		return rc;
	}
	check_manifest(m, data, size);
	rc = (int)m->kind;
	manifest_free(m);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *ct = content_types[fuzz_hash(FUZZ_HASH_INIT, data, size) %
				       (sizeof(content_types) / sizeof(content_types[0]))];
	struct manifest *m = NULL;
	int b;

	fuzz_setup();
	parse(data, size, NULL, true);
	b = parse(data, size, ct, false);
	/* manifest_parse logs the reason and agrees with manifest_parse_why. */
	FUZZ_CHECK(manifest_parse(data, size, ct, &m) == (b > 0 ? 0 : b));
	manifest_free(m);
	return 0;
}
