/*
 * fusefloor: the fastest a FUSE file system can serve `find DIR | wc -l`.
 *
 * A benchmark anchor, not part of acrfs: a read-only, in-memory FUSE server
 * (libfuse3 low-level API) for a tree described by a list file, with every
 * answer precomputed at start-up, so a request costs an array index or a
 * binary search and one reply. `find` over it measures what the kernel and
 * the machine (VM exits, context switches, /dev/fuse copies) charge for the
 * FUSE round trips alone; a benchmark compares acrfs's `find` on the same
 * tree against it to separate acrfs's own work from that transport cost.
 *
 * usage: fusefloor [--opendir] [--noplus] [--threads N] [--timeout S] [-f]
 *                  [-o OPT]... LISTFILE MOUNTPOINT
 * LISTFILE: NUL-terminated records of, in any order (missing parents become
 * 0755 directories; the root is ino 1),
 *     find ROOT -mindepth 1 -printf '%y %m %s %U %G %T@ %P\0'
 * Default: OPENDIR answered ENOSYS (the kernel's no-opendir mode: no
 * OPENDIR/RELEASEDIR from then on) and READDIRPLUS always, the fewest round
 * trips. --opendir: directory handles and cached readdir, like an ordinary
 * file system. --noplus: READDIR, so the kernel LOOKUPs what it descends.
 * --timeout S: entry and attribute timeouts (default 86400; 0 makes every
 * stat(2) a round trip, which bench/roundtrip.sh times).
 * Files read as zeros; symlinks point to "x" (targets are not in the list).
 * -o OPT goes to libfuse: `-f -o debug` shows every request.
 */
#define FUSE_USE_VERSION 312
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <search.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct node {
	struct fuse_entry_param e; /* the LOOKUP/READDIRPLUS entry; e.attr for GETATTR */
	char *name;		   /* last path component; "" for the root */
	size_t parent;		   /* index; the root is its own parent */
	size_t first, nkids;	   /* children kids[first..first+nkids), by name */
};

/* The tree: built before the session starts, read-only afterwards. */
static struct node *nodes; /* nodes[i] is inode i + 1 */
static size_t nnodes, *kids;
static bool opt_opendir, opt_noplus;
static double timeout = 86400.0; /* entries and attributes, seconds */
static const char zeros[1 << 20]; /* READ data; the kernel asks <= 1 MiB */

/* ---- loading ------------------------------------------------------------ */

/* Load-time index of the nodes by place, for tsearch(): keys are index + 1. */
static int by_place(const void *a, const void *b)
{
	const struct node *x = &nodes[(uintptr_t)a - 1], *y = &nodes[(uintptr_t)b - 1];

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	return strcmp(x->name, y->name);
}

struct loader {
	void *index; /* tsearch() tree */
	size_t cap;  /* of nodes */
};

/* The node at `path` (cut up in place), created with any missing ancestors
 * as copies of the root: 0755 directories. */
