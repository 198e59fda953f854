/*
 * fuzz_zran — the zran index decoder (image/zran.h zran_index_load) and
 * what reads through a loaded index do with it.
 *
 * Input: a serialized zran index (zran_index_save's format). Its trailing
 * CRC-32 is recomputed first, or nearly every mutation would stop at the
 * checksum. A rejected index is -EBADMSG; a loaded one must save back to
 * the same bytes, give sane comp_range answers, and survive reads (one-off
 * and through a sequential reader) against a real gzip — the sample of
 * fuzz_gzip_sample() whose compressed size it claims, else sample 0. For
 * the sample's own index (the seeds mkindex writes) the reads must return
 * the sample's bytes and ask only for compressed bytes in the range
 * zran_index_comp_range() announced.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "image/zran.h"
#include "tests/fuzz/fuzz.h"

#define READ_LEN 4096u
#define MAX_READS 8

struct sample {
	struct buf gz, plain, idx; /* idx: the genuine index, saved */
	struct fuzz_src src;       /* serves gz */
};

static struct sample samples[FUZZ_GZIP_SAMPLES];

static void init_samples(void)
{
	static bool done;
	unsigned i;

	if (done)
		return;
	done = true;
	for (i = 0; i < FUZZ_GZIP_SAMPLES; i++) {
		struct zran_builder *b = NULL;
		struct zran_index *x = NULL;

		fuzz_gzip_sample(i, &samples[i].gz, &samples[i].plain);
		samples[i].src.p = (const uint8_t *)samples[i].gz.data;
		samples[i].src.n = samples[i].gz.len;
		FUZZ_CHECK(zran_builder_new(&b, FUZZ_ZRAN_SPAN) == 0);
		FUZZ_CHECK(zran_builder_feed(b, samples[i].gz.data, samples[i].gz.len, NULL,
					     NULL) == 0);
		FUZZ_CHECK(zran_builder_finish(b, &x) == 0);
		FUZZ_CHECK(zran_index_save(x, &samples[i].idx) == 0);
		zran_index_free(x);
		zran_builder_free(b);
	}
}

static void check_read(const struct zran_index *x, struct sample *s, bool genuine,
		       uint64_t off, unsigned char *buf)
{
	uint64_t usize = zran_index_usize(x), cstart = 0, cend = 0, want;
	ssize_t n;

	s->src.lo = UINT64_MAX;
	s->src.hi = 0;
	n = zran_read(x, fuzz_src_read, &s->src, off, buf, READ_LEN);
	if (off >= usize) {
		FUZZ_CHECK(n == 0);
		return;
	}
	want = usize - off < READ_LEN ? usize - off : READ_LEN;
	FUZZ_CHECK(n == -EIO || n == (ssize_t)want);
	if (!genuine)
		return;
	FUZZ_CHECK(n == (ssize_t)want && !memcmp(buf, s->plain.data + off, want));
	FUZZ_CHECK(zran_index_comp_range(x, off, READ_LEN, &cstart, &cend) == 0);
	FUZZ_CHECK(s->src.lo >= cstart && s->src.hi <= cend + ZRAN_READ_CHUNK);
}

/* Sequential reads through one reader, then a jump back to the start. */
static void check_reader(const struct zran_index *x, struct sample *s, bool genuine,
			 unsigned char *buf)
{
	struct zran_reader *r = NULL;
	uint64_t usize = zran_index_usize(x), off;
	struct zran_stats st;
	int i;

	if (zran_reader_new(&r, x, fuzz_src_read, &s->src))
		return;
	for (i = 0, off = 0; i < MAX_READS && off < usize; i++, off += 3 * READ_LEN) {
		ssize_t n = zran_reader_pread(r, off, buf, READ_LEN);

		FUZZ_CHECK(n == -EIO || (n > 0 && (size_t)n <= READ_LEN));
		if (genuine)
			FUZZ_CHECK(n > 0 && !memcmp(buf, s->plain.data + off, (size_t)n));
	}
	if (usize) {
		ssize_t n = zran_reader_pread(r, 0, buf, READ_LEN);

		if (genuine)
			FUZZ_CHECK(n > 0 && !memcmp(buf, s->plain.data, (size_t)n));
	}
	zran_reader_stats(r, &st);
	zran_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *copy, *buf;
	struct zran_index *x = (struct zran_index *)1;
	struct buf again = BUF_INIT;
	struct sample *s = &samples[0];
	uint64_t usize, csize, cstart, cend, offs[MAX_READS];
	size_t i, npts;
	bool genuine;
	int rc;

	fuzz_setup();
	init_samples();
	copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	if (size >= 4) {
		uint32_t c = (uint32_t)crc32(0, copy, (uInt)(size - 4));

		copy[size - 4] = (unsigned char)c;
		copy[size - 3] = (unsigned char)(c >> 8);
		copy[size - 2] = (unsigned char)(c >> 16);
		copy[size - 1] = (unsigned char)(c >> 24);
	}
	rc = zran_index_load(&x, copy, size);
	if (rc) {
		FUZZ_CHECK(rc == -EBADMSG && !x);
		free(copy);
		return 0;
	}
	/* The format is canonical: what loads saves back to the same bytes. */
	FUZZ_CHECK(zran_index_save(x, &again) == 0);
	FUZZ_CHECK(again.len == size && !memcmp(again.data, copy, size));
	buf_release(&again);
	usize = zran_index_usize(x);
	csize = zran_index_csize(x);
	npts = zran_index_npoints(x);
	FUZZ_CHECK(npts >= 1);
	FUZZ_CHECK(zran_index_span(x) >= ZRAN_SPAN_MIN && zran_index_span(x) <= ZRAN_SPAN_MAX);
	FUZZ_CHECK(zran_index_memsize(x) > 0);
	offs[0] = 0;
	offs[1] = usize / 2;
	offs[2] = usize ? usize - 1 : 0;
	offs[3] = usize;
	for (i = 4; i < MAX_READS; i++)
		offs[i] = (i - 3) * (uint64_t)FUZZ_ZRAN_SPAN - READ_LEN / 2;
	for (i = 0; i < MAX_READS; i++) {
		uint64_t lens[] = { 1, READ_LEN, UINT64_MAX };
		size_t j;

		for (j = 0; j < 3; j++) {
			rc = zran_index_comp_range(x, offs[i], lens[j], &cstart, &cend);
			if (offs[i] >= usize) {
				FUZZ_CHECK(rc == -EINVAL);
				continue;
			}
			FUZZ_CHECK(rc == 0 && cstart <= cend && cend <= csize);
		}
	}
	for (i = 0; i < FUZZ_GZIP_SAMPLES; i++)
		if (samples[i].gz.len == csize)
			s = &samples[i];
	genuine = size == s->idx.len && !memcmp(copy, s->idx.data, size);
	buf = malloc(READ_LEN);
	if (!buf)
		abort();
	for (i = 0; i < MAX_READS; i++)
		check_read(x, s, genuine, offs[i], buf);
	check_reader(x, s, genuine, buf);
	free(buf);
	zran_index_free(x);
	free(copy);
	return 0;
}
