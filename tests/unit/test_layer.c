/*
 * layer: plain/gzip/zstd layers, index files (round trip, corruption),
 * integrity, unsupported media types, sparse files, sequential readers and
 * random reads with byte counters, single-flight loading.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>

#include "image/layer.h"
#include "image/pcache.h"
#include "layerw.h"
#include "image/decomp.h"

#define MT_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_GZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_DGZ "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_ZST "application/vnd.oci.image.layer.v1.tar+zstd"
#define SPAN (1u << 20)
#define BIG (12u << 20)

/* The test layer: every entry type, xattrs, a sparse file and a big file. */
struct fixture {
	struct buf tar, big, gz, zst1, zstn;
	char *dir;
};

static struct fixture fx;

static void make_tar(struct buf *b, const struct buf *big)
{
	struct buf r = BUF_INIT, map = BUF_INIT;
	struct tw_hdr h = { .type = '0', .mode = 0644, .mtime = 1700000000 };
	static const char cap[] = { 0, 1, 2, 0, 'c' };
	char longname[300];

	tw_simple(b, "etc/", '5', NULL);
	tw_file(b, "etc/hello", "hello world\n");
	tw_simple(b, "etc/link", '2', "hello");
	tw_simple(b, "etc/hard", '1', "etc/hello");
	/* PAX: long name, binary xattr, user xattr. */
	memset(longname, 'n', sizeof(longname));
	memcpy(longname, "long/", 5);
	longname[sizeof(longname) - 1] = '\0';
	tw_pax_s(&r, "path", longname);
	tw_pax_rec(&r, "SCHILY.xattr.security.capability", cap, sizeof(cap));
	tw_pax_s(&r, "SCHILY.xattr.user.note", "v");
	tw_pax(b, 'x', &r);
	h.name = "placeholder";
	h.size = 3;
	h.mode = 04755;
	tw_header(b, &h);
	tw_data(b, "cap", 3);
	/* A char device and a fifo. */
	{
		struct tw_hdr d = { .name = "dev/null", .type = '3', .mode = 0666,
				    .devmajor = 1, .devminor = 3, .mtime = 1 };
		struct tw_hdr f = { .name = "run/fifo", .type = '6', .mode = 0600,
				    .uid = 1000, .gid = 1001, .mtime = 2 };

		tw_header(b, &d);
		tw_header(b, &f);
	}
	tw_simple(b, ".wh.gone", '0', NULL);
	/* Sparse 1.0: 1 MiB with three 4-byte segments. */
	buf_reset(&r);
	tw_pax_s(&r, "GNU.sparse.major", "1");
	tw_pax_s(&r, "GNU.sparse.minor", "0");
	tw_pax_s(&r, "GNU.sparse.name", "sparse");
	tw_pax_s(&r, "GNU.sparse.realsize", "1048576");
	tw_pax(b, 'x', &r);
	tw_must(buf_adds(&map, "3\n0\n4\n524288\n4\n1048572\n4\n"));
	tw_must(buf_grow(&map, 512));
	memset(map.data + map.len, 0, 512 - map.len);
	map.len = 512;
	tw_must(buf_adds(&map, "headmiddtail"));
	h.name = "GNUSparseFile.3/sparse";
	h.mode = 0644;
	h.size = map.len;
	tw_header(b, &h);
	tw_data(b, map.data, map.len);
	/* The big file. */
	h.name = "big";
	h.size = big->len;
	tw_header(b, &h);
	tw_data(b, big->data, big->len);
	tw_end(b);
	buf_release(&map);
	buf_release(&r);
}

static int setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	gen_text(&fx.big, BIG, 42);
	make_tar(&fx.tar, &fx.big);
	gzip_buf(&fx.tar, &fx.gz);
	zstd_buf(&fx.tar, 0, &fx.zst1);
	zstd_buf(&fx.tar, 1u << 20, &fx.zstn);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	buf_release(&fx.tar);
	buf_release(&fx.big);
	buf_release(&fx.gz);
	buf_release(&fx.zst1);
	buf_release(&fx.zstn);
	return 0;
}

