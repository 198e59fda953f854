/*
 * mkindex — write index files with the real code, as seeds for the lindex
 * and zran fuzz targets (tests/fuzz/mkseeds.py runs it).
 *
 *   mkindex layer MEDIA_TYPE BLOB OUT
 *       Load the layer blob BLOB (tar, tar+gzip or tar+zstd, by MEDIA_TYPE)
 *       through image/layer.c with a scratch cache directory and copy the
 *       layer index file it stored there to OUT (gzip: one access point
 *       every FUZZ_ZRAN_SPAN bytes).
 *   mkindex zran N OUT
 *       Write the zran index (zran_index_save) of fuzz_gzip_sample(N), the
 *       gzip the zran target reads through.
 *   mkindex rootfs TARS OUT
 *       Merge the layers of TARS (tar files separated by FUZZ_LAYER_SEP, the
 *       bottom first) and write the rootfs file of the merged tree (key:
 *       the SHA-256 of TARS), as the seed of the rootfs target.
 *
 * Exit status 0, or 1 with a message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "image/layer.h"
#include "image/lindex.h"
#include "image/pcache.h"
#include "image/zran.h"
#include "tests/fuzz/fuzz.h"
#include "tests/unit/layerw.h"

static int write_file(const char *path, const struct buf *b)
{
	FILE *f = fopen(path, "wb");
	int rc = 0;

	if (!f)
		return -errno;
	if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
		rc = -EIO;
	if (fclose(f) && !rc)
		rc = -EIO;
	return rc;
}

static int cmd_layer(const char *media_type, const char *blob, const char *out)
{
	struct buf data = BUF_INIT, idx = BUF_INIT;
	struct tsrc src = { 0 };
	struct blob_source bs;
	struct pcache *pc = NULL;
	struct layer *l = NULL;
	struct digest d;
	char *dir = tmpdir_new();
	int rc;

	rc = fuzz_read_file(blob, &data);
	if (rc)
		goto out;
	d = tsrc_add(&src, &data, NULL);
	bs = tsrc_source(&src);
	rc = pcache_open(&pc, dir, 0);
	if (!rc)
		rc = layer_new_src(&l, &bs, media_type, &d, data.len, 0, pc, FUZZ_ZRAN_SPAN);
	if (!rc)
		rc = layer_load(l);
	if (!rc)
		rc = pcache_index_load(pc, &d, &idx);
	if (!rc)
		rc = write_file(out, &idx);
out:
	layer_free(l);
	pcache_free(pc);
	rm_rf(dir);
	free(dir);
	buf_release(&data);
	buf_release(&idx);
	return rc;
}

static int cmd_zran(unsigned which, const char *out)
{
	struct buf gz = BUF_INIT, idx = BUF_INIT;
	struct zran_builder *b = NULL;
	struct zran_index *x = NULL;
	int rc;

	if (which >= FUZZ_GZIP_SAMPLES)
		return -EINVAL;
	fuzz_gzip_sample(which, &gz, NULL);
	rc = zran_builder_new(&b, FUZZ_ZRAN_SPAN);
	if (!rc)
		rc = zran_builder_feed(b, gz.data, gz.len, NULL, NULL);
	if (!rc)
		rc = zran_builder_finish(b, &x);
	if (!rc)
		rc = zran_index_save(x, &idx);
	if (!rc)
		rc = write_file(out, &idx);
	zran_index_free(x);
	zran_builder_free(b);
	buf_release(&gz);
	buf_release(&idx);
	return rc;
}

static int cmd_rootfs(const char *tars, const char *out)
{
	struct fuzz_part parts[16];
	struct tree *t[16] = { NULL }, *m = NULL;
	struct buf data = BUF_INIT, file = BUF_INIT;
	struct digest key;
	size_t n = 0, i;
	int rc;

	rc = fuzz_read_file(tars, &data);
	if (!rc)
		rc = digest_of_buf(&key, data.data, data.len);
	if (!rc)
		n = fuzz_split_layers((const uint8_t *)data.data, data.len, parts, 16);
	for (i = 0; !rc && i < n; i++) {
		struct tree_tar_ctx c;
		struct tar_parser *p = NULL;

		rc = tree_new(&t[i]);
		c.tree = t[i];
		c.layer_index = (unsigned)i;
		if (!rc)
			rc = tar_parser_new(&p, tree_tar_cb, &c);
		if (!rc)
			rc = tar_parser_feed(p, parts[i].p, parts[i].n);
		if (!rc)
			rc = tar_parser_finish(p);
		tar_parser_free(p);
	}
	if (!rc)
		rc = tree_merge(&m, t, n);
	if (!rc)
		rc = lindex_rootfs_build(&key, n, m, &file);
	if (!rc)
		rc = write_file(out, &file);
	tree_free(m);
	for (i = 0; i < n; i++)
		tree_free(t[i]);
	buf_release(&data);
	buf_release(&file);
	return rc;
}

int main(int argc, char **argv)
{
	int rc;

	log_init(LOG_LVL_WARN, false);
	if (argc == 5 && !strcmp(argv[1], "layer")) {
		rc = cmd_layer(argv[2], argv[3], argv[4]);
	} else if (argc == 4 && !strcmp(argv[1], "zran")) {
		rc = cmd_zran((unsigned)atoi(argv[2]), argv[3]);
	} else if (argc == 4 && !strcmp(argv[1], "rootfs")) {
		rc = cmd_rootfs(argv[2], argv[3]);
	} else {
		fprintf(stderr, "usage: mkindex layer MEDIA_TYPE BLOB OUT\n"
				"       mkindex zran N OUT\n"
				"       mkindex rootfs TARS OUT\n");
		return 1;
	}
	if (rc)
		fprintf(stderr, "mkindex %s: %s\n", argv[1], strerror(-rc));
	return rc ? 1 : 0;
}
