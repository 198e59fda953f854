/* image/progress: the table of layer loads in progress behind .acrfs/loads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "image/progress.h"

static struct digest dg(char c)
{
	struct digest d;
	char s[DIGEST_STR_SIZE];

	memcpy(s, "sha256:", 7);
	memset(s + 7, c, DIGEST_HEX_LEN);
	s[7 + DIGEST_HEX_LEN] = '\0';
	assert_int_equal(digest_parse(&d, s), 0);
	return d;
}

static void test_table(void **st)
{
	struct digest a = dg('a'), b = dg('b');
	struct progress_load *pa, *pb;
	struct progress_snap *s;
	uint64_t loads0, bytes0, loads, bytes;
	char line[256];

	(void)st;
	progress_totals(&loads0, &bytes0);
	assert_int_equal(progress_snapshot(&s), 0);
	assert_null(s);
	pa = progress_begin("ssongman/userlist", &a, 3u << 20);
	pb = progress_begin("other", &b, 0);
	assert_non_null(pa);
	assert_non_null(pb);
	progress_advance(pa, 1u << 20);
	progress_advance(pa, 512u << 10);
	progress_advance(NULL, 7); /* a failed begin is harmless */
	assert_int_equal(progress_snapshot(&s), 2);
	/* Oldest first, with what each has received. */
	assert_string_equal(s[0].repo, "ssongman/userlist");
	assert_int_equal(s[0].done, 3u << 19);
	assert_int_equal(s[0].total, 3u << 20);
	assert_true(s[0].elapsed >= 0);
	assert_string_equal(s[1].repo, "other");
	assert_int_equal(s[1].done, 0);
	progress_format(&s[0], line, sizeof(line));
	assert_non_null(strstr(line, "ssongman/userlist sha256:aaaaaaaaaaaa 1.50 MiB / 3.00 MiB  50%"));
	progress_format(&s[1], line, sizeof(line));
	assert_non_null(strstr(line, "other sha256:bbbbbbbbbbbb 0 B / ?"));
	/* A short buffer cuts the line, never overflows it. */
	progress_format(&s[0], line, 8);
	assert_string_equal(line, "ssongma");
	free(s);

	progress_end(pa, 0);
	progress_end(pb, -5);
	progress_end(NULL, 0);
	assert_int_equal(progress_snapshot(&s), 0);
	progress_totals(&loads, &bytes);
	/* Only the successful load counts. */
	assert_int_equal(loads - loads0, 1);
	assert_int_equal(bytes - bytes0, 3u << 19);
}

static void test_bytes(void **st)
{
	char b[32];

	(void)st;
	assert_string_equal(progress_bytes(0, b, sizeof(b)), "0 B");
	assert_string_equal(progress_bytes(1023, b, sizeof(b)), "1023 B");
	assert_string_equal(progress_bytes(1536, b, sizeof(b)), "1.50 KiB");
	assert_string_equal(progress_bytes(12900000, b, sizeof(b)), "12.3 MiB");
	assert_string_equal(progress_bytes(456ull << 20, b, sizeof(b)), "456 MiB");
	assert_string_equal(progress_bytes(4ull << 30, b, sizeof(b)), "4.00 GiB");
}

static void *advancer(void *arg)
{
	for (int i = 0; i < 10000; i++)
		progress_advance(arg, 3);
	return NULL;
}

static void test_concurrent(void **st)
{
	struct digest a = dg('c');
	struct progress_load *p = progress_begin("c", &a, 0);
	pthread_t t[4];
	struct progress_snap *s;
	long n;

	(void)st;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, advancer, p), 0);
	/* Snapshots while the sinks advance: never a torn or freed load. */
	for (int i = 0; i < 100; i++) {
		n = progress_snapshot(&s);
		assert_int_equal(n, 1);
		assert_true(s[0].done <= 4 * 10000 * 3);
		free(s);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(progress_snapshot(&s), 1);
	assert_int_equal(s[0].done, 4 * 10000 * 3);
	free(s);
	progress_end(p, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
