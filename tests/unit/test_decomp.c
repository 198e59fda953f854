/*
 * Unit tests for image/decomp: media types, tar pass-through, gzip via
 * zran, zstd single- and multi-frame (with a skippable frame), truncation and
 * corruption, and frame-based random reads compared with the known data.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "common/log.h"
#include "image/decomp.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

/* Half text-like, half random, in segments. */
static unsigned char *gen_data(size_t n, uint64_t seed)
{
	unsigned char *d = malloc(n ? n : 1);
	size_t i = 0;

	assert_non_null(d);
	rng_state = seed;
	while (i < n) {
		size_t seg = 512 + rnd() % (64 << 10), j;
		int text = rnd() % 2;

		if (seg > n - i)
			seg = n - i;
		for (j = 0; j < seg; j++)
			d[i + j] = text ? (unsigned char)("usr/lib/layer blob\n"[rnd() % 19])
					: (unsigned char)rnd();
		i += seg;
	}
	return d;
}

static void zstd_frame(const unsigned char *d, size_t n, int level, struct buf *out)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t cap = ZSTD_compressBound(n), r;

	assert_non_null(c);
	assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)));
	assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)));
	assert_int_equal(buf_grow(out, cap), 0);
	r = ZSTD_compress2(c, out->data + out->len, cap, d, n);
	assert_false(ZSTD_isError(r));
	out->len += r;
	ZSTD_freeCCtx(c);
}

static void skippable_frame(struct buf *out)
{
	static const unsigned char f[] = { 0x50, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 'm', 'e', 't', 'a', '!' };

	assert_int_equal(buf_add(out, f, sizeof(f)), 0);
}

static void gz_member(const unsigned char *d, size_t n, struct buf *out)
{
	z_stream s;
	size_t cap;

	memset(&s, 0, sizeof(s));
	assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
	cap = deflateBound(&s, n) + 64;
	assert_int_equal(buf_grow(out, cap), 0);
	s.next_in = (Bytef *)d;
	s.avail_in = (uInt)n;
	s.next_out = (Bytef *)out->data + out->len;
	s.avail_out = (uInt)cap;
	assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
	out->len += s.total_out;
	deflateEnd(&s);
}

static int sink_buf(void *ctx, const void *data, size_t n)
{
	return buf_add(ctx, data, n);
}

struct memsrc {
	const unsigned char *p;
	size_t n;
	uint64_t bytes;
};

static ssize_t mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct memsrc *m = ctx;

	if (off > m->n)
		return -ERANGE;
	if (len > m->n - off)
		len = m->n - (size_t)off;
	memcpy(buf, m->p + off, len);
	m->bytes += len;
	return (ssize_t)len;
}

/* Run blob through a decoder in `chunk` pieces; returns feed/finish's rc
 * and, on success, checks the output is exactly d. */
static int run(enum decomp_kind kind, const struct buf *blob, size_t chunk,
	       const unsigned char *d, size_t n, struct zran_index **zidx,
	       struct decomp_frames **frames)
{
	struct decomp *dc;
	struct buf got = BUF_INIT;
	size_t off = 0;
	int rc = 0;

	assert_int_equal(decomp_new(&dc, kind, 64 << 10), 0);
	while (!rc && off < blob->len) {
		size_t k = chunk < blob->len - off ? chunk : blob->len - off;

		rc = decomp_feed(dc, blob->data + off, k, sink_buf, &got);
		off += k;
	}
	if (!rc)
		rc = decomp_finish(dc, zidx);
	if (!rc) {
		assert_int_equal(got.len, n);
		assert_true(n == 0 || memcmp(got.data, d, n) == 0);
		assert_int_equal(decomp_usize(dc), n);
		assert_int_equal(decomp_csize(dc), blob->len);
		if (frames)
			assert_int_equal(decomp_take_frames(dc, frames), 0);
	}
	decomp_free(dc);
	buf_release(&got);
	return rc;
}

