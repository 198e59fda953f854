/*
 * registry/referrers: the referrers index parser (API pages and the tag
 * schema's index) on real-shaped answers and hostile ones (wrong types, bad
 * digests, duplicate keys, bounds) → a clear errno, never a crash;
 * referrer_from_manifest (artifactType, else the config's media type);
 * and fs/view's referrers cache over a fake source (one fetch per TTL,
 * the registry's order, each digest once, errors not kept).
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
#include "common/digest.h"
#include "fs/dcache.h"
#include "fs/view.h"
#include "registry/referrers.h"
#include "registry/registry.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

#define DESC(d, extra)                                                                         \
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" d          \
	"\",\"size\":812" extra "}"

/* What the OCI 1.1 API answers (and what the sha256-<hex> tag holds). */
static const char page[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	"\"manifests\":[" DESC(D2, ",\"artifactType\":\"application/vnd.cncf.notary.signature\","
				   "\"annotations\":{\"io.cncf.notary.x509chain.thumbprint#S256\":"
				   "\"[\\\"ab\\\"]\",\"org.opencontainers.image.created\":"
				   "\"2026-12-01T00:00:00Z\"}") ","
	DESC(D1, ",\"artifactType\":\"application/spdx+json\"") "]}";

static int parse(const char *json, struct referrers *l)
{
	char why[256];
	int rc = referrers_parse(json, strlen(json), l, why, sizeof(why));

	if (rc)
		assert_true(why[0] != '\0'); /* every failure says why */
	return rc;
}

static void test_page(void **state)
{
	struct referrers l = REFERRERS_INIT;
	char ds[DIGEST_STR_SIZE];

	(void)state;
	assert_int_equal(parse(page, &l), 0);
	assert_int_equal(l.n, 2);
	/* The registry's order, not sorted. */
	assert_string_equal(digest_format(&l.v[0].digest, ds), D2);
	assert_string_equal(digest_format(&l.v[1].digest, ds), D1);
	assert_string_equal(l.v[0].media_type, "application/vnd.oci.image.manifest.v1+json");
	assert_int_equal(l.v[0].size, 812);
	assert_string_equal(l.v[0].artifact_type, "application/vnd.cncf.notary.signature");
	assert_int_equal(l.v[0].nannotations, 2);
	assert_string_equal(l.v[0].annotations[0].key, "io.cncf.notary.x509chain.thumbprint#S256");
	assert_string_equal(l.v[0].annotations[0].value, "[\"ab\"]");
	assert_string_equal(l.v[0].annotations[1].key, "org.opencontainers.image.created");
	assert_int_equal(l.v[1].nannotations, 0);
	assert_string_equal(l.v[1].artifact_type, "application/spdx+json");
	/* A second page appends. */
	assert_int_equal(parse("{\"manifests\":[" DESC(D3, "") "]}", &l), 0);
	assert_int_equal(l.n, 3);
	assert_null(l.v[2].artifact_type);
	referrers_clear(&l);
	assert_int_equal(l.n, 0);
	/* No referrers. */
	assert_int_equal(parse("{\"schemaVersion\":2,\"manifests\":[]}", &l), 0);
	assert_int_equal(l.n, 0);
	referrers_clear(&l);
}

static void test_hostile(void **state)
{
	static const struct {
		const char *json;
		int err;
	} cases[] = {
		{ "", -EINVAL },
		{ "not json", -EINVAL },
		{ "[]", -EINVAL },
		{ "{}", -EINVAL },
		{ "{\"manifests\":{}}", -EINVAL },
		{ "{\"manifests\":[1]}", -EINVAL },
		{ "{\"manifests\":[],\"manifests\":[]}", -EINVAL },
		{ "{\"manifests\":[{\"digest\":\"" D1 "\",\"size\":1}]}", -EINVAL },
		{ "{\"manifests\":[" DESC("sha256:12", "") "]}", -EINVAL },
		{ "{\"manifests\":[" DESC("sha512:" D1, "") "]}", -EINVAL },
		{ "{\"manifests\":[" DESC(D1, ",\"size\":2") "]}", -EINVAL },
		{ "{\"manifests\":[{\"mediaType\":\"x/y\",\"digest\":\"" D1 "\",\"size\":-1}]}",
		  -EINVAL },
		{ "{\"manifests\":[{\"mediaType\":\"x/y\",\"digest\":\"" D1 "\",\"size\":1.5}]}",
		  -EINVAL },
		{ "{\"manifests\":[{\"mediaType\":\"x/y\",\"digest\":\"" D1 "\",\"size\":1e300}]}",
		  -EINVAL },
		{ "{\"manifests\":[{\"mediaType\":\"no slash\",\"digest\":\"" D1 "\",\"size\":1}]}",
		  -EINVAL },
		{ "{\"manifests\":[" DESC(D1, ",\"artifactType\":5") "]}", -EINVAL },
		{ "{\"manifests\":[" DESC(D1, ",\"artifactType\":\"a b/c\"") "]}", -EINVAL },
		{ "{\"manifests\":[" DESC(D1, ",\"annotations\":[]") "]}", -EINVAL },
		{ "{\"manifests\":[" DESC(D1, ",\"annotations\":{\"k\":1}") "]}", -EINVAL },
		{ "{\"manifests\":[" DESC(D1, ",\"annotations\":{\"\":\"v\"}") "]}", -EINVAL },
		{ "{\"manifests\":[" DESC(D1, ",\"annotations\":{\"k\":\"a\",\"k\":\"b\"}") "]}",
		  -EINVAL },
		{ "{\"manifests\":[" DESC(D1, ",\"artifactType\":\"a/b\",\"artifactType\":\"c/d\"")
		  "]}",
		  -EINVAL },
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct referrers l = REFERRERS_INIT;
		int rc = referrers_parse(cases[i].json, strlen(cases[i].json), &l, why,
					 sizeof(why));

		if (rc != cases[i].err)
			fail_msg("case %zu (%s): %d, want %d", i, cases[i].json, rc, cases[i].err);
		assert_true(why[0] != '\0');
		referrers_clear(&l);
	}
}

static void test_bounds(void **state)
{
	struct referrers l = REFERRERS_INIT;
	struct buf b = BUF_INIT;
	int i;

	(void)state;
	/* REFERRER_MAX_ANNOTATIONS + 1 annotations. */
	assert_int_equal(buf_adds(&b, "{\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
				      "\",\"size\":1,\"annotations\":{"),
			 0);
	for (i = 0; i <= REFERRER_MAX_ANNOTATIONS; i++)
		assert_int_equal(buf_addf(&b, "%s\"k%d\":\"v\"", i ? "," : "", i), 0);
	assert_int_equal(buf_adds(&b, "}}]}"), 0);
	assert_int_equal(parse(b.data, &l), -EINVAL);
	referrers_clear(&l);
	buf_release(&b);

	/* A key longer than REFERRER_MAX_KEY. */
	assert_int_equal(buf_adds(&b, "{\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
				      "\",\"size\":1,\"annotations\":{\""),
			 0);
	for (i = 0; i <= REFERRER_MAX_KEY; i++)
		assert_int_equal(buf_adds(&b, "k"), 0);
	assert_int_equal(buf_adds(&b, "\":\"v\"}}]}"), 0);
	assert_int_equal(parse(b.data, &l), -EINVAL);
	referrers_clear(&l);
	buf_release(&b);

	/* More than REFERRERS_MAX over pages. */
	assert_int_equal(buf_adds(&b, "{\"manifests\":["), 0);
	for (i = 0; i < 1000; i++)
		assert_int_equal(buf_addf(&b, "%s" DESC(D1, ""), i ? "," : ""), 0);
	assert_int_equal(buf_adds(&b, "]}"), 0);
	for (i = 0; i < REFERRERS_MAX / 1000; i++)
		assert_int_equal(parse(b.data, &l), 0);
	assert_int_equal(l.n, REFERRERS_MAX);
	assert_int_equal(parse("{\"manifests\":[" DESC(D2, "") "]}", &l), -EFBIG);
	referrers_clear(&l);
	buf_release(&b);
}

static void test_from_manifest(void **state)
{
	static const char with_type[] =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"artifactType\":\"application/vnd.cncf.notary.signature\","
		"\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"" D1
		"\",\"size\":2},\"layers\":[],\"subject\":" DESC(D2, "") ","
		"\"annotations\":{\"a\":\"1\",\"b\":\"2\"}}";
	static const char config_type[] =
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.example.sbom\","
		"\"digest\":\"" D1 "\",\"size\":2},\"layers\":[]}";
	struct referrer r;
	char why[256];

	(void)state;
	assert_int_equal(referrer_from_manifest(with_type, strlen(with_type), &r, why, sizeof(why)),
			 0);
	assert_string_equal(r.artifact_type, "application/vnd.cncf.notary.signature");
	assert_int_equal(r.nannotations, 2);
	assert_string_equal(r.annotations[1].key, "b");
	assert_string_equal(r.annotations[1].value, "2");
	referrer_release(&r);
	assert_int_equal(
		referrer_from_manifest(config_type, strlen(config_type), &r, why, sizeof(why)), 0);
	assert_string_equal(r.artifact_type, "application/vnd.example.sbom");
	assert_int_equal(r.nannotations, 0);
	referrer_release(&r);
	assert_int_equal(referrer_from_manifest("{\"layers\":[]}", 13, &r, why, sizeof(why)), 0);
	assert_null(r.artifact_type);
	referrer_release(&r);
	assert_int_equal(referrer_from_manifest("[1]", 3, &r, why, sizeof(why)), -EINVAL);
	assert_int_equal(referrer_from_manifest("{\"annotations\":{\"k\":[]}}", 24, &r, why,
						sizeof(why)),
			 -EINVAL);
}

/* ---- fs/view's referrers cache ------------------------------------------- */

struct fake {
	int fetches;
	int fail; /* the next fetch's answer */
	const char *json;
};

static int f_refs(void *ctx, const char *repo, const struct digest *subject,
		  struct referrers *out)
{
	struct fake *f = ctx;
	char ds[DIGEST_STR_SIZE], why[256];

	f->fetches++;
	assert_string_equal(repo, "app");
	assert_string_equal(digest_format(subject, ds), D3);
	if (f->fail)
		return f->fail;
	return referrers_parse(f->json, strlen(f->json), out, why, sizeof(why));
}

static int f_manifest(void *ctx, const char *repo, const char *ref, struct manifest **out)
{
	(void)ctx;
	(void)repo;
	(void)ref;
	*out = NULL;
	return -ENOENT;
}

static void test_view_cache(void **state)
{
	struct fake f = { 0, 0, NULL };
	struct view_source src = { f_manifest, NULL };
	struct registry_opts ro = { 0 };
	const struct referrers *l;
	struct registry *r;
	struct views *v;
	struct dlist *hold;
	struct digest subj;
	char ds[DIGEST_STR_SIZE];

	(void)state;
	/* D2 twice: listed once, where it came first. */
	f.json = "{\"manifests\":[" DESC(D2, "") "," DESC(D1, "") "," DESC(D2, "") "]}";
	ro.url = "http://127.0.0.1:9";
	ro.max_retries = 0;
	assert_int_equal(registry_new(&r, &ro), 0);
	assert_int_equal(views_new(&v, r, &src, NULL, 60), 0);
	views_set_referrers_source(v, f_refs, &f);
	assert_int_equal(digest_parse(&subj, D3), 0);

	/* A failure is returned, nothing listed. (Kept for a second by the
	 * dcache's failure hold: these views are not asked again.) */
	f.fail = -EIO;
	assert_int_equal(views_referrers(v, "app", &subj, &hold, &l), -EIO);
	assert_null(hold);
	assert_null(l);
	assert_int_equal(f.fetches, 1);
	views_free(v);
	f.fail = 0;
	assert_int_equal(views_new(&v, r, &src, NULL, 60), 0);
	views_set_referrers_source(v, f_refs, &f);
	assert_int_equal(views_referrers(v, "app", &subj, &hold, &l), 0);
	assert_int_equal(f.fetches, 2);
	assert_int_equal(l->n, 2);
	assert_string_equal(digest_format(&l->v[0].digest, ds), D2);
	assert_string_equal(digest_format(&l->v[1].digest, ds), D1);
	assert_true(dlist_has(hold, D1));
	assert_false(dlist_has(hold, D3));
	dlist_put(hold);
	/* Within the TTL: no fetch. */
	assert_int_equal(views_referrers(v, "app", &subj, &hold, &l), 0);
	assert_int_equal(f.fetches, 2);
	assert_int_equal(l->n, 2);
	dlist_put(hold);
	views_free(v);
	registry_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_from_manifest),
		cmocka_unit_test(test_view_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