static int each_setup(void **state)
{
	(void)state;
	fx.dir = tmpdir_new();
	return 0;
}

static int each_teardown(void **state)
{
	(void)state;
	rm_rf(fx.dir);
	free(fx.dir);
	fx.dir = NULL;
	return 0;
}

static const struct tree_attr *attr_of(struct layer *l, const char *path)
{
	const struct tree_node *n = tree_lookup_path(layer_tree(l), path);

	assert_non_null(n);
	return tree_node_attr(n);
}

/* The expected content of the sparse file at [off, off+len). */
static void sparse_expect(unsigned char *out, size_t len, uint64_t off)
{
	static const struct {
		uint64_t off;
		const char *s;
	} seg[] = { { 0, "head" }, { 524288, "midd" }, { 1048572, "tail" } };
	size_t i, k;

	memset(out, 0, len);
	for (i = 0; i < 3; i++)
		for (k = 0; k < 4; k++)
			if (seg[i].off + k >= off && seg[i].off + k < off + len)
				out[seg[i].off + k - off] = (unsigned char)seg[i].s[k];
}

/* Check every kind of content through layer_pread and a reader. */
static void check_contents(struct layer *l)
{
	const struct tree_attr *a;
	struct layer_reader *rd;
	unsigned char *got = malloc(1u << 20), *want = malloc(1u << 20);
	static const uint64_t offs[] = { 0, 1, 4000, 524286, 1048570, 1048575 };
	size_t i;
	ssize_t n;

	assert_non_null(got);
	assert_non_null(want);
	a = attr_of(l, "etc/hello");
	n = layer_pread(l, a, got, 100, 0);
	assert_int_equal(n, 12);
	assert_memory_equal(got, "hello world\n", 12);
	assert_int_equal(layer_pread(l, a, got, 100, 6), 6);
	assert_memory_equal(got, "world\n", 6);
	assert_int_equal(layer_pread(l, a, got, 100, 12), 0);
	a = attr_of(l, "etc/hard");
	assert_int_equal(a->nlink, 2);
	assert_int_equal(layer_pread(l, a, got, 5, 0), 5);
	assert_memory_equal(got, "hello", 5);
	assert_int_equal(layer_pread(l, attr_of(l, "etc"), got, 5, 0), -EINVAL);
	/* Sparse: holes are zeros, also across segments. */
	a = attr_of(l, "sparse");
	assert_int_equal(a->size, 1048576);
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		size_t len = 70000;

		n = layer_pread(l, a, got, len, offs[i]);
		if (offs[i] + len > 1048576)
			len = (size_t)(1048576 - offs[i]);
		assert_int_equal(n, (ssize_t)len);
		sparse_expect(want, len, offs[i]);
		assert_memory_equal(got, want, len);
	}
	assert_int_equal(layer_reader_new(&rd, l, a), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(layer_reader_pread(rd, got, 262144, i * 262144), 262144);
		sparse_expect(want, 262144, i * 262144);
		assert_memory_equal(got, want, 262144);
	}
	layer_reader_free(rd);
	/* Random pieces of the big file. */
	a = attr_of(l, "big");
	assert_int_equal(a->size, BIG);
	for (i = 0; i < 5; i++) {
		uint64_t off = (uint64_t)i * 2654435761u % BIG;
		size_t len = 4096 + i * 30000;

		if (off + len > BIG)
			len = (size_t)(BIG - off);
		assert_int_equal(layer_pread(l, a, got, len, off), (ssize_t)len);
		assert_memory_equal(got, fx.big.data + off, len);
	}
	assert_int_equal(layer_pread(l, a, got, 100, BIG - 10), 10);
	free(got);
	free(want);
}

/* Read the whole big file through a reader with 128 KiB reads, with the
 * small reorderings of kernel readahead. */
