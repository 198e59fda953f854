/*
 * decomp — streaming layer decoder. Design note.
 *
 * One struct for the three kinds; only the members of the active kind are
 * set up. gzip is delegated entirely to zran's builder. zstd runs
 * ZSTD_decompressStream over the caller's input without copying it, into a
 * ZSTD_DStreamOutSize() output buffer that is handed to the sink. The
 * decoder sits at a frame boundary at the start and whenever
 * ZSTD_decompressStream returns 0 ("frame fully decoded and flushed"; it
 * never consumes input past a frame end in that call), so the frame table is
 * recorded there: the compressed offset of the next input byte and the
 * uncompressed offset of the next output byte.
 */
#include "image/decomp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "common/log.h"

#define ZREAD_CHUNK (64u << 10)

struct frame {
	uint64_t coff, uoff;
};

struct decomp_frames {
	struct frame *v;
	size_t n;
	uint64_t usize, csize;
};

struct decomp {
	enum decomp_kind kind;
	int err;
	bool finished;
	uint64_t usize, csize;
	/* gzip */
	struct zran_builder *zb;
	struct zran_index *zidx;
	/* zstd */
	ZSTD_DStream *zs;
	unsigned char *zout;
	size_t zout_cap;
	bool at_frame_start; /* nothing of the current frame consumed yet */
	size_t last_ret;     /* ZSTD_decompressStream's last return */
	struct decomp_frames *frames;
	size_t frames_cap;
};

/* The one table turning zstd error codes into errno values. */
static int zstd_errno(size_t ret)
{
	switch (ZSTD_getErrorCode(ret)) {
	case ZSTD_error_no_error:
		return 0;
	case ZSTD_error_memory_allocation:
		return -ENOMEM;
	case ZSTD_error_parameter_unsupported:
	case ZSTD_error_parameter_outOfBound:
	case ZSTD_error_init_missing:
	case ZSTD_error_stage_wrong:
		return -EINVAL;
	default: /* prefix_unknown, corruption_detected, checksum_wrong, ... */
		return -EIO;
	}
}

int decomp_kind_from_media_type(const char *mt)
{
	static const struct {
		const char *mt;
		enum decomp_kind kind;
	} tab[] = {
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
	};
	size_t len, i;

	if (!mt)
		return -ENOTSUP;
	len = strcspn(mt, "; \t");
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strlen(tab[i].mt) == len && strncasecmp(mt, tab[i].mt, len) == 0)
			return (int)tab[i].kind;
	return -ENOTSUP;
}

const char *decomp_kind_name(enum decomp_kind kind)
{
	switch (kind) {
	case DECOMP_TAR:
		return "tar";
	case DECOMP_GZIP:
		return "gzip";
	case DECOMP_ZSTD:
		return "zstd";
	}
	return "?";
}

void decomp_frames_free(struct decomp_frames *f)
{
	if (!f)
		return;
	free(f->v);
	free(f);
}

