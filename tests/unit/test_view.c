/*
 * fs/view: tag and digest resolution over a fake manifest source — one
 * fetch per tag within the TTL (also under concurrent lookups), negative
 * answers cached, invalidation, one object per repository and digest
 * whichever way it is reached, and the naming of index platforms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/dcache.h"
#include "image/budget.h"
#include "image/image.h"
#include "fs/view.h"
#include "common/digest.h"
#include "registry/manifest.h"
#include "registry/referrers.h"
#include "registry/registry.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D4 "sha256:4444444444444444444444444444444444444444444444444444444444444444"
#define D5 "sha256:5555555555555555555555555555555555555555555555555555555555555555"

static const char image_json[] =
	"{\"schemaVersion\": 2,"
	" \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
	" \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\","
	"  \"digest\": \"" D1 "\", \"size\": 100},"
	" \"layers\": [{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\","
	"  \"digest\": \"" D2 "\", \"size\": 2000}]}";

#define PLAT(d, os, arch, extra)                                                              \
	"{\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"" d      \
	"\", \"size\": 500, \"platform\": {\"os\": \"" os "\", \"architecture\": \"" arch "\"" \
	extra "}}"

static const char index_json[] =
	"{\"schemaVersion\": 2,"
	" \"mediaType\": \"application/vnd.oci.image.index.v1+json\","
	" \"manifests\": [" PLAT(D1, "linux", "amd64", "") "," PLAT(D2, "linux", "arm64",
								  ", \"variant\": \"v8\"") ","
	PLAT(D3, "unknown", "unknown", "") "," PLAT(D4, "linux", "amd64", "") ","
	"{\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"" D5
	"\", \"size\": 500}]}";

struct fake {
	pthread_mutex_t lock;
	int fetches;
	int delay_ms;
	const char *image_tag; /* tag whose manifest is image_json */
};

static int f_manifest(void *ctx, const char *repo, const char *ref, struct manifest **out)
{
	struct fake *f = ctx;
	const char *json = NULL;
	struct digest want, got;

	pthread_mutex_lock(&f->lock);
	f->fetches++;
	pthread_mutex_unlock(&f->lock);
	if (f->delay_ms)
		usleep((useconds_t)f->delay_ms * 1000);
	*out = NULL;
	if (strcmp(repo, "app"))
		return -ENOENT;
	if (!strcmp(ref, "denied"))
		return -EACCES;
	if (!strcmp(ref, "flaky"))
		return -EIO;
	if (!strcmp(ref, "multi"))
		json = index_json;
	else if (!strcmp(ref, f->image_tag))
		json = image_json;
	else if (!digest_parse(&want, ref)) {
		/* By digest: the image, if that is its digest (verified, as the registry is). */
		digest_of_buf(&got, image_json, strlen(image_json));
		if (!digest_equal(&want, &got))
			return -ENOENT;
		json = image_json;
	} else {
		return -ENOENT;
	}
	return manifest_parse(json, strlen(json), NULL, out);
}

struct env {
	struct fake f;
	struct registry *r;
	struct views *v;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct registry_opts ro = { 0 };
	struct view_source src = { f_manifest, NULL };

