/*
 * fs/prefetch: which walks start a readahead and what it fetches, over a fake
 * registry (catalog r00..r19, each with tags t0..t9; a manifest per tag) —
 * a walk in order fetches ahead from its third entry on, the window grows
 * 4, 8, ... up to its bound and never beyond; a lone look, two looks, a
 * walk backwards or with jumps beyond the window fetch nothing ahead; a walk
 * through repositories using one tag in each gets that tag's manifest ahead
 * with the tag list, or alone where lookups ask the tag (a tag probe);
 * later jobs get workers while earlier ones run; window 0 does nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/strvec.h"
#include "fs/ns.h"
#include "fs/prefetch.h"
#include "fs/view.h"
#include "registry/manifest.h"
#include "registry/registry.h"

#define NREPOS 20
#define NTAGS 10

static const char image_json[] =
	"{\"schemaVersion\": 2,"
	" \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
	" \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\","
	"  \"digest\": \"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
	"  \"size\": 100},"
	" \"layers\": []}";

/* What the fake registry was asked: tag lists per repository, manifests per
 * repository and tag. */
struct fake {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast when inflight or gate changes */
	int tags[NREPOS];
	int manifests[NREPOS][NTAGS];
	bool gate;    /* manifest requests wait while it is set */
	int inflight; /* manifest requests being answered now */
};

static int repo_no(const char *repo)
{
	int i, end = 0;

	/* All of it: "r03/t9" is no repository. */
	if (sscanf(repo, "r%d%n", &i, &end) != 1 || repo[end])
		return -1;
	return i >= 0 && i < NREPOS ? i : -1;
}

static int f_catalog(void *ctx, struct strvec *out)
{
	char name[16];

	(void)ctx;
	for (int i = 0; i < NREPOS; i++) {
		snprintf(name, sizeof(name), "r%02d", i);
		assert_int_equal(strvec_push(out, name), 0);
	}
	return 0;
}

static int f_tags(void *ctx, const char *repo, struct strvec *out)
{
	struct fake *f = ctx;
	int r = repo_no(repo);
	char name[16];

	if (r < 0)
		return -ENOENT;
	pthread_mutex_lock(&f->lock);
	f->tags[r]++;
	pthread_mutex_unlock(&f->lock);
	for (int i = 0; i < NTAGS; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		assert_int_equal(strvec_push(out, name), 0);
	}
	return 0;
}

static int f_manifest(void *ctx, const char *repo, const char *ref, struct manifest **out)
{
	struct fake *f = ctx;
	int r = repo_no(repo), t;

	*out = NULL;
	if (r < 0 || sscanf(ref, "t%d", &t) != 1 || t < 0 || t >= NTAGS)
		return -ENOENT;
	pthread_mutex_lock(&f->lock);
	f->manifests[r][t]++;
	f->inflight++;
	pthread_cond_broadcast(&f->cond);
	while (f->gate)
		pthread_cond_wait(&f->cond, &f->lock);
	f->inflight--;
	pthread_mutex_unlock(&f->lock);
	return manifest_parse(image_json, strlen(image_json), NULL, out);
}

struct env {
	struct fake f;
	struct registry *r;
	struct ns *ns;
	struct views *v;
	struct prefetch *p;
};

/* ns_source.tag_probe as fs/main.c's: the tag's manifest, through the views. */
static int f_probe(void *ctx, const char *repo, const char *tag)
{
	struct env *e = ctx;
	struct vobj *o;

	return views_tag(e->v, repo, tag, &o);
}

/* `probe`: lookups ask a tag's manifest instead of the tag list. */
static struct env *env_new_how(unsigned window, bool probe, unsigned workers)
{
	struct env *e = calloc(1, sizeof(*e));
	struct registry_opts ro = { 0 };
	struct ns_source src = { 0 };
	struct view_source vs = { f_manifest, NULL };
	struct ns_ent *ents;
	size_t n;

	assert_non_null(e);
	pthread_mutex_init(&e->f.lock, NULL);
	pthread_cond_init(&e->f.cond, NULL);
	ro.url = "http://127.0.0.1:9"; /* image objects want one; nothing is fetched */
	ro.max_retries = 0;
	assert_int_equal(registry_new(&e->r, &ro), 0);
	src.catalog = f_catalog;
	src.tags = f_tags;
	src.ctx = &e->f;
	src.what = "fake";
	if (probe) {
		src.tag_probe = f_probe;
		src.probe_ctx = e; /* e->v is set before the first lookup */
	}
	vs.ctx = &e->f;
	assert_int_equal(ns_new(&e->ns, &src, 60), 0);
	assert_int_equal(views_new(&e->v, e->r, &vs, NULL, 60), 0);
	assert_int_equal(prefetch_new(&e->p, e->ns, e->v, window, workers), 0);
	/* The walk listed the root first (the catalog is known). */
	assert_int_equal(ns_list(e->ns, "", &ents, &n), 0);
	assert_int_equal(n, NREPOS);
	ns_ents_free(ents, n);
	return e;
}

