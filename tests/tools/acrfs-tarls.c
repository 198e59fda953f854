/*
 * acrfs-tarls — list (or cat from) plain tar layers through image/tar + image/tree.
 *
 *   acrfs-tarls [--merge] [--cat PATH] FILE.tar [FILE2.tar ...]
 *
 * Every FILE is parsed into a layer tree (layer index = position on the
 * command line, 0 = bottom). Without --merge each tree is listed after a
 * "# FILE" line; with --merge the merged rootfs is listed. One line per node,
 * sorted by path (the root is "." and only shown if a tar names it):
 *
 *   TYPE MODE UID:GID SIZE MTIME PATH [-> TARGET] [nlink=N] [xattrs=a,b] [implicit]
 *
 * TYPE is one of - d l c b p; MODE is 4 octal digits; SIZE is the logical
 * size (MAJOR,MINOR for devices); MTIME is seconds[.nanoseconds].
 * --cat PATH writes the content of a regular file to stdout, read from the
 * tar with pread at data_offset through the sparse map — the proof that the
 * recorded offsets are right. With several FILEs and no --merge, the topmost
 * tree holding PATH is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "image/tar.h"
#include "image/tree.h"

struct item {
	char *path;
	const struct tree_node *node;
};

static int load(const char *file, unsigned layer, struct tree **out)
{
	struct tree_tar_ctx ctx = { NULL, layer };
	struct tar_parser *p = NULL;
	static char chunk[1 << 16];
	int fd, rc;

	*out = NULL;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "acrfs-tarls: %s: %s\n", file, strerror(errno));
		return -errno;
	}
	rc = tree_new(&ctx.tree);
	if (!rc)
		rc = tar_parser_new(&p, tree_tar_cb, &ctx);
	while (!rc) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0) {
			rc = tar_parser_finish(p);
			break;
		}
		rc = tar_parser_feed(p, chunk, (size_t)n);
	}
	if (rc) {
		fprintf(stderr, "acrfs-tarls: %s: %s\n", file, strerror(-rc));
		tree_free(ctx.tree);
	} else {
		*out = ctx.tree;
	}
	tar_parser_free(p);
	close(fd);
	return rc;
}

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->path, ((const struct item *)b)->path);
}

/* Every node path of the tree, via an explicit stack of directories. */
static int collect(const struct tree *t, struct item **out, size_t *count)
{
	struct buf items = BUF_INIT, stack = BUF_INIT;
	struct item it;
	int rc = 0;

	it.path = strdup(".");
	it.node = tree_root(t);
	if (!it.path)
		return -ENOMEM;
	rc = buf_add(&items, &it, sizeof(it));
	if (!rc)
		rc = buf_add(&stack, &it, sizeof(it));
	while (!rc && stack.len) {
		struct item dir;
		uint64_t cookie = 0;
		const char *name;
		const struct tree_node *child;

		stack.len -= sizeof(dir);
		memcpy(&dir, stack.data + stack.len, sizeof(dir));
		while (!rc && tree_readdir(t, dir.node, &cookie, &name, &child)) {
			struct buf path = BUF_INIT;

			if (strcmp(dir.path, "."))
				rc = buf_addf(&path, "%s/%s", dir.path, name);
			else
				rc = buf_adds(&path, name);
			if (rc)
				break;
			it.path = buf_detach(&path, NULL);
			it.node = child;
			rc = buf_add(&items, &it, sizeof(it));
			if (!rc && S_ISDIR(tree_node_attr(child)->mode))
				rc = buf_add(&stack, &it, sizeof(it));
		}
	}
	buf_release(&stack);
	*out = (struct item *)items.data;
	*count = items.len / sizeof(struct item);
	qsort(*out, *count, sizeof(**out), cmp_item);
	return rc;
}

static char type_char(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return 'd';
	case S_IFLNK:
		return 'l';
	case S_IFCHR:
		return 'c';
	case S_IFBLK:
		return 'b';
	case S_IFIFO:
		return 'p';
	default:
		return '-';
	}
}

