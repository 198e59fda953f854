/*
 * manifest_parse: real-world manifests of every supported kind, and hostile
 * input (wrong types, huge numbers, bad digests, missing fields, duplicate
 * keys, deep nesting, not JSON, schema 1, oversize) → a clear errno, never a
 * crash; plus mutation and truncation sweeps over a valid manifest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/digest.h"
#include "registry/manifest.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D4 "sha256:4444444444444444444444444444444444444444444444444444444444444444"

/* Layout as umoci / skopeo write it, with annotations we do not read. */
static const char oci_image[] =
	"{\n  \"schemaVersion\": 2,\n"
	"  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
	"  \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\",\n"
	"    \"digest\": \"" D1 "\", \"size\": 1469},\n"
	"  \"layers\": [\n"
	"    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n"
	"     \"digest\": \"" D2 "\", \"size\": 3623807},\n"
	"    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+zstd\",\n"
	"     \"digest\": \"" D3 "\", \"size\": 9007199254740991,\n"
	"     \"annotations\": {\"org.opencontainers.image.title\": \"x\"}}\n"
	"  ],\n"
	"  \"annotations\": {\"org.opencontainers.image.created\": \"2024-01-01T00:00:00Z\",\n"
	"    \"nested\": {\"deep\": [1, 2, {\"x\": null}]}}\n}\n";

