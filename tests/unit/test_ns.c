/* Path ↔ repository mapping, the clash rule, catalog-less mode, caching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strvec.h"
#include "fs/dcache.h"
#include "fs/ns.h"
#include "image/budget.h"

struct fake {
	const char *const *repos; /* NULL-terminated; NULL pointer: catalog denied */
	int catalog_err;
	int ncatalog, ntags;
	int nprobe;	   /* f_probe calls */
	int probe_err;	   /* f_probe's answer for every tag when set */
	const char *watch; /* f_tags calls for this repository go to nwatch too */
	int nwatch;
};

static const char *const repos1[] = { "alpha", "alpha/sub", "ns/deep/nested/repo",
				      "ssongman/userlist", "b-x", "b/c", NULL };

static int has_repo(const struct fake *f, const char *r)
{
	for (const char *const *p = f->repos; p && *p; p++)
		if (strcmp(*p, r) == 0)
			return 1;
	return 0;
}

static int f_catalog(void *ctx, struct strvec *out)
{
	struct fake *f = ctx;

	f->ncatalog++;
	if (f->catalog_err)
		return f->catalog_err;
	for (const char *const *p = f->repos; *p; p++)
		assert_int_equal(strvec_push(out, *p), 0);
	strvec_sort_unique(out);
	return 0;
}

static int f_tags(void *ctx, const char *repo, struct strvec *out)
{
	struct fake *f = ctx;

	f->ntags++;
	if (f->watch && !strcmp(repo, f->watch))
		f->nwatch++;
	if (strcmp(repo, "secret/repo") == 0)
		return -EACCES;
	if (!has_repo(f, repo) && strcmp(repo, "hidden/repo") != 0)
		return -ENOENT;
	assert_int_equal(strvec_push(out, "v1"), 0);
	assert_int_equal(strvec_push(out, "latest"), 0);
	if (strcmp(repo, "alpha") == 0)
		assert_int_equal(strvec_push(out, "sub"), 0);
	strvec_sort_unique(out);
	return 0;
}

/* The tag's own answer, from the same data f_tags lists. */
static int f_probe(void *ctx, const char *repo, const char *tag)
{
	struct fake *f = ctx;
	struct strvec tags = STRVEC_INIT;
	int rc;

	f->nprobe++;
	if (f->probe_err)
		return f->probe_err;
	rc = f_tags(ctx, repo, &tags);
	f->ntags--; /* not a tag list request */
	if (f->watch && !strcmp(repo, f->watch))
		f->nwatch--;
	if (!rc && strvec_find(&tags, tag) < 0)
		rc = -ENOENT;
	strvec_clear(&tags);
	return rc;
}

static struct ns *mk(struct fake *f, unsigned ttl)
{
	struct ns_source src = { .catalog = f_catalog, .tags = f_tags, .ctx = f, .what = "fake" };
	struct ns *ns;

	assert_int_equal(ns_new(&ns, &src, ttl), 0);
	return ns;
}

static char *names(struct ns *ns, const char *dir, int *err)
{
	struct ns_ent *e;
	size_t n, i;
	static char out[1024];

	out[0] = '\0';
	*err = ns_list(ns, dir, &e, &n);
	if (*err)
		return out;
	for (i = 0; i < n; i++) {
		strcat(out, e[i].name);
		strcat(out, e[i].kind == NS_DIR ? "/ " : " ");
	}
	ns_ents_free(e, n);
	return out;
}

static void expect_lookup(struct ns *ns, const char *dir, const char *name, int want_rc,
			  enum ns_kind want_kind, const char *want_target)
{
	enum ns_kind k = 0;
	char *t = NULL;
	int rc = ns_lookup(ns, dir, name, &k, &t);

	assert_int_equal(rc, want_rc);
	if (!rc) {
		assert_int_equal(k, want_kind);
		assert_string_equal(t, want_target);
	}
	free(t);
}

