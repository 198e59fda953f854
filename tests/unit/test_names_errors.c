/* Repository / tag grammar, registry URL parsing, and the errno tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "registry/errors.h"
#include "registry/names.h"
#include "registry/registry.h"

static void test_repo_names(void **s)
{
	(void)s;
	assert_true(repo_name_valid("ssongman/userlist"));
	assert_true(repo_name_valid("ns/deep/nested/repo042"));
	assert_true(repo_name_valid("a.b_c__d---e"));
	assert_false(repo_name_valid(""));
	assert_false(repo_name_valid("Upper"));
	assert_false(repo_name_valid("a//b"));
	assert_false(repo_name_valid("/a"));
	assert_false(repo_name_valid("a/"));
	assert_false(repo_name_valid("../etc"));
	assert_false(repo_name_valid("a/./b"));
	assert_false(repo_name_valid("a___b"));
	assert_false(repo_name_valid("a-"));
	assert_false(repo_name_valid("a:b"));
}

static void test_tags(void **s)
{
	char long_tag[130];

	(void)s;
	assert_true(tag_valid("v1"));
	assert_true(tag_valid("1.0.0-rc.1"));
	assert_true(tag_valid("_x"));
	assert_true(tag_valid("Latest"));
	assert_false(tag_valid(".hidden"));
	assert_false(tag_valid("-x"));
	assert_false(tag_valid("a:b"));
	assert_false(tag_valid("sha256:abc"));
	assert_false(tag_valid(""));
	memset(long_tag, 'a', 128);
	long_tag[128] = '\0';
	assert_true(tag_valid(long_tag));
	long_tag[128] = 'a';
	long_tag[129] = '\0';
	assert_false(tag_valid(long_tag));
}

static void test_url_parse(void **s)
{
	char *u, *h;

	(void)s;
	assert_int_equal(registry_url_parse("myreg.azurecr.io", &u, &h), 0);
	assert_string_equal(u, "https://myreg.azurecr.io");
	assert_string_equal(h, "myreg.azurecr.io");
	free(u);
	free(h);
	assert_int_equal(registry_url_parse("http://127.0.0.1:5000/", &u, &h), 0);
	assert_string_equal(u, "http://127.0.0.1:5000");
	assert_string_equal(h, "127.0.0.1:5000");
	free(u);
	free(h);
	assert_int_equal(registry_url_parse("HTTPS://Reg.Example:8443", &u, &h), 0);
	assert_string_equal(u, "https://reg.example:8443");
	free(u);
	free(h);
	assert_int_equal(registry_url_parse("ftp://x", &u, &h), -EINVAL);
	assert_int_equal(registry_url_parse("https://", &u, &h), -EINVAL);
	assert_int_equal(registry_url_parse("https://h/v2/", &u, &h), -EINVAL);
	assert_int_equal(registry_url_parse("user@h", &u, &h), -EINVAL);
	assert_int_equal(registry_url_parse("h?x=1", &u, &h), -EINVAL);
}

static void test_errno_table(void **s)
{
	(void)s;
	assert_int_equal(registry_errno(200, NULL), 0);
	assert_int_equal(registry_errno(202, ""), 0);
	assert_int_equal(registry_errno(404, "NAME_UNKNOWN"), -ENOENT);
	assert_int_equal(registry_errno(404, NULL), -ENOENT);
	assert_int_equal(registry_errno(401, "UNAUTHORIZED"), -EACCES);
	assert_int_equal(registry_errno(403, "DENIED"), -EACCES);
	assert_int_equal(registry_errno(405, "UNSUPPORTED"), -EPERM);
	assert_int_equal(registry_errno(400, "UNSUPPORTED"), -EPERM);
	assert_int_equal(registry_errno(429, "TOOMANYREQUESTS"), -EIO);
	assert_int_equal(registry_errno(503, NULL), -EIO);
	assert_int_equal(registry_errno(500, "SOMETHING_NEW"), -EIO);
	assert_int_equal(registry_errno(400, "PAGINATION_NUMBER_INVALID"), -EINVAL);
	/* ACR: a lock's refusal; an unknown tag of /acr/v1. */
	assert_int_equal(registry_errno(405, "REGISTRY_DISALLOWED_OPERATION"), -EPERM);
	assert_int_equal(registry_errno(404, "TAG_UNKNOWN"), -ENOENT);
	assert_non_null(registry_error_hint("REGISTRY_DISALLOWED_OPERATION"));
	assert_null(registry_error_hint("UNSUPPORTED"));
	assert_null(registry_error_hint(NULL));
}

static void test_error_json(void **s)
{
	const char *ok = "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"repository "
			 "name not known to registry\",\"detail\":{\"name\":\"x\"}}]}";
	char code[32], msg[16];

	(void)s;
	registry_error_parse(ok, strlen(ok), code, sizeof(code), msg, sizeof(msg));
	assert_string_equal(code, "NAME_UNKNOWN");
	assert_string_equal(msg, "repository name"); /* truncated, terminated */
	registry_error_parse("<html>502</html>", 16, code, sizeof(code), msg, sizeof(msg));
	assert_string_equal(code, "");
	registry_error_parse("{\"errors\":\"x\"}", 14, code, sizeof(code), NULL, 0);
	assert_string_equal(code, "");
	registry_error_parse("{\"errors\":[{\"code\":7}]}", 23, code, sizeof(code), NULL, 0);
	assert_string_equal(code, "");
	registry_error_parse(NULL, 0, code, sizeof(code), msg, sizeof(msg));
	assert_string_equal(msg, "");
	{
		/* A detail in words (ACR names the lock there) completes the message. */
		const char *acr = "{\"errors\":[{\"code\":\"REGISTRY_DISALLOWED_OPERATION\","
				  "\"message\":\"disallowed\",\"detail\":\"a:b has "
				  "deleteEnabled=false\"}]}";
		char m2[64];

		registry_error_parse(acr, strlen(acr), code, sizeof(code), m2, sizeof(m2));
		assert_string_equal(code, "REGISTRY_DISALLOWED_OPERATION");
		assert_string_equal(m2, "disallowed: a:b has deleteEnabled=false");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repo_names), cmocka_unit_test(test_tags),
		cmocka_unit_test(test_url_parse), cmocka_unit_test(test_errno_table),
		cmocka_unit_test(test_error_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
