/*
 * image: lazy config, merged rootfs over gzip/tar/zstd layers with whiteouts
 * and reads dispatched to the right layer, single-flight under concurrency,
 * failures, and the image cache (same digest built once, refcounts, idle
 * trimming).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>

#include "image/image.h"
#include "layerw.h"

#define MT_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_GZ "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_ZST "application/vnd.oci.image.layer.v1.tar+zstd"
#define MT_CFG "application/vnd.oci.image.config.v1+json"

struct fix {
	struct buf tar[3], blob[3], cfg, manifest;
	struct image_blob layers[3];
	struct image_desc desc;
	struct tsrc src;
	char *dir;
};

static struct fix F;

static void file_mode(struct buf *b, const char *name, const char *content, unsigned mode)
{
	struct tw_hdr h = { .name = name, .type = '0', .mode = mode, .mtime = 1700000001 };

	h.size = strlen(content);
	tw_header(b, &h);
	tw_data(b, content, h.size);
}

static int setup(void **state)
{
	size_t i;

	(void)state;
	memset(&F, 0, sizeof(F));
	/* Layer 0 (gzip): the base. */
	tw_simple(&F.tar[0], "a/", '5', NULL);
	tw_file(&F.tar[0], "a/f1", "one");
	tw_file(&F.tar[0], "a/f2", "two");
	tw_file(&F.tar[0], "b/x", "x");
	tw_file(&F.tar[0], "keep", "kept from layer 0");
	tw_end(&F.tar[0]);
	gzip_buf(&F.tar[0], &F.blob[0]);
	/* Layer 1 (plain tar): whiteout, opaque dir, new files. */
	tw_file(&F.tar[1], "a/.wh.f2", "");
	tw_file(&F.tar[1], "a/f3", "three");
	tw_file(&F.tar[1], "b/y", "why");
	tw_file(&F.tar[1], "b/.wh..wh..opq", "");
	tw_end(&F.tar[1]);
	tw_must(buf_add(&F.blob[1], F.tar[1].data, F.tar[1].len));
	/* Layer 2 (zstd): replaces a/f1. */
	file_mode(&F.tar[2], "a/f1", "ONE!", 0600);
	tw_end(&F.tar[2]);
	zstd_buf(&F.tar[2], 0, &F.blob[2]);

	F.layers[0].media_type = MT_GZ;
	F.layers[1].media_type = MT_TAR;
	F.layers[2].media_type = MT_ZST;
	for (i = 0; i < 3; i++) {
		F.layers[i].size = F.blob[i].len;
		F.layers[i].digest = tsrc_add(&F.src, &F.blob[i], NULL);
	}
	tw_must(buf_adds(&F.cfg, "{\"architecture\":\"amd64\",\"os\":\"linux\"}"));
	F.desc.config.media_type = MT_CFG;
	F.desc.config.size = F.cfg.len;
	F.desc.config.digest = tsrc_add(&F.src, &F.cfg, NULL);
	tw_must(buf_adds(&F.manifest, "{\"schemaVersion\":2}"));
	tw_must(digest_of_buf(&F.desc.digest, F.manifest.data, F.manifest.len));
	F.desc.media_type = "application/vnd.oci.image.manifest.v1+json";
	F.desc.bytes = F.manifest.data;
	F.desc.len = F.manifest.len;
	F.desc.layers = F.layers;
	F.desc.nlayers = 3;
	return 0;
}

static int teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		buf_release(&F.tar[i]);
		buf_release(&F.blob[i]);
	}
	buf_release(&F.cfg);
	buf_release(&F.manifest);
	return 0;
}

static int each_setup(void **state)
{
	(void)state;
	F.dir = tmpdir_new();
	F.src.stream_calls = F.src.stream_bytes = 0;
	F.src.pread_calls = F.src.pread_bytes = F.src.get_calls = 0;
	F.src.delay_ms = 0;
	return 0;
}

static int each_teardown(void **state)
{
	(void)state;
	rm_rf(F.dir);
	free(F.dir);
	return 0;
}

static struct image *new_image(struct pcache *pc)
{
	struct blob_source src = tsrc_source(&F.src);
	struct image *img;

