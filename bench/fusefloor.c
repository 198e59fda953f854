/*
 * fusefloor — the least work a FUSE file system can do per request.
 *
 * A benchmark anchor, not part of acrfs: a read-only, in-memory FUSE server
 * (libfuse low-level API) that serves a directory tree described by a list
 * file, with every reply precomputed at start-up. `find` over it measures
 * what the kernel and the machine charge for FUSE round trips alone, so
 * bench/content.sh can tell acrfs's own cost from the transport's.
 *
 * usage: fusefloor [--opendir] [--noplus] [--threads N] [--timeout S] [-f] [-o OPT]
 *                  LISTFILE MOUNTPOINT
 * LISTFILE: NUL-terminated records of
 *     find ROOT -mindepth 1 -printf '%y %m %s %U %G %T@ %P\0'
 * Default: OPENDIR answered ENOSYS (the kernel's no-opendir mode: no
 * OPENDIR / RELEASEDIR at all), READDIRPLUS always. --opendir: directory
 * handles like an ordinary file system. --noplus: READDIR + LOOKUP.
 * --timeout S: entry and attribute timeouts (default 86400; 0 makes every
 * stat(2) a round trip, which bench/roundtrip.sh times).
 * File contents read as zeros; symlink targets as "x".
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static double timeout = 86400.0;

struct node {
	char *name;		      /* last component; "" for the root */
	size_t parent;		      /* index */
	struct stat st;		      /* st_ino = index + 1 */
	size_t *kids, nkids, capkids; /* directories: sorted by name */
};

static struct node *nodes;
static size_t nnodes, capnodes;
static bool opt_opendir, opt_noplus;

