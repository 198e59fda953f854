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

/* The layer kinds with a local copy of their own: tar, gzip (the blob) and
 * zstd (its decompressed tar), by blob and media type. */
static const struct buf *const kind_blobs[] = { &fx.tar, &fx.gz, &fx.zst1 };
static const char *const kind_mts[] = { MT_TAR, MT_GZ, MT_ZST };

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
	longname[150] = '/'; /* a long path of names a file system can hold */
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
	assert_non_null(strstr(list1.data, "etc/link 120777 0:0 n1 s5 m1700000000 L3"));
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
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kind_mts) / sizeof(kind_mts[0]); i++) {
		struct tsrc s = { 0 };
		struct pcache *pc;
		struct layer *l, *l2;
		struct layer_stats st;

		assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
		l = new_layer(&s, kind_mts[i], kind_blobs[i], pc);
		assert_int_equal(layer_load(l), 0);
		check_contents(l);
		read_big_sequential(l);
		assert_int_equal(s.pread_calls, 0);
		layer_stats(l, &st);
		assert_true(st.local_bytes >= kind_blobs[i]->len * 9 / 10);
		/* After a remount too. */
		l2 = new_layer(&s, kind_mts[i], kind_blobs[i], pc);
		assert_int_equal(layer_load(l2), 0);
		check_contents(l2);
		assert_int_equal(s.pread_calls, 0);
		assert_int_equal(s.stream_calls, 1);
		layer_free(l2);
		layer_free(l);
		pcache_free(pc);
	}
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
	file_read(path, out);
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

enum damage { FLIP_MID, FLIP_LAST, TRUNCATE, TRUNCATE_HALF, OLD_VERSION, NEXT_VERSION,
	      BAD_SUMS, EMPTY };

static uint64_t get_le64(const char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | (unsigned char)p[i];
	return v;
}

static void put_le64(char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (char)(v >> (8 * i));
}

/* Recompute the trailing SHA-256 of an index file: a consistent file. */
static void fix_checksum(struct buf *idx)
{
	struct digest sum;

	tw_must(digest_of_buf(&sum, idx->data, idx->len - DIGEST_RAW_LEN));
	memcpy(idx->data + idx->len - DIGEST_RAW_LEN, sum.raw, DIGEST_RAW_LEN);
}

/*
 * The offset of the block-sum tables in a version-2 index file of the gzip
 * blob (header 80 bytes with entries_len at 72, the entries, aux_len, aux);
 * checks that the rest is exactly the two tables and the checksum.
 */
static size_t sums_offset(const struct buf *idx)
{
	uint64_t elen = get_le64(idx->data + 72), alen, bsize, n;
	size_t at;

	alen = get_le64(idx->data + 80 + elen);
	at = 80 + elen + 8 + alen;
	bsize = get_le64(idx->data + at);
	n = get_le64(idx->data + at + 8);
	assert_int_equal(bsize, LAYER_BLOCK);
	assert_int_equal(n, (fx.gz.len + LAYER_BLOCK - 1) / LAYER_BLOCK);
	assert_int_equal(idx->len, at + 16 + n * DIGEST_RAW_LEN + 16 + DIGEST_RAW_LEN);
	return at;
}

static void damaged_index(enum damage how)
{
	struct tsrc s = { 0 };
	struct pcache *pc;
	struct layer *l;
	struct layer_stats st;
	struct buf idx = BUF_INIT, again = BUF_INIT, log = BUF_INIT;
	struct load_call c;
	char *path = index_path(&fx.gz);
	size_t at;

	assert_int_equal(pcache_open(&pc, fx.dir, 0), 0);
	l = new_layer(&s, MT_GZ, &fx.gz, pc);
	assert_int_equal(layer_load(l), 0);
	layer_free(l);
	pcache_flush(pc); /* the index file is stored in the background */
	file_read(path, &idx);
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
	case OLD_VERSION:
		/* What acrfs wrote before block sums: version 1, the same layout
		 * without the two tables. */
		assert_int_equal(idx.data[8], 2);
		idx.len = sums_offset(&idx) + DIGEST_RAW_LEN;
		idx.data[8] = 1;
		fix_checksum(&idx);
		break;
	case NEXT_VERSION:
		idx.data[8] = 3;
		fix_checksum(&idx);
		break;
	case BAD_SUMS:
		/* A consistent file whose table does not cover the blob. */
		at = sums_offset(&idx);
		put_le64(idx.data + at, LAYER_BLOCK * 2);
		fix_checksum(&idx);
		break;
	}
	file_write(path, idx.data, idx.len);

	l = new_layer(&s, MT_GZ, &fx.gz, pc);
	c.l = l;
	capture_stderr(do_load, &c, &log);
	assert_int_equal(c.rc, 0);
	assert_non_null(strstr(buf_cstr(&log), "is invalid"));
	if (how == OLD_VERSION || how == NEXT_VERSION)
		assert_non_null(strstr(buf_cstr(&log), "(unknown version)"));
	if (how == BAD_SUMS)
		assert_non_null(strstr(buf_cstr(&log), "(bad block sums)"));
	layer_stats(l, &st);
	assert_int_equal(st.index_rejected, 1);
	assert_int_equal(st.loads_blob, 1);
	assert_int_equal(s.stream_calls, 2);
	check_contents(l);
	layer_free(l);
	/* It was rebuilt: the next load uses it again. */
	pcache_flush(pc);
	file_read(path, &again);
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
	buf_release(&log);
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

