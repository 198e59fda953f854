/*
 * zran — gzip random access. Design note.
 *
 * Engines. Inflate is zlib's or ISA-L's (struct infl hides which), always
 * on *raw* deflate (zlib windowBits -15, ISA-L crc_flag ISAL_DEFLATE); CRC-32
 * is ISA-L's folding one when built in. Measured with `acrfs-zcat --bench` on
 * a 320 MB gzip -6 tar of /usr/lib/x86_64-linux-gnu (1.08 GB out), CPU
 * seconds on the shared 2-core machine: building the index 4.1 s with zlib,
 * 1.9 s with ISA-L (igzip -d alone: 1.6-1.8 s); a sequential read through a
 * reader 4.2 s → 1.8 s.
 *
 * Framing. The gzip member framing (10-byte header with optional
 * EXTRA/NAME/COMMENT/HCRC fields, 8-byte CRC32+ISIZE trailer) is parsed here
 * by a small byte-at-a-time state machine (struct gzhdr). Three reasons: (1)
 * every access point is then a raw-deflate position, including the start of
 * a member, so resuming never has to special-case "a point exactly at a
 * member boundary" — a member start is simply a point with bit offset 0 and
 * an empty window; (2) crossing from one member into the next while reading
 * is the same code in the builder and the readers, for both engines; (3) the
 * builder computes each output byte's CRC-32 once and uses it twice (member
 * trailer check and the index's check blocks, combined with crc32_combine),
 * instead of a gzip mode hashing every byte a second time.
 *
 * Access points. zlib: inflate(Z_BLOCK) returns at the end of each deflate
 * block; when (data_type & 0xc0) == 0x80 we are at a block boundary that is
 * not the end of the member. ISA-L has no Z_BLOCK: the builder stops its
 * output exactly where a point becomes due, then feeds SEEK_PIECE bytes at a
 * time until a call returns with its input ending inside a block header —
 * the boundary is then at the bit the header starts (infl_boundary). Either
 * way, if `span` bytes went by since the last point we record one:
 * uncompressed offset, compressed offset of the block's first whole byte,
 * the count of still-unused bits of the byte before it, and the last
 * min(32 KiB, bytes since member start) of output. The start of every member
 * is also a candidate; the very first member start is always point 0. Both
 * engines resume at any point of either (tests/unit/test_zran.c), and the
 * saved format does not say which built it.
 *
 * Windows are stored deflated at level 1 (raw deflate; ISA-L's deflate when
 * built in, zlib's otherwise), or raw when that would not be smaller.
 * Measured on a tar of /usr/lib and /usr/share (700 MB, gzip -6, 166 points
 * at 4 MiB): 2.8 MB of index instead of 5.5 MB raw (~17 KiB per window);
 * inflating a window back costs ~0.1 ms per seek. zlib's level 1 took ~5%
 * of an ISA-L build; ISA-L's takes < 1% for ~1% more bytes.
 *
 * Check blocks. Each span is cut into ZRAN_CHECK_BLOCK pieces counted from
 * its access point (the last piece shorter); the index holds the CRC-32 of
 * each. Readers decode whole check blocks into their own buffer, verify, and
 * only then copy out — so bytes served are always verified, and the cost is
 * one CRC pass over what was inflated anyway.
 *
 * The builder's output buffer keeps 32 KiB of history in front of the write
 * position (slid down with one memmove per OUT_CHUNK), so a window is always
 * a contiguous run just before the write position, and the sink gets
 * pointers straight into the buffer without copies.
 */
#include "image/zran.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#ifdef ACRFS_HAVE_ISAL
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#endif

#include "common/log.h"

#define OUT_CHUNK (1u << 20)
/* A reader keeps 1 MiB of output: FUSE reads of 128-256 KiB, several in
 * flight on different threads, arrive up to ~0.5 MiB out of order; a read
 * behind what is kept costs a seek (re-inflating up to a span). It slides
 * the buffer down once per READER_SLACK bytes decoded. */
#define HIST_KEEP (1u << 20)
#define READER_SLACK (1u << 20)
#define READER_BUF (HIST_KEEP + READER_SLACK)
#ifndef WIN_LEVEL
#define WIN_LEVEL 1 /* -DWIN_LEVEL=0 stores windows raw (for measuring) */
#endif

#define PT_DEFLATED 1u /* point flag: window stored deflated */

struct zran_point {
	uint64_t uoff;      /* uncompressed offset of the block */
	uint64_t coff;      /* compressed offset of its first whole byte */
	size_t woff;        /* window offset in the arena */
	size_t crc_first;   /* index of this span's first check CRC */
	uint32_t wlen;      /* window bytes (uncompressed) */
	uint32_t wclen;     /* window bytes as stored */
	uint8_t bits;       /* unused bits of the byte at coff - 1 (0..7) */
	uint8_t flags;      /* PT_* */
};

struct zran_index {
	uint32_t span;
	uint32_t cb; /* check block size */
	uint64_t usize, csize;
	struct zran_point *pts;
	size_t npts;
	unsigned char *arena; /* all windows, back to back */
	size_t arena_len;
	uint32_t *crcs;
	size_t ncrc;
};

/* ---- zlib error table (the one place zlib codes become errno) ----------- */

static int zerr(int zret)
{
	switch (zret) {
	case Z_OK:
	case Z_STREAM_END:
		return 0;
	case Z_MEM_ERROR:
		return -ENOMEM;
	case Z_STREAM_ERROR:
		return -EINVAL;
	default: /* Z_DATA_ERROR, Z_NEED_DICT, Z_BUF_ERROR, Z_VERSION_ERROR */
		return -EIO;
	}
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- the inflate engines ------------------------------------------------ */

/* The engine new builders and readers use (atomic: set by tests, tools). */
#ifdef ACRFS_HAVE_ISAL
static int engine_default = ZRAN_ENGINE_ISAL;
#else
static int engine_default = ZRAN_ENGINE_ZLIB;
#endif

int zran_engine_set(enum zran_engine e)
{
	if (e != ZRAN_ENGINE_ZLIB && e != ZRAN_ENGINE_ISAL)
		return -EINVAL;
#ifndef ACRFS_HAVE_ISAL
	if (e == ZRAN_ENGINE_ISAL)
		return -ENOTSUP;
#endif
	__atomic_store_n(&engine_default, (int)e, __ATOMIC_RELAXED);
	return 0;
}

enum zran_engine zran_engine_get(void)
{
	return (enum zran_engine)__atomic_load_n(&engine_default, __ATOMIC_RELAXED);
}

const char *zran_engine_name(enum zran_engine e)
{
	return e == ZRAN_ENGINE_ISAL ? "isa-l" : e == ZRAN_ENGINE_ZLIB ? "zlib" : "?";
}

/* CRC-32 (gzip's), continuing `crc`; ISA-L's folding version when built in. */
static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
#ifdef ACRFS_HAVE_ISAL
	return crc32_gzip_refl(crc, p, n);
#else
	uLong c = crc;

	while (n) {
		uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;

		c = crc32(c, p, k);
		p += k;
		n -= k;
	}
	return (uint32_t)c;
#endif
}

