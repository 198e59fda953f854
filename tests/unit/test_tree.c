/*
 * Layer trees and the merged rootfs: implicit parents, replacement, hard
 * links, lookup/readdir at scale, memory, deep paths, and OCI whiteout
 * semantics (whiteouts, opaque markers in any position, replacement rules).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/log.h"
#include "image/lindex.h"
#include "image/tar.h"
#include "image/tree.h"
#include "tarw.h"

/* ---- helpers ---------------------------------------------------------- */

static struct tar_entry ent(const char *path, enum tar_type type, unsigned mode)
{
	struct tar_entry e;

	memset(&e, 0, sizeof(e));
	e.path = path;
	e.linkname = "";
	e.type = type;
	e.mode = mode;
	e.mtime_sec = 1000;
	return e;
}

static void add(struct tree *t, const char *path, enum tar_type type,
		unsigned layer)
{
	struct tar_entry e = ent(path, type, type == TAR_DIR ? 0750 : 0640);

	if (type == TAR_REG) {
		e.size = 10 + layer;
		e.stored_size = e.size;
		e.data_offset = 512 * (layer + 1);
	}
	assert_int_equal(tree_add(t, &e, layer), 0);
}

static void add_link(struct tree *t, const char *path, enum tar_type type,
		     const char *target, unsigned layer)
{
	struct tar_entry e = ent(path, type, 0777);

	e.linkname = target;
	assert_int_equal(tree_add(t, &e, layer), 0);
}

