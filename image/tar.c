/*
 * tar — push parser.
 *
 * Design note. The parser is a state machine over the byte stream; it keeps
 * exactly one 512-byte block of input (blk) plus the metadata records that
 * belong to the next entry, never file data:
 *
 *   ST_HEADER      accumulate a header block, then decode it;
 *   ST_ZERO1       one zero block was seen: a second one ends the archive,
 *                  EOF is tolerated, anything else is a bad archive (Go);
 *   ST_RECORD      collect the data of an L/K/x/g record into `rec`
 *                  (bounded), then parse it into `ext`;
 *   ST_SKIP        skip `remain` bytes: entry data plus padding;
 *   ST_GNU_EXT     collect old-GNU sparse extension blocks;
 *   ST_SPARSE_MAP  parse a PAX 1.0 sparse map, block by block, from the start
 *                  of the entry's data (streaming: numbers are accumulated
 *                  digit by digit, so no block is ever re-parsed);
 *   ST_END         after the end marker: ignore everything.
 *
 * `ext` holds what the records preceding an entry say (GNU long names, PAX
 * keys, xattrs, sparse keys) and is reset after every entry. `pend` is the
 * entry under construction while ST_GNU_EXT / ST_SPARSE_MAP read its extra
 * blocks. All variable-size storage is a struct buf (arrays of structs
 * included), so pointers handed to the callback are computed from offsets
 * just before the call, after the last reallocation.
 *
 * Errors are sticky (p->err); every fatal error is logged once with the
 * stream offset of the header concerned, a bound exceeded with its name.
 * What the archive hands out in all is counted (nentries, xattr_bytes) so
 * that one layer cannot grow the trees built from it without limit; skipped
 * entries and dropped xattrs are logged TAR_LOG_SKIPS times, then counted.
 */
#include "image/tar.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"

#define BLK 512u

enum pstate {
	ST_HEADER,
	ST_ZERO1,
	ST_RECORD,
	ST_SKIP,
	ST_GNU_EXT,
	ST_SPARSE_MAP,
	ST_END,
};

/* An xattr while records are parsed: offsets into ext.xdata. */
struct xrec {
	size_t name_off;
	size_t val_off;
	size_t val_len;
};

struct ext {
	struct buf longname, longlink; /* GNU L / K */
	bool has_longname, has_longlink;
	struct buf path, linkpath;     /* PAX */
	bool has_path, has_linkpath;
	bool has_size, has_mtime, has_uid, has_gid;
	uint64_t size;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t uid, gid;  /* as the record says: range-checked per entry */
	struct buf xdata;   /* xattr names (NUL-terminated) and values */
	struct buf xrecs;   /* struct xrec[] */
	/* GNU sparse keys */
	int sp_major, sp_minor;      /* -1 if absent */
	bool has_sp_name, has_sp_realsize, has_sp_map;
	struct buf sp_name;
	uint64_t sp_realsize;
	struct buf sp_nums;          /* uint64_t[] offset,length pairs (0.0/0.1) */
	const char *bound;           /* the bound a -E2BIG exceeded (static) */
};

struct tar_parser {
	tar_entry_cb cb;
	void *ctx;
	int err;
	enum pstate st;
	uint64_t pos;        /* bytes consumed */
	uint64_t hdr_pos;    /* offset of the current header block */
	unsigned char blk[BLK];
	size_t fill;         /* bytes in blk */
	uint64_t remain;     /* ST_SKIP / ST_RECORD: bytes left */
	uint64_t rec_pad;    /* ST_RECORD: padding after the record */
	char rec_type;
	struct buf rec;
	struct ext ext;

	/* The entry being assembled. */
	struct tar_entry e;
	bool skip_entry;     /* don't call back (escaping path), just skip data */
	bool is_sparse;
	uint64_t data_total; /* the size field: bytes of data in the stream */
	struct buf e_path, e_link;
	struct buf sparse;   /* struct tar_sparse[] */
	struct buf xattrs;   /* struct tar_xattr[] */
	/* ST_SPARSE_MAP state */
	int64_t sp_count;    /* -1 until the first number is read */
	uint64_t sp_acc;
	unsigned sp_digits;
	uint64_t sp_first;   /* pending offset of a pair */
	bool sp_have_first;
	uint64_t sp_consumed;

	/* The archive as a whole. */
	uint64_t nentries;    /* entries called back */
	uint64_t xattr_bytes; /* their xattr names (with NUL) and values */
	unsigned nskips;      /* skip log lines written */
	uint64_t unlogged;    /* skips not logged (beyond TAR_LOG_SKIPS) */
};

static uint64_t pad512(uint64_t n)
{
	return (BLK - (n % BLK)) % BLK;
}

/* Copy `len` bytes of untrusted text for a log line: non-printable bytes
 * (NUL included) become '?'. */