static void test_media_types(void **state)
{
	static const struct {
		const char *mt;
		int kind;
	} cases[] = {
		{ "application/vnd.oci.image.layer.v1.tar", DECOMP_TAR },
		{ "application/vnd.oci.image.layer.v1.tar+gzip", DECOMP_GZIP },
		{ "application/vnd.oci.image.layer.v1.tar+zstd", DECOMP_ZSTD },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar", DECOMP_TAR },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", DECOMP_GZIP },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", DECOMP_ZSTD },
		{ "application/vnd.docker.image.rootfs.diff.tar.gzip", DECOMP_GZIP },
		{ "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", DECOMP_GZIP },
		{ "application/vnd.docker.image.rootfs.diff.tar", DECOMP_TAR },
		{ "application/vnd.docker.image.rootfs.diff.tar.zstd", DECOMP_ZSTD },
		{ "Application/VND.OCI.Image.Layer.v1.Tar+Gzip", DECOMP_GZIP },
		{ "application/vnd.oci.image.layer.v1.tar+gzip; foo=bar", DECOMP_GZIP },
		{ "application/vnd.oci.image.layer.v1.tar+bzip2", -ENOTSUP },
		{ "application/vnd.oci.image.layer.v1.tar+gzip+x", -ENOTSUP },
		{ "application/vnd.oci.image.layer.v1.ta", -ENOTSUP },
		{ "application/vnd.oci.image.config.v1+json", -ENOTSUP },
		{ "application/vnd.docker.image.rootfs.diff.tar.gz", -ENOTSUP },
		{ "application/octet-stream", -ENOTSUP },
		{ "", -ENOTSUP },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(decomp_kind_from_media_type(cases[i].mt), cases[i].kind);
	assert_int_equal(decomp_kind_from_media_type(NULL), -ENOTSUP);
	assert_string_equal(decomp_kind_name(DECOMP_TAR), "tar");
	assert_string_equal(decomp_kind_name(DECOMP_GZIP), "gzip");
	assert_string_equal(decomp_kind_name(DECOMP_ZSTD), "zstd");
	assert_string_equal(decomp_kind_name((enum decomp_kind)7), "?");
}

static void test_tar_passthrough(void **state)
{
	size_t n = 300000;
	unsigned char *d = gen_data(n, 1);
	struct buf blob = BUF_INIT;
	struct zran_index *zidx = (struct zran_index *)1;
	struct decomp *dc;
	struct decomp_frames *f;

	(void)state;
	assert_int_equal(buf_add(&blob, d, n), 0);
	assert_int_equal(run(DECOMP_TAR, &blob, 13, d, n, &zidx, NULL), 0);
	assert_null(zidx);
	assert_int_equal(run(DECOMP_TAR, &blob, SIZE_MAX, d, n, NULL, NULL), 0);
	assert_int_equal(decomp_new(&dc, (enum decomp_kind)9, 0), -EINVAL);
	assert_null(dc);
	assert_int_equal(decomp_new(&dc, DECOMP_TAR, 0), 0);
	assert_int_equal(decomp_finish(dc, NULL), 0);
	assert_int_equal(decomp_take_frames(dc, &f), -EINVAL);
	assert_int_equal(decomp_feed(dc, "x", 1, NULL, NULL), -EINVAL); /* finished */
	decomp_free(dc);
	decomp_free(NULL);
	buf_release(&blob);
	free(d);
}

static void test_gzip_index(void **state)
{
	size_t n = 2 << 20, i;
	unsigned char *d = gen_data(n, 2), out[5000];
	struct buf blob = BUF_INIT;
	struct zran_index *zidx = NULL;
	struct memsrc m;

	(void)state;
	/* Two members: the data, then its first 1000 bytes again. */
	gz_member(d, n - 1000, &blob);
	gz_member(d, 1000, &blob);
	memcpy(d + n - 1000, d, 1000);
	assert_int_equal(run(DECOMP_GZIP, &blob, 4096, d, n, &zidx, NULL), 0);
	assert_non_null(zidx);
	assert_int_equal(zran_index_usize(zidx), n);
	m.p = (const unsigned char *)blob.data;
	m.n = blob.len;
	m.bytes = 0;
	for (i = 0; i < 50; i++) {
		uint64_t off = rnd() % n;
		ssize_t r = zran_read(zidx, mem_read, &m, off, out, sizeof(out));

		assert_true(r > 0);
		assert_memory_equal(out, d + off, (size_t)r);
	}
	zran_index_free(zidx);
	/* Truncated gzip through decomp. */
	blob.len -= 3;
	assert_int_equal(run(DECOMP_GZIP, &blob, 4096, d, n, &zidx, NULL), -EIO);
	assert_null(zidx);
	buf_release(&blob);
	free(d);
}