/* name is a whiteout or one of the three names given. */
static bool is_whiteout_or(const char *name, const char *a, const char *b, const char *c)
{
	return !strncmp(name, ".wh.", 4) || !strcmp(name, a) || !strcmp(name, b) ||
	       !strcmp(name, c);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * "path type mode nlink L<layer>[ i][ ->target]" per node, sorted, one per
 * line; the root is left out unless a tar named it.
 */
static char *dump(const struct tree *t)
{
	struct buf out = BUF_INIT, lines = BUF_INIT, stack = BUF_INIT;
	struct {
		const struct tree_node *n;
		char *path;
	} fr;
	char **v;
	size_t i, n;

	fr.n = tree_root(t);
	fr.path = strdup("");
	tw_must(buf_add(&stack, &fr, sizeof(fr)));
	while (stack.len) {
		uint64_t cookie = 0;
		const char *name;
		const struct tree_node *c;
		char *dir;

		stack.len -= sizeof(fr);
		memcpy(&fr, stack.data + stack.len, sizeof(fr));
		dir = fr.path;
		while (tree_readdir(t, fr.n, &cookie, &name, &c)) {
			const struct tree_attr *a = tree_node_attr(c);
			struct buf l = BUF_INIT;
			char *p;

			tw_must(buf_addf(&l, "%s%s%s", dir, *dir ? "/" : "", name));
			p = strdup(buf_cstr(&l));
			tw_must(buf_addf(&l, " %c %04o %" PRIu32 " L%" PRIu32 "%s",
					 S_ISDIR(a->mode) ? 'd' : S_ISLNK(a->mode) ? 'l'
								       : '-',
					 a->mode & 07777, a->nlink, a->layer,
					 a->implicit ? " i" : ""));
			if (a->symlink)
				tw_must(buf_addf(&l, " ->%s", a->symlink));
			{
				char *s = buf_detach(&l, NULL);

				tw_must(buf_add(&lines, &s, sizeof(s)));
			}
			if (S_ISDIR(a->mode)) {
				struct {
					const struct tree_node *n;
					char *path;
				} sub = { c, p };

				tw_must(buf_add(&stack, &sub, sizeof(sub)));
			} else {
				free(p);
			}
		}
		free(dir);
	}
	v = (char **)lines.data;
	n = lines.len / sizeof(char *);
	qsort(v, n, sizeof(*v), cmp_str);
	for (i = 0; i < n; i++) {
		tw_must(buf_addf(&out, "%s\n", v[i]));
		free(v[i]);
	}
	buf_release(&lines);
	buf_release(&stack);
	return buf_detach(&out, NULL);
}

#define assert_dump(t, want)                   \
	do {                                   \
		char *d_ = dump(t);            \
		assert_string_equal(d_, want); \
		free(d_);                      \
	} while (0)

static const struct tree_attr *attr(const struct tree *t, const char *path)
{
	const struct tree_node *n = tree_lookup_path(t, path);

	assert_non_null(n);
	return tree_node_attr(n);
}

/* ---- layer trees ------------------------------------------------------ */

static void test_implicit_parents(void **s)
{
	struct tree *t;
	const struct tree_attr *a;

	(void)s;
	assert_int_equal(tree_new(&t), 0);
	add(t, "a/b/c", TAR_REG, 0);
	a = attr(t, "a");
	assert_true(a->implicit);
	assert_int_equal(a->mode, S_IFDIR | 0755);
	assert_int_equal(a->uid, 0);
	assert_int_equal(a->mtime_sec, 0);
	assert_dump(t, "a d 0755 3 L0 i\n"
		       "a/b d 0755 2 L0 i\n"
		       "a/b/c - 0640 1 L0\n");
	/* Naming the directory later updates it and keeps its children. */
	add(t, "a/", TAR_DIR, 0);
	a = attr(t, "a");
	assert_false(a->implicit);
	assert_int_equal(a->mode, S_IFDIR | 0750);
	assert_int_equal(a->mtime_sec, 1000);
	assert_non_null(tree_lookup_path(t, "a/b/c"));
	/* The root itself, named "" by the parser. */
	{
		struct tar_entry e = ent("", TAR_DIR, 0700);

		assert_true(tree_node_attr(tree_root(t))->implicit);
		assert_int_equal(tree_add(t, &e, 0), 0);
		assert_int_equal(tree_node_attr(tree_root(t))->mode, S_IFDIR | 0700);
		assert_false(tree_node_attr(tree_root(t))->implicit);
	}
	tree_free(t);
}

static void test_replace(void **s)
{
	struct tree *t;
	const struct tree_node *before;
	struct tar_entry e;

	(void)s;
	assert_int_equal(tree_new(&t), 0);
	add(t, "f", TAR_REG, 0);
	add(t, "f", TAR_REG, 3); /* later wins */
	assert_int_equal(attr(t, "f")->layer, 3);
	assert_int_equal(attr(t, "f")->size, 13);

	add(t, "d/x/y", TAR_REG, 0);
	add(t, "d/keep", TAR_REG, 0);
	before = tree_lookup_path(t, "d");
	add(t, "d", TAR_DIR, 1); /* dir over dir keeps children and the node */
	assert_ptr_equal(tree_lookup_path(t, "d"), before);
	assert_non_null(tree_lookup_path(t, "d/x/y"));
	add(t, "d/x", TAR_REG, 2); /* a file over a dir drops the subtree */
	assert_null(tree_lookup_path(t, "d/x/y"));
	add(t, "f", TAR_DIR, 4); /* a dir over a file */
	e = ent("f/inside", TAR_SYMLINK, 0640); /* a symlink is 0777 whatever its header says */
	e.linkname = "../d";
	assert_int_equal(tree_add(t, &e, 4), 0);
	assert_dump(t, "d d 0750 2 L1\n"
		       "d/keep - 0640 1 L0\n"
		       "d/x - 0640 1 L2\n"
		       "f d 0750 2 L4\n"
		       "f/inside l 0777 1 L4 ->../d\n");
	/* Entries below a non-directory are skipped. */
	add(t, "d/keep/sub", TAR_REG, 5);
	assert_null(tree_lookup_path(t, "d/keep/sub"));
	assert_int_equal(tree_node_count(t), 6);
	tree_free(t);
}

static void test_hardlinks(void **s)
{
	struct tree *t;

	(void)s;
	assert_int_equal(tree_new(&t), 0);
	add(t, "bin/busybox", TAR_REG, 0);
	add_link(t, "bin/sh", TAR_HARDLINK, "bin/busybox", 0);
	add_link(t, "usr/bin/ls", TAR_HARDLINK, "bin/busybox", 0);
	assert_ptr_equal(tree_lookup_path(t, "bin/sh"), tree_lookup_path(t, "bin/busybox"));
	assert_ptr_equal(tree_lookup_path(t, "usr/bin/ls"), tree_lookup_path(t, "bin/sh"));
	assert_int_equal(attr(t, "bin/sh")->nlink, 3);
	/* Missing, later and directory targets are skipped. */
	add_link(t, "early", TAR_HARDLINK, "late", 0);
	add(t, "late", TAR_REG, 0);
	add_link(t, "dirlink", TAR_HARDLINK, "bin", 0);
	add_link(t, "nothing", TAR_HARDLINK, "no/such", 0);
	assert_null(tree_lookup_path(t, "early"));
	assert_null(tree_lookup_path(t, "dirlink"));
	assert_null(tree_lookup_path(t, "nothing"));
	/* A link onto itself changes nothing. */
	add_link(t, "bin/sh", TAR_HARDLINK, "bin/sh", 0);
	assert_int_equal(attr(t, "bin/sh")->nlink, 3);
	/* Replacing one name leaves the group smaller. */
	add(t, "bin/busybox", TAR_REG, 1);
	assert_int_equal(attr(t, "bin/sh")->nlink, 2);
	assert_int_equal(attr(t, "bin/busybox")->nlink, 1);
	/* Removing a directory holding a name of the group, too. */
	add(t, "usr", TAR_REG, 1);
	assert_int_equal(attr(t, "bin/sh")->nlink, 1);
	/* A hard link to a symlink shares the symlink. */
	add_link(t, "s", TAR_SYMLINK, "bin/sh", 0);
	add_link(t, "s2", TAR_HARDLINK, "s", 0);
	assert_string_equal(attr(t, "s2")->symlink, "bin/sh");
	assert_int_equal(attr(t, "s")->nlink, 2);
	/* Replacing the directory that holds the target by a link to it. */
	add(t, "x/t", TAR_REG, 0);
	add_link(t, "x", TAR_HARDLINK, "x/t", 0);
	assert_null(tree_lookup_path(t, "x"));
	tree_free(t);
}

static void test_readdir_lookup_ids(void **s)
{
	static const char *const names[] = { "zeta", "alpha", "mid", ".wh.gone",
					     ".wh..wh..opq" };
	struct tree *t;
	const struct tree_node *d, *c, *root;
	const char *name;
	uint64_t cookie = 0, resume = 0;
	size_t i;

	(void)s;
	assert_int_equal(tree_new(&t), 0);
	for (i = 0; i < 5; i++) {
		char p[64];

		snprintf(p, sizeof(p), "dir/%s", names[i]);
		add(t, p, i == 2 ? TAR_DIR : TAR_REG, 0);
	}
	root = tree_root(t);
	assert_int_equal(tree_node_attr(root)->id, 1);
	assert_ptr_equal(tree_node_by_id(t, 1), root);
	d = tree_lookup(t, root, "dir");
	assert_non_null(d);
	assert_ptr_equal(tree_parent(t, d), root);
	assert_ptr_equal(tree_parent(t, root), root);
	assert_int_equal(tree_node_attr(d)->nlink, 3); /* 2 + "mid" */
	/* Insertion order, whiteouts kept as stored (regular files). */
	for (i = 0; tree_readdir(t, d, &cookie, &name, &c); i++) {
		assert_string_equal(name, names[i]);
		assert_ptr_equal(tree_lookup(t, d, name), c);
		assert_ptr_equal(tree_node_by_id(t, tree_node_attr(c)->id), c);
		assert_true(cookie != 0);
		if (i == 1)
			resume = cookie;
	}
	assert_int_equal(i, 5);
	assert_true(S_ISREG(attr(t, "dir/.wh.gone")->mode));
	/* Resuming from a cookie continues after that entry. */
	assert_int_equal(tree_readdir(t, d, &resume, &name, &c), 1);
	assert_string_equal(name, "mid");
	assert_null(tree_lookup(t, d, "nope"));
	assert_null(tree_lookup(t, c, "x")); /* not a directory */
	assert_null(tree_node_by_id(t, 0));
	assert_null(tree_node_by_id(t, 999));
	assert_ptr_equal(tree_lookup_path(t, ""), root);
	assert_ptr_equal(tree_lookup_path(t, "./dir//mid/"), tree_lookup(t, d, "mid"));
	tree_free(t);
}

static void test_big_dir(void **s)
{
	struct tree *t;
	const struct tree_node *d, *c;
	const char *name;
	uint64_t cookie = 0;
	char p[64];
	size_t i, n = 0;

	(void)s;
	assert_int_equal(tree_new(&t), 0);
	for (i = 0; i < 100000; i++) {
		snprintf(p, sizeof(p), "big/file-%zu", i);
		add(t, p, TAR_REG, 0);
	}
	d = tree_lookup_path(t, "big");
	for (i = 0; i < 100000; i += 7) {
		snprintf(p, sizeof(p), "file-%zu", i);
		c = tree_lookup(t, d, p);
		assert_non_null(c);
	}
	while (tree_readdir(t, d, &cookie, &name, &c)) {
		snprintf(p, sizeof(p), "file-%zu", n++);
		assert_string_equal(name, p);
	}
	assert_int_equal(n, 100000);
	tree_free(t);
}

static void test_memory_200k(void **s)
{
	struct tree *t;
	size_t i, mem;
	char p[128];

	(void)s;
	assert_int_equal(tree_new(&t), 0);
	for (i = 0; i < 200000; i++) {
		snprintf(p, sizeof(p), "usr/share/pkg-%zu/sub-%zu/file-name-%zu.txt",
			 i / 1000, (i / 50) % 20, i);
		add(t, p, TAR_REG, 0);
	}
	mem = tree_memory(t);
	print_message("200k files (+%zu dirs): %zu bytes in the tree (%.1f MB)\n",
		      tree_node_count(t) - 200000, mem, mem / 1e6);
	assert_true(mem < 100u * 1000 * 1000);
	assert_true(mem > 200000u * 64); /* the estimate isn't vacuous */
	tree_free(t);
}

static void test_deep_path(void **s)
{
	struct tree *t, *m;
	struct buf p = BUF_INIT;
	size_t i;

	(void)s;
	/* The deepest path there can be: 2047 directories, 4095 bytes. */
	for (i = 0; i < 2047; i++)
		tw_must(buf_adds(&p, "d/"));
	tw_must(buf_adds(&p, "f"));
	assert_int_equal(p.len, TREE_PATH_MAX);
	assert_int_equal(tree_new(&t), 0);
	add(t, p.data, TAR_REG, 0);
	assert_non_null(tree_lookup_path(t, p.data));
	assert_int_equal(tree_node_count(t), 2049);
	/* One byte more is a path no Linux file system holds: skipped, and
	 * no implicit parent is made for it. */
	p.data[p.len - 1] = 'g';
	tw_must(buf_adds(&p, "g"));
	add(t, p.data, TAR_REG, 0);
	assert_null(tree_lookup_path(t, p.data));
	assert_int_equal(tree_node_count(t), 2049);
	buf_reset(&p);
	for (i = 0; i < 20000; i++)
		tw_must(buf_adds(&p, "e/"));
	tw_must(buf_adds(&p, "leaf"));
	add(t, p.data, TAR_REG, 0);
	assert_null(tree_lookup_path(t, "e"));
	assert_int_equal(tree_node_count(t), 2049);
	/* Merge walks it without recursion, then a file replaces the top. */
	assert_int_equal(tree_merge(&m, &t, 1), 0);
	assert_int_equal(tree_node_count(m), 2049);
	tree_free(m);
	add(t, "d", TAR_REG, 0);
	assert_int_equal(tree_node_count(t), 2);
	tree_free(t);
	buf_release(&p);
}

/* Names no Linux file system can hold are never added: one longer than 255
 * bytes could be listed but not looked up (ls -l, find and du of its
 * directory fail with "File name too long"). */
static void test_unholdable_names(void **s)
{
	struct tree *t;
	char n255[256], n256[257], p[600], target[4100];
	const struct tree_node *c;
	const char *name;
	uint64_t cookie = 0;
	size_t listed = 0;

	(void)s;
	memset(n255, 'a', 255);
	n255[255] = '\0';
	memset(n256, 'b', 256);
	n256[256] = '\0';
	assert_int_equal(tree_new(&t), 0);
	add(t, n255, TAR_REG, 0);
	add(t, n256, TAR_REG, 0);
	snprintf(p, sizeof(p), "dir/%s/below", n256); /* a long name in the middle */
	add(t, p, TAR_REG, 0);
	snprintf(p, sizeof(p), "dir/%s", n256);       /* a long name at the end */
	add(t, p, TAR_DIR, 0);
	add(t, "dir/ok", TAR_REG, 0);
	/* Symlink targets: PATH_MAX - 1 bytes at most, and not empty. */
	memset(target, 'x', 4095);
	target[4095] = '\0';
	add_link(t, "sym4095", TAR_SYMLINK, target, 0);
	target[4095] = 'x';
	target[4096] = '\0';
	add_link(t, "sym4096", TAR_SYMLINK, target, 0);
	add_link(t, "symempty", TAR_SYMLINK, "", 0);
	/* A hard link named or aimed by a long name. */
	add_link(t, n256 + 1, TAR_HARDLINK, n255, 0); /* 255 bytes: fine */
	add_link(t, "hl2", TAR_HARDLINK, n256, 0);
	while (tree_readdir(t, tree_root(t), &cookie, &name, &c)) {
		assert_true(strlen(name) <= TREE_NAME_MAX);
		listed++;
	}
	assert_int_equal(listed, 4); /* n255, dir, sym4095, the 255-byte link */
	assert_non_null(tree_lookup_path(t, n255));
	assert_int_equal(attr(t, n255)->nlink, 2);
	assert_null(tree_lookup_path(t, n256));
	assert_null(tree_lookup_path(t, "hl2"));
	assert_int_equal(attr(t, "sym4095")->size, 4095);
	assert_null(tree_lookup_path(t, "sym4096"));
	assert_null(tree_lookup_path(t, "symempty"));
	/* "dir" holds only "ok": nothing was made for the long names. */
	cookie = 0;
	assert_int_equal(tree_readdir(t, tree_lookup_path(t, "dir"), &cookie, &name, &c), 1);
	assert_string_equal(name, "ok");
	assert_int_equal(tree_readdir(t, tree_lookup_path(t, "dir"), &cookie, &name, &c), 0);
	assert_int_equal(tree_node_count(t), 5); /* root, n255, dir, ok, sym4095 */
	tree_free(t);
}

static void test_from_tar(void **s)
{
	struct buf b = BUF_INIT;
	struct tree_tar_ctx ctx = { NULL, 7 };
	struct tar_parser *p;
	const struct tree_attr *a;

	(void)s;
	tw_file(&b, "etc/hostname", "box\n");
	tw_simple(&b, "etc/hosts.lnk", '1', "etc/hostname");
	tw_file(&b, "../escape", "nope");
	tw_end(&b);
	assert_int_equal(tree_new(&ctx.tree), 0);
	assert_int_equal(tar_parser_new(&p, tree_tar_cb, &ctx), 0);
	assert_int_equal(tar_parser_feed(p, b.data, b.len), 0);
	assert_int_equal(tar_parser_finish(p), 0);
	a = attr(ctx.tree, "etc/hosts.lnk");
	assert_int_equal(a->layer, 7);
	assert_int_equal(a->nlink, 2);
	assert_int_equal(a->size, 4);
	assert_memory_equal(b.data + a->data_offset, "box\n", 4);
	assert_dump(ctx.tree, "etc d 0755 2 L7 i\n"
			      "etc/hostname - 0644 2 L7\n"
			      "etc/hosts.lnk - 0644 2 L7\n");
	tar_parser_free(p);
	tree_free(ctx.tree);
	buf_release(&b);
}

/* ---- merge ------------------------------------------------------------ */

/* Not 0: layer() builds with tree_new_hint(layer_hint nodes, 64 bytes
 * each). */
static size_t layer_hint;

static struct tree *layer(void)
{
	struct tree *t;

	if (layer_hint)
		assert_int_equal(tree_new_hint(&t, layer_hint, 64 * layer_hint), 0);
	else
		assert_int_equal(tree_new(&t), 0);
	return t;
}

static void same_attr(const struct tree_attr *a, const struct tree_attr *b)
{
	size_t i;

	assert_int_equal(a->id, b->id);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->nlink, b->nlink);
	assert_int_equal(a->mtime_sec, b->mtime_sec);
	assert_int_equal(a->mtime_nsec, b->mtime_nsec);
	assert_int_equal(a->rdev_major, b->rdev_major);
	assert_int_equal(a->rdev_minor, b->rdev_minor);
	assert_int_equal(a->layer, b->layer);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->data_offset, b->data_offset);
	assert_int_equal(a->stored_size, b->stored_size);
	assert_int_equal(a->implicit, b->implicit);
	assert_int_equal(!a->symlink, !b->symlink);
	if (a->symlink)
		assert_string_equal(a->symlink, b->symlink);
	assert_int_equal(!a->sparse, !b->sparse);
	assert_int_equal(a->nsparse, b->nsparse);
	if (a->nsparse)
		assert_memory_equal(a->sparse, b->sparse, a->nsparse * sizeof(*a->sparse));
	assert_int_equal(a->nxattrs, b->nxattrs);
	for (i = 0; i < a->nxattrs; i++) {
		assert_string_equal(a->xattrs[i].name, b->xattrs[i].name);
		assert_int_equal(a->xattrs[i].value_len, b->xattrs[i].value_len);
		assert_memory_equal(a->xattrs[i].value, b->xattrs[i].value, a->xattrs[i].value_len);
	}
}

