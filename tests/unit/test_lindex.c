/*
 * lindex: a layer's tree rebuilt from its index file (a remount) is the tree
 * the load from the blob built, node ids and readdir order included: inode
 * numbers are made of node ids, so a rebuild must give the same ones. The
 * tar mixes what the tree builder shortcuts must get right: entries coming
 * back to a directory seen earlier, a directory replaced by a file and by a
 * directory again while later entries still name paths below it, hard
 * links, implicit parents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>

#include "image/blockhash.h"
#include "image/decomp.h"
#include "image/layer.h"
#include "image/lindex.h"
#include "image/pcache.h"
#include "image/tar.h"
#include "layerw.h"

#define MT_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_GZ "application/vnd.oci.image.layer.v1.tar+gzip"

/* The SHA-256 of dump_ids() of make_tar()'s tree as acrfs built it before
 * issue 12's rework of the tree's memory and merge (commit ffb07bc): the
 * ids must not change from one version to the next. */
#define GOLDEN_DUMP "sha256:bdb3ce08e0f715030940ae603d64eb9726cd0691e31e9f3eca0fc37cbe9f5df2"

/* "path id nlink mode size offset" per node, readdir order, depth first. */
static void dump_ids(const struct tree *t, const struct tree_node *dir, const char *prefix,
		     struct buf *out)
{
	uint64_t cookie = 0;
	const struct tree_node *c;
	const char *name;

	while (tree_readdir(t, dir, &cookie, &name, &c)) {
		const struct tree_attr *a = tree_node_attr(c);
		char path[4096];

		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", name);
		tw_must(buf_addf(out, "%s %" PRIu64 " %u %o %" PRIu64 " %" PRIu64 "\n", path,
				 a->id, a->nlink, a->mode, a->size, a->data_offset));
		if ((a->mode & 0170000) == 0040000)
			dump_ids(t, c, path, out);
	}
}

static void make_tar(struct buf *b)
{
	char p[64];
	int i;

	tw_simple(b, "usr/", '5', "");
	tw_file(b, "usr/bin/ls", "ls");
	tw_file(b, "usr/lib/x/libx.so", "x");
	tw_file(b, "usr/bin/cat", "cat");   /* back to usr/bin */
	tw_simple(b, "usr/bin/dog", '1', "usr/bin/cat");
	tw_simple(b, "usr/bin/sh", '2', "dash");
	tw_file(b, "a/b/f1", "1");
	tw_file(b, "a/b", "now a file"); /* a/b and a/b/f1 go */
	tw_file(b, "a/b/f2", "2");       /* below a file: skipped */
	tw_simple(b, "a/b/", '5', "");   /* a directory again */
	tw_file(b, "a/b/f3", "3");
	tw_file(b, "usr/lib/x/liby.so", "y");
	tw_simple(b, "usr/lib/x/../x/libz.so", '0', ""); /* unnormalised */
	tw_file(b, "usr/bin/ls", "ls2"); /* replaced */
	tw_file(b, ".wh.gone", "");
	for (i = 0; i < 300; i++) {
		snprintf(p, sizeof(p), "many/d%d/f%d", i % 7, i);
		tw_file(b, p, "m");
	}
	tw_end(b);
}

/* The tree the tar parser and tree_add build directly. */
static struct tree *tree_of_tar(const struct buf *tar, unsigned layer)
{
	struct tree_tar_ctx ctx = { NULL, layer };
	struct tar_parser *p;

	assert_int_equal(tree_new(&ctx.tree), 0);
	assert_int_equal(tar_parser_new(&p, tree_tar_cb, &ctx), 0);
	assert_int_equal(tar_parser_feed(p, tar->data, tar->len), 0);
	assert_int_equal(tar_parser_finish(p), 0);
	tar_parser_free(p);
	return ctx.tree;
}