static void test_listing(void **s)
{
	struct fake f = { .repos = repos1, .catalog_err = 0 };
	struct ns *ns = mk(&f, 60);
	int err;

	(void)s;
	assert_string_equal(names(ns, "", &err), "alpha/ b/ b-x/ ns/ ssongman/ ");
	assert_int_equal(err, 0);
	assert_string_equal(names(ns, "ns/deep", &err), "nested/ ");
	assert_string_equal(names(ns, "ns/deep/nested/repo", &err), "latest v1 ");
	/* alpha is a repository and a namespace; its tag "sub" clashes. */
	assert_string_equal(names(ns, "alpha", &err), ":sub latest sub/ v1 ");
	assert_string_equal(names(ns, "b", &err), "c/ ");
	assert_int_equal(f.ncatalog, 1);
	/* "ns" and "ns/deep" and "b" are pure namespaces: no tag requests. */
	assert_int_equal(f.ntags, 2);
	ns_free(ns);
}

static void test_lookup(void **s)
{
	struct fake f = { .repos = repos1, .catalog_err = 0 };
	struct ns *ns = mk(&f, 60);

	(void)s;
	expect_lookup(ns, "", "alpha", 0, NS_DIR, "alpha");
	expect_lookup(ns, "", "ssongman", 0, NS_DIR, "ssongman");
	expect_lookup(ns, "ssongman", "userlist", 0, NS_DIR, "ssongman/userlist");
	expect_lookup(ns, "ssongman/userlist", "v1", 0, NS_TAG, "v1");
	expect_lookup(ns, "alpha", "sub", 0, NS_DIR, "alpha/sub");
	expect_lookup(ns, "alpha", ":sub", 0, NS_TAG, "sub");
	expect_lookup(ns, "alpha", ":v1", 0, NS_TAG, "v1");
	expect_lookup(ns, "alpha", ":nope", -ENOENT, 0, NULL);
	expect_lookup(ns, "", "nope", -ENOENT, 0, NULL);
	expect_lookup(ns, "", "UPPER", -ENOENT, 0, NULL);
	expect_lookup(ns, "", ".git", -ENOENT, 0, NULL);
	expect_lookup(ns, "ssongman/userlist", "v2", -ENOENT, 0, NULL);
	expect_lookup(ns, "", "b", 0, NS_DIR, "b");
	expect_lookup(ns, "", "b-x", 0, NS_DIR, "b-x");
	/* Not in the catalog but there: reachable by path. */
	expect_lookup(ns, "hidden", "repo", 0, NS_DIR, "hidden/repo");
	expect_lookup(ns, "hidden/repo", "latest", 0, NS_TAG, "latest");
	/* A repository we may not read: its tags are EACCES, not ENOENT. */
	expect_lookup(ns, "secret/repo", "v1", -EACCES, 0, NULL);
	ns_free(ns);
}

static void test_no_catalog(void **s)
{
	struct fake f = { .repos = repos1, .catalog_err = -EACCES };
	struct ns *ns = mk(&f, 60);
	int err;

	(void)s;
	assert_string_equal(names(ns, "", &err), "");
	assert_int_equal(err, 0);
	/* Intermediate components cannot be checked: they are directories. */
	expect_lookup(ns, "", "ssongman", 0, NS_DIR, "ssongman");
	expect_lookup(ns, "ssongman", "userlist", 0, NS_DIR, "ssongman/userlist");
	assert_string_equal(names(ns, "ssongman/userlist", &err), "latest v1 ");
	expect_lookup(ns, "ssongman/userlist", "v1", 0, NS_TAG, "v1");
	/* Without a catalog a clashing name is the tag. */
	expect_lookup(ns, "alpha", "sub", 0, NS_TAG, "sub");
	assert_string_equal(names(ns, "alpha", &err), "latest sub v1 ");
	/* A repository the identity may not read: EACCES, not EIO. */
	assert_string_equal(names(ns, "secret/repo", &err), "");
	assert_int_equal(err, -EACCES);
	/* A tag of it: EACCES too (stat must not say "no such file"). */
	expect_lookup(ns, "secret/repo", "v1", -EACCES, 0, NULL);
	/* The refusal is cached like a negative answer. */
	assert_int_equal(f.ncatalog, 1);
	ns_free(ns);
}

/* A tag probe (the tag's manifest) answers lookups when the tag list is not
 * cached: a walk into repo/tag costs no list of every tag; the clash rule,
 * ":tag", refusals and uncertain answers still go by the list. */