/* An index file of the previous version (no block sums) or of a later one
 * is rejected and rebuilt from the blob. */
static void test_index_wrong_version(void **state)
{
	(void)state;
	damaged_index(OLD_VERSION);
	rm_rf(fx.dir);
	mkdir(fx.dir, 0700);
	damaged_index(NEXT_VERSION);
}

static void test_index_bad_sums(void **state)
{
	(void)state;
	damaged_index(BAD_SUMS);
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
	pcache_flush(pc);
	file_read(ptar, &idx);
	file_write(pgz, idx.data, idx.len);
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

/* ---- every byte served is proven against the digest ----------------------- */

#define SENT 0xEE
#define KINDS 4

static const struct buf *kind_blob(size_t i)
{
	const struct buf *b[KINDS] = { &fx.tar, &fx.gz, &fx.zst1, &fx.zstn };

	return b[i];
}

static const char *const kind_mt[KINDS] = { MT_TAR, MT_GZ, MT_ZST, MT_ZST };
static const char *const kind_name[KINDS] = { "tar", "gzip", "zstd", "zstd, 1 MiB frames" };

/* After a failed read: every byte of `got` is the sentinel or the right one. */
static void assert_no_wrong_byte(const unsigned char *got, size_t len, uint64_t off)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (got[i] != SENT && got[i] != (unsigned char)fx.big.data[off + i])
			fail_msg("byte %zu of a failed read at %llu is neither the sentinel nor "
				 "the file's",
				 i, (unsigned long long)off);
}

struct read_call {
	struct layer *l;
	struct layer_reader *rd; /* NULL: layer_pread */
	unsigned char *buf;
	size_t len;
	uint64_t off;
	ssize_t rc;
};

static void do_read(void *arg)
{
	struct read_call *c = arg;
	const struct tree_attr *a = attr_of(c->l, "big");

	memset(c->buf, SENT, c->len);
	c->rc = c->rd ? layer_reader_pread(c->rd, c->buf, c->len, c->off)
		      : layer_pread(c->l, a, c->buf, c->len, c->off);
}

/* Read big[off, +len) with the log captured; returns the result. */
static ssize_t read_logged(struct read_call *c, struct buf *log)
{
	capture_stderr(do_read, c, log);
	return c->rc;
}

static void assert_logged(const struct buf *log, const char *what)
{
	if (!strstr(buf_cstr(log), what))
		fail_msg("the log does not say \"%s\":\n%s", what, buf_cstr(log));
}

/* The read fails with -EIO, leaves no wrong byte and logs `what`. */
static void read_fails(struct read_call *c, struct buf *log, const char *what)
{
	assert_int_equal(read_logged(c, log), -EIO);
	assert_no_wrong_byte(c->buf, c->len, c->off);
	assert_logged(log, what);
}

/* The layer of kind k over `s` (and the cache `pc`, may be NULL), loaded. */
static struct layer *kind_load(size_t k, struct tsrc *s, struct pcache *pc)
{
	struct layer *l = new_layer(s, kind_mt[k], kind_blob(k), pc);

	print_message("%s%s\n", kind_name[k], pc ? ", local copy" : "");
	assert_int_equal(layer_load(l), 0);
	return l;
}

/*
 * A server corrupting ranged answers: -EIO and a log line naming the block,
 * never a wrong byte — for layer_pread and a reader, for every layer type.
 * A fault on one answer only is repaired by the second fetch.
 */
