/*
 * lindex — the layer index file. Design note.
 *
 * Layout (little-endian), IDX_HDR_LEN bytes of header: magic[8], version
 * u32, kind u32, blob digest[32], csize u64, usize u64, nentries u64,
 * entries_len u64. Then the entries (lindex_entry_encode: varints, a
 * zig-zag mtime, length-prefixed strings), aux_len u64, aux (the zran index
 * for gzip, the frame table for zstd, nothing for tar), two block-sum
 * tables — the blob's, then the decompressed copy's (zstd; bsize = n = 0
 * when there is none) — each as bsize u64, n u64, n SHA-256 sums, and a
 * SHA-256 of every preceding byte.
 *
 * Versions: 1 had no block-sum tables (reads were not verified against the
 * digest); 2 adds them. A file of version 1 is rejected like any other
 * mismatch, and layer.c rebuilds it from the blob: the sums can only come
 * from a digest-verified pass, never be added to an old file.
 *
 * Block sums: the blob's table must cover exactly csize bytes (n =
 * ceil(csize / bsize)), the copy's exactly usize bytes; bsize is a power of
 * two in [BLOCKHASH_MIN, BLOCKHASH_MAX], so a damaged file cannot make a
 * reader allocate more than a bounded buffer. The sums are exactly as
 * trustworthy as the file: its checksum detects damage, and the cache
 * directory is the user's own (0700), like the blob copies it guards.
 *
 * The decoder treats the file as untrusted (a cache directory can be
 * damaged or written by someone else): every read is bounds-checked by
 * struct rd (errors sticky), every count is checked against the bytes
 * left, and the magic, version, kind, digest and sizes must match the key
 * before anything is built. The checksum of a file of CHECK_ASIDE bytes or
 * more is computed on a thread of its own while the entries are decoded
 * (the second core is otherwise idle while the biggest layer of an image
 * loads): decoding never relies on it, and nothing built is returned unless
 * it matches. A mismatch is reported as such whatever else is wrong, as
 * when the checksum was computed first.
 */
#include "image/lindex.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/decomp.h"

#define IDX_MAGIC "ACRFSLIX"
#define IDX_VERSION 2u
#define IDX_HDR_LEN 80 /* magic .. entries_len */
/* The shortest entry encoding: type, typeflag, ten one-byte varints, two
 * empty strings, no xattrs, no sparse map. */
#define LINDEX_ENTRY_MIN 16u
#define CHECK_ASIDE ((size_t)1 << 20) /* checksum on a thread from this size */