/* buildx output: two platforms and an attestation manifest. */
static const char oci_index[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	"\"manifests\":["
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\","
	"\"size\":1234,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\","
	"\"size\":1235,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\","
	"\"os.features\":[\"x\"]}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\","
	"\"size\":566,\"annotations\":{\"vnd.docker.reference.digest\":\"" D1 "\","
	"\"vnd.docker.reference.type\":\"attestation-manifest\"},"
	"\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D4 "\","
	"\"size\":10}"
	"]}";

static const char docker_image[] =
	"{\n   \"schemaVersion\": 2,\n"
	"   \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
	"   \"config\": {\n      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n"
	"      \"size\": 7023,\n      \"digest\": \"" D1 "\"\n   },\n"
	"   \"layers\": [\n      {\n"
	"         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
	"         \"size\": 32654,\n         \"digest\": \"" D2 "\"\n      }\n   ]\n}";

static const char docker_list[] =
	"{\"schemaVersion\":2,"
	"\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
	"\"manifests\":[{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
	"\"size\":7143,\"digest\":\"" D1 "\",\"platform\":{\"architecture\":\"ppc64le\","
	"\"os\":\"linux\"}},{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
	"\"size\":7682,\"digest\":\"" D2 "\",\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\","
	"\"variant\":\"v7\",\"features\":[\"sse4\"]}},"
	"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
	"\"size\":7682,\"digest\":\"" D3 "\",\"platform\":{\"architecture\":\"amd64\",\"os\":\"windows\","
	"\"os.version\":\"10.0.17763.5329\"}}]}";

/* A Windows image: foreign layers with urls. */
static const char foreign[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
	"\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":1,"
	"\"digest\":\"" D1 "\"},\"layers\":[{\"mediaType\":"
	"\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"size\":1718332879,"
	"\"digest\":\"" D2 "\",\"urls\":[\"https://mcr.microsoft.com/v2/windows/servercore/blobs/"
	D2 "\",\"https://example.com/mirror\"]},{\"mediaType\":"
	"\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":0,\"digest\":\"" D3 "\","
	"\"urls\":[]}]}";

/* manifest_parse without its log line (the sweeps below would print thousands). */
static int quiet_parse(const char *s, size_t len, struct manifest **m)
{
	char why[256];

	return manifest_parse_why(s, len, NULL, m, why, sizeof(why));
}

static struct manifest *parse_ok(const char *s, const char *ct)
{
	struct manifest *m = (struct manifest *)1;
	char why[256];
	int rc = manifest_parse_why(s, strlen(s), ct, &m, why, sizeof(why));

	if (rc)
		fail_msg("unexpected error %d: %s", rc, why);
	assert_non_null(m);
	return m;
}

static int parse_err(const char *s)
{
	struct manifest *m = (struct manifest *)1;
	char why[256];
	int rc = manifest_parse_why(s, strlen(s), NULL, &m, why, sizeof(why));

	if (rc == 0) {
		assert_non_null(m);
		manifest_free(m);
		return 0;
	}
	assert_null(m);
	assert_true(why[0] != '\0'); /* every failure says why */
	return rc;
}

static void assert_digest(const struct digest *d, const char *s)
{
	char buf[DIGEST_STR_SIZE];

	assert_string_equal(digest_format(d, buf), s);
}

static void test_oci_image(void **st)
{
	struct manifest *m = parse_ok(oci_image, "text/plain");
	struct digest want;

	(void)st;
	assert_int_equal(m->kind, MANIFEST_IMAGE);
	assert_string_equal(m->media_type, MEDIA_OCI_MANIFEST); /* JSON beats Content-Type */
	assert_int_equal(m->len, strlen(oci_image));
	assert_memory_equal(m->bytes, oci_image, m->len);
	assert_int_equal(digest_of_buf(&want, oci_image, strlen(oci_image)), 0);
	assert_true(digest_equal(&m->digest, &want));
	assert_string_equal(m->config.media_type, "application/vnd.oci.image.config.v1+json");
	assert_digest(&m->config.digest, D1);
	assert_int_equal(m->config.size, 1469);
	assert_int_equal(m->nlayers, 2);
	assert_string_equal(m->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
	assert_digest(&m->layers[0].digest, D2);
	assert_int_equal(m->layers[0].size, 3623807);
	assert_digest(&m->layers[1].digest, D3);
	assert_true(m->layers[1].size == 9007199254740991ull);
	assert_int_equal(m->layers[0].nurls, 0);
	assert_null(m->layers[0].os);
	assert_null(m->manifests);
	assert_int_equal(m->nmanifests, 0);
	manifest_free(m);
}

static void test_oci_index(void **st)
{
	struct manifest *m = parse_ok(oci_index, MEDIA_OCI_INDEX);

	(void)st;
	assert_int_equal(m->kind, MANIFEST_INDEX);
	assert_int_equal(m->nmanifests, 4);
	assert_int_equal(m->nlayers, 0);
	assert_null(m->config.media_type);
	assert_string_equal(m->manifests[0].os, "linux");
	assert_string_equal(m->manifests[0].architecture, "amd64");
	assert_null(m->manifests[0].variant);
	assert_int_equal(m->manifests[0].size, 1234);
	assert_string_equal(m->manifests[1].architecture, "arm64");
	assert_string_equal(m->manifests[1].variant, "v8");
	assert_digest(&m->manifests[1].digest, D2);
	/* The attestation entry is parsed as it is; skipping it is fs/'s choice. */
	assert_string_equal(m->manifests[2].os, "unknown");
	assert_string_equal(m->manifests[2].architecture, "unknown");
	/* No platform at all. */
	assert_null(m->manifests[3].os);
	assert_null(m->manifests[3].architecture);
	manifest_free(m);
}

static void test_docker(void **st)
{
	struct manifest *m = parse_ok(docker_image, NULL);

	(void)st;
	assert_int_equal(m->kind, MANIFEST_IMAGE);
	assert_string_equal(m->media_type, MEDIA_DOCKER_MANIFEST);
	assert_string_equal(m->config.media_type, "application/vnd.docker.container.image.v1+json");
	assert_int_equal(m->config.size, 7023);
	assert_int_equal(m->nlayers, 1);
	assert_int_equal(m->layers[0].size, 32654);
	manifest_free(m);

	m = parse_ok(docker_list, NULL);
	assert_int_equal(m->kind, MANIFEST_INDEX);
	assert_string_equal(m->media_type, MEDIA_DOCKER_LIST);
	assert_int_equal(m->nmanifests, 3);
	assert_string_equal(m->manifests[0].architecture, "ppc64le");
	assert_string_equal(m->manifests[1].variant, "v7");
	assert_string_equal(m->manifests[2].os, "windows");
	manifest_free(m);
}

static void test_foreign(void **st)
{
	struct manifest *m = parse_ok(foreign, NULL);

	(void)st;
	assert_int_equal(m->nlayers, 2);
	assert_int_equal(m->layers[0].nurls, 2);
	assert_string_equal(m->layers[0].urls[0],
			    "https://mcr.microsoft.com/v2/windows/servercore/blobs/" D2);
	assert_string_equal(m->layers[0].urls[1], "https://example.com/mirror");
	assert_int_equal(m->layers[0].size, 1718332879);
	assert_int_equal(m->layers[1].nurls, 0);
	assert_int_equal(m->layers[1].size, 0);
	manifest_free(m);
}

static void test_media_type_sources(void **st)
{
	static const char no_mt_image[] =
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1
		"\",\"size\":1},\"layers\":[]}";
	static const char no_mt_index[] = "{\"schemaVersion\":2,\"manifests\":[]}";
	struct manifest *m;

	(void)st;
	/* Content-Type, parameters dropped. */
	m = parse_ok(no_mt_image, " application/vnd.docker.distribution.manifest.v2+json; charset=utf-8");
	assert_string_equal(m->media_type, MEDIA_DOCKER_MANIFEST);
	assert_int_equal(m->nlayers, 0);
	assert_null(m->layers);
	manifest_free(m);
	/* Neither: the shape. */
	m = parse_ok(no_mt_image, NULL);
	assert_string_equal(m->media_type, MEDIA_OCI_MANIFEST);
	manifest_free(m);
	m = parse_ok(no_mt_index, "");
	assert_int_equal(m->kind, MANIFEST_INDEX);
	assert_string_equal(m->media_type, MEDIA_OCI_INDEX);
	assert_int_equal(m->nmanifests, 0);
	manifest_free(m);
	/* A Content-Type that says index over image-shaped JSON: an empty "manifests" is missing. */
	assert_int_equal(parse_err("{\"schemaVersion\":2}"), -EINVAL);
	assert_int_equal(manifest_kind_of(MEDIA_DOCKER_LIST), MANIFEST_INDEX);
	assert_int_equal(manifest_kind_of(MEDIA_OCI_MANIFEST), MANIFEST_IMAGE);
	assert_int_equal(manifest_kind_of("application/json"), 0);
	assert_int_equal(manifest_kind_of(NULL), 0);
}

/* An image manifest with one layer whose descriptor is `layer` (raw JSON). */
static int with_layer(const char *layer)
{
	struct buf b = BUF_INIT;
	int rc;

	assert_int_equal(buf_addf(&b,
				  "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST "\","
				  "\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1},"
				  "\"layers\":[%s]}",
				  layer),
			 0);
	rc = parse_err(b.data);
	buf_release(&b);
	return rc;
}

/* An index with one entry whose platform is `plat` (raw JSON). */
static int with_platform(const char *plat)
{
	struct buf b = BUF_INIT;
	int rc;

	assert_int_equal(buf_addf(&b,
				  "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_INDEX "\","
				  "\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1,"
				  "\"platform\":%s}]}",
				  plat),
			 0);
	rc = parse_err(b.data);
	buf_release(&b);
	return rc;
}

#define L(extra) "{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":5" extra "}"

static void test_hostile_fields(void **st)
{
	(void)st;
	assert_int_equal(with_layer(L("")), 0);
	/* Sizes. */
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":\"5\"}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":-1}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":1.5}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":1e300}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":1e999}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":9007199254740992}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":18446744073709551617}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":true}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":null}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\"}"), -EINVAL);
	/* Digests. */
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"size\":5}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":5,\"size\":5}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"sha256:ABCD\",\"size\":5}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"sha256:"
				    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"size\":5}"),
			 -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"sha512:"
				    "11111111111111111111111111111111111111111111111111111111111111111111"
				    "111111111111111111111111111111111111111111111111111111111111\",\"size\":5}"),
			 -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 " \",\"size\":5}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\\u0000x\",\"size\":5}"), -EINVAL);
	/* Media types. */
	assert_int_equal(with_layer("{\"digest\":\"" D2 "\",\"size\":5}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":7,\"digest\":\"" D2 "\",\"size\":5}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"\",\"digest\":\"" D2 "\",\"size\":5}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"a/b\\n\",\"digest\":\"" D2 "\",\"size\":5}"), -EINVAL);
	assert_int_equal(with_layer("{\"mediaType\":\"noslash\",\"digest\":\"" D2 "\",\"size\":5}"), -EINVAL);
	/* urls. */
	assert_int_equal(with_layer(L(",\"urls\":\"http://x\"")), -EINVAL);
	assert_int_equal(with_layer(L(",\"urls\":[1]")), -EINVAL);
	assert_int_equal(with_layer(L(",\"urls\":[\"has space\"]")), -EINVAL);
	assert_int_equal(with_layer(L(",\"urls\":null")), 0);
	/* Descriptor shapes and duplicate keys. */
	assert_int_equal(with_layer("5"), -EINVAL);
	assert_int_equal(with_layer("[]"), -EINVAL);
	assert_int_equal(with_layer(L(",\"size\":6")), -EINVAL);
	assert_int_equal(with_layer(L(",\"digest\":\"" D3 "\"")), -EINVAL);
	/* Platforms. */
	assert_int_equal(with_platform("{\"os\":\"linux\",\"architecture\":\"amd64\"}"), 0);
	assert_int_equal(with_platform("null"), 0);
	assert_int_equal(with_platform("\"linux/amd64\""), -EINVAL);
	assert_int_equal(with_platform("{\"architecture\":\"amd64\"}"), -EINVAL);
	assert_int_equal(with_platform("{\"os\":\"linux\"}"), -EINVAL);
	assert_int_equal(with_platform("{\"os\":\"../x\",\"architecture\":\"amd64\"}"), -EINVAL);
	assert_int_equal(with_platform("{\"os\":\"li/nux\",\"architecture\":\"amd64\"}"), -EINVAL);
	assert_int_equal(with_platform("{\"os\":\"linux\",\"architecture\":3}"), -EINVAL);
	assert_int_equal(with_platform("{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"\"}"), -EINVAL);
	assert_int_equal(with_platform("{\"os\":\"\",\"architecture\":\"arm\"}"), -EINVAL);
	assert_int_equal(with_platform("{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\",\"variant\":\"v8\"}"),
			 -EINVAL);
}