static const char *safen(const char *s, size_t len, char *out, size_t n)
{
	size_t i;

	for (i = 0; i < len && i + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
	return out;
}

static const char *safe(const char *s, char *out, size_t n)
{
	return safen(s, strlen(s), out, n);
}

/* May a skipped entry or a dropped xattr be logged? TAR_LOG_SKIPS per
 * archive; the rest are counted for tar_parser_finish. */
static bool skip_log_ok(struct tar_parser *p)
{
	if (p->nskips < TAR_LOG_SKIPS) {
		p->nskips++;
		return true;
	}
	p->unlogged++;
	return false;
}

#define SKIP_LOG(p, ...)                        \
	do {                                    \
		if (skip_log_ok(p))             \
			log_warn(__VA_ARGS__);  \
	} while (0)

/* ---- paths ------------------------------------------------------------ */

int tar_path_normalize(const char *in, size_t inlen, char *out, size_t outsz)
{
	size_t i = 0, len = 0;

	if (outsz == 0)
		return -ENAMETOOLONG;
	while (i < inlen) {
		size_t start, clen;

		while (i < inlen && in[i] == '/')
			i++;
		start = i;
		while (i < inlen && in[i] != '/')
			i++;
		clen = i - start;
		if (clen == 0 || (clen == 1 && in[start] == '.'))
			continue;
		if (clen == 2 && in[start] == '.' && in[start + 1] == '.') {
			if (len == 0)
				return -EPERM;
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the separator */
			continue;
		}
		if (len + (len ? 1 : 0) + clen + 1 > outsz)
			return -ENAMETOOLONG;
		if (len)
			out[len++] = '/';
		memcpy(out + len, in + start, clen);
		len += clen;
	}
	out[len] = '\0';
	return (int)len;
}

/* Normalise into a buf. 0, -EPERM (escape), -ENOMEM. */
static int normalize_buf(const char *in, size_t inlen, struct buf *out)
{
	int rc;

	buf_reset(out);
	rc = buf_grow(out, inlen + 1);
	if (rc)
		return rc;
	rc = tar_path_normalize(in, inlen, out->data, inlen + 1);
	if (rc < 0) {
		buf_reset(out); /* what was written is not NUL-terminated */
		return rc;
	}
	out->len = (size_t)rc;
	return 0;
}

/* ---- numbers ---------------------------------------------------------- */

/* A numeric header field: octal (spaces/NULs around) or GNU base-256. */
static int parse_num(const unsigned char *f, size_t n, int64_t *out)
{
	uint64_t x = 0;
	size_t i = 0;

	if (f[0] & 0x80) {
		unsigned char inv = (f[0] & 0x40) ? 0xff : 0;

		for (i = 0; i < n; i++) {
			unsigned char c = f[i] ^ inv;

			if (i == 0)
				c &= 0x7f;
			if (x >> 56)
				return -EIO;
			x = x << 8 | c;
		}
		if (x >> 63)
			return -EIO;
		*out = inv ? -(int64_t)x - 1 : (int64_t)x;
		return 0;
	}
	while (i < n && (f[i] == ' ' || f[i] == '\0'))
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (x >> 60)
			return -EIO;
		x = x << 3 | (uint64_t)(f[i] - '0');
	}
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return -EIO;
	*out = (int64_t)x;
	return 0;
}

/* Decimal, the whole string, no sign. */
static int parse_dec(const char *s, size_t n, uint64_t *out)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0)
		return -EIO;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EIO;
		if (x > (UINT64_MAX - 9) / 10)
			return -EIO;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*out = x;
	return 0;
}

/* PAX time: [-]sec[.frac]; floor semantics for negative values. */
static int parse_pax_time(const char *s, size_t n, int64_t *sec, uint32_t *nsec)
{
	bool neg = false;
	size_t i = 0, dot;
	uint64_t whole, frac = 0;
	unsigned digits = 0;

	if (n && s[0] == '-') {
		neg = true;
		i = 1;
	}
	for (dot = i; dot < n && s[dot] != '.'; dot++)
		;
	if (parse_dec(s + i, dot - i, &whole) || whole > INT64_MAX / 2)
		return -EIO;
	if (dot < n) {
		for (i = dot + 1; i < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -EIO;
			if (digits < 9) {
				frac = frac * 10 + (uint64_t)(s[i] - '0');
				digits++;
			}
		}
		for (; digits < 9; digits++)
			frac *= 10;
	}
	if (neg && frac) {
		*sec = -(int64_t)whole - 1;
		*nsec = (uint32_t)(1000000000u - frac);
	} else {
		*sec = neg ? -(int64_t)whole : (int64_t)whole;
		*nsec = (uint32_t)frac;
	}
	return 0;
}

/* ---- extension state -------------------------------------------------- */

static void ext_reset(struct ext *x)
{
	buf_reset(&x->longname);
	buf_reset(&x->longlink);
	buf_reset(&x->path);
	buf_reset(&x->linkpath);
	buf_reset(&x->xdata);
	buf_reset(&x->xrecs);
	buf_reset(&x->sp_name);
	buf_reset(&x->sp_nums);
	x->has_longname = x->has_longlink = false;
	x->has_path = x->has_linkpath = false;
	x->has_size = x->has_mtime = x->has_uid = x->has_gid = false;
	x->sp_major = x->sp_minor = -1;
	x->has_sp_name = x->has_sp_realsize = x->has_sp_map = false;
}

static void ext_release(struct ext *x)
{
	buf_release(&x->longname);
	buf_release(&x->longlink);
	buf_release(&x->path);
	buf_release(&x->linkpath);
	buf_release(&x->xdata);
	buf_release(&x->xrecs);
	buf_release(&x->sp_name);
	buf_release(&x->sp_nums);
}

static bool ext_pending(const struct ext *x)
{
	return x->has_longname || x->has_longlink || x->has_path ||
	       x->has_linkpath || x->has_size || x->has_mtime || x->has_uid ||
	       x->has_gid || x->xrecs.len || x->sp_major >= 0 ||
	       x->has_sp_name || x->has_sp_realsize || x->has_sp_map;
}

static int set_str(struct ext *x, struct buf *b, bool *has, const char *v, size_t n)
{
	if (n > TAR_MAX_NAME) {
		x->bound = "TAR_MAX_NAME (64 KiB per name)";
		return -E2BIG;
	}
	buf_reset(b);
	*has = n > 0; /* an empty value reverts to the header field */
	return buf_add(b, v, n);
}

/*
 * Record an xattr of the next entry. One the kernel could never serve (no
 * name, a NUL in it, too long a name or value) is dropped with a log line:
 * kept, it would be listed but never readable, and an empty name would make
 * the layer's index file unreadable. Too many, or too many bytes, for one
 * entry is fatal (-E2BIG, logged).
 */
static int add_xattr(struct tar_parser *p, const char *name, size_t nlen,
		     const void *val, size_t vlen)
{
	struct ext *x = &p->ext;
	const char *why = NULL;
	struct xrec r;
	char sn[80];
	int rc;

	if (nlen == 0)
		why = "its name is empty";
	else if (memchr(name, '\0', nlen))
		why = "its name holds a NUL byte";
	else if (nlen > TAR_XATTR_NAME_MAX)
		why = "its name is longer than 255 bytes (XATTR_NAME_MAX)";
	else if (vlen > TAR_XATTR_SIZE_MAX)
		why = "its value is longer than 65536 bytes (XATTR_SIZE_MAX)";
	if (why) {
		SKIP_LOG(p, "tar: dropping xattr '%s' of the entry after the PAX record at offset %" PRIu64
			 ": %s",
			 safen(name, nlen, sn, sizeof(sn)), p->hdr_pos, why);
		return 0;
	}
	if (x->xrecs.len / sizeof(r) >= TAR_MAX_XATTRS) {
		x->bound = "TAR_MAX_XATTRS (1024 xattrs per entry)";
		return -E2BIG;
	}
	if (x->xdata.len + nlen + 1 + vlen > TAR_MAX_XATTR_ENTRY) {
		x->bound = "TAR_MAX_XATTR_ENTRY (1 MiB of xattrs per entry)";
		return -E2BIG;
	}
	r.name_off = x->xdata.len;
	rc = buf_add(&x->xdata, name, nlen);
	if (!rc)
		rc = buf_addch(&x->xdata, '\0');
	r.val_off = x->xdata.len;
	r.val_len = vlen;
	if (!rc)
		rc = buf_add(&x->xdata, val, vlen);
	if (!rc)
		rc = buf_add(&x->xrecs, &r, sizeof(r));
	return rc;
}