static struct env *env_new(unsigned window)
{
	return env_new_how(window, false, 4);
}

static void env_free(struct env *e)
{
	prefetch_free(e->p);
	views_free(e->v);
	ns_free(e->ns);
	registry_free(e->r);
	pthread_cond_destroy(&e->f.cond);
	pthread_mutex_destroy(&e->f.lock);
	free(e);
}

/* Wait until every job queued has run. */
static void drain(struct env *e)
{
	struct prefetch_stats st;

	for (int i = 0; i < 5000; i++) {
		prefetch_stats(e->p, &st);
		if (st.done == st.queued)
			return;
		usleep(1000);
	}
	fail_msg("prefetch jobs did not finish");
}

static int tag_lists(struct env *e, int from, int to)
{
	int n = 0;

	for (int i = from; i <= to; i++)
		n += e->f.tags[i];
	return n;
}

/* The walk lists repository r (ls -R, find): what ll.c notes at readdir. */
static void list_repo(struct env *e, int r)
{
	char name[16];
	struct ns_ent *ents;
	size_t n;

	snprintf(name, sizeof(name), "r%02d", r);
	prefetch_note_dir(e->p, name, PF_TAGS);
	assert_int_equal(ns_list(e->ns, name, &ents, &n), 0);
	ns_ents_free(ents, n);
	drain(e);
}

static void test_walk_in_order(void **st)
{
	struct env *e = env_new(8);

	(void)st;
	list_repo(e, 0);
	list_repo(e, 1);
	assert_int_equal(tag_lists(e, 0, NREPOS - 1), 2); /* two looks: nothing ahead */
	list_repo(e, 2);
	/* Third in order: the next 4 (the window's start). */
	assert_int_equal(tag_lists(e, 3, 6), 4);
	assert_int_equal(tag_lists(e, 7, NREPOS - 1), 0);
	list_repo(e, 3);
	/* Then 8 ahead (doubled, the bound here): up to r11, each once. */
	assert_int_equal(tag_lists(e, 3, 11), 9);
	assert_int_equal(tag_lists(e, 12, NREPOS - 1), 0);
	for (int r = 4; r < NREPOS; r++)
		list_repo(e, r);
	for (int r = 0; r < NREPOS; r++)
		assert_int_equal(e->f.tags[r], 1); /* every list once: the walk found them */
	env_free(e);
}

static void test_no_walk(void **st)
{
	struct env *e = env_new(32);

	(void)st;
	/* Backwards. */
	for (int r = 10; r >= 5; r--)
		list_repo(e, r);
	assert_int_equal(tag_lists(e, 0, NREPOS - 1), 6);
	/* Jumps beyond the window (window 32 here: from a fresh env, 3 at 0, ...). */
	env_free(e);
	e = env_new(4);
	list_repo(e, 0);
	list_repo(e, 5);
	list_repo(e, 10);
	list_repo(e, 15);
	assert_int_equal(tag_lists(e, 0, NREPOS - 1), 4);
	env_free(e);
	/* Window 0: an in-order walk, nothing ahead. */
	e = env_new(0);
	for (int r = 0; r < 6; r++)
		list_repo(e, r);
	assert_int_equal(tag_lists(e, 0, NREPOS - 1), 6);
	env_free(e);
}

/* getfattr user.acrfs.digest of each tag of r00, in order. */
static void test_tags_in_order(void **st)
{
	struct env *e = env_new(4);
	struct vobj *o;
	char tag[16];
	int total = 0;

	(void)st;
	list_repo(e, 0);
	for (int t = 0; t < 3; t++) {
		snprintf(tag, sizeof(tag), "t%d", t);
		prefetch_note_tag(e->p, "r00", tag, PF_MANIFEST);
		assert_int_equal(views_tag(e->v, "r00", tag, &o), 0);
		drain(e);
	}
	/* Three walked, four ahead (t3..t6), nothing further. */
	for (int t = 0; t < NTAGS; t++)
		total += e->f.manifests[0][t];
	assert_int_equal(total, 7);
	assert_int_equal(e->f.manifests[0][6], 1);
	assert_int_equal(e->f.manifests[0][7], 0);
	/* Notes of a tag are also notes of its repository in the root: one
	 * repository is no walk there. */
	assert_int_equal(tag_lists(e, 1, NREPOS - 1), 0);
	env_free(e);
}

