/*
 * Unit tests for image/pfetch: a blob (or its rest after a stream) read by
 * concurrent ranged reads reaches the sink whole, once and in order; its
 * digest is checked; a source whose ranges are not known to work gets
 * -ENOTSUP (nothing delivered); read and sink errors stop everything.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "image/pfetch.h"
#include "layerw.h"

struct got {
	struct buf bytes;
	uint64_t calls;
	size_t fail_after; /* fail once this many bytes arrived (0: never) */
};

static int sink(void *ctx, const void *data, size_t n)
{
	struct got *g = ctx;

	if (g->fail_after && g->bytes.len >= g->fail_after)
		return -ENOSPC;
	g->calls++;
	return buf_add(&g->bytes, data, n);
}

/* pfetch_stream from `off` of `blob` (the hasher primed with its bytes
 * before `off`). */
static int pf(struct blob_source *src, const struct digest *d, const struct buf *blob,
	      uint64_t off, unsigned conns, size_t chunk, struct got *g)
{
	struct digest_hasher *h;
	int rc;

	tw_must(digest_hasher_new(&h));
	tw_must(digest_hasher_update(h, blob->data, (size_t)off));
	rc = pfetch_stream(src, d, blob->len, off, h, conns, chunk, sink, g);
	digest_hasher_free(h);
	return rc;
}

/* Incompressible bytes (no reason a chunk would look like another). */
static void gen_blob(struct buf *b, size_t n, uint64_t seed)
{
	uint64_t x = seed;
	size_t i;

	tw_must(buf_grow(b, n));
	for (i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		b->data[i] = (char)(x >> 56);
	}
	b->len = n;
}

