/*
 * budget and reclaim, and an image under a memory budget: LRU order, busy
 * units kept, the unit just charged kept, uncharge; retired memory freed
 * only after the readers inside have left; layers and merged trees evicted
 * and rebuilt from the index files with the same node ids and without a
 * blob request; eviction racing with readers (run under ASan in the
 * sanitized pass: a use after free is a failure there); an image of one
 * plain layer showing that layer's tree as its rootfs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <time.h>

#include "common/reclaim.h"
#include "image/budget.h"
#include "image/image.h"
#include "layerw.h"

#define MT_GZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_TAR "application/vnd.oci.image.layer.v1.tar"
#define NL 3
#define NFILES 200

/* ---- budget --------------------------------------------------------------- */

struct fake {
	struct budget_unit u;
	bool busy, evicted;
	int evict_calls;
};

static int fake_evict(struct budget_unit *u)
{
	struct fake *f = (struct fake *)u; /* u is the first member */

	f->evict_calls++;
	if (f->busy)
		return -EBUSY;
	f->evicted = true;
	return 0;
}

static void test_budget_lru(void **state)
{
	struct budget *b;
	struct budget_stats st;
	struct fake f[4];
	int i;

	(void)state;
	memset(f, 0, sizeof(f));
	assert_int_equal(budget_new(&b, 250), 0);
	for (i = 0; i < 4; i++)
		budget_unit_init(&f[i].u, b, fake_evict);
	budget_charge(&f[0].u, 100);
	budget_charge(&f[1].u, 100);
	budget_touch(&f[0].u); /* f[1] is now the oldest */
	budget_charge(&f[2].u, 100); /* 300 > 250: f[1] goes */
	assert_true(f[1].evicted);
	assert_false(f[0].evicted);
	assert_false(f[2].evicted);
	budget_get_stats(b, &st);
	assert_int_equal(st.bytes, 200);
	assert_int_equal(st.units, 2);
	assert_int_equal(st.evictions, 1);

	/* A busy unit is skipped (once per trim), the next oldest goes. */
	f[0].busy = true;
	budget_charge(&f[3].u, 100); /* 300: f[0] oldest but busy, f[2] goes */
	assert_int_equal(f[0].evict_calls, 1);
	assert_false(f[0].evicted);
	assert_true(f[2].evicted);
	budget_get_stats(b, &st);
	assert_int_equal(st.bytes, 200);
	assert_int_equal(st.busy, 1);

	/* The unit charged is never its own victim, even alone over the bound. */
	budget_uncharge(&f[0].u);
	budget_uncharge(&f[3].u);
	f[1].evicted = false;
	budget_charge(&f[1].u, 1000);
	assert_false(f[1].evicted);
	budget_get_stats(b, &st);
	assert_int_equal(st.bytes, 1000);
	assert_int_equal(st.peak, 1000);
	budget_uncharge(&f[1].u);
	budget_get_stats(b, &st);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.units, 0);
	budget_free(b);

	/* No bound: counted, never evicted. No budget: every call a no-op. */
	assert_int_equal(budget_new(&b, 0), 0);
	memset(f, 0, sizeof(f));
	budget_unit_init(&f[0].u, b, fake_evict);
	budget_unit_init(&f[1].u, NULL, fake_evict);
	budget_charge(&f[0].u, 1ull << 40);
	budget_charge(&f[1].u, 1ull << 40);
	budget_touch(&f[1].u);
	budget_uncharge(&f[1].u);
	assert_int_equal(f[0].evict_calls + f[1].evict_calls, 0);
	budget_get_stats(b, &st);
	assert_int_equal(st.bytes, 1ull << 40);
	budget_uncharge(&f[0].u);
	budget_free(b);
}

/* ---- reclaim -------------------------------------------------------------- */

struct obj {
	struct reclaim_node rn;
	int *freed;
};

static void obj_free(struct reclaim_node *rn)
{
	struct obj *o = (struct obj *)rn;

	__atomic_store_n(o->freed, 1, __ATOMIC_SEQ_CST);
	free(o);
}

struct reader {
	int go_out; /* atomic: leave now */
	int inside; /* atomic */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	unsigned tok = reclaim_enter();

	__atomic_store_n(&r->inside, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&r->go_out, __ATOMIC_SEQ_CST)) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	reclaim_leave(tok);
	return NULL;
}

