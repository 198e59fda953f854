/*
 * Streaming tar parser: dialects, extensions, sparse formats, path
 * normalisation and hostile archives. Every archive is parsed with chunks
 * of 1, 7, 512 bytes and whole, and the results must be identical.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "image/tar.h"
#include "tarw.h"

/* ---- harness ---------------------------------------------------------- */

struct ent {
	char *path;
	uint64_t off, stored, size;
};

struct col {
	struct buf lines;  /* one serialised line per entry */
	struct ent ents[64];
	size_t n;
	size_t count;
	int fail_at;       /* return -EXDEV on this entry (1-based), 0 = never */
};

static int collect_cb(void *ctx, const struct tar_entry *e)
{
	struct col *c = ctx;
	size_t i;

	c->count++;
	if (c->fail_at && (int)c->count == c->fail_at)
		return -EXDEV;
	if (c->n < 64) {
		c->ents[c->n].path = strdup(e->path);
		c->ents[c->n].off = e->data_offset;
		c->ents[c->n].stored = e->stored_size;
		c->ents[c->n].size = e->size;
		c->n++;
	}
	if (c->count > 64)
		return 0; /* big archives: only count */
	assert_int_equal(buf_addf(&c->lines,
				  "%s|%s|t%d|%c|%04o|%u:%u|%" PRId64 ".%09u|sz%" PRIu64
				  "|off%" PRIu64 "|st%" PRIu64 "|dev%u,%u",
				  e->path, e->linkname, (int)e->type,
				  e->typeflag ? e->typeflag : '@', e->mode, e->uid,
				  e->gid, e->mtime_sec, e->mtime_nsec, e->size,
				  e->data_offset, e->stored_size, e->devmajor,
				  e->devminor),
			 0);
	for (i = 0; i < e->nxattrs; i++) {
		size_t j;

		assert_int_equal(buf_addf(&c->lines, "|x:%s=", e->xattrs[i].name), 0);
		for (j = 0; j < e->xattrs[i].value_len; j++)
			assert_int_equal(buf_addf(&c->lines, "%02x",
						  ((const unsigned char *)e->xattrs[i].value)[j]),
					 0);
	}
	if (e->sparse) {
		assert_int_equal(buf_adds(&c->lines, "|sp:"), 0);
		for (i = 0; i < e->nsparse; i++)
			assert_int_equal(buf_addf(&c->lines, "%s%" PRIu64 "+%" PRIu64 "@%" PRIu64,
						  i ? "," : "", e->sparse[i].offset,
						  e->sparse[i].length, e->sparse[i].stored),
					 0);
	}
	assert_int_equal(buf_addch(&c->lines, '\n'), 0);
	return 0;
}

static void col_release(struct col *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->ents[i].path);
	buf_release(&c->lines);
	memset(c, 0, sizeof(*c));
}

/* Parse with a chunk size (0 = whole); rc of the first failing call. */
static int parse_chunked(const void *data, size_t len, size_t chunk, struct col *c)
{
	struct tar_parser *p;
	size_t off = 0;
	int rc;

	assert_int_equal(tar_parser_new(&p, collect_cb, c), 0);
	if (!chunk)
		chunk = len ? len : 1;
	rc = 0;
	while (off < len && !rc) {
		size_t n = len - off < chunk ? len - off : chunk;

		rc = tar_parser_feed(p, (const char *)data + off, n);
		off += n;
	}
	if (!rc)
		rc = tar_parser_finish(p);
	else
		assert_int_equal(tar_parser_finish(p), rc); /* sticky */
	tar_parser_free(p);
	return rc;
}

/*
 * Parse with every chunk size; all must agree. Returns the rc and leaves the
 * whole-buffer result in *out (caller releases).
 */
static int parse(const struct buf *b, struct col *out)
{
	static const size_t chunks[] = { 1, 7, 512, 0 };
	struct col first = { 0 };
	int rc0 = 0;
	size_t i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct col c = { 0 };
		int rc;

		c.fail_at = out->fail_at;
		rc = parse_chunked(b->data, b->len, chunks[i], &c);
		if (i == 0) {
			rc0 = rc;
			first = c;
			continue;
		}
		assert_int_equal(rc, rc0);
		assert_string_equal(buf_cstr(&c.lines), buf_cstr(&first.lines));
		assert_int_equal(c.count, first.count);
		if (i + 1 < sizeof(chunks) / sizeof(chunks[0]))
			col_release(&c);
		else {
			col_release(&first);
			*out = c;
		}
	}
	return rc0;
}

static const struct ent *find(const struct col *c, const char *path)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (!strcmp(c->ents[i].path, path))
			return &c->ents[i];
	fail_msg("no entry %s", path);
	return NULL;
}

/* The stored bytes of `path` equal `want`. */
static void check_data(const struct buf *b, const struct col *c,
		       const char *path, const char *want)
{
	const struct ent *e = find(c, path);

	assert_int_equal(e->stored, strlen(want));
	assert_true(e->off + e->stored <= b->len);
	assert_memory_equal(b->data + e->off, want, strlen(want));
}

/* ---- dialects --------------------------------------------------------- */

static void test_ustar_types(void **s)
{
	struct buf b = BUF_INIT;
	struct col c = { 0 };
	struct tw_hdr h = { .mode = 0644, .mtime = 1700000000 };

	(void)s;
	tw_simple(&b, "dir/", '5', NULL);
	tw_file(&b, "dir/file", "hello world");
	h.name = "dir/suid";
	h.type = '0';
	h.mode = 07755;
	h.uid = 1000;
	h.gid = 100;
	h.size = 3;
	tw_header(&b, &h);
	tw_data(&b, "abc", 3);
	tw_simple(&b, "dir/sym", '2', "file");
	tw_simple(&b, "dir/hard", '1', "dir/file");
	memset(&h, 0, sizeof(h));
	h.name = "dev/null";
	h.type = '3';
	h.mode = 0666;
	h.devmajor = 1;
	h.devminor = 3;
	tw_header(&b, &h);
	h.name = "dev/loop0";
	h.type = '4';
	h.devmajor = 7;
	h.devminor = 0;
	tw_header(&b, &h);
	tw_simple(&b, "fifo", '6', NULL);
	memset(&h, 0, sizeof(h));
	h.name = "contig";
	h.type = '7';
	h.mode = 0600;
	h.size = 1;
	tw_header(&b, &h);
	tw_data(&b, "7", 1);
	tw_end(&b);

	assert_int_equal(parse(&b, &c), 0);
	assert_string_equal(buf_cstr(&c.lines),
		"dir||t5|5|0755|0:0|1700000000.000000000|sz0|off512|st0|dev0,0\n"
		"dir/file||t0|0|0644|0:0|1700000000.000000000|sz11|off1024|st11|dev0,0\n"
		"dir/suid||t0|0|7755|1000:100|1700000000.000000000|sz3|off2048|st3|dev0,0\n"
		"dir/sym|file|t2|2|0755|0:0|1700000000.000000000|sz0|off3072|st0|dev0,0\n"
		"dir/hard|dir/file|t1|1|0755|0:0|1700000000.000000000|sz0|off3584|st0|dev0,0\n"
		"dev/null||t3|3|0666|0:0|0.000000000|sz0|off4096|st0|dev1,3\n"
		"dev/loop0||t4|4|0666|0:0|0.000000000|sz0|off4608|st0|dev7,0\n"
		"fifo||t6|6|0755|0:0|1700000000.000000000|sz0|off5120|st0|dev0,0\n"
		"contig||t0|7|0600|0:0|0.000000000|sz1|off5632|st1|dev0,0\n");
	check_data(&b, &c, "dir/file", "hello world");
	check_data(&b, &c, "contig", "7");
	col_release(&c);
	buf_release(&b);
}

