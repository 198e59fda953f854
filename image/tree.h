/*
 * tree — the in-memory directory tree of one layer, and the merged rootfs.
 *
 * A layer tree is built by feeding it the entries of the layer's tar
 * (tree_add, usually through tree_tar_cb) in archive order; it keeps them as
 * stored, whiteout files (".wh.*") included. tree_merge() builds the rootfs
 * view of a stack of layer trees with OCI whiteout semantics.
 *
 * Nodes are inodes: hard links share one node, whose nlink counts the names
 * pointing at it; a directory's nlink is 2 + its subdirectories. Every node
 * has an id unique within its tree (1 = the root), stable for the tree's
 * lifetime, that the FUSE layer can turn into inode numbers.
 *
 * Bounds: a tree holds at most TREE_MAX_NODES nodes and as many names, and
 * TREE_MAX_ARENA bytes of names, symlink targets, xattrs and sparse maps;
 * building beyond that fails with -E2BIG (logged once, naming the bound), so
 * that no layer and no merge can take the process's memory. Names no Linux
 * file system can hold are not added (see tree_add).
 *
 * Threads: building (tree_add, tree_merge) needs exclusive access. Once built
 * a tree is never modified, and every read function below may be called from
 * any number of threads concurrently without locking. Nothing blocks.
 *
 * Ownership: every pointer returned (nodes, attrs, names, symlink targets,
 * xattrs, sparse maps) is borrowed from the tree and valid until tree_free().
 */
#ifndef ACRFS_TREE_H
#define ACRFS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/tar.h"

#define TREE_MAX_NODES (1u << 22)   /* nodes per tree, removed ones included; and names */
#define TREE_MAX_ARENA (256u << 20) /* bytes of names, link targets, xattrs, sparse maps */
#define TREE_NAME_MAX 255u          /* longest name (NAME_MAX) */
#define TREE_PATH_MAX 4095u         /* longest path or symlink target (PATH_MAX - 1) */
#define TREE_LOG_SKIPS 20u          /* skip log lines per tree */

struct tree;
struct tree_node;

struct tree_attr {
	uint64_t id;           /* unique in the tree; root = 1 */
	uint32_t mode;         /* S_IFMT bits | 07777; symlinks are always 0777 */
	uint32_t uid, gid;
	uint32_t nlink;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t rdev_major, rdev_minor; /* S_IFCHR / S_IFBLK */
	uint32_t layer;        /* layer_index of the entry that provides the node */
	uint64_t size;         /* files: logical size; symlinks: target length */
	/* Regular files: where the content is (see struct tar_entry). */
	uint64_t data_offset;
	uint64_t stored_size;
	const struct tar_sparse *sparse; /* NULL unless sparse */
	size_t nsparse;
	const char *symlink;   /* S_IFLNK: the target; NULL otherwise */
	const struct tar_xattr *xattrs;
	size_t nxattrs;
	bool implicit;         /* a directory no tar entry named (0755 0:0 mtime 0) */
};

/* 0 or -ENOMEM; *out = NULL on failure. The tree starts with an implicit root. */
int tree_new(struct tree **out);

/*
 * tree_new for a tree expected to hold about `nodes` nodes (and names) and
 * `arena` bytes of names, link targets, xattrs and sparse maps: the memory
 * for that much is set aside at once, so that building does not regrow (a
 * hint too small only costs regrowth; too large, address space that is
 * never touched). Hints beyond the bounds below are clamped. The tree is
 * the same as tree_new's in every other way: node ids and readdir order do
 * not depend on the hints. 0 or -ENOMEM.
 */
int tree_new_hint(struct tree **out, size_t nodes, size_t arena);
void tree_free(struct tree *t);

/* Lower this tree's bounds below TREE_MAX_NODES and TREE_MAX_ARENA (for a
 * caller with a smaller budget, and tests); higher values are ignored.
 * Nodes and bytes the tree holds already count. */
void tree_set_bounds(struct tree *t, uint32_t max_nodes, size_t max_arena);

/*
 * Add one tar entry, as tar extraction would: missing parent directories are
 * created implicitly; an entry replaces an earlier one with the same path (a
 * directory over a directory only updates the attributes and keeps the
 * children; anything else removes the old node, a directory with its
 * subtree); a hard link becomes another name of its target's node; a
 * symlink's mode is 0777 whatever the header says (as every Linux
 * extraction shows it). A hard link to a path this tree does not have (yet)
 * is a link to a lower layer's file: it is kept hidden (lookup, readdir and
 * tree_node_by_id do not show it, as extracting the layer alone could not
 * create it) for tree_merge to resolve; other hard links in the layer may
 * name it. Entries that cannot be applied are skipped with a log line
 * (TREE_LOG_SKIPS per tree) and 0 is returned: a path below a non-directory,
 * a hard link to a directory or removed target, a path longer than
 * TREE_PATH_MAX or with a name longer than TREE_NAME_MAX (it could be listed
 * but never looked up), a symlink target that is empty or longer than
 * TREE_PATH_MAX. Path "" updates the root's attributes. Paths (and hard-link
 * targets) need not be normalised: "a//b/./c/" is accepted, one escaping the
 * root is skipped with a log line.
 * Returns 0, -ENOMEM, or -E2BIG (a bound above exceeded).
 */
int tree_add(struct tree *t, const struct tar_entry *e, unsigned layer_index);

/* A tar_entry_cb adaptor: ctx is a struct tree_tar_ctx. */
struct tree_tar_ctx {
	struct tree *tree;
	unsigned layer_index;
};
int tree_tar_cb(void *ctx, const struct tar_entry *e);