static void test_ranged_corrupt(void **state)
{
	size_t k;
	unsigned char *buf = malloc(256u << 10);

	(void)state;
	assert_non_null(buf);
	for (k = 0; k < KINDS; k++) {
		struct tsrc s = { 0 };
		struct layer *l = kind_load(k, &s, NULL);
		struct read_call c = { l, NULL, buf, 256u << 10, (5u << 20) + 123, 0 };
		struct buf log = BUF_INIT;
		struct layer_stats st;

		s.fault = TSRC_CORRUPT;
		s.fault_left = -1;
		read_fails(&c, &log, "from a ranged read does not match");
		assert_logged(&log, "layer sha256:");
		assert_logged(&log, "(blob bytes ");
		assert_logged(&log, "fetching it again");
		assert_logged(&log, "Input/output error");
		/* Through a reader: sequential reads from the file's start. */
		assert_int_equal(layer_reader_new(&c.rd, l, attr_of(l, "big")), 0);
		c.off = 0;
		c.len = 128u << 10;
		read_fails(&c, &log, "Input/output error");
		/* One bad answer, then good ones: the second fetch serves. */
		s.fault_left = 1;
		assert_int_equal(read_logged(&c, &log), (ssize_t)c.len);
		assert_memory_equal(buf, fx.big.data, c.len);
		assert_logged(&log, "fetching it again");
		layer_reader_free(c.rd);
		c.rd = NULL;
		s.fault_left = 1;
		c.off = (7u << 20) + 5;
		assert_int_equal(read_logged(&c, &log), (ssize_t)c.len);
		assert_memory_equal(buf, fx.big.data + c.off, c.len);
		layer_stats(l, &st);
		assert_true(st.blocks_rejected >= 5);
		layer_free(l);
		buf_release(&log);
	}
	free(buf);
}

/*
 * The source's other answers: a 200 for a ranged read (the whole blob,
 * skipped to the offset by the client) and short reads give the right bytes;
 * a 200 nobody skipped and a body ending early give -EIO, no wrong byte.
 */
static void test_ranged_answers(void **state)
{
	size_t k;
	unsigned char *buf = malloc(256u << 10);

	(void)state;
	assert_non_null(buf);
	for (k = 0; k < KINDS; k++) {
		struct tsrc s = { 0 };
		struct layer *l = kind_load(k, &s, NULL);
		struct read_call c = { l, NULL, buf, 256u << 10, (3u << 20) + 1, 0 };
		struct buf log = BUF_INIT;
		uint64_t before;

		s.fault_left = -1;
		s.fault = TSRC_NORANGE;
		before = s.pread_bytes;
		check_contents(l);
		read_big_sequential(l);
		assert_true(s.pread_bytes - before >= kind_blob(k)->len);
		s.fault = TSRC_SHORT;
		check_contents(l);
		s.fault = TSRC_NOSKIP;
		read_fails(&c, &log, "does not match");
		s.fault = TSRC_EOF;
		read_fails(&c, &log, "short data");
		layer_free(l);
		buf_release(&log);
	}
	free(buf);
}

/* Flip bytes every 16 KiB of the middle half of a local copy file ("<hex>"
 * or "<hex>.tar"): whatever a read there gets from it is damaged. */
static void damage_copy(const struct buf *blob, const char *sfx, uint64_t size)
{
	struct digest d;
	char hex[DIGEST_HEX_LEN + 1], path[4200];
	uint64_t off;
	int fd;

	tw_must(digest_of_buf(&d, blob->data, blob->len));
	snprintf(path, sizeof(path), "%s/v1/blobs/%s%s%s", fx.dir, digest_hex(&d, hex),
		 *sfx ? "." : "", sfx);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	for (off = size / 4; off < size / 4 * 3; off += 16384)
		assert_int_equal(pwrite(fd, "\x55\xaa\x55\xaa", 4, (off_t)off), 4);
	close(fd);
}

/*
 * Without its index file (index_max evicted it), a layer whose blob has a
 * local copy is indexed from the copy: no blob request, the same tree and
 * bytes. A copy that does not match the digest is dropped, the blob
 * downloaded, and a good copy kept. A zstd layer keeps no copy of its blob:
 * it is downloaded.
 */