/*
 * One raw-deflate decoder, zlib's or ISA-L's. ISA-L has no Z_BLOCK; a block
 * boundary is seen when a call's input ends inside a block header: it then
 * returns in ISAL_BLOCK_HDR with the header's bytes saved in tmp_in_buffer
 * and read_in/read_in_length holding the bits before it (see
 * infl_boundary). ISA-L also reads up to 64 bits ahead: at the end of a
 * stream the whole bytes among them belong to what follows (the trailer) and
 * are handed back by infl_step.
 */
struct infl {
	enum zran_engine eng;
	z_stream zs;
	bool zs_init;
#ifdef ACRFS_HAVE_ISAL
	struct inflate_state *is; /* ~85 KiB: on the heap */
#endif
};

static int infl_init(struct infl *f, enum zran_engine eng)
{
	memset(f, 0, sizeof(*f));
	f->eng = eng;
#ifdef ACRFS_HAVE_ISAL
	if (eng == ZRAN_ENGINE_ISAL) {
		f->is = malloc(sizeof(*f->is));
		if (!f->is)
			return -ENOMEM;
		isal_inflate_init(f->is);
		f->is->crc_flag = ISAL_DEFLATE;
		return 0;
	}
#endif
	if (inflateInit2(&f->zs, -15) != Z_OK)
		return -ENOMEM;
	f->zs_init = true;
	return 0;
}

static void infl_end(struct infl *f)
{
	if (f->zs_init)
		inflateEnd(&f->zs);
	f->zs_init = false;
#ifdef ACRFS_HAVE_ISAL
	free(f->is);
	f->is = NULL;
#endif
}

/* Start a new raw deflate stream with an empty window. */
static int infl_reset(struct infl *f)
{
#ifdef ACRFS_HAVE_ISAL
	if (f->is) {
		isal_inflate_reset(f->is);
		f->is->crc_flag = ISAL_DEFLATE;
		return 0;
	}
#endif
	return zerr(inflateReset(&f->zs));
}

/* After a reset: the stream starts `bits` (1..7) bits before the next input
 * byte; `value` holds them in its low bits. */
static int infl_prime(struct infl *f, unsigned bits, unsigned value)
{
#ifdef ACRFS_HAVE_ISAL
	if (f->is) {
		f->is->read_in = value & ((1u << bits) - 1);
		f->is->read_in_length = (int32_t)bits;
		return 0;
	}
#endif
	return zerr(inflatePrime(&f->zs, (int)bits, (int)value));
}

static int infl_set_dict(struct infl *f, const unsigned char *w, uint32_t n)
{
#ifdef ACRFS_HAVE_ISAL
	if (f->is)
		return isal_inflate_set_dict(f->is, (uint8_t *)w, n) == 0 ? 0 : -EIO;
#endif
	return zerr(inflateSetDictionary(&f->zs, w, n));
}

/*
 * One decoder call over in[0, *inlen) into out[0, *outlen); on return *inlen
 * is the input used and *outlen the output made. `block` (zlib): stop at the
 * end of each deflate block (Z_BLOCK). 0 to go on, 1 at the end of the
 * stream — then back[0, *nback) are bytes the decoder took past its end
 * (they follow it: process them first) — or -EIO (corrupt data; *why says
 * what), -ENOMEM.
 */
static int infl_step(struct infl *f, const unsigned char *in, size_t *inlen, unsigned char *out,
		     size_t *outlen, bool block, unsigned char back[8], unsigned *nback,
		     const char **why)
{
	uint32_t in0 = *inlen > UINT32_MAX ? UINT32_MAX : (uint32_t)*inlen;
	uint32_t out0 = *outlen > UINT32_MAX ? UINT32_MAX : (uint32_t)*outlen;
	int ret;

	*nback = 0;
	*why = "?";
#ifdef ACRFS_HAVE_ISAL
	if (f->is) {
		struct inflate_state *s = f->is;

		s->next_in = (uint8_t *)in;
		s->avail_in = in0;
		s->next_out = out;
		s->avail_out = out0;
		ret = isal_inflate(s);
		*inlen = in0 - s->avail_in;
		*outlen = out0 - s->avail_out;
		if (ret < 0) {
			*why = ret == ISAL_INVALID_LOOKBACK ? "invalid distance"
			       : ret == ISAL_INVALID_SYMBOL ? "invalid symbol"
							    : "invalid block";
			return -EIO;
		}
		if (s->block_state != ISAL_BLOCK_FINISH)
			return 0;
		if (s->read_in_length < 0 || s->read_in_length > 64 || s->tmp_in_size != 0) {
			*why = "inconsistent end of stream";
			return -EIO;
		}
		/* The padding bits of the last byte go; whole bytes come back. */
		{
			uint64_t v = s->read_in >> (s->read_in_length % 8);

			for (*nback = 0; *nback < (unsigned)s->read_in_length / 8; (*nback)++) {
				back[*nback] = (unsigned char)v;
				v >>= 8;
			}
		}
		s->read_in = 0;
		s->read_in_length = 0;
		return 1;
	}
#endif
	(void)back;
	f->zs.next_in = (Bytef *)in;
	f->zs.avail_in = in0;
	f->zs.next_out = out;
	f->zs.avail_out = out0;
	ret = inflate(&f->zs, block ? Z_BLOCK : Z_NO_FLUSH);
	*inlen = in0 - f->zs.avail_in;
	*outlen = out0 - f->zs.avail_out;
	if (ret == Z_STREAM_END)
		return 1;
	if (ret == Z_OK || ret == Z_BUF_ERROR)
		return 0;
	*why = f->zs.msg ? f->zs.msg : "?";
	return ret == Z_MEM_ERROR ? -ENOMEM : -EIO;
}

/*
 * Right after an infl_step that did not end the stream, with `fed` = the
 * compressed offset just past the input given so far: is the decoder at the
 * start of a deflate block (not the first), all output before it delivered?
 * Then *coff and *bits describe the block start the way access points do.
 * zlib (called with block = true) says so in data_type; ISA-L only when the
 * input ran out inside the block's header (see struct infl).
 */
