/* registry/http: which kind of request a URL is, for the counters of .acrfs/status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "registry/http.h"

static void test_kinds(void **s)
{
	(void)s;
	assert_int_equal(http_kind_of("https://r.io/v2/_catalog?n=100"), HTTP_K_CATALOG);
	assert_int_equal(http_kind_of("https://r.io/acr/v1/_catalog"), HTTP_K_CATALOG);
	assert_int_equal(http_kind_of("https://r.io/v2/a/b/tags/list?n=10&last=x"), HTTP_K_TAGS);
	assert_int_equal(http_kind_of("https://r.io/acr/v1/a/_tags/v1"), HTTP_K_TAGS);
	assert_int_equal(http_kind_of("http://127.0.0.1:5000/v2/a/manifests/v1"),
			 HTTP_K_MANIFEST);
	assert_int_equal(http_kind_of("https://r.io/v2/a/blobs/sha256:00"), HTTP_K_BLOB);
	assert_int_equal(http_kind_of("https://r.io/v2/a/blobs/uploads/?mount=x"), HTTP_K_BLOB);
	/* The last marker decides: repositories may have such components. */
	assert_int_equal(http_kind_of("https://r.io/v2/x/blobs/y/manifests/v1"),
			 HTTP_K_MANIFEST);
	assert_int_equal(http_kind_of("https://r.io/v2/x/manifests/y/tags/list"), HTTP_K_TAGS);
	/* Token services: ACR's /oauth2/, docker's /token; the query does not count. */
	assert_int_equal(http_kind_of("https://r.io/oauth2/token?scope=repository:a/blobs/"),
			 HTTP_K_TOKEN);
	assert_int_equal(http_kind_of("https://r.io/oauth2/exchange"), HTTP_K_TOKEN);
	assert_int_equal(http_kind_of("https://auth.docker.io/token?service=x"), HTTP_K_TOKEN);
	assert_int_equal(http_kind_of("https://r.io/v2/"), HTTP_K_OTHER);
	assert_int_equal(http_kind_of("https://r.io"), HTTP_K_OTHER);
	assert_int_equal(http_kind_of("not a url"), HTTP_K_OTHER);
	assert_string_equal(http_kind_name(HTTP_K_BLOB), "blob");
	assert_string_equal(http_kind_name(HTTP_K_OTHER), "other");
}

static void test_fresh_counters(void **s)
{
	struct http *h;
	struct http_stats st;

	(void)s;
	assert_int_equal(http_new(&h, NULL), 0);
	http_stats_get(h, &st);
	assert_int_equal(st.requests[HTTP_K_BLOB][HTTP_C_2XX], 0);
	assert_int_equal(st.retries, 0);
	assert_int_equal(st.bytes, 0);
	http_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_fresh_counters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