static int unhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* LIBARCHIVE.xattr.<urlencoded name>=<base64 value> */
static int add_libarchive_xattr(struct tar_parser *p, const char *k, size_t klen,
				const char *v, size_t vlen)
{
	struct buf name = BUF_INIT, val = BUF_INIT;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t i;
	int rc = 0;

	for (i = 0; i < klen && !rc; i++) {
		if (k[i] == '%' && i + 2 < klen && unhex(k[i + 1]) >= 0 &&
		    unhex(k[i + 2]) >= 0) {
			rc = buf_addch(&name, (char)(unhex(k[i + 1]) << 4 |
						     unhex(k[i + 2])));
			i += 2;
		} else {
			rc = buf_addch(&name, k[i]);
		}
	}
	for (i = 0; i < vlen && !rc; i++) {
		int d;

		if (v[i] == '=')
			break;
		d = b64val((unsigned char)v[i]);
		if (d < 0) {
			rc = -EIO;
			break;
		}
		acc = acc << 6 | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			rc = buf_addch(&val, (char)(acc >> bits & 0xff));
		}
	}
	if (!rc)
		rc = add_xattr(p, name.data ? name.data : "", name.len, val.data, val.len);
	buf_release(&name);
	buf_release(&val);
	return rc;
}

static int push_u64(struct ext *x, uint64_t v)
{
	struct buf *b = &x->sp_nums;

	if (b->len / sizeof(v) >= 2 * (size_t)TAR_MAX_SPARSE) {
		x->bound = "TAR_MAX_SPARSE (262144 segments per sparse map)";
		return -E2BIG;
	}
	return buf_add(b, &v, sizeof(v));
}

/* GNU.sparse.map = "off,len,off,len,..." (0.1). */
static int parse_sparse_map01(struct ext *x, const char *v, size_t n)
{
	size_t i = 0;
	int rc = 0;

	buf_reset(&x->sp_nums);
	x->has_sp_map = true;
	if (n == 0)
		return 0;
	while (!rc) {
		size_t j = i;
		uint64_t num;

		while (j < n && v[j] != ',')
			j++;
		rc = parse_dec(v + i, j - i, &num);
		if (!rc)
			rc = push_u64(x, num);
		if (j >= n)
			break;
		i = j + 1;
	}
	if (!rc && (x->sp_nums.len / sizeof(uint64_t)) % 2)
		rc = -EIO;
	return rc;
}

#define KEYIS(lit) (klen == sizeof(lit) - 1 && !memcmp(k, lit, klen))
#define KEYPFX(lit) (klen > sizeof(lit) - 1 && !memcmp(k, lit, sizeof(lit) - 1))

static int pax_key(struct tar_parser *p, const char *k, size_t klen, const char *v,
		   size_t vlen)
{
	struct ext *x = &p->ext;
	uint64_t num;
	int rc;

	if (KEYIS("path"))
		return set_str(x, &x->path, &x->has_path, v, vlen);
	if (KEYIS("linkpath"))
		return set_str(x, &x->linkpath, &x->has_linkpath, v, vlen);
	if (KEYIS("size")) {
		x->has_size = vlen > 0;
		return vlen ? parse_dec(v, vlen, &x->size) : 0;
	}
	if (KEYIS("mtime")) {
		x->has_mtime = vlen > 0;
		return vlen ? parse_pax_time(v, vlen, &x->mtime_sec, &x->mtime_nsec)
			    : 0;
	}
	if (KEYIS("uid") || KEYIS("gid")) {
		bool *has = k[0] == 'u' ? &x->has_uid : &x->has_gid;
		uint64_t *dst = k[0] == 'u' ? &x->uid : &x->gid;

		*has = vlen > 0;
		if (!vlen)
			return 0;
		return parse_dec(v, vlen, dst);
	}
	if (KEYPFX("SCHILY.xattr."))
		return add_xattr(p, k + 13, klen - 13, v, vlen);
	if (KEYPFX("LIBARCHIVE.xattr."))
		return add_libarchive_xattr(p, k + 17, klen - 17, v, vlen);
	if (KEYIS("GNU.sparse.major") || KEYIS("GNU.sparse.minor")) {
		rc = parse_dec(v, vlen, &num);
		if (rc || num > 1000)
			return -EIO;
		if (k[12] == 'a')
			x->sp_major = (int)num;
		else
			x->sp_minor = (int)num;
		return 0;
	}
	if (KEYIS("GNU.sparse.name"))
		return set_str(x, &x->sp_name, &x->has_sp_name, v, vlen);
	if (KEYIS("GNU.sparse.realsize") || KEYIS("GNU.sparse.size")) {
		x->has_sp_realsize = true;
		return parse_dec(v, vlen, &x->sp_realsize);
	}
	if (KEYIS("GNU.sparse.offset") || KEYIS("GNU.sparse.numbytes")) {
		/* 0.0: pairs in record order, offset first. */
		bool is_off = k[11] == 'o';

		if (is_off != ((x->sp_nums.len / sizeof(uint64_t)) % 2 == 0))
			return -EIO;
		x->has_sp_map = true;
		rc = parse_dec(v, vlen, &num);
		return rc ? rc : push_u64(x, num);
	}
	if (KEYIS("GNU.sparse.map"))
		return parse_sparse_map01(x, v, vlen);
	/* atime, ctime, uname, gname, comment, charset, numblocks, ...: unused. */
	return 0;
}