static void test_tag_probe(void **s)
{
	struct fake f = { .repos = repos1 };
	struct ns_source src = { .catalog = f_catalog, .tags = f_tags, .ctx = &f, .what = "fake",
				 .tag_probe = f_probe, .probe_ctx = &f };
	struct ns *ns;
	int err;

	(void)s;
	assert_int_equal(ns_new(&ns, &src, 60), 0);
	assert_true(ns_lookup_probes(ns));
	f.watch = "ssongman/userlist";
	expect_lookup(ns, "ssongman/userlist", "v1", 0, NS_TAG, "v1");
	assert_int_equal(f.nprobe, 1);
	assert_int_equal(f.nwatch, 0);
	/* No such tag: the probe's "no" is the answer; only the path's own
	 * check (a repository the catalog does not show?) follows. */
	expect_lookup(ns, "ssongman/userlist", "v2", -ENOENT, 0, NULL);
	assert_int_equal(f.nprobe, 2);
	assert_int_equal(f.nwatch, 0);
	/* The catalog decides first: alpha/sub is a repository. */
	expect_lookup(ns, "alpha", "sub", 0, NS_DIR, "alpha/sub");
	assert_int_equal(f.nprobe, 2);
	/* ":tag" goes by the list. */
	f.watch = "alpha";
	f.nwatch = 0;
	expect_lookup(ns, "alpha", ":sub", 0, NS_TAG, "sub");
	assert_int_equal(f.nprobe, 2);
	assert_int_equal(f.nwatch, 1);
	/* A cached list answers without the probe. */
	f.watch = "ns/deep/nested/repo";
	f.nwatch = 0;
	assert_string_equal(names(ns, "ns/deep/nested/repo", &err), "latest v1 ");
	expect_lookup(ns, "ns/deep/nested/repo", "latest", 0, NS_TAG, "latest");
	expect_lookup(ns, "ns/deep/nested/repo", "v9", -ENOENT, 0, NULL);
	assert_int_equal(f.nprobe, 2);
	assert_int_equal(f.nwatch, 1);
	/* A refusal or an answer the probe cannot give: the list decides. */
	expect_lookup(ns, "secret/repo", "v1", -EACCES, 0, NULL);
	assert_int_equal(f.nprobe, 3);
	f.watch = "b-x";
	f.nwatch = 0;
	f.probe_err = -EIO;
	expect_lookup(ns, "b-x", "latest", 0, NS_TAG, "latest");
	assert_int_equal(f.nprobe, 4);
	assert_int_equal(f.nwatch, 1);
	f.probe_err = 0;
	/* Not in the catalog but there: the probe's "no such repository" for
	 * "hidden" does not hide hidden/repo. */
	expect_lookup(ns, "hidden", "repo", 0, NS_DIR, "hidden/repo");
	expect_lookup(ns, "hidden/repo", "latest", 0, NS_TAG, "latest");
	ns_free(ns);

	/* Without a catalog a clashing name is the tag, with a probe too. */
	memset(&f, 0, sizeof(f));
	f.repos = repos1;
	f.catalog_err = -EACCES;
	assert_int_equal(ns_new(&ns, &src, 60), 0);
	expect_lookup(ns, "alpha", "sub", 0, NS_TAG, "sub");
	expect_lookup(ns, "secret/repo", "v1", -EACCES, 0, NULL);
	assert_int_equal(f.nprobe, 2);
	ns_free(ns);
}

static void test_ttl_and_invalidate(void **s)
{
	struct fake f = { .repos = repos1, .catalog_err = 0 };
	struct ns *ns = mk(&f, 60), *ns0 = NULL;
	int err, before;

	(void)s;
	names(ns, "alpha", &err);
	before = f.ntags;
	names(ns, "alpha", &err);
	expect_lookup(ns, "alpha", "v1", 0, NS_TAG, "v1");
	expect_lookup(ns, "", "nope", -ENOENT, 0, NULL);
	expect_lookup(ns, "", "nope", -ENOENT, 0, NULL); /* negative entry cached */
	assert_int_equal(f.ntags, before + 1);
	ns_invalidate_tags(ns, "alpha");
	names(ns, "alpha", &err);
	assert_int_equal(f.ntags, before + 2);
	ns_free(ns);

	f.ntags = f.ncatalog = 0;
	ns0 = mk(&f, 0); /* ttl=0 always asks */
	names(ns0, "alpha", &err);
	names(ns0, "alpha", &err);
	assert_int_equal(f.ncatalog, 2);
	assert_int_equal(f.ntags, 2);
	ns_free(ns0);
}