static void test_index_from_local_copy(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kind_mts) / sizeof(kind_mts[0]); i++) {
		struct tsrc s = { 0 };
		struct pcache *pc;
		struct layer *l, *l2, *l3;
		struct layer_stats st;
		struct buf list1 = BUF_INIT, list2 = BUF_INIT;
		struct digest d;

		tw_must(digest_of_buf(&d, kind_blobs[i]->data, kind_blobs[i]->len));
		assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
		l = new_layer(&s, kind_mts[i], kind_blobs[i], pc);
		assert_int_equal(layer_load(l), 0);
		list_tree(layer_tree(l), &list1);
		assert_int_equal(s.stream_calls, 1);
		assert_int_equal(pcache_index_remove(pc, &d), 0);
		l2 = new_layer(&s, kind_mts[i], kind_blobs[i], pc);
		assert_int_equal(layer_load(l2), 0);
		layer_stats(l2, &st);
		list_tree(layer_tree(l2), &list2);
		assert_string_equal(list1.data, list2.data);
		check_contents(l2);
		if (i < 2) {
			assert_int_equal(s.stream_calls, 1); /* from the copy */
			assert_int_equal(s.pread_calls, 0);
			assert_int_equal(st.loads_local, 1);
			assert_int_equal(st.loads_blob, 1);
			assert_int_equal(st.local_bytes, kind_blobs[i]->len); /* read once */
		} else {
			assert_int_equal(s.stream_calls, 2); /* zstd: downloaded */
			assert_int_equal(st.loads_local, 0);
		}
		/* The index file was written again. */
		assert_int_equal(pcache_index_remove(pc, &d), 0);
		if (i < 2) {
			uint64_t size;

			damage_copy(kind_blobs[i], "", kind_blobs[i]->len);
			l3 = new_layer(&s, kind_mts[i], kind_blobs[i], pc);
			assert_int_equal(layer_load(l3), 0);
			layer_stats(l3, &st);
			assert_int_equal(st.loads_local, 0);
			assert_int_equal(s.stream_calls, 2); /* downloaded */
			buf_reset(&list2);
			list_tree(layer_tree(l3), &list2);
			assert_string_equal(list1.data, list2.data);
			check_contents(l3);
			/* A good copy replaced the damaged one. */
			assert_int_equal(pcache_blob_stat(pc, &d, "", &size), 0);
			assert_int_equal(size, kind_blobs[i]->len);
			layer_free(l3);
			assert_int_equal(pcache_index_remove(pc, &d), 0);
			l3 = new_layer(&s, kind_mts[i], kind_blobs[i], pc);
			assert_int_equal(layer_load(l3), 0);
			layer_stats(l3, &st);
			assert_int_equal(st.loads_local, 1);
			assert_int_equal(s.stream_calls, 2);
			layer_free(l3);
		}
		buf_release(&list1);
		buf_release(&list2);
		layer_free(l2);
		layer_free(l);
		pcache_free(pc);
	}
}

/*
 * A damaged local copy — the compressed blob (tar, gzip) or the decompressed
 * one (zstd) — is never served: the read checks it, logs, drops the copy and
 * reads the blob by range instead (right bytes). When the ranged answers are
 * bad too: -EIO, no wrong byte.
 */
static void test_damaged_local_copy(void **state)
{
	size_t k;
	unsigned char *buf = malloc(256u << 10);

	(void)state;
	assert_non_null(buf);
	for (k = 0; k < KINDS; k++) {
		const char *sfx = k >= 2 ? "tar" : "";
		int bad_source;

		for (bad_source = 0; bad_source < 2; bad_source++) {
			struct tsrc s = { 0 };
			struct pcache *pc;
			struct layer *l;
			struct read_call c = { NULL, NULL, buf, 256u << 10, BIG / 2 + 99, 0 };
			struct buf log = BUF_INIT;
			struct layer_stats st;
			uint64_t size;

			assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
			l = c.l = kind_load(k, &s, pc);
			assert_int_equal(pcache_blob_stat(pc, layer_digest(l), sfx, &size), 0);
			damage_copy(kind_blob(k), sfx, size);
			if (bad_source) {
				s.fault = TSRC_CORRUPT;
				s.fault_left = -1;
				read_fails(&c, &log, "from a ranged read does not match");
			} else {
				assert_int_equal(read_logged(&c, &log), (ssize_t)c.len);
				assert_memory_equal(buf, fx.big.data + c.off, c.len);
			}
			assert_logged(&log, "of the local copy does not match");
			assert_logged(&log, k >= 2 ? "(tar bytes " : "(blob bytes ");
			assert_logged(&log, "dropping the copy");
			assert_true(s.pread_calls > 0);
			/* The copy is gone: reads go to the source from now on. */
			assert_int_equal(pcache_blob_stat(pc, layer_digest(l), sfx, &size),
					 -ENOENT);
			s.fault = TSRC_FAULT_NONE;
			check_contents(l);
			layer_stats(l, &st);
			assert_true(st.blocks_rejected >= 1);
			layer_free(l);
			pcache_free(pc);
			buf_release(&log);
			rm_rf(fx.dir);
			mkdir(fx.dir, 0700);
		}
	}
	free(buf);
}

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

			if (cached)
				assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
			l = kind_load(k, &s, pc);
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