static void check_frame_reads(const struct decomp_frames *f, const struct buf *blob,
			      const unsigned char *d, size_t n, size_t max_frame_c)
{
	unsigned char *out = malloc(200000);
	unsigned i;

	assert_non_null(out);
	for (i = 0; i < 60; i++) {
		uint64_t off = i == 0 ? 0 : i == 1 ? n - 1 : rnd() % n;
		size_t len = 1 + rnd() % (i % 2 ? 200000 : 5000);
		struct memsrc m = { (const unsigned char *)blob->data, blob->len, 0 };
		ssize_t r = decomp_frames_read(f, mem_read, &m, off, out, len);

		assert_int_equal(r, len < n - off ? len : n - off);
		assert_memory_equal(out, d + off, (size_t)r);
		/* A small read fetches at most the frames it spans, + a chunk. */
		if (len <= 5000 && max_frame_c)
			assert_true(m.bytes <= 2 * max_frame_c + (64 << 10));
	}
	{
		struct memsrc m = { (const unsigned char *)blob->data, blob->len, 0 };

		assert_int_equal(decomp_frames_read(f, mem_read, &m, n, out, 10), 0);
	}
	free(out);
}

static void test_zstd_single_frame(void **state)
{
	size_t n = 1 << 20, i;
	unsigned char *d = gen_data(n, 3);
	static const size_t chunks[] = { 1, 13, 4096, SIZE_MAX };
	struct buf blob = BUF_INIT;
	struct decomp_frames *f = NULL;
	struct zran_index *zidx = (struct zran_index *)1;
	uint64_t co, fu;

	(void)state;
	zstd_frame(d, n, 3, &blob);
	for (i = 0; i < 4; i++) {
		assert_int_equal(run(DECOMP_ZSTD, &blob, chunks[i], d, n, &zidx, &f), 0);
		assert_null(zidx);
		assert_int_equal(decomp_frames_count(f), 1);
		assert_int_equal(decomp_frames_usize(f), n);
		assert_int_equal(decomp_frames_csize(f), blob.len);
		assert_int_equal(decomp_frames_find(f, n - 1, &co, &fu), 0);
		assert_int_equal(co, 0);
		assert_int_equal(fu, 0);
		assert_int_equal(decomp_frames_find(f, n, &co, &fu), -EINVAL);
		if (i == 3)
			check_frame_reads(f, &blob, d, n, 0);
		decomp_frames_free(f);
		f = NULL;
	}
	decomp_frames_free(NULL);
	buf_release(&blob);
	free(d);
}

static void test_zstd_multi_frame(void **state)
{
	size_t n = 3 << 20, off = 0, nframes = 0, max_c = 0, i;
	unsigned char *d = gen_data(n, 4);
	uint64_t starts_c[256], starts_u[256];
	struct buf blob = BUF_INIT;
	struct decomp_frames *f = NULL;

	(void)state;
	skippable_frame(&blob); /* metadata first, as zstd:chunked does */
	while (off < n) {
		size_t k = 1 + rnd() % (128 << 10), before;

		if (k > n - off)
			k = n - off;
		before = blob.len;
		starts_c[nframes] = before;
		starts_u[nframes] = off;
		zstd_frame(d + off, k, 1 + (int)(nframes % 5), &blob);
		if (blob.len - before > max_c)
			max_c = blob.len - before;
		if (nframes % 7 == 3)
			skippable_frame(&blob);
		off += k;
		nframes++;
		assert_true(nframes < 256);
	}
	assert_int_equal(run(DECOMP_ZSTD, &blob, 13, d, n, NULL, &f), 0);
	decomp_frames_free(f);
	assert_int_equal(run(DECOMP_ZSTD, &blob, SIZE_MAX, d, n, NULL, &f), 0);
	/* Every data frame found at its true offsets. */
	assert_true(decomp_frames_count(f) > nframes); /* + skippable ones */
	for (i = 0; i < nframes; i++) {
		uint64_t co, fu, last = i + 1 < nframes ? starts_u[i + 1] - 1 : n - 1;

		assert_int_equal(decomp_frames_find(f, starts_u[i], &co, &fu), 0);
		assert_int_equal(co, starts_c[i]);
		assert_int_equal(fu, starts_u[i]);
		assert_int_equal(decomp_frames_find(f, last, &co, &fu), 0);
		assert_int_equal(fu, starts_u[i]);
	}
	check_frame_reads(f, &blob, d, n, max_c);
	decomp_frames_free(f);
	buf_release(&blob);
	free(d);
}

