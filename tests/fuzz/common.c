/*
 * common — helpers shared by the fuzz targets (see fuzz.h).
 */
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "tests/unit/layerw.h"

/* Present when a sanitizer runtime is linked (libFuzzer builds, ASan). */
void __sanitizer_report_error_summary(const char *summary) __attribute__((weak));

void fuzz_fail(const char *file, int line, const char *what)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "fuzz: %s:%d: check failed: %s", file, line, what);
	/* libFuzzer's -close_fd_mask=2 closes stderr; the sanitizer's report
	 * descriptor stays open. */
	if (__sanitizer_report_error_summary)
		__sanitizer_report_error_summary(msg);
	fprintf(stderr, "%s\n", msg);
	abort();
}

void fuzz_setup(void)
{
	static bool done;
	static const char *const names[] = { "error", "warn", "info", "debug" };
	const char *want = getenv("ACRFS_FUZZ_LOG");
	enum log_level lvl = LOG_LVL_DEBUG;
	size_t i;

	if (done)
		return;
	done = true;
	for (i = 0; want && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(want, names[i]))
			lvl = (enum log_level)i;
	log_init(lvl, false);
}

int fuzz_read_file(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	char tmp[65536];
	size_t n;
	int rc = 0;

	if (!f)
		return -errno;
	while (!rc && (n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		rc = buf_add(b, tmp, n);
	if (!rc && ferror(f))
		rc = -EIO;
	fclose(f);
	return rc;
}

ssize_t fuzz_src_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct fuzz_src *s = ctx;

	if (off < s->lo)
		s->lo = off;
	if (off + len > s->hi)
		s->hi = off + len;
	if (off >= s->n)
		return 0;
	if (len > s->n - off)
		len = (size_t)(s->n - off);
	memcpy(buf, s->p + off, len);
	return (ssize_t)len;
}

uint64_t fuzz_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
	return fuzz_hash(h, &v, sizeof(v));
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	return fuzz_hash(h, s, strlen(s) + 1);
}

uint64_t fuzz_le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

unsigned char *fuzz_dup(const uint8_t *data, size_t size)
{
	unsigned char *d = malloc(size ? size : 1);

	if (!d)
		abort();
	memcpy(d, data, size);
	return d;
}

void fuzz_fix_sha256(unsigned char *d, size_t size)
{
	struct digest sum;

	if (size < DIGEST_RAW_LEN)
		return;
	FUZZ_CHECK(digest_of_buf(&sum, d, size - DIGEST_RAW_LEN) == 0);
	memcpy(d + size - DIGEST_RAW_LEN, sum.raw, DIGEST_RAW_LEN);
}

size_t fuzz_split_layers(const uint8_t *data, size_t size, struct fuzz_part *parts,
			 size_t max)
{
	const size_t sl = strlen(FUZZ_LAYER_SEP);
	size_t n = 0;

	while (n + 1 < max) {
		const uint8_t *s = memmem(data, size, FUZZ_LAYER_SEP, sl);

		if (!s)
			break;
		parts[n].p = data;
		parts[n].n = (size_t)(s - data);
		n++;
		size -= (size_t)(s - data) + sl;
		data = s + sl;
	}
	parts[n].p = data;
	parts[n].n = size;
	return n + 1;
}

void fuzz_check_sparse(const struct tar_sparse *map, size_t n, uint64_t size,
		       uint64_t stored_size)
{
	uint64_t end = 0, stored = 0, off = 0, steps = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		FUZZ_CHECK(map[i].offset >= end);
		FUZZ_CHECK(map[i].offset <= size && map[i].length <= size - map[i].offset);
		FUZZ_CHECK(map[i].stored == stored);
		end = map[i].offset + map[i].length;
		stored += map[i].length;
	}
	FUZZ_CHECK(stored == stored_size);
	while (off < size) {
		uint64_t at = 0, k;
		bool hole = false;

		k = tar_sparse_locate(map, n, size, off, &at, &hole);
		FUZZ_CHECK(k > 0 && k <= size - off);
		if (!hole)
			FUZZ_CHECK(at <= stored_size && k <= stored_size - at);
		off += k;
		FUZZ_CHECK(++steps <= 2 * (uint64_t)n + 1);
	}
}

