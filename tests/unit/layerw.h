/*
 * layerw — test helpers for layer and image tests (header-only): an
 * in-memory blob source with counters and injectable faults in its ranged
 * reads, gzip/zstd compressors, a generator of compressible data, a tree
 * lister and a scratch cache directory.
 */
#ifndef ACRFS_TESTS_LAYERW_H
#define ACRFS_TESTS_LAYERW_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "common/buf.h"
#include "image/layer.h"
#include "image/tree.h"
#include "common/digest.h"
#include "tarw.h"

/* ---- an in-memory blob source ------------------------------------------- */

#define TSRC_MAX 8

/* Faults of tsrc_pread (stream() is never affected). */
enum tsrc_fault {
	TSRC_FAULT_NONE,
	TSRC_CORRUPT, /* one byte flipped in the middle of each answer */
	TSRC_NORANGE, /* a server ignoring Range, its answer skipped to `off` by the
		       * client (as registry_blob_pread does): right bytes, but the
		       * whole blob is counted as transferred */
	TSRC_NOSKIP,  /* a Range-ignoring answer nobody skipped: bytes from offset 0 */
	TSRC_SHORT,   /* at most 1000 bytes per answer (short reads) */
	TSRC_EOF,     /* 0 bytes: the body ended early */
};

struct tsrc_blob {
	struct digest d;   /* the digest callers ask for */
	const struct buf *data; /* the bytes served (may not match d) */
};

struct tsrc {
	struct tsrc_blob blobs[TSRC_MAX];
	size_t n;
	int delay_ms;           /* sleep at the start of stream() */
	enum tsrc_fault fault;  /* for the next `fault_left` preads (-1: all) */
	int fault_left;         /* atomic */
	int ranges;             /* tsrc_ranges: 0 = as the fault says, else this value */
	uint64_t stream_calls;  /* atomics */
	uint64_t stream_bytes;
	uint64_t pread_calls;
	uint64_t pread_bytes;
	uint64_t get_calls;
};

static inline const struct buf *tsrc_find(struct tsrc *s, const struct digest *d)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (digest_equal(&s->blobs[i].d, d))
			return s->blobs[i].data;
	return NULL;
}

/* Serve `data` under its own digest (or under `as` when not NULL). */
static inline struct digest tsrc_add(struct tsrc *s, const struct buf *data,
				     const struct digest *as)
{
	struct digest d;

	if (as)
		d = *as;
	else
		tw_must(digest_of_buf(&d, data->data, data->len));
	if (s->n == TSRC_MAX)
		abort();
	s->blobs[s->n].d = d;
	s->blobs[s->n].data = data;
	s->n++;
	return d;
}

static inline int tsrc_stream(void *ctx, const struct digest *d, uint64_t size,
			      blob_sink_fn sink, void *sink_ctx)
{
	struct tsrc *s = ctx;
	const struct buf *b = tsrc_find(s, d);
	struct digest_hasher *h = NULL;
	size_t off = 0;
	int rc = 0;

	__atomic_add_fetch(&s->stream_calls, 1, __ATOMIC_RELAXED);
	if (s->delay_ms)
		usleep((useconds_t)s->delay_ms * 1000);
	if (!b)
		return -ENOENT;
	if (size != b->len)
		return -EIO;
	tw_must(digest_hasher_new(&h));
	/* Odd chunk sizes, as a network delivers them. */
	while (!rc && off < b->len) {
		size_t n = b->len - off < 77777 ? b->len - off : 77777;

		tw_must(digest_hasher_update(h, b->data + off, n));
		__atomic_add_fetch(&s->stream_bytes, n, __ATOMIC_RELAXED);
		rc = sink(sink_ctx, b->data + off, n);
		off += n;
	}
	if (!rc && digest_hasher_final(h, d, NULL))
		rc = -EIO;
	digest_hasher_free(h);
	return rc;
}