	assert_int_equal(image_new_src(&img, &src, NULL, &F.desc, pc, 0), 0);
	return img;
}

static void expect_file(struct image *img, const struct tree *t, const char *path,
			const char *content, unsigned layer)
{
	const struct tree_node *n = tree_lookup_path(t, path);
	const struct tree_attr *a;
	char buf[64];
	size_t len = strlen(content);

	assert_non_null(n);
	a = tree_node_attr(n);
	assert_int_equal(a->layer, layer);
	assert_int_equal(a->size, len);
	assert_int_equal(image_pread(img, a, buf, sizeof(buf), 0), (ssize_t)len);
	assert_memory_equal(buf, content, len);
}

static void test_accessors_lazy(void **state)
{
	struct image *img;
	const void *bytes;
	size_t len;

	(void)state;
	img = new_image(NULL);
	assert_true(digest_equal(image_digest(img), &F.desc.digest));
	assert_string_equal(image_media_type(img), F.desc.media_type);
	image_manifest(img, &bytes, &len);
	assert_int_equal(len, F.manifest.len);
	assert_memory_equal(bytes, F.manifest.data, len);
	assert_int_equal(image_nlayers(img), 3);
	assert_non_null(image_layer(img, 2));
	assert_null(image_layer(img, 3));
	assert_string_equal(layer_media_type(image_layer(img, 2)), MT_ZST);
	assert_string_equal(image_config_blob(img)->media_type, MT_CFG);
	/* Nothing fetched yet. */
	assert_int_equal(F.src.stream_calls + F.src.pread_calls + F.src.get_calls, 0);
	image_unref(img);
}

static void same_list(const struct tree *t, const struct buf *want)
{
	struct buf got = BUF_INIT;

	list_tree(t, &got);
	assert_string_equal(got.data, want->data);
	buf_release(&got);
}

static void expect_rootfs_stats(const struct image *img, uint64_t loaded, uint64_t rejected)
{
	uint64_t l, r;

	image_rootfs_stats(img, &l, &r);
	assert_int_equal(l, loaded);
	assert_int_equal(r, rejected);
}

/* Layers 0, 1 and 2 loaded from their index files that many times (never
 * from the blob). */
static void expect_layer_loads(struct image *img, uint64_t l0, uint64_t l1, uint64_t l2)
{
	const uint64_t want[3] = { l0, l1, l2 };

	for (size_t i = 0; i < 3; i++) {
		struct layer_stats st;

		layer_stats(image_layer(img, i), &st);
		assert_int_equal(st.loads_blob, 0);
		assert_int_equal(st.loads_index, want[i]);
	}
}

/* The one rootfs file in the cache directory. */
static void rootfs_file(struct buf *path)
{
	struct buf dir = BUF_INIT;
	struct dirent *de;
	DIR *d;
	int n = 0;

	tw_must(buf_addf(&dir, "%s/v1/rootfs", F.dir));
	d = opendir(dir.data);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			buf_reset(path);
			tw_must(buf_addf(path, "%s/%s", dir.data, de->d_name));
			n++;
		}
	closedir(d);
	assert_int_equal(n, 1);
	buf_release(&dir);
}

