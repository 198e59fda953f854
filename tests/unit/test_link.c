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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