static bool infl_boundary(const struct infl *f, uint64_t fed, uint64_t *coff, unsigned *bits)
{
#ifdef ACRFS_HAVE_ISAL
	if (f->is) {
		const struct inflate_state *s = f->is;
		uint64_t bit;

		if (s->block_state != ISAL_BLOCK_HDR || s->avail_in != 0 ||
		    s->tmp_out_valid != s->tmp_out_processed || s->read_in_length < 0 ||
		    s->tmp_in_size < 0)
			return false;
		bit = (uint64_t)s->tmp_in_size * 8 + (uint64_t)s->read_in_length;
		if (bit > fed * 8)
			return false;
		bit = fed * 8 - bit;
		*coff = (bit + 7) / 8;
		*bits = (unsigned)((8 - bit % 8) % 8);
		return true;
	}
#endif
	if ((f->zs.data_type & 0xc0) != 0x80)
		return false;
	*coff = fed;
	*bits = (unsigned)f->zs.data_type & 7;
	return true;
}

/* ---- gzip member header parser ---------------------------------------- */

enum { H_FIXED, H_XLEN, H_EXTRA, H_NAME, H_COMMENT, H_HCRC, H_DONE };
#define GZ_FHCRC 0x02
#define GZ_FEXTRA 0x04
#define GZ_FNAME 0x08
#define GZ_FCOMMENT 0x10

struct gzhdr {
	int state;
	unsigned have;       /* bytes of the current fixed-size field seen */
	unsigned need;       /* bytes left to skip (EXTRA, HCRC) */
	unsigned char fixed[10];
};

static void gzhdr_reset(struct gzhdr *h)
{
	memset(h, 0, sizeof(*h));
}

/* True if nothing of a header has been seen yet. */
static bool gzhdr_idle(const struct gzhdr *h)
{
	return h->state == H_FIXED && h->have == 0;
}

static void gzhdr_next(struct gzhdr *h)
{
	unsigned flg = h->fixed[3];

	h->have = 0;
	h->need = 0;
	for (h->state++; h->state < H_DONE; h->state++) {
		if ((h->state == H_XLEN && (flg & GZ_FEXTRA)) ||
		    (h->state == H_NAME && (flg & GZ_FNAME)) ||
		    (h->state == H_COMMENT && (flg & GZ_FCOMMENT)))
			return;
		if (h->state == H_HCRC && (flg & GZ_FHCRC)) {
			h->need = 2;
			return;
		}
	}
}

/*
 * Consume header bytes from p[0, n); *used = bytes taken. 1 when the header
 * is complete, 0 when more bytes are needed, -EIO if this is not a gzip
 * member header.
 */
static int gzhdr_step(struct gzhdr *h, const unsigned char *p, size_t n, size_t *used)
{
	size_t i = 0;

	while (i < n && h->state != H_DONE) {
		switch (h->state) {
		case H_FIXED:
			h->fixed[h->have++] = p[i++];
			if ((h->have == 1 && h->fixed[0] != 0x1f) ||
			    (h->have == 2 && h->fixed[1] != 0x8b) ||
			    (h->have == 3 && h->fixed[2] != 8) ||
			    (h->have == 4 && (h->fixed[3] & 0xe0))) {
				*used = i;
				return -EIO;
			}
			if (h->have == 10)
				gzhdr_next(h);
			break;
		case H_XLEN:
			h->need |= (unsigned)p[i++] << (8 * h->have);
			if (++h->have == 2) {
				h->have = 0;
				h->state = H_EXTRA;
				if (h->need == 0)
					gzhdr_next(h);
			}
			break;
		case H_EXTRA:
		case H_HCRC: {
			size_t k = n - i < h->need ? n - i : h->need;

			i += k;
			h->need -= (unsigned)k;
			if (h->need == 0)
				gzhdr_next(h);
			break;
		}
		case H_NAME:
		case H_COMMENT: {
			const unsigned char *z = memchr(p + i, 0, n - i);

			if (!z) {
				i = n;
			} else {
				i = (size_t)(z - p) + 1;
				gzhdr_next(h);
			}
			break;
		}
		default:
			break;
		}
	}
	*used = i;
	return h->state == H_DONE;
}

/* ---- building ---------------------------------------------------------- */

/*
 * Windows are stored as raw deflate when that is smaller: with ISA-L's
 * level 1 when it is built in (it compresses a window ~10x faster than
 * zlib's level 1 and only a few percent larger), else with zlib's. Either
 * engine inflates either.
 */
struct wpack {
#ifdef ACRFS_HAVE_ISAL
	struct isal_zstream *zs;
#else
	z_stream zs;
	bool init;
#endif
	unsigned char *out;
	size_t cap;
};

static int wpack_init(struct wpack *w)
{
	memset(w, 0, sizeof(*w));
	w->cap = ZRAN_WINDOW + 1024; /* a stored block's framing fits */
#ifdef ACRFS_HAVE_ISAL
	w->zs = malloc(sizeof(*w->zs));
	if (!w->zs)
		return -ENOMEM;
#else
	if (zerr(deflateInit2(&w->zs, WIN_LEVEL, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY)))
		return -ENOMEM;
	w->init = true;
	w->cap = deflateBound(&w->zs, ZRAN_WINDOW);
#endif
	w->out = malloc(w->cap);
	return w->out ? 0 : -ENOMEM;
}

static void wpack_end(struct wpack *w)
{
#ifdef ACRFS_HAVE_ISAL
	free(w->zs);
#else
	if (w->init)
		deflateEnd(&w->zs);
#endif
	free(w->out);
	memset(w, 0, sizeof(*w));
}

/* Deflate win[0, n) into w->out: its length, or 0 if it is not smaller. */
static size_t wpack_run(struct wpack *w, const unsigned char *win, uint32_t n)
{
	size_t len = 0;

	if (WIN_LEVEL == 0)
		return 0;
#ifdef ACRFS_HAVE_ISAL
	isal_deflate_stateless_init(w->zs);
	w->zs->level = 1;
	w->zs->end_of_stream = 1;
	w->zs->next_in = (uint8_t *)win;
	w->zs->avail_in = n;
	w->zs->next_out = w->out;
	w->zs->avail_out = (uint32_t)w->cap;
	if (isal_deflate_stateless(w->zs) == COMP_OK)
		len = w->zs->total_out;
#else
	w->zs.next_in = (Bytef *)win;
	w->zs.avail_in = n;
	w->zs.next_out = w->out;
	w->zs.avail_out = (uInt)w->cap;
	if (deflate(&w->zs, Z_FINISH) == Z_STREAM_END)
		len = w->zs.total_out;
	if (deflateReset(&w->zs) != Z_OK)
		len = 0;
#endif
	return len < n ? len : 0;
}

enum { ST_HEADER, ST_DEFLATE, ST_TRAILER };