static int add_node(const char *name, size_t parent, mode_t mode, size_t *out)
{
	struct node *n;

	if (nnodes == capnodes) {
		size_t cap = capnodes ? capnodes * 2 : 1024;
		struct node *p = realloc(nodes, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		nodes = p;
		capnodes = cap;
	}
	n = &nodes[nnodes];
	memset(n, 0, sizeof(*n));
	n->name = strdup(name);
	if (!n->name)
		return -ENOMEM;
	n->parent = parent;
	n->st.st_ino = nnodes + 1;
	n->st.st_mode = mode;
	n->st.st_nlink = S_ISDIR(mode) ? 2 : 1;
	n->st.st_blksize = 4096;
	if (nnodes) {
		struct node *p = &nodes[parent];

		if (p->nkids == p->capkids) {
			size_t cap = p->capkids ? p->capkids * 2 : 8;
			size_t *k = realloc(p->kids, cap * sizeof(*k));

			if (!k)
				return -ENOMEM;
			p->kids = k;
			p->capkids = cap;
		}
		p->kids[p->nkids++] = nnodes;
		if (S_ISDIR(mode))
			p->st.st_nlink++;
	}
	*out = nnodes++;
	return 0;
}

/* The child `name` of directory `dir` (linear: only used while loading). */
static long child_linear(size_t dir, const char *name)
{
	for (size_t i = 0; i < nodes[dir].nkids; i++)
		if (!strcmp(nodes[nodes[dir].kids[i]].name, name))
			return (long)nodes[dir].kids[i];
	return -1;
}

/* Walk `path` from the root, creating missing directories; the last
 * component gets `mode`. */
static int add_path(char *path, mode_t mode, size_t *out)
{
	size_t cur = 0;
	char *save = NULL, *c = strtok_r(path, "/", &save);

	while (c) {
		char *next = strtok_r(NULL, "/", &save);
		long k = child_linear(cur, c);
		int rc;

		if (k < 0) {
			rc = add_node(c, cur, next ? S_IFDIR | 0755 : mode, &cur);
			if (rc)
				return rc;
		} else {
			cur = (size_t)k;
			if (!next)
				nodes[cur].st.st_mode = mode;
		}
		c = next;
	}
	*out = cur;
	return 0;
}

static mode_t type_bits(char y)
{
	switch (y) {
	case 'd':
		return S_IFDIR;
	case 'l':
		return S_IFLNK;
	case 'c':
		return S_IFCHR;
	case 'b':
		return S_IFBLK;
	case 'p':
		return S_IFIFO;
	case 's':
		return S_IFSOCK;
	default:
		return S_IFREG;
	}
}

/* One record: "y mode size uid gid mtime path". */
static int load_record(char *r)
{
	char *f[6], *p = r;
	unsigned long long size;
	unsigned uid, gid;
	double mtime;
	size_t ix;
	int rc;

	for (int i = 0; i < 6; i++) {
		f[i] = p;
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		*p++ = '\0';
	}
	if (sscanf(f[2], "%llu", &size) != 1 || sscanf(f[3], "%u", &uid) != 1 ||
	    sscanf(f[4], "%u", &gid) != 1 || sscanf(f[5], "%lf", &mtime) != 1)
		return -EINVAL;
	rc = add_path(p, type_bits(f[0][0]) | (mode_t)strtoul(f[1], NULL, 8), &ix);
	if (rc)
		return rc;
	nodes[ix].st.st_size = (off_t)size;
	nodes[ix].st.st_blocks = (blkcnt_t)((size + 511) / 512);
	nodes[ix].st.st_uid = uid;
	nodes[ix].st.st_gid = gid;
	nodes[ix].st.st_mtim.tv_sec = (time_t)mtime;
	nodes[ix].st.st_mtim.tv_nsec = (long)((mtime - (double)(time_t)mtime) * 1e9);
	nodes[ix].st.st_atim = nodes[ix].st.st_ctim = nodes[ix].st.st_mtim;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(nodes[*(const size_t *)a].name, nodes[*(const size_t *)b].name);
}

static int load(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, root;
	ssize_t n;
	int rc;

	if (!f)
		return -errno;
	rc = add_node("", 0, S_IFDIR | 0755, &root);
	while (!rc && (n = getdelim(&line, &cap, '\0', f)) > 0)
		if (n > 1)
			rc = load_record(line);
	free(line);
	fclose(f);
	for (size_t i = 0; !rc && i < nnodes; i++)
		qsort(nodes[i].kids, nodes[i].nkids, sizeof(size_t), by_name);
	return rc;
}

static struct node *get(fuse_ino_t ino)
{
	return ino >= 1 && ino <= nnodes ? &nodes[ino - 1] : NULL;
}

static void fill_entry(const struct node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->st.st_ino;
	e->generation = 1;
	e->attr = n->st;
	e->attr_timeout = e->entry_timeout = timeout;
}

static void op_init(void *u, struct fuse_conn_info *conn)
{
	(void)u;
	if (!opt_noplus && (conn->capable & FUSE_CAP_READDIRPLUS))
		conn->want |= FUSE_CAP_READDIRPLUS;
	else
		conn->want &= ~FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *d = get(parent);
	struct fuse_entry_param e;
	size_t lo = 0, hi;

	if (!d || !S_ISDIR(d->st.st_mode)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	hi = d->nkids;
	while (lo < hi) { /* kids are sorted by name */
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, nodes[d->kids[mid]].name);

		if (!c) {
			fill_entry(&nodes[d->kids[mid]], &e);
			fuse_reply_entry(req, &e);
			return;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	fuse_reply_err(req, ENOENT);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = get(ino);

	(void)fi;
	if (n)
		fuse_reply_attr(req, &n->st, timeout);
	else
		fuse_reply_err(req, ENOENT);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (!opt_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct node *d = get(ino);
	char *buf, *p;
	size_t rem = size;

	if (!d || !S_ISDIR(d->st.st_mode)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = p = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Offsets: 0 ".", 1 "..", 2 + i child i. */
	for (off_t i = off; i < (off_t)d->nkids + 2; i++) {
		const struct node *n = i == 0	? d
				       : i == 1 ? &nodes[d->parent]
						: &nodes[d->kids[i - 2]];
		const char *name = i == 0 ? "." : i == 1 ? ".." : n->name;
		struct fuse_entry_param e;
		size_t len;

		fill_entry(n, &e);
		if (plus && i >= 2) {
			len = fuse_add_direntry_plus(req, p, rem, name, &e, i + 1);
		} else if (plus) {
			struct fuse_entry_param dot = {
			    .attr = {.st_ino = n->st.st_ino, .st_mode = S_IFDIR}};

			len = fuse_add_direntry_plus(req, p, rem, name, &dot, i + 1);
		} else {
			len = fuse_add_direntry(req, p, rem, name, &e.attr, i + 1);
		}
		if (len > rem)
			break;
		p += len;
		rem -= len;
	}
	fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = get(ino);

	if (!n || !S_ISREG(n->st.st_mode)) {
		fuse_reply_err(req, n ? EISDIR : ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct node *n = get(ino);
	char *zeros;

	(void)fi;
	if (!n || off >= n->st.st_size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if ((off_t)size > n->st.st_size - off)
		size = (size_t)(n->st.st_size - off);
	zeros = calloc(1, size);
	if (!zeros) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fuse_reply_buf(req, zeros, size);
	free(zeros);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	fuse_reply_readlink(req, "x");
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req); /* nodes are static */
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	(void)count;
	(void)f;
	fuse_reply_none(req);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .open = op_open,
    .read = op_read,
    .readlink = op_readlink,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
};

static int usage(void)
{
	fprintf(stderr, "usage: fusefloor [--opendir] [--noplus] [--threads N] [--timeout S] [-f] "
			"[-o OPT] LISTFILE MOUNTPOINT\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *cfg;
	struct fuse_session *se;
	const char *list = NULL, *mnt = NULL;
	unsigned threads = 16;
	bool fg = false;
	int rc;

	if (fuse_opt_add_arg(&args, argv[0]))
		return 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--opendir"))
			opt_opendir = true;
		else if (!strcmp(argv[i], "--noplus"))
			opt_noplus = true;
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout = atof(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "-f"))
			fg = true;
		else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			if (fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, argv[++i]))
				return 1;
		} else if (!list)
			list = argv[i];
		else if (!mnt)
			mnt = argv[i];
		else
			return usage();
	}
	if (!list || !mnt || !threads)
		return usage();
	rc = load(list);
	if (rc) {
		fprintf(stderr, "fusefloor: %s: %s\n", list, strerror(-rc));
		return 1;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se || fuse_set_signal_handlers(se) || fuse_session_mount(se, mnt))
		return 1;
	if (!fg && fuse_daemonize(0))
		return 1;
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return 1;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, threads);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return rc < 0 ? 1 : 0;
}
