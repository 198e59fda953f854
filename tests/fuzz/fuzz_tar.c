/*
 * fuzz_tar — the tar parser (image/tar.h) and the trees hostile entries turn
 * into (image/tree.h: tree_add, tree_merge).
 *
 * Input: one or more tars, the layers of an image bottom first, separated by
 * FUZZ_LAYER_SEP (at most MAX_LAYERS). For each layer:
 *   - parse it fed at once and again fed in irregular chunks (1 byte to
 *     4 KiB): a stream parser must report the same entries and the same
 *     result however its input is cut;
 *   - check every entry against tar.h (normalised paths, header-only types
 *     without data, sparse maps, xattrs, data offsets in stream order);
 *   - add the entries to a layer tree and check the tree;
 *   - when the layer parsed cleanly (every entry's data inside the input),
 *     round-trip its entries through a layer index file (lindex_entry_encode,
 *     lindex_build, lindex_parse) and require the same tree.
 * Then merge the layer trees (whiteouts, opaque markers, replacements),
 * check the rootfs, save it as a rootfs file (lindex_rootfs_build) and
 * require the file to restore the same tree (lindex_rootfs_parse): whatever
 * a merge builds, the next mount can read back.
 *
 * The custom mutator repairs the header checksums of libFuzzer's mutations
 * (15 times in 16), or nearly every mutated header would be rejected before
 * anything interesting is parsed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/blockhash.h"
#include "image/decomp.h"
#include "image/lindex.h"
#include "image/tar.h"
#include "image/tree.h"
#include "tests/fuzz/fuzz.h"

#define MAX_LAYERS 4
#define BLK 512u

struct pass {
	struct tree *tree; /* first pass: entries go into it; else NULL */
	unsigned index;    /* layer index */
	uint64_t h;        /* hash of the entries */
	size_t n;          /* number of entries */
	uint64_t last_off; /* data_offset of the previous entry */
	uint64_t data_end; /* largest data_offset + stored_size */
	struct buf ents;   /* first pass: the entries, lindex-encoded */
};

static bool is_normalised(const char *path)
{
	size_t n = strlen(path);
	char *tmp = malloc(n + 1);
	int rc;

	if (!tmp)
		abort();
	rc = tar_path_normalize(path, n, tmp, n + 1);
	rc = rc == (int)n && !memcmp(tmp, path, n);
	free(tmp);
	return rc;
}

static void check_entry(const struct pass *ps, const struct tar_entry *e)
{
	size_t i, j;

	FUZZ_CHECK(e->path && e->linkname);
	FUZZ_CHECK(e->type <= TAR_FIFO);
	FUZZ_CHECK(is_normalised(e->path));
	FUZZ_CHECK(*e->path || e->type == TAR_DIR);
	FUZZ_CHECK(e->mode <= 07777);
	if (e->type == TAR_HARDLINK)
		FUZZ_CHECK(*e->linkname && is_normalised(e->linkname));
	else if (e->type != TAR_SYMLINK)
		FUZZ_CHECK(!*e->linkname);
	FUZZ_CHECK(e->size <= TAR_MAX_ENTRY_SIZE);
	if (e->type != TAR_REG)
		FUZZ_CHECK(!e->size && !e->stored_size && !e->sparse);
	if (e->sparse)
		fuzz_check_sparse(e->sparse, e->nsparse, e->size, e->stored_size);
	else
		FUZZ_CHECK(e->stored_size == e->size);
	FUZZ_CHECK(e->data_offset >= BLK && e->data_offset % BLK == 0);
	FUZZ_CHECK(e->data_offset > ps->last_off);
	FUZZ_CHECK(e->nxattrs <= TAR_MAX_XATTRS && (e->nxattrs == 0) == !e->xattrs);
	for (i = 0; i < e->nxattrs; i++) {
		FUZZ_CHECK(e->xattrs[i].name && *e->xattrs[i].name);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(e->xattrs[i].name, e->xattrs[j].name));
	}
}

