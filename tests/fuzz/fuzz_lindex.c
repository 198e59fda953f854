/*
 * fuzz_lindex — the layer index file loader (image/lindex.h lindex_parse),
 * which reads the persistent cache: a file anyone with access to the cache
 * directory could have written.
 *
 * Input: an index file. The key it is checked against is taken from its own
 * header (kind, blob digest, blob size), and its checksums are recomputed
 * (the trailing SHA-256 and, for a gzip index, the CRC-32 of the embedded
 * zran index), so mutations reach the decoder instead of stopping at a
 * checksum or at "written for another blob". A rejected file is -EBADMSG
 * with a reason; an accepted one gives a tree that passes the tree checks,
 * files whose data lies inside the uncompressed size, a zran index or a
 * frame table that agree with the sizes, and a tree that merges with
 * itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/digest.h"
#include "image/decomp.h"
#include "image/lindex.h"
#include "image/tree.h"
#include "image/zran.h"
#include "tests/fuzz/fuzz.h"

#define HDR_LEN 80 /* magic, version, kind, digest, csize, usize, nents, elen */

/* Recompute the CRC-32 that ends the zran index inside a gzip index file. */
static void fix_zran_crc(unsigned char *d, size_t len)
{
	uint64_t elen, alen, at;
	uint32_t c;

	if (len < HDR_LEN + 8 + DIGEST_RAW_LEN)
		return;
	elen = fuzz_le64(d + 72);
	if (elen > len - HDR_LEN - 8 - DIGEST_RAW_LEN)
		return;
	at = HDR_LEN + elen;
	alen = fuzz_le64(d + at);
	at += 8;
	if (alen < 4 || alen > len - DIGEST_RAW_LEN - at)
		return;
	c = (uint32_t)crc32(0, d + at, (uInt)(alen - 4));
	d[at + alen - 4] = (unsigned char)c;
	d[at + alen - 3] = (unsigned char)(c >> 8);
	d[at + alen - 2] = (unsigned char)(c >> 16);
	d[at + alen - 1] = (unsigned char)(c >> 24);
}

static void check_content(const struct lindex_key *k, const struct lindex_content *c)
{
	struct tree *two[2], *merged = NULL;
	size_t i;

	FUZZ_CHECK(c->tree);
	fuzz_check_tree(c->tree, false, k->layer, c->usize);
	if (k->kind == DECOMP_GZIP) {
		FUZZ_CHECK(c->zidx && !c->frames);
		FUZZ_CHECK(zran_index_usize(c->zidx) == c->usize);
		FUZZ_CHECK(zran_index_csize(c->zidx) == k->csize);
	} else if (k->kind == DECOMP_ZSTD) {
		FUZZ_CHECK(!c->zidx && c->frames && c->nframes && !c->frames[0].uoff);
		for (i = 0; i < c->nframes; i++) {
			FUZZ_CHECK(c->frames[i].coff < k->csize && c->frames[i].uoff < c->usize);
			FUZZ_CHECK(!i || (c->frames[i].coff > c->frames[i - 1].coff &&
					  c->frames[i].uoff > c->frames[i - 1].uoff));
		}
	} else {
		FUZZ_CHECK(!c->zidx && !c->frames && c->usize == k->csize);
	}
	two[0] = two[1] = c->tree;
	FUZZ_CHECK(tree_merge(&merged, two, 2) == 0);
	fuzz_check_tree(merged, true, k->layer, c->usize);
	tree_free(merged);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lindex_key k = { .layer = 2 };
	struct lindex_content c;
	const char *why = NULL;
	unsigned char *d;
	int rc;

	fuzz_setup();
	d = fuzz_dup(data, size);
	if (size >= HDR_LEN) {
		k.kind = (int)(d[12] | d[13] << 8 | d[14] << 16 | (unsigned)d[15] << 24);
		memcpy(k.digest.raw, d + 16, DIGEST_RAW_LEN);
		k.csize = fuzz_le64(d + 48);
	}
	if (k.kind == DECOMP_GZIP)
		fix_zran_crc(d, size);
	fuzz_fix_sha256(d, size);
	rc = lindex_parse(&k, d, size, &c, &why);
	if (rc) {
		FUZZ_CHECK(rc == -EBADMSG && why && *why);
		FUZZ_CHECK(!c.tree && !c.zidx && !c.frames);
	} else {
		check_content(&k, &c);
		lindex_content_release(&c);
	}
	free(d);
	return 0;
}