/*
 * A reader that goes on sequentially reads ahead in growing pieces (up to 4
 * MiB: fewer Range requests than 1 MiB ones) and never past its file's
 * data; a jump back after read-ahead started still reads right.
 */
static void test_reader_read_ahead(void **state)
{
	struct tsrc s = { 0 };
	struct layer *l;
	struct layer_reader *rd;
	const struct tree_attr *a;
	unsigned char *got = malloc(128u << 10);
	uint64_t calls, bytes, off;

	(void)state;
	assert_non_null(got);
	l = new_layer(&s, MT_TAR, &fx.tar, NULL);
	assert_int_equal(layer_load(l), 0);
	a = attr_of(l, "big");
	calls = s.pread_calls;
	bytes = s.pread_bytes;
	read_big_sequential(l);
	print_message("read-ahead: %llu requests, %llu bytes for a %u-byte file\n",
		      (unsigned long long)(s.pread_calls - calls),
		      (unsigned long long)(s.pread_bytes - bytes), BIG);
	/* 1 + 1 + 2 + 4 + 4 MiB: 5 requests (12 in 1 MiB pieces). */
	assert_true(s.pread_calls - calls <= 6);
	assert_true(s.pread_bytes - bytes <= a->stored_size + 2 * LAYER_BLOCK);
	/* Back to the start and on again, then far ahead. */
	assert_int_equal(layer_reader_new(&rd, l, a), 0);
	for (off = 0; off < (6u << 20); off += 128u << 10) {
		assert_int_equal(layer_reader_pread(rd, got, 128u << 10, off), 128u << 10);
		assert_memory_equal(got, fx.big.data + off, 128u << 10);
	}
	assert_int_equal(layer_reader_pread(rd, got, 128u << 10, 4096), 128u << 10);
	assert_memory_equal(got, fx.big.data + 4096, 128u << 10);
	assert_int_equal(layer_reader_pread(rd, got, 128u << 10, BIG - (128u << 10)), 128u << 10);
	assert_memory_equal(got, fx.big.data + BIG - (128u << 10), 128u << 10);
	layer_reader_free(rd);
	layer_free(l);
	free(got);
}

/* ---- big blobs: parallel ranged fetch, two threads per load ------------- */

/*
 * A gzip blob of 32 MiB or more whose stream is switched to ranges (policy
 * RANGES: the switch AUTO makes when decoding waits for the stream) is
 * streamed for 16 MiB, then fetched by concurrent ranged reads from there,
 * decoded on a second thread, and reads right; with ranges not known to
 * work, or policy STREAM, it is streamed whole; bytes that decode but are
 * not the blob (the gzip header's MTIME changed) fail the load and leave
 * nothing in the cache.
 */