static void test_zstd_truncated_corrupt(void **state)
{
	size_t n = 256 << 10, i;
	unsigned char *d = gen_data(n, 5);
	struct buf blob = BUF_INIT;
	struct decomp_frames *f = NULL;
	unsigned errors = 0, trials = 100;
	size_t full;

	(void)state;
	zstd_frame(d, n / 2, 3, &blob);
	zstd_frame(d + n / 2, n - n / 2, 3, &blob);
	full = blob.len;
	{
		size_t cuts[] = { 0, 1, 4, 10, full / 4, full / 2, full - 4, full - 1 };

		for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			blob.len = cuts[i];
			assert_int_equal(run(DECOMP_ZSTD, &blob, 4096, d, n, NULL, &f), -EIO);
			assert_null(f);
		}
	}
	blob.len = full;
	/* Garbage after the last frame. */
	assert_int_equal(buf_add(&blob, "JUNKJUNK", 8), 0);
	assert_int_equal(run(DECOMP_ZSTD, &blob, 4096, d, n, NULL, &f), -EIO);
	blob.len = full;
	/* Flips: error, or (if accepted) exactly the right bytes. */
	for (i = 0; i < trials; i++) {
		size_t pos = rnd() % full;
		unsigned char x = (unsigned char)(1 + rnd() % 255);
		int rc;

		blob.data[pos] ^= (char)x;
		rc = run(DECOMP_ZSTD, &blob, SIZE_MAX, d, n, NULL, &f);
		assert_true(rc == 0 || rc == -EIO);
		errors += rc != 0;
		decomp_frames_free(f);
		f = NULL;
		blob.data[pos] ^= (char)x;
	}
	assert_true(errors >= trials * 9 / 10);
	buf_release(&blob);
	free(d);
}

static int sink_fail(void *ctx, const void *data, size_t n)
{
	(void)ctx;
	(void)data;
	(void)n;
	return -ENOSPC;
}

static void test_sink_errors(void **state)
{
	size_t n = 100000;
	unsigned char *d = gen_data(n, 6);
	struct buf gz = BUF_INIT, zs = BUF_INIT;
	struct decomp *dc;
	enum decomp_kind k;

	(void)state;
	gz_member(d, n, &gz);
	zstd_frame(d, n, 3, &zs);
	for (k = DECOMP_TAR; k <= DECOMP_ZSTD; k++) {
		const struct buf *b = k == DECOMP_GZIP ? &gz : &zs;

		assert_int_equal(decomp_new(&dc, k, 0), 0);
		assert_int_equal(decomp_feed(dc, k == DECOMP_TAR ? (const void *)d : b->data,
					     k == DECOMP_TAR ? n : b->len, sink_fail, NULL),
				 -ENOSPC);
		assert_int_equal(decomp_feed(dc, "x", 1, NULL, NULL), -ENOSPC);
		assert_int_equal(decomp_finish(dc, NULL), -ENOSPC);
		decomp_free(dc);
	}
	buf_release(&gz);
	buf_release(&zs);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_media_types),
		cmocka_unit_test(test_tar_passthrough),
		cmocka_unit_test(test_gzip_index),
		cmocka_unit_test(test_zstd_single_frame),
		cmocka_unit_test(test_zstd_multi_frame),
		cmocka_unit_test(test_zstd_truncated_corrupt),
		cmocka_unit_test(test_sink_errors),
	};

	log_init(LOG_LVL_ERROR, false); /* the corruption tests provoke warnings */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