static void read_big_sequential(struct layer *l)
{
	const struct tree_attr *a = attr_of(l, "big");
	struct layer_reader *rd;
	unsigned char *got = malloc(128u << 10);
	uint64_t off;

	assert_int_equal(layer_reader_new(&rd, l, a), 0);
	for (off = 0; off < BIG; off += 2 * (128u << 10)) {
		uint64_t o2 = off + (128u << 10);

		/* the second chunk first, then the first */
		if (o2 < BIG) {
			assert_int_equal(layer_reader_pread(rd, got, 128u << 10, o2), 128u << 10);
			assert_memory_equal(got, fx.big.data + o2, 128u << 10);
		}
		assert_int_equal(layer_reader_pread(rd, got, 128u << 10, off), 128u << 10);
		assert_memory_equal(got, fx.big.data + off, 128u << 10);
	}
	layer_reader_free(rd);
	free(got);
}

static struct layer *new_layer(struct tsrc *s, const char *mt, const struct buf *blob,
			       struct pcache *pc)
{
	struct blob_source src = tsrc_source(s);
	struct layer *l;
	struct digest d;

	tw_must(digest_of_buf(&d, blob->data, blob->len));
	if (!tsrc_find(s, &d))
		tsrc_add(s, blob, NULL);
	assert_int_equal(layer_new_src(&l, &src, mt, &d, blob->len, 3, pc, SPAN), 0);
	return l;
}

/* Load `blob` cold, check it, then again from the index file: same tree,
 * no blob byte fetched for the load. */
static void round_trip(const char *mt, const struct buf *blob, int kind)
{
	struct tsrc s = { 0 };
	struct pcache *pc;
	struct layer *l, *l2;
	struct layer_stats st;
	struct buf list1 = BUF_INIT, list2 = BUF_INIT;
	uint64_t fetched;

	assert_int_equal(pcache_open(&pc, fx.dir, 0), 0);
	l = new_layer(&s, mt, blob, pc);
	assert_int_equal(layer_kind(l), kind);
	assert_null(layer_tree(l));
	assert_int_equal(layer_load(l), 0);
	assert_int_equal(s.stream_calls, 1);
	assert_int_equal(s.stream_bytes, blob->len);
	assert_int_equal(layer_usize(l), fx.tar.len);
	list_tree(layer_tree(l), &list1);
	assert_non_null(strstr(list1.data, "etc/hard 100644 0:0 n2"));
	assert_non_null(strstr(list1.data, " x:security.capability=5 x:user.note=1"));
	assert_non_null(strstr(list1.data, "dev/null 20666 0:0 n1 s0 m1 L3"));
	assert_non_null(strstr(list1.data, "run/fifo 10600 1000:1001"));
	assert_non_null(strstr(list1.data, ".wh.gone 100755"));
	assert_non_null(strstr(list1.data, "etc/link 120755 0:0 n1 s5 m1700000000 L3"));
	assert_non_null(strstr(list1.data, "-> hello"));
	assert_non_null(strstr(list1.data, "long/nnn"));
	assert_non_null(strstr(list1.data, "sp0+4 sp524288+4 sp1048572+4"));
	check_contents(l);
	layer_stats(l, &st);
	assert_int_equal(st.loads_blob, 1);
	assert_int_equal(st.loads_index, 0);

	/* Warm: a new layer object (a remount) reads the index file. */
	fetched = s.stream_bytes + s.pread_bytes;
	l2 = new_layer(&s, mt, blob, pc);
	assert_int_equal(layer_load(l2), 0);
	assert_int_equal(s.stream_calls, 1);
	assert_int_equal(s.stream_bytes + s.pread_bytes, fetched);
	layer_stats(l2, &st);
	assert_int_equal(st.loads_index, 1);
	assert_int_equal(st.stream_bytes, 0);
	assert_int_equal(layer_usize(l2), fx.tar.len);
	list_tree(layer_tree(l2), &list2);
	assert_string_equal(list1.data, list2.data);
	check_contents(l2);
	read_big_sequential(l2);
	layer_free(l2);
	layer_free(l);
	pcache_free(pc);
	buf_release(&list1);
	buf_release(&list2);
}

static void test_plain_round_trip(void **state)
{
	(void)state;
	round_trip(MT_TAR, &fx.tar, DECOMP_TAR);
}

