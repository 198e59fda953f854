/*
 * Unit tests for image/bpipe: what the consumer sees (every byte once, in
 * order, in whole slots but the last) with and without a worker thread,
 * errors, and stopping early.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "image/bpipe.h"

struct seen {
	struct buf bytes;
	size_t calls, short_calls, slot;
	size_t fail_at; /* fail the call that would pass this many bytes (0: never) */
};

static int consume(void *ctx, const void *data, size_t n)
{
	struct seen *s = ctx;

	if (s->fail_at && s->bytes.len + n >= s->fail_at)
		return -ENOSPC;
	s->calls++;
	s->short_calls += n != s->slot;
	return buf_add(&s->bytes, data, n);
}

static unsigned char *pattern(size_t n)
{
	unsigned char *p = malloc(n);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 131 + (i >> 11));
	return p;
}

static void run(bool thread, size_t slot, unsigned nslots, size_t n, size_t piece)
{
	unsigned char *d = pattern(n);
	struct seen s = { BUF_INIT, 0, 0, slot, 0 };
	struct bpipe *p;
	size_t off = 0;

	assert_int_equal(bpipe_new(&p, slot, nslots, thread, consume, &s), 0);
	while (off < n) {
		size_t k = piece < n - off ? piece : n - off;

		assert_int_equal(bpipe_write(p, d + off, k), 0);
		off += k;
	}
	assert_int_equal(bpipe_close(p), 0);
	assert_int_equal(s.bytes.len, n);
	assert_memory_equal(s.bytes.data, d, n);
	assert_int_equal(s.calls, (n + slot - 1) / slot);
	assert_true(s.short_calls <= 1); /* only the last slot may be short */
	bpipe_free(p);
	buf_release(&s.bytes);
	free(d);
}

static void test_order_and_slots(void **state)
{
	(void)state;
	run(true, 4096, 2, 1 << 20, 1);
	run(true, 4096, 2, (1 << 20) + 17, 5000);
	run(true, 65536, 8, 3 << 20, 1 << 20);
	run(false, 4096, 2, (1 << 20) + 17, 777);
	run(false, 65536, 4, 0, 1);
	run(true, 65536, 4, 0, 1);
}

static void test_errors(void **state)
{
	size_t n = 4 << 20, off;
	unsigned char *d = pattern(n);
	int pass;

	(void)state;
	for (pass = 0; pass < 2; pass++) {
		struct seen s = { BUF_INIT, 0, 0, 65536, 1 << 20 };
		struct bpipe *p;
		int rc = 0;

		assert_int_equal(bpipe_new(&p, 65536, 4, pass == 0, consume, &s), 0);
		for (off = 0; off < n && !rc; off += 10000)
			rc = bpipe_write(p, d + off, off + 10000 <= n ? 10000 : n - off);
		/* The error comes back (from a write, or at the latest at close)
		 * and sticks; nothing after it was consumed. */
		assert_true(rc == 0 || rc == -ENOSPC);
		assert_int_equal(bpipe_close(p), -ENOSPC);
		assert_int_equal(bpipe_write(p, d, 1), -ENOSPC);
		assert_true(s.bytes.len < (1 << 20));
		assert_memory_equal(s.bytes.data, d, s.bytes.len);
		bpipe_free(p);
		buf_release(&s.bytes);
	}
	free(d);
}

static void test_free_early(void **state)
{
	/* Freed with slots posted and not closed: the worker stops, nothing leaks. */
	size_t n = 1 << 20;
	unsigned char *d = pattern(n);
	struct seen s = { BUF_INIT, 0, 0, 4096, 0 };
	struct bpipe *p;

	(void)state;
	assert_int_equal(bpipe_new(&p, 4096, 8, true, consume, &s), 0);
	assert_int_equal(bpipe_write(p, d, n), 0);
	bpipe_free(p);
	assert_true(s.bytes.len <= n);
	assert_memory_equal(s.bytes.data, d, s.bytes.len);
	bpipe_free(NULL);
	assert_int_equal(bpipe_new(&p, 0, 4, true, consume, &s), -EINVAL);
	assert_null(p);
	assert_int_equal(bpipe_new(&p, 4096, 1, true, consume, &s), -EINVAL);
	buf_release(&s.bytes);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_slots),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_free_early),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