/*
 * `m` saved as a rootfs file and read back (image/lindex.h) is the same
 * tree: every node id with the same attributes, every directory with the
 * same names, children and readdir cookies, every name found by lookup.
 */
static void check_restore(const struct tree *m)
{
	struct digest key = { { 7 } };
	struct buf file = BUF_INIT;
	struct tree *r = NULL;
	const char *why = NULL;
	uint64_t id;

	assert_true(tree_saveable(m));
	assert_int_equal(lindex_rootfs_build(&key, 64, m, &file), 0);
	assert_int_equal(lindex_rootfs_parse(&key, 64, file.data, file.len, &r, &why), 0);
	assert_int_equal(tree_nnodes(r), tree_nnodes(m));
	assert_int_equal(tree_ndents(r), tree_ndents(m));
	assert_int_equal(tree_node_count(r), tree_node_count(m));
	for (id = 1; id <= tree_nnodes(m); id++) {
		const struct tree_node *a = tree_node_by_id(m, id), *b = tree_node_by_id(r, id);
		uint64_t ca = 0, cb = 0;
		const char *na, *nb;
		const struct tree_node *xa, *xb;

		assert_int_equal(!a, !b);
		if (!a)
			continue;
		same_attr(tree_node_attr(a), tree_node_attr(b));
		for (;;) {
			int ga = tree_readdir(m, a, &ca, &na, &xa), gb = tree_readdir(r, b, &cb, &nb, &xb);

			assert_int_equal(ga, gb);
			if (!ga)
				break;
			assert_int_equal(ca, cb);
			assert_string_equal(na, nb);
			assert_int_equal(tree_node_attr(xa)->id, tree_node_attr(xb)->id);
			assert_ptr_equal(tree_lookup(r, b, na), xb);
		}
	}
	tree_free(r);
	/* Another key or layer count: refused. */
	key.raw[0] = 8;
	assert_int_equal(lindex_rootfs_parse(&key, 64, file.data, file.len, &r, &why), -EBADMSG);
	assert_null(r);
	key.raw[0] = 7;
	assert_int_equal(lindex_rootfs_parse(&key, 63, file.data, file.len, &r, &why), -EBADMSG);
	assert_string_equal(why, "written for other layers");
	buf_release(&file);
}