static long walk(struct loader *l, char *path)
{
	size_t cur = 0;

	for (char *s = path, *end; *s; s = end) {
		struct node *n;
		void **hit;

		end = s + strcspn(s, "/");
		if (*end)
			*end++ = '\0';
		if (!*s)
			continue;
		if (nnodes == l->cap) {
			n = realloc(nodes, 2 * l->cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			nodes = n;
			l->cap *= 2;
		}
		n = &nodes[nnodes]; /* a candidate, kept if it is new */
		*n = nodes[0];
		n->parent = cur;
		n->name = s;
		hit = tsearch((void *)(uintptr_t)(nnodes + 1), &l->index, by_place);
		if (!hit)
			return -ENOMEM;
		if ((uintptr_t)*hit == nnodes + 1) {
			char *name = strdup(s);

			if (!name)
				return -ENOMEM;
			n->name = name;
			n->e.ino = n->e.attr.st_ino = ++nnodes;
		}
		cur = (uintptr_t)*hit - 1;
	}
	return (long)cur;
}

/* One record "y mode size uid gid mtime path"; the path may hold anything. */
static int load_record(struct loader *l, char *r)
{
	static const char types[] = "dflcbps";
	static const mode_t bits[] = { S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR,
				       S_IFBLK, S_IFIFO, S_IFSOCK };
	unsigned mode, uid, gid;
	unsigned long long size;
	long long sec;
	long ns = 0, ix;
	int t0 = 0, end = 0, digits = 0;
	char *p, *t = r[0] && r[1] == ' ' ? strchr(types, r[0]) : NULL;
	struct stat *st;

	if (!t || sscanf(r + 2, "%o %llu %u %u %n%lld%n", &mode, &size, &uid, &gid, &t0,
			 &sec, &end) != 5 || !end)
		return -EINVAL;
	p = r + 2 + end;
	if (*p == '.') /* the fraction, to nanoseconds */
		while (*++p >= '0' && *p <= '9')
			if (digits++ < 9)
				ns = ns * 10 + *p - '0';
	while (digits++ < 9)
		ns *= 10;
	if (r[2 + t0] == '-' && ns) { /* -1.25 s is -2 s + 0.75 s */
		sec--;
		ns = 1000000000 - ns;
	}
	if (*p++ != ' ' || !*p)
		return -EINVAL;
	ix = walk(l, p);
	if (ix <= 0)
		return ix < 0 ? (int)ix : -EINVAL;
	st = &nodes[ix].e.attr;
	st->st_mode = bits[t - types] | (mode & 07777);
	st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1; /* link_tree() adds subdirectories */
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_uid = uid;
	st->st_gid = gid;
	st->st_mtim = (struct timespec){ .tv_sec = (time_t)sec, .tv_nsec = ns };
	st->st_atim = st->st_ctim = st->st_mtim;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(nodes[*(const size_t *)a].name, nodes[*(const size_t *)b].name);
}

/* Per directory: its children sorted by name, and nlink 2 + subdirectories. */
static int link_tree(void)
{
	size_t at = 0;

	kids = malloc(nnodes * sizeof(*kids));
	if (!kids)
		return -ENOMEM;
	for (size_t i = 1; i < nnodes; i++) {
		nodes[nodes[i].parent].nkids++;
		nodes[nodes[i].parent].e.attr.st_nlink += S_ISDIR(nodes[i].e.attr.st_mode);
	}
	for (size_t i = 0; i < nnodes; i++) {
		nodes[i].first = at;
		at += nodes[i].nkids;
		nodes[i].nkids = 0;
	}
	for (size_t i = 1; i < nnodes; i++) {
		struct node *p = &nodes[nodes[i].parent];

		kids[p->first + p->nkids++] = i;
	}
	for (size_t i = 0; i < nnodes; i++)
		qsort(kids + nodes[i].first, nodes[i].nkids, sizeof(*kids), by_name);
	return 0;
}

static int load(const char *path)
{
	struct loader l = { .cap = 4096 };
	FILE *f = fopen(path, "r");
	struct stat fst;
	char *rec = NULL;
	size_t cap = 0;
	int rc = 0;

	if (!f)
		return -errno;
	nodes = malloc(l.cap * sizeof(*nodes));
	if (!nodes || fstat(fileno(f), &fst))
		rc = nodes ? -errno : -ENOMEM;
	if (!rc) /* the root: the list file's owner and mtime */
		nodes[nnodes++] = (struct node){
			.name = "",
			.e = { .ino = 1, .generation = 1,
			       .attr_timeout = timeout, .entry_timeout = timeout,
			       .attr = { .st_ino = 1, .st_mode = S_IFDIR | 0755, .st_nlink = 2,
					 .st_uid = fst.st_uid, .st_gid = fst.st_gid,
					 .st_blksize = 4096, .st_atim = fst.st_mtim,
					 .st_mtim = fst.st_mtim, .st_ctim = fst.st_mtim } },
		};
	while (!rc && getdelim(&rec, &cap, '\0', f) > 0)
		if (rec[0] && rec[0] != '\n') /* tolerate a stray newline */
			rc = load_record(&l, rec);
	if (!rc && ferror(f))
		rc = -EIO;
	while (l.index) /* before free(rec): a failed walk may leave a name in it */
		tdelete(*(void **)l.index, &l.index, by_place);
	free(rec);
	fclose(f);
	return rc ? rc : link_tree();
}

/* ---- requests: no allocation but the READDIR reply buffer --------------- */

static const struct node *node(fuse_ino_t ino)
{
	return ino >= 1 && ino <= nnodes ? &nodes[ino - 1] : NULL;
}

static const struct node *dir(fuse_ino_t ino)
{
	const struct node *d = node(ino);

	return d && S_ISDIR(d->e.attr.st_mode) ? d : NULL;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (!opt_noplus && (conn->capable & FUSE_CAP_READDIRPLUS))
		conn->want |= FUSE_CAP_READDIRPLUS;
	else
		conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const struct node *d = dir(parent);
	size_t lo = 0, hi = d ? d->nkids : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct node *n = &nodes[kids[d->first + mid]];
		int c = strcmp(name, n->name);

		if (!c) {
			fuse_reply_entry(req, &n->e);
			return;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	fuse_reply_err(req, d ? ENOENT : ENOTDIR);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct node *n = node(ino);

	(void)fi;
	if (n)
		fuse_reply_attr(req, &n->e.attr, timeout);
	else
		fuse_reply_err(req, ENOENT);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (!opt_opendir) {
		fuse_reply_err(req, ENOSYS); /* the kernel stops sending OPENDIR */
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* Offsets: 0 is ".", 1 "..", 2 + i child i; each entry carries the next. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	const struct node *d = dir(ino);
	size_t used = 0, len;
	char *buf = d && off >= 0 ? malloc(size) : NULL;

	if (!buf) {
		fuse_reply_err(req, !d ? ENOTDIR : off < 0 ? EINVAL : ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < d->nkids + 2; i++, used += len) {
		const struct node *n = i == 0 ? d : i == 1 ? &nodes[d->parent]
							   : &nodes[kids[d->first + i - 2]];
		const char *name = i == 0 ? "." : i == 1 ? ".." : n->name;

		if (!plus) {
			len = fuse_add_direntry(req, buf + used, size - used, name, &n->e.attr,
						(off_t)i + 1);
		} else if (i >= 2) {
			len = fuse_add_direntry_plus(req, buf + used, size - used, name, &n->e,
						     (off_t)i + 1);
		} else { /* ino 0: the kernel makes no dentry for "." and ".." */
			struct fuse_entry_param dot = { .attr = n->e.attr };

			len = fuse_add_direntry_plus(req, buf + used, size - used, name, &dot,
						     (off_t)i + 1);
		}
		if (len > size - used)
			break;
	}
	fuse_reply_buf(req, buf, used);
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

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
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
	const struct node *n = node(ino);
	off_t left = n && off >= 0 && off < n->e.attr.st_size ? n->e.attr.st_size - off : 0;

	(void)fi;
	if ((off_t)size > left)
		size = (size_t)left;
	fuse_reply_buf(req, zeros, size < sizeof(zeros) ? size : sizeof(zeros));
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

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255 };

	(void)ino;
	sv.f_files = nnodes;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_release,
	.statfs = op_statfs,
};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	const char *list = NULL, *mnt = NULL;
	unsigned long threads = 16;
	bool fg = false, mounted = false, bad = false;
	char *end;
	int rc = 1;

	if (fuse_opt_add_arg(&args, argv[0]) ||
	    fuse_opt_add_arg(&args, "-ofsname=fusefloor,subtype=fusefloor"))
		goto out;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--opendir")) {
			opt_opendir = true;
		} else if (!strcmp(a, "--noplus")) {
			opt_noplus = true;
		} else if (!strcmp(a, "--threads") && i + 1 < argc) {
			threads = strtoul(argv[++i], &end, 10);
			bad |= end == argv[i] || *end || !threads || threads > 10000;
		} else if (!strcmp(a, "--timeout") && i + 1 < argc) {
			timeout = strtod(argv[++i], &end);
			bad |= end == argv[i] || *end || !(timeout >= 0);
		} else if (!strcmp(a, "-f")) {
			fg = true;
		} else if (!strncmp(a, "-o", 2) && (a[2] || i + 1 < argc)) {
			if (fuse_opt_add_arg(&args, "-o") ||
			    fuse_opt_add_arg(&args, a[2] ? a + 2 : argv[++i]))
				goto out;
		} else if (a[0] != '-' && !mnt) {
			*(list ? &mnt : &list) = a;
		} else {
			bad = true;
		}
	}
	if (bad || !list || !mnt) {
		fprintf(stderr, "usage: fusefloor [--opendir] [--noplus] [--threads N] "
				"[--timeout S] [-f] [-o OPT]... LISTFILE MOUNTPOINT\n");
		rc = 2;
		goto out;
	}
	rc = load(list);
	if (rc) {
		fprintf(stderr, "fusefloor: %s: %s\n", list, strerror(-rc));
		rc = 1;
		goto out;
	}
	rc = 1;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se || fuse_set_signal_handlers(se))
		goto out;
	if (fuse_session_mount(se, mnt))
		goto out;
	mounted = true;
	if (!fg && fuse_daemonize(0)) /* the parent exits once the mount is live */
		goto out;
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto out;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, (unsigned)threads);
	rc = fuse_session_loop_mt(se, cfg) < 0; /* > 0: the signal that ended it */
out:
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	if (mounted)
		fuse_session_unmount(se);
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fuse_opt_free_args(&args);
	return rc;
}
