/*
 * Unit tests for image/zran: every read is compared with the data the
 * test generated and compressed itself (zlib at several levels, multi-member
 * streams with all optional header fields, and /usr/bin/gzip's output).
 * Every test runs once per inflate engine (zlib, and ISA-L when built in);
 * test_engines_agree builds and reads across the two.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "common/log.h"
#include "image/zran.h"

/* ---- data and compression helpers -------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

/* A mix of text-like, random, and zero-run segments of random length. */
static unsigned char *gen_data(size_t n, uint64_t seed)
{
	static const char *const words[] = { "layer ", "registry ", "manifest ", "blob ",
					     "sha256 ", "tar ", "gzip ", "\n", "usr/lib/ ",
					     "config ", "index ", "zran " };
	unsigned char *d = malloc(n ? n : 1);
	size_t i = 0;

	assert_non_null(d);
	rng_state = seed;
	while (i < n) {
		size_t seg = 1024 + rnd() % (200 << 10), kind = rnd() % 4, j;

		if (seg > n - i)
			seg = n - i;
		for (j = 0; j < seg;) {
			if (kind <= 1) { /* text */
				const char *w = words[rnd() % 12];
				size_t k = strlen(w);

				if (k > seg - j)
					k = seg - j;
				memcpy(d + i + j, w, k);
				j += k;
			} else if (kind == 2) { /* incompressible */
				d[i + j++] = (unsigned char)rnd();
			} else { /* runs */
				d[i + j] = (unsigned char)(j / 4096);
				j++;
			}
		}
		i += seg;
	}
	return d;
}

/* Append one gzip member of d[0, n) to out; hdr may be NULL. */
static void gz_member(const unsigned char *d, size_t n, int level, gz_header *hdr,
		      struct buf *out)
{
	z_stream s;
	size_t cap;

	memset(&s, 0, sizeof(s));
	assert_int_equal(deflateInit2(&s, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
	if (hdr)
		assert_int_equal(deflateSetHeader(&s, hdr), Z_OK);
	cap = deflateBound(&s, n) + 1024;
	assert_int_equal(buf_grow(out, cap), 0);
	s.next_in = (Bytef *)d;
	s.avail_in = (uInt)n;
	s.next_out = (Bytef *)out->data + out->len;
	s.avail_out = (uInt)cap;
	assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
	out->len += s.total_out;
	deflateEnd(&s);
}

/* Several members of random size (one empty), with extra/name/comment/hcrc. */
static void gz_multi(const unsigned char *d, size_t n, struct buf *out)
{
	static unsigned char extra[] = { 'A', 'C', 4, 0, 1, 2, 3, 4 };
	size_t off = 0, m = 0;

	while (off < n) {
		size_t k = m == 2 ? 0 : 1 + rnd() % (300 << 10);
		gz_header h;

		if (k > n - off)
			k = n - off;
		memset(&h, 0, sizeof(h));
		if (m % 2) {
			h.extra = extra;
			h.extra_len = sizeof(extra);
			h.name = (Bytef *)"member-name.tar";
			h.comment = (Bytef *)"a comment";
			h.hcrc = 1;
		}
		gz_member(d + off, k, (int)(m % 10), &h, out);
		off += k;
		m++;
	}
}

/* ---- sinks and sources ------------------------------------------------- */

static int sink_buf(void *ctx, const void *data, size_t n)
{
	return buf_add(ctx, data, n);
}

struct memsrc {
	const unsigned char *p;
	size_t n;
	uint64_t lo, hi; /* bytes outside [lo, hi) are refused */
	uint64_t bytes;
	uint64_t calls;
};

static ssize_t mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct memsrc *m = ctx;
	uint64_t hi = m->hi < m->n ? m->hi : m->n;

	if (off < m->lo || off > hi)
		return -ERANGE;
	if (len > hi - off)
		len = (size_t)(hi - off);
	memcpy(buf, m->p + off, len);
	m->bytes += len;
	m->calls++;
	return (ssize_t)len;
}

static struct memsrc src(const struct buf *gz)
{
	struct memsrc m = { (const unsigned char *)gz->data, gz->len, 0, UINT64_MAX, 0, 0 };