/* Every merge of these tests is also saved and restored (check_restore). */
static struct tree *merge(struct tree **l, size_t n)
{
	struct tree *m;

	assert_int_equal(tree_merge(&m, l, n), 0);
	check_restore(m);
	return m;
}

static void free_all(struct tree **l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		tree_free(l[i]);
}

static void test_merge_whiteouts(void **s)
{
	struct tree *l[3], *m;

	(void)s;
	l[0] = layer();
	add(l[0], "etc", TAR_DIR, 0);
	add(l[0], "etc/passwd", TAR_REG, 0);
	add(l[0], "etc/shadow", TAR_REG, 0);
	add(l[0], "var/cache/apt/a", TAR_REG, 0);
	add(l[0], "var/cache/apt/b", TAR_REG, 0);
	add(l[0], "tmp/x", TAR_REG, 0);
	l[1] = layer();
	add(l[1], "etc/.wh.shadow", TAR_REG, 1);     /* file */
	add(l[1], "var/cache/.wh.apt", TAR_REG, 1);  /* directory */
	add(l[1], "var/cache/apt", TAR_DIR, 1);      /* same layer: survives */
	add(l[1], "var/cache/apt/new", TAR_REG, 1);
	add(l[1], "tmp/.wh..wh.plnk", TAR_REG, 1);   /* metadata */
	add(l[1], ".wh.nothing", TAR_REG, 1);        /* hides nothing */
	add(l[1], "ghost/.wh.x", TAR_REG, 1);        /* creates no dir */
	l[2] = layer();
	add(l[2], "etc/shadow", TAR_REG, 2);         /* back again */
	m = merge(l, 3);
	assert_dump(m, "etc d 0750 2 L0\n"
		       "etc/passwd - 0640 1 L0\n"
		       "etc/shadow - 0640 1 L2\n"
		       "tmp d 0755 2 L0 i\n"
		       "tmp/x - 0640 1 L0\n"
		       "var d 0755 3 L0 i\n"
		       "var/cache d 0755 3 L0 i\n"
		       "var/cache/apt d 0750 2 L1\n"
		       "var/cache/apt/new - 0640 1 L1\n");
	assert_int_equal(attr(m, "etc/shadow")->size, 12);
	assert_int_equal(attr(m, "etc/shadow")->data_offset, 512 * 3);
	tree_free(m);
	free_all(l, 3);
}