static void test_ustar_prefix_and_offsets(void **s)
{
	struct buf b = BUF_INIT;
	struct col c = { 0 };
	struct tw_hdr h = { 0 };
	char pfx[160], want[200];

	(void)s;
	tw_file(&b, "a", "first file");
	memset(pfx, 'p', 150);
	pfx[150] = '\0';
	h.name = "leaf";
	h.prefix = pfx;
	h.type = '0';
	h.mode = 0644;
	h.size = 4;
	tw_header(&b, &h);
	tw_data(&b, "leaf", 4);
	memset(&h, 0, sizeof(h));
	h.name = "sized-dir/";
	h.type = '5';
	h.mode = 01777;
	h.size = 1024; /* header-only type: no data follows (Go's rule) */
	tw_header(&b, &h);
	tw_file(&b, "after", "after the dir");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	snprintf(want, sizeof(want), "%s/leaf", pfx);
	check_data(&b, &c, "a", "first file");
	check_data(&b, &c, want, "leaf");
	check_data(&b, &c, "after", "after the dir");
	assert_non_null(strstr(buf_cstr(&c.lines), "sized-dir||t5|5|1777|"));
	col_release(&c);
	buf_release(&b);
}

static void test_v7_and_numbers(void **s)
{
	struct buf b = BUF_INIT;
	struct col c = { 0 };
	struct tw_hdr h = { .fmt = TW_V7, .mode = 0644 };
	unsigned char *blk;

	(void)s;
	h.name = "olddir/";
	h.type = '\0';
	tw_header(&b, &h);
	h.name = "olddir/file";
	h.size = 2;
	h.mtime = 12345;
	tw_header(&b, &h);
	tw_data(&b, "v7", 2);
	/* GNU base-256: a 9 GiB size can't be octal in 11 digits... we keep it
	 * small here and test the encoding itself; negative mtime and a big uid. */
	memset(&h, 0, sizeof(h));
	h.fmt = TW_GNU;
	h.name = "b256";
	h.type = '0';
	h.mode = 0644;
	h.size = 5;
	h.b256_size = true;
	h.b256_ids = true;
	h.uid = 3000000000u;
	h.gid = 7;
	h.mtime = -86400;
	tw_header(&b, &h);
	tw_data(&b, "b256!", 5);
	/* Octal fields padded with spaces instead of zeros / NUL. */
	memset(&h, 0, sizeof(h));
	h.name = "spaces";
	h.type = '0';
	tw_header(&b, &h);
	blk = (unsigned char *)b.data + b.len - 512;
	memcpy(blk + 100, "   644 \0", 8);
	memcpy(blk + 108, "     1\0\0", 8);
	{
		unsigned sum = 0;
		size_t i;

		memset(blk + 148, ' ', 8);
		for (i = 0; i < 512; i++)
			sum += blk[i];
		snprintf((char *)blk + 148, 8, "%6o", sum); /* leading spaces */
	}
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	assert_string_equal(buf_cstr(&c.lines),
		"olddir||t5|@|0644|0:0|0.000000000|sz0|off512|st0|dev0,0\n"
		"olddir/file||t0|@|0644|0:0|12345.000000000|sz2|off1024|st2|dev0,0\n"
		"b256||t0|0|0644|3000000000:7|-86400.000000000|sz5|off2048|st5|dev0,0\n"
		"spaces||t0|0|0644|1:0|0.000000000|sz0|off3072|st0|dev0,0\n");
	check_data(&b, &c, "b256", "b256!");
	col_release(&c);
	buf_release(&b);
}

static void test_signed_checksum(void **s)
{
	struct buf b = BUF_INIT;
	struct col c = { 0 };
	unsigned char *blk;
	int sum = 0;
	size_t i;

	(void)s;
	tw_file(&b, "caf\xc3\xa9\xff", "x");
	tw_end(&b);
	blk = (unsigned char *)b.data;
	/* Rewrite the checksum as the signed sum (old Sun tar). */
	memset(blk + 148, ' ', 8);
	for (i = 0; i < 512; i++)
		sum += (signed char)blk[i];
	snprintf((char *)blk + 148, 8, "%06o", (unsigned)sum & 0777777);
	assert_true(sum > 0); /* stays representable */
	assert_int_equal(parse(&b, &c), 0);
	assert_int_equal(c.count, 1);
	col_release(&c);

	blk[148 + 5] ^= 1; /* now neither sum matches */
	assert_int_equal(parse(&b, &c), -EIO);
	assert_int_equal(c.count, 0);
	col_release(&c);
	buf_release(&b);
}

static void test_gnu_long_names(void **s)
{
	struct buf b = BUF_INIT;
	struct col c = { 0 };
	char name[301], target[401], line[1024];

	(void)s;
	memset(name, 'n', 300);
	name[300] = '\0';
	name[100] = '/';
	memset(target, 't', 400);
	target[400] = '\0';
	tw_long(&b, 'L', name);
	tw_long(&b, 'K', target);
	tw_simple(&b, "short-name", '2', "short-target");
	tw_long(&b, 'L', "longfile/with/content");
	tw_file(&b, "ignored", "payload");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	snprintf(line, sizeof(line), "%s|%s|t2|2|", name, target);
	assert_true(!strncmp(buf_cstr(&c.lines), line, strlen(line)));
	check_data(&b, &c, "longfile/with/content", "payload");
	assert_int_equal(c.count, 2);
	col_release(&c);
	buf_release(&b);
}