/* Parse the records of an x (apply) or g (validate only) record. */
static int parse_pax(struct tar_parser *p, bool apply)
{
	const char *d = p->rec.data;
	size_t n = p->rec.len, i = 0;

	while (i < n) {
		size_t j = i, reclen = 0, k0, eq;
		int rc;

		while (j < n && d[j] >= '0' && d[j] <= '9' && j - i < 10) {
			reclen = reclen * 10 + (size_t)(d[j] - '0');
			j++;
		}
		if (j == i || j >= n || d[j] != ' ' || reclen <= j - i + 1 ||
		    reclen > n - i || d[i + reclen - 1] != '\n')
			goto bad;
		k0 = j + 1;
		for (eq = k0; eq < i + reclen - 1 && d[eq] != '='; eq++)
			;
		if (eq == k0 || eq >= i + reclen - 1)
			goto bad;
		if (apply) {
			p->ext.bound = NULL;
			rc = pax_key(p, d + k0, eq - k0, d + eq + 1,
				     i + reclen - 1 - (eq + 1));
			if (rc == -E2BIG) {
				log_error("tar: absurd size: PAX record at offset %" PRIu64
					  " exceeds %s",
					  p->hdr_pos, p->ext.bound ? p->ext.bound : "a bound");
				return rc;
			}
			if (rc == -EIO) {
				char key[64];
				size_t kl = eq - k0 < sizeof(key) - 1 ? eq - k0
								      : sizeof(key) - 1;
				char sk[64];

				memcpy(key, d + k0, kl);
				key[kl] = '\0';
				log_error("tar: invalid PAX value for '%s' at offset %" PRIu64,
					  safe(key, sk, sizeof(sk)), p->hdr_pos);
				return rc;
			}
			if (rc)
				return rc;
		}
		i += reclen;
	}
	return 0;
bad:
	log_error("tar: malformed PAX record in header at offset %" PRIu64,
		  p->hdr_pos);
	return -EIO;
}

/* ---- entries ---------------------------------------------------------- */

static bool is_zero_block(const unsigned char *b)
{
	size_t i;

	for (i = 0; i < BLK; i++)
		if (b[i])
			return false;
	return true;
}

static bool checksum_ok(const unsigned char *b)
{
	int64_t want;
	uint64_t usum = 0;
	int64_t ssum = 0;
	size_t i;

	if (parse_num(b + 148, 8, &want))
		return false;
	for (i = 0; i < BLK; i++) {
		unsigned char c = (i >= 148 && i < 156) ? ' ' : b[i];

		usum += c;
		ssum += (signed char)c;
	}
	return (int64_t)usum == want || ssum == want;
}

/* Append a header string field (NUL-terminated or full width). */
static int add_field(struct buf *b, const unsigned char *f, size_t n)
{
	return buf_add(b, f, strnlen((const char *)f, n));
}

static int validate_sparse(struct tar_parser *p)
{
	struct tar_sparse *s = (struct tar_sparse *)p->sparse.data;
	size_t i, n = p->sparse.len / sizeof(*s);
	uint64_t stored = 0, end = 0;

	for (i = 0; i < n; i++) {
		if (s[i].offset < end || s[i].length > TAR_MAX_ENTRY_SIZE ||
		    s[i].offset > p->e.size || s[i].length > p->e.size - s[i].offset)
			goto bad;
		end = s[i].offset + s[i].length;
		s[i].stored = stored;
		stored += s[i].length;
	}
	if (stored != p->e.stored_size)
		goto bad;
	return 0;
bad:
	log_error("tar: invalid sparse map for entry at offset %" PRIu64,
		  p->hdr_pos);
	return -EIO;
}

static int push_sparse(struct tar_parser *p, uint64_t off, uint64_t len)
{
	struct tar_sparse s = { off, len, 0 };

	if (p->sparse.len / sizeof(s) >= TAR_MAX_SPARSE) {
		log_error("tar: absurd size: sparse map of entry at offset %" PRIu64
			  " has too many segments",
			  p->hdr_pos);
		return -E2BIG;
	}
	return buf_add(&p->sparse, &s, sizeof(s));
}

/* Old GNU sparse entries: 12-byte offset, 12-byte numbytes, `n` of them. */
static int gnu_sparse_entries(struct tar_parser *p, const unsigned char *b,
			      size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int64_t off, len;
		int rc;

		if (b[i * 24] == '\0')
			break;
		if (parse_num(b + i * 24, 12, &off) ||
		    parse_num(b + i * 24 + 12, 12, &len) || off < 0 || len < 0) {
			log_error("tar: bad old-GNU sparse entry at offset %" PRIu64,
				  p->hdr_pos);
			return -EIO;
		}
		rc = push_sparse(p, (uint64_t)off, (uint64_t)len);
		if (rc)
			return rc;
	}
	return 0;
}

/* Count what the archive has handed out, the entry in p->e included, against
 * the bounds on one archive. 0 or -E2BIG (logged). */
static int count_entry(struct tar_parser *p)
{
	size_t i;

	if (++p->nentries > TAR_MAX_ENTRIES) {
		log_error("tar: absurd size: more than %u entries (TAR_MAX_ENTRIES) in one archive, "
			  "at offset %" PRIu64,
			  TAR_MAX_ENTRIES, p->hdr_pos);
		return -E2BIG;
	}
	for (i = 0; i < p->e.nxattrs; i++)
		p->xattr_bytes += strlen(p->e.xattrs[i].name) + 1 + p->e.xattrs[i].value_len;
	if (p->xattr_bytes > TAR_MAX_XATTR_LAYER) {
		log_error("tar: absurd size: more than %u bytes of xattrs (TAR_MAX_XATTR_LAYER) in "
			  "one archive, at offset %" PRIu64,
			  TAR_MAX_XATTR_LAYER, p->hdr_pos);
		return -E2BIG;
	}
	return 0;
}

/* qsort_r order of record numbers: by name, then by position. */
static int xrec_cmp(const void *a, const void *b, void *ctx)
{
	const struct xrec *xr = ((const struct xrec *const *)ctx)[0];
	const char *names = ((const char *const *)ctx)[1];
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	int d = strcmp(names + xr[i].name_off, names + xr[j].name_off);

	return d ? d : (i > j) - (i < j);
}

