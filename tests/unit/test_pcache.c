/*
 * pcache: directory creation and permissions, atomic index files, the blob
 * byte cache with LRU eviction bounded by cache_max, state rebuilt at open,
 * removal of a damaged copy, the bound on index and rootfs files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/time.h>

#include "image/pcache.h"
#include "layerw.h"

static char *dir;

static int each_setup(void **state)
{
	(void)state;
	dir = tmpdir_new();
	return 0;
}

static int each_teardown(void **state)
{
	(void)state;
	rm_rf(dir);
	free(dir);
	return 0;
}

static mode_t mode_of(const char *fmt, ...)
{
	char path[4200];
	struct stat st;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (stat(path, &st))
		return (mode_t)-1;
	return st.st_mode & 07777;
}

static struct digest dig(int n)
{
	struct digest d;

	memset(&d, 0, sizeof(d));
	d.raw[0] = (unsigned char)n;
	d.raw[31] = 0x77;
	return d;
}

static void test_dirs_and_modes(void **state)
{
	struct pcache *pc;
	struct digest d = dig(1);
	struct pcache_writer *w;
	char sub[4200], hex[DIGEST_HEX_LEN + 1];

	(void)state;
	/* A nested directory that does not exist yet. */
	snprintf(sub, sizeof(sub), "%s/a/b/cache", dir);
	umask(022);
	assert_int_equal(pcache_open(&pc, sub, 1 << 20), 0);
	assert_string_equal(pcache_dir(pc), sub);
	assert_int_equal(mode_of("%s", sub), 0700);
	assert_int_equal(mode_of("%s/v1", sub), 0700);
	assert_int_equal(mode_of("%s/v1/index", sub), 0700);
	assert_int_equal(mode_of("%s/v1/blobs", sub), 0700);
	assert_int_equal(mode_of("%s/a", dir), 0700);
	assert_int_equal(pcache_index_store(pc, &d, "abc", 3), 0);
	assert_int_equal(mode_of("%s/v1/index/%s.idx", sub, digest_hex(&d, hex)), 0600);
	assert_int_equal(pcache_blob_begin(pc, &d, "", 0, &w), 0);
	assert_int_equal(pcache_blob_write(w, "xyz", 3), 0);
	assert_int_equal(pcache_blob_commit(w), 0);
	assert_int_equal(mode_of("%s/v1/blobs/%s", sub, hex), 0600);
	pcache_free(pc);
}