static void test_merge_opaque_order(void **s)
{
	struct tree *l[2], *m;
	int order;

	(void)s;
	/* The marker before, between and after the layer's own entries. */
	for (order = 0; order < 3; order++) {
		l[0] = layer();
		add(l[0], "d/lower1", TAR_REG, 0);
		add(l[0], "d/sub/lower2", TAR_REG, 0);
		add(l[0], "d/same", TAR_REG, 0);
		add(l[0], "other/keep", TAR_REG, 0);
		l[1] = layer();
		if (order == 0)
			add(l[1], "d/.wh..wh..opq", TAR_REG, 1);
		add(l[1], "d/upper1", TAR_REG, 1);
		if (order == 1)
			add(l[1], "d/.wh..wh..opq", TAR_REG, 1);
		add(l[1], "d/same", TAR_REG, 1);
		if (order == 2)
			add(l[1], "d/.wh..wh..opq", TAR_REG, 1);
		m = merge(l, 2);
		assert_dump(m, "d d 0755 2 L0 i\n"
			       "d/same - 0640 1 L1\n"
			       "d/upper1 - 0640 1 L1\n"
			       "other d 0755 2 L0 i\n"
			       "other/keep - 0640 1 L0\n");
		tree_free(m);
		free_all(l, 2);
	}
	/* An opaque directory with nothing else in the layer empties it. */
	l[0] = layer();
	add(l[0], "d/x", TAR_REG, 0);
	l[1] = layer();
	add(l[1], "d/.wh..wh..opq", TAR_REG, 1);
	m = merge(l, 2);
	assert_dump(m, "d d 0755 2 L0 i\n");
	tree_free(m);
	free_all(l, 2);
}

static void test_merge_replace(void **s)
{
	struct tree *l[2], *m;
	struct tar_entry e;

	(void)s;
	l[0] = layer();
	add(l[0], "dir2file/a/b", TAR_REG, 0);
	add(l[0], "file2dir", TAR_REG, 0);
	add(l[0], "link2dir", TAR_SYMLINK, 0);
	add(l[0], "merged", TAR_DIR, 0);
	add(l[0], "merged/low", TAR_REG, 0);
	add(l[0], "attrs", TAR_DIR, 0);
	add(l[0], "implicit-over", TAR_DIR, 0);
	add(l[0], "implicit-over/low", TAR_REG, 0);
	l[1] = layer();
	add(l[1], "dir2file", TAR_REG, 1);
	add(l[1], "file2dir/x", TAR_REG, 1);  /* implicit dir over a file */
	add(l[1], "link2dir", TAR_DIR, 1);
	add(l[1], "merged", TAR_DIR, 1);
	add(l[1], "merged/up", TAR_REG, 1);
	e = ent("attrs", TAR_DIR, 01777);
	e.uid = 33;
	assert_int_equal(tree_add(l[1], &e, 1), 0);
	add(l[1], "implicit-over/up", TAR_REG, 1);
	m = merge(l, 2);
	assert_dump(m, "attrs d 1777 2 L1\n"
		       "dir2file - 0640 1 L1\n"
		       "file2dir d 0755 2 L1 i\n"
		       "file2dir/x - 0640 1 L1\n"
		       "implicit-over d 0750 2 L0\n"
		       "implicit-over/low - 0640 1 L0\n"
		       "implicit-over/up - 0640 1 L1\n"
		       "link2dir d 0750 2 L1\n"
		       "merged d 0750 2 L1\n"
		       "merged/low - 0640 1 L0\n"
		       "merged/up - 0640 1 L1\n");
	assert_int_equal(attr(m, "attrs")->uid, 33);
	tree_free(m);
	free_all(l, 2);
}

static void test_merge_hardlinks_and_copy(void **s)
{
	struct tree *l[2], *m;
	struct tar_entry e;
	static const char val[] = "\0v\0";
	struct tar_xattr x = { "security.capability", val, 3 };
	struct tar_sparse sp = { 5, 2, 0 };
	const struct tree_attr *a;

	(void)s;
	l[0] = layer();
	add(l[0], "bin/busybox", TAR_REG, 0);
	add_link(l[0], "bin/sh", TAR_HARDLINK, "bin/busybox", 0);
	add_link(l[0], "bin/ls", TAR_HARDLINK, "bin/busybox", 0);
	e = ent("cap", TAR_REG, 04755);
	e.xattrs = &x;
	e.nxattrs = 1;
	e.sparse = &sp;
	e.nsparse = 1;
	e.size = 100;
	e.stored_size = 2;
	e.data_offset = 4096;
	assert_int_equal(tree_add(l[0], &e, 0), 0);
	add_link(l[0], "sym", TAR_SYMLINK, "bin/sh", 0);
	l[1] = layer();
	add(l[1], "bin/.wh.ls", TAR_REG, 1);
	m = merge(l, 2);
	free_all(l, 2); /* the merged tree owns copies of everything */
	assert_ptr_equal(tree_lookup_path(m, "bin/sh"), tree_lookup_path(m, "bin/busybox"));
	assert_int_equal(attr(m, "bin/sh")->nlink, 2);
	assert_null(tree_lookup_path(m, "bin/ls"));
	a = attr(m, "cap");
	assert_int_equal(a->mode, S_IFREG | 04755);
	assert_int_equal(a->nxattrs, 1);
	assert_string_equal(a->xattrs[0].name, "security.capability");
	assert_int_equal(a->xattrs[0].value_len, 3);
	assert_memory_equal(a->xattrs[0].value, val, 3);
	assert_int_equal(a->nsparse, 1);
	assert_int_equal(a->sparse[0].offset, 5);
	assert_int_equal(a->data_offset, 4096);
	assert_int_equal(a->size, 100);
	assert_string_equal(attr(m, "sym")->symlink, "bin/sh");
	assert_int_equal(attr(m, "sym")->size, 6);
	tree_free(m);
}

/*
 * Hard links to files of lower layers, as `umoci unpack` resolves them
 * (tests/integration/60-image.sh compares the same cases with it): the link
 * becomes another name of the lower file, with the file's attributes; it
 * keeps the file when its layer whites the target out; links to a lower
 * hard link and links to such links join one group.
 */