static void set_u64le(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static int put_u64le(struct buf *b, uint64_t v)
{
	unsigned char x[8];

	set_u64le(x, v);
	return buf_add(b, x, 8);
}

static int put_uv(struct buf *b, uint64_t v)
{
	unsigned char x[10];
	size_t n = 0;

	do {
		x[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			x[n] |= 0x80;
		n++;
	} while (v);
	return buf_add(b, x, n);
}

static int put_sv(struct buf *b, int64_t v)
{
	return put_uv(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static int put_bytes(struct buf *b, const void *p, size_t n)
{
	int rc = put_uv(b, n);

	return rc ? rc : buf_add(b, p, n);
}

int lindex_entry_encode(struct buf *b, const struct tar_entry *e)
{
	int rc = 0;
	size_t i;

	rc |= buf_addch(b, (char)e->type);
	rc |= buf_addch(b, e->typeflag);
	rc |= put_uv(b, e->mode);
	rc |= put_uv(b, e->uid);
	rc |= put_uv(b, e->gid);
	rc |= put_sv(b, e->mtime_sec);
	rc |= put_uv(b, e->mtime_nsec);
	rc |= put_uv(b, e->size);
	rc |= put_uv(b, e->data_offset);
	rc |= put_uv(b, e->stored_size);
	rc |= put_uv(b, e->devmajor);
	rc |= put_uv(b, e->devminor);
	rc |= put_bytes(b, e->path, strlen(e->path));
	rc |= put_bytes(b, e->linkname, e->linkname ? strlen(e->linkname) : 0);
	rc |= put_uv(b, e->nxattrs);
	for (i = 0; i < e->nxattrs; i++) {
		rc |= put_bytes(b, e->xattrs[i].name, strlen(e->xattrs[i].name));
		rc |= put_bytes(b, e->xattrs[i].value, e->xattrs[i].value_len);
	}
	rc |= put_uv(b, e->sparse ? e->nsparse + 1 : 0);
	for (i = 0; e->sparse && i < e->nsparse; i++) {
		rc |= put_uv(b, e->sparse[i].offset);
		rc |= put_uv(b, e->sparse[i].length);
		rc |= put_uv(b, e->sparse[i].stored);
	}
	return rc ? -ENOMEM : 0;
}

/* A bounds-checked reader over untrusted bytes; errors are sticky. */
struct rd {
	const unsigned char *p, *end;
	bool bad;
};

static uint64_t get_u64le(struct rd *r)
{
	uint64_t v = 0;
	int i;

	if (r->bad || r->end - r->p < 8) {
		r->bad = true;
		return 0;
	}
	for (i = 0; i < 8; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += 8;
	return v;
}

static uint64_t get_uv(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;

	while (!r->bad) {
		unsigned char c;

		if (r->p == r->end || shift > 63) {
			r->bad = true;
			break;
		}
		c = *r->p++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
		shift += 7;
	}
	return 0;
}

static uint32_t get_u32v(struct rd *r)
{
	uint64_t v = get_uv(r);

	if (v > UINT32_MAX)
		r->bad = true;
	return (uint32_t)v;
}

static int64_t get_sv(struct rd *r)
{
	uint64_t v = get_uv(r);

	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static const unsigned char *get_bytes(struct rd *r, size_t *n)
{
	uint64_t len = get_uv(r);
	const unsigned char *p = r->p;

	if (r->bad || len > (uint64_t)(r->end - r->p)) {
		r->bad = true;
		*n = 0;
		return NULL;
	}
	r->p += len;
	*n = (size_t)len;
	return p;
}

/* Scratch for decoding entries: NUL-terminated copies and arrays. */
struct scratch {
	struct buf path, link, names;
	struct tar_xattr *xattrs;
	struct tar_sparse *sparse;
	size_t sparse_cap;
};

static void scratch_free(struct scratch *s)
{
	buf_release(&s->path);
	buf_release(&s->link);
	buf_release(&s->names);
	free(s->xattrs);
	free(s->sparse);
}

static int cstr(struct buf *b, const unsigned char *p, size_t n)
{
	if (memchr(p, '\0', n))
		return -EBADMSG;
	buf_reset(b);
	return buf_add(b, p, n);
}

/*
 * What tar.h promises about a parsed entry's mode and sizes, checked again
 * for entries read back from a file: only regular files have data, a plain
 * file stores all of it, a sparse map is sorted, inside the file and stored
 * back to back. (Readers of the tree rely on it.)
 */
static bool entry_sizes_ok(const struct tar_entry *e)
{
	uint64_t end = 0, stored = 0;
	size_t i;

	if (e->mode > 07777 || e->size > TAR_MAX_ENTRY_SIZE)
		return false;
	if (e->type != TAR_REG)
		return !e->size && !e->stored_size && !e->sparse;
	if (!e->sparse)
		return e->stored_size == e->size;
	for (i = 0; i < e->nsparse; i++) {
		const struct tar_sparse *s = &e->sparse[i];

		if (s->offset < end || s->offset > e->size || s->length > e->size - s->offset ||
		    s->stored != stored)
			return false;
		end = s->offset + s->length;
		stored += s->length;
	}
	return stored == e->stored_size;
}

/* Decode one entry into `e` (pointers into scratch). -EBADMSG or -ENOMEM. */
static int decode_entry(struct rd *r, struct scratch *s, struct tar_entry *e)
{
	const unsigned char *p;
	size_t n, i, nx, nsp;
	uint64_t v;

	memset(e, 0, sizeof(*e));
	if (r->end - r->p < 2)
		return -EBADMSG;
	e->type = (enum tar_type)r->p[0];
	e->typeflag = (char)r->p[1];
	r->p += 2;
	if (e->type > TAR_FIFO)
		return -EBADMSG;
	e->mode = get_u32v(r);
	e->uid = get_u32v(r);
	e->gid = get_u32v(r);
	e->mtime_sec = get_sv(r);
	e->mtime_nsec = get_u32v(r);
	e->size = get_uv(r);
	e->data_offset = get_uv(r);
	e->stored_size = get_uv(r);
	e->devmajor = get_u32v(r);
	e->devminor = get_u32v(r);
	p = get_bytes(r, &n);
	if (r->bad || cstr(&s->path, p, n))
		return -EBADMSG;
	p = get_bytes(r, &n);
	if (r->bad || cstr(&s->link, p, n))
		return -EBADMSG;
	e->path = buf_cstr(&s->path);
	e->linkname = buf_cstr(&s->link);
	nx = (size_t)get_uv(r);
	if (r->bad || nx > TAR_MAX_XATTRS)
		return -EBADMSG;
	if (nx) {
		/* Names go NUL-separated into one buffer that may move while it
		 * grows: keep offsets in the name pointers, fix them after. */
		buf_reset(&s->names);
		if (!s->xattrs) {
			s->xattrs = calloc(TAR_MAX_XATTRS, sizeof(*s->xattrs));
			if (!s->xattrs)
				return -ENOMEM;
		}
		for (i = 0; i < nx; i++) {
			size_t off = s->names.len;

			p = get_bytes(r, &n);
			if (r->bad || n == 0 || memchr(p, '\0', n))
				return -EBADMSG;
			if (buf_add(&s->names, p, n) || buf_addch(&s->names, '\0'))
				return -ENOMEM;
			s->xattrs[i].name = (const char *)(uintptr_t)off;
			s->xattrs[i].value = get_bytes(r, &s->xattrs[i].value_len);
			if (r->bad)
				return -EBADMSG;
		}
		for (i = 0; i < nx; i++)
			s->xattrs[i].name = s->names.data + (uintptr_t)s->xattrs[i].name;
		e->xattrs = s->xattrs;
		e->nxattrs = nx;
	}
	v = get_uv(r);
	if (r->bad || v > TAR_MAX_SPARSE + 1)
		return -EBADMSG;
	if (v) {
		nsp = (size_t)(v - 1);
		if (nsp + 1 > s->sparse_cap) {
			struct tar_sparse *sp = realloc(s->sparse, (nsp + 1) * sizeof(*sp));

			if (!sp)
				return -ENOMEM;
			s->sparse = sp;
			s->sparse_cap = nsp + 1;
		}
		for (i = 0; i < nsp; i++) {
			s->sparse[i].offset = get_uv(r);
			s->sparse[i].length = get_uv(r);
			s->sparse[i].stored = get_uv(r);
		}
		if (r->bad)
			return -EBADMSG;
		e->sparse = s->sparse; /* never NULL, even with no segment */
		e->nsparse = nsp;
	}
	return r->bad || !entry_sizes_ok(e) ? -EBADMSG : 0;
}

static int encode_frames(struct buf *b, const struct lindex_frame *f, size_t n)
{
	size_t i;
	int rc = put_u64le(b, n);

	for (i = 0; !rc && i < n; i++) {
		rc = put_u64le(b, f[i].coff);
		if (!rc)
			rc = put_u64le(b, f[i].uoff);
	}
	return rc;
}

static int encode_blocks(struct buf *b, const struct blocksums *s)
{
	int rc = put_u64le(b, s->bsize);

	if (!rc)
		rc = put_u64le(b, s->n);
	if (!rc && s->n)
		rc = buf_add(b, s->sum, (size_t)s->n * DIGEST_RAW_LEN);
	return rc;
}

/* The layout is in the design note above. */
int lindex_build(const struct lindex_key *k, const struct lindex_content *c,
		 const struct buf *ents, uint64_t nents, struct buf *out)
{
	struct buf aux = BUF_INIT;
	struct digest sum;
	unsigned char v[8];
	int rc = 0, i;

	if (c->cblocks.len != k->csize || c->cblocks.n != blocksums_count(k->csize, c->cblocks.bsize) ||
	    (c->ublocks.n && c->ublocks.len != c->usize))
		return -EINVAL;
	if (k->kind == DECOMP_GZIP)
		rc = zran_index_save(c->zidx, &aux);
	else if (k->kind == DECOMP_ZSTD)
		rc = encode_frames(&aux, c->frames, c->nframes);
	if (rc)
		goto out;
	rc |= buf_add(out, IDX_MAGIC, 8);
	for (i = 0; i < 4; i++)
		v[i] = (unsigned char)(IDX_VERSION >> (8 * i));
	for (i = 0; i < 4; i++)
		v[4 + i] = (unsigned char)((unsigned)k->kind >> (8 * i));
	rc |= buf_add(out, v, 8);
	rc |= buf_add(out, k->digest.raw, DIGEST_RAW_LEN);
	rc |= put_u64le(out, k->csize);
	rc |= put_u64le(out, c->usize);
	rc |= put_u64le(out, nents);
	rc |= put_u64le(out, ents->len);
	rc |= buf_add(out, ents->data ? ents->data : "", ents->len);
	rc |= put_u64le(out, aux.len);
	rc |= buf_add(out, aux.data ? aux.data : "", aux.len);
	rc |= encode_blocks(out, &c->cblocks);
	rc |= encode_blocks(out, &c->ublocks);
	if (rc) {
		rc = -ENOMEM;
		goto out;
	}
	rc = digest_of_buf(&sum, out->data, out->len);
	if (!rc)
		rc = buf_add(out, sum.raw, DIGEST_RAW_LEN);
out:
	buf_release(&aux);
	return rc;
}

/*
 * One block-sum table covering `len` bytes; `optional`: bsize = n = 0 means
 * there is none. -EBADMSG for anything inconsistent, -ENOMEM.
 */
static int decode_blocks(struct rd *r, uint64_t len, bool optional, struct blocksums *s)
{
	uint64_t bsize = get_u64le(r), n = get_u64le(r);

	memset(s, 0, sizeof(*s));
	if (r->bad)
		return -EBADMSG;
	if (optional && bsize == 0 && n == 0)
		return 0;
	if (bsize < BLOCKHASH_MIN || bsize > BLOCKHASH_MAX || (bsize & (bsize - 1)) ||
	    n != blocksums_count(len, (uint32_t)bsize) ||
	    n > (uint64_t)(r->end - r->p) / DIGEST_RAW_LEN || (optional && n == 0))
		return -EBADMSG;
	s->bsize = (uint32_t)bsize;
	s->len = len;
	s->n = n;
	if (n) {
		s->sum = malloc((size_t)n * DIGEST_RAW_LEN);
		if (!s->sum)
			return -ENOMEM;
		memcpy(s->sum, r->p, (size_t)n * DIGEST_RAW_LEN);
		r->p += n * DIGEST_RAW_LEN;
	}
	return 0;
}

/* The file's checksum: SHA-256 of all but its last DIGEST_RAW_LEN bytes. */
struct check {
	const unsigned char *d;
	size_t len;
	int rc; /* 0 match, -EBADMSG mismatch, or digest_of_buf's error */
	pthread_t thread;
	bool running;
};

static void *check_main(void *arg)
{
	struct check *c = arg;
	struct digest sum;

	c->rc = digest_of_buf(&sum, c->d, c->len - DIGEST_RAW_LEN);
	if (!c->rc && memcmp(sum.raw, c->d + c->len - DIGEST_RAW_LEN, DIGEST_RAW_LEN))
		c->rc = -EBADMSG;
	return NULL;
}

/* Start the check: on a thread for a big file, else at once. */
static void check_start(struct check *c, const unsigned char *d, size_t len)
{
	c->d = d;
	c->len = len;
	c->rc = 0;
	c->running = len >= CHECK_ASIDE && pthread_create(&c->thread, NULL, check_main, c) == 0;
	if (!c->running)
		check_main(c);
}

static int check_wait(struct check *c)
{
	if (c->running)
		pthread_join(c->thread, NULL);
	c->running = false;
	return c->rc;
}

static int parse(const struct lindex_key *k, const unsigned char *d, size_t len,
		 struct lindex_content *o, const char **why);

int lindex_parse(const struct lindex_key *k, const void *data, size_t len,
		 struct lindex_content *o, const char **why)
{
	const unsigned char *d = data;
	struct check chk;
	int rc, crc;

	memset(o, 0, sizeof(*o));
	if (len < IDX_HDR_LEN + 8 + 2 * 16 + DIGEST_RAW_LEN) { /* + aux_len, tables */
		*why = "truncated";
		return -EBADMSG;
	}
	if (memcmp(d, IDX_MAGIC, 8)) {
		*why = "bad magic";
		return -EBADMSG;
	}
	check_start(&chk, d, len);
	/* Checked at once and wrong: nothing to decode. */
	rc = chk.running || !chk.rc ? parse(k, d, len, o, why) : 0;
	crc = check_wait(&chk);
	if (crc) {
		if (crc == -EBADMSG)
			*why = "checksum mismatch";
		lindex_content_release(o);
		return crc;
	}
	return rc;
}

/* lindex_parse after the magic, beside the checksum's check. */
static int parse(const struct lindex_key *k, const unsigned char *d, size_t len,
		 struct lindex_content *o, const char **why)
{
	struct rd r, er, br;
	struct scratch s;
	uint64_t nents, elen, alen, i;
	uint32_t version, kind;
	int rc;

	memset(&s, 0, sizeof(s));
	version = (uint32_t)d[8] | (uint32_t)d[9] << 8 | (uint32_t)d[10] << 16 |
		  (uint32_t)d[11] << 24;
	kind = (uint32_t)d[12] | (uint32_t)d[13] << 8 | (uint32_t)d[14] << 16 |
	       (uint32_t)d[15] << 24;
	if (version != IDX_VERSION) {
		*why = "unknown version";
		return -EBADMSG;
	}
	if (kind != (uint32_t)k->kind || memcmp(d + 16, k->digest.raw, DIGEST_RAW_LEN)) {
		*why = "written for another blob";
		return -EBADMSG;
	}
	r.p = d + 48;
	r.end = d + len - DIGEST_RAW_LEN;
	r.bad = false;
	if (get_u64le(&r) != k->csize) {
		*why = "blob size differs";
		return -EBADMSG;
	}
	o->usize = get_u64le(&r);
	nents = get_u64le(&r);
	elen = get_u64le(&r);
	if (r.bad || elen > (uint64_t)(r.end - r.p) || nents > elen) {
		*why = "bad entry table";
		return -EBADMSG;
	}
	er.p = r.p;
	er.end = r.p + elen;
	er.bad = false;
	r.p += elen;
	alen = get_u64le(&r);
	if (r.bad || alen > (uint64_t)(r.end - r.p)) {
		*why = "bad trailer";
		return -EBADMSG;
	}
	br.p = r.p + alen;
	br.end = r.end;
	br.bad = false;
	r.end = br.p;
	if (k->kind == DECOMP_GZIP) {
		rc = zran_index_load(&o->zidx, r.p, (size_t)alen);
		if (rc == -EBADMSG || (!rc && (zran_index_usize(o->zidx) != o->usize ||
					       zran_index_csize(o->zidx) != k->csize))) {
			*why = "bad zran index";
			rc = -EBADMSG;
		}
	} else if (k->kind == DECOMP_ZSTD) {
		uint64_t n = get_u64le(&r);

		rc = 0;
		if (r.bad || n == 0 || n > alen / 16) {
			*why = "bad frame table";
			rc = -EBADMSG;
		} else {
			o->frames = calloc((size_t)n, sizeof(*o->frames));
			if (!o->frames)
				rc = -ENOMEM;
			for (i = 0; !rc && i < n; i++) {
				o->frames[i].coff = get_u64le(&r);
				o->frames[i].uoff = get_u64le(&r);
				if (o->frames[i].coff >= k->csize || o->frames[i].uoff >= o->usize ||
				    (i && (o->frames[i].coff <= o->frames[i - 1].coff ||
					   o->frames[i].uoff <= o->frames[i - 1].uoff))) {
					*why = "bad frame table";
					rc = -EBADMSG;
				}
			}
			o->nframes = (size_t)n;
			if (!rc && (r.bad || o->frames[0].uoff != 0)) {
				*why = "bad frame table";
				rc = -EBADMSG;
			}
		}
		if (!rc && r.p != r.end) {
			*why = "bad frame table";
			rc = -EBADMSG;
		}
	} else {
		rc = alen == 0 && o->usize == k->csize ? 0 : -EBADMSG;
		if (rc)
			*why = "bad sizes";
	}
	if (rc)
		goto fail;
	rc = decode_blocks(&br, k->csize, false, &o->cblocks);
	if (!rc)
		rc = decode_blocks(&br, o->usize, true, &o->ublocks);
	if (rc == -EBADMSG ||
	    (!rc && (br.p != br.end || (o->ublocks.n && k->kind != DECOMP_ZSTD)))) {
		*why = "bad block sums";
		rc = -EBADMSG;
	}
	if (rc)
		goto fail;
	/* An entry takes at least LINDEX_ENTRY_MIN bytes: the hint cannot
	 * exceed what the (checksummed) file holds. */
	rc = tree_new_hint(&o->tree, (size_t)(nents < elen / LINDEX_ENTRY_MIN ?
						      nents : elen / LINDEX_ENTRY_MIN),
			   (size_t)elen);
	for (i = 0; !rc && i < nents; i++) {
		struct tar_entry e;

		rc = decode_entry(&er, &s, &e);
		if (!rc && e.type == TAR_REG &&
		    (e.data_offset > o->usize || e.stored_size > o->usize - e.data_offset))
			rc = -EBADMSG;
		if (rc == -EBADMSG)
			*why = "bad entry";
		if (!rc)
			rc = tree_add(o->tree, &e, k->layer);
	}
	if (!rc && er.p != er.end) {
		*why = "bad entry count";
		rc = -EBADMSG;
	}
	if (rc)
		goto fail;
	scratch_free(&s);
	return 0;
fail:
	scratch_free(&s);
	lindex_content_release(o);
	return rc;
}

void lindex_content_release(struct lindex_content *c)
{
	tree_free(c->tree);
	zran_index_free(c->zidx);
	free(c->frames);
	blocksums_release(&c->cblocks);
	blocksums_release(&c->ublocks);
	memset(c, 0, sizeof(*c));
}

/* ---- the rootfs file ------------------------------------------------------ */

/*
 * Layout (little-endian), RFS_HDR_LEN bytes of header: magic[8], version
 * u32, zero u32, key[32], nlayers u64, nnodes u64, ndents u64, body_len
 * u64. The body: per node in id order a flags byte (RFS_LIVE,
 * RFS_IMPLICIT; 0: removed) and for a live node its layer (varint) and its
 * attributes as an entry (lindex_entry_encode, path ""); then per name
 * index from 1 its directory's id (varint; 0: removed) and, unless
 * removed, its node's id and the name (length-prefixed). Then a SHA-256 of
 * every preceding byte, checked like an index file's.
 *
 * The file holds what tree_merge built, so RFS_VERSION must change with any
 * change of what a merge builds (ids, names, attributes), like IDX_VERSION
 * with the entries: an older file is then rejected and merged again.
 */
#define RFS_MAGIC "ACRFSRFS"
#define RFS_VERSION 1u
#define RFS_HDR_LEN 80
#define RFS_LIVE 1u
#define RFS_IMPLICIT 2u

static enum tar_type attr_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return TAR_DIR;
	case S_IFLNK:
		return TAR_SYMLINK;
	case S_IFCHR:
		return TAR_CHR;
	case S_IFBLK:
		return TAR_BLK;
	case S_IFIFO:
		return TAR_FIFO;
	default:
		return TAR_REG;
	}
}

/* The entry tree_restore_node turns back into attributes `a`. */
static void attr_entry(const struct tree_attr *a, struct tar_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->path = "";
	e->linkname = a->symlink ? a->symlink : "";
	e->type = attr_type(a->mode);
	e->typeflag = '0';
	e->mode = a->mode & 07777;
	e->uid = a->uid;
	e->gid = a->gid;
	e->mtime_sec = a->mtime_sec;
	e->mtime_nsec = a->mtime_nsec;
	e->devmajor = a->rdev_major;
	e->devminor = a->rdev_minor;
	e->xattrs = a->xattrs;
	e->nxattrs = a->nxattrs;
	if (e->type == TAR_REG) {
		e->size = a->size;
		e->data_offset = a->data_offset;
		e->stored_size = a->stored_size;
		e->sparse = a->sparse;
		e->nsparse = a->nsparse;
	}
}

int lindex_rootfs_build(const struct digest *key, size_t nlayers, const struct tree *t,
			struct buf *out)
{
	size_t start = out->len, nnodes = tree_nnodes(t), ndents = tree_ndents(t), i;
	unsigned char *h;
	struct digest sum;
	int rc = 0;

	if (!tree_saveable(t))
		return -ENOTSUP;
	rc |= buf_add(out, RFS_MAGIC, 8);
	rc |= buf_add(out, "\1\0\0\0\0\0\0\0", 8); /* RFS_VERSION, zero */
	rc |= buf_add(out, key->raw, DIGEST_RAW_LEN);
	rc |= put_u64le(out, nlayers);
	rc |= put_u64le(out, nnodes);
	rc |= put_u64le(out, ndents);
	rc |= put_u64le(out, 0); /* body_len, below */
	for (i = 1; !rc && i <= nnodes; i++) {
		const struct tree_node *n = tree_node_by_id(t, i);
		const struct tree_attr *a;
		struct tar_entry e;

		if (!n) {
			rc = buf_addch(out, 0);
			continue;
		}
		a = tree_node_attr(n);
		attr_entry(a, &e);
		rc |= buf_addch(out, (char)(RFS_LIVE | (a->implicit ? RFS_IMPLICIT : 0)));
		rc |= put_uv(out, a->layer);
		rc |= lindex_entry_encode(out, &e);
	}
	for (i = 1; !rc && i < ndents; i++) {
		uint64_t parent, node;
		const char *name;

		if (!tree_dent(t, i, &parent, &node, &name)) {
			rc = put_uv(out, 0);
			continue;
		}
		rc |= put_uv(out, parent);
		rc |= put_uv(out, node);
		rc |= put_bytes(out, name, strlen(name));
	}
	if (rc) {
		out->len = start;
		return -ENOMEM;
	}
	h = (unsigned char *)out->data + start;
	set_u64le(h + 72, out->len - start - RFS_HDR_LEN);
	rc = digest_of_buf(&sum, h, out->len - start);
	if (!rc)
		rc = buf_add(out, sum.raw, DIGEST_RAW_LEN);
	if (rc)
		out->len = start;
	return rc;
}

/* lindex_rootfs_parse after the magic, beside the checksum's check. */
static int rootfs_parse(const struct digest *key, size_t nlayers, const unsigned char *d,
			size_t len, struct tree **out, const char **why)
{
	struct rd r = { d + 8, d + len - DIGEST_RAW_LEN, false };
	struct scratch s;
	struct tree *t = NULL;
	uint64_t nnodes, ndents, blen, i;
	int rc;

	memset(&s, 0, sizeof(s));
	if (get_u64le(&r) != RFS_VERSION) { /* version and the zero word */
		*why = "unknown version";
		return -EBADMSG;
	}
	if (memcmp(r.p, key->raw, DIGEST_RAW_LEN)) {
		*why = "written for other layers";
		return -EBADMSG;
	}
	r.p += DIGEST_RAW_LEN;
	if (get_u64le(&r) != nlayers) {
		*why = "written for other layers";
		return -EBADMSG;
	}
	nnodes = get_u64le(&r);
	ndents = get_u64le(&r);
	blen = get_u64le(&r);
	/* A node takes a byte at least, a name too. */
	if (r.bad || blen != (uint64_t)(r.end - r.p) || nnodes == 0 || nnodes > blen ||
	    nnodes > TREE_MAX_NODES || ndents == 0 || ndents - 1 > blen) {
		*why = "bad sizes";
		return -EBADMSG;
	}
	rc = tree_new_hint(&t, (size_t)nnodes, (size_t)blen);
	for (i = 0; !rc && i < nnodes; i++) {
		struct tar_entry e;
		unsigned flags;
		uint64_t layer;

		if (r.p == r.end) {
			rc = -EBADMSG;
			break;
		}
		flags = *r.p++;
		if (flags == 0) {
			rc = tree_restore_node(t, NULL, 0, false);
			continue;
		}
		layer = get_uv(&r);
		if (r.bad || layer >= nlayers || (flags & ~(RFS_LIVE | RFS_IMPLICIT)) ||
		    !(flags & RFS_LIVE)) {
			rc = -EBADMSG;
			break;
		}
		rc = decode_entry(&r, &s, &e);
		if (!rc)
			rc = tree_restore_node(t, &e, (unsigned)layer, flags & RFS_IMPLICIT);
	}
	for (i = 1; !rc && i < ndents; i++) {
		uint64_t parent = get_uv(&r), node;
		const unsigned char *name;
		size_t n;

		if (parent == 0) {
			rc = r.bad ? -EBADMSG : tree_restore_dent(t, 0, 0, NULL, 0);
			continue;
		}
		node = get_uv(&r);
		name = get_bytes(&r, &n);
		rc = r.bad ? -EBADMSG : tree_restore_dent(t, parent, node, (const char *)name, n);
	}
	if (!rc && r.p != r.end)
		rc = -EBADMSG;
	if (!rc)
		rc = tree_restore_done(t);
	scratch_free(&s);
	if (rc) {
		if (rc == -EBADMSG)
			*why = "bad tree";
		tree_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int lindex_rootfs_parse(const struct digest *key, size_t nlayers, const void *data,
			size_t len, struct tree **out, const char **why)
{
	const unsigned char *d = data;
	struct check chk;
	int rc, crc;

	*out = NULL;
	if (len < RFS_HDR_LEN + DIGEST_RAW_LEN) {
		*why = "truncated";
		return -EBADMSG;
	}
	if (memcmp(d, RFS_MAGIC, 8)) {
		*why = "bad magic";
		return -EBADMSG;
	}
	check_start(&chk, d, len);
	rc = chk.running || !chk.rc ? rootfs_parse(key, nlayers, d, len, out, why) : 0;
	crc = check_wait(&chk);
	if (crc) {
		if (crc == -EBADMSG)
			*why = "checksum mismatch";
		tree_free(*out);
		*out = NULL;
		return crc;
	}
	return rc;
}