	return m;
}

/* Feed gz in `chunk`-byte pieces, check the sink saw exactly d, return the index. */
static struct zran_index *build(const struct buf *gz, size_t chunk, uint32_t span,
				const unsigned char *d, size_t n)
{
	struct zran_builder *b;
	struct zran_index *idx = NULL;
	struct buf got = BUF_INIT;
	size_t off = 0;

	assert_int_equal(zran_builder_new(&b, span), 0);
	while (off < gz->len) {
		size_t k = chunk < gz->len - off ? chunk : gz->len - off;

		assert_int_equal(zran_builder_feed(b, gz->data + off, k, sink_buf, &got), 0);
		off += k;
	}
	assert_int_equal(zran_builder_finish(b, &idx), 0);
	zran_builder_free(b);
	assert_non_null(idx);
	assert_int_equal(got.len, n);
	assert_true(n == 0 || memcmp(got.data, d, n) == 0);
	assert_int_equal(zran_index_usize(idx), n);
	assert_int_equal(zran_index_csize(idx), gz->len);
	buf_release(&got);
	return idx;
}

/* Random reads (and reads at awkward places) compared with d. */
static void check_reads(const struct zran_index *idx, const struct buf *gz,
			const unsigned char *d, size_t n, unsigned count)
{
	struct memsrc m = src(gz);
	unsigned char *out = malloc(300 << 10);
	uint32_t span = zran_index_span(idx);
	unsigned i;

	assert_non_null(out);
	for (i = 0; i < count + 8; i++) {
		uint64_t off;
		size_t len;
		ssize_t r;

		if (n == 0)
			break;
		switch (i) {
		case 0: off = 0; len = 1; break;
		case 1: off = n - 1; len = 100; break;
		case 2: off = span - 1; len = 2; break;
		case 3: off = span; len = 70000; break;
		case 4: off = ZRAN_CHECK_BLOCK - 3; len = 7; break;
		case 5: off = n / 2; len = 300 << 10; break;
		case 6: off = 0; len = 300 << 10; break;
		case 7: off = n > 5000 ? n - 5000 : 0; len = 300 << 10; break;
		default:
			off = rnd() % n;
			len = 1 + rnd() % (i % 3 ? 5000 : (300 << 10));
		}
		if (off >= n)
			off = n - 1;
		r = zran_read(idx, mem_read, &m, off, out, len);
		assert_int_equal(r, len < n - off ? len : n - off);
		assert_memory_equal(out, d + off, (size_t)r);
	}
	/* At and past the end: nothing, not an error. */
	assert_int_equal(zran_read(idx, mem_read, &m, n, out, 10), 0);
	assert_int_equal(zran_read(idx, mem_read, &m, n + 12345, out, 10), 0);
	assert_int_equal(zran_read(idx, mem_read, &m, 0, out, 0), 0);
	free(out);
}

/* ---- tests -------------------------------------------------------------- */

static void test_levels(void **state)
{
	size_t n = 3 << 20;
	unsigned char *d = gen_data(n, 1);
	static const int levels[] = { 0, 1, 6, 9 };
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		struct buf gz = BUF_INIT;
		struct zran_index *idx;

		gz_member(d, n, levels[i], NULL, &gz);
		idx = build(&gz, gz.len, 128 << 10, d, n);
		/* A point at the first block boundary at least a span after the
		 * last: spans are [span, span + one deflate block) long. */
		assert_true(zran_index_npoints(idx) >= n / (1 << 20));
		assert_true(zran_index_npoints(idx) <= n / (128 << 10) + 2);
		check_reads(idx, &gz, d, n, 150);
		zran_index_free(idx);
		buf_release(&gz);
	}
	free(d);
}

static void test_chunking(void **state)
{
	/* Any chunking yields the same bytes and the very same index. */
	size_t n = 1 << 20;
	unsigned char *d = gen_data(n, 2);
	static const size_t chunks[] = { 1, 13, 4096, SIZE_MAX };
	struct buf gz = BUF_INIT, first = BUF_INIT;
	size_t i;

	(void)state;
	gz_member(d, n, 6, NULL, &gz);
	for (i = 0; i < 4; i++) {
		struct zran_index *idx = build(&gz, chunks[i], 64 << 10, d, n);
		struct buf ser = BUF_INIT;

		assert_int_equal(zran_index_save(idx, &ser), 0);
		if (i == 0) {
			first = ser;
		} else {
			assert_int_equal(ser.len, first.len);
			assert_memory_equal(ser.data, first.data, ser.len);
			buf_release(&ser);
		}
		check_reads(idx, &gz, d, n, 40);
		zran_index_free(idx);
	}
	buf_release(&first);
	buf_release(&gz);
	free(d);
}

static void test_multi_member(void **state)
{
	size_t n = 4 << 20;
	unsigned char *d = gen_data(n, 3);
	struct buf gz = BUF_INIT;
	struct zran_index *idx;

	(void)state;
	rng_state = 99;
	gz_multi(d, n, &gz);
	idx = build(&gz, 13, 64 << 10, d, n);
	check_reads(idx, &gz, d, n, 300);
	zran_index_free(idx);
	idx = build(&gz, gz.len, ZRAN_SPAN_MIN, d, n);
	check_reads(idx, &gz, d, n, 100);
	zran_index_free(idx);
	buf_release(&gz);
	free(d);
}