static void test_gzip_round_trip(void **state)
{
	(void)state;
	round_trip(MT_DGZ, &fx.gz, DECOMP_GZIP);
}

static void test_zstd_round_trip(void **state)
{
	(void)state;
	round_trip(MT_ZST, &fx.zst1, DECOMP_ZSTD);
}

static void test_zstd_multi_round_trip(void **state)
{
	(void)state;
	round_trip(MT_ZST, &fx.zstn, DECOMP_ZSTD);
}

/* No cache at all: everything still works, by ranged reads. */
static void test_no_cache(void **state)
{
	const struct buf *blobs[] = { &fx.tar, &fx.gz, &fx.zst1, &fx.zstn };
	const char *mts[] = { MT_TAR, MT_GZ, MT_ZST, MT_ZST };
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		struct tsrc s = { 0 };
		struct layer *l = new_layer(&s, mts[i], blobs[i], NULL);

		assert_int_equal(layer_load(l), 0);
		check_contents(l);
		read_big_sequential(l);
		assert_true(s.pread_bytes > 0);
		layer_free(l);
	}
}

/* With a budget, the local copy serves reads: no ranged read at all. */
static void test_local_copy(void **state)
{
	const struct buf *blobs[] = { &fx.tar, &fx.gz, &fx.zst1 };
	const char *mts[] = { MT_TAR, MT_GZ, MT_ZST };
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		struct tsrc s = { 0 };
		struct pcache *pc;
		struct layer *l, *l2;
		struct layer_stats st;

		assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
		l = new_layer(&s, mts[i], blobs[i], pc);
		assert_int_equal(layer_load(l), 0);
		check_contents(l);
		read_big_sequential(l);
		assert_int_equal(s.pread_calls, 0);
		layer_stats(l, &st);
		assert_true(st.local_bytes >= blobs[i]->len * 9 / 10);
		/* After a remount too. */
		l2 = new_layer(&s, mts[i], blobs[i], pc);
		assert_int_equal(layer_load(l2), 0);
		check_contents(l2);
		assert_int_equal(s.pread_calls, 0);
		assert_int_equal(s.stream_calls, 1);
		layer_free(l2);
		layer_free(l);
		pcache_free(pc);
	}
}

static char *index_path(const struct buf *blob)
{
	struct digest d;
	char hex[DIGEST_HEX_LEN + 1];
	char *p;

	tw_must(digest_of_buf(&d, blob->data, blob->len));
	p = malloc(4200);
	snprintf(p, 4200, "%s/v1/index/%s.idx", fx.dir, digest_hex(&d, hex));
	return p;
}

static void read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char tmp[65536];
	size_t n;

	assert_non_null(f);
	buf_reset(out);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		tw_must(buf_add(out, tmp, n));
	fclose(f);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

enum damage { FLIP_MID, FLIP_LAST, TRUNCATE, TRUNCATE_HALF, WRONG_VERSION, EMPTY };

static void damaged_index(enum damage how)
{
	struct tsrc s = { 0 };
	struct pcache *pc;
	struct layer *l;
	struct layer_stats st;
	struct buf idx = BUF_INIT, again = BUF_INIT;
	char *path = index_path(&fx.gz);

	assert_int_equal(pcache_open(&pc, fx.dir, 0), 0);
	l = new_layer(&s, MT_GZ, &fx.gz, pc);
	assert_int_equal(layer_load(l), 0);
	layer_free(l);
	read_file(path, &idx);
	assert_true(idx.len > 200);
	switch (how) {
	case FLIP_MID:
		idx.data[idx.len / 2] ^= 0x10;
		break;
	case FLIP_LAST:
		idx.data[idx.len - 1] ^= 0x01;
		break;
	case TRUNCATE:
		idx.len -= 1;
		break;
	case TRUNCATE_HALF:
		idx.len /= 2;
		break;
	case EMPTY:
		idx.len = 0;
		break;
	case WRONG_VERSION: {
		/* A consistent file of another version: fix the checksum. */
		struct digest sum;

		idx.data[8] = 2;
		tw_must(digest_of_buf(&sum, idx.data, idx.len - DIGEST_RAW_LEN));
		memcpy(idx.data + idx.len - DIGEST_RAW_LEN, sum.raw, DIGEST_RAW_LEN);
		break;
	}
	}
	write_file(path, idx.data, idx.len);

	l = new_layer(&s, MT_GZ, &fx.gz, pc);
	assert_int_equal(layer_load(l), 0);
	layer_stats(l, &st);
	assert_int_equal(st.index_rejected, 1);
	assert_int_equal(st.loads_blob, 1);
	assert_int_equal(s.stream_calls, 2);
	check_contents(l);
	layer_free(l);
	/* It was rebuilt: the next load uses it again. */
	read_file(path, &again);
	assert_true(again.len > 200);
	l = new_layer(&s, MT_GZ, &fx.gz, pc);
	assert_int_equal(layer_load(l), 0);
	layer_stats(l, &st);
	assert_int_equal(st.loads_index, 1);
	assert_int_equal(s.stream_calls, 2);
	layer_free(l);
	pcache_free(pc);
	free(path);
	buf_release(&idx);
	buf_release(&again);
}