/* One fault of the `fault_left` still due (preads may run concurrently). */
static inline int tsrc_take_fault(struct tsrc *s)
{
	int left = __atomic_load_n(&s->fault_left, __ATOMIC_RELAXED);

	while (left != 0) {
		if (left < 0 || __atomic_compare_exchange_n(&s->fault_left, &left, left - 1, false,
							    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return 1;
	}
	return 0;
}

static inline ssize_t tsrc_pread(void *ctx, const struct digest *d, uint64_t size,
				 void *buf, size_t len, uint64_t off)
{
	struct tsrc *s = ctx;
	const struct buf *b = tsrc_find(s, d);

	(void)size;
	__atomic_add_fetch(&s->pread_calls, 1, __ATOMIC_RELAXED);
	if (!b)
		return -ENOENT;
	if (off >= b->len)
		return 0;
	if (len > b->len - off)
		len = (size_t)(b->len - off);
	if (s->fault && tsrc_take_fault(s)) {
		switch (s->fault) {
		case TSRC_FAULT_NONE:
			break;
		case TSRC_CORRUPT:
			memcpy(buf, b->data + off, len);
			((unsigned char *)buf)[len / 2] ^= 0x20;
			__atomic_add_fetch(&s->pread_bytes, len, __ATOMIC_RELAXED);
			return (ssize_t)len;
		case TSRC_NORANGE:
			__atomic_add_fetch(&s->pread_bytes, b->len - len, __ATOMIC_RELAXED);
			break;
		case TSRC_NOSKIP:
			memcpy(buf, b->data, len);
			__atomic_add_fetch(&s->pread_bytes, len, __ATOMIC_RELAXED);
			return (ssize_t)len;
		case TSRC_SHORT:
			if (len > 1000)
				len = 1000;
			break;
		case TSRC_EOF:
			return 0;
		}
	}
	memcpy(buf, b->data + off, len);
	__atomic_add_fetch(&s->pread_bytes, len, __ATOMIC_RELAXED);
	return (ssize_t)len;
}

static inline int tsrc_get(void *ctx, const struct digest *d, size_t max, struct buf *out)
{
	struct tsrc *s = ctx;
	const struct buf *b = tsrc_find(s, d);
	struct digest got;

	__atomic_add_fetch(&s->get_calls, 1, __ATOMIC_RELAXED);
	if (s->delay_ms)
		usleep((useconds_t)s->delay_ms * 1000);
	if (!b)
		return -ENOENT;
	if (b->len > max)
		return -EFBIG;
	tw_must(digest_of_buf(&got, b->data, b->len));
	if (!digest_equal(&got, d))
		return -EIO;
	return buf_add(out, b->data, b->len);
}

/* Whether preads are answered as ranges: what a registry would have seen. */
static inline int tsrc_ranges(void *ctx, const struct digest *d)
{
	struct tsrc *s = ctx;

	(void)d;
	if (s->ranges)
		return s->ranges;
	return s->fault == TSRC_NORANGE || s->fault == TSRC_NOSKIP ? 0 : 1;
}

static inline struct blob_source tsrc_source(struct tsrc *s)
{
	struct blob_source src = { tsrc_stream, tsrc_pread, tsrc_get, s, tsrc_ranges };

	return src;
}

/* ---- data and compressors ----------------------------------------------- */

/* `n` bytes of text-like data (compresses ~3:1), deterministic in seed. */
static inline void gen_text(struct buf *out, size_t n, uint64_t seed)
{
	static const char *words[] = { "layer ", "registry ", "zran ", "inflate ",
				       "acrfs ", "tar\n", "blob ", "digest ", "sha256 ",
				       "0123 ", "fuse ", "span\n", "x", "qz ", "kv=", "{}" };
	uint64_t x = seed * 6364136223846793005ull + 1442695040888963407ull;

	tw_must(buf_grow(out, n));
	while (n) {
		const char *w;
		size_t l;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		w = words[(x >> 33) & 15];
		l = strlen(w);
		if ((x >> 40) & 1) { /* some entropy */
			char c = (char)('a' + ((x >> 45) % 26));

			tw_must(buf_addch(out, c));
			n--;
			continue;
		}
		if (l > n)
			l = n;
		tw_must(buf_add(out, w, l));
		n -= l;
	}
}

static inline void gzip_buf(const struct buf *in, struct buf *out)
{
	z_stream zs;
	unsigned char tmp[65536];
	int rc;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	zs.next_in = (unsigned char *)in->data;
	zs.avail_in = (uInt)in->len;
	do {
		zs.next_out = tmp;
		zs.avail_out = sizeof(tmp);
		rc = deflate(&zs, Z_FINISH);
		tw_must(buf_add(out, tmp, sizeof(tmp) - zs.avail_out));
	} while (rc == Z_OK);
	if (rc != Z_STREAM_END)
		abort();
	deflateEnd(&zs);
}

/* zstd frames of `frame` input bytes each (0: one frame). */
static inline void zstd_buf(const struct buf *in, size_t frame, struct buf *out)
{
	size_t off = 0;

	if (!frame)
		frame = in->len ? in->len : 1;
	do {
		size_t n = in->len - off < frame ? in->len - off : frame;
		size_t cap = ZSTD_compressBound(n), r;

		tw_must(buf_grow(out, cap));
		r = ZSTD_compress(out->data + out->len, cap, in->data + off, n, 3);
		if (ZSTD_isError(r))
			abort();
		out->len += r;
		off += n;
	} while (off < in->len);
}

/* ---- tree listing --------------------------------------------------------- */

static inline void list_dir(const struct tree *t, const struct tree_node *dir,
			    const char *prefix, struct buf *out)
{
	uint64_t cookie = 0;
	const char *name;
	const struct tree_node *child;

	while (tree_readdir(t, dir, &cookie, &name, &child) == 1) {
		const struct tree_attr *a = tree_node_attr(child);
		char path[4096];
		size_t i;

		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", name);
		tw_must(buf_addf(out, "%s %o %u:%u n%u s%llu m%lld L%u d%llu/%llu r%u,%u",
				 path, a->mode, a->uid, a->gid, a->nlink,
				 (unsigned long long)a->size, (long long)a->mtime_sec, a->layer,
				 (unsigned long long)a->data_offset,
				 (unsigned long long)a->stored_size, a->rdev_major,
				 a->rdev_minor));
		if (a->symlink)
			tw_must(buf_addf(out, " -> %s", a->symlink));
		for (i = 0; i < a->nxattrs; i++)
			tw_must(buf_addf(out, " x:%s=%zu", a->xattrs[i].name,
					 a->xattrs[i].value_len));
		for (i = 0; i < a->nsparse; i++)
			tw_must(buf_addf(out, " sp%llu+%llu",
					 (unsigned long long)a->sparse[i].offset,
					 (unsigned long long)a->sparse[i].length));
		tw_must(buf_addch(out, '\n'));
		if ((a->mode & 0170000) == 0040000)
			list_dir(t, child, path, out);
	}
}

static inline void list_tree(const struct tree *t, struct buf *out)
{
	list_dir(t, tree_root(t), "", out);
}

/* ---- files ----------------------------------------------------------------- */

static inline void file_read(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char tmp[65536];
	size_t n;

	if (!f)
		abort();
	buf_reset(out);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		tw_must(buf_add(out, tmp, n));
	fclose(f);
}

static inline void file_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f))
		abort();
}

/* ---- scratch directories ------------------------------------------------- */

static inline char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/acrfs-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (!d)
		abort();
	return strdup(d);
}

static inline void rm_rf(const char *path)
{
	DIR *dp = opendir(path);
	struct dirent *de;

	if (dp) {
		while ((de = readdir(dp))) {
			struct buf p = BUF_INIT;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			tw_must(buf_addf(&p, "%s/%s", path, de->d_name));
			rm_rf(p.data);
			buf_release(&p);
		}
		closedir(dp);
		rmdir(path);
	} else {
		unlink(path);
	}
}

#endif
