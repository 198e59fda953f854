/* ACR's /acr/v1 helpers: times (RFC 3339 UTC), lock names, attributes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "registry/acr.h"

static void test_time_parse(void **s)
{
	struct timespec t;
	char buf[ACR_TIME_SIZE];

	(void)s;
	assert_int_equal(acr_time_parse("2026-12-02T10:40:37.1234567Z", &t), 0);
	assert_int_equal(t.tv_sec, 1796208037);
	assert_int_equal(t.tv_nsec, 123456700);
	assert_string_equal(acr_time_format(&t, buf, sizeof(buf)), "2026-12-02T10:40:37.1234567Z");
	assert_int_equal(acr_time_parse("1970-01-01T00:00:01Z", &t), 0);
	assert_int_equal(t.tv_sec, 1);
	assert_int_equal(t.tv_nsec, 0);
	assert_int_equal(acr_time_parse("2026-01-02T03:04:05.999999999Z", &t), 0);
	assert_int_equal(t.tv_nsec, 999999999);
	/* Not ACR's form: unknown (tv_sec 0). */
	static const char *const bad[] = {
		"", "2026-12-02", "2026-12-02T10:40:37", "2026-12-02T10:40:37+01:00",
		"2026-12-02T10:40:37.Z", "2026-12-02T10:40:37.1234567890Z", "2026-13-02T10:40:37Z",
		"2026-12-02T24:40:37Z", "20x6-12-02T10:40:37Z", "2026-12-02T10:40:37Zjunk",
		"1969-12-31T23:59:59Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(acr_time_parse(bad[i], &t), -EINVAL);
		assert_int_equal(t.tv_sec, 0);
	}
	assert_int_equal(acr_time_parse(NULL, &t), -EINVAL);
}

static void test_locks(void **s)
{
	struct acr_attrs a = { true, true, true, true };
	char buf[ACR_ATTRS_SIZE];

	(void)s;
	assert_false(acr_locked(&a));
	assert_string_equal(acr_lock_name(&a), "");
	a.delete_enabled = false;
	assert_true(acr_locked(&a));
	assert_string_equal(acr_lock_name(&a), "deleteEnabled=false");
	a.write_enabled = false;
	assert_string_equal(acr_lock_name(&a), "writeEnabled=false, deleteEnabled=false");
	a.delete_enabled = true;
	assert_string_equal(acr_lock_name(&a), "writeEnabled=false");
	a.read_enabled = false;
	assert_string_equal(acr_attrs_format(&a, buf, sizeof(buf)),
			    "{\"deleteEnabled\":true,\"writeEnabled\":false,\"readEnabled\":false,"
			    "\"listEnabled\":true}");
	/* readEnabled / listEnabled are no lock on changes. */
	a = (struct acr_attrs){ true, true, false, false };
	assert_false(acr_locked(&a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_locks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