static void test_pax(void **s)
{
	struct buf b = BUF_INIT, r = BUF_INIT;
	struct col c = { 0 };
	static const char cap[] = "\x00\x00\x00\x02\x20\x00\x00\x00";

	(void)s;
	tw_pax_s(&r, "path", "pax/with a long name/\xc3\xbc.txt");
	tw_pax_s(&r, "mtime", "1700000000.123456789123");
	tw_pax_s(&r, "atime", "1.5");
	tw_pax_s(&r, "uid", "4000000000");
	tw_pax_s(&r, "gid", "65534");
	tw_pax_s(&r, "uname", "nobody");
	tw_pax_rec(&r, "SCHILY.xattr.security.capability", cap, 8);
	tw_pax_s(&r, "SCHILY.xattr.user.dup", "old");
	tw_pax_s(&r, "LIBARCHIVE.xattr.user.%61%3Db", "aGVsbG8=");
	tw_pax_s(&r, "LIBARCHIVE.xattr.user.dup", "bmV3");
	tw_pax_s(&r, "comment", "ignored = really");
	tw_pax(&b, 'x', &r);
	tw_file(&b, "short", "data!");
	/* Negative fractional mtime; linkpath; size override. */
	buf_reset(&r);
	tw_pax_s(&r, "mtime", "-1.25");
	tw_pax_s(&r, "linkpath", "../target with spaces");
	tw_pax(&b, 'x', &r);
	tw_simple(&b, "lnk", '2', "ignored");
	buf_reset(&r);
	tw_pax_s(&r, "size", "3");
	tw_pax(&b, 'x', &r);
	{
		struct tw_hdr h = { .name = "sized", .type = '0', .mode = 0644 };

		h.size = 777; /* overridden */
		tw_header(&b, &h);
		tw_data(&b, "abc", 3);
	}
	/* An empty value reverts to the header field. */
	buf_reset(&r);
	tw_pax_s(&r, "path", "discarded");
	tw_pax_s(&r, "path", "");
	tw_pax(&b, 'x', &r);
	tw_file(&b, "header-name", "");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	assert_string_equal(buf_cstr(&c.lines),
		"pax/with a long name/\xc3\xbc.txt||t0|0|0644|4000000000:65534|"
		"1700000000.123456789|sz5|off1536|st5|dev0,0"
		"|x:security.capability=0000000220000000|x:user.dup=6e6577"
		"|x:user.a=b=68656c6c6f\n"
		"lnk|../target with spaces|t2|2|0755|0:0|-2.750000000|sz0|off3584|st0|dev0,0\n"
		"sized||t0|0|0644|0:0|0.000000000|sz3|off5120|st3|dev0,0\n"
		"header-name||t0|0|0644|0:0|1700000000.000000000|sz0|off7168|st0|dev0,0\n");
	check_data(&b, &c, "pax/with a long name/\xc3\xbc.txt", "data!");
	check_data(&b, &c, "sized", "abc");
	col_release(&c);
	buf_release(&r);
	buf_release(&b);
}

static void test_pax_global_ignored(void **s)
{
	struct buf b = BUF_INIT, r = BUF_INIT;
	struct col c = { 0 };

	(void)s;
	tw_pax_s(&r, "comment", "3e7a9f commit id");
	tw_pax_s(&r, "uid", "42");
	tw_pax(&b, 'g', &r);
	tw_file(&b, "f", "x");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	assert_string_equal(buf_cstr(&c.lines),
		"f||t0|0|0644|0:0|1700000000.000000000|sz1|off1536|st1|dev0,0\n");
	col_release(&c);
	buf_release(&r);
	buf_release(&b);
}

static void test_unknown_and_volume(void **s)
{
	struct buf b = BUF_INIT;
	struct col c = { 0 };
	struct tw_hdr h = { .fmt = TW_GNU, .mode = 0644 };

	(void)s;
	h.name = "label";
	h.type = 'V';
	tw_header(&b, &h);
	h.name = "vendor";
	h.type = 'Z';
	h.size = 6;
	tw_header(&b, &h);
	tw_data(&b, "zzzzzz", 6);
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	assert_string_equal(buf_cstr(&c.lines),
		"vendor||t0|Z|0644|0:0|0.000000000|sz6|off1024|st6|dev0,0\n");
	col_release(&c);
	buf_release(&b);
}

/* ---- sparse ----------------------------------------------------------- */

static void set_gnu_sparse(unsigned char *f, uint64_t off, uint64_t len)
{
	tw_octal(f, 12, off);
	tw_octal(f + 12, 12, len);
}

static void test_sparse_old_gnu(void **s)
{
	struct buf b = BUF_INIT, data = BUF_INIT;
	struct col c = { 0 };
	struct tw_hdr h = { .fmt = TW_GNU, .name = "sp", .type = 'S', .mode = 0644 };
	unsigned char ext[512];
	size_t i;

	(void)s;
	/* Six segments of 3 bytes at 1000*i: 4 in the header, 2 in an extension. */
	h.use_raw = true;
	for (i = 0; i < 4; i++)
		set_gnu_sparse(h.raw + 386 + i * 24, 1000 * i, 3);
	h.raw[482] = 1;
	tw_octal(h.raw + 483, 12, 6000);
	h.size = 18;
	tw_header(&b, &h);
	memset(ext, 0, sizeof(ext));
	set_gnu_sparse(ext, 4000, 3);
	set_gnu_sparse(ext + 24, 5000, 3);
	tw_must(buf_add(&b, ext, sizeof(ext)));
	for (i = 0; i < 6; i++)
		tw_must(buf_addf(&data, "%c%c%c", 'a' + (int)i, 'A' + (int)i, '0' + (int)i));
	tw_data(&b, data.data, data.len);
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	assert_string_equal(buf_cstr(&c.lines),
		"sp||t0|S|0644|0:0|0.000000000|sz6000|off1024|st18|dev0,0|sp:"
		"0+3@0,1000+3@3,2000+3@6,3000+3@9,4000+3@12,5000+3@15\n");
	check_data(&b, &c, "sp", data.data);
	col_release(&c);
	buf_release(&data);
	buf_release(&b);
}