/* A name's first position and the record that wins for it. */
struct xpick {
	uint32_t first, last;
};

static int xpick_cmp(const void *a, const void *b)
{
	uint32_t i = ((const struct xpick *)a)->first, j = ((const struct xpick *)b)->first;

	return (i > j) - (i < j);
}

/*
 * The entry's xattrs from its `nx` records (names and values in `names`):
 * one per name, the last record of a name winning (as extraction
 * overwrites), in the order the names first appear. Sorting keeps this
 * O(n log n): a quadratic scan of TAR_MAX_XATTRS records, entry after
 * entry, was a cheap way for a layer to burn CPU. 0 or -ENOMEM.
 */
static int dedup_xattrs(const char *names, const struct xrec *xr, size_t nx,
			struct tar_xattr *xs, size_t *n)
{
	const void *ctx[2] = { xr, names };
	struct xpick *pick;
	uint32_t *ord;
	size_t i, k = 0;

	*n = 0;
	if (!nx)
		return 0;
	ord = malloc(nx * sizeof(*ord));
	pick = malloc(nx * sizeof(*pick));
	if (!ord || !pick) {
		free(ord);
		free(pick);
		return -ENOMEM;
	}
	for (i = 0; i < nx; i++)
		ord[i] = (uint32_t)i;
	qsort_r(ord, nx, sizeof(*ord), xrec_cmp, ctx);
	for (i = 0; i < nx; i++) {
		pick[k].first = ord[i];
		while (i + 1 < nx &&
		       !strcmp(names + xr[ord[i + 1]].name_off, names + xr[ord[i]].name_off))
			i++;
		pick[k++].last = ord[i];
	}
	qsort(pick, k, sizeof(*pick), xpick_cmp);
	for (i = 0; i < k; i++) {
		const struct xrec *r = &xr[pick[i].last];

		xs[i].name = names + r->name_off;
		xs[i].value = names + r->val_off;
		xs[i].value_len = r->val_len;
	}
	*n = k;
	free(ord);
	free(pick);
	return 0;
}

/* Call back for the assembled entry, then skip its (remaining) data. */
static int emit(struct tar_parser *p, uint64_t data_left)
{
	struct tar_xattr *xs;
	const struct xrec *xr = (const struct xrec *)p->ext.xrecs.data;
	size_t nx = p->ext.xrecs.len / sizeof(*xr), n = 0;
	int rc = 0;

	p->e.data_offset = p->pos;
	if (p->is_sparse) {
		rc = validate_sparse(p);
		if (rc)
			goto out;
	}
	buf_reset(&p->xattrs);
	rc = buf_grow(&p->xattrs, nx * sizeof(*xs));
	if (rc)
		goto out;
	xs = (struct tar_xattr *)p->xattrs.data;
	rc = dedup_xattrs(p->ext.xdata.data, xr, nx, xs, &n);
	if (rc)
		goto out;
	p->e.xattrs = n ? xs : NULL;
	p->e.nxattrs = n;
	if (p->is_sparse) {
		static const struct tar_sparse none;

		p->e.sparse = p->sparse.len ? (const struct tar_sparse *)p->sparse.data
					    : &none;
		p->e.nsparse = p->sparse.len / sizeof(struct tar_sparse);
	} else {
		p->e.sparse = NULL;
		p->e.nsparse = 0;
	}
	p->e.path = buf_cstr(&p->e_path);
	p->e.linkname = buf_cstr(&p->e_link);
	if (!p->skip_entry) {
		rc = count_entry(p);
		if (!rc)
			rc = p->cb(p->ctx, &p->e);
	}
out:
	ext_reset(&p->ext);
	buf_reset(&p->sparse);
	p->remain = data_left + pad512(p->data_total);
	p->st = p->remain ? ST_SKIP : ST_HEADER;
	return rc;
}

static enum tar_type map_type(char t, const char *rawname, size_t rawlen,
			      bool *unknown)
{
	*unknown = false;
	switch (t) {
	case '0':
	case '7':
	case 'S':
		return TAR_REG;
	case '\0':
		return rawlen && rawname[rawlen - 1] == '/' ? TAR_DIR : TAR_REG;
	case '1':
		return TAR_HARDLINK;
	case '2':
		return TAR_SYMLINK;
	case '3':
		return TAR_CHR;
	case '4':
		return TAR_BLK;
	case '5':
	case 'D':
		return TAR_DIR;
	case '6':
		return TAR_FIFO;
	default:
		*unknown = true;
		return TAR_REG;
	}
}

/*
 * An owner id: the PAX record's if there is one, else the header's. One that
 * is no valid uid_t/gid_t (negative, or 2^32 - 1 and above: -1 means "no
 * change" to chown) is shown as TAR_ID_OVERFLOW, as the kernel shows an id
 * it cannot map, never truncated (2^32 would become root).
 */
static uint32_t owner_id(struct tar_parser *p, bool has_pax, uint64_t pax, int64_t hdr,
			 const char *what, const struct buf *raw)
{
	char sn[256];

	if (has_pax ? pax < UINT32_MAX : (hdr >= 0 && hdr < (int64_t)UINT32_MAX))
		return has_pax ? (uint32_t)pax : (uint32_t)hdr;
	SKIP_LOG(p, "tar: entry '%s' at offset %" PRIu64 " has %s %s%" PRIu64
		 ", not a valid id: shown as %u",
		 safe(buf_cstr(raw), sn, sizeof(sn)), p->hdr_pos, what,
		 !has_pax && hdr < 0 ? "-" : "",
		 has_pax ? pax : hdr < 0 ? (uint64_t)0 - (uint64_t)hdr : (uint64_t)hdr,
		 TAR_ID_OVERFLOW);
	return TAR_ID_OVERFLOW;
}