static void test_reclaim_waits_for_readers(void **state)
{
	struct reader r = { 0, 0 };
	pthread_t th;
	struct obj *o = malloc(sizeof(*o));
	int freed = 0, i;
	uint64_t nfreed, pending;

	(void)state;
	assert_non_null(o);
	o->freed = &freed;
	assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
	while (!__atomic_load_n(&r.inside, __ATOMIC_SEQ_CST))
		sched_yield();
	reclaim_retire(&o->rn, obj_free);
	/* The reader entered before the retire: nothing is freed while it stays
	 * (200 ms is far beyond the reclaimer's polling). */
	for (i = 0; i < 200; i++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
		assert_int_equal(__atomic_load_n(&freed, __ATOMIC_SEQ_CST), 0);
	}
	reclaim_counts(&nfreed, &pending);
	assert_int_equal(pending, 1);
	__atomic_store_n(&r.go_out, 1, __ATOMIC_SEQ_CST);
	pthread_join(th, NULL);
	reclaim_barrier();
	assert_int_equal(freed, 1);

	/* Readers after that see an empty list: the barrier returns at once. */
	reclaim_barrier();
	reclaim_shutdown();
	reclaim_counts(&nfreed, &pending);
	assert_int_equal(pending, 0);
}

/* ---- an image under a budget ---------------------------------------------- */

struct fix {
	struct buf tar[NL], blob[NL], manifest;
	struct image_blob layers[NL];
	struct image_desc desc;
	struct image_desc desc1;   /* layer 0 alone: plain, its tree is the rootfs */
	struct buf wtar, wblob, wmanifest;
	struct image_blob wlayer;
	struct image_desc descw;   /* one layer holding a whiteout: merged */
	struct tsrc src;
	char *dir;
};

static struct fix F;

static void content_of(char *out, size_t n, unsigned layer, unsigned i)
{
	snprintf(out, n, "layer %u file %u: %0*u", layer, i, (int)(i % 50), i);
}

static int setup(void **state)
{
	char name[64], content[128];
	unsigned l, i;

	(void)state;
	memset(&F, 0, sizeof(F));
	for (l = 0; l < NL; l++) {
		for (i = 0; i < NFILES; i++) {
			/* Layers overlap: layer l replaces a third of the files below. */
			if (l && i % 3)
				continue;
			snprintf(name, sizeof(name), "d%u/f%u", i % 7, i);
			content_of(content, sizeof(content), l, i);
			tw_file(&F.tar[l], name, content);
		}
		snprintf(name, sizeof(name), "only%u", l);
		tw_file(&F.tar[l], name, "x");
		tw_end(&F.tar[l]);
		if (l == 1)
			tw_must(buf_add(&F.blob[l], F.tar[l].data, F.tar[l].len));
		else
			gzip_buf(&F.tar[l], &F.blob[l]);
		F.layers[l].media_type = l == 1 ? MT_TAR : MT_GZ;
		F.layers[l].size = F.blob[l].len;
		F.layers[l].digest = tsrc_add(&F.src, &F.blob[l], NULL);
	}
	tw_must(buf_adds(&F.manifest, "{\"schemaVersion\":2,\"budget\":1}"));
	tw_must(digest_of_buf(&F.desc.digest, F.manifest.data, F.manifest.len));
	F.desc.media_type = "application/vnd.oci.image.manifest.v1+json";
	F.desc.bytes = F.manifest.data;
	F.desc.len = F.manifest.len;
	F.desc.config.media_type = "application/vnd.oci.image.config.v1+json";
	F.desc.layers = F.layers;
	F.desc.nlayers = NL;

	F.desc1 = F.desc;
	F.desc1.nlayers = 1;

	tw_file(&F.wtar, "d0/keep", "k");
	tw_file(&F.wtar, "d0/.wh.gone", "");
	tw_end(&F.wtar);
	gzip_buf(&F.wtar, &F.wblob);
	F.wlayer.media_type = MT_GZ;
	F.wlayer.size = F.wblob.len;
	F.wlayer.digest = tsrc_add(&F.src, &F.wblob, NULL);
	tw_must(buf_adds(&F.wmanifest, "{\"schemaVersion\":2,\"budget\":\"w\"}"));
	F.descw = F.desc;
	tw_must(digest_of_buf(&F.descw.digest, F.wmanifest.data, F.wmanifest.len));
	F.descw.bytes = F.wmanifest.data;
	F.descw.len = F.wmanifest.len;
	F.descw.layers = &F.wlayer;
	F.descw.nlayers = 1;
	return 0;
}