/*
 * Merge layer trees, layers[0] at the bottom, into a new tree (*out, caller
 * frees with tree_free; NULL on failure). Applied per layer, top of the stack
 * last: ".wh..wh..opq" in a directory hides every child that directory got
 * from lower layers, wherever the marker sits in the tar; ".wh.<name>" hides
 * <name> from lower layers; other ".wh..wh.*" names are metadata; whiteout
 * names never appear in the result. An upper entry replaces a lower one; a
 * directory over a directory merges (an implicit upper directory keeps the
 * lower one's attributes, as `umoci unpack` does); a non-directory over a
 * directory removes the lower subtree, and a directory over a non-directory
 * replaces it. An implicit directory holding only whiteouts is not created.
 * Hard links of one layer stay one node. A layer's hard link to a file it
 * does not have becomes another name of the file at that path in the layers
 * below (as `umoci unpack` links to it): looked up before the layer's own
 * whiteouts apply, so the link keeps the file when the same layer whites the
 * target out; dropped with a log line when there is no such file. Nodes keep
 * the layer index and data location of the entry that provides them.
 * Everything is copied: the layer trees may be freed afterwards. The same
 * tree may appear several times. 0, -ENOMEM or -E2BIG (a bound exceeded).
 */
int tree_merge(struct tree **out, struct tree *const layers[], size_t n);

/*
 * True when tree_merge of `t` alone would show exactly what `t` shows (the
 * same names in the same order, the same attributes; node ids aside): it
 * has no whiteout names (".wh.*") and no hidden hard links to a lower
 * layer. O(names).
 */
bool tree_is_plain(const struct tree *t);

/*
 * Saving and restoring a merged tree (the rootfs file, image/lindex.c): the
 * node table and the name table, both in index order, replayed. A restored
 * tree has the same node ids, names, attributes, link counts and readdir
 * order and cookies as the saved one.
 *
 * tree_saveable: whether `t` can be saved so (a merged tree can: no hidden
 * nodes, every live node named, each directory named once by a directory
 * of a lower index, every directory's names in index order). O(nodes).
 * tree_nnodes: node ids run from 1 to it (removed ones included; ids that
 * tree_node_by_id does not return are removed). tree_ndents: name indexes
 * run from 1 to below it. tree_dent: name i's directory id, node id and
 * name; false for a removed name.
 *
 * Restoring (untrusted input; every step checks what it is given): a
 * tree_new_hint tree; tree_restore_node for every node in id order (NULL
 * `e`: a removed node; the root first, a directory; `e`'s path is unused,
 * its type not a hard link); tree_restore_dent for every name in index
 * order (parent 0: a removed name; else a live directory, a live node that
 * is not the root, and a valid name (no '/', not "." or "..", at most
 * TREE_NAME_MAX bytes, not a whiteout ".wh.*") not yet in that directory;
 * a directory only once, and only in a directory of a lower id);
 * tree_restore_done (every node given, every live node named). Each
 * returns 0, -EBADMSG for input that breaks a rule, -ENOMEM or -E2BIG (a
 * bound); the caller frees the tree on failure.
 */
bool tree_saveable(const struct tree *t);
size_t tree_nnodes(const struct tree *t);
size_t tree_ndents(const struct tree *t);
bool tree_dent(const struct tree *t, size_t i, uint64_t *parent, uint64_t *node,
	       const char **name);
int tree_restore_node(struct tree *t, const struct tar_entry *e, unsigned layer,
		      bool implicit);
int tree_restore_dent(struct tree *t, uint64_t parent, uint64_t node, const char *name,
		      size_t len);
int tree_restore_done(struct tree *t);

const struct tree_node *tree_root(const struct tree *t);

/* The child `name` of directory `dir`, or NULL. O(1) expected (hashed). */
const struct tree_node *tree_lookup(const struct tree *t,
				    const struct tree_node *dir, const char *name);

/* Walk a slash-separated relative path without following symlinks. NULL if
 * missing. "" and "." name the root. */
const struct tree_node *tree_lookup_path(const struct tree *t, const char *path);

/* The node with this id, or NULL (unknown or removed). O(1). */
const struct tree_node *tree_node_by_id(const struct tree *t, uint64_t id);

const struct tree_attr *tree_node_attr(const struct tree_node *n);

/* The parent directory of directory `dir` (the root is its own parent);
 * NULL if `dir` is not a directory. */
const struct tree_node *tree_parent(const struct tree *t,
				    const struct tree_node *dir);

/*
 * Iterate directory `dir` in a stable order (the order names were added).
 * Start with *cookie = 0. Returns 1 and sets *name / *child to the next
 * entry, updating *cookie so that a later call with that value continues
 * after it (cookies are never 0 after an entry, and stay valid for the tree's
 * lifetime: usable as FUSE readdir offsets); returns 0 at the end.
 */
int tree_readdir(const struct tree *t, const struct tree_node *dir,
		 uint64_t *cookie, const char **name,
		 const struct tree_node **child);

/* Number of live nodes (the root included; hidden ones not). */
size_t tree_node_count(const struct tree *t);

/* Memory the tree holds (approximate, for tests, benchmarks and memory
 * budgets): its nodes, names, hash table and arena bytes in use, with the
 * rest of the huge pages they touch (regions of 2 MiB or more are advised
 * for huge pages); address space set aside by tree_new_hint and never
 * touched is not counted. O(regions). */
size_t tree_memory(const struct tree *t);

#endif