static void stream_vs_index(const char *mt, bool gzip)
{
	struct buf tar = BUF_INIT, blob = BUF_INIT, d0 = BUF_INIT, d1 = BUF_INIT, d2 = BUF_INIT;
	struct tsrc s = { 0 };
	struct blob_source src;
	struct pcache *pc;
	struct layer *l1, *l2;
	struct layer_stats st;
	struct tree *direct;
	struct digest d;
	char *dir = tmpdir_new();

	make_tar(&tar);
	if (gzip)
		gzip_buf(&tar, &blob);
	else
		tw_must(buf_add(&blob, tar.data, tar.len));
	d = tsrc_add(&s, &blob, NULL);
	src = tsrc_source(&s);
	assert_int_equal(pcache_open(&pc, dir, 0), 0);
	assert_int_equal(layer_new_src(&l1, &src, mt, &d, blob.len, 2, pc, 1u << 20), 0);
	assert_int_equal(layer_load(l1), 0);
	layer_stats(l1, &st);
	assert_int_equal(st.loads_blob, 1);
	/* A remount: a new layer object reads the index file. */
	assert_int_equal(layer_new_src(&l2, &src, mt, &d, blob.len, 2, pc, 1u << 20), 0);
	assert_int_equal(layer_load(l2), 0);
	layer_stats(l2, &st);
	assert_int_equal(st.loads_index, 1);

	direct = tree_of_tar(&tar, 2);
	dump_ids(direct, tree_root(direct), "", &d0);
	dump_ids(layer_tree(l1), tree_root(layer_tree(l1)), "", &d1);
	dump_ids(layer_tree(l2), tree_root(layer_tree(l2)), "", &d2);
	assert_string_equal(d1.data, d2.data);
	assert_string_equal(d0.data, d1.data);
	{
		char hex[DIGEST_STR_SIZE];
		struct digest sum;

		assert_int_equal(digest_of_buf(&sum, d1.data, d1.len), 0);
		assert_string_equal(digest_format(&sum, hex), GOLDEN_DUMP);
	}
	assert_int_equal(tree_node_count(layer_tree(l1)), tree_node_count(layer_tree(l2)));
	/* What the tar says, whatever shortcut the builder takes. */
	assert_null(tree_lookup_path(layer_tree(l2), "a/b/f1"));
	assert_null(tree_lookup_path(layer_tree(l2), "a/b/f2"));
	assert_non_null(tree_lookup_path(layer_tree(l2), "a/b/f3"));
	assert_non_null(tree_lookup_path(layer_tree(l2), "usr/lib/x/libz.so"));
	assert_non_null(tree_lookup_path(layer_tree(l2), "many/d6/f293"));
	assert_int_equal(tree_node_attr(tree_lookup_path(layer_tree(l2), "usr/bin/dog"))->nlink, 2);

	tree_free(direct);
	layer_free(l2);
	layer_free(l1);
	pcache_free(pc);
	rm_rf(dir);
	free(dir);
	buf_release(&tar);
	buf_release(&blob);
	buf_release(&d0);
	buf_release(&d1);
	buf_release(&d2);
}

static void test_ids_tar(void **state)
{
	(void)state;
	stream_vs_index(MT_TAR, false);
}

static void test_ids_gzip(void **state)
{
	(void)state;
	stream_vs_index(MT_GZ, true);
}

/*
 * An index file big enough for its checksum to be checked on a thread of
 * its own, beside the decoding: a whole file builds the tree of its
 * entries; any flipped byte, including ones that also break the decoding
 * (the version, an entry) and the checksum itself, is a checksum mismatch,
 * and nothing is returned.
 */