static void test_merge_lower_hardlinks(void **s)
{
	struct tree *l[3], *m;
	struct tar_entry e;
	const struct tree_node *c;
	const char *name;
	uint64_t cookie = 0;

	(void)s;
	l[0] = layer();
	e = ent("a1", TAR_REG, 0640);
	e.uid = 7;
	e.size = 3;
	e.stored_size = 3; /* as tar.c reports a plain file */
	e.data_offset = 1024;
	assert_int_equal(tree_add(l[0], &e, 0), 0);
	add(l[0], "a2", TAR_REG, 0);
	add(l[0], "a3", TAR_REG, 0);
	add(l[0], "a4", TAR_REG, 0);
	add_link(l[0], "a4h", TAR_HARDLINK, "a4", 0);
	add(l[0], "a5", TAR_REG, 0);
	add(l[0], "f/a8", TAR_REG, 0);
	add(l[0], "dir", TAR_DIR, 0);
	l[1] = layer();
	e = ent("b1", TAR_HARDLINK, 0600); /* the header's own attributes do not count */
	e.uid = 9;
	e.linkname = "a1";
	assert_int_equal(tree_add(l[1], &e, 1), 0);
	add_link(l[1], "b2", TAR_HARDLINK, "a2", 1);
	add(l[1], ".wh.a2", TAR_REG, 1);             /* after the link */
	add(l[1], ".wh.a3", TAR_REG, 1);             /* before the link */
	add_link(l[1], "b3", TAR_HARDLINK, "a3", 1);
	add_link(l[1], "b4", TAR_HARDLINK, "a4h", 1); /* to a lower hard link */
	add_link(l[1], "c5", TAR_HARDLINK, "a5", 1);
	add_link(l[1], "d5", TAR_HARDLINK, "c5", 1);  /* to a link to a lower file */
	add_link(l[1], "new/e8", TAR_HARDLINK, "f/a8", 1);
	add(l[1], "f/.wh..wh..opq", TAR_REG, 1);
	add_link(l[1], "nothing", TAR_HARDLINK, "no/such", 1);
	add_link(l[1], "dirlink", TAR_HARDLINK, "dir", 1);
	add_link(l[1], "gone", TAR_HARDLINK, "a5", 1);
	add(l[1], "gone", TAR_REG, 1);              /* a later entry replaces the link */
	/* The layer alone cannot have them: hidden in its own tree. */
	assert_null(tree_lookup_path(l[1], "b1"));
	assert_null(tree_lookup(l[1], tree_root(l[1]), "d5"));
	while (tree_readdir(l[1], tree_root(l[1]), &cookie, &name, &c))
		assert_true(is_whiteout_or(name, "new", "f", "gone"));
	l[2] = layer();
	add(l[2], ".wh.a4", TAR_REG, 2);
	m = merge(l, 3);
	assert_dump(m, "a1 - 0640 2 L0\n"
		       "a4h - 0640 2 L0\n"
		       "a5 - 0640 3 L0\n"
		       "b1 - 0640 2 L0\n"
		       "b2 - 0640 1 L0\n"
		       "b3 - 0640 1 L0\n"
		       "b4 - 0640 2 L0\n"
		       "c5 - 0640 3 L0\n"
		       "d5 - 0640 3 L0\n"
		       "dir d 0750 2 L0\n"
		       "f d 0755 2 L0 i\n"
		       "gone - 0640 1 L1\n"
		       "new d 0755 2 L1 i\n"
		       "new/e8 - 0640 1 L0\n");
	assert_ptr_equal(tree_lookup_path(m, "b1"), tree_lookup_path(m, "a1"));
	assert_int_equal(attr(m, "b1")->uid, 7);
	assert_int_equal(attr(m, "b1")->data_offset, 1024);
	assert_ptr_equal(tree_lookup_path(m, "b4"), tree_lookup_path(m, "a4h"));
	assert_ptr_equal(tree_lookup_path(m, "d5"), tree_lookup_path(m, "a5"));
	assert_int_equal(attr(m, "new/e8")->size, 10);
	assert_int_equal(tree_node_count(m), 1 + 10);
	tree_free(m);
	tree_free(l[2]);
	/* The same layer again on top changes nothing: its links resolve to
	 * the same files. */
	{
		struct tree *m2;
		char *d1, *d2;

		m = merge(l, 2);
		l[2] = l[1];
		m2 = merge(l, 3);
		d1 = dump(m);
		d2 = dump(m2);
		assert_string_equal(d1, d2);
		assert_int_equal(attr(m2, "c5")->nlink, 3);
		assert_int_equal(attr(m2, "a4h")->nlink, 3);
		free(d1);
		free(d2);
		tree_free(m2);
		tree_free(m);
	}
	free_all(l, 2);
}

/*
 * "path id nlink" per visible node in readdir order (depth first): what
 * must not change between two builds of the same trees, node ids included
 * (inode numbers are made of them).
 */
static char *dump_ids(const struct tree *t)
{
	struct buf out = BUF_INIT;
	struct {
		const struct tree_node *dir;
		uint64_t cookie;
		size_t plen;
	} st[64];
	char path[4096];
	size_t depth = 0;

	st[depth].dir = tree_root(t);
	st[depth].cookie = 0;
	st[depth++].plen = 0;
	path[0] = '\0';
	while (depth) {
		const struct tree_node *c;
		const struct tree_attr *a;
		const char *name;

		path[st[depth - 1].plen] = '\0';
		if (!tree_readdir(t, st[depth - 1].dir, &st[depth - 1].cookie, &name, &c)) {
			depth--;
			continue;
		}
		a = tree_node_attr(c);
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s%s",
			 *path ? "/" : "", name);
		tw_must(buf_addf(&out, "%s %" PRIu64 " %" PRIu32 "\n", path, a->id, a->nlink));
		if (S_ISDIR(a->mode)) {
			assert_true(depth < 64);
			st[depth].dir = c;
			st[depth].cookie = 0;
			st[depth++].plen = strlen(path);
		}
	}
	return buf_detach(&out, NULL);
}

/* Three layers with a bit of everything the merge does: implicit parents,
 * entries coming back to a directory, replacement, hard links within and
 * across layers, whiteouts, an opaque directory, a directory over a file
 * and a file over a directory, a directory holding only whiteouts. */
