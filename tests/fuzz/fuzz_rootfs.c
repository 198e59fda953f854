/*
 * fuzz_rootfs — the rootfs file loader (image/lindex.h lindex_rootfs_parse),
 * which reads the persistent cache: a file anyone with access to the cache
 * directory could have written.
 *
 * Input: a rootfs file. The key and layer count it is checked against are
 * taken from its own header and its checksum is recomputed, so mutations
 * reach the decoder instead of stopping at "checksum mismatch" or "written
 * for other layers". A rejected file is -EBADMSG (or -E2BIG: a bound) with
 * a reason; an accepted one gives a tree that passes the tree checks as a
 * merged tree (every node reachable, plain names, no whiteout names, layers
 * below the count), that can be saved again, and whose file restores the
 * same tree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "image/lindex.h"
#include "image/tree.h"
#include "tests/fuzz/fuzz.h"

#define HDR_LEN 80 /* magic, version, zero, key, nlayers, nnodes, ndents, body_len */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct digest key = { { 0 } };
	struct buf again = BUF_INIT;
	struct tree *t = NULL, *t2 = NULL;
	const char *why = NULL;
	uint64_t nlayers = 1, h;
	unsigned char *d;
	int rc;

	fuzz_setup();
	d = fuzz_dup(data, size);
	if (size >= HDR_LEN) {
		memcpy(key.raw, d + 16, DIGEST_RAW_LEN);
		nlayers = fuzz_le64(d + 48);
	}
	/* A layer count past what a manifest holds only makes the check
	 * below loose. */
	if (nlayers == 0 || nlayers > 4096)
		nlayers = 1;
	fuzz_fix_sha256(d, size);
	rc = lindex_rootfs_parse(&key, (size_t)nlayers, d, size, &t, &why);
	if (rc) {
		FUZZ_CHECK((rc == -EBADMSG && why && *why) || rc == -E2BIG);
		FUZZ_CHECK(!t);
	} else {
		h = fuzz_check_tree(t, true, (unsigned)(nlayers - 1), UINT64_MAX);
		FUZZ_CHECK(lindex_rootfs_build(&key, (size_t)nlayers, t, &again) == 0);
		FUZZ_CHECK(lindex_rootfs_parse(&key, (size_t)nlayers, again.data, again.len, &t2,
					       &why) == 0);
		FUZZ_CHECK(fuzz_check_tree(t2, true, (unsigned)(nlayers - 1), UINT64_MAX) == h);
		tree_free(t2);
		tree_free(t);
	}
	buf_release(&again);
	free(d);
	return 0;
}
