/*
 * acrfs-idxload — what a remount's first `ls rootfs` does with the layer
 * index files, phase by phase, without FUSE or a registry: read the files,
 * decode them into layer trees (lindex_parse: checksum, entries, tree),
 * merge the trees (tree_merge). For measuring (issue 12) and for checking
 * that two builds give the same trees.
 *
 *   acrfs-idxload [-n RUNS] [-j] FILE.idx...
 *
 * FILEs are index files of a cache directory (DIR/v1/index/<hex>.idx), the
 * bottom layer first. The key each file is checked against (kind, digest,
 * blob size) is taken from the file's own header: this tool measures, it
 * does not guard. -j decodes the files on parallel threads (as image.c's
 * loader does), else one after the other. Prints, per run, the seconds of
 * each phase, and once a fingerprint of every tree: a SHA-256 over each
 * node's path (readdir order), id, mode, nlink, size, layer and data offset,
 * so that two builds' outputs can be compared (node ids included).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/digest.h"
#include "image/lindex.h"
#include "image/tree.h"

#define MAX_FILES 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_file(const char *path, struct buf *out)
{
	struct stat st;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0 || fstat(fd, &st))
		return -errno;
	rc = buf_grow(out, (size_t)st.st_size);
	while (!rc && got < (size_t)st.st_size) {
		ssize_t n = pread(fd, out->data + got, (size_t)st.st_size - got, (off_t)got);

		if (n <= 0)
			rc = n < 0 ? -errno : -EIO;
		else
			got += (size_t)n;
	}
	out->len = got;
	close(fd);
	return rc;
}

struct job {
	const struct buf *file;
	unsigned layer;
	struct lindex_content c;
	const char *why;
	int rc;
	double secs;
};

static void *parse_main(void *arg)
{
	struct job *j = arg;
	const unsigned char *d = (const unsigned char *)j->file->data;
	struct lindex_key k = { 0 };
	double t0 = now();
	int i;

	j->why = "truncated";
	j->rc = -EBADMSG;
	if (j->file->len < 56)
		return NULL;
	for (i = 0; i < 4; i++)
		k.kind |= (int)d[12 + i] << (8 * i);
	memcpy(k.digest.raw, d + 16, DIGEST_RAW_LEN);
	for (i = 0; i < 8; i++)
		k.csize |= (uint64_t)d[48 + i] << (8 * i);
	k.layer = j->layer;
	j->rc = lindex_parse(&k, d, j->file->len, &j->c, &j->why);
	j->secs = now() - t0;
	return NULL;
}

/* Depth-first over the visible tree, in readdir order. */
static int fingerprint(const struct tree *t, char hex[DIGEST_STR_SIZE], size_t *nodes)
{
	struct buf out = BUF_INIT, path = BUF_INIT;
	struct frame {
		const struct tree_node *dir;
		uint64_t cookie;
		size_t plen;
	} *st = NULL;
	size_t depth = 0, cap = 0;
	struct digest sum;
	int rc = 0;

	*nodes = 0;
	cap = 64;
	st = malloc(cap * sizeof(*st));
	if (!st)
		return -ENOMEM;
	st[depth++] = (struct frame){ tree_root(t), 0, 0 };
	while (!rc && depth) {
		struct frame *f = &st[depth - 1];
		const struct tree_node *child;
		const struct tree_attr *a;
		const char *name;

		path.len = f->plen;
		if (!tree_readdir(t, f->dir, &f->cookie, &name, &child)) {
			depth--;
			continue;
		}
		a = tree_node_attr(child);
		rc = buf_addf(&path, "/%s", name);
		if (!rc)
			rc = buf_addf(&out, "%s %" PRIu64 " %o %u %" PRIu64 " %u %" PRIu64 "\n",
				      path.data, a->id, a->mode, a->nlink, a->size, a->layer,
				      a->data_offset);
		(*nodes)++;
		if (!rc && (a->mode & 0170000) == 0040000) {
			if (depth == cap) {
				struct frame *ns = realloc(st, 2 * cap * sizeof(*st));

				if (!ns) {
					rc = -ENOMEM;
					break;
				}
				st = ns;
				cap *= 2;
			}
			st[depth] = (struct frame){ child, 0, path.len };
			depth++;
		}
	}
	if (!rc)
		rc = digest_of_buf(&sum, out.data ? out.data : "", out.len);
	if (!rc)
		digest_format(&sum, hex);
	buf_release(&out);
	buf_release(&path);
	free(st);
	return rc;
}

int main(int argc, char **argv)
{
	static struct buf files[MAX_FILES];
	static struct job jobs[MAX_FILES];
	struct tree *trees[MAX_FILES];
	pthread_t th[MAX_FILES];
	int runs = 1, parallel = 0, opt, run, rc = 0;
	size_t n, i;

	while ((opt = getopt(argc, argv, "n:j")) != -1) {
		if (opt == 'n')
			runs = atoi(optarg);
		else if (opt == 'j')
			parallel = 1;
		else
			return 2;
	}
	n = (size_t)(argc - optind);
	if (n == 0 || n > MAX_FILES || runs < 1) {
		fprintf(stderr, "usage: acrfs-idxload [-n RUNS] [-j] FILE.idx...\n");
		return 2;
	}
	for (run = 0; run < runs && !rc; run++) {
		struct tree *merged = NULL;
		double t0, t1, t2, t3;

		t0 = now();
		for (i = 0; i < n && !rc; i++) {
			buf_reset(&files[i]);
			rc = read_file(argv[optind + (int)i], &files[i]);
			if (rc)
				fprintf(stderr, "%s: %s\n", argv[optind + (int)i], strerror(-rc));
		}
		t1 = now();
		for (i = 0; i < n && !rc; i++) {
			jobs[i] = (struct job){ &files[i], (unsigned)i, { 0 }, NULL, 0, 0 };
			if (!parallel || pthread_create(&th[i], NULL, parse_main, &jobs[i]))
				parse_main(&jobs[i]), th[i] = 0;
		}
		for (i = 0; i < n && !rc; i++)
			if (th[i])
				pthread_join(th[i], NULL);
		t2 = now();
		for (i = 0; i < n && !rc; i++) {
			if (jobs[i].rc) {
				fprintf(stderr, "%s: %s (%s)\n", argv[optind + (int)i],
					strerror(-jobs[i].rc), jobs[i].why);
				rc = jobs[i].rc;
			}
			trees[i] = jobs[i].c.tree;
		}
		if (!rc)
			rc = tree_merge(&merged, trees, n);
		t3 = now();
		if (rc)
			fprintf(stderr, "merge: %s\n", strerror(-rc));
		printf("run %d: read %.4f s, decode %.4f s (", run + 1, t1 - t0, t2 - t1);
		for (i = 0; i < n; i++)
			printf("%s%.4f", i ? " " : "", jobs[i].secs);
		printf("), merge %.4f s, total %.4f s\n", t3 - t2, t3 - t0);
		if (!rc && run == runs - 1) {
			char hex[DIGEST_STR_SIZE];
			size_t nodes;

			for (i = 0; i <= n && !rc; i++) {
				const struct tree *t = i < n ? trees[i] : merged;

				rc = fingerprint(t, hex, &nodes);
				if (!rc)
					printf("%s %zu nodes, %zu bytes: %s\n",
					       i < n ? "layer" : "merged", nodes, tree_memory(t),
					       hex);
			}
		}
		tree_free(merged);
		for (i = 0; i < n; i++)
			lindex_content_release(&jobs[i].c);
	}
	for (i = 0; i < n; i++)
		buf_release(&files[i]);
	return rc ? 1 : 0;
}