static void test_transport_errors_not_cached(void **s)
{
	struct fake f = { .repos = repos1, .catalog_err = -EIO };
	struct ns *ns = mk(&f, 60);
	int err;

	(void)s;
	names(ns, "", &err);
	assert_int_equal(err, -EIO);
	names(ns, "", &err); /* right after: the failure is held (fs/dcache.h) */
	assert_int_equal(err, -EIO);
	assert_int_equal(f.ncatalog, 1);
	f.catalog_err = 0;
	usleep(1100000); /* past the hold: asked again, not cached */
	assert_string_equal(names(ns, "", &err), "alpha/ b/ b-x/ ns/ ssongman/ ");
	assert_int_equal(f.ncatalog, 2);
	ns_free(ns);
}

/* ACR-like source: tags with metadata (latest newer than v1, v1 locked). */
static int f_tags_meta(void *ctx, const char *repo, struct strvec *out, struct ns_tag_meta **meta)
{
	struct ns_tag_meta *m;
	int rc = f_tags(ctx, repo, out);

	if (rc)
		return rc;
	m = calloc(out->n, sizeof(*m));
	assert_non_null(m);
	for (size_t i = 0; i < out->n; i++) {
		m[i].write_enabled = m[i].delete_enabled = true;
		m[i].created.tv_sec = 1000 + (long)i;
		m[i].updated.tv_sec = strcmp(out->v[i], "latest") == 0 ? 5000 : 2000;
		if (strcmp(out->v[i], "v1") == 0)
			m[i].delete_enabled = false;
	}
	*meta = m;
	return 0;
}

static void test_tag_meta(void **s)
{
	struct fake f = { .repos = repos1 };
	struct ns_source src = { .catalog = f_catalog, .tags = f_tags, .ctx = &f, .what = "fake" };
	struct ns_tag_meta m;
	struct timespec u, c;
	struct ns *ns;
	int err;

	(void)s;
	/* Without a metadata source: -ENODATA, and no request at all. */
	assert_int_equal(ns_new(&ns, &src, 60), 0);
	assert_int_equal(ns_tag_meta(ns, "ssongman/userlist", "v1", &m), -ENODATA);
	assert_int_equal(ns_repo_times(ns, "ssongman/userlist", &u, &c), -ENODATA);
	assert_int_equal(f.ntags, 0);
	ns_free(ns);

	src.tags_meta = f_tags_meta;
	assert_int_equal(ns_new(&ns, &src, 60), 0);
	/* Nothing cached yet: repository times are not fetched for. */
	assert_int_equal(ns_repo_times(ns, "ssongman/userlist", &u, &c), -ENODATA);
	assert_int_equal(f.ntags, 0);
	assert_string_equal(names(ns, "ssongman/userlist", &err), "latest v1 ");
	assert_int_equal(err, 0);
	assert_int_equal(f.ntags, 1);
	assert_int_equal(ns_tag_meta(ns, "ssongman/userlist", "v1", &m), 0);
	assert_false(m.delete_enabled);
	assert_int_equal(m.updated.tv_sec, 2000);
	assert_int_equal(ns_tag_meta(ns, "ssongman/userlist", "latest", &m), 0);
	assert_true(m.delete_enabled);
	assert_int_equal(m.updated.tv_sec, 5000);
	assert_int_equal(ns_tag_meta(ns, "ssongman/userlist", "nope", &m), -ENOENT);
	assert_int_equal(ns_repo_times(ns, "ssongman/userlist", &u, &c), 0);
	assert_int_equal(u.tv_sec, 5000);
	assert_int_equal(c.tv_sec, 1000);
	assert_int_equal(f.ntags, 1); /* all from the one list */
	assert_int_equal(ns_tag_meta(ns, "no/such", "v1", &m), -ENODATA); /* never listed */
	assert_int_equal(f.ntags, 1);
	ns_free(ns);

	/* ttl=0: the metadata of the last listing still answers, without a fetch. */
	assert_int_equal(ns_new(&ns, &src, 0), 0);
	f.ntags = 0;
	assert_string_equal(names(ns, "ssongman/userlist", &err), "latest v1 ");
	assert_int_equal(ns_tag_meta(ns, "ssongman/userlist", "latest", &m), 0);
	assert_int_equal(m.updated.tv_sec, 5000);
	assert_int_equal(ns_repo_times(ns, "ssongman/userlist", &u, &c), 0);
	assert_int_equal(f.ntags, 1);
	ns_invalidate_tags(ns, "ssongman/userlist");
	assert_int_equal(ns_tag_meta(ns, "ssongman/userlist", "latest", &m), -ENODATA);
	assert_int_equal(f.ntags, 1);
	ns_free(ns);
}

