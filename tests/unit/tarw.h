/*
 * tarw — a tiny in-memory tar writer for unit tests (header-only).
 *
 * It writes exactly the bytes the test asks for, including broken ones (bad
 * checksums, absurd sizes, base-256 fields), so hostile archives are easy to
 * build. Every function aborts the test on allocation failure.
 */
#ifndef ACRFS_TESTS_TARW_H
#define ACRFS_TESTS_TARW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

enum tw_fmt { TW_USTAR = 0, TW_GNU, TW_V7 };

struct tw_hdr {
	const char *name;
	const char *prefix;   /* ustar only */
	char type;
	unsigned mode, uid, gid;
	uint64_t size;        /* the size field */
	int64_t mtime;
	const char *link;
	unsigned devmajor, devminor;
	enum tw_fmt fmt;
	bool b256_size;       /* write size in base-256 */
	bool b256_ids;        /* uid/gid/mtime in base-256 (mtime may be < 0) */
	bool bad_checksum;
	unsigned char raw[512]; /* bytes OR-ed in last (e.g. old-GNU sparse) */
	bool use_raw;
};

static inline void tw_must(int rc)
{
	if (rc) {
		fprintf(stderr, "tarw: out of memory\n");
		abort();
	}
}

static inline void tw_octal(unsigned char *f, size_t n, uint64_t v)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%0*llo", (int)(n - 1), (unsigned long long)v);
	memcpy(f, tmp, n - 1);
	f[n - 1] = '\0';
}

static inline void tw_b256(unsigned char *f, size_t n, int64_t v)
{
	size_t i;
	uint64_t u = (uint64_t)v;

	for (i = n; i-- > 1;) {
		f[i] = (unsigned char)(u & 0xff);
		u = (uint64_t)((int64_t)u >> 8);
	}
	f[0] = v < 0 ? 0xff : 0x80;
}

static inline void tw_header(struct buf *b, const struct tw_hdr *h)
{
	unsigned char blk[512];
	unsigned sum = 0;
	size_t i;

	memset(blk, 0, sizeof(blk));
	strncpy((char *)blk, h->name ? h->name : "", 100);
	tw_octal(blk + 100, 8, h->mode);
	if (h->b256_ids) {
		tw_b256(blk + 108, 8, h->uid);
		tw_b256(blk + 116, 8, h->gid);
		tw_b256(blk + 136, 12, h->mtime);
	} else {
		tw_octal(blk + 108, 8, h->uid);
		tw_octal(blk + 116, 8, h->gid);
		tw_octal(blk + 136, 12, (uint64_t)h->mtime);
	}
	if (h->b256_size)
		tw_b256(blk + 124, 12, (int64_t)h->size);
	else
		tw_octal(blk + 124, 12, h->size);
	blk[156] = (unsigned char)h->type;
	if (h->link)
		strncpy((char *)blk + 157, h->link, 100);
	if (h->fmt == TW_USTAR) {
		memcpy(blk + 257, "ustar\0" "00", 8);
		if (h->prefix)
			strncpy((char *)blk + 345, h->prefix, 155);
	} else if (h->fmt == TW_GNU) {
		memcpy(blk + 257, "ustar  \0", 8);
	}
	if (h->fmt != TW_V7) {
		tw_octal(blk + 329, 8, h->devmajor);
		tw_octal(blk + 337, 8, h->devminor);
	}
	if (h->use_raw)
		for (i = 0; i < 512; i++)
			blk[i] |= h->raw[i];
	memset(blk + 148, ' ', 8);
	for (i = 0; i < 512; i++)
		sum += blk[i];
	if (h->bad_checksum)
		sum += 1;
	snprintf((char *)blk + 148, 8, "%06o", sum);
	blk[155] = ' ';
	tw_must(buf_add(b, blk, sizeof(blk)));
}

/* Data plus padding to the next block. */
static inline void tw_data(struct buf *b, const void *d, size_t n)
{
	static const char zeros[512];

	tw_must(buf_add(b, d, n));
	if (n % 512)
		tw_must(buf_add(b, zeros, 512 - n % 512));
}

/* A regular file (ustar) with content. */
static inline void tw_file(struct buf *b, const char *name, const char *content)
{
	struct tw_hdr h = { .name = name, .type = '0', .mode = 0644 };

	h.size = strlen(content);
	h.mtime = 1700000000;
	tw_header(b, &h);
	tw_data(b, content, h.size);
}

static inline void tw_simple(struct buf *b, const char *name, char type,
			     const char *link)
{
	struct tw_hdr h = { .name = name, .type = type, .mode = 0755, .link = link };

	h.mtime = 1700000000;
	tw_header(b, &h);
}

/* Append one PAX record "LEN key=value\n" to recs; the key is `klen` bytes
 * (it may hold NUL bytes). */
static inline void tw_pax_rec_n(struct buf *recs, const char *key, size_t klen,
				const void *val, size_t vlen)
{
	size_t base = klen + vlen + 3, len = base, digits;
	char num[32];

	/* The length counts its own digits. */
	for (;;) {
		digits = (size_t)snprintf(num, sizeof(num), "%zu", len);
		if (base + digits == len)
			break;
		len = base + digits;
	}
	tw_must(buf_adds(recs, num));
	tw_must(buf_addch(recs, ' '));
	tw_must(buf_add(recs, key, klen));
	tw_must(buf_addch(recs, '='));
	tw_must(buf_add(recs, val, vlen));
	tw_must(buf_addch(recs, '\n'));
}

/* Append one PAX record "LEN key=value\n" to recs. */
static inline void tw_pax_rec(struct buf *recs, const char *key, const void *val,
			      size_t vlen)
{
	tw_pax_rec_n(recs, key, strlen(key), val, vlen);
}

static inline void tw_pax_s(struct buf *recs, const char *key, const char *val)
{
	tw_pax_rec(recs, key, val, strlen(val));
}

/* An x or g header followed by the records. */
static inline void tw_pax(struct buf *b, char type, const struct buf *recs)
{
	struct tw_hdr h = { .name = "./PaxHeaders/x", .type = type, .mode = 0644 };

	h.size = recs->len;
	tw_header(b, &h);
	tw_data(b, recs->data, recs->len);
}

/* A GNU L or K record carrying s (with its NUL, as GNU tar writes it). */
static inline void tw_long(struct buf *b, char type, const char *s)
{
	struct tw_hdr h = { .name = "././@LongLink", .type = type, .mode = 0644,
			    .fmt = TW_GNU };

	h.size = strlen(s) + 1;
	tw_header(b, &h);
	tw_data(b, s, h.size);
}

static inline void tw_end(struct buf *b)
{
	static const char zeros[1024];

	tw_must(buf_add(b, zeros, sizeof(zeros)));
}

#endif