static void test_tighten_and_refuse(void **state)
{
	struct pcache *pc;
	char sub[4200];

	(void)state;
	snprintf(sub, sizeof(sub), "%s/loose", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(chmod(sub, 0777), 0);
	assert_int_equal(pcache_open(&pc, sub, 0), 0);
	assert_int_equal(mode_of("%s", sub), 0700);
	pcache_free(pc);

	/* Owned by someone else: refused, and left as it was. */
	snprintf(sub, sizeof(sub), "%s/theirs", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(sub, 65534, 65534), 0);
		assert_int_equal(pcache_open(&pc, sub, 0), -EPERM);
		assert_null(pc);
		assert_int_equal(mode_of("%s", sub), 0755);
	} else {
		print_message("not root: skipping the foreign-owner case\n");
	}
	/* Not a directory. */
	snprintf(sub, sizeof(sub), "%s/file", dir);
	close(open(sub, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(pcache_open(&pc, sub, 0), -ENOTDIR);
}

static void test_default_dir(void **state)
{
	struct buf b = BUF_INIT;
	char *xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

	(void)state;
	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	assert_int_equal(pcache_default_dir(&b), 0);
	assert_string_equal(b.data, "/x/cache/acrfs");
	buf_reset(&b);
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "/home/u", 1);
	assert_int_equal(pcache_default_dir(&b), 0);
	assert_string_equal(b.data, "/home/u/.cache/acrfs");
	buf_reset(&b);
	setenv("XDG_CACHE_HOME", "relative", 1); /* ignored, as the spec says */
	assert_int_equal(pcache_default_dir(&b), 0);
	assert_string_equal(b.data, "/home/u/.cache/acrfs");
	if (xdg)
		setenv("XDG_CACHE_HOME", xdg, 1);
	else
		unsetenv("XDG_CACHE_HOME");
	if (home)
		setenv("HOME", home, 1);
	free(xdg);
	free(home);
	buf_release(&b);
}

static void test_index_files(void **state)
{
	struct pcache *pc;
	struct digest d = dig(2), e = dig(3);
	struct buf b = BUF_INIT;
	char path[4200], hex[DIGEST_HEX_LEN + 1];
	DIR *dp;
	struct dirent *de;
	int n = 0;

	(void)state;
	assert_int_equal(pcache_open(&pc, dir, 0), 0);
	assert_int_equal(pcache_index_load(pc, &d, &b), -ENOENT);
	assert_int_equal(pcache_index_store(pc, &d, "one\0two", 7), 0);
	assert_int_equal(pcache_index_load(pc, &d, &b), 0);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "one\0two", 7);
	/* Replace atomically; no temporary file is left behind. */
	assert_int_equal(pcache_index_store(pc, &d, "three", 5), 0);
	buf_reset(&b);
	assert_int_equal(pcache_index_load(pc, &d, &b), 0);
	assert_string_equal(b.data, "three");
	snprintf(path, sizeof(path), "%s/v1/index", dir);
	dp = opendir(path);
	assert_non_null(dp);
	while ((de = readdir(dp)))
		if (de->d_name[0] != '.') {
			n++;
			assert_null(strstr(de->d_name, ".tmp."));
		}
	closedir(dp);
	assert_int_equal(n, 1);
	assert_int_equal(pcache_index_remove(pc, &d), 0);
	assert_int_equal(pcache_index_load(pc, &d, &b), -ENOENT);
	assert_int_equal(pcache_index_remove(pc, &e), -ENOENT);
	pcache_free(pc);

	/* A stale temporary file (a crash) is removed at open; a fresh one
	 * (another process writing) is left alone. */
	snprintf(path, sizeof(path), "%s/v1/index/%s.idx.tmp.1.1", dir, digest_hex(&d, hex));
	close(open(path, O_CREAT | O_WRONLY, 0600));
	{
		struct timeval tv[2] = { { 1000, 0 }, { 1000, 0 } };

		assert_int_equal(utimes(path, tv), 0);
	}
	snprintf(path + strlen(path) - 1, 8, "2");
	close(open(path, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(pcache_open(&pc, dir, 0), 0);
	assert_int_equal(access(path, F_OK), 0);
	path[strlen(path) - 1] = '1';
	assert_int_equal(access(path, F_OK), -1);
	pcache_free(pc);
	buf_release(&b);
}

static int put_blob(struct pcache *pc, int n, size_t size)
{
	struct pcache_writer *w;
	struct digest d = dig(n);
	char *data = malloc(size);
	size_t off;
	int rc;

	memset(data, 'a' + n, size);
	rc = pcache_blob_begin(pc, &d, "", 0, &w);
	if (rc) {
		free(data);
		return rc;
	}
	/* In pieces, as a stream arrives. */
	for (off = 0; off < size && !rc; off += 300)
		rc = pcache_blob_write(w, data + off, size - off < 300 ? size - off : 300);
	rc = pcache_blob_commit(w);
	free(data);
	return rc;
}

static bool has_blob(struct pcache *pc, int n)
{
	struct digest d = dig(n);

	return pcache_blob_stat(pc, &d, "", NULL) == 0;
}

static void touch(struct pcache *pc, int n)
{
	struct digest d = dig(n);
	char c;

	assert_int_equal(pcache_blob_pread(pc, &d, "", &c, 1, 10), 1);
	assert_int_equal(c, 'a' + n);
}

static void test_lru_eviction(void **state)
{
	struct pcache *pc;
	struct pcache_stats st;
	struct pcache_writer *w;
	struct digest d = dig(9);
	char buf[2000];

	(void)state;
	assert_int_equal(pcache_open(&pc, dir, 3000), 0);
	assert_int_equal(put_blob(pc, 1, 1000), 0);
	assert_int_equal(put_blob(pc, 2, 1000), 0);
	assert_int_equal(put_blob(pc, 3, 1000), 0);
	pcache_stats(pc, &st);
	assert_int_equal(st.blob_bytes, 3000);
	assert_int_equal(st.blob_files, 3);
	/* Use 1: now 2 is the least recently used and goes first. */
	touch(pc, 1);
	assert_int_equal(put_blob(pc, 4, 1000), 0);
	assert_true(has_blob(pc, 1));
	assert_false(has_blob(pc, 2));
	assert_true(has_blob(pc, 3));
	assert_true(has_blob(pc, 4));
	pcache_stats(pc, &st);
	assert_int_equal(st.blob_bytes, 3000);
	assert_int_equal(st.evictions, 1);
	/* An evicted blob reads as -ENOENT (the caller falls back). */
	{
		struct digest d2 = dig(2);

		assert_int_equal(pcache_blob_pread(pc, &d2, "", buf, 10, 0), -ENOENT);
	}
	/* A 2000-byte blob evicts the two least recently used (3, then 1). */
	touch(pc, 1);
	touch(pc, 4);
	assert_int_equal(put_blob(pc, 5, 2000), 0);
	assert_false(has_blob(pc, 3));
	assert_false(has_blob(pc, 1));
	assert_true(has_blob(pc, 4));
	assert_true(has_blob(pc, 5));
	/* Larger than the whole budget: refused up front, or while writing;
	 * nothing already cached is lost to the up-front refusal. */
	assert_int_equal(pcache_blob_begin(pc, &d, "", 5000, &w), -EFBIG);
	assert_true(has_blob(pc, 4));
	assert_int_equal(put_blob(pc, 9, 4000), -EFBIG);
	assert_false(has_blob(pc, 9));
	pcache_stats(pc, &st);
	assert_true(st.blob_bytes <= 3000);
	/* Reads of a cached blob: short at its end. */
	assert_int_equal(put_blob(pc, 6, 1000), 0);
	{
		struct digest d6 = dig(6);

		assert_int_equal(pcache_blob_pread(pc, &d6, "", buf, 2000, 500), 500);
		assert_int_equal(buf[0], 'a' + 6);
		assert_int_equal(pcache_blob_pread(pc, &d6, "tar", buf, 10, 0), -ENOENT);
	}
	pcache_free(pc);
}

static void set_mtime(int n, time_t t)
{
	struct digest d = dig(n);
	char path[4200], hex[DIGEST_HEX_LEN + 1];
	struct timeval tv[2] = { { t, 0 }, { t, 0 } };

	snprintf(path, sizeof(path), "%s/v1/blobs/%s", dir, digest_hex(&d, hex));
	assert_int_equal(utimes(path, tv), 0);
}

/* The LRU order and the byte count survive a reopen (from mtimes); a smaller
 * budget evicts at open; budget 0 keeps nothing. */
static void test_reopen(void **state)
{
	struct pcache *pc;
	struct pcache_stats st;
	struct pcache_writer *w;
	struct digest d = dig(1);

	(void)state;
	assert_int_equal(pcache_open(&pc, dir, 10000), 0);
	assert_int_equal(put_blob(pc, 1, 1000), 0);
	assert_int_equal(put_blob(pc, 2, 1000), 0);
	assert_int_equal(put_blob(pc, 3, 1000), 0);
	pcache_free(pc);
	set_mtime(1, 3000); /* most recent */
	set_mtime(2, 1000); /* oldest */
	set_mtime(3, 2000);
	assert_int_equal(pcache_open(&pc, dir, 10000), 0);
	pcache_stats(pc, &st);
	assert_int_equal(st.blob_bytes, 3000);
	assert_int_equal(st.blob_files, 3);
	pcache_free(pc);
	assert_int_equal(pcache_open(&pc, dir, 2000), 0);
	assert_true(has_blob(pc, 1));
	assert_false(has_blob(pc, 2));
	assert_true(has_blob(pc, 3));
	pcache_free(pc);
	assert_int_equal(pcache_open(&pc, dir, 0), 0);
	pcache_stats(pc, &st);
	assert_int_equal(st.blob_files, 0);
	assert_int_equal(pcache_blob_begin(pc, &d, "", 0, &w), -ENOSPC);
	pcache_free(pc);
}

/* Aborted and failed writers leave nothing behind and give the space back. */
static void test_writer_abort(void **state)
{
	struct pcache *pc;
	struct pcache_stats st;
	struct pcache_writer *w;
	struct digest d = dig(4);

	(void)state;
	assert_int_equal(pcache_open(&pc, dir, 3000), 0);
	assert_int_equal(pcache_blob_begin(pc, &d, "tar", 0, &w), 0);
	assert_int_equal(pcache_blob_write(w, "abc", 3), 0);
	pcache_blob_abort(w);
	assert_int_equal(pcache_blob_stat(pc, &d, "tar", NULL), -ENOENT);
	assert_int_equal(pcache_blob_begin(pc, &d, "TAR", 0, &w), -EINVAL);
	assert_int_equal(pcache_blob_begin(pc, &d, "../x", 0, &w), -EINVAL);
	assert_int_equal(put_blob(pc, 1, 3000), 0);
	pcache_stats(pc, &st);
	assert_int_equal(st.blob_bytes, 3000);
	pcache_free(pc);
}

/* A damaged copy is removed: file, accounting and LRU entry; the room it
 * took is free again; removing it twice is -ENOENT. */
static void test_blob_remove(void **state)
{
	struct pcache *pc;
	struct pcache_stats st;
	struct digest d1 = dig(1), d2 = dig(2);
	char path[4200], hex[DIGEST_HEX_LEN + 1], buf[10];

	(void)state;
	assert_int_equal(pcache_open(&pc, dir, 3000), 0);
	assert_int_equal(put_blob(pc, 1, 1500), 0);
	assert_int_equal(put_blob(pc, 2, 1500), 0);
	assert_int_equal(pcache_blob_remove(pc, &d1, ""), 0);
	snprintf(path, sizeof(path), "%s/v1/blobs/%s", dir, digest_hex(&d1, hex));
	assert_int_equal(access(path, F_OK), -1);
	assert_false(has_blob(pc, 1));
	assert_int_equal(pcache_blob_pread(pc, &d1, "", buf, sizeof(buf), 0), -ENOENT);
	pcache_stats(pc, &st);
	assert_int_equal(st.blob_files, 1);
	assert_int_equal(st.blob_bytes, 1500);
	assert_int_equal(pcache_blob_remove(pc, &d1, ""), -ENOENT);
	assert_int_equal(pcache_blob_remove(pc, &d2, "tar"), -ENOENT);
	assert_true(has_blob(pc, 2));
	/* The room is free: a new 1500-byte blob evicts nothing. */
	assert_int_equal(put_blob(pc, 3, 1500), 0);
	assert_true(has_blob(pc, 2));
	pcache_stats(pc, &st);
	assert_int_equal(st.evictions, 0);
	pcache_free(pc);
}

/*
 * Writes are gathered into batches: a stream of small pieces, big ones and
 * pieces that straddle a batch's end, with and without a size hint, comes
 * out byte for byte; a budget crossed inside a batch still fails the file
 * and keeps nothing of it.
 */
static void test_blob_batches(void **state)
{
	const size_t size = (3u << 20) + 12345;
	unsigned char *data = malloc(size), got[4096];
	struct pcache_writer *w;
	struct pcache *pc;
	struct digest d = dig(7);
	size_t off, n, step;
	int hint;

	(void)state;
	for (off = 0; off < size; off++)
		data[off] = (unsigned char)(off * 7 + off / 4093);
	assert_int_equal(pcache_open(&pc, dir, 64u << 20), 0);
	for (hint = 0; hint < 2; hint++) {
		assert_int_equal(pcache_blob_begin(pc, &d, "", hint ? size : 0, &w), 0);
		/* 1 to 16 KiB pieces, then one of 2 MiB, then the rest. */
		for (off = 0, step = 1; off < size; off += n, step = step * 5 % 16381 + 1) {
			n = off >= (1u << 20) && off < (1u << 20) + 16384 ? (2u << 20) : step;
			if (n > size - off)
				n = size - off;
			assert_int_equal(pcache_blob_write(w, data + off, n), 0);
		}
		assert_int_equal(pcache_blob_commit(w), 0);
		for (off = 0; off < size; off += n) {
			n = size - off < sizeof(got) ? size - off : sizeof(got);
			assert_int_equal(pcache_blob_pread(pc, &d, "", got, n, off), (ssize_t)n);
			assert_memory_equal(got, data + off, n);
		}
		assert_int_equal(pcache_blob_remove(pc, &d, ""), 0);
	}
	pcache_free(pc);
	/* A 100 KiB budget crossed in small pieces: the commit fails, no file. */
	assert_int_equal(pcache_open(&pc, dir, 100u << 10), 0);
	assert_int_equal(pcache_blob_begin(pc, &d, "", 0, &w), 0);
	for (off = 0; off < (200u << 10); off += 1000)
		(void)pcache_blob_write(w, data + off, 1000);
	assert_int_not_equal(pcache_blob_commit(w), 0);
	assert_int_equal(pcache_blob_pread(pc, &d, "", got, 1, 0), -ENOENT);
	pcache_free(pc);
	free(data);
}

/* ---- the bound on index and rootfs files (index_max) --------------------- */

static bool has_small(struct pcache *pc, bool rootfs, int n)
{
	struct digest d = dig(n);
	struct buf b = BUF_INIT;
	int rc = rootfs ? pcache_rootfs_load(pc, &d, &b) : pcache_index_load(pc, &d, &b);

	buf_release(&b);
	return rc == 0;
}

static int put_small(struct pcache *pc, bool rootfs, int n, size_t size)
{
	struct digest d = dig(n);
	char *data = malloc(size);
	int rc;

	memset(data, 'a' + n, size);
	rc = rootfs ? pcache_rootfs_store(pc, &d, data, size) : pcache_index_store(pc, &d, data, size);
	free(data);
	return rc;
}

/* Is the file on disk (without loading it, which would mark it used)? */
static bool small_on_disk(bool rootfs, int n)
{
	struct digest d = dig(n);
	char hex[DIGEST_HEX_LEN + 1];

	return mode_of("%s/v1/%s/%s.%s", dir, rootfs ? "rootfs" : "index", digest_hex(&d, hex),
		       rootfs ? "rfs" : "idx") != (mode_t)-1;
}

static void set_small_mtime(bool rootfs, int n, time_t t)
{
	struct digest d = dig(n);
	char path[4200], hex[DIGEST_HEX_LEN + 1];
	struct timeval tv[2] = { { t, 0 }, { t, 0 } };

	snprintf(path, sizeof(path), "%s/v1/%s/%s.%s", dir, rootfs ? "rootfs" : "index",
		 digest_hex(&d, hex), rootfs ? "rfs" : "idx");
	assert_int_equal(utimes(path, tv), 0);
}

static void test_index_bound(void **state)
{
	struct pcache *pc;
	struct pcache_stats st;

	(void)state;
	assert_int_equal(pcache_open(&pc, dir, 0), 0);
	pcache_stats(pc, &st);
	assert_int_equal(st.max_index_bytes, PCACHE_INDEX_BYTES_DEFAULT);
	pcache_set_index_max(pc, 10000);
	assert_int_equal(put_small(pc, false, 1, 4000), 0);
	assert_int_equal(put_small(pc, true, 2, 4000), 0);
	/* Replacing a file counts it once. */
	assert_int_equal(put_small(pc, false, 1, 4000), 0);
	pcache_stats(pc, &st);
	assert_int_equal(st.index_bytes, 8000);
	assert_int_equal(st.index_files, 2);
	/* A load marks a file used: the rootfs file is now the oldest, and a
	 * third file evicts it, whichever kind it is. */
	assert_true(has_small(pc, false, 1));
	assert_int_equal(put_small(pc, false, 3, 4000), 0);
	assert_false(small_on_disk(true, 2));
	assert_true(small_on_disk(false, 1));
	assert_true(small_on_disk(false, 3));
	pcache_stats(pc, &st);
	assert_int_equal(st.index_bytes, 8000);
	assert_int_equal(st.index_evictions, 1);
	/* A file over the whole bound is refused and evicts nothing; a file it
	 * would have replaced stays. */
	assert_int_equal(put_small(pc, false, 1, 10001), -EFBIG);
	assert_true(small_on_disk(false, 1));
	assert_true(small_on_disk(false, 3));
	/* Removing one gives its bytes back. */
	{
		struct digest d = dig(3);

		assert_int_equal(pcache_index_remove(pc, &d), 0);
	}
	pcache_stats(pc, &st);
	assert_int_equal(st.index_bytes, 4000);
	/* Blob files have their own bound: none of this touched them. */
	assert_int_equal(st.blob_bytes, 0);
	pcache_free(pc);

	/* At open the order comes from the mtimes; a lower bound evicts the
	 * oldest at once. A file the table did not know (another process wrote
	 * it) is counted when it is loaded. */
	assert_int_equal(pcache_open(&pc, dir, 0), 0);
	assert_int_equal(put_small(pc, true, 4, 3000), 0);
	assert_int_equal(put_small(pc, false, 5, 2000), 0);
	pcache_free(pc);
	set_small_mtime(false, 1, 1000); /* oldest */
	set_small_mtime(true, 4, 3000);
	set_small_mtime(false, 5, 2000);
	assert_int_equal(pcache_open(&pc, dir, 0), 0);
	pcache_stats(pc, &st);
	assert_int_equal(st.index_bytes, 9000);
	assert_int_equal(st.index_files, 3);
	pcache_set_index_max(pc, 5500);
	assert_false(small_on_disk(false, 1));
	assert_true(small_on_disk(true, 4));
	assert_true(small_on_disk(false, 5));
	assert_int_equal(put_small(pc, false, 6, 600), 0); /* evicts 5, the oldest left */
	assert_false(small_on_disk(false, 5));
	pcache_free(pc);
	assert_int_equal(pcache_open(&pc, dir, 0), 0);
	pcache_set_index_max(pc, 5500);
	{
		struct pcache *other;

		assert_int_equal(pcache_open(&other, dir, 0), 0);
		assert_int_equal(put_small(other, false, 7, 2000), 0);
		pcache_free(other);
	}
	pcache_stats(pc, &st);
	assert_int_equal(st.index_bytes, 3600);
	/* Counted, it puts the files over the bound: the oldest goes. */
	assert_true(has_small(pc, false, 7));
	pcache_stats(pc, &st);
	assert_int_equal(st.index_bytes, 2600);
	assert_int_equal(st.index_files, 2);
	assert_false(small_on_disk(true, 4));
	assert_true(small_on_disk(false, 6));

	/* 0 keeps none: old files go at once, stores fail with -ENOSPC. */
	pcache_set_index_max(pc, 0);
	assert_false(small_on_disk(false, 6));
	assert_false(small_on_disk(false, 7));
	assert_int_equal(put_small(pc, false, 8, 10), -ENOSPC);
	assert_false(small_on_disk(false, 8));
	pcache_stats(pc, &st);
	assert_int_equal(st.index_bytes, 0);
	assert_int_equal(st.index_files, 0);
	pcache_free(pc);
}

/* Stores done in the background: whoever reads, replaces or removes a file
 * after asking for it to be stored sees it stored; pcache_free and
 * pcache_flush wait for them all; a bound that refuses a file says so at
 * once. */
static void test_async_stores(void **state)
{
	struct pcache *pc;
	struct pcache_stats st;
	struct pcache_writer *w;
	struct buf b = BUF_INIT, got = BUF_INIT;
	struct digest d1 = dig(1), d2 = dig(2);
	char c[4];
	int i;

	(void)state;
	assert_int_equal(pcache_open(&pc, dir, 1 << 20), 0);
	tw_must(buf_add(&b, "first", 5));
	assert_int_equal(pcache_index_store_async(pc, &d1, &b), 0);
	assert_int_equal(b.len, 0); /* taken */
	assert_null(b.data);
	assert_int_equal(pcache_index_load(pc, &d1, &got), 0);
	assert_string_equal(got.data, "first");
	/* Two stores of one file land in order. */
	tw_must(buf_add(&b, "second", 6));
	assert_int_equal(pcache_index_store_async(pc, &d1, &b), 0);
	tw_must(buf_add(&b, "third", 5));
	assert_int_equal(pcache_index_store_async(pc, &d1, &b), 0);
	buf_reset(&got);
	assert_int_equal(pcache_index_load(pc, &d1, &got), 0);
	assert_string_equal(got.data, "third");
	tw_must(buf_add(&b, "gone", 4));
	assert_int_equal(pcache_index_store_async(pc, &d2, &b), 0);
	assert_int_equal(pcache_index_remove(pc, &d2), 0);
	assert_int_equal(pcache_index_load(pc, &d2, &got), -ENOENT);
	tw_must(buf_add(&b, "rootfs", 6));
	assert_int_equal(pcache_rootfs_store_async(pc, &d2, &b), 0);
	buf_reset(&got);
	assert_int_equal(pcache_rootfs_load(pc, &d2, &got), 0);
	assert_string_equal(got.data, "rootfs");
	/* A blob copy committed in the background reads at once. */
	assert_int_equal(pcache_blob_begin(pc, &d1, "", 4, &w), 0);
	assert_int_equal(pcache_blob_write(w, "blob", 4), 0);
	pcache_blob_commit_async(w);
	assert_int_equal(pcache_blob_pread(pc, &d1, "", c, 4, 0), 4);
	assert_memory_equal(c, "blob", 4);
	/* Refused at once by the bound; the buffer is released either way. */
	pcache_set_index_max(pc, 3);
	tw_must(buf_add(&b, "toolong", 7));
	assert_int_equal(pcache_index_store_async(pc, &d1, &b), -EFBIG);
	assert_null(b.data);
	pcache_set_index_max(pc, 0);
	tw_must(buf_add(&b, "none", 4));
	assert_int_equal(pcache_rootfs_store_async(pc, &d1, &b), -ENOSPC);
	assert_null(b.data);
	pcache_set_index_max(pc, 1 << 20);
	/* Many at once: pcache_flush waits for all. */
	for (i = 10; i < 40; i++) {
		struct digest d = dig(i);

		tw_must(buf_addf(&b, "file %d", i));
		assert_int_equal(pcache_index_store_async(pc, &d, &b), 0);
	}
	pcache_flush(pc);
	pcache_stats(pc, &st);
	assert_int_equal(st.index_files, 30); /* the bound of 3 bytes evicted the others */
	for (i = 10; i < 40; i++) {
		char want[16];

		snprintf(want, sizeof(want), "file %d", i);
		assert_true(has_small(pc, false, i));
		buf_reset(&got);
		{
			struct digest d = dig(i);

			assert_int_equal(pcache_index_load(pc, &d, &got), 0);
		}
		assert_string_equal(got.data, want);
	}
	/* And pcache_free too. */
	for (i = 40; i < 50; i++) {
		struct digest d = dig(i);

		tw_must(buf_addf(&b, "late %d", i));
		assert_int_equal(pcache_index_store_async(pc, &d, &b), 0);
	}
	pcache_free(pc);
	assert_int_equal(pcache_open(&pc, dir, 1 << 20), 0);
	for (i = 40; i < 50; i++)
		assert_true(small_on_disk(false, i));
	pcache_free(pc);
	buf_release(&got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dirs_and_modes, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_tighten_and_refuse, each_setup,
						each_teardown),
		cmocka_unit_test(test_default_dir),
		cmocka_unit_test_setup_teardown(test_index_files, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_lru_eviction, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reopen, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_writer_abort, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_blob_remove, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_blob_batches, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_index_bound, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_async_stores, each_setup, each_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