static void test_sparse_pax(void **s)
{
	struct buf b = BUF_INIT, r = BUF_INIT, map = BUF_INIT;
	struct col c = { 0 };
	struct tw_hdr h = { .type = '0', .mode = 0644 };

	(void)s;
	/* 0.0: repeated offset/numbytes records. */
	tw_pax_s(&r, "GNU.sparse.size", "100000");
	tw_pax_s(&r, "GNU.sparse.numblocks", "2");
	tw_pax_s(&r, "GNU.sparse.offset", "10");
	tw_pax_s(&r, "GNU.sparse.numbytes", "2");
	tw_pax_s(&r, "GNU.sparse.offset", "99998");
	tw_pax_s(&r, "GNU.sparse.numbytes", "2");
	tw_pax_s(&r, "GNU.sparse.name", "zero-zero");
	tw_pax(&b, 'x', &r);
	h.name = "GNUSparseFile.1/zero-zero";
	h.size = 4;
	tw_header(&b, &h);
	tw_data(&b, "abcd", 4);
	/* 0.1: a comma-separated map. */
	buf_reset(&r);
	tw_pax_s(&r, "GNU.sparse.major", "0");
	tw_pax_s(&r, "GNU.sparse.minor", "1");
	tw_pax_s(&r, "GNU.sparse.size", "50");
	tw_pax_s(&r, "GNU.sparse.map", "0,1,49,1");
	tw_pax_s(&r, "GNU.sparse.name", "zero-one");
	tw_pax(&b, 'x', &r);
	h.name = "GNUSparseFile.2/zero-one";
	h.size = 2;
	tw_header(&b, &h);
	tw_data(&b, "<>", 2);
	/* 1.0: the map is at the start of the data, padded to a block. */
	buf_reset(&r);
	tw_pax_s(&r, "GNU.sparse.major", "1");
	tw_pax_s(&r, "GNU.sparse.minor", "0");
	tw_pax_s(&r, "GNU.sparse.name", "one-zero");
	tw_pax_s(&r, "GNU.sparse.realsize", "1048576");
	tw_pax(&b, 'x', &r);
	tw_must(buf_adds(&map, "3\n0\n4\n524288\n4\n1048572\n4\n"));
	tw_must(buf_grow(&map, 512));
	memset(map.data + map.len, 0, 512 - map.len);
	map.len = 512;
	tw_must(buf_adds(&map, "headmiddtail"));
	h.name = "GNUSparseFile.3/one-zero";
	h.size = map.len;
	tw_header(&b, &h);
	tw_data(&b, map.data, map.len);
	tw_end(&b);

	assert_int_equal(parse(&b, &c), 0);
	assert_string_equal(buf_cstr(&c.lines),
		"zero-zero||t0|0|0644|0:0|0.000000000|sz100000|off1536|st4|dev0,0|sp:10+2@0,99998+2@2\n"
		"zero-one||t0|0|0644|0:0|0.000000000|sz50|off3584|st2|dev0,0|sp:0+1@0,49+1@1\n"
		"one-zero||t0|0|0644|0:0|0.000000000|sz1048576|off6144|st12|dev0,0"
		"|sp:0+4@0,524288+4@4,1048572+4@8\n");
	check_data(&b, &c, "zero-zero", "abcd");
	check_data(&b, &c, "one-zero", "headmiddtail");
	col_release(&c);
	buf_release(&map);
	buf_release(&r);
	buf_release(&b);
}

static void test_sparse_bad_maps(void **s)
{
	struct buf b = BUF_INIT, r = BUF_INIT, map = BUF_INIT;
	struct col c = { 0 };
	struct tw_hdr h = { .type = '0', .mode = 0644, .name = "x" };
	size_t i;

	(void)s;
	/* Overlapping segments. */
	tw_pax_s(&r, "GNU.sparse.size", "100");
	tw_pax_s(&r, "GNU.sparse.map", "0,10,5,10");
	tw_pax(&b, 'x', &r);
	h.size = 20;
	tw_header(&b, &h);
	tw_data(&b, "01234567890123456789", 20);
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -EIO);
	col_release(&c);

	/* Stored bytes don't match the map. */
	buf_reset(&b);
	buf_reset(&r);
	tw_pax_s(&r, "GNU.sparse.size", "100");
	tw_pax_s(&r, "GNU.sparse.map", "0,10");
	tw_pax(&b, 'x', &r);
	tw_header(&b, &h);
	tw_data(&b, "01234567890123456789", 20);
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -EIO);
	col_release(&c);

	/* A 1.0 map claiming a billion segments: absurd, refused at once. */
	buf_reset(&b);
	buf_reset(&r);
	tw_pax_s(&r, "GNU.sparse.major", "1");
	tw_pax_s(&r, "GNU.sparse.minor", "0");
	tw_pax_s(&r, "GNU.sparse.realsize", "10");
	tw_pax(&b, 'x', &r);
	tw_must(buf_adds(&map, "1000000000\n"));
	tw_must(buf_grow(&map, 512));
	memset(map.data + map.len, 0, 512 - map.len);
	map.len = 512;
	h.size = 512;
	tw_header(&b, &h);
	tw_data(&b, map.data, map.len);
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -E2BIG);
	col_release(&c);

	/* A 1.0 map that never ends inside the entry's data. */
	buf_reset(&b);
	tw_pax(&b, 'x', &r);
	for (i = 0; i < 512; i += 2)
		memcpy(map.data + i, "1\n", 2);
	memcpy(map.data, "1000\n", 5);
	tw_header(&b, &h);
	tw_data(&b, map.data, map.len);
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -EIO);
	col_release(&c);
	buf_release(&map);
	buf_release(&r);
	buf_release(&b);
}

static void test_sparse_locate(void **s)
{
	static const struct tar_sparse m[] = {
		{ 10, 5, 0 }, { 20, 10, 5 }, { 100, 0, 15 },
	};
	uint64_t st = 0;
	bool hole = false;

	(void)s;
	assert_int_equal(tar_sparse_locate(m, 3, 100, 0, &st, &hole), 10);
	assert_true(hole);
	assert_int_equal(tar_sparse_locate(m, 3, 100, 12, &st, &hole), 3);
	assert_false(hole);
	assert_int_equal(st, 2);
	assert_int_equal(tar_sparse_locate(m, 3, 100, 15, &st, &hole), 5);
	assert_true(hole);
	assert_int_equal(tar_sparse_locate(m, 3, 100, 29, &st, &hole), 1);
	assert_false(hole);
	assert_int_equal(st, 14);
	assert_int_equal(tar_sparse_locate(m, 3, 100, 30, &st, &hole), 70);
	assert_true(hole);
	assert_int_equal(tar_sparse_locate(m, 3, 100, 100, &st, &hole), 0);
	assert_int_equal(tar_sparse_locate(NULL, 0, 7, 3, &st, &hole), 4);
	assert_true(hole);
}

/* ---- paths ------------------------------------------------------------ */

static void test_normalize(void **s)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "./a//b/./c/", "a/b/c" }, { "/abs/path", "abs/path" },
		{ "a/../b", "b" },          { "./", "" },
		{ "/", "" },                { "a/b/../../c", "c" },
		{ "...", "..." },           { "..a/b..", "..a/b.." },
	};
	static const char *const bad[] = { "..", "../../etc/passwd", "a/../..",
					   "/../x", "a/b/../../../c" };
	char out[64];
	size_t i;

	(void)s;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int n = tar_path_normalize(ok[i].in, strlen(ok[i].in), out, sizeof(out));

		assert_int_equal(n, (int)strlen(ok[i].out));
		assert_string_equal(out, ok[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tar_path_normalize(bad[i], strlen(bad[i]), out, sizeof(out)),
				 -EPERM);
	assert_int_equal(tar_path_normalize("abcdef", 6, out, 4), -ENAMETOOLONG);
}