/*
 * ISA-L finds access points only where a call's input ends inside a block
 * header: while a point is due the builder hands it SEEK_PIECE bytes at a
 * time (pieces ending on multiples of SEEK_PIECE of the blob), else all it
 * has. Most dynamic block headers are longer than a piece, so the first
 * block after the span is usually the one taken; a shorter header (a fixed
 * or stored block) only defers the point to a later block.
 */
#ifndef SEEK_PIECE
#define SEEK_PIECE 32u
#endif

struct zran_builder {
	struct infl inf;  /* raw inflate */
	struct wpack wp;  /* window compression */
	uint32_t span;
	int err;
	bool finished;

	int st;
	struct gzhdr hdr;
	unsigned char trl[8];
	unsigned trl_have;
	uint64_t members;

	unsigned char *out; /* ZRAN_WINDOW history + OUT_CHUNK */
	size_t outpos;
	uint64_t totin, totout; /* totin: input given to the decoder or parsed */
	uint64_t member_out;  /* bytes of the current member so far */
	uint32_t member_crc;  /* CRC of them but the last seg_len (see account) */
	uint32_t seg_crc;     /* CRC of the member's bytes in the current check block */
	uint32_t seg_len;
	uint64_t last_point;
	uint32_t blk_crc;
	uint32_t blk_fill;
	unsigned stall;
	bool more; /* the last inflate filled the output: it may hold more */

	struct zran_point *pts;
	size_t npts, cappts;
	struct buf arena;
	uint32_t *crcs;
	size_t ncrc, capcrc;
	uLong crc_op_block; /* crc32_combine_op operator for ZRAN_CHECK_BLOCK bytes */
};

int zran_builder_new(struct zran_builder **out, uint32_t span)
{
	struct zran_builder *b;
	int rc;

	*out = NULL;
	if (span == 0)
		span = ZRAN_SPAN_DEFAULT;
	if (span < ZRAN_SPAN_MIN || span > ZRAN_SPAN_MAX)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->span = span;
	b->crc_op_block = crc32_combine_gen(ZRAN_CHECK_BLOCK);
	b->arena = (struct buf)BUF_INIT;
	b->out = malloc(ZRAN_WINDOW + OUT_CHUNK);
	if (!b->out) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = infl_init(&b->inf, zran_engine_get());
	if (rc)
		goto fail;
	rc = wpack_init(&b->wp);
	if (rc)
		goto fail;
	b->st = ST_HEADER;
	*out = b;
	return 0;
fail:
	zran_builder_free(b);
	return rc;
}

void zran_builder_free(struct zran_builder *b)
{
	if (!b)
		return;
	infl_end(&b->inf);
	wpack_end(&b->wp);
	free(b->out);
	free(b->pts);
	free(b->crcs);
	buf_release(&b->arena);
	free(b);
}

static int fail(struct zran_builder *b, int rc)
{
	b->err = rc;
	return rc;
}