static uint64_t hash_attr(uint64_t h, const struct tree_attr *a)
{
	size_t i;

	h = hash_u64(h, a->id);
	h = hash_u64(h, a->mode);
	h = hash_u64(h, (uint64_t)a->uid << 32 | a->gid);
	h = hash_u64(h, a->nlink);
	h = hash_u64(h, (uint64_t)a->mtime_sec);
	h = hash_u64(h, a->mtime_nsec);
	h = hash_u64(h, (uint64_t)a->rdev_major << 32 | a->rdev_minor);
	h = hash_u64(h, a->layer);
	h = hash_u64(h, a->size);
	h = hash_u64(h, a->data_offset);
	h = hash_u64(h, a->stored_size);
	h = hash_u64(h, a->implicit);
	if (a->symlink)
		h = hash_str(h, a->symlink);
	for (i = 0; i < a->nxattrs; i++) {
		h = hash_str(h, a->xattrs[i].name);
		h = fuzz_hash(h, a->xattrs[i].value, a->xattrs[i].value_len);
	}
	for (i = 0; a->sparse && i < a->nsparse; i++) {
		h = hash_u64(h, a->sparse[i].offset);
		h = hash_u64(h, a->sparse[i].length);
	}
	return h;
}

/* The checks of one node the first time it is seen. */
static void check_node(const struct tree_attr *a, unsigned max_layer, uint64_t data_end)
{
	size_t i;

	FUZZ_CHECK(a->layer <= max_layer);
	FUZZ_CHECK(a->nlink >= 1);
	switch (a->mode & S_IFMT) {
	case S_IFREG:
		if (a->sparse)
			fuzz_check_sparse(a->sparse, a->nsparse, a->size, a->stored_size);
		else
			FUZZ_CHECK(a->stored_size == a->size);
		FUZZ_CHECK(a->data_offset <= data_end &&
			   a->stored_size <= data_end - a->data_offset);
		FUZZ_CHECK(!a->symlink);
		break;
	case S_IFLNK:
		FUZZ_CHECK(a->symlink && strlen(a->symlink) == a->size);
		break;
	case S_IFDIR:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
		FUZZ_CHECK(!a->symlink && !a->sparse);
		break;
	default:
		FUZZ_CHECK(!"a node of an unknown type");
	}
	FUZZ_CHECK(!a->implicit || S_ISDIR(a->mode));
	FUZZ_CHECK(a->nxattrs <= TAR_MAX_XATTRS);
	for (i = 0; i < a->nxattrs; i++)
		FUZZ_CHECK(a->xattrs[i].name && *a->xattrs[i].name);
}