static void golden_layers(struct tree *l[3])
{
	l[0] = layer();
	add(l[0], "usr", TAR_DIR, 0);
	add(l[0], "usr/bin/ls", TAR_REG, 0);
	add(l[0], "usr/lib/x/libx.so", TAR_REG, 0);
	add(l[0], "usr/bin/cat", TAR_REG, 0);
	add_link(l[0], "usr/bin/dog", TAR_HARDLINK, "usr/bin/cat", 0);
	add_link(l[0], "usr/bin/sh", TAR_SYMLINK, "dash", 0);
	add(l[0], "etc/a", TAR_REG, 0);
	add(l[0], "etc/b", TAR_REG, 0);
	add(l[0], "etc/d/e", TAR_REG, 0);
	add(l[0], "opt/o1", TAR_REG, 0);
	add(l[0], "opt/sub/o2", TAR_REG, 0);
	add(l[0], "usr/lib/x/liby.so", TAR_REG, 0);
	add(l[0], "etc/b", TAR_REG, 0); /* replaced: a new node */
	add(l[0], "file-then-dir", TAR_REG, 0);
	add(l[0], "dir-then-file/x", TAR_REG, 0);
	l[1] = layer();
	add(l[1], "etc/.wh.a", TAR_REG, 1);
	add(l[1], "etc/c", TAR_REG, 1);
	add(l[1], "opt/.wh..wh..opq", TAR_REG, 1);
	add(l[1], "opt/o3", TAR_REG, 1);
	add(l[1], "usr/bin/ls", TAR_REG, 1);
	add_link(l[1], "usr/bin/kitten", TAR_HARDLINK, "usr/bin/cat", 1);
	add(l[1], "new/deep/er/f", TAR_REG, 1);
	add(l[1], "new/g", TAR_REG, 1);
	add(l[1], "file-then-dir/y", TAR_REG, 1);
	add(l[1], "dir-then-file", TAR_REG, 1);
	add(l[1], "wh-only/.wh.nothing", TAR_REG, 1);
	l[2] = layer();
	add(l[2], "etc/d/.wh.e", TAR_REG, 2);
	add(l[2], "usr/lib/x/libz.so", TAR_REG, 2);
	add(l[2], "new/deep/.wh.er", TAR_REG, 2);
	add(l[2], "top", TAR_REG, 2);
}

/* The merged tree's node ids for golden_layers(), as acrfs gave them before
 * the merge and the tree's memory were reworked (issue 12): a rebuild of the
 * same image must give the same ids, whatever the version. */
static const char golden_ids[] = "usr 2 4\n"
				 "usr/bin 15 2\n"
				 "usr/bin/cat 21 3\n"
				 "usr/bin/dog 21 3\n"
				 "usr/bin/sh 22 1\n"
				 "usr/bin/ls 31 1\n"
				 "usr/bin/kitten 21 3\n"
				 "usr/lib 16 3\n"
				 "usr/lib/x 17 2\n"
				 "usr/lib/x/libx.so 18 1\n"
				 "usr/lib/x/liby.so 19 1\n"
				 "usr/lib/x/libz.so 35 1\n"
				 "etc 3 3\n"
				 "etc/d 12 2\n"
				 "etc/b 13 1\n"
				 "etc/c 33 1\n"
				 "opt 4 2\n"
				 "opt/o3 32 1\n"
				 "new 23 3\n"
				 "new/deep 27 2\n"
				 "new/g 28 1\n"
				 "file-then-dir 24 2\n"
				 "file-then-dir/y 26 1\n"
				 "dir-then-file 25 1\n"
				 "top 34 1\n";

static void test_merge_ids_golden(void **s)
{
	struct tree *l[3], *m;
	char *d;

	(void)s;
	golden_layers(l);
	m = merge(l, 3);
	d = dump_ids(m);
	assert_string_equal(d, golden_ids);
	free(d);
	tree_free(m);
	free_all(l, 3);
}

/* The same layers merged twice, and the same layers built with size hints
 * too small and too large (lindex_parse and tree_merge give hints), give
 * the same trees, ids included. */
static void test_merge_deterministic(void **s)
{
	static const size_t hints[] = { 0, 3, 100000 };
	struct tree *l[3][3], *m[4];
	char *want, *got;
	size_t h, i;

	(void)s;
	for (h = 0; h < 3; h++) {
		layer_hint = hints[h];
		golden_layers(l[h]);
	}
	layer_hint = 0;
	m[0] = merge(l[0], 3);
	m[1] = merge(l[0], 3);
	m[2] = merge(l[1], 3);
	m[3] = merge(l[2], 3);
	for (i = 0; i < 3; i++) {
		want = dump_ids(l[0][i]);
		for (h = 1; h < 3; h++) {
			got = dump_ids(l[h][i]);
			assert_string_equal(got, want);
			free(got);
		}
		free(want);
	}
	want = dump_ids(m[0]);
	assert_string_equal(want, golden_ids);
	for (i = 1; i < 4; i++) {
		got = dump_ids(m[i]);
		assert_string_equal(got, want);
		free(got);
		tree_free(m[i]);
	}
	free(want);
	tree_free(m[0]);
	for (h = 0; h < 3; h++)
		free_all(l[h], 3);
}

/* Bounds: past them a tree refuses to grow with -E2BIG (and logs once). */
static void test_bounds(void **s)
{
	struct tree *t, *m;
	char p[64], big[2000];
	size_t i;
	int rc = 0;
	struct tar_entry e;

	(void)s;
	assert_int_equal(tree_new(&t), 0);
	tree_set_bounds(t, 100, TREE_MAX_ARENA);
	for (i = 0; i < 200 && !rc; i++) {
		snprintf(p, sizeof(p), "d%zu/f", i);
		e = ent(p, TAR_REG, 0644);
		rc = tree_add(t, &e, 0);
	}
	assert_int_equal(rc, -E2BIG);
	assert_true(i <= 51); /* two nodes per entry */
	assert_int_equal(tree_add(t, &e, 0), -E2BIG); /* and stays so */
	tree_free(t);
	/* Names, link targets, xattrs: the arena. */
	assert_int_equal(tree_new(&t), 0);
	tree_set_bounds(t, TREE_MAX_NODES, 64 * 1024);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	rc = 0;
	for (i = 0; i < 100 && !rc; i++) {
		snprintf(p, sizeof(p), "s%zu", i);
		e = ent(p, TAR_SYMLINK, 0777);
		e.linkname = big;
		rc = tree_add(t, &e, 0);
	}
	assert_int_equal(rc, -E2BIG);
	assert_true(i > 20 && i < 40);
	/* A merge copies within its own (default) bounds. */
	assert_int_equal(tree_merge(&m, &t, 1), 0);
	tree_free(m);
	tree_free(t);
}

