/* Link header parsing and resolution, as registries paginate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "registry/link.h"

static void expect_next(const char *hdr, const char *base, const char *want)
{
	char *next = (char *)1;

	assert_int_equal(link_next(hdr, base, &next), 0);
	if (want) {
		assert_non_null(next);
		assert_string_equal(next, want);
	} else {
		assert_null(next);
	}
	free(next);
}

static void test_distribution(void **s)
{
	(void)s;
	expect_next("</v2/_catalog?last=b&n=100>; rel=\"next\"",
		    "http://127.0.0.1:5000/v2/_catalog?n=100",
		    "http://127.0.0.1:5000/v2/_catalog?last=b&n=100");
}

static void test_acr_orderby(void **s)
{
	(void)s;
	expect_next("</v2/_catalog?last=x&n=100&orderby=>; rel=\"next\"",
		    "https://r.azurecr.io/v2/_catalog",
		    "https://r.azurecr.io/v2/_catalog?last=x&n=100&orderby=");
}

static void test_absent_and_other_rels(void **s)
{
	(void)s;
	expect_next(NULL, "https://h/v2/", NULL);
	expect_next("", "https://h/v2/", NULL);
	expect_next("</v2/x?p=1>; rel=\"prev\"", "https://h/v2/x", NULL);
	expect_next("</a>; rel=prev, </b?n=2>; rel=next", "https://h/v2/x",
		    "https://h/b?n=2");
	expect_next("</b>; title=\"a, b; rel=next\"; rel=\"prev next\"", "https://h/v2/x",
		    "https://h/b");
	expect_next("</c>;REL=NEXT", "https://h:8443/v2/x", "https://h:8443/c");
}

static void test_relative_forms(void **s)
{
	(void)s;
	expect_next("<?last=z>; rel=\"next\"", "https://h/v2/r/tags/list?n=5",
		    "https://h/v2/r/tags/list?last=z");
	expect_next("<list?last=z>; rel=\"next\"", "https://h/v2/r/tags/list",
		    "https://h/v2/r/tags/list?last=z");
	expect_next("<https://h/v2/r/tags/list?last=q>; rel=\"next\"", "https://h/v2/r/tags/list",
		    "https://h/v2/r/tags/list?last=q");
}

static void test_refuses_other_hosts(void **s)
{
	char *next = NULL;

	(void)s;
	assert_int_equal(link_next("<https://evil/v2/_catalog>; rel=\"next\"", "https://h/v2/_catalog",
				   &next), -EPERM);
	assert_null(next);
	assert_int_equal(link_next("<//evil/v2/_catalog>; rel=\"next\"", "https://h/v2/_catalog",
				   &next), -EPERM);
	assert_int_equal(link_next("<http://h/v2/_catalog>; rel=\"next\"", "https://h/v2/_catalog",
				   &next), -EPERM);
}

static void test_malformed(void **s)
{
	char *next = NULL;

	(void)s;
	assert_int_equal(link_next("/v2/_catalog; rel=next", "https://h/", &next), -EINVAL);
	assert_int_equal(link_next("</v2/_catalog; rel=next", "https://h/", &next), -EINVAL);
	assert_null(next);
}

static void test_url_split(void **s)
{
	char *o, *p;

	(void)s;
	assert_int_equal(url_split("https://h:1/a?b", &o, &p), 0);
	assert_string_equal(o, "https://h:1");
	assert_string_equal(p, "/a?b");
	free(o);
	free(p);
	assert_int_equal(url_split("http://h", &o, &p), 0);
	assert_string_equal(p, "/");
	free(o);
	free(p);
	assert_int_equal(url_split("ftp://h/", &o, &p), -EINVAL);
	assert_int_equal(url_split("https:///x", &o, &p), -EINVAL);
}

static void expect_resolve(const char *base, const char *ref, const char *want)
{
	char *out = (char *)1;
	int rc = url_resolve(base, ref, &out);

	if (want) {
		assert_int_equal(rc, 0);
		assert_string_equal(out, want);
		free(out);
	} else {
		assert_int_equal(rc, -EINVAL);
		assert_null(out);
	}
}

static void test_resolve(void **s)
{
	(void)s;
	/* Redirect Locations: anywhere, as long as it is http(s). */
	expect_resolve("https://r.azurecr.io/v2/a/blobs/sha256:1",
		       "https://x.blob.core.windows.net/c/b?se=1&sig=abc",
		       "https://x.blob.core.windows.net/c/b?se=1&sig=abc");
	expect_resolve("https://r/v2/a/blobs/x", "//cdn.example/b?sig=1", "https://cdn.example/b?sig=1");
	expect_resolve("http://127.0.0.1:5000/v2/a/blobs/x", "/v2/b", "http://127.0.0.1:5000/v2/b");
	expect_resolve("http://h/v2/a/blobs/x?q=1", "y", "http://h/v2/a/blobs/y");
	expect_resolve("http://h/v2/a", "?n=2", "http://h/v2/a?n=2");
	expect_resolve("https://h/v2/", "ftp://evil/x", NULL);
	expect_resolve("https://h/v2/", "javascript://x", NULL);
	expect_resolve("https://h/v2/", "/a b", NULL);
	expect_resolve("https://h/v2/", "/a\r\nSet-Cookie: x", NULL);
	expect_resolve("https://h/v2/", "https:///nohost", NULL);
	expect_resolve("https://h/v2/", "//", NULL);
}