uint64_t fuzz_check_tree(const struct tree *t, bool merged, unsigned max_layer,
			 uint64_t data_end)
{
	const struct tree_node *root = tree_root(t), *dir;
	struct buf stack = BUF_INIT; /* const struct tree_node *[] */
	uint32_t *names = NULL;      /* names seen per id */
	size_t cap = 0, live = 1, id;
	uint64_t h = FUZZ_HASH_INIT;

	FUZZ_CHECK(root && tree_node_attr(root)->id == 1);
	FUZZ_CHECK(S_ISDIR(tree_node_attr(root)->mode));
	FUZZ_CHECK(tree_parent(t, root) == root);
	FUZZ_CHECK(tree_node_by_id(t, 1) == root);
	FUZZ_CHECK(tree_lookup_path(t, "") == root && tree_lookup_path(t, ".") == root);
	check_node(tree_node_attr(root), max_layer, data_end);
	h = hash_attr(h, tree_node_attr(root));
	tw_must(buf_add(&stack, &root, sizeof(root)));
	while (stack.len) {
		uint64_t cookie = 0;
		uint32_t subdirs = 0;
		const struct tree_node *child;
		const char *name;

		stack.len -= sizeof(dir);
		memcpy(&dir, stack.data + stack.len, sizeof(dir));
		while (tree_readdir(t, dir, &cookie, &name, &child) == 1) {
			const struct tree_attr *a = tree_node_attr(child);

			FUZZ_CHECK(cookie != 0);
			FUZZ_CHECK(name && *name && !strchr(name, '/'));
			FUZZ_CHECK(strcmp(name, ".") && strcmp(name, ".."));
			FUZZ_CHECK(!merged || strncmp(name, ".wh.", 4));
			FUZZ_CHECK(tree_lookup(t, dir, name) == child);
			FUZZ_CHECK(a->id >= 2 && tree_node_by_id(t, a->id) == child);
			h = hash_str(h, name);
			h = hash_attr(h, a);
			if (a->id >= cap) {
				size_t ncap = cap ? cap : 64;

				while (ncap <= a->id)
					ncap *= 2;
				names = realloc(names, ncap * sizeof(*names));
				if (!names)
					abort();
				memset(names + cap, 0, (ncap - cap) * sizeof(*names));
				cap = ncap;
			}
			if (!names[a->id]++) {
				live++;
				check_node(a, max_layer, data_end);
			}
			if (S_ISDIR(a->mode)) {
				subdirs++;
				FUZZ_CHECK(names[a->id] == 1); /* no hard-linked directories */
				FUZZ_CHECK(tree_parent(t, child) == dir);
				tw_must(buf_add(&stack, &child, sizeof(child)));
			} else {
				FUZZ_CHECK(tree_parent(t, child) == NULL);
			}
		}
		FUZZ_CHECK(tree_node_attr(dir)->nlink == 2 + subdirs);
	}
	for (id = 2; id < cap; id++) {
		const struct tree_attr *a;

		if (!names[id])
			continue;
		a = tree_node_attr(tree_node_by_id(t, id));
		if (!S_ISDIR(a->mode))
			FUZZ_CHECK(a->nlink == names[id]);
	}
	FUZZ_CHECK(live == tree_node_count(t));
	(void)tree_memory(t);
	free(names);
	buf_release(&stack);
	return h;
}

/* Text that compresses well, so the samples and their indexes stay small. */
static void sample_text(struct buf *out, size_t n, unsigned seed)
{
	unsigned i;

	for (i = 0; out->len < n; i++)
		tw_must(buf_addf(out, "%u acrfs zran sample line %u of seed %u\n",
				 (i * 2654435761u) % 97, i, seed));
	out->len = n;
	out->data[n] = '\0';
}

/*
 * gzip with a deflate block ended (Z_BLOCK: not byte-aligned) every 8 KiB
 * of input: text this repetitive would otherwise fit in one block, and
 * access points are only recorded at block boundaries.
 */
static void gzip_blocks(const struct buf *in, struct buf *out)
{
	unsigned char tmp[65536];
	z_stream zs;
	size_t off = 0;
	int rc;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	do {
		size_t n = in->len - off < 8192 ? in->len - off : 8192;
		int flush = off + n == in->len ? Z_FINISH : Z_BLOCK;

		zs.next_in = (unsigned char *)in->data + off;
		zs.avail_in = (uInt)n;
		off += n;
		do {
			zs.next_out = tmp;
			zs.avail_out = sizeof(tmp);
			rc = deflate(&zs, flush);
			tw_must(buf_add(out, tmp, sizeof(tmp) - zs.avail_out));
		} while (zs.avail_out == 0 || (flush == Z_FINISH && rc == Z_OK));
	} while (off < in->len);
	if (rc != Z_STREAM_END)
		abort();
	deflateEnd(&zs);
}

void fuzz_gzip_sample(unsigned which, struct buf *gz, struct buf *plain)
{
	struct buf p = BUF_INIT, part = BUF_INIT;
	unsigned m, members = which == 0 ? 1 : 3;

	for (m = 0; m < members; m++) {
		buf_reset(&part);
		sample_text(&part, which == 0 ? 300000 : 90000 + 1000 * m, which * 10 + m);
		gzip_blocks(&part, gz);
		tw_must(buf_add(&p, part.data, part.len));
	}
	if (plain)
		tw_must(buf_add(plain, p.data, p.len));
	buf_release(&p);
	buf_release(&part);
}