static int teardown(void **state)
{
	unsigned l;

	(void)state;
	for (l = 0; l < NL; l++) {
		buf_release(&F.tar[l]);
		buf_release(&F.blob[l]);
	}
	buf_release(&F.manifest);
	buf_release(&F.wtar);
	buf_release(&F.wblob);
	buf_release(&F.wmanifest);
	return 0;
}

static int each_setup(void **state)
{
	(void)state;
	F.dir = tmpdir_new();
	F.src.stream_calls = F.src.stream_bytes = 0;
	F.src.pread_calls = F.src.pread_bytes = F.src.get_calls = 0;
	return 0;
}

static int each_teardown(void **state)
{
	(void)state;
	reclaim_barrier();
	rm_rf(F.dir);
	free(F.dir);
	return 0;
}

static struct image *new_image_of(const struct image_desc *d, struct pcache *pc,
				  struct budget *b)
{
	struct blob_source src = tsrc_source(&F.src);
	struct image *img;

	assert_int_equal(image_new_src(&img, &src, NULL, d, pc, 0), 0);
	image_set_budget(img, b);
	return img;
}

static struct image *new_image(struct pcache *pc, struct budget *b)
{
	return new_image_of(&F.desc, pc, b);
}

/* Every path of `t` with its node id, in readdir order. */
static void list_ids(const struct tree *t, const struct tree_node *dir, const char *prefix,
		     struct buf *out)
{
	uint64_t cookie = 0;
	const char *name;
	const struct tree_node *c;

	while (tree_readdir(t, dir, &cookie, &name, &c) == 1) {
		const struct tree_attr *a = tree_node_attr(c);
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", prefix, name);
		tw_must(buf_addf(out, "%s #%llu L%u @%llu\n", path, (unsigned long long)a->id,
				 a->layer, (unsigned long long)a->data_offset));
		if ((a->mode & 0170000) == 0040000)
			list_ids(t, c, path, out);
	}
}

static void ids_of(const struct tree *t, struct buf *out)
{
	buf_release(out);
	list_ids(t, tree_root(t), "", out);
	tw_must(buf_addch(out, '\0'));
}

/* The layer whose d<i%7>/f<i> the rootfs of an image of `nl` of the
 * fixture's layers shows. */
static unsigned top_of(unsigned i, unsigned nl)
{
	return i % 3 || nl == 1 ? 0 : nl - 1;
}

/* The expected content of rootfs file d<i%7>/f<i>, image of `nl` layers. */
static void expect_read_n(struct image *img, const struct tree *t, unsigned i, unsigned nl)
{
	char path[64], want[128], got[128];
	const struct tree_node *n;
	unsigned top = top_of(i, nl);
	ssize_t r;

	snprintf(path, sizeof(path), "d%u/f%u", i % 7, i);
	content_of(want, sizeof(want), top, i);
	n = tree_lookup_path(t, path);
	assert_non_null(n);
	r = image_pread(img, tree_node_attr(n), got, sizeof(got), 0);
	assert_int_equal(r, (ssize_t)strlen(want));
	assert_memory_equal(got, want, strlen(want));
}

static void expect_read(struct image *img, const struct tree *t, unsigned i)
{
	expect_read_n(img, t, i, NL);
}