static void print_tree(const struct tree *t)
{
	struct item *items = NULL;
	size_t n = 0, i, j;

	if (collect(t, &items, &n)) {
		fprintf(stderr, "acrfs-tarls: out of memory\n");
		exit(1);
	}
	for (i = 0; i < n; i++) {
		const struct tree_attr *a = tree_node_attr(items[i].node);

		if (i == 0 && !strcmp(items[i].path, ".") && a->implicit)
			goto next;
		printf("%c %04o %" PRIu32 ":%" PRIu32 " ", type_char(a->mode),
		       a->mode & 07777, a->uid, a->gid);
		if (S_ISCHR(a->mode) || S_ISBLK(a->mode))
			printf("%" PRIu32 ",%" PRIu32, a->rdev_major, a->rdev_minor);
		else
			printf("%" PRIu64, a->size);
		printf(" %" PRId64, a->mtime_sec);
		if (a->mtime_nsec)
			printf(".%09" PRIu32, a->mtime_nsec);
		printf(" %s", items[i].path);
		if (a->symlink)
			printf(" -> %s", a->symlink);
		if (!S_ISDIR(a->mode) && a->nlink > 1)
			printf(" nlink=%" PRIu32, a->nlink);
		for (j = 0; j < a->nxattrs; j++)
			printf("%s%s", j ? "," : " xattrs=", a->xattrs[j].name);
		if (a->implicit)
			printf(" implicit");
		putchar('\n');
next:
		free(items[i].path);
	}
	free(items);
}

static int cat_file(const char *file, const struct tree_attr *a)
{
	static char chunk[1 << 16];
	uint64_t off = 0;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		perror(file);
		return 1;
	}
	while (off < a->size) {
		uint64_t stored = off, run = a->size - off;
		bool hole = false;
		size_t n;

		if (a->sparse)
			run = tar_sparse_locate(a->sparse, a->nsparse, a->size, off,
						&stored, &hole);
		n = run < sizeof(chunk) ? (size_t)run : sizeof(chunk);
		if (hole) {
			memset(chunk, 0, n);
		} else {
			ssize_t r = pread(fd, chunk, n, (off_t)(a->data_offset + stored));

			if (r <= 0) {
				fprintf(stderr, "acrfs-tarls: short read in %s\n", file);
				close(fd);
				return 1;
			}
			n = (size_t)r;
		}
		if (fwrite(chunk, 1, n, stdout) != n) {
			close(fd);
			return 1;
		}
		off += n;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cat = NULL;
	bool merge = false;
	struct tree **trees;
	int i, first, nfiles, rc = 0;

	log_init(LOG_LVL_WARN, false);
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		if (!strcmp(argv[i], "--merge")) {
			merge = true;
		} else if (!strcmp(argv[i], "--cat") && i + 1 < argc) {
			cat = argv[++i];
		} else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else {
			break;
		}
	}
	first = i;
	nfiles = argc - first;
	if (nfiles <= 0) {
		fprintf(stderr,
			"usage: acrfs-tarls [--merge] [--cat PATH] FILE.tar [FILE2.tar ...]\n");
		return 2;
	}
	trees = calloc((size_t)nfiles, sizeof(*trees));
	if (!trees)
		return 1;
	for (i = 0; i < nfiles; i++)
		if (load(argv[first + i], (unsigned)i, &trees[i]))
			return 1;
	if (merge) {
		struct tree *m;

		if (tree_merge(&m, trees, (size_t)nfiles)) {
			fprintf(stderr, "acrfs-tarls: merge failed\n");
			return 1;
		}
		for (i = 0; i < nfiles; i++)
			tree_free(trees[i]);
		trees[0] = m;
		nfiles = 1;
	}
	if (cat) {
		const struct tree_node *n = NULL;

		for (i = nfiles - 1; i >= 0 && !n; i--)
			n = tree_lookup_path(trees[i], cat);
		if (!n || !S_ISREG(tree_node_attr(n)->mode)) {
			fprintf(stderr, "acrfs-tarls: %s: not a regular file in the tree\n", cat);
			rc = 1;
		} else {
			rc = cat_file(argv[first + tree_node_attr(n)->layer],
				      tree_node_attr(n));
		}
	} else {
		for (i = 0; i < nfiles; i++) {
			if (!merge)
				printf("# %s\n", argv[first + i]);
			print_tree(trees[i]);
		}
	}
	for (i = 0; i < nfiles; i++)
		tree_free(trees[i]);
	free(trees);
	return rc;
}
