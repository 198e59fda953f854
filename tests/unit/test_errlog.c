/* fs/errlog: the ring behind .acrfs/errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "fs/errlog.h"

static size_t lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_ring(void **st)
{
	struct buf b = BUF_INIT;
	char cause[64];

	(void)st;
	assert_int_equal(errlog_render(&b), 0);
	assert_int_equal(b.len, 0);
	errlog_add(0, "lookup", "/a/b", "GET http://x/v2/a/b/tags/list: HTTP 403 DENIED");
	assert_int_equal(errlog_render(&b), 0);
	assert_string_equal(buf_cstr(&b), "1970-01-01T00:00:00Z lookup /a/b GET "
					  "http://x/v2/a/b/tags/list: HTTP 403 DENIED\n");
	/* One failure is one line, whatever its bytes; empty fields show as "-". */
	buf_reset(&b);
	errlog_add(60, NULL, "/x\ny", "two\nlines\tand \x1b[31m\\");
	assert_int_equal(errlog_render(&b), 0);
	assert_non_null(strstr(buf_cstr(&b),
			       "1970-01-01T00:01:00Z - /x\\x0ay two\\x0alines\\x09and \\x1b[31m\\\\\n"));
	assert_int_equal(lines(buf_cstr(&b)), 2);
	/* The last ERRLOG_MAX are kept, oldest first. */
	for (int i = 0; i < ERRLOG_MAX + 5; i++) {
		snprintf(cause, sizeof(cause), "cause %d", i);
		errlog_add(0, "read", "/p", cause);
	}
	buf_reset(&b);
	assert_int_equal(errlog_render(&b), 0);
	assert_int_equal(lines(buf_cstr(&b)), ERRLOG_MAX);
	assert_non_null(strstr(buf_cstr(&b), "read /p cause 5\n"));
	assert_null(strstr(buf_cstr(&b), "cause 4\n"));
	assert_non_null(strstr(buf_cstr(&b), "cause 104\n"));
	assert_true(strstr(buf_cstr(&b), "cause 5\n") < strstr(buf_cstr(&b), "cause 104\n"));
	assert_int_equal(errlog_total(), ERRLOG_MAX + 7);
	buf_release(&b);
}

static void test_cut(void **st)
{
	char big[4000];
	struct buf b = BUF_INIT;

	(void)st;
	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	errlog_add(0, "opendir-and-a-very-long-name", big, big);
	assert_int_equal(errlog_render(&b), 0);
	/* Cut to the field sizes, never in the middle of an escape: one line. */
	const char *line = buf_cstr(&b) + b.len - 1;

	while (line > buf_cstr(&b) && line[-1] != '\n')
		line--;
	assert_int_equal(strlen(line), 21 + (ERRLOG_OP_MAX - 1) + 1 + (ERRLOG_PATH_MAX - 1) / 4 * 4 +
						1 + (ERRLOG_CAUSE_MAX - 1) / 4 * 4 + 1);
	assert_non_null(strstr(line, " opendir-and-a-v \\x0a\\x0a"));
	assert_int_equal(strchr(line, '\n') - line, (long)strlen(line) - 1);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