static void test_evict_rebuild_same_ids(void **state)
{
	struct pcache *pc;
	struct budget *b;
	struct budget_stats st;
	struct image *img;
	const struct tree *t;
	struct buf root0 = BUF_INIT, root1 = BUF_INIT, lay0[NL], lay1 = BUF_INIT;
	struct fake big;
	struct layer_stats ls;
	unsigned l, i, tok;

	(void)state;
	assert_int_equal(pcache_open(&pc, F.dir, 1u << 30), 0); /* local copies kept */
	assert_int_equal(budget_new(&b, 1u << 20), 0);
	img = new_image(pc, b);
	tok = reclaim_enter();
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_int_equal(F.src.stream_calls, NL);
	ids_of(t, &root0);
	for (l = 0; l < NL; l++) {
		memset(&lay0[l], 0, sizeof(lay0[l]));
		ids_of(layer_tree(image_layer(img, l)), &lay0[l]);
	}
	reclaim_leave(tok);
	budget_get_stats(b, &st);
	assert_int_equal(st.units, NL + 1);
	assert_int_equal(st.evictions, 0);

	/* Something bigger than the bound arrives: everything else goes. */
	memset(&big, 0, sizeof(big));
	budget_unit_init(&big.u, b, fake_evict);
	budget_charge(&big.u, 2u << 20);
	budget_get_stats(b, &st);
	assert_int_equal(st.evictions, NL + 1);
	assert_int_equal(st.units, 1);
	for (l = 0; l < NL; l++)
		assert_null(layer_tree(image_layer(img, l)));
	budget_uncharge(&big.u);
	reclaim_barrier(); /* the trees are freed now (ASan would see a use) */

	/* Used again: rebuilt from the index files, same ids, no blob request. */
	tok = reclaim_enter();
	assert_int_equal(image_rootfs(img, &t), 0);
	ids_of(t, &root1);
	assert_string_equal(root0.data, root1.data);
	for (l = 0; l < NL; l++) {
		const struct tree *lt;

		assert_int_equal(layer_get_tree(image_layer(img, l), &lt), 0);
		ids_of(lt, &lay1);
		assert_string_equal(lay0[l].data, lay1.data);
		layer_stats(image_layer(img, l), &ls);
		assert_int_equal(ls.evictions, 1);
		assert_int_equal(ls.loads_index, 1);
		assert_int_equal(ls.loads_blob, 1);
	}
	for (i = 0; i < NFILES; i += 7)
		expect_read(img, t, i);
	reclaim_leave(tok);
	assert_int_equal(F.src.stream_calls, NL);

	/* A rootfs read whose layer was evicted (the merged tree kept) loads
	 * the layer again, from its index file. */
	{
		struct fake small;
		const struct tree *t2;

		memset(&small, 0, sizeof(small));
		budget_unit_init(&small.u, b, fake_evict);
		tok = reclaim_enter();
		assert_int_equal(image_rootfs(img, &t), 0); /* touched: the newest unit */
		/* Room for the merged tree and `small` only: the layers go. */
		budget_charge(&small.u, (1u << 20) - tree_memory(t) - 1);
		for (l = 0; l < NL; l++)
			assert_null(layer_tree(image_layer(img, l)));
		assert_int_equal(image_rootfs(img, &t2), 0);
		assert_ptr_equal(t, t2); /* not merged again */
		for (i = 0; i < NFILES; i += 11)
			expect_read(img, t, i);
		reclaim_leave(tok);
		budget_uncharge(&small.u);
	}
	assert_int_equal(F.src.stream_calls, NL);
	assert_int_equal(F.src.pread_calls, 0); /* local copies: no range request */

	image_unref(img);
	reclaim_barrier();
	budget_get_stats(b, &st);
	assert_int_equal(st.units, 0);
	budget_free(b);
	pcache_free(pc);
	buf_release(&root0);
	buf_release(&root1);
	buf_release(&lay1);
	for (l = 0; l < NL; l++)
		buf_release(&lay0[l]);
}

static void test_no_cache_dir_not_evicted(void **state)
{
	struct budget *b;
	struct budget_stats st;
	struct image *img;
	const struct tree *t;
	struct fake big;
	unsigned tok, l;

	(void)state;
	assert_int_equal(budget_new(&b, 1), 0);
	img = new_image(NULL, b);
	tok = reclaim_enter();
	assert_int_equal(image_rootfs(img, &t), 0);
	reclaim_leave(tok);
	memset(&big, 0, sizeof(big));
	budget_unit_init(&big.u, b, fake_evict);
	budget_charge(&big.u, 100);
	/* Without index files a layer would cost its blob again: it stays (and
	 * is not counted); the merged tree can go. */
	for (l = 0; l < NL; l++)
		assert_non_null(layer_tree(image_layer(img, l)));
	budget_get_stats(b, &st);
	assert_int_equal(st.units, 1);
	budget_uncharge(&big.u);
	tok = reclaim_enter();
	assert_int_equal(image_rootfs(img, &t), 0);
	expect_read(img, t, 3);
	reclaim_leave(tok);
	assert_int_equal(F.src.stream_calls, NL);
	image_unref(img);
	reclaim_barrier();
	budget_free(b);
}

/* Readers walk and read while a thread keeps evicting everything. */
struct race {
	struct image *img;
	unsigned nl; /* layers of the image */
	struct budget *b;
	int stop; /* atomic */
	int errors; /* atomic */
	int rounds; /* atomic: rounds done */
	int preads; /* atomic: image_pread calls */
	unsigned seed;
	uint64_t pread_epoch; /* atomic: evictions at the last read (one layer) */
};