static uint64_t hash_entry(uint64_t h, const struct tar_entry *e)
{
	uint64_t v[] = { e->type,	  (unsigned char)e->typeflag,
			 e->mode,	  (uint64_t)e->uid << 32 | e->gid,
			 (uint64_t)e->mtime_sec, e->mtime_nsec,
			 e->size,	  e->data_offset,
			 e->stored_size,  (uint64_t)e->devmajor << 32 | e->devminor,
			 e->nxattrs,	  e->sparse ? e->nsparse + 1 : 0 };
	size_t i;

	h = fuzz_hash(h, v, sizeof(v));
	h = fuzz_hash(h, e->path, strlen(e->path) + 1);
	h = fuzz_hash(h, e->linkname, strlen(e->linkname) + 1);
	for (i = 0; i < e->nxattrs; i++) {
		h = fuzz_hash(h, e->xattrs[i].name, strlen(e->xattrs[i].name) + 1);
		h = fuzz_hash(h, e->xattrs[i].value, e->xattrs[i].value_len);
	}
	for (i = 0; e->sparse && i < e->nsparse; i++)
		h = fuzz_hash(h, &e->sparse[i], sizeof(e->sparse[i]));
	return h;
}

static int on_entry(void *ctx, const struct tar_entry *e)
{
	struct pass *ps = ctx;

	check_entry(ps, e);
	ps->last_off = e->data_offset;
	if (e->data_offset + e->stored_size > ps->data_end)
		ps->data_end = e->data_offset + e->stored_size;
	ps->h = hash_entry(ps->h, e);
	ps->n++;
	if (ps->tree) {
		FUZZ_CHECK(lindex_entry_encode(&ps->ents, e) == 0);
		FUZZ_CHECK(tree_add(ps->tree, e, ps->index) == 0);
	}
	return 0;
}

/* Chunk sizes around the block size and far from it. */
static size_t next_chunk(uint64_t *x)
{
	static const size_t sizes[] = { 1, 2, 3, 100, 511, 512, 513, 1000, 4096 };

	*x = *x * 6364136223846793005ull + 1442695040888963407ull;
	return sizes[(*x >> 33) % (sizeof(sizes) / sizeof(sizes[0]))];
}

/* Parse one layer, at once or in chunks. The parser's result. */
static int parse(const uint8_t *d, size_t n, struct pass *ps, bool chunked)
{
	struct tar_parser *p = NULL;
	uint64_t x = n;
	size_t off = 0;
	int rc = 0, frc;

	FUZZ_CHECK(tar_parser_new(&p, on_entry, ps) == 0);
	if (!chunked) {
		rc = tar_parser_feed(p, d, n);
	} else {
		while (!rc && off < n) {
			size_t k = next_chunk(&x);

			if (k > n - off)
				k = n - off;
			rc = tar_parser_feed(p, d + off, k);
			off += k;
		}
	}
	if (rc)
		FUZZ_CHECK(tar_parser_feed(p, "x", 1) == rc); /* sticky */
	frc = tar_parser_finish(p);
	if (rc)
		FUZZ_CHECK(frc == rc);
	else if (!frc)
		FUZZ_CHECK(tar_parser_offset(p) == n);
	tar_parser_free(p);
	rc = rc ? rc : frc;
	FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -E2BIG || rc == -EFBIG);
	return rc;
}

/* Entries → index file → tree: the same tree as from the tar `data`. */
static void roundtrip(const struct pass *ps, const uint8_t *data, size_t n, uint64_t tree_hash)
{
	struct lindex_key k = { .kind = DECOMP_TAR, .csize = n, .layer = ps->index };
	struct lindex_content c = { .usize = n }, o;
	struct blockhash *bh = NULL;
	struct buf file = BUF_INIT;
	const char *why = NULL;

	/* The sums layer.c records of an uncompressed layer: its blob's blocks. */
	FUZZ_CHECK(blockhash_new(&bh, BLOCKHASH_MIN, false) == 0);
	FUZZ_CHECK(blockhash_feed(bh, data, n) == 0);
	FUZZ_CHECK(blockhash_finish(bh, &c.cblocks) == 0);
	blockhash_free(bh);
	FUZZ_CHECK(lindex_build(&k, &c, &ps->ents, ps->n, &file) == 0);
	blocksums_release(&c.cblocks);
	if (lindex_parse(&k, file.data, file.len, &o, &why))
		fuzz_fail(__FILE__, __LINE__, why ? why : "lindex_parse failed");
	FUZZ_CHECK(fuzz_check_tree(o.tree, false, ps->index, n) == tree_hash);
	lindex_content_release(&o);
	buf_release(&file);
}

/* Merged tree `m` of `nl` layers (fuzz_check_tree hash `h`) saved as a
 * rootfs file and read back: the same tree. */