static void test_in_order(void **state)
{
	static const struct {
		size_t n, off, chunk;
		unsigned conns;
	} cases[] = {
		{ (5u << 20) + 123, 0, 64u << 10, 4 }, /* 81 chunks, the last short */
		{ 5u << 20, 0, 64u << 10, 1 },
		{ 1u << 20, 0, 1u << 20, 4 }, /* one chunk: no fetcher thread */
		{ 3u << 20, 0, 100000, 16 },
		{ 1000, 0, 4096, 4 },
		{ 5u << 20, (2u << 20) + 7, 64u << 10, 4 }, /* the rest of a stream */
		{ 5u << 20, (5u << 20) - 1, 64u << 10, 4 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tsrc s = { 0 };
		struct blob_source src = tsrc_source(&s);
		struct buf blob = BUF_INIT;
		struct got g = { BUF_INIT, 0, 0 };
		struct digest d;

		gen_blob(&blob, cases[i].n, i + 1);
		d = tsrc_add(&s, &blob, NULL);
		size_t rest = blob.len - cases[i].off;

		assert_int_equal(pf(&src, &d, &blob, cases[i].off, cases[i].conns, cases[i].chunk,
				    &g),
				 0);
		assert_int_equal(g.bytes.len, rest);
		assert_memory_equal(g.bytes.data, blob.data + cases[i].off, rest);
		assert_int_equal(s.stream_calls, 0);
		assert_int_equal(s.pread_calls, (rest + cases[i].chunk - 1) / cases[i].chunk);
		assert_int_equal(s.pread_bytes, rest);
		buf_release(&g.bytes);
		buf_release(&blob);
	}
}

static void test_short_reads(void **state)
{
	/* A source answering 1000 bytes at a time: chunks are completed. */
	struct tsrc s = { 0 };
	struct blob_source src = tsrc_source(&s);
	struct buf blob = BUF_INIT;
	struct got g = { BUF_INIT, 0, 0 };
	struct digest d;

	(void)state;
	gen_blob(&blob, 300000, 7);
	d = tsrc_add(&s, &blob, NULL);
	s.fault = TSRC_SHORT;
	s.fault_left = -1;
	assert_int_equal(pf(&src, &d, &blob, 0, 3, 16384, &g), 0);
	assert_int_equal(g.bytes.len, blob.len);
	assert_memory_equal(g.bytes.data, blob.data, blob.len);
	assert_true(s.pread_calls >= blob.len / 1000);
	buf_release(&g.bytes);
	buf_release(&blob);
}

static void test_no_ranges(void **state)
{
	/* Ranges ignored, unknown, or no way to ask: -ENOTSUP after one read
	 * at most, and the sink saw nothing. */
	static const int answers[] = { 0, -1, 99 };
	struct buf blob = BUF_INIT;
	size_t i;

	(void)state;
	gen_blob(&blob, 1u << 20, 3);
	for (i = 0; i < 3; i++) {
		struct tsrc s = { 0 };
		struct blob_source src = tsrc_source(&s);
		struct got g = { BUF_INIT, 0, 0 };
		struct digest d = tsrc_add(&s, &blob, NULL);

		if (answers[i] == 99) {
			src.ranges = NULL;
		} else if (answers[i] == 0) { /* the server sent 200s */
			s.fault = TSRC_NORANGE;
			s.fault_left = -1;
		} else {
			s.ranges = answers[i];
		}
		assert_int_equal(pf(&src, &d, &blob, 0, 4, 65536, &g), -ENOTSUP);
		assert_int_equal(g.calls, 0);
		assert_true(s.pread_calls <= 1);
		buf_release(&g.bytes);
	}
	buf_release(&blob);
}

static void test_digest_mismatch(void **state)
{
	/* Bytes that are not the blob: all delivered (the caller builds as
	 * they come), then -EIO, and the log names the blob. */
	struct tsrc s = { 0 };
	struct blob_source src = tsrc_source(&s);
	struct buf blob = BUF_INIT, bad = BUF_INIT;
	struct got g = { BUF_INIT, 0, 0 };
	struct digest d;

	(void)state;
	gen_blob(&blob, 2u << 20, 4);
	d = tsrc_add(&s, &blob, NULL);
	tw_must(buf_add(&bad, blob.data, blob.len));
	bad.data[1234567] ^= 1;
	s.blobs[0].data = &bad;
	assert_int_equal(pf(&src, &d, &blob, 0, 4, 65536, &g), -EIO);
	assert_int_equal(g.bytes.len, blob.len);
	buf_release(&g.bytes);
	buf_release(&bad);
	buf_release(&blob);
}

/* A source whose preads fail from offset `fail_from` on. */
struct failsrc {
	struct tsrc t;
	uint64_t fail_from;
};

static ssize_t fail_pread(void *ctx, const struct digest *d, uint64_t size, void *buf,
			  size_t len, uint64_t off)
{
	struct failsrc *f = ctx;

	if (off >= f->fail_from)
		return -ECONNRESET;
	return tsrc_pread(&f->t, d, size, buf, len, off);
}

static void test_errors(void **state)
{
	struct failsrc f;
	struct blob_source src;
	struct buf blob = BUF_INIT;
	struct digest d;
	struct got g = { BUF_INIT, 0, 0 };

	(void)state;
	memset(&f, 0, sizeof(f));
	src = tsrc_source(&f.t);
	src.pread = fail_pread;
	src.ctx = &f;
	gen_blob(&blob, 4u << 20, 5);
	d = tsrc_add(&f.t, &blob, NULL);
	/* A read fails in the middle: its error, and only a prefix arrived. */
	f.fail_from = 2u << 20;
	assert_int_equal(pf(&src, &d, &blob, 0, 4, 65536, &g), -ECONNRESET);
	assert_true(g.bytes.len <= f.fail_from);
	assert_memory_equal(g.bytes.data, blob.data, g.bytes.len);
	buf_release(&g.bytes);
	/* The first read fails: its error (not -ENOTSUP: the blob cannot be read). */
	f.fail_from = 0;
	g = (struct got){ BUF_INIT, 0, 0 };
	assert_int_equal(pf(&src, &d, &blob, 0, 4, 65536, &g), -ECONNRESET);
	assert_int_equal(g.calls, 0);
	/* The sink fails: its error, the fetchers stop. */
	f.fail_from = UINT64_MAX;
	g = (struct got){ BUF_INIT, 0, 1u << 20 };
	assert_int_equal(pf(&src, &d, &blob, 0, 4, 65536, &g), -ENOSPC);
	assert_int_equal(g.bytes.len, 1u << 20);
	buf_release(&g.bytes);
	/* Arguments: nothing to fetch, no connection, no chunk. */
	assert_int_equal(pf(&src, &d, &blob, blob.len, 4, 65536, &g), -EINVAL);
	assert_int_equal(pf(&src, &d, &blob, 0, 0, 65536, &g), -EINVAL);
	assert_int_equal(pf(&src, &d, &blob, 0, PFETCH_CONNS_MAX + 1, 65536, &g),
			 -EINVAL);
	assert_int_equal(pf(&src, &d, &blob, 0, 4, 0, &g), -EINVAL);
	buf_release(&blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_short_reads),
		cmocka_unit_test(test_no_ranges),
		cmocka_unit_test(test_digest_mismatch),
		cmocka_unit_test(test_errors),
	};

	log_init(LOG_LVL_ERROR, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