/*
 * Under a memory budget tag lists are evicted least recently used (and
 * fetched again); a list ns_list_held handed out stays while held, so the
 * metadata of a kept listing's entries stays known; without metadata
 * nothing is held.
 */
static void test_budget_hold(void **s)
{
	static char rn[30][8];
	const char *many[31];
	struct fake f = { .repos = many };
	struct ns_source src = { .catalog = f_catalog, .tags = f_tags, .ctx = &f, .what = "fake" };
	struct budget_stats st;
	struct ns_tag_meta m;
	struct ns_ent *ents;
	struct dlist *hold;
	struct budget *b;
	uint64_t one, cat;
	struct ns *ns;
	size_t n;
	int err, i;

	(void)s;
	for (i = 0; i < 30; i++) {
		snprintf(rn[i], sizeof(rn[i]), "r%02d", i);
		many[i] = rn[i];
	}
	many[30] = NULL;
	src.tags_meta = f_tags_meta;
	/* What the catalog and one tag list take. */
	assert_int_equal(ns_new(&ns, &src, 60), 0);
	names(ns, "r00", &err);
	cat = ns_bytes(ns);
	names(ns, "r01", &err);
	one = ns_bytes(ns) - cat;
	cat -= one;
	ns_free(ns);

	assert_int_equal(budget_new(&b, cat + 3 * one), 0);
	assert_int_equal(ns_new(&ns, &src, 60), 0);
	ns_set_budget(ns, b);
	f.ntags = 0;
	assert_int_equal(ns_list_held(ns, "r00", &ents, &n, &hold), 0);
	assert_non_null(hold);
	assert_int_equal(n, 2);
	ns_ents_free(ents, n);
	for (i = 1; i < 20; i++) {
		names(ns, rn[i], &err);
		assert_int_equal(err, 0);
	}
	budget_get_stats(b, &st);
	assert_true(st.evictions >= 15);
	assert_true(st.bytes <= cat + 4 * one);
	assert_int_equal(st.bytes, ns_bytes(ns));
	assert_int_equal(ns_tag_meta(ns, "r00", "v1", &m), 0); /* held */
	assert_false(m.delete_enabled);
	assert_int_equal(ns_tag_meta(ns, "r01", "v1", &m), -ENODATA); /* evicted */
	assert_int_equal(ns_repo_times(ns, "r01", &m.updated, &m.created), -ENODATA);
	dlist_put(hold);
	for (i = 20; i < 25; i++)
		names(ns, rn[i], &err);
	assert_int_equal(ns_tag_meta(ns, "r00", "v1", &m), -ENODATA); /* dropped, evicted */
	assert_int_equal(f.ntags, 25);
	assert_string_equal(names(ns, "r01", &err), "latest v1 "); /* fetched again */
	assert_int_equal(f.ntags, 26);
	assert_int_equal(ns_tag_meta(ns, "r01", "v1", &m), 0);
	ns_free(ns);
	budget_get_stats(b, &st);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.units, 0);

	/* No metadata: nothing to hold. */
	src.tags_meta = NULL;
	assert_int_equal(ns_new(&ns, &src, 60), 0);
	assert_int_equal(ns_list_held(ns, "r00", &ents, &n, &hold), 0);
	assert_null(hold);
	ns_ents_free(ents, n);
	ns_free(ns);
	budget_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listing),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_no_catalog),
		cmocka_unit_test(test_tag_probe),
		cmocka_unit_test(test_ttl_and_invalidate),
		cmocka_unit_test(test_transport_errors_not_cached),
		cmocka_unit_test(test_tag_meta),
		cmocka_unit_test(test_budget_hold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
