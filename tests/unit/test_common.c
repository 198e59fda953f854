/* buf and the redacting logger. */
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
#include "common/strvec.h"

static void test_buf(void **s)
{
	struct buf b = BUF_INIT;
	char *p;
	size_t n;

	(void)s;
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_addf(&b, "%d-%s", 42, "x"), 0);
	assert_int_equal(buf_addch(&b, '\0'), 0);
	assert_int_equal(buf_add(&b, "yz", 2), 0);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "42-x\0yz", 8);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_adds(&b, "abcdef"), 0);
	assert_int_equal(b.len, 60007);
	assert_int_equal(b.data[b.len], '\0');
	buf_reset(&b);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_adds(&b, "keep"), 0);
	p = buf_detach(&b, &n);
	assert_string_equal(p, "keep");
	assert_int_equal(n, 4);
	assert_null(b.data);
	free(p);
	assert_int_equal(buf_grow(&b, SIZE_MAX), -ENOMEM);
	buf_release(&b);
}

static void test_strvec(void **s)
{
	struct strvec v = STRVEC_INIT;

	(void)s;
	strvec_push(&v, "b");
	strvec_push(&v, "a");
	strvec_push(&v, "b");
	strvec_push(&v, "a/b");
	strvec_sort_unique(&v);
	assert_int_equal(v.n, 3);
	assert_string_equal(v.v[0], "a");
	assert_string_equal(v.v[1], "a/b");
	assert_int_equal(strvec_find(&v, "b"), 2);
	assert_int_equal(strvec_find(&v, "c"), -1);
	assert_int_equal(strvec_lower_bound(&v, "a/"), 1);
	assert_null(v.v[v.n]);
	strvec_clear(&v);
}

static void test_redact(void **s)
{
	char out[512];

	(void)s;
	assert_int_equal(log_secret("s3cr3t-pass"), 0);
	log_redact("login with s3cr3t-pass failed", out, sizeof(out));
	assert_string_equal(out, "login with [redacted] failed");
	assert_int_equal(log_secret("opaque"), 0);
	assert_int_equal(log_secret("opaqueSecretValue123"), 0);
	log_redact("x opaqueSecretValue123 y", out, sizeof(out));
	assert_string_equal(out, "x [redacted] y");
	log_redact("Authorization: Bearer abc.def-ghi", out, sizeof(out));
	assert_null(strstr(out, "abc.def-ghi"));
	log_redact("Authorization: Basic dXNlcjpwYXNz", out, sizeof(out));
	assert_null(strstr(out, "dXNlcjpwYXNz"));
	log_redact("token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl end", out,
		   sizeof(out));
	assert_string_equal(out, "token [redacted] end");
	log_redact("grant_type=refresh_token&refresh_token=RTOKEN123&service=x", out, sizeof(out));
	assert_null(strstr(out, "RTOKEN123"));
	log_redact("GET https://h/v2/alpha/tags/list: HTTP 404 NAME_UNKNOWN", out, sizeof(out));
	assert_string_equal(out, "GET https://h/v2/alpha/tags/list: HTTP 404 NAME_UNKNOWN");
	/* truncation keeps the output terminated */
	log_redact("0123456789", out, 5);
	assert_string_equal(out, "0123");
	/* Registry-supplied text cannot forge a line or drive a terminal. */
	log_redact("msg \x1b[31mred\nFORGED: x\r\ty\x7f", out, sizeof(out));
	assert_string_equal(out, "msg \\x1b[31mred\\x0aFORGED: x\\x0d\\x09y\\x7f");
	/* UTF-8 passes. */
	log_redact("caf\xc3\xa9", out, sizeof(out));
	assert_string_equal(out, "caf\xc3\xa9");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_strvec),
		cmocka_unit_test(test_redact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