static void test_merge_big(void **s)
{
	struct tree *l[2], *m;
	size_t i;
	char p[64];

	(void)s;
	l[0] = layer();
	l[1] = layer();
	for (i = 0; i < 100000; i++) {
		snprintf(p, sizeof(p), "d%zu/f%zu", i % 100, i);
		add(l[0], p, TAR_REG, 0);
		if (i % 2) {
			snprintf(p, sizeof(p), "d%zu/.wh.f%zu", i % 100, i);
			add(l[1], p, TAR_REG, 1);
		}
	}
	m = merge(l, 2);
	assert_int_equal(tree_node_count(m), 1 + 100 + 50000);
	assert_null(tree_lookup_path(m, "d1/f1"));
	assert_non_null(tree_lookup_path(m, "d2/f2"));
	tree_free(m);
	free_all(l, 2);
}

/*
 * Every node in readdir order (depth first) with all its attributes but
 * the id: what a layer shown as the rootfs must share with the merge of it.
 */
static void listing(const struct tree *t, const struct tree_node *dir, const char *prefix,
		    struct buf *out)
{
	uint64_t cookie = 0;
	const char *name;
	const struct tree_node *c;

	while (tree_readdir(t, dir, &cookie, &name, &c)) {
		const struct tree_attr *a = tree_node_attr(c);
		char path[512];
		size_t i;

		snprintf(path, sizeof(path), "%s%s", prefix, name);
		tw_must(buf_addf(out, "%s %o %u:%u %u %" PRId64 ".%u %u,%u L%u %" PRIu64
				 " @%" PRIu64 "+%" PRIu64 " s%zu x%zu %s %s\n",
				 path, a->mode, a->uid, a->gid, a->nlink, a->mtime_sec,
				 a->mtime_nsec, a->rdev_major, a->rdev_minor, a->layer, a->size,
				 a->data_offset, a->stored_size, a->nsparse, a->nxattrs,
				 a->symlink ? a->symlink : "-", a->implicit ? "i" : "-"));
		for (i = 0; i < a->nxattrs; i++)
			tw_must(buf_addf(out, "  %s=%zu\n", a->xattrs[i].name,
					 a->xattrs[i].value_len));
		assert_ptr_equal(tree_lookup(t, dir, name), c);
		if (S_ISDIR(a->mode)) {
			strcat(path, "/");
			listing(t, c, path, out);
		}
	}
}

static char *listing_of(const struct tree *t)
{
	struct buf out = BUF_INIT;

	listing(t, tree_root(t), "", &out);
	tw_must(buf_addch(&out, '\0'));
	return buf_detach(&out, NULL);
}

/*
 * A layer without whiteouts or links to lower layers is "plain": the image
 * of it alone shows the layer's own tree, so tree_merge of it must show
 * exactly the same (names, readdir order, attributes). A whiteout, an
 * opaque marker or a link to a file the layer lacks makes it not plain.
 */
static void test_plain(void **s)
{
	static const char val[] = "abc";
	struct tar_xattr x = { "user.k", val, 3 };
	struct tar_entry e;
	struct tree *l, *m;
	char *a, *b;

	(void)s;
	l = layer();
	add(l, "z/deep/er/file", TAR_REG, 0);    /* implicit parents */
	add(l, "etc", TAR_DIR, 0);
	add(l, "etc/passwd", TAR_REG, 0);
	add(l, "etc/passwd", TAR_REG, 0);        /* replaced */
	add(l, "bin/busybox", TAR_REG, 0);
	add_link(l, "bin/sh", TAR_HARDLINK, "bin/busybox", 0);
	add_link(l, "usr/bin/ls", TAR_HARDLINK, "bin/busybox", 0);
	add_link(l, "s", TAR_SYMLINK, "bin/sh", 0);
	add(l, "d/x/y", TAR_REG, 0);
	add(l, "d/x", TAR_REG, 0);               /* a file over a directory */
	add(l, "a", TAR_REG, 0);
	add(l, "a", TAR_DIR, 0);                 /* a directory over a file */
	e = ent("dev/null", TAR_CHR, 0666);
	e.devmajor = 1;
	e.devminor = 3;
	assert_int_equal(tree_add(l, &e, 0), 0);
	e = ent("cap", TAR_REG, 0755);
	e.size = 9;
	e.stored_size = 9;
	e.data_offset = 4096;
	e.uid = 5;
	e.gid = 6;
	e.mtime_nsec = 7;
	e.xattrs = &x;
	e.nxattrs = 1;
	assert_int_equal(tree_add(l, &e, 0), 0);
	assert_true(tree_is_plain(l));
	m = merge(&l, 1);
	a = listing_of(l);
	b = listing_of(m);
	assert_string_equal(a, b);
	assert_non_null(strstr(a, "z/deep/er/file"));
	assert_int_equal(tree_node_count(l), tree_node_count(m));
	free(a);
	free(b);
	tree_free(m);

	/* Each of these makes it not plain. */
	add(l, "etc/.wh.passwd", TAR_REG, 0);
	assert_false(tree_is_plain(l));
	tree_free(l);
	l = layer();
	add(l, "d/f", TAR_REG, 0);
	add(l, "d/.wh..wh..opq", TAR_REG, 0);
	assert_false(tree_is_plain(l));
	tree_free(l);
	l = layer();
	add(l, "f", TAR_REG, 1);
	add_link(l, "link", TAR_HARDLINK, "lower/file", 1);
	assert_false(tree_is_plain(l));
	tree_free(l);
	l = layer();
	assert_true(tree_is_plain(l)); /* an empty layer */
	tree_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_implicit_parents),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_hardlinks),
		cmocka_unit_test(test_readdir_lookup_ids),
		cmocka_unit_test(test_big_dir),
		cmocka_unit_test(test_memory_200k),
		cmocka_unit_test(test_deep_path),
		cmocka_unit_test(test_unholdable_names),
		cmocka_unit_test(test_from_tar),
		cmocka_unit_test(test_merge_whiteouts),
		cmocka_unit_test(test_merge_opaque_order),
		cmocka_unit_test(test_merge_replace),
		cmocka_unit_test(test_merge_hardlinks_and_copy),
		cmocka_unit_test(test_merge_lower_hardlinks),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_merge_big),
		cmocka_unit_test(test_merge_ids_golden),
		cmocka_unit_test(test_merge_deterministic),
		cmocka_unit_test(test_plain),
	};

	log_init(getenv("TEST_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERROR, false);
	return cmocka_run_group_tests_name("tree", tests, NULL, NULL);
}