static void test_origins(void **s)
{
	(void)s;
	assert_true(url_same_origin("https://R.azurecr.io/v2/", "https://r.azurecr.io:443/x?y"));
	assert_true(url_same_origin("http://127.0.0.1/a", "http://127.0.0.1:80"));
	assert_true(url_same_origin("http://user:pw@h:5000/a", "http://h:5000/b"));
	assert_false(url_same_origin("http://127.0.0.1:5000/a", "http://127.0.0.1:5001/a"));
	assert_false(url_same_origin("https://h/a", "http://h/a"));
	/* A port is digits only (strtoul alone took "+5000", " 5000"). */
	assert_false(url_same_origin("https://h:+5000/a", "https://h:5000/b"));
	assert_false(url_same_origin("https://h: 5000/a", "https://h:5000/b"));
	assert_false(url_same_origin("https://h:-1/a", "https://h:5000/b"));
	assert_true(url_same_origin("https://h:05000/a", "https://h:5000/b"));
	assert_false(url_same_origin("https://h/a", "https://h.evil/a"));
	assert_false(url_same_origin("https://h@evil/a", "https://h/a"));
	assert_false(url_same_origin("https://h:0/a", "https://h:0/a"));
	assert_false(url_same_origin("ftp://h/a", "ftp://h/a"));
	assert_true(url_same_origin("http://[::1]:5000/", "http://[::1]:5000/v2/"));
	assert_false(url_same_origin("http://[::1]:5000/", "http://[::2]:5000/"));
	assert_true(url_is_https("HTTPS://h/"));
	assert_false(url_is_https("http://h/"));
	assert_true(url_is_loopback("http://127.0.0.1:5000"));
	assert_true(url_is_loopback("http://127.9.8.7/x"));
	assert_true(url_is_loopback("http://localhost:1/"));
	assert_true(url_is_loopback("http://[::1]:5000/"));
	assert_false(url_is_loopback("http://127.0.0.1.evil.com/"));
	assert_false(url_is_loopback("http://10.0.0.1/"));
	assert_false(url_is_loopback("http://myreg.azurecr.io/"));
}

static void test_for_log(void **s)
{
	char out[URL_LOG_MAX], small[24];

	(void)s;
	url_for_log("https://x.blob.core.windows.net/c/b?se=2026&sig=SECRET", out, sizeof(out));
	assert_string_equal(out, "https://x.blob.core.windows.net/c/b?[query]");
	url_for_log("http://h/v2/_catalog", out, sizeof(out));
	assert_string_equal(out, "http://h/v2/_catalog");
	url_for_log("http://h/p#frag", out, sizeof(out));
	assert_string_equal(out, "http://h/p?[query]");
	/* Cut to fit; the mark survives, the query never shows. */
	url_for_log("https://storage.example/a/very/long/path?sig=SECRET", small, sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_non_null(strstr(small, "?[query]"));
	assert_null(strstr(small, "SECRET"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_distribution),
		cmocka_unit_test(test_acr_orderby),
		cmocka_unit_test(test_absent_and_other_rels),
		cmocka_unit_test(test_relative_forms),
		cmocka_unit_test(test_refuses_other_hosts),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_url_split),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_origins),
		cmocka_unit_test(test_for_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