static void test_hostile_top(void **st)
{
	static const char *const not_json[] = {
		"", " ", "hello", "{", "}", "[]", "null", "\"str\"", "42", "{\"a\":}",
		"{\"schemaVersion\":2,\"manifests\":[]} trailing",
		"{\"schemaVersion\":2,\"manifests\":[]}{}",
	};

	(void)st;
	for (size_t i = 0; i < sizeof(not_json) / sizeof(*not_json); i++)
		assert_int_equal(parse_err(not_json[i]), -EINVAL);
	/* A NUL inside. */
	{
		static const char nul[] = "{\"schemaVersion\":2,\"manifests\":[]}\0junk";
		struct manifest *m = (struct manifest *)1;

		assert_int_equal(manifest_parse(nul, sizeof(nul) - 1, NULL, &m), -EINVAL);
		assert_null(m);
	}
	/* Schema versions. */
	assert_int_equal(parse_err("{\"manifests\":[]}"), -EINVAL);
	assert_int_equal(parse_err("{\"schemaVersion\":\"2\",\"manifests\":[]}"), -EINVAL);
	assert_int_equal(parse_err("{\"schemaVersion\":1,\"name\":\"x\",\"tag\":\"y\",\"fsLayers\":[]}"),
			 -ENOTSUP);
	assert_int_equal(parse_err("{\"schemaVersion\":3,\"manifests\":[]}"), -ENOTSUP);
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":"
				   "\"application/vnd.docker.distribution.manifest.v1+prettyjws\"}"),
			 -ENOTSUP);
	/* Unknown media types: artifacts, plain JSON. */
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":"
				   "\"application/vnd.oci.artifact.manifest.v1+json\",\"blobs\":[]}"),
			 -ENOTSUP);
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":\"application/json\"}"), -ENOTSUP);
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":[],\"manifests\":[]}"), -EINVAL);
	/* Missing and mistyped members. */
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_INDEX "\"}"), -EINVAL);
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_INDEX
				   "\",\"manifests\":{}}"),
			 -EINVAL);
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST
				   "\",\"layers\":[]}"),
			 -EINVAL);
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST
				   "\",\"config\":[],\"layers\":[]}"),
			 -EINVAL);
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST
				   "\",\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1
				   "\",\"size\":1},\"layers\":null}"),
			 -EINVAL);
	/* Duplicate top-level keys: two parsers must not see two manifests. */
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_INDEX
				   "\",\"manifests\":[],\"manifests\":[]}"),
			 -EINVAL);
	assert_int_equal(parse_err("{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_INDEX
				   "\",\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"manifests\":[]}"),
			 -EINVAL);
}