static int do_entry(struct tar_parser *p, bool ustar, bool gnu)
{
	const unsigned char *b = p->blk;
	struct ext *x = &p->ext;
	struct buf raw = BUF_INIT;
	int64_t mode, uid, gid, mtime, size, dmaj = 0, dmin = 0;
	bool unknown, nul, sparse10 = false;
	char tf = (char)b[156];
	char sn[256];
	int rc;

	memset(&p->e, 0, sizeof(p->e));
	p->skip_entry = false;
	p->is_sparse = false;
	buf_reset(&p->e_path);
	buf_reset(&p->e_link);
	buf_reset(&p->sparse);

	if (parse_num(b + 100, 8, &mode) || parse_num(b + 108, 8, &uid) ||
	    parse_num(b + 116, 8, &gid) || parse_num(b + 124, 12, &size) ||
	    parse_num(b + 136, 12, &mtime) ||
	    ((ustar || gnu) && (parse_num(b + 329, 8, &dmaj) ||
				parse_num(b + 337, 8, &dmin)))) {
		log_error("tar: invalid numeric field in header at offset %" PRIu64,
			  p->hdr_pos);
		rc = -EIO;
		goto out;
	}
	if (x->has_size) {
		if (x->size > INT64_MAX) {
			rc = -EFBIG;
			goto absurd;
		}
		size = (int64_t)x->size;
	}
	if (size < 0 || (uint64_t)size > TAR_MAX_ENTRY_SIZE) {
		rc = -EFBIG;
		goto absurd;
	}

	/* The raw name, by precedence: sparse name, GNU L, PAX path, header. */
	if (x->has_sp_name)
		rc = buf_add(&raw, x->sp_name.data, x->sp_name.len);
	else if (x->has_longname)
		rc = buf_add(&raw, x->longname.data, strnlen(x->longname.data, x->longname.len));
	else if (x->has_path)
		rc = buf_add(&raw, x->path.data, x->path.len);
	else {
		rc = 0;
		if (ustar && b[345]) {
			rc = add_field(&raw, b + 345, 155);
			if (!rc)
				rc = buf_addch(&raw, '/');
		}
		if (!rc)
			rc = add_field(&raw, b, 100);
	}
	if (!rc) {
		if (x->has_longlink)
			rc = buf_add(&p->e_link, x->longlink.data,
				     strnlen(x->longlink.data, x->longlink.len));
		else if (x->has_linkpath)
			rc = buf_add(&p->e_link, x->linkpath.data, x->linkpath.len);
		else
			rc = add_field(&p->e_link, b + 157, 100);
	}
	if (rc)
		goto out;
	/* Header fields and GNU records end at their first NUL; a PAX path or
	 * linkpath holding one names no file any file system could hold (Go's
	 * archive/tar refuses the archive): the entry is skipped below. */
	nul = memchr(buf_cstr(&raw), '\0', raw.len) ||
	      memchr(buf_cstr(&p->e_link), '\0', p->e_link.len);
	raw.len = strlen(buf_cstr(&raw));
	p->e_link.len = strlen(buf_cstr(&p->e_link));

	p->e.typeflag = tf;
	p->e.type = map_type(tf, buf_cstr(&raw), raw.len, &unknown);
	/* Only links have a target (tar.h): drop another type's linkname. */
	if (p->e.type != TAR_HARDLINK && p->e.type != TAR_SYMLINK)
		buf_reset(&p->e_link);
	if (unknown)
		SKIP_LOG(p, "tar: entry '%s' at offset %" PRIu64
			 " has unknown type '%c' (0x%02x): treated as a regular file",
			 safe(buf_cstr(&raw), sn, sizeof(sn)), p->hdr_pos,
			 (tf >= 0x20 && tf < 0x7f) ? tf : '?', (unsigned char)tf);
	p->e.mode = (uint32_t)mode & 07777;
	p->e.uid = owner_id(p, x->has_uid, x->uid, uid, "uid", &raw);
	p->e.gid = owner_id(p, x->has_gid, x->gid, gid, "gid", &raw);
	if (x->has_mtime) {
		p->e.mtime_sec = x->mtime_sec;
		p->e.mtime_nsec = x->mtime_nsec;
	} else {
		p->e.mtime_sec = mtime;
	}
	p->e.devmajor = (uint32_t)dmaj;
	p->e.devminor = (uint32_t)dmin;

	switch (p->e.type) {
	case TAR_HARDLINK:
	case TAR_SYMLINK:
	case TAR_CHR:
	case TAR_BLK:
	case TAR_FIFO:
		size = 0;
		break;
	case TAR_DIR:
		if (tf != 'D')
			size = 0;
		break;
	default:
		break;
	}
	p->data_total = (uint64_t)size;
	p->e.size = p->e.type == TAR_REG ? (uint64_t)size : 0;
	p->e.stored_size = p->e.size;

	/* Path checks: escapes are skipped, not fatal. */
	rc = normalize_buf(raw.data ? raw.data : "", raw.len, &p->e_path);
	if (rc == -EPERM) {
		SKIP_LOG(p, "tar: skipping entry '%s' at offset %" PRIu64
			 ": path escapes the root",
			 safe(buf_cstr(&raw), sn, sizeof(sn)), p->hdr_pos);
		p->skip_entry = true;
	} else if (rc) {
		goto out;
	} else if (nul) {
		SKIP_LOG(p, "tar: skipping entry '%s' at offset %" PRIu64
			 ": its PAX path or linkpath holds a NUL byte",
			 safe(buf_cstr(&raw), sn, sizeof(sn)), p->hdr_pos);
		p->skip_entry = true;
	} else if (p->e_path.len == 0 && p->e.type != TAR_DIR) {
		SKIP_LOG(p, "tar: skipping non-directory entry for the root at offset %" PRIu64,
			 p->hdr_pos);
		p->skip_entry = true;
	}
	if (p->e.type == TAR_HARDLINK && !p->skip_entry) {
		struct buf t = BUF_INIT;

		rc = normalize_buf(p->e_link.data ? p->e_link.data : "",
				   p->e_link.len, &t);
		if (rc == -EPERM || (!rc && t.len == 0)) {
			SKIP_LOG(p, "tar: skipping hard link '%s' at offset %" PRIu64
				 ": target escapes the root or is the root",
				 safe(buf_cstr(&p->e_path), sn, sizeof(sn)), p->hdr_pos);
			p->skip_entry = true;
			rc = 0;
		} else if (!rc) {
			buf_reset(&p->e_link);
			rc = buf_add(&p->e_link, t.data, t.len);
		}
		buf_release(&t);
		if (rc)
			goto out;
	}

	/* Sparse files. */
	if (tf == 'S' && gnu) {
		int64_t real;

		p->is_sparse = true;
		rc = gnu_sparse_entries(p, b + 386, 4);
		if (rc)
			goto out;
		if (parse_num(b + 483, 12, &real) || real < 0) {
			log_error("tar: bad old-GNU realsize at offset %" PRIu64, p->hdr_pos);
			rc = -EIO;
			goto out;
		}
		if ((uint64_t)real > TAR_MAX_ENTRY_SIZE) {
			rc = -EFBIG;
			goto absurd;
		}
		p->e.size = (uint64_t)real;
		if (b[482]) {
			p->st = ST_GNU_EXT;
			rc = 0;
			goto out;
		}
	} else if (x->sp_major == 1 && x->sp_minor == 0) {
		sparse10 = true;
	} else if ((x->sp_major == 0 && (x->sp_minor == 0 || x->sp_minor == 1)) ||
		   (x->sp_major < 0 && x->sp_minor < 0 && x->has_sp_map)) {
		const uint64_t *nums = (const uint64_t *)x->sp_nums.data;
		size_t i, nn = x->sp_nums.len / sizeof(uint64_t);

		if (nn % 2) {
			log_error("tar: odd PAX 0.x sparse map at offset %" PRIu64, p->hdr_pos);
			rc = -EIO;
			goto out;
		}
		p->is_sparse = true;
		for (i = 0; i + 1 < nn; i += 2) {
			rc = push_sparse(p, nums[i], nums[i + 1]);
			if (rc)
				goto out;
		}
	}
	if ((p->is_sparse || sparse10) && p->e.type != TAR_REG) {
		log_error("tar: sparse map on a non-file entry at offset %" PRIu64,
			  p->hdr_pos);
		rc = -EIO;
		goto out;
	}
	if ((p->is_sparse || sparse10) && x->has_sp_realsize) {
		if (x->sp_realsize > TAR_MAX_ENTRY_SIZE) {
			rc = -EFBIG;
			goto absurd;
		}
		p->e.size = x->sp_realsize;
	}
	if (sparse10) {
		p->is_sparse = true;
		p->sp_count = -1;
		p->sp_acc = 0;
		p->sp_digits = 0;
		p->sp_have_first = false;
		p->sp_consumed = 0;
		p->st = size ? ST_SPARSE_MAP : ST_HEADER;
		if (!size) {
			log_error("tar: PAX 1.0 sparse entry at offset %" PRIu64
				  " has no room for its map",
				  p->hdr_pos);
			rc = -EIO;
		}
		goto out;
	}
	rc = emit(p, p->data_total);
	goto out;
absurd:
	log_error("tar: absurd size in entry header at offset %" PRIu64,
		  p->hdr_pos);
out:
	buf_release(&raw);
	return rc;
}