static void test_hostile_paths_skipped(void **s)
{
	struct buf b = BUF_INIT;
	struct col c = { 0 };

	(void)s;
	tw_file(&b, "../../etc/passwd", "evil");
	tw_file(&b, "a/../../x", "evil");
	tw_file(&b, "/abs/path", "abs");
	tw_file(&b, "./a//b/./c", "c");
	tw_simple(&b, "hl-escape", '1', "../../etc/shadow");
	tw_simple(&b, "hl-root", '1', "./");
	tw_simple(&b, "hl-ok", '1', "/abs/./path");
	tw_simple(&b, "sym-kept-raw", '2', "../../etc/passwd");
	tw_file(&b, "./", "root-as-file");
	tw_simple(&b, "./", '5', NULL);
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	assert_string_equal(buf_cstr(&c.lines),
		"abs/path||t0|0|0644|0:0|1700000000.000000000|sz3|off2560|st3|dev0,0\n"
		"a/b/c||t0|0|0644|0:0|1700000000.000000000|sz1|off3584|st1|dev0,0\n"
		"hl-ok|abs/path|t1|1|0755|0:0|1700000000.000000000|sz0|off5632|st0|dev0,0\n"
		"sym-kept-raw|../../etc/passwd|t2|2|0755|0:0|1700000000.000000000|sz0|off6144|st0|dev0,0\n"
		"||t5|5|0755|0:0|1700000000.000000000|sz0|off7680|st0|dev0,0\n");
	check_data(&b, &c, "abs/path", "abs");
	col_release(&c);
	buf_release(&b);
}

/* ---- hostile archives ------------------------------------------------- */

static void test_absurd_sizes(void **s)
{
	struct buf b = BUF_INIT, r = BUF_INIT;
	struct col c = { 0 };
	struct tw_hdr h = { .name = "huge", .type = '0', .mode = 0644, .fmt = TW_GNU };
	char *big;
	size_t i;

	(void)s;
	/* A size field of 2^62 (base-256). */
	h.size = 1ull << 62;
	h.b256_size = true;
	tw_header(&b, &h);
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -EFBIG);
	col_release(&c);

	/* A PAX record header claiming 1 GB. */
	buf_reset(&b);
	memset(&h, 0, sizeof(h));
	h.name = "./PaxHeaders/x";
	h.type = 'x';
	h.size = 1u << 30;
	tw_header(&b, &h);
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -E2BIG);
	col_release(&c);

	/* A PAX size key of 2^62. */
	buf_reset(&b);
	tw_pax_s(&r, "size", "4611686018427387904");
	tw_pax(&b, 'x', &r);
	tw_file(&b, "f", "");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -EFBIG);
	col_release(&c);

	/* GNU L of 100 KiB. */
	buf_reset(&b);
	big = malloc(100 * 1024 + 1);
	assert_non_null(big);
	memset(big, 'a', 100 * 1024);
	big[100 * 1024] = '\0';
	tw_long(&b, 'L', big);
	tw_file(&b, "f", "");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -E2BIG);
	col_release(&c);

	/* A PAX path of 100 KiB (within the 1 MiB record bound). */
	buf_reset(&b);
	buf_reset(&r);
	tw_pax_s(&r, "path", big);
	tw_pax(&b, 'x', &r);
	tw_file(&b, "f", "");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -E2BIG);
	col_release(&c);

	/* Too many xattrs. */
	buf_reset(&b);
	buf_reset(&r);
	for (i = 0; i <= TAR_MAX_XATTRS; i++) {
		char key[64];

		snprintf(key, sizeof(key), "SCHILY.xattr.user.%zu", i);
		tw_pax_s(&r, key, "v");
	}
	tw_pax(&b, 'x', &r);
	tw_file(&b, "f", "");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -E2BIG);
	col_release(&c);
	free(big);
	buf_release(&r);
	buf_release(&b);
}

static void test_malformed_pax(void **s)
{
	static const char *const bad[] = {
		"5 a=b\n",          /* length too short for the record */
		"99 path=x\n",      /* length beyond the data */
		"9 path=x\r",       /* no newline */
		"8 pathx\n",        /* no '=' */
		"x path=y\n",       /* no length */
		"11 mtime=z\n",     /* bad number */
		"9 uid=-1\n",
	};
	size_t i;

	(void)s;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf b = BUF_INIT, r = BUF_INIT;
		struct col c = { 0 };

		tw_must(buf_adds(&r, bad[i]));
		tw_pax(&b, 'x', &r);
		tw_file(&b, "f", "");
		tw_end(&b);
		assert_int_equal(parse(&b, &c), -EIO);
		assert_int_equal(c.count, 0);
		col_release(&c);
		buf_release(&r);
		buf_release(&b);
	}
}

/*
 * xattrs no kernel could serve are dropped, the others kept: an empty name
 * (SCHILY.xattr. followed by a NUL) used to reach the tree and make the
 * layer's index file unreadable, so the layer was fetched at every mount.
 */
static void test_xattrs_dropped(void **s)
{
	struct buf b = BUF_INIT, r = BUF_INIT;
	struct col c = { 0 };
	char name[300], *val;

	(void)s;
	val = malloc(TAR_XATTR_SIZE_MAX + 1);
	assert_non_null(val);
	memset(val, 'v', TAR_XATTR_SIZE_MAX + 1);
	tw_pax_s(&r, "SCHILY.xattr.user.ok", "1");
	tw_pax_rec_n(&r, "SCHILY.xattr.\0", 14, "empty", 5);
	tw_pax_rec_n(&r, "SCHILY.xattr.user.a\0b", 22, "nul", 3);
	tw_pax_s(&r, "LIBARCHIVE.xattr.%00", "dg==");
	tw_pax_s(&r, "LIBARCHIVE.xattr.user.x%00y", "dg==");
	snprintf(name, sizeof(name), "SCHILY.xattr.user.%0*d", 251, 0); /* 256 bytes */
	tw_pax_s(&r, name, "long name");
	snprintf(name, sizeof(name), "SCHILY.xattr.user.%0*d", 250, 0); /* 255 bytes */
	tw_pax_s(&r, name, "2");
	tw_pax_rec(&r, "SCHILY.xattr.user.max", val, TAR_XATTR_SIZE_MAX);
	tw_pax_rec(&r, "SCHILY.xattr.user.big", val, TAR_XATTR_SIZE_MAX + 1);
	tw_pax(&b, 'x', &r);
	tw_file(&b, "f", "x");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	assert_int_equal(c.count, 1);
	assert_non_null(strstr(buf_cstr(&c.lines), "|x:user.ok=31|x:user.0000"));
	assert_non_null(strstr(buf_cstr(&c.lines), "=32|x:user.max=7676"));
	assert_null(strstr(buf_cstr(&c.lines), "|x:=")); /* no empty name */
	assert_null(strstr(buf_cstr(&c.lines), "user.a"));
	assert_null(strstr(buf_cstr(&c.lines), "user.x"));
	assert_null(strstr(buf_cstr(&c.lines), "user.big"));
	assert_null(strstr(buf_cstr(&c.lines), "6c6f6e67")); /* "long" */
	col_release(&c);
	free(val);
	buf_release(&r);
	buf_release(&b);
}