static void rootfs_roundtrip(const struct tree *m, size_t nl, uint64_t h)
{
	struct digest key = { { 1 } };
	struct buf file = BUF_INIT;
	struct tree *r = NULL;
	const char *why = NULL;

	FUZZ_CHECK(lindex_rootfs_build(&key, nl, m, &file) == 0);
	if (lindex_rootfs_parse(&key, nl, file.data, file.len, &r, &why))
		fuzz_fail(__FILE__, __LINE__, why ? why : "lindex_rootfs_parse failed");
	FUZZ_CHECK(fuzz_check_tree(r, true, (unsigned)(nl - 1), UINT64_MAX) == h);
	tree_free(r);
	buf_release(&file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[MAX_LAYERS];
	struct tree *trees[MAX_LAYERS] = { NULL }, *merged = NULL;
	size_t nl, i;

	fuzz_setup();
	nl = fuzz_split_layers(data, size, parts, MAX_LAYERS);
	for (i = 0; i < nl; i++) {
		struct pass a = { .index = (unsigned)i, .h = FUZZ_HASH_INIT };
		struct pass b = { .index = (unsigned)i, .h = FUZZ_HASH_INIT };
		uint64_t th;
		int rca, rcb;

		FUZZ_CHECK(tree_new(&trees[i]) == 0);
		a.tree = trees[i];
		rca = parse(parts[i].p, parts[i].n, &a, false);
		rcb = parse(parts[i].p, parts[i].n, &b, true);
		FUZZ_CHECK(rca == rcb && a.n == b.n && a.h == b.h);
		th = fuzz_check_tree(trees[i], false, (unsigned)i,
				     rca ? UINT64_MAX : parts[i].n);
		if (!rca) {
			FUZZ_CHECK(a.data_end <= parts[i].n);
			roundtrip(&a, parts[i].p, parts[i].n, th);
		}
		buf_release(&a.ents);
	}
	FUZZ_CHECK(tree_merge(&merged, trees, nl) == 0);
	rootfs_roundtrip(merged, nl, fuzz_check_tree(merged, true, (unsigned)(nl - 1), UINT64_MAX));
	tree_free(merged);
	for (i = 0; i < nl; i++)
		tree_free(trees[i]);
	return 0;
}

/* ---- the custom mutator: repair header checksums ------------------------ */

static uint64_t header_size(const uint8_t *b)
{
	const uint8_t *f = b + 124;
	uint64_t x = 0;
	size_t i;

	if (f[0] & 0x80) {
		for (i = 4; i < 12; i++) /* base-256: the low 8 bytes are enough */
			x = x << 8 | f[i];
		return x;
	}
	for (i = 0; i < 12 && (f[i] == ' ' || f[i] == '\0'); i++)
		;
	for (; i < 12 && f[i] >= '0' && f[i] <= '7'; i++)
		x = x << 3 | (uint64_t)(f[i] - '0');
	return x;
}

static void set_checksum(uint8_t *b)
{
	unsigned sum = 0;
	size_t i;

	memset(b + 148, ' ', 8);
	for (i = 0; i < BLK; i++)
		sum += b[i];
	snprintf((char *)b + 148, 7, "%06o", sum & 0777777);
	b[155] = ' ';
}

/* Walk the headers of one tar as well as a naive reader can. */
static void fix_layer(uint8_t *d, size_t n)
{
	size_t off = 0;

	while (n - off >= BLK) {
		uint8_t *b = d + off;
		uint64_t size, blocks;
		size_t i;

		for (i = 0; i < BLK && !b[i]; i++)
			;
		off += BLK;
		if (i == BLK)
			continue;
		set_checksum(b);
		size = header_size(b);
		if (b[156] && strchr("123456", b[156]))
			size = 0;
		if (b[156] == 'S' && b[482]) { /* old-GNU sparse extension blocks */
			bool more = true;

			while (more && n - off >= BLK) {
				more = d[off + 504] != 0;
				off += BLK;
			}
		}
		blocks = size / BLK + (size % BLK != 0);
		if (blocks > (n - off) / BLK)
			break;
		off += (size_t)blocks * BLK;
	}
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	struct fuzz_part parts[MAX_LAYERS];
	size_t nl, i;

	size = LLVMFuzzerMutate(data, size, max_size);
	if (seed % 16 == 0)
		return size;
	nl = fuzz_split_layers(data, size, parts, MAX_LAYERS);
	for (i = 0; i < nl; i++)
		fix_layer((uint8_t *)parts[i].p, parts[i].n);
	return size;
}