static void test_parallel_fetch(void **state)
{
	struct buf data = BUF_INIT, tar = BUF_INIT, gz = BUF_INIT, bad = BUF_INIT;
	struct tw_hdr h = { .name = "bigger", .type = '0', .mode = 0644, .mtime = 1 };
	unsigned char *got = malloc(1u << 20);
	uint64_t x = 77, size, offs[] = { 0, 5u << 20, (20u << 20) + 12345, (40u << 20) - 65536 };
	struct pcache *pc;
	struct layer *l;
	struct layer_stats st;
	size_t i;

	(void)state;
	assert_non_null(got);
	gen_text(&data, 8u << 20, 9); /* compresses; the rest does not */
	tw_must(buf_grow(&data, 32u << 20));
	for (i = 0; i < (32u << 20); i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		data.data[data.len++] = (char)(x >> 56);
	}
	h.size = data.len;
	tw_header(&tar, &h);
	tw_data(&tar, data.data, data.len);
	tw_end(&tar);
	gzip_buf(&tar, &gz);
	assert_true(gz.len >= (32u << 20));

	/* Switched: the stream stopped after 16 MiB, the rest by ranges (one
	 * 1-byte read first: the probe); the index file then serves a remount. */
	layer_fetch_policy(LAYER_FETCH_RANGES);
	{
		struct tsrc s = { 0 };

		assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
		l = new_layer(&s, MT_GZ, &gz, pc);
		assert_int_equal(layer_load(l), 0);
		assert_int_equal(s.stream_calls, 1);
		assert_true(s.stream_bytes >= (16u << 20) && s.stream_bytes < (17u << 20));
		assert_true(s.pread_calls >= 1 + (gz.len - s.stream_bytes) / (8u << 20));
		assert_int_equal(s.pread_bytes, 1 + gz.len - s.stream_bytes);
		layer_stats(l, &st);
		assert_int_equal(st.stream_bytes, gz.len);
		for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
			assert_int_equal(layer_pread(l, attr_of(l, "bigger"), got, 65536, offs[i]),
					 65536);
			assert_memory_equal(got, data.data + offs[i], 65536);
		}
		layer_free(l);
		l = new_layer(&s, MT_GZ, &gz, pc);
		assert_int_equal(layer_load(l), 0);
		layer_stats(l, &st);
		assert_int_equal(st.loads_index, 1);
		layer_free(l);
		pcache_free(pc);
	}
	/* Ranges not known to work: streamed whole, after the probe; policy
	 * STREAM: no probe either. */
	for (i = 0; i < 2; i++) {
		struct tsrc s = { 0 };

		s.ranges = -1;
		layer_fetch_policy(i ? LAYER_FETCH_STREAM : LAYER_FETCH_RANGES);
		l = new_layer(&s, MT_GZ, &gz, NULL);
		assert_int_equal(layer_load(l), 0);
		assert_int_equal(s.stream_calls, 1);
		assert_int_equal(s.stream_bytes, gz.len);
		assert_int_equal(s.pread_calls, i ? 0 : 1);
		assert_int_equal(layer_pread(l, attr_of(l, "bigger"), got, 65536, offs[2]), 65536);
		assert_memory_equal(got, data.data + offs[2], 65536);
		layer_free(l);
	}
	layer_fetch_policy(LAYER_FETCH_RANGES);
	/* Not the blob: -EIO, nothing kept. */
	{
		struct tsrc s = { 0 };
		struct digest d;
		char *path = index_path(&gz);

		rm_rf(fx.dir);
		assert_int_equal(mkdir(fx.dir, 0700), 0);
		tw_must(buf_add(&bad, gz.data, gz.len));
		bad.data[5] ^= 0x40; /* MTIME: no CRC covers it */
		tw_must(digest_of_buf(&d, gz.data, gz.len));
		tsrc_add(&s, &bad, &d);
		assert_int_equal(pcache_open(&pc, fx.dir, 1ull << 30), 0);
		l = new_layer(&s, MT_GZ, &gz, pc);
		assert_int_equal(layer_load(l), -EIO);
		assert_null(layer_tree(l));
		assert_int_equal(s.stream_calls, 1);
		assert_true(s.pread_calls > 1); /* the switch happened */
		assert_int_equal(access(path, F_OK), -1);
		assert_int_equal(pcache_blob_stat(pc, &d, "", &size), -ENOENT);
		layer_free(l);
		pcache_free(pc);
		free(path);
	}
	layer_fetch_policy(LAYER_FETCH_AUTO);
	free(got);
	buf_release(&data);
	buf_release(&tar);
	buf_release(&gz);
	buf_release(&bad);
}

/* A 4 KiB read of a tar layer fetches the blocks holding it, no more. */
static void test_tar_small_read(void **state)
{
	struct tsrc s = { 0 };
	struct layer *l;
	unsigned char buf[4096];
	static const uint64_t offs[] = { 0, 1000, LAYER_BLOCK - 100, 5000000 };
	size_t i;

	(void)state;
	l = new_layer(&s, MT_TAR, &fx.tar, NULL);
	assert_int_equal(layer_load(l), 0);
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		uint64_t before = s.pread_bytes;

		assert_int_equal(layer_pread(l, attr_of(l, "big"), buf, sizeof(buf), offs[i]),
				 4096);
		assert_memory_equal(buf, fx.big.data + offs[i], 4096);
		assert_true(s.pread_bytes - before <= 2 * LAYER_BLOCK);
	}
	layer_free(l);
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
		cmocka_unit_test_setup_teardown(test_index_from_local_copy, each_setup,
						each_teardown),
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
		cmocka_unit_test_setup_teardown(test_index_bad_sums, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_ranged_corrupt, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_ranged_answers, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_damaged_local_copy, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_read_8mib, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_tar_small_read, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_parallel_fetch, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reader_read_ahead, each_setup, each_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