/* The xattrs of one entry are bounded in bytes, however many x records
 * precede it: each may hold 1 MiB. */
static void test_xattr_entry_bound(void **s)
{
	struct buf b = BUF_INIT, r = BUF_INIT;
	struct col c = { 0 };
	char *val, key[64];
	size_t i;

	(void)s;
	val = malloc(64000);
	assert_non_null(val);
	memset(val, 'v', 64000);
	/* 16 values of 64000 bytes: within TAR_MAX_XATTR_ENTRY. */
	for (i = 0; i < 16; i++) {
		snprintf(key, sizeof(key), "SCHILY.xattr.user.%zu", i);
		tw_pax_rec(&r, key, val, 64000);
	}
	tw_pax(&b, 'x', &r);
	tw_file(&b, "ok", "");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	assert_int_equal(c.count, 1);
	col_release(&c);
	/* 17, in 17 x records. */
	buf_reset(&b);
	for (i = 0; i < 17; i++) {
		buf_reset(&r);
		snprintf(key, sizeof(key), "SCHILY.xattr.user.%zu", i);
		tw_pax_rec(&r, key, val, 64000);
		tw_pax(&b, 'x', &r);
	}
	tw_file(&b, "too-much", "");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -E2BIG);
	assert_int_equal(c.count, 0);
	col_release(&c);
	free(val);
	buf_release(&r);
	buf_release(&b);
}

static int counter_cb(void *ctx, const struct tar_entry *e)
{
	(void)e;
	(*(size_t *)ctx)++;
	return 0;
}

/* Feed `unit` `times` times (then the end blocks): a stream as long as the
 * bounds need without holding it. Returns the first error. */
static int feed_repeated(const struct buf *unit, size_t times, size_t *count)
{
	struct tar_parser *p;
	static const char zeros[1024];
	size_t i;
	int rc = 0;

	*count = 0;
	assert_int_equal(tar_parser_new(&p, counter_cb, count), 0);
	for (i = 0; i < times && !rc; i++)
		rc = tar_parser_feed(p, unit->data, unit->len);
	if (!rc)
		rc = tar_parser_feed(p, zeros, sizeof(zeros));
	if (!rc)
		rc = tar_parser_finish(p);
	tar_parser_free(p);
	return rc;
}

/* What one archive hands out in all is bounded: entries, and the bytes of
 * their xattrs (a zstd layer of a few KiB could ask for GiBs). */
static void test_archive_bounds(void **s)
{
	struct buf u = BUF_INIT, r = BUF_INIT;
	size_t count;
	char *val;

	(void)s;
	tw_simple(&u, "f", '0', NULL);
	assert_int_equal(feed_repeated(&u, TAR_MAX_ENTRIES, &count), 0);
	assert_int_equal(count, TAR_MAX_ENTRIES);
	assert_int_equal(feed_repeated(&u, TAR_MAX_ENTRIES + 1, &count), -E2BIG);
	assert_int_equal(count, TAR_MAX_ENTRIES);
	/* One 64 KiB xattr per entry: TAR_MAX_XATTR_LAYER / 65556 entries fit. */
	buf_reset(&u);
	val = malloc(TAR_XATTR_SIZE_MAX);
	assert_non_null(val);
	memset(val, 'v', TAR_XATTR_SIZE_MAX);
	tw_pax_rec(&r, "SCHILY.xattr.user.big", val, TAR_XATTR_SIZE_MAX);
	tw_pax(&u, 'x', &r);
	tw_simple(&u, "f", '0', NULL);
	assert_int_equal(feed_repeated(&u, 1000, &count), 0);
	assert_int_equal(feed_repeated(&u, 2000, &count), -E2BIG);
	assert_int_equal(count, TAR_MAX_XATTR_LAYER / (TAR_XATTR_SIZE_MAX + 9));
	free(val);
	buf_release(&r);
	buf_release(&u);
}

/* A NUL inside a PAX path or linkpath: the entry is skipped, never cut
 * short (so "a\0/../../x" can't become "a"); names from header fields and
 * GNU records end at their NUL as the formats say. */
static void test_nul_in_pax_names(void **s)
{
	struct buf b = BUF_INIT, r = BUF_INIT;
	struct col c = { 0 };

	(void)s;
	tw_pax_rec(&r, "path", "etc/passwd\0.txt", 15);
	tw_pax(&b, 'x', &r);
	tw_file(&b, "placeholder", "evil");
	buf_reset(&r);
	tw_pax_rec(&r, "linkpath", "target\0more", 11);
	tw_pax(&b, 'x', &r);
	tw_simple(&b, "lnk", '2', "ignored");
	buf_reset(&r);
	tw_pax_rec(&r, "path", "slash/in\0/name", 14);
	tw_pax(&b, 'x', &r);
	tw_simple(&b, "placeholder2", '5', NULL);
	tw_file(&b, "after", "fine");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	assert_string_equal(buf_cstr(&c.lines),
		"after||t0|0|0644|0:0|1700000000.000000000|sz4|off5632|st4|dev0,0\n");
	check_data(&b, &c, "after", "fine");
	col_release(&c);
	buf_release(&r);
	buf_release(&b);
}

/* Owner ids that are no valid uid_t/gid_t are shown as 65534, as the kernel
 * shows an id it cannot map; never truncated (2^32 would become root). */
