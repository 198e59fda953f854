/*
 * fuzz_gzip — gzip streams through the zran builder (image/zran.h), the
 * decoder every gzip layer passes through while it streams, and reads back
 * through the index it builds.
 *
 * Input: gzip bytes (any number of members, any header fields). Fed to a
 * builder (span ZRAN_SPAN_MIN) at once and again in irregular chunks: both
 * fail or both give the same output. The sink keeps at most MAX_OUT bytes (a bomb stops
 * there with -EFBIG). When the stream is valid: usize and csize are the
 * lengths seen, the index saves, loads and saves again to the same bytes,
 * one-off reads at and around every access point return the streamed bytes
 * and ask only for compressed bytes inside zran_index_comp_range()'s
 * answer, and a sequential reader gives back the whole output.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image/zran.h"
#include "tests/fuzz/fuzz.h"

#define MAX_OUT (4u << 20)
#define READ_LEN 4096u
#define SEQ_LEN (128u << 10)

struct out {
	struct buf b;
	uint64_t h;
	uint64_t n;
	bool keep;
};

static int sink(void *ctx, const void *data, size_t n)
{
	struct out *o = ctx;

	if (n > MAX_OUT - o->n)
		return -EFBIG;
	o->n += n;
	o->h = fuzz_hash(o->h, data, n);
	if (o->keep && buf_add(&o->b, data, n))
		abort();
	return 0;
}

static size_t next_chunk(uint64_t *x)
{
	static const size_t sizes[] = { 1, 2, 7, 100, 4096, 65536 };

	*x = *x * 6364136223846793005ull + 1442695040888963407ull;
	return sizes[(*x >> 33) % (sizeof(sizes) / sizeof(sizes[0]))];
}

/* Build an index; the builder's result. *out: the index on success. */
static int build(const uint8_t *data, size_t size, bool chunked, struct out *o,
		 struct zran_index **out)
{
	struct zran_builder *b = NULL;
	uint64_t x = size;
	size_t off = 0;
	int rc = 0;

	*out = NULL;
	FUZZ_CHECK(zran_builder_new(&b, ZRAN_SPAN_MIN) == 0);
	if (!chunked)
		rc = zran_builder_feed(b, data, size, sink, o);
	while (chunked && !rc && off < size) {
		size_t k = next_chunk(&x);

		if (k > size - off)
			k = size - off;
		rc = zran_builder_feed(b, data + off, k, sink, o);
		off += k;
	}
	if (rc)
		FUZZ_CHECK(zran_builder_feed(b, "x", 1, sink, o) == rc); /* sticky */
	if (!rc)
		rc = zran_builder_finish(b, out);
	else
		FUZZ_CHECK(zran_builder_finish(b, out) == rc && !*out);
	zran_builder_free(b);
	FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -EFBIG);
	FUZZ_CHECK(!rc == !!*out);
	return rc;
}

static void check_read(const struct zran_index *x, struct fuzz_src *s, const struct out *o,
		       uint64_t off, unsigned char *buf)
{
	uint64_t cstart, cend, want;
	ssize_t n;

	if (off >= o->n)
		return;
	want = o->n - off < READ_LEN ? o->n - off : READ_LEN;
	s->lo = UINT64_MAX;
	s->hi = 0;
	n = zran_read(x, fuzz_src_read, s, off, buf, READ_LEN);
	FUZZ_CHECK(n == (ssize_t)want && !memcmp(buf, o->b.data + off, want));
	FUZZ_CHECK(zran_index_comp_range(x, off, READ_LEN, &cstart, &cend) == 0);
	FUZZ_CHECK(cstart <= cend && cend <= s->n);
	FUZZ_CHECK(s->lo >= cstart && s->hi <= cend + ZRAN_READ_CHUNK);
}

static void check_index(const struct zran_index *x, const uint8_t *data, size_t size,
			const struct out *o)
{
	struct fuzz_src s = { data, size, 0, 0 };
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct zran_index *y = NULL;
	struct zran_reader *r = NULL;
	unsigned char *buf = malloc(SEQ_LEN);
	uint64_t span = zran_index_span(x), off, k;

	if (!buf)
		abort();
	FUZZ_CHECK(zran_index_usize(x) == o->n && zran_index_csize(x) == size);
	FUZZ_CHECK(span == ZRAN_SPAN_MIN && zran_index_npoints(x) >= 1);
	FUZZ_CHECK(zran_index_npoints(x) <= o->n / span + 1);
	FUZZ_CHECK(zran_index_save(x, &a) == 0);
	FUZZ_CHECK(zran_index_load(&y, a.data, a.len) == 0);
	FUZZ_CHECK(zran_index_save(y, &b) == 0);
	FUZZ_CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len));
	/* Around every span boundary, where access points are. */
	for (k = 0; k * span < o->n && k < 64; k++) {
		check_read(y, &s, o, k * span, buf);
		if (k)
			check_read(y, &s, o, k * span - READ_LEN / 2, buf);
	}
	check_read(y, &s, o, o->n ? o->n - 1 : 0, buf);
	FUZZ_CHECK(zran_reader_new(&r, y, fuzz_src_read, &s) == 0);
	for (off = 0; off < o->n; off += SEQ_LEN) {
		ssize_t n = zran_reader_pread(r, off, buf, SEQ_LEN);
		uint64_t want = o->n - off < SEQ_LEN ? o->n - off : SEQ_LEN;

		FUZZ_CHECK(n == (ssize_t)want && !memcmp(buf, o->b.data + off, want));
	}
	FUZZ_CHECK(zran_reader_pread(r, o->n, buf, 1) == 0);
	zran_reader_free(r);
	zran_index_free(y);
	buf_release(&a);
	buf_release(&b);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct out a = { BUF_INIT, FUZZ_HASH_INIT, 0, true };
	struct out b = { BUF_INIT, FUZZ_HASH_INIT, 0, false };
	struct zran_index *xa = NULL, *xb = NULL;
	int rca, rcb;

	fuzz_setup();
	rca = build(data, size, false, &a, &xa);
	rcb = build(data, size, true, &b, &xb);
	/* On an error, how much output came before it may depend on the
	 * chunking; whether there is one may not. */
	FUZZ_CHECK(!rca == !rcb);
	if (!rca) {
		FUZZ_CHECK(a.n == b.n && a.h == b.h);
		check_index(xa, data, size, &a);
	}
	zran_index_free(xa);
	zran_index_free(xb);
	buf_release(&a.b);
	return 0;
}