static void test_rootfs_merge(void **state)
{
	struct pcache *pc;
	struct image *img;
	const struct tree *t, *t2;
	struct buf list = BUF_INIT;

	(void)state;
	assert_int_equal(pcache_open(&pc, F.dir, 0), 0);
	img = new_image(pc);
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_int_equal(F.src.stream_calls, 3);
	expect_file(img, t, "a/f1", "ONE!", 2);
	expect_file(img, t, "a/f3", "three", 1);
	expect_file(img, t, "b/y", "why", 1);
	expect_file(img, t, "keep", "kept from layer 0", 0);
	assert_int_equal(tree_node_attr(tree_lookup_path(t, "a/f1"))->mode & 07777, 0600);
	assert_null(tree_lookup_path(t, "a/f2"));
	assert_null(tree_lookup_path(t, "b/x"));
	assert_null(tree_lookup_path(t, "a/.wh.f2"));
	assert_null(tree_lookup_path(t, "b/.wh..wh..opq"));
	/* Layer trees keep whiteouts as stored and their own index. */
	assert_non_null(tree_lookup_path(layer_tree(image_layer(img, 1)), "a/.wh.f2"));
	assert_int_equal(tree_node_attr(tree_lookup_path(layer_tree(image_layer(img, 1)),
							 "a/f3"))->layer,
			 1);
	/* Cached: no more work. */
	assert_int_equal(image_rootfs(img, &t2), 0);
	assert_ptr_equal(t, t2);
	assert_int_equal(F.src.stream_calls, 3);
	list_tree(t, &list);
	image_unref(img);

	/* A second image object over the same cache: the rootfs file, no layer
	 * loaded until a file is read (then from its index file). */
	img = new_image(pc);
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_int_equal(F.src.stream_calls, 3);
	same_list(t, &list);
	expect_rootfs_stats(img, 1, 0);
	expect_layer_loads(img, 0, 0, 0);
	expect_file(img, t, "a/f1", "ONE!", 2);
	expect_layer_loads(img, 0, 0, 1);
	image_unref(img);

	/* A damaged rootfs file: logged, removed, merged again from the index
	 * files, and written anew for the next one. */
	{
		struct buf path = BUF_INIT, bytes = BUF_INIT;

		pcache_flush(pc); /* the rootfs file is stored in the background */
		rootfs_file(&path);
		file_read(path.data, &bytes);
		bytes.data[bytes.len / 2] ^= 0x20;
		file_write(path.data, bytes.data, bytes.len);
		img = new_image(pc);
		assert_int_equal(image_rootfs(img, &t), 0);
		expect_rootfs_stats(img, 0, 1);
		expect_layer_loads(img, 1, 1, 1);
		same_list(t, &list);
		image_unref(img);
		img = new_image(pc);
		assert_int_equal(image_rootfs(img, &t), 0);
		expect_rootfs_stats(img, 1, 0);
		same_list(t, &list);
		expect_file(img, t, "keep", "kept from layer 0", 0);
		image_unref(img);
		buf_release(&path);
		buf_release(&bytes);
	}
	assert_int_equal(F.src.stream_calls, 3);
	pcache_free(pc);
	buf_release(&list);
}

struct thr {
	struct image *img;
	int rc_cfg, rc_root;
	const struct buf *cfg;
	const struct tree *root;
};