static void test_owner_ids(void **s)
{
	struct buf b = BUF_INIT, r = BUF_INIT;
	struct col c = { 0 };
	struct tw_hdr h = { .name = "b256", .type = '0', .mode = 0644, .b256_ids = true,
			    .fmt = TW_GNU };

	(void)s;
	h.uid = 0; /* tw_hdr's ids are unsigned: write the fields by hand */
	tw_header(&b, &h);
	{
		unsigned char *blk = (unsigned char *)b.data + b.len - 512;
		unsigned sum = 0;
		size_t i;

		tw_b256(blk + 108, 8, 1ll << 32);       /* uid 2^32 */
		tw_b256(blk + 116, 8, -1);              /* gid -1 */
		memset(blk + 148, ' ', 8);
		for (i = 0; i < 512; i++)
			sum += blk[i];
		snprintf((char *)blk + 148, 8, "%06o", sum);
		blk[155] = ' ';
	}
	tw_pax_s(&r, "uid", "4294967296");
	tw_pax_s(&r, "gid", "4294967295");
	tw_pax(&b, 'x', &r);
	tw_file(&b, "pax-big", "");
	buf_reset(&r);
	tw_pax_s(&r, "uid", "4294967294");
	tw_pax_s(&r, "gid", "12345678901234567890");
	tw_pax(&b, 'x', &r);
	tw_file(&b, "pax-edge", "");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), 0);
	assert_non_null(strstr(buf_cstr(&c.lines), "b256||t0|0|0644|65534:65534|"));
	assert_non_null(strstr(buf_cstr(&c.lines), "pax-big||t0|0|0644|65534:65534|"));
	assert_non_null(strstr(buf_cstr(&c.lines), "pax-edge||t0|0|0644|4294967294:65534|"));
	col_release(&c);
	/* Not a number at all is still a malformed archive. */
	buf_reset(&b);
	buf_reset(&r);
	tw_pax_s(&r, "uid", "99999999999999999999");
	tw_pax(&b, 'x', &r);
	tw_file(&b, "f", "");
	tw_end(&b);
	assert_int_equal(parse(&b, &c), -EIO);
	col_release(&c);
	buf_release(&r);
	buf_release(&b);
}

static void test_truncation_and_end(void **s)
{
	struct buf b = BUF_INIT, t = BUF_INIT;
	struct col c = { 0 };
	size_t full;

	(void)s;
	tw_file(&b, "f", "0123456789");
	tw_file(&b, "g", "abc");
	full = b.len;

	/* EOF at a header boundary without end blocks: tolerated (docker). */
	assert_int_equal(parse(&b, &c), 0);
	assert_int_equal(c.count, 2);
	col_release(&c);

	/* Truncated inside data, inside padding, inside a header. */
	tw_must(buf_add(&t, b.data, full - 512 + 2));
	assert_int_equal(parse(&t, &c), -EIO);
	assert_int_equal(c.count, 2);
	col_release(&c);
	buf_reset(&t);
	tw_must(buf_add(&t, b.data, full - 100));
	assert_int_equal(parse(&t, &c), -EIO);
	col_release(&c);
	buf_reset(&t);
	tw_must(buf_add(&t, b.data, 1024 + 100));
	assert_int_equal(parse(&t, &c), -EIO);
	assert_int_equal(c.count, 1);
	col_release(&c);

	/* Inside a PAX record. */
	buf_reset(&t);
	{
		struct buf r = BUF_INIT;

		tw_pax_s(&r, "path", "p");
		tw_pax(&t, 'x', &r);
		t.len = 512 + 4;
		buf_release(&r);
	}
	assert_int_equal(parse(&t, &c), -EIO);
	col_release(&c);

	/* One zero block then EOF: fine. A zero block then a header: bad. */
	buf_reset(&t);
	tw_must(buf_add(&t, b.data, full));
	tw_must(buf_grow(&t, 512));
	memset(t.data + t.len, 0, 512);
	t.len += 512;
	assert_int_equal(parse(&t, &c), 0);
	col_release(&c);
	tw_file(&t, "h", "after a zero block");
	assert_int_equal(parse(&t, &c), -EIO);
	col_release(&c);

	/* Anything after two zero blocks is ignored. */
	buf_reset(&t);
	tw_must(buf_add(&t, b.data, full));
	tw_end(&t);
	tw_must(buf_adds(&t, "garbage after the end of the archive"));
	assert_int_equal(parse(&t, &c), 0);
	assert_int_equal(c.count, 2);
	col_release(&c);

	/* Not a tar at all. */
	buf_reset(&t);
	{
		size_t i;

		for (i = 0; i < 2048; i++)
			tw_must(buf_addch(&t, (char)(i * 7 + 1)));
	}
	assert_int_equal(parse(&t, &c), -EIO);
	col_release(&c);
	buf_release(&t);
	buf_release(&b);
}

static void test_callback_error_sticky(void **s)
{
	struct buf b = BUF_INIT;
	struct col c = { 0 };

	(void)s;
	tw_file(&b, "a", "1");
	tw_file(&b, "b", "2");
	tw_file(&b, "c", "3");
	tw_end(&b);
	c.fail_at = 2;
	assert_int_equal(parse(&b, &c), -EXDEV);
	assert_int_equal(c.count, 2);
	col_release(&c);
	buf_release(&b);
}

static void test_many_entries(void **s)
{
	struct buf b = BUF_INIT;
	struct col c = { 0 };
	struct tar_parser *p;
	size_t i;

	(void)s;
	for (i = 0; i < 100000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "d%zu/f%zu", i % 100, i);
		tw_simple(&b, name, '0', NULL);
	}
	tw_end(&b);
	assert_int_equal(tar_parser_new(&p, collect_cb, &c), 0);
	assert_int_equal(tar_parser_feed(p, b.data, b.len), 0);
	assert_int_equal(tar_parser_finish(p), 0);
	assert_int_equal(tar_parser_offset(p), b.len);
	assert_int_equal(c.count, 100000);
	tar_parser_free(p);
	col_release(&c);
	buf_release(&b);
}

/* Random corruption of a rich archive never crashes or leaks (run under ASan). */
static int count_cb(void *ctx, const struct tar_entry *e)
{
	size_t i;

	(*(size_t *)ctx)++;
	/* Touch everything the entry points at. */
	(void)strlen(e->path);
	(void)strlen(e->linkname);
	for (i = 0; i < e->nxattrs; i++)
		if (e->xattrs[i].value_len)
			(void)((const volatile char *)e->xattrs[i].value)[e->xattrs[i].value_len - 1];
	for (i = 0; i < e->nsparse; i++)
		assert_true(e->sparse[i].offset + e->sparse[i].length <= e->size);
	return 0;
}