static void test_index_flip(void **state)
{
	(void)state;
	damaged_index(FLIP_MID);
	rm_rf(fx.dir);
	mkdir(fx.dir, 0700);
	damaged_index(FLIP_LAST);
}

static void test_index_truncated(void **state)
{
	(void)state;
	damaged_index(TRUNCATE);
	rm_rf(fx.dir);
	mkdir(fx.dir, 0700);
	damaged_index(TRUNCATE_HALF);
	rm_rf(fx.dir);
	mkdir(fx.dir, 0700);
	damaged_index(EMPTY);
}

static void test_index_wrong_version(void **state)
{
	(void)state;
	damaged_index(WRONG_VERSION);
}

/* An index file of another blob copied under this digest is refused. */
static void test_index_other_blob(void **state)
{
	struct tsrc s = { 0 };
	struct pcache *pc;
	struct layer *l;
	struct layer_stats st;
	struct buf idx = BUF_INIT;
	char *pgz = index_path(&fx.gz), *ptar = index_path(&fx.tar);

	(void)state;
	assert_int_equal(pcache_open(&pc, fx.dir, 0), 0);
	l = new_layer(&s, MT_TAR, &fx.tar, pc);
	assert_int_equal(layer_load(l), 0);
	layer_free(l);
	read_file(ptar, &idx);
	write_file(pgz, idx.data, idx.len);
	l = new_layer(&s, MT_GZ, &fx.gz, pc);
	assert_int_equal(layer_load(l), 0);
	layer_stats(l, &st);
	assert_int_equal(st.index_rejected, 1);
	assert_int_equal(st.loads_blob, 1);
	check_contents(l);
	layer_free(l);
	pcache_free(pc);
	free(pgz);
	free(ptar);
	buf_release(&idx);
}

/* Capture what the logger writes to stderr during fn(arg). */
static void capture_stderr(void (*fn)(void *), void *arg, struct buf *out)
{
	char path[] = "/tmp/acrfs-test-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	read_file(path, out);
	unlink(path);
}

struct load_call {
	struct layer *l;
	int rc;
};

static void do_load(void *arg)
{
	struct load_call *c = arg;

	c->rc = layer_load(c->l);
}