/*
 * With one layer, whether this round reads: once per eviction, by one
 * reader. A read pins the only unit there is while it inflates (a long
 * time under ASan), and readers reading in turn would keep it pinned for
 * good; the pin of a read held across the loop is raced with several
 * layers.
 */
static bool pread_turn(struct race *r)
{
	struct budget_stats st;
	uint64_t seen = __atomic_load_n(&r->pread_epoch, __ATOMIC_SEQ_CST);

	budget_get_stats(r->b, &st);
	return st.evictions != seen &&
	       __atomic_compare_exchange_n(&r->pread_epoch, &seen, st.evictions, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	unsigned seed = __atomic_add_fetch(&r->seed, 7919, __ATOMIC_RELAXED);
	int rounds = 0;

	while (!__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST) || rounds < 20) {
		unsigned tok = reclaim_enter(), i = (unsigned)rand_r(&seed) % NFILES;
		const struct tree *t, *lt;
		struct layer_reader *rd = NULL;
		char path[64], want[128], got[128];
		const struct tree_node *n;
		unsigned top = top_of(i, r->nl);
		int bad = 0;

		rounds++;
		snprintf(path, sizeof(path), "d%u/f%u", i % 7, i);
		content_of(want, sizeof(want), top, i);
		if (image_rootfs(r->img, &t) || !(n = tree_lookup_path(t, path))) {
			bad = 1;
		} else if (r->nl == 1 ? pread_turn(r) : rounds % 4 == 0) {
			/* A read inside the read side, pinned only while it
			 * reads. */
			ssize_t k = image_pread(r->img, tree_node_attr(n), got, sizeof(got), 0);

			bad = k != (ssize_t)strlen(want) || memcmp(got, want, strlen(want));
			__atomic_add_fetch(&r->preads, 1, __ATOMIC_SEQ_CST);
		} else if (r->nl == 1) {
			/* With one layer an open file would pin the only unit
			 * there is, which would then hardly ever go (the pin of
			 * an open file is raced with several layers): the lookup
			 * above is this round's use of the tree. */
			bad = tree_node_attr(n)->layer != 0;
		} else {
			struct layer *l = image_layer(r->img, tree_node_attr(n)->layer);

			/* An open file: the reader copies the attr and pins. */
			if (layer_reader_new(&rd, l, tree_node_attr(n)))
				bad = 1;
		}
		if (!bad && layer_get_tree(image_layer(r->img, rand_r(&seed) % r->nl), &lt))
			bad = 1;
		if (!bad)
			bad = tree_lookup_path(lt, "d0/f0") == NULL;
		reclaim_leave(tok);
		/* Outside the read side: only the reader's own copies are used.
		 * Every other round waits until what was retired so far is
		 * freed, so a reader still pointing into an evicted tree would
		 * read freed memory (ASan). */
		if (rounds % 2)
			reclaim_barrier();
		if (!bad && rd) {
			ssize_t k = layer_reader_pread(rd, got, sizeof(got), 0);

			bad = k != (ssize_t)strlen(want) || memcmp(got, want, strlen(want));
		}
		layer_reader_free(rd);
		if (bad)
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&r->rounds, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void races_readers(const struct image_desc *d)
{
	struct pcache *pc;
	struct budget_stats st;
	struct race r;
	struct fake big;
	pthread_t th[4];
	int i;

	memset(&r, 0, sizeof(r));
	assert_int_equal(pcache_open(&pc, F.dir, 0), 0);
	assert_int_equal(budget_new(&r.b, 1u << 20), 0);
	r.nl = (unsigned)d->nlayers;
	r.pread_epoch = UINT64_MAX;
	r.img = new_image_of(d, pc, r.b);
	memset(&big, 0, sizeof(big));
	budget_unit_init(&big.u, r.b, fake_evict);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race_reader, &r), 0);
	/* Until the readers did 300 rounds and 10 reads and 20 units went (a
	 * loaded machine may starve either side for a while: bounded by
	 * iterations, not time; with one layer a read waits for an eviction the
	 * readers have not seen yet, so 20 evictions need not give 10 reads). */
	for (i = 0; i < 5000000; i++) {
		budget_charge(&big.u, 2u << 20); /* evicts whatever is not pinned */
		budget_uncharge(&big.u);
		budget_get_stats(r.b, &st);
		if (__atomic_load_n(&r.rounds, __ATOMIC_SEQ_CST) >= 300 && st.evictions >= 20 &&
		    __atomic_load_n(&r.preads, __ATOMIC_SEQ_CST) >= 10)
			break;
		sched_yield();
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(r.errors, 0);
	budget_get_stats(r.b, &st);
	assert_true(st.evictions >= 20);
	assert_true(r.preads >= 10);
	assert_int_equal(F.src.stream_calls, r.nl); /* every reload from an index */
	image_unref(r.img);
	reclaim_barrier();
	budget_free(r.b);
	pcache_free(pc);
}

static void test_evict_races_readers(void **state)
{
	(void)state;
	races_readers(&F.desc);
}

/* The same with the rootfs being the layer's own tree. */
static void test_evict_races_readers_shared(void **state)
{
	(void)state;
	races_readers(&F.desc1);
}

struct hook_calls {
	int rootfs, layer;
};

static void count_evicted(void *ctx, bool rootfs)
{
	struct hook_calls *h = ctx;

	if (rootfs)
		h->rootfs++;
	else
		h->layer++;
}

/*
 * One layer without whiteouts: the rootfs is the layer's tree (no copy, one
 * budget unit); evicting the layer takes the rootfs with it (the hook says
 * both), and it comes back from the index file with the same ids. One layer
 * with a whiteout is merged as before.
 */
static void test_single_layer_shared(void **state)
{
	struct pcache *pc;
	struct budget *b;
	struct budget_stats st;
	struct image *img;
	const struct tree *t, *lt;
	struct buf ids0 = BUF_INIT, ids1 = BUF_INIT;
	struct hook_calls h = { 0, 0 };
	struct fake big;
	unsigned i, tok;

	(void)state;
	assert_int_equal(pcache_open(&pc, F.dir, 1u << 30), 0);
	assert_int_equal(budget_new(&b, 1u << 20), 0);
	img = new_image_of(&F.desc1, pc, b);
	image_set_evict_hook(img, count_evicted, &h);
	tok = reclaim_enter();
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_int_equal(layer_get_tree(image_layer(img, 0), &lt), 0);
	assert_ptr_equal(t, lt);
	ids_of(t, &ids0);
	for (i = 0; i < NFILES; i += 5)
		expect_read_n(img, t, i, 1);
	reclaim_leave(tok);
	budget_get_stats(b, &st);
	assert_int_equal(st.units, 1); /* the layer only: nothing merged */

	memset(&big, 0, sizeof(big));
	budget_unit_init(&big.u, b, fake_evict);
	budget_charge(&big.u, 2u << 20);
	budget_uncharge(&big.u);
	assert_null(layer_tree(image_layer(img, 0)));
	assert_int_equal(h.rootfs, 1);
	assert_int_equal(h.layer, 1);
	reclaim_barrier();

	tok = reclaim_enter();
	assert_int_equal(image_rootfs(img, &t), 0);
	ids_of(t, &ids1);
	assert_string_equal(ids0.data, ids1.data);
	for (i = 1; i < NFILES; i += 5)
		expect_read_n(img, t, i, 1);
	reclaim_leave(tok);
	assert_int_equal(F.src.stream_calls, 1);
	image_unref(img);

	/* A whiteout in the layer: merged, the whiteout not shown. */
	img = new_image_of(&F.descw, pc, b);
	tok = reclaim_enter();
	assert_int_equal(image_rootfs(img, &t), 0);
	assert_int_equal(layer_get_tree(image_layer(img, 0), &lt), 0);
	assert_ptr_not_equal(t, lt);
	assert_non_null(tree_lookup_path(lt, "d0/.wh.gone"));
	assert_null(tree_lookup_path(t, "d0/.wh.gone"));
	assert_non_null(tree_lookup_path(t, "d0/keep"));
	reclaim_leave(tok);
	budget_get_stats(b, &st);
	assert_int_equal(st.units, 2);
	image_unref(img);

	reclaim_barrier();
	budget_free(b);
	pcache_free(pc);
	buf_release(&ids0);
	buf_release(&ids1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_lru),
		cmocka_unit_test(test_reclaim_waits_for_readers),
		cmocka_unit_test_setup_teardown(test_evict_rebuild_same_ids, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_no_cache_dir_not_evicted, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_evict_races_readers, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_single_layer_shared, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_evict_races_readers_shared, each_setup,
						each_teardown),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	reclaim_shutdown();
	return rc;
}