static void test_deep_and_big(void **st)
{
	struct buf b = BUF_INIT;
	struct manifest *m = NULL;
	char *big;
	size_t i;

	(void)st;
	/* Deep nesting in an ignored member and at the top: an error, not a stack overflow. */
	assert_int_equal(buf_adds(&b, "{\"schemaVersion\":2,\"manifests\":[],\"annotations\":"), 0);
	for (i = 0; i < 200000; i++)
		assert_int_equal(buf_addch(&b, '['), 0);
	assert_int_equal(parse_err(b.data), -EINVAL);
	buf_reset(&b);
	for (i = 0; i < 100000; i++)
		assert_int_equal(buf_adds(&b, "{\"a\":"), 0);
	assert_int_equal(parse_err(b.data), -EINVAL);

	/* Over 4 MiB: refused before parsing. */
	big = malloc(MANIFEST_MAX_BYTES + 2);
	assert_non_null(big);
	memset(big, ' ', MANIFEST_MAX_BYTES + 1);
	memcpy(big, "{\"schemaVersion\":2,\"manifests\":[]}", 34); /* no NUL */
	assert_int_equal(manifest_parse(big, MANIFEST_MAX_BYTES + 1, NULL, &m), -EFBIG);
	assert_null(m);
	/* Exactly 4 MiB of valid JSON (trailing blanks) is fine. */
	assert_int_equal(manifest_parse(big, MANIFEST_MAX_BYTES, NULL, &m), 0);
	assert_int_equal(m->len, MANIFEST_MAX_BYTES);
	manifest_free(m);
	free(big);

	/* 10,000 layers are fine, 10,001 are not. */
	for (int n = MANIFEST_MAX_ENTRIES; n <= MANIFEST_MAX_ENTRIES + 1; n++) {
		buf_reset(&b);
		assert_int_equal(buf_adds(&b, "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST
					      "\",\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1
					      "\",\"size\":1},\"layers\":["),
				 0);
		for (int k = 0; k < n; k++)
			assert_int_equal(buf_addf(&b, "%s{\"mediaType\":\"a/b\",\"digest\":\"" D2
						      "\",\"size\":%d}",
						  k ? "," : "", k),
					 0);
		assert_int_equal(buf_adds(&b, "]}"), 0);
		m = NULL;
		if (n == MANIFEST_MAX_ENTRIES) {
			assert_int_equal(manifest_parse(b.data, b.len, NULL, &m), 0);
			assert_int_equal(m->nlayers, MANIFEST_MAX_ENTRIES);
			assert_int_equal(m->layers[9999].size, 9999);
			manifest_free(m);
		} else {
			assert_int_equal(manifest_parse(b.data, b.len, NULL, &m), -EFBIG);
			assert_null(m);
		}
	}
	buf_release(&b);
	manifest_free(NULL);
}