static void test_digest_mismatch(void **state)
{
	struct tsrc s = { 0 };
	struct blob_source src = tsrc_source(&s);
	struct pcache *pc;
	struct layer *l;
	struct digest d;
	struct buf bad = BUF_INIT, log = BUF_INIT;
	struct load_call c;
	char *path = index_path(&fx.gz);
	uint64_t size;

	(void)state;
	/* The served bytes differ from the digest in one byte of data. */
	tw_must(digest_of_buf(&d, fx.gz.data, fx.gz.len));
	tw_must(buf_add(&bad, fx.gz.data, fx.gz.len));
	bad.data[bad.len - 8] ^= 1; /* the gzip CRC-32 */
	tsrc_add(&s, &bad, &d);
	assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
	assert_int_equal(layer_new_src(&l, &src, MT_GZ, &d, bad.len, 0, pc, SPAN), 0);
	c.l = l;
	capture_stderr(do_load, &c, &log);
	assert_int_equal(c.rc, -EIO);
	assert_non_null(strstr(log.data, "layer sha256:"));
	assert_null(layer_tree(l));
	/* Remembered: no second fetch within the retry window. */
	assert_int_equal(layer_load(l), -EIO);
	assert_int_equal(s.stream_calls, 1);
	/* Nothing kept: no index, no local copy. */
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(pcache_blob_stat(pc, &d, "", &size), -ENOENT);
	layer_free(l);

	/* Data that inflates and parses, but is not the blob: a valid gzip of
	 * a different tar served under the real digest. */
	{
		struct tsrc s2 = { 0 };
		struct blob_source src2 = tsrc_source(&s2);
		struct buf tar2 = BUF_INIT, gz2 = BUF_INIT;

		tw_file(&tar2, "evil", "not the layer");
		tw_end(&tar2);
		gzip_buf(&tar2, &gz2);
		tsrc_add(&s2, &gz2, &d);
		assert_int_equal(layer_new_src(&l, &src2, MT_GZ, &d, gz2.len, 0, pc, SPAN), 0);
		assert_int_equal(layer_load(l), -EIO);
		assert_null(layer_tree(l));
		assert_int_equal(access(path, F_OK), -1);
		layer_free(l);
		buf_release(&tar2);
		buf_release(&gz2);
	}
	pcache_free(pc);
	free(path);
	buf_release(&bad);
	buf_release(&log);
}

static void test_corrupt_blob(void **state)
{
	struct tsrc s = { 0 };
	struct layer *l;
	struct buf junk = BUF_INIT;

	(void)state;
	/* Correct digest, but not gzip at all. */
	tw_must(buf_adds(&junk, "this is not a gzip stream at all............"));
	l = new_layer(&s, MT_GZ, &junk, NULL);
	assert_int_equal(layer_load(l), -EIO);
	assert_null(layer_tree(l));
	layer_free(l);
	/* A truncated tar (no digest problem: its own digest). */
	buf_reset(&junk);
	tw_must(buf_add(&junk, fx.tar.data, 2000));
	l = new_layer(&s, MT_TAR, &junk, NULL);
	assert_int_equal(layer_load(l), -EIO);
	layer_free(l);
	buf_release(&junk);
}

static int released;

static void release_ctx(void *ctx)
{
	assert_non_null(ctx);
	released++;
}

static void test_unsupported_media_type(void **state)
{
	struct tsrc s = { 0 };
	struct pcache *pc;
	struct layer *l;
	struct buf log = BUF_INIT;
	struct load_call c;

	(void)state;
	assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
	l = new_layer(&s, "application/vnd.example.layer.v1.tar+lz4", &fx.tar, pc);
	assert_int_equal(layer_kind(l), -ENOTSUP);
	c.l = l;
	capture_stderr(do_load, &c, &log);
	assert_int_equal(c.rc, 0);
	assert_non_null(strstr(log.data, "unsupported media type"));
	assert_non_null(strstr(log.data, "tar+lz4"));
	assert_non_null(layer_tree(l));
	assert_int_equal(tree_node_count(layer_tree(l)), 1);
	assert_int_equal(s.stream_calls + s.pread_calls, 0);
	layer_own_source(l, release_ctx);
	released = 0;
	layer_free(l);
	assert_int_equal(released, 1);
	pcache_free(pc);
	buf_release(&log);
}

/* Reader over a gzip layer without a local copy: each compressed byte is
 * fetched about once, in 1 MiB requests. */