/* One PAX 1.0 sparse-map block. */
static int sparse_map_block(struct tar_parser *p)
{
	size_t i;
	int rc;

	p->sp_consumed += BLK;
	if (p->sp_consumed > p->data_total)
		goto bad;
	for (i = 0; i < BLK; i++) {
		char c = (char)p->blk[i];

		if (c >= '0' && c <= '9') {
			if (p->sp_acc > (UINT64_MAX - 9) / 10 || ++p->sp_digits > 20)
				goto bad;
			p->sp_acc = p->sp_acc * 10 + (uint64_t)(c - '0');
			continue;
		}
		if (c != '\n' || p->sp_digits == 0)
			goto bad;
		if (p->sp_count < 0) {
			if (p->sp_acc > TAR_MAX_SPARSE) {
				log_error("tar: absurd size: sparse map of %" PRIu64
					  " segments at offset %" PRIu64,
					  p->sp_acc, p->hdr_pos);
				return -E2BIG;
			}
			p->sp_count = (int64_t)p->sp_acc;
		} else if (!p->sp_have_first) {
			p->sp_first = p->sp_acc;
			p->sp_have_first = true;
		} else {
			rc = push_sparse(p, p->sp_first, p->sp_acc);
			if (rc)
				return rc;
			p->sp_have_first = false;
		}
		p->sp_acc = 0;
		p->sp_digits = 0;
		if ((int64_t)(p->sparse.len / sizeof(struct tar_sparse)) == p->sp_count)
			break;
	}
	if (p->sp_count >= 0 &&
	    (int64_t)(p->sparse.len / sizeof(struct tar_sparse)) == p->sp_count) {
		uint64_t left = p->data_total - p->sp_consumed;

		p->e.stored_size = left;
		/* emit() pads data_total; the map blocks are whole blocks. */
		return emit(p, left);
	}
	return 0;
bad:
	log_error("tar: malformed PAX 1.0 sparse map in entry at offset %" PRIu64,
		  p->hdr_pos);
	return -EIO;
}

static int gnu_ext_block(struct tar_parser *p)
{
	int rc = gnu_sparse_entries(p, p->blk, 21);

	if (rc)
		return rc;
	if (p->blk[504])
		return 0; /* more extension blocks follow */
	return emit(p, p->data_total);
}

static int record_done(struct tar_parser *p)
{
	int rc = 0;

	switch (p->rec_type) {
	case 'L':
		buf_reset(&p->ext.longname);
		rc = buf_add(&p->ext.longname, p->rec.data, p->rec.len);
		p->ext.has_longname = true;
		break;
	case 'K':
		buf_reset(&p->ext.longlink);
		rc = buf_add(&p->ext.longlink, p->rec.data, p->rec.len);
		p->ext.has_longlink = true;
		break;
	case 'x':
		rc = parse_pax(p, true);
		break;
	case 'g':
		rc = parse_pax(p, false);
		if (!rc)
			log_debug("tar: PAX global header at offset %" PRIu64
				  " ignored (as docker does)",
				  p->hdr_pos);
		break;
	}
	buf_reset(&p->rec);
	p->remain = p->rec_pad;
	p->st = p->remain ? ST_SKIP : ST_HEADER;
	return rc;
}