static void test_big_file_checksum(void **state)
{
	struct buf ents = BUF_INIT, file = BUF_INIT, blob = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
	struct lindex_content c = { 0 }, o;
	struct lindex_key k = { DECOMP_TAR, { { 0 } }, 0, 4 };
	struct blockhash *bh;
	struct tree *direct;
	const char *why = NULL;
	size_t flips[] = { 8, 100, 0, 0, 0 };
	char path[200];
	uint64_t n = 0;
	size_t i;

	(void)state;
	assert_int_equal(tree_new(&direct), 0);
	for (i = 0; i < 12000; i++) {
		struct tar_entry e;

		memset(&e, 0, sizeof(e));
		snprintf(path, sizeof(path),
			 "dir%03zu/a-rather-long-file-name-so-that-the-index-grows-past-one-mebibyte-%zu",
			 i % 97, i);
		e.path = path;
		e.linkname = "";
		e.type = TAR_REG;
		e.mode = 0644;
		e.size = e.stored_size = i;
		e.data_offset = 512;
		tw_must(lindex_entry_encode(&ents, &e));
		assert_int_equal(tree_add(direct, &e, 4), 0);
		n++;
	}
	/* The blob: a tar whose every file starts at 512 (sizes only checked
	 * against usize). */
	tw_must(buf_grow(&blob, 16384));
	memset(blob.data, 0, 16384);
	blob.len = 16384;
	assert_int_equal(digest_of_buf(&k.digest, blob.data, blob.len), 0);
	k.csize = blob.len;
	c.usize = blob.len;
	assert_int_equal(blockhash_new(&bh, BLOCKHASH_MIN, false), 0);
	assert_int_equal(blockhash_feed(bh, blob.data, blob.len), 0);
	assert_int_equal(blockhash_finish(bh, &c.cblocks), 0);
	blockhash_free(bh);
	assert_int_equal(lindex_build(&k, &c, &ents, n, &file), 0);
	assert_true(file.len > (1u << 20));

	assert_int_equal(lindex_parse(&k, file.data, file.len, &o, &why), 0);
	dump_ids(direct, tree_root(direct), "", &a);
	dump_ids(o.tree, tree_root(o.tree), "", &b);
	assert_string_equal(a.data, b.data);
	lindex_content_release(&o);

	flips[2] = file.len / 2;          /* in the entries */
	flips[3] = file.len - 40;         /* in the block sums */
	flips[4] = file.len - 1;          /* the checksum */
	for (i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		file.data[flips[i]] ^= 0x20;
		why = NULL;
		assert_int_equal(lindex_parse(&k, file.data, file.len, &o, &why), -EBADMSG);
		assert_string_equal(why, "checksum mismatch");
		assert_null(o.tree);
		file.data[flips[i]] ^= 0x20;
	}
	tree_free(direct);
	blocksums_release(&c.cblocks);
	buf_release(&ents);
	buf_release(&file);
	buf_release(&blob);
	buf_release(&a);
	buf_release(&b);
}

/* ---- the rootfs file, written by hand ---------------------------------- */

/* A node of a hand-made rootfs file: flags (0 removed, 1 live, 3 live and
 * implicit), its layer, type and, for a symlink, its target. */
struct rnode {
	unsigned flags, layer;
	enum tar_type type;
	const char *link;
};

/* A name: its directory's and node's ids (parent 0: a removed name). */
struct rdent {
	uint64_t parent, node;
	const char *name;
};

static void put_v(struct buf *b, uint64_t v)
{
	do {
		tw_must(buf_addch(b, (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0))));
		v >>= 7;
	} while (v);
}

static void put_le(struct buf *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		tw_must(buf_addch(b, (char)(v >> (8 * i))));
}

static const struct digest rkey = { { 0x5a } };

/* The rootfs file of nodes n[nn] and names d[nd] (image/lindex.c's layout),
 * `extra` bytes of garbage after the body, the checksum right. */
static void rfs_make(struct buf *out, uint64_t nlayers, const struct rnode *n, size_t nn,
		     const struct rdent *d, size_t nd, size_t extra)
{
	struct buf body = BUF_INIT;
	struct digest sum;
	size_t i;

	for (i = 0; i < nn; i++) {
		struct tar_entry e;

		tw_must(buf_addch(&body, (char)n[i].flags));
		if (!n[i].flags)
			continue;
		memset(&e, 0, sizeof(e));
		e.path = "";
		e.linkname = n[i].link ? n[i].link : "";
		e.type = n[i].type;
		e.mode = 0644;
		put_v(&body, n[i].layer);
		tw_must(lindex_entry_encode(&body, &e));
	}
	for (i = 0; i < nd; i++) {
		put_v(&body, d[i].parent);
		if (!d[i].parent)
			continue;
		put_v(&body, d[i].node);
		put_v(&body, strlen(d[i].name));
		tw_must(buf_adds(&body, d[i].name));
	}
	for (i = 0; i < extra; i++)
		tw_must(buf_addch(&body, 'x'));
	buf_reset(out);
	tw_must(buf_add(out, "ACRFSRFS\1\0\0\0\0\0\0\0", 16));
	tw_must(buf_add(out, rkey.raw, DIGEST_RAW_LEN));
	put_le(out, nlayers);
	put_le(out, nn);
	put_le(out, nd + 1);
	put_le(out, body.len);
	tw_must(buf_add(out, body.data, body.len));
	tw_must(digest_of_buf(&sum, out->data, out->len));
	tw_must(buf_add(out, sum.raw, DIGEST_RAW_LEN));
	buf_release(&body);
}