static void test_reader_fetches_once(void **state)
{
	struct tsrc s = { 0 };
	struct pcache *pc;
	struct layer *l;
	uint64_t before_bytes, before_calls, fetched;

	(void)state;
	assert_int_equal(pcache_open(&pc, fx.dir, 0), 0);
	l = new_layer(&s, MT_GZ, &fx.gz, pc);
	assert_int_equal(layer_load(l), 0);
	before_bytes = s.pread_bytes;
	before_calls = s.pread_calls;
	read_big_sequential(l);
	fetched = s.pread_bytes - before_bytes;
	print_message("reader: %llu compressed bytes fetched for a %zu-byte blob in %llu "
		      "requests\n",
		      (unsigned long long)fetched, fx.gz.len,
		      (unsigned long long)(s.pread_calls - before_calls));
	assert_true(fetched <= fx.gz.len + (1u << 20));
	assert_true(fetched >= fx.gz.len / 2);
	assert_true(s.pread_calls - before_calls <= fx.gz.len / (1u << 20) + 3);
	layer_free(l);
	pcache_free(pc);
}

/* A 4 KiB read at a random offset with the index warm fetches at most one
 * span plus 64 KiB. */
static void test_random_read_warm_index(void **state)
{
	struct tsrc s = { 0 };
	struct pcache *pc;
	struct layer *l;
	unsigned char buf[4096];
	static const uint64_t offs[] = { 0, 5000000, 7777777, BIG - 4096, 3 * SPAN + 17 };
	size_t i;
	uint64_t worst = 0;

	(void)state;
	assert_int_equal(pcache_open(&pc, fx.dir, 0), 0);
	l = new_layer(&s, MT_GZ, &fx.gz, pc);
	assert_int_equal(layer_load(l), 0);
	layer_free(l);
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		uint64_t before = s.pread_bytes + s.stream_bytes, got;

		l = new_layer(&s, MT_GZ, &fx.gz, pc);
		assert_int_equal(layer_load(l), 0);
		assert_int_equal(layer_pread(l, attr_of(l, "big"), buf, sizeof(buf), offs[i]),
				 4096);
		assert_memory_equal(buf, fx.big.data + offs[i], 4096);
		got = s.pread_bytes + s.stream_bytes - before;
		if (got > worst)
			worst = got;
		assert_true(got <= SPAN + (64u << 10));
		layer_free(l);
	}
	print_message("random 4 KiB read, warm index: at most %llu bytes fetched (span %u)\n",
		      (unsigned long long)worst, SPAN);
	assert_int_equal(s.stream_calls, 1);
	pcache_free(pc);
}

struct thr {
	struct layer *l;
	int rc;
};

static void *thr_load(void *arg)
{
	struct thr *t = arg;

	t->rc = layer_load(t->l);
	return NULL;
}