static int header_block(struct tar_parser *p)
{
	const unsigned char *b = p->blk;
	bool ustar, gnu;
	int64_t size;
	char tf;

	p->hdr_pos = p->pos - BLK;
	if (is_zero_block(b)) {
		if (ext_pending(&p->ext)) {
			log_warn("tar: extension records at offset %" PRIu64
				 " are followed by no entry",
				 p->hdr_pos);
			ext_reset(&p->ext);
		}
		p->st = ST_ZERO1;
		return 0;
	}
	if (!checksum_ok(b)) {
		log_error("tar: bad header checksum at offset %" PRIu64
			  " (not a tar archive, or corrupted)",
			  p->hdr_pos);
		return -EIO;
	}
	ustar = !memcmp(b + 257, "ustar\0", 6);
	gnu = !memcmp(b + 257, "ustar  \0", 8);
	tf = (char)b[156];
	switch (tf) {
	case 'L':
	case 'K':
	case 'x':
	case 'g':
		if (parse_num(b + 124, 12, &size) || size < 0) {
			log_error("tar: invalid size of '%c' record at offset %" PRIu64,
				  tf, p->hdr_pos);
			return -EIO;
		}
		if ((uint64_t)size > ((tf == 'L' || tf == 'K') ? TAR_MAX_NAME
							       : TAR_MAX_PAX)) {
			log_error("tar: absurd size %" PRId64 " of '%c' record at offset %" PRIu64,
				  size, tf, p->hdr_pos);
			return -E2BIG;
		}
		p->rec_type = tf;
		buf_reset(&p->rec);
		p->remain = (uint64_t)size;
		p->rec_pad = pad512((uint64_t)size);
		p->st = ST_RECORD;
		return size ? 0 : record_done(p);
	case 'V':
		/* A GNU volume label describes the archive, not a file. */
		if (parse_num(b + 124, 12, &size) || size < 0 ||
		    (uint64_t)size > TAR_MAX_ENTRY_SIZE)
			return -EIO;
		ext_reset(&p->ext);
		p->remain = (uint64_t)size + pad512((uint64_t)size);
		p->st = p->remain ? ST_SKIP : ST_HEADER;
		return 0;
	default:
		return do_entry(p, ustar, gnu);
	}
}

static int block_done(struct tar_parser *p)
{
	p->fill = 0;
	switch (p->st) {
	case ST_HEADER:
		return header_block(p);
	case ST_ZERO1:
		if (is_zero_block(p->blk)) {
			p->st = ST_END;
			return 0;
		}
		log_error("tar: a single zero block followed by data at offset %" PRIu64,
			  p->pos - BLK);
		return -EIO;
	case ST_GNU_EXT:
		return gnu_ext_block(p);
	case ST_SPARSE_MAP:
		return sparse_map_block(p);
	default:
		return -EIO;
	}
}

int tar_parser_feed(struct tar_parser *p, const void *data, size_t len)
{
	const unsigned char *d = data;
	int rc = 0;

	if (p->err)
		return p->err;
	while (len > 0 && !rc) {
		size_t n;

		switch (p->st) {
		case ST_END:
			p->pos += len;
			return 0;
		case ST_SKIP:
			n = p->remain < len ? (size_t)p->remain : len;
			p->remain -= n;
			if (!p->remain)
				p->st = ST_HEADER;
			break;
		case ST_RECORD:
			n = p->remain < len ? (size_t)p->remain : len;
			rc = buf_add(&p->rec, d, n);
			p->remain -= n;
			if (!rc && !p->remain) {
				p->pos += n;
				d += n;
				len -= n;
				rc = record_done(p);
				continue;
			}
			break;
		default:
			n = BLK - p->fill < len ? BLK - p->fill : len;
			memcpy(p->blk + p->fill, d, n);
			p->fill += n;
			if (p->fill == BLK) {
				p->pos += n;
				d += n;
				len -= n;
				rc = block_done(p);
				continue;
			}
			break;
		}
		p->pos += n;
		d += n;
		len -= n;
	}
	if (rc)
		p->err = rc;
	return rc;
}

int tar_parser_finish(struct tar_parser *p)
{
	char sn[256];

	if (p->unlogged) {
		log_warn("tar: %" PRIu64 " more skipped entries or dropped xattrs were not logged",
			 p->unlogged);
		p->unlogged = 0;
	}
	if (p->err)
		return p->err;
	switch (p->st) {
	case ST_END:
	case ST_ZERO1:
		return 0;
	case ST_HEADER:
		if (p->fill == 0) {
			if (ext_pending(&p->ext))
				log_warn("tar: archive ends after extension records with no entry");
			return 0;
		}
		log_error("tar: archive truncated inside the header at offset %" PRIu64,
			  p->pos - p->fill);
		break;
	case ST_SKIP:
		log_error("tar: archive truncated inside entry '%s' (header at offset %" PRIu64
			  "): %" PRIu64 " bytes missing",
			  safe(buf_cstr(&p->e_path), sn, sizeof(sn)), p->hdr_pos,
			  p->remain);
		break;
	case ST_RECORD:
		log_error("tar: archive truncated inside a '%c' record (header at offset %" PRIu64 ")",
			  p->rec_type, p->hdr_pos);
		break;
	default:
		log_error("tar: archive truncated inside the sparse map of the entry at offset %" PRIu64,
			  p->hdr_pos);
		break;
	}
	p->err = -EIO;
	return p->err;
}

uint64_t tar_parser_offset(const struct tar_parser *p)
{
	return p->pos;
}

int tar_parser_new(struct tar_parser **out, tar_entry_cb cb, void *ctx)
{
	struct tar_parser *p;

	*out = NULL;
	if (!cb)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cb = cb;
	p->ctx = ctx;
	p->st = ST_HEADER;
	ext_reset(&p->ext);
	*out = p;
	return 0;
}

void tar_parser_free(struct tar_parser *p)
{
	if (!p)
		return;
	ext_release(&p->ext);
	buf_release(&p->rec);
	buf_release(&p->e_path);
	buf_release(&p->e_link);
	buf_release(&p->sparse);
	buf_release(&p->xattrs);
	free(p);
}

uint64_t tar_sparse_locate(const struct tar_sparse *map, size_t n, uint64_t size,
			   uint64_t off, uint64_t *stored, bool *hole)
{
	size_t lo = 0, hi = n;

	if (off >= size)
		return 0;
	/* First segment whose end is beyond off. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (map[mid].offset + map[mid].length <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && map[lo].offset <= off) {
		*hole = false;
		*stored = map[lo].stored + (off - map[lo].offset);
		return map[lo].offset + map[lo].length - off;
	}
	*hole = true;
	return (lo < n ? map[lo].offset : size) - off;
}