static void test_fuzz_mutations(void **s)
{
	struct buf b = BUF_INIT, r = BUF_INIT, m = BUF_INIT;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	unsigned iter;

	(void)s;
	tw_pax_s(&r, "path", "pax/name");
	tw_pax_s(&r, "mtime", "1.5");
	tw_pax_rec(&r, "SCHILY.xattr.user.x", "\0\1", 2);
	tw_pax_s(&r, "GNU.sparse.major", "1");
	tw_pax_s(&r, "GNU.sparse.minor", "0");
	tw_pax_s(&r, "GNU.sparse.realsize", "4096");
	tw_pax(&b, 'x', &r);
	{
		struct tw_hdr h = { .name = "sp", .type = '0', .mode = 0644, .size = 516 };
		char map[516];

		memset(map, 0, sizeof(map));
		memcpy(map, "1\n100\n4\n", 8);
		memcpy(map + 512, "data", 4);
		tw_header(&b, &h);
		tw_data(&b, map, sizeof(map));
	}
	tw_long(&b, 'L', "gnu/long/name");
	tw_file(&b, "x", "content");
	tw_simple(&b, "l", '1', "x");
	tw_simple(&b, "d/", '5', NULL);
	tw_end(&b);
	{
		/* The unmutated archive is valid: sp, gnu/long/name, l, d. */
		struct tar_parser *p;
		size_t n = 0;

		assert_int_equal(tar_parser_new(&p, count_cb, &n), 0);
		assert_int_equal(tar_parser_feed(p, b.data, b.len), 0);
		assert_int_equal(tar_parser_finish(p), 0);
		assert_int_equal(n, 4);
		tar_parser_free(p);
	}
	for (iter = 0; iter < 3000; iter++) {
		struct tar_parser *p;
		size_t n = 0, k, flips = 1 + iter % 4, off;

		buf_reset(&m);
		tw_must(buf_add(&m, b.data, b.len));
		for (k = 0; k < flips; k++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			m.data[seed % m.len] = (char)(seed >> 32);
		}
		if (iter % 5 == 0)
			m.len = (size_t)(seed >> 40) % m.len; /* and truncate */
		assert_int_equal(tar_parser_new(&p, count_cb, &n), 0);
		for (off = 0; off < m.len; off += 7)
			if (tar_parser_feed(p, m.data + off, m.len - off < 7 ? m.len - off : 7))
				break;
		(void)tar_parser_finish(p);
		tar_parser_free(p);
	}
	buf_release(&m);
	buf_release(&r);
	buf_release(&b);
}

/* ---- against GNU tar -------------------------------------------------- */

static char tmpdir[64];

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	assert_int_equal(system(cmd), 0);
}

static void read_file(const char *path, struct buf *out)
{
	char chunk[65536];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		tw_must(buf_add(out, chunk, (size_t)n));
	close(fd);
}

/* Reassemble a file's logical content from the archive bytes. */
static void assemble(const struct buf *ar, const struct tar_entry *e,
		     struct buf *out)
{
	uint64_t off = 0;

	while (off < e->size) {
		uint64_t st = off, run = e->size - off;
		bool hole = false;

		if (e->sparse)
			run = tar_sparse_locate(e->sparse, e->nsparse, e->size, off,
						&st, &hole);
		assert_true(run > 0);
		if (hole) {
			assert_int_equal(buf_grow(out, run), 0);
			memset(out->data + out->len, 0, run);
			out->len += run;
		} else {
			assert_true(e->data_offset + st + run <= ar->len);
			tw_must(buf_add(out, ar->data + e->data_offset + st, run));
		}
		off += run;
	}
}

struct gnu_ctx {
	const struct buf *ar;
	const char *srcdir;
	unsigned files, sparse;
};

static int gnu_cb(void *ctx, const struct tar_entry *e)
{
	struct gnu_ctx *g = ctx;
	struct buf got = BUF_INIT, want = BUF_INIT;
	char path[512];

	if (e->type != TAR_REG)
		return 0;
	assemble(g->ar, e, &got);
	snprintf(path, sizeof(path), "%s/%s", g->srcdir, e->path);
	read_file(path, &want);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data ? got.data : "", want.data ? want.data : "", want.len);
	g->files++;
	g->sparse += e->sparse != NULL;
	buf_release(&got);
	buf_release(&want);
	return 0;
}

static void test_gnu_tar_archives(void **s)
{
	static const char *const variants[] = {
		"--format=gnu", "--format=pax", "--format=ustar",
		"--format=gnu --sparse",
		"--format=pax --sparse --sparse-version=0.0",
		"--format=pax --sparse --sparse-version=0.1",
		"--format=pax --sparse --sparse-version=1.0",
	};
	size_t i;

	(void)s;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/acrfs-test-tar.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	run("cd %s && mkdir -p src/d && printf hello > src/d/small && "
	    "head -c 70001 /dev/urandom > src/d/random && : > src/empty && "
	    "truncate -s 3000000 src/sparse && "
	    "printf start | dd of=src/sparse conv=notrunc status=none && "
	    "printf middle | dd of=src/sparse bs=1 seek=1500000 conv=notrunc status=none && "
	    "printf end | dd of=src/sparse bs=1 seek=2999997 conv=notrunc status=none",
	    tmpdir);
	for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		struct buf ar = BUF_INIT;
		char src[128], file[128];
		struct gnu_ctx g = { &ar, src, 0, 0 };
		struct tar_parser *p;

		snprintf(src, sizeof(src), "%s/src", tmpdir);
		snprintf(file, sizeof(file), "%s/a.tar", tmpdir);
		run("tar %s -cf %s -C %s .", variants[i], file, src);
		read_file(file, &ar);
		assert_int_equal(tar_parser_new(&p, gnu_cb, &g), 0);
		assert_int_equal(tar_parser_feed(p, ar.data, ar.len), 0);
		assert_int_equal(tar_parser_finish(p), 0);
		tar_parser_free(p);
		assert_int_equal(g.files, 4);
		assert_int_equal(g.sparse, strstr(variants[i], "sparse") ? 1 : 0);
		buf_release(&ar);
	}
	run("rm -rf %s", tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ustar_types),
		cmocka_unit_test(test_ustar_prefix_and_offsets),
		cmocka_unit_test(test_v7_and_numbers),
		cmocka_unit_test(test_signed_checksum),
		cmocka_unit_test(test_gnu_long_names),
		cmocka_unit_test(test_pax),
		cmocka_unit_test(test_pax_global_ignored),
		cmocka_unit_test(test_unknown_and_volume),
		cmocka_unit_test(test_sparse_old_gnu),
		cmocka_unit_test(test_sparse_pax),
		cmocka_unit_test(test_sparse_bad_maps),
		cmocka_unit_test(test_sparse_locate),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_hostile_paths_skipped),
		cmocka_unit_test(test_absurd_sizes),
		cmocka_unit_test(test_malformed_pax),
		cmocka_unit_test(test_xattrs_dropped),
		cmocka_unit_test(test_xattr_entry_bound),
		cmocka_unit_test(test_archive_bounds),
		cmocka_unit_test(test_nul_in_pax_names),
		cmocka_unit_test(test_owner_ids),
		cmocka_unit_test(test_truncation_and_end),
		cmocka_unit_test(test_callback_error_sticky),
		cmocka_unit_test(test_many_entries),
		cmocka_unit_test(test_fuzz_mutations),
		cmocka_unit_test(test_gnu_tar_archives),
	};

	log_init(LOG_LVL_ERROR + (getenv("TEST_VERBOSE") ? 3 : 0), false);
	return cmocka_run_group_tests_name("tar", tests, NULL, NULL);
}