	assert_non_null(e);
	pthread_mutex_init(&e->f.lock, NULL);
	e->f.image_tag = "v1";
	/* Image objects need a registry for their blobs; nothing is fetched here. */
	ro.url = "http://127.0.0.1:9";
	ro.max_retries = 0;
	assert_int_equal(registry_new(&e->r, &ro), 0);
	src.ctx = &e->f;
	assert_int_equal(views_new(&e->v, e->r, &src, NULL, 60), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	views_free(e->v);
	registry_free(e->r);
	pthread_mutex_destroy(&e->f.lock);
	free(e);
	return 0;
}

static void test_tag_cached_and_shared(void **state)
{
	struct env *e = *state;
	struct vobj *a, *b, *c;
	struct digest d;
	const void *bytes;
	size_t len;

	assert_int_equal(views_tag(e->v, "app", "v1", &a), 0);
	assert_int_equal(views_tag(e->v, "app", "v1", &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(e->f.fetches, 1); /* within the TTL: one GET */
	assert_false(vobj_is_index(a));
	assert_non_null(vobj_image(a));
	assert_string_equal(vobj_media_type(a), MEDIA_OCI_MANIFEST);
	vobj_bytes(a, &bytes, &len);
	assert_int_equal(len, strlen(image_json));
	assert_memory_equal(bytes, image_json, len);
	assert_int_equal(image_nlayers(vobj_image(a)), 1);

	/* The same image by digest: the same object, no request. */
	digest_of_buf(&d, image_json, strlen(image_json));
	assert_int_equal(views_digest(e->v, "app", &d, &c), 0);
	assert_ptr_equal(c, a);
	assert_int_equal(e->f.fetches, 1);

	/* Another tag naming the same image: one GET, the same object. */
	e->f.image_tag = "v2";
	assert_int_equal(views_tag(e->v, "app", "v2", &b), 0);
	assert_ptr_equal(b, a);
	assert_int_equal(e->f.fetches, 2);

	/* .acrfs/status: one image, none of its layers loaded (nothing looked inside). */
	size_t nimg, nlay;

	views_count(e->v, &nimg, &nlay);
	assert_int_equal(nimg, 1);
	assert_int_equal(nlay, 0);
}

static void test_negative_and_invalidate(void **state)
{
	struct env *e = *state;
	struct vobj *o;

	assert_int_equal(views_tag(e->v, "app", "nope", &o), -ENOENT);
	assert_null(o);
	assert_int_equal(views_tag(e->v, "app", "nope", &o), -ENOENT);
	assert_int_equal(e->f.fetches, 1); /* "no such tag" is cached */
	assert_int_equal(views_tag(e->v, "app", "denied", &o), -EACCES);
	assert_int_equal(views_tag(e->v, "app", "denied", &o), -EACCES);
	assert_int_equal(e->f.fetches, 2);
	/* Transport-like failures are not cached, only held for a second
	 * (fs/dcache.h): a look right after takes the same error. */
	assert_int_equal(views_tag(e->v, "app", "flaky", &o), -EIO);
	assert_int_equal(views_tag(e->v, "app", "flaky", &o), -EIO);
	assert_int_equal(e->f.fetches, 3);
	usleep(1100000);
	assert_int_equal(views_tag(e->v, "app", "flaky", &o), -EIO);
	assert_int_equal(e->f.fetches, 4);
	/* After the tag changed through the mount, the next look asks again. */
	assert_int_equal(views_tag(e->v, "app", "v1", &o), 0);
	assert_int_equal(e->f.fetches, 5);
	views_invalidate_tag(e->v, "app", "v1");
	assert_int_equal(views_tag(e->v, "app", "v1", &o), 0);
	assert_int_equal(e->f.fetches, 6);
	/* A digest nobody has. */
	struct digest d;

	assert_int_equal(digest_parse(&d, D3), 0);
	assert_int_equal(views_digest(e->v, "app", &d, &o), -ENOENT);
}

static void *lookup_thread(void *arg)
{
	struct env *e = arg;
	struct vobj *o;

	return (void *)(intptr_t)(views_tag(e->v, "app", "v1", &o) == 0 ? (intptr_t)o : 0);
}

static void test_concurrent_lookups_fetch_once(void **state)
{
	struct env *e = *state;
	pthread_t t[6];
	void *res[6];
	int i;

	e->f.delay_ms = 100;
	for (i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&t[i], NULL, lookup_thread, e), 0);
	for (i = 0; i < 6; i++)
		assert_int_equal(pthread_join(t[i], &res[i]), 0);
	for (i = 0; i < 6; i++) {
		assert_non_null(res[i]);
		assert_ptr_equal(res[i], res[0]);
	}
	assert_int_equal(e->f.fetches, 1);
}

static void *flaky_thread(void *arg)
{
	struct env *e = arg;
	struct vobj *o;

	return (void *)(intptr_t)views_tag(e->v, "app", "flaky", &o);
}

/* An unreachable registry: the lookups waiting on a failed fetch take its error. */
static void test_concurrent_failure_fetches_once(void **state)
{
	struct env *e = *state;
	pthread_t t[6];
	void *res[6];
	int i;

	e->f.delay_ms = 300;
	for (i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&t[i], NULL, flaky_thread, e), 0);
	for (i = 0; i < 6; i++)
		assert_int_equal(pthread_join(t[i], &res[i]), 0);
	for (i = 0; i < 6; i++)
		assert_int_equal((intptr_t)res[i], -EIO);
	assert_int_equal(e->f.fetches, 1);
	/* A later look (past the second a failure is held) asks again: the
	 * failure was not cached. */
	e->f.delay_ms = 0;
	usleep(1100000);
	assert_int_equal((intptr_t)flaky_thread(e), -EIO);
	assert_int_equal(e->f.fetches, 2);
}

static void test_index_platforms(void **state)
{
	struct env *e = *state;
	struct vobj *o;

	assert_int_equal(views_tag(e->v, "app", "multi", &o), 0);
	assert_true(vobj_is_index(o));
	assert_null(vobj_image(o));
	assert_string_equal(vobj_media_type(o), MEDIA_OCI_INDEX);
	/* unknown/unknown skipped; a second linux-amd64 gets its digest's prefix;
	 * an entry without a platform is named by its digest. */
	assert_int_equal(vobj_nplatforms(o), 4);
	assert_string_equal(vobj_platform_name(o, 0), "linux-amd64");
	assert_string_equal(vobj_platform_name(o, 1), "linux-arm64-v8");
	assert_string_equal(vobj_platform_name(o, 2), "linux-amd64-444444444444");
	assert_string_equal(vobj_platform_name(o, 3), D5);
	assert_null(vobj_platform_name(o, 4));
	assert_int_equal(vobj_platform_find(o, "linux-arm64-v8"), 1);
	assert_int_equal(vobj_platform_find(o, "unknown-unknown"), -1);
	char ds[DIGEST_STR_SIZE];

	assert_string_equal(digest_format(vobj_platform_digest(o, 1), ds), D2);
}

/* A referrer list of one referrer with a 5000-byte annotation. */
static int f_refs(void *ctx, const char *repo, const struct digest *subject,
		  struct referrers *out)
{
	struct referrer *r;