/* Every prefix and thousands of byte mutations of real manifests: no crash, a known answer. */
static void test_mutations(void **st)
{
	const char *const samples[] = { oci_image, oci_index, docker_list, foreign };
	unsigned seed = 12345;
	char *copy;

	(void)st;
	for (size_t s = 0; s < sizeof(samples) / sizeof(*samples); s++) {
		size_t len = strlen(samples[s]);

		copy = malloc(len);
		assert_non_null(copy);
		for (size_t cut = 0; cut < len; cut++) {
			struct manifest *m = NULL;
			int rc = quiet_parse(samples[s], cut, &m);

			/* Only whitespace may be cut off a valid manifest. */
			if (rc == 0) {
				assert_int_equal(strspn(samples[s] + cut, " \n"), len - cut);
				manifest_free(m);
			} else {
				assert_true(rc == -EINVAL || rc == -ENOTSUP);
				assert_null(m);
			}
		}
		for (int i = 0; i < 3000; i++) {
			struct manifest *m = NULL;
			int rc, flips = 1 + (int)(rand_r(&seed) % 3);

			memcpy(copy, samples[s], len);
			while (flips--)
				copy[rand_r(&seed) % len] = (char)(rand_r(&seed) & 0xff);
			rc = quiet_parse(copy, len, &m);
			assert_true(rc == 0 || rc == -EINVAL || rc == -ENOTSUP);
			if (rc == 0) {
				assert_non_null(m);
				assert_true(m->kind == MANIFEST_IMAGE || m->kind == MANIFEST_INDEX);
				for (size_t k = 0; k < m->nmanifests; k++)
					if (m->manifests[k].os)
						assert_non_null(m->manifests[k].architecture);
				manifest_free(m);
			} else {
				assert_null(m);
			}
		}
		free(copy);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_image),
		cmocka_unit_test(test_oci_index),
		cmocka_unit_test(test_docker),
		cmocka_unit_test(test_foreign),
		cmocka_unit_test(test_media_type_sources),
		cmocka_unit_test(test_hostile_fields),
		cmocka_unit_test(test_hostile_top),
		cmocka_unit_test(test_deep_and_big),
		cmocka_unit_test(test_mutations),
	};

	log_init(LOG_LVL_ERROR, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