static void test_concurrent_load(void **state)
{
	struct tsrc s = { 0 };
	struct pcache *pc;
	struct layer *l;
	pthread_t th[8];
	struct thr t[8];
	int i;

	(void)state;
	assert_int_equal(pcache_open(&pc, fx.dir, 0), 0);
	s.delay_ms = 100;
	l = new_layer(&s, MT_GZ, &fx.gz, pc);
	for (i = 0; i < 8; i++) {
		t[i].l = l;
		t[i].rc = 1;
		assert_int_equal(pthread_create(&th[i], NULL, thr_load, &t[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].rc, 0);
	}
	assert_int_equal(s.stream_calls, 1);
	check_contents(l);
	layer_free(l);

	/* A failing load: all waiters see -EIO, still one fetch. */
	{
		struct tsrc s2 = { 0 };
		struct blob_source src = tsrc_source(&s2);
		struct digest d;
		struct buf junk = BUF_INIT;

		tw_must(buf_adds(&junk, "junk"));
		memset(&d, 0x5a, sizeof(d));
		tsrc_add(&s2, &junk, &d);
		s2.delay_ms = 100;
		assert_int_equal(layer_new_src(&l, &src, MT_GZ, &d, junk.len, 0, pc, 0), 0);
		for (i = 0; i < 8; i++) {
			t[i].l = l;
			assert_int_equal(pthread_create(&th[i], NULL, thr_load, &t[i]), 0);
		}
		for (i = 0; i < 8; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(t[i].rc, -EIO);
		}
		assert_int_equal(s2.stream_calls, 1);
		layer_free(l);
		buf_release(&junk);
	}
	pcache_free(pc);
}

/* A damaged local copy of a gzip blob: reads fail with -EIO, never return
 * wrong bytes (zran's check CRCs). */
static void test_damaged_local_copy(void **state)
{
	struct tsrc s = { 0 };
	struct pcache *pc;
	struct layer *l;
	struct digest d;
	char hex[DIGEST_HEX_LEN + 1], path[4200];
	unsigned char buf[4096];
	const struct tree_attr *a;
	int fd;
	ssize_t n;
	size_t off;

	(void)state;
	assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
	l = new_layer(&s, MT_GZ, &fx.gz, pc);
	assert_int_equal(layer_load(l), 0);
	tw_must(digest_of_buf(&d, fx.gz.data, fx.gz.len));
	snprintf(path, sizeof(path), "%s/v1/blobs/%s", fx.dir, digest_hex(&d, hex));
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	for (off = 1024; off + 4 < fx.gz.len; off += 16384)
		assert_int_equal(pwrite(fd, "\x55\xaa\x55\xaa", 4, (off_t)off), 4);
	close(fd);
	a = attr_of(l, "big");
	n = layer_pread(l, a, buf, sizeof(buf), BIG / 2);
	assert_int_equal(n, -EIO);
	assert_int_equal(s.pread_calls, 0);
	layer_free(l);
	pcache_free(pc);
}

/* ---- large reads ---------------------------------------------------------- */

#define SENT 0xEE
#define KINDS 4

static const struct buf *kind_blob(size_t i)
{
	const struct buf *b[KINDS] = { &fx.tar, &fx.gz, &fx.zst1, &fx.zstn };

	return b[i];
}

static const char *const kind_mt[KINDS] = { MT_TAR, MT_GZ, MT_ZST, MT_ZST };
static const char *const kind_name[KINDS] = { "tar", "gzip", "zstd", "zstd, 1 MiB frames" };

/*
 * Point 5: one read of 8 MiB (more than a reader's 1 MiB buffer), through a
 * reader and through layer_pread, with and without local copies, compared
 * with the file; and one crossing the end of the file.
 */
static void test_read_8mib(void **state)
{
	size_t k, len = 8u << 20;
	unsigned char *buf = malloc(len);
	int cached;

	(void)state;
	assert_non_null(buf);
	for (k = 0; k < KINDS; k++) {
		for (cached = 0; cached < 2; cached++) {
			struct tsrc s = { 0 };
			struct pcache *pc = NULL;
			struct layer *l;
			struct layer_reader *rd;
			const struct tree_attr *a;
			uint64_t off = (1u << 20) + 77;

			print_message("%s%s\n", kind_name[k], cached ? ", local copy" : "");
			if (cached)
				assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
			l = new_layer(&s, kind_mt[k], kind_blob(k), pc);
			assert_int_equal(layer_load(l), 0);
			a = attr_of(l, "big");
			assert_int_equal(layer_reader_new(&rd, l, a), 0);
			memset(buf, SENT, len);
			assert_int_equal(layer_reader_pread(rd, buf, len, off), (ssize_t)len);
			assert_memory_equal(buf, fx.big.data + off, len);
			layer_reader_free(rd);
			memset(buf, SENT, len);
			assert_int_equal(layer_pread(l, a, buf, len, off + 3), (ssize_t)len);
			assert_memory_equal(buf, fx.big.data + off + 3, len);
			memset(buf, SENT, len);
			assert_int_equal(layer_pread(l, a, buf, len, BIG - (3u << 20)), 3u << 20);
			assert_memory_equal(buf, fx.big.data + BIG - (3u << 20), 3u << 20);
			layer_free(l);
			pcache_free(pc);
			rm_rf(fx.dir);
			mkdir(fx.dir, 0700);
		}
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plain_round_trip, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_gzip_round_trip, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_zstd_round_trip, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_zstd_multi_round_trip, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_no_cache, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_local_copy, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_index_flip, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_index_truncated, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_index_wrong_version, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_index_other_blob, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_digest_mismatch, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_blob, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_unsupported_media_type, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_reader_fetches_once, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_random_read_warm_index, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_load, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_damaged_local_copy, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_read_8mib, each_setup, each_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