static void *thr_run(void *arg)
{
	struct thr *t = arg;

	t->rc_cfg = image_config(t->img, &t->cfg);
	t->rc_root = image_rootfs(t->img, &t->root);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct image *img;
	pthread_t th[8];
	struct thr t[8];
	int i;

	(void)state;
	F.src.delay_ms = 50;
	img = new_image(NULL);
	for (i = 0; i < 8; i++) {
		t[i].img = img;
		assert_int_equal(pthread_create(&th[i], NULL, thr_run, &t[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].rc_cfg, 0);
		assert_int_equal(t[i].rc_root, 0);
		assert_ptr_equal(t[i].cfg, t[0].cfg);
		assert_ptr_equal(t[i].root, t[0].root);
	}
	assert_int_equal(F.src.get_calls, 1);
	assert_int_equal(F.src.stream_calls, 3);
	assert_int_equal(t[0].cfg->len, F.cfg.len);
	assert_memory_equal(t[0].cfg->data, F.cfg.data, F.cfg.len);
	image_unref(img);
}

static void test_failures(void **state)
{
	struct blob_source src = tsrc_source(&F.src);
	struct image_desc d = F.desc;
	struct image_blob layers[3];
	struct image *img;
	const struct tree *t;
	const struct buf *cfg;

	(void)state;
	/* A layer the source does not have: rootfs is -EIO, retried later. */
	memcpy(layers, F.layers, sizeof(layers));
	memset(&layers[1].digest, 0xab, sizeof(layers[1].digest));
	d.layers = layers;
	/* Config size disagrees with the manifest. */
	d.config.size = F.cfg.len + 1;
	assert_int_equal(image_new_src(&img, &src, NULL, &d, NULL, 0), 0);
	assert_int_equal(image_rootfs(img, &t), -EIO);
	assert_null(t);
	assert_int_equal(image_config(img, &cfg), -EIO);
	assert_null(cfg);
	assert_int_equal(image_config(img, &cfg), -EIO);
	assert_int_equal(F.src.get_calls, 2); /* a failure is retried */
	image_unref(img);
	/* A config above the limit is refused without fetching it. */
	d.config.size = IMAGE_CONFIG_MAX + 1ull;
	assert_int_equal(image_new_src(&img, &src, NULL, &d, NULL, 0), 0);
	assert_int_equal(image_config(img, &cfg), -EFBIG);
	assert_int_equal(F.src.get_calls, 2);
	image_unref(img);
	/* An unsupported layer type is an empty layer, not a failure. */
	memcpy(layers, F.layers, sizeof(layers));
	layers[0].media_type = "application/vnd.example.tar+lz4";
	d = F.desc;
	d.layers = layers;
	assert_int_equal(image_new_src(&img, &src, NULL, &d, NULL, 0), 0);
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_null(tree_lookup_path(t, "keep"));
	assert_non_null(tree_lookup_path(t, "a/f3"));
	image_unref(img);
	/* No layers at all: an empty rootfs. */
	d = F.desc;
	d.nlayers = 0;
	assert_int_equal(image_new_src(&img, &src, NULL, &d, NULL, 0), 0);
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_int_equal(tree_node_count(t), 1);
	image_unref(img);
}

/*
 * A manifest listing one blob at several positions: one layer object, one
 * load, one tree; every position is still applied by the merge (a blob
 * listed again above another one re-applies its entries).
 */
static void test_same_layer_many_times(void **state)
{
	struct blob_source src = tsrc_source(&F.src);
	struct image_desc d = F.desc;
	struct image_blob *many;
	struct image *img;
	const struct tree *t;
	size_t i;

	(void)state;
	many = calloc(1000, sizeof(*many));
	assert_non_null(many);
	/* 0: L0, 1: L1, 2-3: L0, 4-5: L2. */
	many[0] = many[2] = many[3] = F.layers[0];
	many[1] = F.layers[1];
	many[4] = many[5] = F.layers[2];
	d.layers = many;
	d.nlayers = 6;
	assert_int_equal(image_new_src(&img, &src, NULL, &d, NULL, 0), 0);
	assert_int_equal(image_nlayers(img), 6);
	assert_ptr_equal(image_layer(img, 2), image_layer(img, 0));
	assert_ptr_equal(image_layer(img, 3), image_layer(img, 0));
	assert_ptr_equal(image_layer(img, 5), image_layer(img, 4));
	assert_ptr_not_equal(image_layer(img, 1), image_layer(img, 0));
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_int_equal(F.src.stream_calls, 3);
	/* Layer 0 again above layer 1 brings back what layer 1 removed. */
	expect_file(img, t, "a/f2", "two", 0);
	expect_file(img, t, "b/x", "x", 0);
	expect_file(img, t, "b/y", "why", 1);
	expect_file(img, t, "a/f1", "ONE!", 4);
	expect_file(img, t, "keep", "kept from layer 0", 0);
	assert_null(tree_lookup_path(t, "a/.wh.f2"));
	/* layers/4 and layers/5 show one tree, read through either position. */
	assert_ptr_equal(layer_tree(image_layer(img, 5)), layer_tree(image_layer(img, 4)));
	image_unref(img);

	/* 1000 times the same blob: one load, and a rootfs no bigger than
	 * the layer's own tree. */
	for (i = 0; i < 1000; i++)
		many[i] = F.layers[0];
	d.nlayers = 1000;
	F.src.stream_calls = 0;
	assert_int_equal(image_new_src(&img, &src, NULL, &d, NULL, 0), 0);
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_int_equal(F.src.stream_calls, 1);
	expect_file(img, t, "a/f2", "two", 0);
	assert_int_equal(tree_node_count(t), tree_node_count(layer_tree(image_layer(img, 999))));
	assert_true(tree_memory(t) < 4 * tree_memory(layer_tree(image_layer(img, 0))));
	image_unref(img);
	free(many);
}

/*
 * An xattr with an empty name (a PAX key "SCHILY.xattr." + NUL) is dropped
 * when the layer is parsed: it used to reach the tree, and its index file,
 * which the next load then rejected, so such a layer was fetched again at
 * every mount.
 */
static void test_empty_xattr_name_keeps_index(void **state)
{
	struct tsrc ts = { 0 };
	struct blob_source src = tsrc_source(&ts);
	struct buf tar = BUF_INIT, r = BUF_INIT;
	struct image_blob lb = { MT_TAR, { { 0 } }, 0 };
	struct image_desc d = F.desc;
	struct layer_stats st;
	struct pcache *pc;
	struct image *img;
	const struct tree *t;
	const struct tree_attr *a;
	int round;

	(void)state;
	tw_pax_rec_n(&r, "SCHILY.xattr.\0", 14, "v", 1);
	tw_pax_s(&r, "SCHILY.xattr.user.kept", "yes");
	tw_pax(&tar, 'x', &r);
	tw_file(&tar, "etc/file", "content");
	tw_end(&tar);
	lb.size = tar.len;
	lb.digest = tsrc_add(&ts, &tar, NULL);
	d.layers = &lb;
	d.nlayers = 1;
	assert_int_equal(pcache_open(&pc, F.dir, 0), 0);
	for (round = 0; round < 2; round++) {
		assert_int_equal(image_new_src(&img, &src, NULL, &d, pc, 0), 0);
		/* The layer's own tree (the rootfs of the second round comes
		 * from the rootfs file). */
		assert_int_equal(layer_get_tree(image_layer(img, 0), &t), 0);
		a = tree_node_attr(tree_lookup_path(t, "etc/file"));
		assert_int_equal(a->nxattrs, 1);
		assert_string_equal(a->xattrs[0].name, "user.kept");
		assert_int_equal(image_rootfs(img, &t), 0);
		a = tree_node_attr(tree_lookup_path(t, "etc/file"));
		assert_int_equal(a->nxattrs, 1);
		assert_string_equal(a->xattrs[0].name, "user.kept");
		layer_stats(image_layer(img, 0), &st);
		assert_int_equal(st.index_rejected, 0);
		assert_int_equal(st.loads_index, round); /* the second from the index */
		image_unref(img);
	}
	assert_int_equal(ts.stream_calls, 1);
	pcache_free(pc);
	buf_release(&r);
	buf_release(&tar);
}

/*
 * One plain layer: on the cold load the rootfs is the layer's own tree,
 * and it is saved as a rootfs file; the next image object over the cache
 * lists from that file without loading the layer (its index file holds
 * access points a listing does not need), keeps that tree, and loads the
 * layer when a file is read. One layer with whiteouts is merged as before.
 */
static void test_one_layer(void **state)
{
	struct blob_source src = tsrc_source(&F.src);
	struct image_desc d = F.desc;
	struct buf list = BUF_INIT, path = BUF_INIT;
	struct layer_stats st;
	struct pcache *pc;
	struct image *img;
	const struct tree *t, *t2;

	(void)state;
	d.layers = &F.layers[0]; /* gzip, no whiteouts: plain */
	d.nlayers = 1;
	assert_int_equal(pcache_open(&pc, F.dir, 0), 0);
	assert_int_equal(image_new_src(&img, &src, NULL, &d, pc, 0), 0);
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_ptr_equal(t, layer_tree(image_layer(img, 0))); /* shared, no merge */
	assert_int_equal(F.src.stream_calls, 1);
	expect_rootfs_stats(img, 0, 0);
	list_tree(t, &list);
	expect_file(img, t, "a/f2", "two", 0);
	image_unref(img);
	pcache_flush(pc);
	rootfs_file(&path); /* saved */

	assert_int_equal(image_new_src(&img, &src, NULL, &d, pc, 0), 0);
	assert_int_equal(image_rootfs(img, &t), 0);
	expect_rootfs_stats(img, 1, 0);
	assert_null(layer_tree(image_layer(img, 0))); /* not loaded */
	same_list(t, &list);
	expect_file(img, t, "a/f2", "two", 0); /* now it loads, from its index file */
	layer_stats(image_layer(img, 0), &st);
	assert_int_equal(st.loads_index, 1);
	assert_int_equal(F.src.stream_calls, 1);
	assert_int_equal(image_rootfs(img, &t2), 0);
	assert_ptr_equal(t2, t); /* the restored tree is kept */
	image_unref(img);

	/* A damaged file: merged again from the layer, shared, rewritten. */
	{
		struct buf bytes = BUF_INIT;

		file_read(path.data, &bytes);
		bytes.data[bytes.len / 2] ^= 0x20;
		file_write(path.data, bytes.data, bytes.len);
		assert_int_equal(image_new_src(&img, &src, NULL, &d, pc, 0), 0);
		assert_int_equal(image_rootfs(img, &t), 0);
		expect_rootfs_stats(img, 0, 1);
		assert_ptr_equal(t, layer_tree(image_layer(img, 0)));
		same_list(t, &list);
		image_unref(img);
		pcache_flush(pc);
		buf_reset(&bytes);
		file_read(path.data, &bytes);
		assert_int_equal(image_new_src(&img, &src, NULL, &d, pc, 0), 0);
		assert_int_equal(image_rootfs(img, &t), 0);
		expect_rootfs_stats(img, 1, 0);
		image_unref(img);
		buf_release(&bytes);
	}

	/* One layer with whiteouts is not plain: merged, not shared. */
	d.layers = &F.layers[1];
	assert_int_equal(image_new_src(&img, &src, NULL, &d, pc, 0), 0);
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_ptr_not_equal(t, layer_tree(image_layer(img, 0)));
	assert_null(tree_lookup_path(t, "a/.wh.f2"));
	image_unref(img);
	pcache_free(pc);
	buf_release(&list);
	buf_release(&path);
}

static int released;

static void count_release(void *ctx)
{
	(void)ctx;
	released++;
}

static void test_imgcache(void **state)
{
	struct blob_source src = tsrc_source(&F.src);
	struct imgcache *c;
	struct image *a, *b, *x, *y;
	struct image_desc d2 = F.desc, d3 = F.desc;
	const struct tree *t;

	(void)state;
	released = 0;
	assert_int_equal(imgcache_new(&c, NULL, 0, 1), 0);
	/* Two tags, one digest: one image, built once. */
	assert_int_equal(imgcache_get_src(c, &src, count_release, &F.desc, &a), 0);
	assert_int_equal(imgcache_get_src(c, &src, count_release, &F.desc, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(released, 1); /* the second source was not needed */
	assert_int_equal(imgcache_count(c), 1);
	assert_int_equal(image_rootfs(a, &t), 0);
	assert_int_equal(image_rootfs(b, &t), 0);
	assert_int_equal(F.src.stream_calls, 3);
	image_unref(a);
	image_unref(b);
	/* Idle, kept (max_idle 1), and revived by the next lookup. */
	assert_int_equal(imgcache_count(c), 1);
	assert_int_equal(imgcache_get_src(c, &src, NULL, &F.desc, &a), 0);
	assert_int_equal(image_rootfs(a, &t), 0);
	assert_int_equal(F.src.stream_calls, 3);
	/* Two more digests. */
	d2.digest.raw[0] ^= 1;
	d3.digest.raw[0] ^= 2;
	assert_int_equal(imgcache_get_src(c, &src, count_release, &d2, &x), 0);
	assert_int_equal(imgcache_get_src(c, &src, count_release, &d3, &y), 0);
	assert_int_equal(imgcache_count(c), 3);
	image_unref(x); /* idle: 1 */
	assert_int_equal(imgcache_count(c), 3);
	image_unref(y); /* idle: 2 > 1 → x (least recently released) goes */
	assert_int_equal(imgcache_count(c), 2);
	assert_int_equal(released, 2);
	assert_int_equal(imgcache_get_src(c, &src, NULL, &d3, &y), 0);
	assert_int_equal(imgcache_count(c), 2);
	/* Freeing the cache keeps referenced images valid. */
	imgcache_free(c);
	assert_int_equal(released, 2);
	assert_int_equal(image_rootfs(a, &t), 0);
	image_unref(a);
	assert_int_equal(released, 3);
	image_unref(y);
	assert_int_equal(released, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accessors_lazy, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_rootfs_merge, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_one_layer, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_failures, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_imgcache, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_same_layer_many_times, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_empty_xattr_name_keeps_index, each_setup,
						each_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