/* cat rNN/t2/rootfs/f for NN in order: lookups only (no listing of the
 * repositories): the next repositories' tags and t2's manifest come ahead,
 * at the same time. */
/* What ll.c does for `cat rNN/t2/rootfs/f`, NN = 0 .. n - 1: lookups only. */
static void walk_t2(struct env *e, int n)
{
	struct vobj *o;
	char name[16];
	enum ns_kind kind;
	char *target;

	for (int r = 0; r < n; r++) {
		snprintf(name, sizeof(name), "r%02d", r);
		prefetch_note_dir(e->p, name, PF_NONE); /* lookup rNN in the root */
		assert_int_equal(ns_lookup(e->ns, name, "t2", &kind, &target), 0);
		assert_int_equal(kind, NS_TAG);
		free(target);
		prefetch_note_tag(e->p, name, "t2", PF_NONE); /* lookup t2 in it */
		prefetch_note_tag(e->p, name, "t2", PF_MANIFEST); /* lookup inside t2 */
		assert_int_equal(views_tag(e->v, name, "t2", &o), 0);
		drain(e);
	}
}

static void test_same_tag_in_each_repo(void **st)
{
	struct env *e = env_new(8);

	(void)st;
	walk_t2(e, 3);
	for (int r = 3; r <= 6; r++) {
		assert_int_equal(e->f.tags[r], 1);
		assert_int_equal(e->f.manifests[r][2], 1);
		assert_int_equal(e->f.manifests[r][1] + e->f.manifests[r][3], 0);
	}
	assert_int_equal(tag_lists(e, 7, NREPOS - 1), 0);
	env_free(e);
}

/* The same walk where a lookup asks the tag itself (ns_lookup_probes): no
 * repository's tag list is fetched, by the walk or ahead of it, and each
 * manifest once. */
static void test_same_tag_probed(void **st)
{
	struct env *e = env_new_how(8, true, 4);
	enum ns_kind kind;
	char *target;

	(void)st;
	walk_t2(e, 3);
	assert_int_equal(tag_lists(e, 0, NREPOS - 1), 0);
	for (int r = 0; r <= 6; r++)
		assert_int_equal(e->f.manifests[r][2], 1);
	for (int r = 7; r < NREPOS; r++)
		assert_int_equal(e->f.manifests[r][2], 0);
	/* A tag no repository has: the probe's "no", still no tag list. */
	assert_int_equal(ns_lookup(e->ns, "r03", "t99", &kind, &target), -ENOENT);
	assert_int_equal(tag_lists(e, 0, NREPOS - 1), 0);
	env_free(e);
}

/* Wait (up to 10 s) until `n` manifest requests are being answered at once. */
static bool wait_inflight(struct env *e, int n)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&e->f.lock);
	while (e->f.inflight < n &&
	       pthread_cond_timedwait(&e->f.cond, &e->f.lock, &until) == 0)
		;
	ok = e->f.inflight >= n;
	pthread_mutex_unlock(&e->f.lock);
	return ok;
}

/* Jobs queued while the workers are busy with earlier ones get workers of
 * their own, up to the bound: 4 jobs running (held in the registry), then
 * 3 more queued make 7 requests at once with 8 workers (there once were
 * only as many workers as the largest batch queued at one time). */
static void test_workers_for_later_jobs(void **st)
{
	struct env *e = env_new_how(8, false, 8);
	char tag[16];

	(void)st;
	list_repo(e, 0);
	e->f.gate = true;
	for (int t = 0; t < 3; t++) {
		snprintf(tag, sizeof(tag), "t%d", t);
		prefetch_note_tag(e->p, "r00", tag, PF_MANIFEST);
	}
	assert_true(wait_inflight(e, 4)); /* t3..t6 */
	prefetch_note_tag(e->p, "r00", "t3", PF_MANIFEST); /* the window doubles: t7..t9 */
	assert_true(wait_inflight(e, 7));
	pthread_mutex_lock(&e->f.lock);
	e->f.gate = false;
	pthread_cond_broadcast(&e->f.cond);
	pthread_mutex_unlock(&e->f.lock);
	drain(e);
	for (int t = 3; t < NTAGS; t++)
		assert_int_equal(e->f.manifests[0][t], 1);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_in_order),
		cmocka_unit_test(test_no_walk),
		cmocka_unit_test(test_tags_in_order),
		cmocka_unit_test(test_same_tag_in_each_repo),
		cmocka_unit_test(test_same_tag_probed),
		cmocka_unit_test(test_workers_for_later_jobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