static int push_crc(struct zran_builder *b, uint32_t crc)
{
	if (b->ncrc == b->capcrc) {
		size_t cap = b->capcrc ? 2 * b->capcrc : 256;
		uint32_t *p = realloc(b->crcs, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->crcs = p;
		b->capcrc = cap;
	}
	b->crcs[b->ncrc++] = crc;
	return 0;
}

/* The CRC of the current member's bytes so far. */
static uint32_t member_crc_now(const struct zran_builder *b)
{
	if (b->seg_len == 0)
		return b->member_crc;
	if (b->member_out == b->seg_len)
		return b->seg_crc;
	return (uint32_t)(b->seg_len == ZRAN_CHECK_BLOCK
				  ? crc32_combine_op(b->member_crc, b->seg_crc, b->crc_op_block)
				  : crc32_combine(b->member_crc, b->seg_crc, (z_off_t)b->seg_len));
}

/* Close the current (partial) check block, if it holds anything. */
static int close_block(struct zran_builder *b)
{
	int rc = 0;

	if (b->blk_fill) {
		rc = push_crc(b, b->blk_crc);
		b->blk_fill = 0;
		b->blk_crc = 0;
	}
	b->member_crc = member_crc_now(b);
	b->seg_crc = 0;
	b->seg_len = 0;
	return rc;
}

/*
 * CRC the new output once for both the check blocks and the member trailer:
 * the block's CRC runs on, and the member's is folded in (one
 * crc32_combine_op) each time a block closes. Only in a block where a member
 * starts are the member's bytes (its segment) hashed a second time.
 */
static int account(struct zran_builder *b, const unsigned char *p, size_t n)
{
	while (n) {
		size_t take = ZRAN_CHECK_BLOCK - b->blk_fill;
		int rc;

		if (take > n)
			take = n;
		if (b->seg_len == b->blk_fill) {
			b->blk_crc = crc_update(b->blk_crc, p, take);
			b->seg_crc = b->blk_crc;
		} else {
			b->blk_crc = crc_update(b->blk_crc, p, take);
			b->seg_crc = crc_update(b->seg_crc, p, take);
		}
		b->blk_fill += (uint32_t)take;
		b->seg_len += (uint32_t)take;
		b->member_out += take;
		if (b->blk_fill == ZRAN_CHECK_BLOCK) {
			rc = close_block(b);
			if (rc)
				return rc;
		}
		p += take;
		n -= take;
	}
	return 0;
}

/* A point where the block starting at compressed offset `coff` (with `bits`
 * unused bits in the byte before) produces output offset b->totout. */
static int add_point(struct zran_builder *b, uint64_t coff, unsigned bits)
{
	struct zran_point *pt;
	uint32_t wlen = (uint32_t)min_u64(ZRAN_WINDOW, b->member_out);
	const unsigned char *win = b->out + b->outpos - wlen;
	int rc;

	rc = close_block(b);
	if (rc)
		return rc;
	if (b->npts == b->cappts) {
		size_t cap = b->cappts ? 2 * b->cappts : 64;
		struct zran_point *p = realloc(b->pts, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->pts = p;
		b->cappts = cap;
	}
	pt = &b->pts[b->npts];
	memset(pt, 0, sizeof(*pt));
	pt->uoff = b->totout;
	pt->coff = coff;
	pt->bits = (uint8_t)bits;
	pt->wlen = wlen;
	pt->woff = b->arena.len;
	pt->crc_first = b->ncrc;
	if (wlen) {
		const void *store = win;
		size_t slen = wlen;

		size_t clen = wpack_run(&b->wp, win, wlen);

		if (clen) {
			store = b->wp.out;
			slen = clen;
			pt->flags |= PT_DEFLATED;
		}
		rc = buf_add(&b->arena, store, slen);
		if (rc)
			return rc;
		pt->wclen = (uint32_t)slen;
	}
	b->npts++;
	b->last_point = b->totout;
	return 0;
}

static bool point_due(const struct zran_builder *b)
{
	return b->npts == 0 || b->totout - b->last_point >= b->span;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Trailer bytes p[0, n) (n <= what is missing); checks a complete one. */
static int take_trailer(struct zran_builder *b, const unsigned char *p, size_t n)
{
	memcpy(b->trl + b->trl_have, p, n);
	b->trl_have += (unsigned)n;
	b->totin += n;
	if (b->trl_have < 8)
		return 0;
	if (le32(b->trl) != member_crc_now(b) || le32(b->trl + 4) != (uint32_t)b->member_out) {
		log_warn("gzip: member ending at compressed offset %llu: %s mismatch",
			 (unsigned long long)b->totin,
			 le32(b->trl) != member_crc_now(b) ? "CRC" : "length");
		return -EIO;
	}
	b->members++;
	b->st = ST_HEADER;
	gzhdr_reset(&b->hdr);
	return 0;
}

static int feed_deflate(struct zran_builder *b, const unsigned char **pp, size_t *left,
			zran_sink_fn sink, void *ctx)
{
	size_t in, room = ZRAN_WINDOW + OUT_CHUNK - b->outpos, got;
	unsigned char back[8];
	unsigned nback;
	const char *why;
	uint64_t coff;
	unsigned bits;
	bool due;
	int ret, rc;

	if (room == 0) {
		memmove(b->out, b->out + b->outpos - ZRAN_WINDOW, ZRAN_WINDOW);
		b->outpos = ZRAN_WINDOW;
		room = OUT_CHUNK;
	}
	in = *left;
	due = point_due(b);
	if (b->inf.eng == ZRAN_ENGINE_ISAL) {
		/* Stop the output where the next point becomes due; from there
		 * on, small input pieces (see SEEK_PIECE). */
		if (due)
			in = min_u64(in, SEEK_PIECE - b->totin % SEEK_PIECE);
		else
			room = (size_t)min_u64(room, b->span - (b->totout - b->last_point));
	}
	got = room;
	ret = infl_step(&b->inf, *pp, &in, b->out + b->outpos, &got, true, back, &nback, &why);
	*pp += in;
	*left -= in;
	b->totin += in;
	b->more = ret == 0 && got == room;
	if (ret < 0) {
		if (ret == -EIO)
			log_warn("gzip: corrupt deflate data near compressed offset %llu: %s",
				 (unsigned long long)b->totin, why);
		return ret;
	}
	/* A decoder always progresses while it has input and output space; a
	 * boundary can be crossed without consuming a byte, but not forever. */
	b->stall = (in || got || nback) ? 0 : b->stall + 1;
	if (b->stall > 64)
		return -EIO;
	if (got) {
		rc = account(b, b->out + b->outpos, got);
		if (rc)
			return rc;
		if (sink) {
			rc = sink(ctx, b->out + b->outpos, got);
			if (rc)
				return rc;
		}
		b->outpos += got;
		b->totout += got;
	}
	if (ret == 1) {
		b->st = ST_TRAILER;
		b->trl_have = 0;
		b->more = false;
		if (nback > 8)
			return -EIO;
		b->totin -= nback; /* counted again as trailer bytes */
		return nback ? take_trailer(b, back, nback) : 0;
	}
	/* ISA-L: only where a piece ends on its grid, never where the caller's
	 * chunk happened to end, so the points do not depend on the chunking. */
	if (point_due(b) && (b->inf.eng != ZRAN_ENGINE_ISAL || b->totin % SEEK_PIECE == 0) &&
	    infl_boundary(&b->inf, b->totin, &coff, &bits))
		return add_point(b, coff, bits);
	return 0;
}

int zran_builder_feed(struct zran_builder *b, const void *comp, size_t len,
		      zran_sink_fn sink, void *ctx)
{
	const unsigned char *p = comp;
	size_t left = len;
	int rc = 0;

	if (b->err)
		return b->err;
	if (b->finished)
		return -EINVAL;
	/* Go on while there is input, or while inflate may still have output
	 * pending from input it already took. */
	while (!rc && (left > 0 || (b->st == ST_DEFLATE && b->more))) {
		switch (b->st) {
		case ST_HEADER: {
			size_t used;
			int r = gzhdr_step(&b->hdr, p, left, &used);

			p += used;
			left -= used;
			b->totin += used;
			if (r < 0) {
				log_warn("gzip: %s at compressed offset %llu",
					 b->members ? "garbage after the last member"
						    : "not a gzip stream",
					 (unsigned long long)b->totin);
				rc = -EIO;
			} else if (r == 1) {
				b->st = ST_DEFLATE;
				b->member_out = 0;
				b->member_crc = 0;
				b->seg_crc = 0;
				b->seg_len = 0;
				rc = infl_reset(&b->inf);
				if (!rc && point_due(b))
					rc = add_point(b, b->totin, 0);
			}
			break;
		}
		case ST_DEFLATE:
			rc = feed_deflate(b, &p, &left, sink, ctx);
			break;
		case ST_TRAILER: {
			size_t k = 8 - b->trl_have;

			if (k > left)
				k = left;
			rc = take_trailer(b, p, k);
			p += k;
			left -= k;
			break;
		}
		}
	}
	return rc ? fail(b, rc) : 0;
}

int zran_builder_finish(struct zran_builder *b, struct zran_index **out)
{
	struct zran_index *x;
	int rc;

	*out = NULL;
	if (b->err)
		return b->err;
	if (b->finished)
		return -EINVAL;
	if (b->st != ST_HEADER || !gzhdr_idle(&b->hdr) || b->members == 0) {
		log_warn("gzip: stream truncated after %llu compressed bytes",
			 (unsigned long long)b->totin);
		return fail(b, -EIO);
	}
	rc = close_block(b);
	if (rc)
		return fail(b, rc);
	x = calloc(1, sizeof(*x));
	if (!x)
		return fail(b, -ENOMEM);
	x->span = b->span;
	x->cb = ZRAN_CHECK_BLOCK;
	x->usize = b->totout;
	x->csize = b->totin;
	x->pts = b->pts;
	x->npts = b->npts;
	x->crcs = b->crcs;
	x->ncrc = b->ncrc;
	x->arena = (unsigned char *)buf_detach(&b->arena, &x->arena_len);
	b->pts = NULL;
	b->crcs = NULL;
	b->npts = b->ncrc = 0;
	b->finished = true;
	*out = x;
	return 0;
}

/* ---- the index --------------------------------------------------------- */

void zran_index_free(struct zran_index *idx)
{
	if (!idx)
		return;
	free(idx->pts);
	free(idx->arena);
	free(idx->crcs);
	free(idx);
}

uint64_t zran_index_usize(const struct zran_index *idx)
{
	return idx->usize;
}

uint64_t zran_index_csize(const struct zran_index *idx)
{
	return idx->csize;
}

uint32_t zran_index_span(const struct zran_index *idx)
{
	return idx->span;
}

size_t zran_index_npoints(const struct zran_index *idx)
{
	return idx->npts;
}

size_t zran_index_memsize(const struct zran_index *idx)
{
	return sizeof(*idx) + idx->npts * sizeof(*idx->pts) + idx->arena_len +
	       idx->ncrc * sizeof(*idx->crcs);
}

/* Serialized layout, version 1 (all little-endian):
 *   0  magic "ACRFSZRI"      8
 *   8  version (1)           u32
 *  12  span                  u32
 *  16  check block size      u32
 *  20  npoints               u32
 *  24  usize                 u64
 *  32  csize                 u64
 *  40  ncrc                  u64
 *  48  windows length        u64
 *  56  points: uoff u64, coff u64, wlen u32, wclen u32, bits u8, flags u8,
 *      2 zero bytes                        (28 bytes each)
 *      windows, back to back
 *      check CRCs            u32 each
 *      CRC-32 of everything before it      u32
 */
#define IDX_MAGIC "ACRFSZRI"
#define IDX_VERSION 1u
#define IDX_HDR 56u
#define IDX_PT 28u

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

int zran_index_save(const struct zran_index *idx, struct buf *out)
{
	size_t start = out->len, total, i;
	unsigned char *p;
	int rc;

	total = IDX_HDR + idx->npts * IDX_PT + idx->arena_len + idx->ncrc * 4 + 4;
	rc = buf_grow(out, total);
	if (rc)
		return rc;
	p = (unsigned char *)out->data + start;
	memcpy(p, IDX_MAGIC, 8);
	put32(p + 8, IDX_VERSION);
	put32(p + 12, idx->span);
	put32(p + 16, idx->cb);
	put32(p + 20, (uint32_t)idx->npts);
	put64(p + 24, idx->usize);
	put64(p + 32, idx->csize);
	put64(p + 40, idx->ncrc);
	put64(p + 48, idx->arena_len);
	p += IDX_HDR;
	for (i = 0; i < idx->npts; i++, p += IDX_PT) {
		const struct zran_point *pt = &idx->pts[i];

		put64(p, pt->uoff);
		put64(p + 8, pt->coff);
		put32(p + 16, pt->wlen);
		put32(p + 20, pt->wclen);
		p[24] = pt->bits;
		p[25] = pt->flags;
		p[26] = p[27] = 0;
	}
	if (idx->arena_len)
		memcpy(p, idx->arena, idx->arena_len);
	p += idx->arena_len;
	for (i = 0; i < idx->ncrc; i++, p += 4)
		put32(p, idx->crcs[i]);
	put32(p, crc_update(0, (const unsigned char *)out->data + start, total - 4));
	out->len = start + total;
	out->data[out->len] = '\0';
	return 0;
}

static int load_fail(struct zran_index *x, const char *why)
{
	log_warn("zran index rejected: %s", why);
	zran_index_free(x);
	return -EBADMSG;
}

int zran_index_load(struct zran_index **out, const void *data, size_t len)
{
	const unsigned char *d = data, *p;
	struct zran_index *x;
	uint64_t npts, ncrc, wl, need, wsum = 0, crc_at = 0;
	size_t i;

	*out = NULL;
	if (len < IDX_HDR + 4 || memcmp(d, IDX_MAGIC, 8) != 0)
		return load_fail(NULL, "bad magic or too short");
	if (le32(d + 8) != IDX_VERSION)
		return load_fail(NULL, "unknown version");
	if (crc_update(0, d, len - 4) != le32(d + len - 4))
		return load_fail(NULL, "checksum mismatch");
	npts = le32(d + 20);
	ncrc = le64(d + 40);
	wl = le64(d + 48);
	/* Every count is bounded by len before any multiplication. */
	if (npts > len / IDX_PT || ncrc > len / 4 || wl > len)
		return load_fail(NULL, "counts exceed file size");
	need = IDX_HDR + npts * IDX_PT + wl + ncrc * 4 + 4;
	if (need != len)
		return load_fail(NULL, "length mismatch");
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->span = le32(d + 12);
	x->cb = le32(d + 16);
	x->usize = le64(d + 24);
	x->csize = le64(d + 32);
	x->npts = (size_t)npts;
	x->ncrc = (size_t)ncrc;
	x->arena_len = (size_t)wl;
	if (x->span < ZRAN_SPAN_MIN || x->span > ZRAN_SPAN_MAX || x->cb < 1024 ||
	    x->cb > ZRAN_SPAN_MAX || npts == 0)
		return load_fail(x, "bad parameters");
	x->pts = calloc(x->npts, sizeof(*x->pts));
	x->arena = malloc(x->arena_len ? x->arena_len : 1);
	x->crcs = malloc(x->ncrc ? x->ncrc * 4 : 4);
	if (!x->pts || !x->arena || !x->crcs) {
		zran_index_free(x);
		return -ENOMEM;
	}
	p = d + IDX_HDR;
	for (i = 0; i < x->npts; i++, p += IDX_PT) {
		struct zran_point *pt = &x->pts[i];
		uint64_t end;

		pt->uoff = le64(p);
		pt->coff = le64(p + 8);
		pt->wlen = le32(p + 16);
		pt->wclen = le32(p + 20);
		pt->bits = p[24];
		pt->flags = p[25];
		pt->woff = (size_t)wsum;
		pt->crc_first = (size_t)crc_at;
		if ((i == 0 && pt->uoff != 0) ||
		    (i > 0 && (pt->uoff <= x->pts[i - 1].uoff || pt->coff < x->pts[i - 1].coff)) ||
		    pt->uoff > x->usize || pt->coff > x->csize || pt->bits > 7 ||
		    (pt->bits && pt->coff == 0) || pt->flags & ~PT_DEFLATED || p[26] || p[27] ||
		    pt->wlen > ZRAN_WINDOW || pt->wlen > pt->uoff ||
		    (!(pt->flags & PT_DEFLATED) && pt->wclen != pt->wlen) ||
		    ((pt->flags & PT_DEFLATED) && (pt->wlen == 0 || pt->wclen == 0)) ||
		    pt->wclen > wl - wsum)
			return load_fail(x, "bad access point");
		wsum += pt->wclen;
		end = i + 1 < x->npts ? le64(p + IDX_PT) : x->usize;
		if (end < pt->uoff)
			return load_fail(x, "bad access point");
		crc_at += (end - pt->uoff + x->cb - 1) / x->cb;
		if (crc_at > ncrc)
			return load_fail(x, "check CRC count mismatch");
	}
	if (wsum != wl || crc_at != ncrc)
		return load_fail(x, "windows or check CRC count mismatch");
	if (x->arena_len)
		memcpy(x->arena, p, x->arena_len);
	p += x->arena_len;
	for (i = 0; i < x->ncrc; i++, p += 4)
		x->crcs[i] = le32(p);
	*out = x;
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

/*
 * A reading cursor: raw inflate positioned at `upos`, fed compressed bytes
 * from `rd` in ZRAN_READ_CHUNK pieces, crossing member boundaries with the
 * same framing parser as the builder. It never checks member trailers (it
 * usually starts mid-member); the check blocks verify the output instead.
 */
struct zcur {
	const struct zran_index *idx;
	zran_read_fn rd;
	void *ctx;
	struct infl inf;
	unsigned char *in;
	const unsigned char *next_in; /* unused input: next_in[0, avail_in) */
	size_t avail_in;
	unsigned char *win; /* scratch for an inflated window */
	uint64_t cnext;     /* compressed offset of the next byte to fetch */
	uint64_t upos;      /* uncompressed offset of the next byte out */
	size_t pi;          /* access point whose span holds upos */
	int st;
	struct gzhdr hdr;
	unsigned trl_left;
	struct zran_stats stats;
};

static int zcur_init(struct zcur *c, const struct zran_index *idx, zran_read_fn rd, void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->idx = idx;
	c->rd = rd;
	c->ctx = ctx;
	c->in = malloc(ZRAN_READ_CHUNK);
	c->win = malloc(ZRAN_WINDOW);
	if (!c->in || !c->win)
		return -ENOMEM;
	return infl_init(&c->inf, zran_engine_get());
}

static void zcur_done(struct zcur *c)
{
	infl_end(&c->inf);
	free(c->in);
	free(c->win);
	c->in = c->win = NULL;
}

/* The last access point at or before `uoff` (uoff < usize). */
static size_t find_point(const struct zran_index *x, uint64_t uoff)
{
	size_t lo = 0, hi = x->npts; /* pts[lo].uoff <= uoff < pts[hi].uoff */

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (x->pts[mid].uoff <= uoff)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int zran_index_comp_range(const struct zran_index *idx, uint64_t uoff, uint64_t len,
			  uint64_t *cstart, uint64_t *cend)
{
	const struct zran_point *pt;
	size_t last;

	if (uoff >= idx->usize || len == 0)
		return -EINVAL;
	pt = &idx->pts[find_point(idx, uoff)];
	*cstart = pt->coff - (pt->bits ? 1 : 0);
	last = find_point(idx, uoff + min_u64(len, idx->usize - uoff) - 1);
	*cend = last + 1 < idx->npts ? idx->pts[last + 1].coff : idx->csize;
	return 0;
}

static int zcur_fill(struct zcur *c)
{
	uint64_t want = min_u64(ZRAN_READ_CHUNK, c->idx->csize - c->cnext);
	ssize_t r;

	if (c->cnext >= c->idx->csize || want == 0) {
		log_warn("gzip: compressed data ends before the indexed length");
		return -EIO;
	}
	r = c->rd(c->ctx, c->in, (size_t)want, c->cnext);
	if (r < 0)
		return (int)r;
	if (r == 0 || (uint64_t)r > want) {
		log_warn("gzip: short compressed read at offset %llu",
			 (unsigned long long)c->cnext);
		return -EIO;
	}
	c->cnext += (uint64_t)r;
	c->stats.comp_bytes += (uint64_t)r;
	c->next_in = c->in;
	c->avail_in = (size_t)r;
	return 0;
}

/* Inflate point pi's stored window into c->win. */
static int zcur_window(struct zcur *c, size_t pi)
{
	const struct zran_point *pt = &c->idx->pts[pi];
	unsigned char back[8];
	unsigned nback;
	const char *why;
	size_t in = pt->wclen, out = pt->wlen;

	if (!(pt->flags & PT_DEFLATED)) {
		if (pt->wlen)
			memcpy(c->win, c->idx->arena + pt->woff, pt->wlen);
		return 0;
	}
	if (infl_step(&c->inf, c->idx->arena + pt->woff, &in, c->win, &out, false, back, &nback,
		      &why) != 1 ||
	    out != pt->wlen) {
		log_warn("zran index: window %zu does not inflate", pi);
		return -EIO;
	}
	return infl_reset(&c->inf);
}

static int zcur_seek(struct zcur *c, size_t pi)
{
	const struct zran_point *pt = &c->idx->pts[pi];
	int rc;

	c->stats.seeks++;
	rc = infl_reset(&c->inf);
	if (!rc)
		rc = zcur_window(c, pi);
	if (rc)
		return rc;
	c->cnext = pt->coff - (pt->bits ? 1 : 0);
	c->avail_in = 0;
	rc = zcur_fill(c);
	if (rc)
		return rc;
	if (pt->wlen) {
		rc = infl_set_dict(&c->inf, c->win, pt->wlen);
		if (rc)
			return rc;
	}
	if (pt->bits) {
		rc = infl_prime(&c->inf, pt->bits, c->next_in[0] >> (8 - pt->bits));
		if (rc)
			return rc;
		c->next_in++;
		c->avail_in--;
	}
	c->upos = pt->uoff;
	c->pi = pi;
	c->st = ST_DEFLATE;
	return 0;
}

/* Skip trailer bytes p[0, n) (n <= what is left of it). */
static void zcur_trailer(struct zcur *c, size_t n)
{
	c->trl_left -= (unsigned)n;
	if (c->trl_left == 0) {
		c->st = ST_HEADER;
		gzhdr_reset(&c->hdr);
	}
}

/* Produce exactly `n` bytes (the caller keeps upos + n <= usize). */
static int zcur_produce(struct zcur *c, unsigned char *dst, size_t n)
{
	size_t done = 0;
	unsigned stall = 0;
	int rc;

	while (done < n) {
		if (c->avail_in == 0 && (c->st != ST_DEFLATE || stall)) {
			rc = zcur_fill(c);
			if (rc)
				return rc;
		}
		switch (c->st) {
		case ST_DEFLATE: {
			size_t in = c->avail_in, got = n - done;
			unsigned char back[8];
			unsigned nback;
			const char *why;
			int ret = infl_step(&c->inf, c->next_in, &in, dst + done, &got, false, back,
					    &nback, &why);

			c->next_in += in;
			c->avail_in -= in;
			done += got;
			c->upos += got;
			c->stats.out_bytes += got;
			if (ret < 0) {
				if (ret == -EIO)
					log_warn("gzip: corrupt data while reading at offset %llu: %s",
						 (unsigned long long)c->upos, why);
				return ret;
			}
			if (ret == 1) {
				c->st = ST_TRAILER;
				c->trl_left = 8;
				if (nback > 8)
					return -EIO;
				zcur_trailer(c, nback);
			}
			/* Without input the decoder may still flush output;
			 * once it makes none, fetch more (above). */
			stall = (got || in || ret == 1) ? 0 : stall + 1;
			if (stall > 64)
				return -EIO;
			break;
		}
		case ST_TRAILER: {
			size_t k = min_u64(c->avail_in, c->trl_left);

			c->next_in += k;
			c->avail_in -= k;
			zcur_trailer(c, k);
			break;
		}
		case ST_HEADER: {
			size_t used;
			int r = gzhdr_step(&c->hdr, c->next_in, c->avail_in, &used);

			c->next_in += used;
			c->avail_in -= used;
			if (r < 0) {
				log_warn("gzip: bad member header while reading");
				return -EIO;
			}
			if (r == 1) {
				rc = infl_reset(&c->inf);
				if (rc)
					return rc;
				c->st = ST_DEFLATE;
			}
			break;
		}
		}
	}
	return 0;
}

/*
 * Decode the check block starting at c->upos into dst (room for idx->cb
 * bytes), verifying its CRC unless the block ends at or before
 * `verify_from`. Returns the block length or -errno.
 */
static ssize_t zcur_block(struct zcur *c, unsigned char *dst, uint64_t verify_from)
{
	const struct zran_index *x = c->idx;
	const struct zran_point *pt;
	uint64_t span_end, k, bstart, bend;
	int rc;

	while (c->pi + 1 < x->npts && c->upos >= x->pts[c->pi + 1].uoff)
		c->pi++;
	pt = &x->pts[c->pi];
	span_end = c->pi + 1 < x->npts ? x->pts[c->pi + 1].uoff : x->usize;
	k = (c->upos - pt->uoff) / x->cb;
	bstart = pt->uoff + k * x->cb;
	bend = min_u64(bstart + x->cb, span_end);
	if (bstart != c->upos || bend <= bstart || pt->crc_first + k >= x->ncrc)
		return -EIO; /* not at a block start: cannot happen */
	rc = zcur_produce(c, dst, (size_t)(bend - bstart));
	if (rc)
		return rc;
	if (bend > verify_from &&
	    crc_update(0, dst, (size_t)(bend - bstart)) != x->crcs[pt->crc_first + k]) {
		log_warn("gzip: data at uncompressed offset %llu does not match the index",
			 (unsigned long long)bstart);
		return -EIO;
	}
	return (ssize_t)(bend - bstart);
}

ssize_t zran_read(const struct zran_index *idx, zran_read_fn rd, void *ctx,
		  uint64_t uoff, void *out, size_t len)
{
	struct zcur c;
	unsigned char *blk = NULL;
	uint64_t end;
	ssize_t rc;

	if (uoff >= idx->usize || len == 0)
		return 0;
	end = uoff + min_u64(len, idx->usize - uoff);
	rc = zcur_init(&c, idx, rd, ctx);
	if (!rc) {
		blk = malloc(idx->cb);
		if (!blk)
			rc = -ENOMEM;
	}
	if (!rc)
		rc = zcur_seek(&c, find_point(idx, uoff));
	while (!rc && c.upos < end) {
		uint64_t bstart = c.upos, lo, hi;
		ssize_t n = zcur_block(&c, blk, uoff);

		if (n < 0) {
			rc = n;
			break;
		}
		lo = bstart > uoff ? bstart : uoff;
		hi = min_u64(bstart + (uint64_t)n, end);
		if (hi > lo)
			memcpy((unsigned char *)out + (lo - uoff), blk + (lo - bstart), hi - lo);
	}
	free(blk);
	zcur_done(&c);
	return rc ? rc : (ssize_t)(end - uoff);
}

/* ---- sequential reader -------------------------------------------------- */

struct zran_reader {
	struct zcur c;
	bool positioned;     /* c is valid and buf ends at c.upos */
	unsigned char *buf;  /* decoded, verified bytes [buf_off, buf_off+buf_len) */
	uint64_t buf_off;
	size_t buf_len;
};

int zran_reader_new(struct zran_reader **out, const struct zran_index *idx,
		    zran_read_fn rd, void *ctx)
{
	struct zran_reader *r;
	int rc;

	*out = NULL;
	if (idx->cb > READER_SLACK)
		return -EINVAL; /* the buffer holds HIST_KEEP plus whole blocks */
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	rc = zcur_init(&r->c, idx, rd, ctx);
	if (!rc) {
		r->buf = malloc(READER_BUF);
		if (!r->buf)
			rc = -ENOMEM;
	}
	if (rc) {
		zran_reader_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void zran_reader_free(struct zran_reader *r)
{
	if (!r)
		return;
	zcur_done(&r->c);
	free(r->buf);
	free(r);
}

void zran_reader_stats(const struct zran_reader *r, struct zran_stats *st)
{
	*st = r->c.stats;
}

ssize_t zran_reader_pread(struct zran_reader *r, uint64_t uoff, void *out, size_t len)
{
	const struct zran_index *x = r->c.idx;
	uint64_t end, pos;

	if (uoff >= x->usize || len == 0)
		return 0;
	end = uoff + min_u64(len, x->usize - uoff);
	pos = uoff;
	while (pos < end) {
		size_t pi;
		ssize_t n;

		if (r->positioned && pos >= r->buf_off && pos < r->buf_off + r->buf_len) {
			uint64_t k = min_u64(end - pos, r->buf_off + r->buf_len - pos);

			memcpy((unsigned char *)out + (pos - uoff), r->buf + (pos - r->buf_off), k);
			pos += k;
			continue;
		}
		/* Behind what we kept, or far ahead in a later span than the
		 * cursor: restart at the access point. Otherwise inflate
		 * forward — also across a point when the gap is small, so a
		 * readahead that skipped one read can still be served. */
		pi = find_point(x, pos);
		if (!r->positioned || pos < r->buf_off ||
		    (pos - r->c.upos >= HIST_KEEP && pi > find_point(x, r->c.upos))) {
			int rc = zcur_seek(&r->c, pi);

			if (rc) {
				r->positioned = false;
				return rc;
			}
			r->positioned = true;
			r->buf_off = x->pts[pi].uoff;
			r->buf_len = 0;
		}
		if (r->buf_len + x->cb > READER_BUF) {
			size_t drop = r->buf_len - HIST_KEEP;

			memmove(r->buf, r->buf + drop, HIST_KEEP);
			r->buf_off += drop;
			r->buf_len = HIST_KEEP;
		}
		/* Verify every block: all of the buffer may be served later. */
		n = zcur_block(&r->c, r->buf + r->buf_len, 0);
		if (n <= 0) {
			r->positioned = false;
			return n < 0 ? n : -EIO;
		}
		r->buf_len += (size_t)n;
	}
	return (ssize_t)(end - uoff);
}