	(void)ctx;
	(void)repo;
	(void)subject;
	out->v = calloc(1, sizeof(*out->v));
	assert_non_null(out->v);
	out->n = out->cap = 1;
	r = &out->v[0];
	assert_int_equal(digest_parse(&r->digest, D3), 0);
	r->media_type = strdup(MEDIA_OCI_MANIFEST);
	r->annotations = calloc(1, sizeof(*r->annotations));
	assert_non_null(r->annotations);
	r->nannotations = 1;
	r->annotations[0].key = strdup("org.example.note");
	r->annotations[0].value = calloc(1, 5000);
	memset(r->annotations[0].value, 'x', 4999);
	return 0;
}

static uint64_t charged(struct budget *b, uint64_t *units)
{
	struct budget_stats st;

	budget_get_stats(b, &st);
	if (units)
		*units = st.units;
	return st.bytes;
}

/*
 * Under a budget the view objects count (one unit, never evicted) with the
 * cached tag resolutions and referrer lists (a unit each, evicted least
 * recently used: a tag is then resolved again with a request); views_free
 * uncharges everything.
 */
static void test_budget(void **state)
{
	struct env *e = *state;
	struct vobj *a, *b;
	struct dlist *hold;
	const struct referrers *refs;
	struct budget *bud;
	struct digest d;
	uint64_t units, objs;

	/* No bound: everything counted, nothing evicted. */
	views_free(e->v);
	assert_int_equal(budget_new(&bud, 0), 0);
	{
		struct view_source src = { f_manifest, &e->f };

		assert_int_equal(views_new(&e->v, e->r, &src, NULL, 60), 0);
	}
	views_set_budget(e->v, bud);
	views_set_referrers_source(e->v, f_refs, NULL);
	assert_int_equal(views_tag(e->v, "app", "v1", &a), 0);
	objs = views_object_bytes(e->v);
	assert_true(objs > strlen(image_json) + 200); /* the object, its image, its layer */
	assert_true(objs < strlen(image_json) + 4096);
	assert_int_equal(views_tag(e->v, "app", "multi", &b), 0);
	assert_true(views_object_bytes(e->v) > objs + strlen(index_json));
	digest_of_buf(&d, image_json, strlen(image_json));
	assert_int_equal(views_referrers(e->v, "app", &d, &hold, &refs), 0);
	assert_int_equal(refs->n, 1);
	dlist_put(hold);
	assert_true(views_list_bytes(e->v) > 5000); /* the annotation counts */
	assert_int_equal(charged(bud, &units),
			 views_object_bytes(e->v) + views_list_bytes(e->v));
	assert_int_equal(units, 1 + 2 + 1); /* the objects, two tags, one referrer list */
	views_free(e->v);
	assert_int_equal(charged(bud, &units), 0);
	assert_int_equal(units, 0);
	budget_free(bud);

	/* A bound below the objects alone: they stay, the cached tags go. */
	assert_int_equal(budget_new(&bud, 1), 0);
	{
		struct view_source src = { f_manifest, &e->f };

		assert_int_equal(views_new(&e->v, e->r, &src, NULL, 60), 0);
	}
	views_set_budget(e->v, bud);
	e->f.fetches = 0;
	assert_int_equal(views_tag(e->v, "app", "v1", &a), 0);
	assert_int_equal(views_tag(e->v, "app", "multi", &b), 0); /* evicts app:v1 */
	assert_int_equal(views_tag(e->v, "app", "v1", &b), 0);
	assert_ptr_equal(b, a); /* resolved again, the same object */
	assert_int_equal(e->f.fetches, 3);
	assert_true(charged(bud, NULL) >= views_object_bytes(e->v));
	views_free(e->v);
	e->v = NULL;
	assert_int_equal(charged(bud, &units), 0);
	assert_int_equal(units, 0);
	budget_free(bud);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tag_cached_and_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negative_and_invalidate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_lookups_fetch_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_failure_fetches_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_index_platforms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