int decomp_new(struct decomp **out, enum decomp_kind kind, uint32_t span)
{
	struct decomp *d;
	int rc = 0;

	*out = NULL;
	if (kind != DECOMP_TAR && kind != DECOMP_GZIP && kind != DECOMP_ZSTD)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->kind = kind;
	if (kind == DECOMP_GZIP) {
		rc = zran_builder_new(&d->zb, span);
	} else if (kind == DECOMP_ZSTD) {
		d->zs = ZSTD_createDStream();
		d->zout_cap = ZSTD_DStreamOutSize();
		d->zout = malloc(d->zout_cap);
		d->frames = calloc(1, sizeof(*d->frames));
		if (!d->zs || !d->zout || !d->frames)
			rc = -ENOMEM;
		else
			rc = zstd_errno(ZSTD_initDStream(d->zs));
		d->at_frame_start = true;
	}
	if (rc) {
		decomp_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void decomp_free(struct decomp *d)
{
	if (!d)
		return;
	zran_builder_free(d->zb);
	zran_index_free(d->zidx);
	ZSTD_freeDStream(d->zs);
	free(d->zout);
	decomp_frames_free(d->frames);
	free(d);
}

struct count_sink {
	struct decomp *d;
	decomp_sink_fn sink;
	void *ctx;
};

static int counting_sink(void *ctx, const void *data, size_t n)
{
	struct count_sink *c = ctx;

	c->d->usize += n;
	return c->sink ? c->sink(c->ctx, data, n) : 0;
}

static int add_frame(struct decomp *d)
{
	struct decomp_frames *f = d->frames;

	if (f->n == d->frames_cap) {
		size_t cap = d->frames_cap ? 2 * d->frames_cap : 16;
		struct frame *v = realloc(f->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		f->v = v;
		d->frames_cap = cap;
	}
	f->v[f->n].coff = d->csize;
	f->v[f->n].uoff = d->usize;
	f->n++;
	return 0;
}

static int feed_zstd(struct decomp *d, const void *comp, size_t len, decomp_sink_fn sink,
		     void *ctx)
{
	ZSTD_inBuffer in = { comp, len, 0 };
	int rc;

	while (in.pos < in.size) {
		ZSTD_outBuffer o = { d->zout, d->zout_cap, 0 };
		size_t before = in.pos, ret;

		if (d->at_frame_start) {
			rc = add_frame(d);
			if (rc)
				return rc;
			d->at_frame_start = false;
		}
		/* Go on while the output comes back full, even with no input
		 * left: the decoder may hold output for input it took. */
		do {
			o.pos = 0;
			ret = ZSTD_decompressStream(d->zs, &o, &in);
			if (ZSTD_isError(ret)) {
				log_warn("zstd: %s near compressed offset %llu",
					 ZSTD_getErrorName(ret),
					 (unsigned long long)(d->csize + in.pos - before));
				return zstd_errno(ret);
			}
			if (o.pos) {
				d->usize += o.pos;
				if (sink) {
					rc = sink(ctx, d->zout, o.pos);
					if (rc)
						return rc;
				}
			}
		} while (o.pos == o.size && ret != 0);
		d->csize += in.pos - before;
		d->last_ret = ret;
		if (ret == 0)
			d->at_frame_start = true;
	}
	return 0;
}

int decomp_feed(struct decomp *d, const void *comp, size_t len, decomp_sink_fn sink,
		void *ctx)
{
	int rc = 0;

	if (d->err)
		return d->err;
	if (d->finished)
		return -EINVAL;
	switch (d->kind) {
	case DECOMP_TAR:
		d->csize += len;
		d->usize += len;
		if (sink && len)
			rc = sink(ctx, comp, len);
		break;
	case DECOMP_GZIP: {
		struct count_sink c = { d, sink, ctx };

		d->csize += len;
		rc = zran_builder_feed(d->zb, comp, len, counting_sink, &c);
		break;
	}
	case DECOMP_ZSTD:
		rc = feed_zstd(d, comp, len, sink, ctx);
		break;
	}
	if (rc)
		d->err = rc;
	return rc;
}

int decomp_finish(struct decomp *d, struct zran_index **zidx)
{
	int rc = 0;

	if (zidx)
		*zidx = NULL;
	if (d->err)
		return d->err;
	if (d->finished)
		return -EINVAL;
	switch (d->kind) {
	case DECOMP_TAR:
		break;
	case DECOMP_GZIP:
		rc = zran_builder_finish(d->zb, &d->zidx);
		break;
	case DECOMP_ZSTD:
		if (!d->at_frame_start || d->frames->n == 0) {
			log_warn("zstd: stream truncated after %llu compressed bytes",
				 (unsigned long long)d->csize);
			rc = -EIO;
		}
		d->frames->usize = d->usize;
		d->frames->csize = d->csize;
		break;
	}
	if (rc) {
		d->err = rc;
		return rc;
	}
	d->finished = true;
	if (zidx) {
		*zidx = d->zidx;
		d->zidx = NULL;
	}
	return 0;
}

int decomp_take_frames(struct decomp *d, struct decomp_frames **out)
{
	*out = NULL;
	if (d->kind != DECOMP_ZSTD || !d->finished || !d->frames)
		return -EINVAL;
	*out = d->frames;
	d->frames = NULL;
	return 0;
}

uint64_t decomp_usize(const struct decomp *d)
{
	return d->usize;
}

uint64_t decomp_csize(const struct decomp *d)
{
	return d->csize;
}

/* ---- zstd frame table ---------------------------------------------------- */

size_t decomp_frames_count(const struct decomp_frames *f)
{
	return f->n;
}

uint64_t decomp_frames_usize(const struct decomp_frames *f)
{
	return f->usize;
}

uint64_t decomp_frames_csize(const struct decomp_frames *f)
{
	return f->csize;
}

int decomp_frames_find(const struct decomp_frames *f, uint64_t uoff, uint64_t *comp_off,
		       uint64_t *frame_uoff)
{
	size_t lo = 0, hi = f->n;

	if (uoff >= f->usize || f->n == 0)
		return -EINVAL;
	/* The last frame starting at or before uoff: with empty (skippable)
	 * frames sharing an offset, the last of them, nearest the data. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->v[mid].uoff <= uoff)
			lo = mid;
		else
			hi = mid;
	}
	*comp_off = f->v[lo].coff;
	*frame_uoff = f->v[lo].uoff;
	return 0;
}

ssize_t decomp_frames_read(const struct decomp_frames *f, zran_read_fn rd, void *ctx,
			   uint64_t uoff, void *out, size_t len)
{
	ZSTD_DStream *zs = NULL;
	unsigned char *in = NULL, *tmp = NULL;
	size_t tmp_cap = ZSTD_DStreamOutSize();
	uint64_t coff, upos, end;
	ssize_t rc = 0;

	if (len == 0 || uoff >= f->usize)
		return 0;
	end = uoff + (len < f->usize - uoff ? len : f->usize - uoff);
	rc = decomp_frames_find(f, uoff, &coff, &upos);
	if (rc)
		return rc;
	zs = ZSTD_createDStream();
	in = malloc(ZREAD_CHUNK);
	tmp = malloc(tmp_cap);
	if (!zs || !in || !tmp) {
		rc = -ENOMEM;
		goto out;
	}
	rc = zstd_errno(ZSTD_initDStream(zs));
	while (!rc && upos < end) {
		uint64_t want = f->csize - coff < ZREAD_CHUNK ? f->csize - coff : ZREAD_CHUNK;
		ZSTD_inBuffer ib = { in, 0, 0 };
		ssize_t got;

		if (want == 0) {
			rc = -EIO;
			break;
		}
		got = rd(ctx, in, (size_t)want, coff);
		if (got <= 0 || (uint64_t)got > want) {
			rc = got < 0 ? got : -EIO;
			break;
		}
		coff += (uint64_t)got;
		ib.size = (size_t)got;
		while (!rc && upos < end) {
			ZSTD_outBuffer ob = { tmp, tmp_cap, 0 };
			size_t ret = ZSTD_decompressStream(zs, &ob, &ib);
			uint64_t lo, hi;

			if (ZSTD_isError(ret)) {
				log_warn("zstd: %s while reading at offset %llu",
					 ZSTD_getErrorName(ret), (unsigned long long)upos);
				rc = zstd_errno(ret);
				break;
			}
			lo = upos > uoff ? upos : uoff;
			hi = upos + ob.pos < end ? upos + ob.pos : end;
			if (hi > lo)
				memcpy((unsigned char *)out + (lo - uoff), tmp + (lo - upos), hi - lo);
			upos += ob.pos;
			if (ib.pos == ib.size && ob.pos < ob.size)
				break; /* needs more input */
		}
	}
out:
	ZSTD_freeDStream(zs);
	free(in);
	free(tmp);
	return rc ? rc : (ssize_t)(end - uoff);
}