/* rfs_make, then lindex_rootfs_parse: 0 with the tree, or -errno with why. */
static int rfs_parse(const struct rnode *n, size_t nn, const struct rdent *d, size_t nd,
		     size_t extra, struct tree **t, const char **why)
{
	struct buf f = BUF_INIT;
	int rc;

	rfs_make(&f, 2, n, nn, d, nd, extra);
	*why = NULL;
	rc = lindex_rootfs_parse(&rkey, 2, f.data, f.len, t, why);
	buf_release(&f);
	if (rc)
		assert_null(*t);
	return rc;
}

#define NN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * A rootfs file is untrusted like an index file (the cache directory can be
 * damaged or written by someone else): a well-formed one gives its tree,
 * with removed nodes and names keeping their ids and cookies; anything that
 * would make a tree other than one a merge builds is refused.
 */
static void test_rootfs_file_checks(void **state)
{
	const struct rnode ok[] = {
		{ 1, 0, TAR_DIR, NULL }, { 1, 1, TAR_DIR, NULL },	/* 1 root, 2 dir */
		{ 0, 0, TAR_REG, NULL }, { 1, 1, TAR_REG, NULL },	/* 3 removed, 4 file */
		{ 1, 0, TAR_SYMLINK, "../x" }, { 3, 0, TAR_DIR, NULL }, /* 5 link, 6 implicit */
	};
	const struct rdent okd[] = {
		{ 1, 2, "d" }, { 0, 0, NULL }, { 2, 4, "f" }, { 2, 5, "l" }, { 1, 4, "hard" },
		{ 1, 6, "i" },
	};
	const struct tree_node *c;
	struct tree *t = NULL;
	const char *why, *name;
	uint64_t cookie = 0;
	struct buf f = BUF_INIT;

	(void)state;
	assert_int_equal(rfs_parse(ok, NN(ok), okd, NN(okd), 0, &t, &why), 0);
	assert_null(tree_node_by_id(t, 3));
	assert_int_equal(tree_node_attr(tree_lookup_path(t, "d/f"))->id, 4);
	assert_int_equal(tree_node_attr(tree_lookup_path(t, "hard"))->nlink, 2);
	assert_int_equal(tree_node_attr(tree_lookup_path(t, "d"))->layer, 1);
	assert_string_equal(tree_node_attr(tree_lookup_path(t, "d/l"))->symlink, "../x");
	assert_true(tree_node_attr(tree_lookup_path(t, "i"))->implicit);
	assert_int_equal(tree_node_attr(tree_root(t))->nlink, 4);
	assert_int_equal(tree_readdir(t, tree_lookup_path(t, "d"), &cookie, &name, &c), 1);
	assert_int_equal(cookie, 3); /* after the removed name 2 */
	assert_int_equal(tree_node_count(t), 5);
	tree_free(t);

	/* The same file, one byte damaged: the checksum. */
	rfs_make(&f, 2, ok, NN(ok), okd, NN(okd), 0);
	f.data[100] ^= 1;
	assert_int_equal(lindex_rootfs_parse(&rkey, 2, f.data, f.len, &t, &why), -EBADMSG);
	assert_string_equal(why, "checksum mismatch");
	buf_release(&f);

	/* Sizes: garbage after the body. */
	assert_int_equal(rfs_parse(ok, NN(ok), okd, NN(okd), 1, &t, &why), -EBADMSG);
	assert_string_equal(why, "bad tree");
	{
		/* The root removed, or not a directory; a layer past the image's;
		 * a hard-link entry; a symlink to nothing. */
		static const struct rnode bad[][2] = {
			{ { 0, 0, TAR_DIR, NULL }, { 1, 0, TAR_REG, NULL } },
			{ { 1, 0, TAR_REG, NULL }, { 1, 0, TAR_REG, NULL } },
			{ { 1, 0, TAR_DIR, NULL }, { 1, 2, TAR_REG, NULL } },
			{ { 1, 0, TAR_DIR, NULL }, { 1, 0, TAR_HARDLINK, "x" } },
			{ { 1, 0, TAR_DIR, NULL }, { 1, 0, TAR_SYMLINK, "" } },
			{ { 1, 0, TAR_DIR, NULL }, { 3, 0, TAR_REG, NULL } },
		};
		const struct rdent one[] = { { 1, 2, "n" } };

		for (size_t i = 0; i < NN(bad); i++)
			assert_int_equal(rfs_parse(bad[i], 2, one, 1, 0, &t, &why), -EBADMSG);
	}
	{
		/* Names: each set breaks one rule over nodes 1 root, 2 and 3
		 * directories, 4 a file, 5 removed. */
		static const struct rnode nodes[] = {
			{ 1, 0, TAR_DIR, NULL }, { 1, 0, TAR_DIR, NULL }, { 1, 0, TAR_DIR, NULL },
			{ 1, 0, TAR_REG, NULL }, { 0, 0, TAR_REG, NULL },
		};
		static const struct rdent bad[][4] = {
			/* a cycle: 2 in 3 and 3 in 2, nothing from the root */
			{ { 3, 2, "a" }, { 2, 3, "b" }, { 1, 4, "f" }, { 0, 0, NULL } },
			/* a directory named twice */
			{ { 1, 2, "a" }, { 1, 3, "b" }, { 2, 3, "c" }, { 1, 4, "f" } },
			/* a directory in a directory of a higher id */
			{ { 1, 3, "b" }, { 3, 2, "a" }, { 1, 4, "f" }, { 0, 0, NULL } },
			/* the same name twice in a directory */
			{ { 1, 2, "a" }, { 1, 3, "b" }, { 1, 4, "a" }, { 0, 0, NULL } },
			/* names that are no names */
			{ { 1, 2, "a/b" }, { 1, 3, "b" }, { 1, 4, "f" }, { 0, 0, NULL } },
			{ { 1, 2, "." }, { 1, 3, "b" }, { 1, 4, "f" }, { 0, 0, NULL } },
			{ { 1, 2, ".." }, { 1, 3, "b" }, { 1, 4, "f" }, { 0, 0, NULL } },
			{ { 1, 2, "" }, { 1, 3, "b" }, { 1, 4, "f" }, { 0, 0, NULL } },
			{ { 1, 2, ".wh.a" }, { 1, 3, "b" }, { 1, 4, "f" }, { 0, 0, NULL } },
			/* a name in a file, of the root, of a removed node, of no node */
			{ { 1, 2, "a" }, { 1, 3, "b" }, { 1, 4, "f" }, { 4, 2, "x" } },
			{ { 1, 2, "a" }, { 1, 3, "b" }, { 1, 4, "f" }, { 2, 1, "r" } },
			{ { 1, 2, "a" }, { 1, 3, "b" }, { 1, 4, "f" }, { 1, 5, "gone" } },
			{ { 1, 2, "a" }, { 1, 3, "b" }, { 1, 4, "f" }, { 1, 6, "none" } },
			/* a live node no name reaches */
			{ { 1, 2, "a" }, { 1, 3, "b" }, { 0, 0, NULL }, { 0, 0, NULL } },
		};

		for (size_t i = 0; i < NN(bad); i++) {
			/* (trailing removed names are padding, not given) */
			size_t nd = bad[i][3].parent ? 4 : bad[i][2].parent ? 3 : 2;

			assert_int_equal(rfs_parse(nodes, NN(nodes), bad[i], nd, 0, &t, &why),
					 -EBADMSG);
			assert_string_equal(why, "bad tree");
		}
		/* The same nodes named right. */
		assert_int_equal(rfs_parse(nodes, NN(nodes), (const struct rdent[]){ { 1, 2, "a" },
			{ 2, 3, "b" }, { 3, 4, "f" } }, 3, 0, &t, &why), 0);
		assert_non_null(tree_lookup_path(t, "a/b/f"));
		tree_free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_tar),
		cmocka_unit_test(test_ids_gzip),
		cmocka_unit_test(test_big_file_checksum),
		cmocka_unit_test(test_rootfs_file_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