static void test_many_tiny_members(void **state)
{
	/* eStargz-like: hundreds of small members, points at member starts. */
	size_t n = 2 << 20, off = 0;
	unsigned char *d = gen_data(n, 4);
	struct buf gz = BUF_INIT;
	struct zran_index *idx;

	(void)state;
	while (off < n) {
		size_t k = 1 + rnd() % 9000;

		if (k > n - off)
			k = n - off;
		gz_member(d + off, k, 6, NULL, &gz);
		off += k;
	}
	idx = build(&gz, 4096, ZRAN_SPAN_MIN, d, n);
	check_reads(idx, &gz, d, n, 200);
	zran_index_free(idx);
	buf_release(&gz);
	free(d);
}

static void test_gzip_binary(void **state)
{
	/* A stream written by /usr/bin/gzip (with FNAME) read from disk. */
	char dir[] = "/tmp/test_zran.XXXXXX", cmd[256], path[128];
	size_t n = 3 << 20;
	unsigned char *d = gen_data(n, 5);
	struct buf gz = BUF_INIT;
	struct zran_index *idx;
	FILE *f;
	char tmp[65536];
	size_t k;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_true(snprintf(path, sizeof(path), "%s/data.tar", dir) < (int)sizeof(path));
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(d, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	assert_true(snprintf(cmd, sizeof(cmd), "/usr/bin/gzip -6 -N -f %s", path) < (int)sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	assert_true(snprintf(path, sizeof(path), "%s/data.tar.gz", dir) < (int)sizeof(path));
	f = fopen(path, "rb");
	assert_non_null(f);
	while ((k = fread(tmp, 1, sizeof(tmp), f)) > 0)
		assert_int_equal(buf_add(&gz, tmp, k), 0);
	fclose(f);
	assert_true(gz.len > 10 && (gz.data[3] & 0x08)); /* FNAME is set */
	idx = build(&gz, 4096, 256 << 10, d, n);
	check_reads(idx, &gz, d, n, 150);
	zran_index_free(idx);
	unlink(path);
	rmdir(dir);
	buf_release(&gz);
	free(d);
}

static void test_empty_and_args(void **state)
{
	struct buf gz = BUF_INIT;
	struct zran_builder *b;
	struct zran_index *idx;
	unsigned char c;

	(void)state;
	assert_int_equal(zran_builder_new(&b, 1), -EINVAL);
	assert_null(b);
	assert_int_equal(zran_builder_new(&b, ZRAN_SPAN_MAX + 1), -EINVAL);
	/* An empty member: valid, zero bytes, reads return 0. */
	gz_member(NULL, 0, 6, NULL, &gz);
	idx = build(&gz, 1, 0, NULL, 0);
	assert_int_equal(zran_index_span(idx), ZRAN_SPAN_DEFAULT);
	{
		struct memsrc m = src(&gz);

		assert_int_equal(zran_read(idx, mem_read, &m, 0, &c, 1), 0);
	}
	zran_index_free(idx);
	/* No input at all is not a gzip stream. */
	assert_int_equal(zran_builder_new(&b, 0), 0);
	assert_int_equal(zran_builder_finish(b, &idx), -EIO);
	assert_null(idx);
	zran_builder_free(b);
	zran_builder_free(NULL);
	zran_index_free(NULL);
	buf_release(&gz);
}

static int sink_fail_after(void *ctx, const void *data, size_t n)
{
	size_t *left = ctx;

	(void)data;
	if (n > *left)
		return -ENOSPC;
	*left -= n;
	return 0;
}

static void test_sink_error_sticks(void **state)
{
	size_t n = 1 << 20, budget = 100000;
	unsigned char *d = gen_data(n, 6);
	struct buf gz = BUF_INIT;
	struct zran_builder *b;
	struct zran_index *idx;

	(void)state;
	gz_member(d, n, 6, NULL, &gz);
	assert_int_equal(zran_builder_new(&b, 0), 0);
	assert_int_equal(zran_builder_feed(b, gz.data, gz.len, sink_fail_after, &budget), -ENOSPC);
	assert_int_equal(zran_builder_feed(b, gz.data, 1, NULL, NULL), -ENOSPC);
	assert_int_equal(zran_builder_finish(b, &idx), -ENOSPC);
	assert_null(idx);
	zran_builder_free(b);
	buf_release(&gz);
	free(d);
}

/* Feed gz[0, len) with the bytes at `flip` xor-ed; 0 only if output == d. */
static int feed_result(const struct buf *gz, size_t len, size_t flip, unsigned char x,
		       const unsigned char *d, size_t n)
{
	struct zran_builder *b;
	struct zran_index *idx = NULL;
	struct buf got = BUF_INIT;
	unsigned char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, gz->data, len);
	if (flip < len)
		copy[flip] ^= x;
	assert_int_equal(zran_builder_new(&b, 64 << 10), 0);
	rc = zran_builder_feed(b, copy, len, sink_buf, &got);
	if (!rc)
		rc = zran_builder_finish(b, &idx);
	if (!rc) {
		/* Accepted: then it must be exactly the original data. */
		assert_int_equal(got.len, n);
		assert_memory_equal(got.data, d, n);
	}
	zran_index_free(idx);
	zran_builder_free(b);
	buf_release(&got);
	free(copy);
	return rc;
}

static void test_truncated(void **state)
{
	size_t n = 512 << 10, i;
	unsigned char *d = gen_data(n, 7);
	struct buf gz = BUF_INIT;

	(void)state;
	gz_member(d, n, 6, NULL, &gz);
	{
		size_t cuts[] = { 0, 1, 3, 9, 10, 11, 100, gz.len / 2, gz.len - 9,
				  gz.len - 8, gz.len - 5, gz.len - 1 };

		for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
			assert_int_equal(feed_result(&gz, cuts[i], SIZE_MAX, 0, d, n), -EIO);
	}
	/* Garbage after a complete member is refused too. */
	assert_int_equal(buf_add(&gz, "JUNK", 4), 0);
	assert_int_equal(feed_result(&gz, gz.len, SIZE_MAX, 0, d, n), -EIO);
	/* Not gzip at all. */
	gz.data[0] = 'x';
	assert_int_equal(feed_result(&gz, gz.len, SIZE_MAX, 0, d, n), -EIO);
	buf_release(&gz);
	free(d);
}

static void test_corrupt_stream(void **state)
{
	size_t n = 512 << 10;
	unsigned char *d = gen_data(n, 8);
	struct buf gz = BUF_INIT;
	unsigned i, errors = 0, trials = 200;

	(void)state;
	gz_member(d, n, 6, NULL, &gz);
	for (i = 0; i < trials; i++) {
		/* Skip the 10-byte header: MTIME/XFL/OS are not protected. */
		size_t pos = 10 + rnd() % (gz.len - 10);
		int rc = feed_result(&gz, gz.len, pos, (unsigned char)(1 + rnd() % 255), d, n);

		assert_true(rc == 0 || rc == -EIO);
		errors += rc != 0;
	}
	/* Nearly every flip is caught; the rest decoded to the true bytes. */
	assert_true(errors >= trials * 9 / 10);
	buf_release(&gz);
	free(d);
}

static void test_corrupt_source_reads(void **state)
{
	/* Index built from good data; reads from a damaged copy must fail or
	 * return the true bytes — never different bytes. */
	size_t n = 2 << 20;
	unsigned char *d = gen_data(n, 9), *out = malloc(n);
	struct buf gz = BUF_INIT;
	struct zran_index *idx;
	unsigned i, errors = 0, trials = 60;

	(void)state;
	assert_non_null(out);
	gz_member(d, n, 6, NULL, &gz);
	idx = build(&gz, gz.len, 128 << 10, d, n);
	for (i = 0; i < trials; i++) {
		size_t pos = 10 + rnd() % (gz.len - 18); /* inside deflate data */
		unsigned char x = (unsigned char)(1 + rnd() % 255);
		struct memsrc m = src(&gz);
		struct zran_reader *r;
		ssize_t got;

		gz.data[pos] ^= x;
		got = zran_read(idx, mem_read, &m, 0, out, n);
		assert_true(got == -EIO || got == (ssize_t)n);
		if (got == (ssize_t)n)
			assert_memory_equal(out, d, n);
		errors += got < 0;
		/* The sequential reader, in 128 KiB reads. */
		assert_int_equal(zran_reader_new(&r, idx, mem_read, &m), 0);
		{
			size_t off = 0;

			while (off < n) {
				got = zran_reader_pread(r, off, out, 128 << 10);
				if (got < 0)
					break;
				assert_true(got > 0);
				assert_memory_equal(out, d + off, (size_t)got);
				off += (size_t)got;
			}
			assert_true(got == -EIO || off == n);
		}
		zran_reader_free(r);
		gz.data[pos] ^= x;
	}
	assert_true(errors >= trials * 9 / 10);
	zran_index_free(idx);
	buf_release(&gz);
	free(out);
	free(d);
}

static void fix_crc(struct buf *s)
{
	uint32_t c = (uint32_t)crc32(0, (const Bytef *)s->data, (uInt)(s->len - 4));
	unsigned char *p = (unsigned char *)s->data + s->len - 4;

	p[0] = (unsigned char)c;
	p[1] = (unsigned char)(c >> 8);
	p[2] = (unsigned char)(c >> 16);
	p[3] = (unsigned char)(c >> 24);
}

static void expect_reject(const struct buf *s, size_t len)
{
	struct zran_index *idx = (struct zran_index *)1;
	/* A private copy, exactly len bytes, so ASan sees any overread. */
	unsigned char *copy = malloc(len ? len : 1);

	assert_non_null(copy);
	memcpy(copy, s->data, len);
	assert_int_equal(zran_index_load(&idx, copy, len), -EBADMSG);
	assert_null(idx);
	free(copy);
}

static void test_index_save_load(void **state)
{
	size_t n = 3 << 20, i;
	unsigned char *d = gen_data(n, 10);
	struct buf gz = BUF_INIT, ser = BUF_INIT, ser2 = BUF_INIT;
	struct zran_index *idx, *idx2;

	(void)state;
	gz_member(d, n, 6, NULL, &gz);
	idx = build(&gz, gz.len, 128 << 10, d, n);
	assert_int_equal(zran_index_save(idx, &ser), 0);
	assert_int_equal(zran_index_load(&idx2, ser.data, ser.len), 0);
	assert_int_equal(zran_index_save(idx2, &ser2), 0);
	assert_int_equal(ser.len, ser2.len);
	assert_memory_equal(ser.data, ser2.data, ser.len);
	assert_int_equal(zran_index_npoints(idx2), zran_index_npoints(idx));
	assert_int_equal(zran_index_memsize(idx2), zran_index_memsize(idx));
	check_reads(idx2, &gz, d, n, 100);
	zran_index_free(idx2);

	/* Every byte of header and first points, and a sample elsewhere. */
	for (i = 0; i < ser.len; i += (i < 200 || i + 8 >= ser.len) ? 1 : 1 + rnd() % 997) {
		ser.data[i] ^= (char)(1 << (i % 8));
		expect_reject(&ser, ser.len);
		ser.data[i] ^= (char)(1 << (i % 8));
	}
	/* Truncations: every short length, then samples, then the last bytes. */
	for (i = 0; i < ser.len; i += (i < 200 || i + 8 >= ser.len) ? 1 : 1 + rnd() % 997)
		expect_reject(&ser, i);
	/* Well-checksummed but wrong: version, point order, window length. */
	ser.data[8] = 2;
	fix_crc(&ser);
	expect_reject(&ser, ser.len);
	ser.data[8] = 1;
	ser.data[56 + 28 + 0] ^= 0x7f; /* point 1 uoff: breaks monotonicity/bounds */
	ser.data[56 + 28 + 7] = 0x7f;
	fix_crc(&ser);
	expect_reject(&ser, ser.len);
	ser.data[56 + 28 + 0] ^= 0x7f;
	ser.data[56 + 28 + 7] = 0;
	ser.data[56 + 28 + 17] ^= 0x01; /* point 1 wlen */
	fix_crc(&ser);
	expect_reject(&ser, ser.len);
	ser.data[56 + 28 + 17] ^= 0x01;
	fix_crc(&ser);
	assert_int_equal(zran_index_load(&idx2, ser.data, ser.len), 0);
	zran_index_free(idx2);

	/* A damaged window that still loads (checksum fixed) never yields
	 * wrong bytes; reads that use it fail with -EIO instead. One byte in
	 * the middle of each window (point 0 has none). */
	{
		size_t npts = zran_index_npoints(idx), wpos = 56 + 28 * npts;
		struct memsrc m = src(&gz);
		unsigned char out[4096];
		unsigned k, hit = 0;

		for (k = 1; k < npts; k++) {
			const unsigned char *rec = (const unsigned char *)ser.data + 56 + 28 * k;
			size_t wclen = rec[20] | (size_t)rec[21] << 8 | (size_t)rec[22] << 16;
			size_t pos = wpos + wclen / 2;
			uint64_t off;
			unsigned fails = 0;

			wpos += wclen;

			ser.data[pos] ^= 0x55;
			fix_crc(&ser);
			assert_int_equal(zran_index_load(&idx2, ser.data, ser.len), 0);
			for (off = 0; off + sizeof(out) <= n; off += 32 << 10) {
				ssize_t r = zran_read(idx2, mem_read, &m, off, out, sizeof(out));

				if (r < 0)
					fails++;
				else
					assert_memory_equal(out, d + off, sizeof(out));
			}
			hit += fails > 0;
			zran_index_free(idx2);
			ser.data[pos] ^= 0x55;
		}
		print_message("damaged windows: %u of %zu detected by some read\n", hit, npts - 1);
		assert_true(hit >= 1); /* detection depends on which bytes the data references */
	}
	zran_index_free(idx);
	buf_release(&ser);
	buf_release(&ser2);
	buf_release(&gz);
	free(d);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_reader_sequential(void **state)
{
	size_t n = 50 << 20, off, chunk = 128 << 10;
	unsigned char *d = gen_data(n, 11), *out = malloc(chunk);
	struct buf gz = BUF_INIT;
	struct zran_index *idx;
	struct zran_reader *r;
	struct zran_stats st;
	struct memsrc m;
	double t;

	(void)state;
	assert_non_null(out);
	gz_member(d, n, 1, NULL, &gz);
	idx = build(&gz, 1 << 20, 0, d, n);
	m = src(&gz);

	/* Straight through: one seek, every byte inflated exactly once. */
	assert_int_equal(zran_reader_new(&r, idx, mem_read, &m), 0);
	t = now();
	for (off = 0; off < n; off += chunk) {
		ssize_t got = zran_reader_pread(r, off, out, chunk);

		assert_int_equal(got, chunk < n - off ? chunk : n - off);
		assert_memory_equal(out, d + off, (size_t)got);
	}
	t = now() - t;
	zran_reader_stats(r, &st);
	print_message("reader: 50 MB in 128 KiB reads: %.0f MB/s (comparisons included)\n",
		      (double)n / 1e6 / t);
	assert_int_equal(st.seeks, 1);
	assert_int_equal(st.out_bytes, n);
	assert_true(st.comp_bytes <= gz.len + ZRAN_READ_CHUNK);
	zran_reader_free(r);

	/* Readahead reordering: pairs of 128 KiB reads arrive swapped, plus a
	 * small backward re-read now and then — still one seek, no re-inflate. */
	assert_int_equal(zran_reader_new(&r, idx, mem_read, &m), 0);
	for (off = 0; off + 2 * chunk <= n; off += 2 * chunk) {
		assert_int_equal(zran_reader_pread(r, off + chunk, out, chunk), chunk);
		assert_memory_equal(out, d + off + chunk, chunk);
		assert_int_equal(zran_reader_pread(r, off, out, chunk), chunk);
		assert_memory_equal(out, d + off, chunk);
		if (off % (3 * chunk) == 0) { /* 250000 < 256 KiB kept */
			assert_int_equal(zran_reader_pread(r, off + 2 * chunk - 250000, out, 4096), 4096);
			assert_memory_equal(out, d + off + 2 * chunk - 250000, 4096);
		}
	}
	zran_reader_stats(r, &st);
	assert_int_equal(st.seeks, 1);
	assert_int_equal(st.out_bytes, n);
	zran_reader_free(r);

	/* FUSE's 256 KiB reads, three in flight, served last first: still
	 * one seek, nothing inflated twice. */
	assert_int_equal(zran_reader_new(&r, idx, mem_read, &m), 0);
	{
		size_t big = 256u << 10, order[3] = { 2, 0, 1 }, k;
		unsigned char *out3 = malloc(big);

		assert_non_null(out3);
		for (off = 0; off + 3 * big <= n; off += 3 * big) {
			for (k = 0; k < 3; k++) {
				size_t o = off + order[k] * big;

				assert_int_equal(zran_reader_pread(r, o, out3, big), big);
				assert_memory_equal(out3, d + o, big);
			}
		}
		free(out3);
	}
	zran_reader_stats(r, &st);
	assert_int_equal(st.seeks, 1);
	assert_true(st.out_bytes <= n);

	/* A far jump back re-seeks once and inflates at most one span. */
	assert_int_equal(zran_reader_pread(r, 10 << 20, out, 4096), 4096);
	assert_memory_equal(out, d + (10 << 20), 4096);
	{
		struct zran_stats st2;

		zran_reader_stats(r, &st2);
		assert_int_equal(st2.seeks, 2);
		assert_true(st2.out_bytes - st.out_bytes <= ZRAN_SPAN_DEFAULT);
		/* A jump forward within the span goes on; into a later span seeks. */
		assert_int_equal(zran_reader_pread(r, (10 << 20) + 600000, out, 4096), 4096);
		assert_memory_equal(out, d + (10 << 20) + 600000, 4096);
		assert_int_equal(zran_reader_pread(r, 30 << 20, out, 4096), 4096);
		assert_memory_equal(out, d + (30 << 20), 4096);
		zran_reader_stats(r, &st);
		assert_int_equal(st.seeks, 3);
	}
	/* Past the end. */
	assert_int_equal(zran_reader_pread(r, n, out, 10), 0);
	assert_int_equal(zran_reader_pread(r, n - 10, out, 100), 10);
	assert_memory_equal(out, d + n - 10, 10);
	zran_reader_free(r);
	zran_reader_free(NULL);
	zran_index_free(idx);
	buf_release(&gz);
	free(out);
	free(d);
}

static void test_read_fetch_bound(void **state)
{
	/* A 4 KiB random read fetches at most one span (+ one chunk) of
	 * compressed bytes, and needs nothing outside zran_index_comp_range. */
	size_t n = 24 << 20;
	unsigned char *d = gen_data(n, 12);
	struct buf gz = BUF_INIT;
	struct zran_index *idx;
	unsigned char out[4096];
	uint64_t worst = 0;
	unsigned i;

	(void)state;
	gz_member(d, n, 6, NULL, &gz);
	idx = build(&gz, 1 << 20, 0, d, n);
	for (i = 0; i < 60; i++) {
		uint64_t off = rnd() % (n - sizeof(out)), cs, ce;
		struct memsrc m = src(&gz);

		assert_int_equal(zran_index_comp_range(idx, off, sizeof(out), &cs, &ce), 0);
		assert_true(ce > cs);
		assert_true(ce - cs <= ZRAN_SPAN_DEFAULT + ZRAN_SPAN_DEFAULT / 64);
		assert_int_equal(zran_read(idx, mem_read, &m, off, out, sizeof(out)), sizeof(out));
		assert_memory_equal(out, d + off, sizeof(out));
		assert_true(m.bytes <= ce - cs + ZRAN_READ_CHUNK);
		assert_true(m.bytes <= ZRAN_SPAN_DEFAULT + ZRAN_READ_CHUNK);
		if (m.bytes > worst)
			worst = m.bytes;
		/* A source that refuses everything outside [cs, ce) still works. */
		m = src(&gz);
		m.lo = cs;
		m.hi = ce;
		assert_int_equal(zran_read(idx, mem_read, &m, off, out, sizeof(out)), sizeof(out));
		assert_memory_equal(out, d + off, sizeof(out));
	}
	print_message("4 KiB random read: at most %llu compressed bytes fetched (span %u)\n",
		      (unsigned long long)worst, ZRAN_SPAN_DEFAULT);
	assert_int_equal(zran_index_comp_range(idx, n, 1, &(uint64_t){ 0 }, &(uint64_t){ 0 }),
			 -EINVAL);
	zran_index_free(idx);
	buf_release(&gz);
	free(d);
}

/* A point as saved (see zran.h's format): uoff, coff, bits. */
struct pt3 {
	uint64_t uoff, coff;
	unsigned bits;
};

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static size_t points_of(const struct zran_index *idx, struct pt3 **out)
{
	struct buf ser = BUF_INIT;
	size_t i, n = zran_index_npoints(idx);

	assert_int_equal(zran_index_save(idx, &ser), 0);
	*out = calloc(n, sizeof(**out));
	assert_non_null(*out);
	for (i = 0; i < n; i++) {
		const unsigned char *rec = (const unsigned char *)ser.data + 56 + 28 * i;

		(*out)[i].uoff = get64(rec);
		(*out)[i].coff = get64(rec + 8);
		(*out)[i].bits = rec[24];
	}
	buf_release(&ser);
	return n;
}

/* Every deflate block boundary of the single-member gzip stream gz, as zlib's
 * inflate(Z_BLOCK) reports it, in the points' terms. */
static size_t zlib_boundaries(const struct buf *gz, struct pt3 **out)
{
	static unsigned char o[1 << 16];
	size_t n = 0, cap = 1024, hdr = 10;
	uint64_t uout = 0;
	z_stream s;
	int ret;

	*out = malloc(cap * sizeof(**out));
	assert_non_null(*out);
	assert_true(gz->len > 18 && gz->data[3] == 0); /* no optional header fields */
	memset(&s, 0, sizeof(s));
	assert_int_equal(inflateInit2(&s, -15), Z_OK);
	s.next_in = (Bytef *)gz->data + hdr;
	s.avail_in = (uInt)(gz->len - hdr);
	do {
		s.next_out = o;
		s.avail_out = sizeof(o);
		ret = inflate(&s, Z_BLOCK);
		assert_true(ret == Z_OK || ret == Z_STREAM_END);
		uout += sizeof(o) - s.avail_out;
		if ((s.data_type & 0xc0) == 0x80) {
			if (n == cap) {
				cap *= 2;
				*out = realloc(*out, cap * sizeof(**out));
				assert_non_null(*out);
			}
			(*out)[n].uoff = uout;
			(*out)[n].coff = hdr + s.total_in;
			(*out)[n].bits = (unsigned)s.data_type & 7;
			n++;
		}
	} while (ret != Z_STREAM_END);
	inflateEnd(&s);
	return n;
}

static struct zran_index *build_with(enum zran_engine e, const struct buf *gz, size_t chunk,
				     uint32_t span, const unsigned char *d, size_t n)
{
	enum zran_engine was = zran_engine_get();
	struct zran_index *idx;

	assert_int_equal(zran_engine_set(e), 0);
	idx = build(gz, chunk, span, d, n);
	assert_int_equal(zran_engine_set(was), 0);
	return idx;
}

static void check_reads_with(enum zran_engine e, const struct zran_index *idx,
			     const struct buf *gz, const unsigned char *d, size_t n, unsigned count)
{
	enum zran_engine was = zran_engine_get();

	assert_int_equal(zran_engine_set(e), 0);
	check_reads(idx, gz, d, n, count);
	assert_int_equal(zran_engine_set(was), 0);
}

static void test_engines_agree(void **state)
{
	/* Both engines decode the same bytes; every point ISA-L records is a
	 * deflate block boundary zlib sees too, and points are not much rarer;
	 * an index built by either engine reads right with the other. */
	size_t n = 8 << 20;
	unsigned char *d = gen_data(n, 13);
	static const int levels[] = { 1, 6, 9 };
	size_t i, j, k;

	(void)state;
	if (zran_engine_set(ZRAN_ENGINE_ISAL) == -ENOTSUP) {
		print_message("ISA-L not built in: nothing to compare\n");
		free(d);
		return;
	}
	for (i = 0; i < 3; i++) {
		struct buf gz = BUF_INIT;
		struct zran_index *zi, *ii;
		struct pt3 *bd, *pz, *pi;
		size_t nbd, nz, ni;

		gz_member(d, n, levels[i], NULL, &gz);
		zi = build_with(ZRAN_ENGINE_ZLIB, &gz, 1 << 20, 256 << 10, d, n);
		ii = build_with(ZRAN_ENGINE_ISAL, &gz, 1 << 20, 256 << 10, d, n);
		nbd = zlib_boundaries(&gz, &bd);
		nz = points_of(zi, &pz);
		ni = points_of(ii, &pi);
		print_message("level %d: %zu block boundaries, points zlib %zu, isa-l %zu\n",
			      levels[i], nbd, nz, ni);
		assert_true(ni >= 2 && 2 * ni >= nz);
		assert_true(pi[0].uoff == 0 && pi[0].coff == 10 && pi[0].bits == 0);
		for (j = 1, k = 0; j < ni; j++) {
			while (k < nbd && bd[k].uoff < pi[j].uoff)
				k++;
			assert_true(k < nbd);
			assert_int_equal(bd[k].uoff, pi[j].uoff);
			assert_int_equal(bd[k].coff, pi[j].coff);
			assert_int_equal(bd[k].bits, pi[j].bits);
			assert_true(pi[j].uoff - pi[j - 1].uoff >= 256 << 10);
		}
		for (j = 1; j < nz; j++) /* zlib takes the first boundary after a span */
			assert_true(pz[j].uoff - pz[j - 1].uoff >= 256 << 10);
		check_reads_with(ZRAN_ENGINE_ZLIB, ii, &gz, d, n, 60);
		check_reads_with(ZRAN_ENGINE_ISAL, zi, &gz, d, n, 60);
		check_reads_with(ZRAN_ENGINE_ISAL, ii, &gz, d, n, 60);
		free(bd);
		free(pz);
		free(pi);
		zran_index_free(zi);
		zran_index_free(ii);
		buf_release(&gz);
	}
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_chunking),
		cmocka_unit_test(test_multi_member),
		cmocka_unit_test(test_many_tiny_members),
		cmocka_unit_test(test_gzip_binary),
		cmocka_unit_test(test_empty_and_args),
		cmocka_unit_test(test_sink_error_sticks),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt_stream),
		cmocka_unit_test(test_corrupt_source_reads),
		cmocka_unit_test(test_index_save_load),
		cmocka_unit_test(test_reader_sequential),
		cmocka_unit_test(test_read_fetch_bound),
		cmocka_unit_test(test_engines_agree),
	};
	int rc;

	log_init(LOG_LVL_ERROR, false); /* the corruption tests provoke warnings */
	assert_int_equal(zran_engine_set(ZRAN_ENGINE_ZLIB), 0);
	rc = cmocka_run_group_tests_name("zran (zlib)", tests, NULL, NULL);
	if (zran_engine_set(ZRAN_ENGINE_ISAL) == 0)
		rc += cmocka_run_group_tests_name("zran (isa-l)", tests, NULL, NULL);
	return rc;
}
