/*
 * The FUSE edge inside tag and digest directories: the image view (README,
 * "What a tag directory holds").
 *
 * Inodes (struct inode, fs/itable.h):
 *   K_TAG    <repo>/<tag>: a = repo, b = tag; its view is what the tag names
 *            now (fs/view.c resolves it, cached for the TTL).
 *   K_VROOT  <repo>/sha256:<hex> and an index's platform directories:
 *            a = repo, b = "sha256:<hex>"; key "P/<parent ino>/<name>|<b>".
 *            The directories in referrers/ are K_VROOT too, with key
 *            "F/<referrers/ ino>/<b>|<b>" (named by their digest); the 'F'
 *            tells them apart (their xattrs).
 *   K_VNODE  everything below a view root: a = repo,
 *            b = "<root ino>|<object>|<part>", key "X/" + b, where object
 *            is the address of the view object (fs/view.h: immutable, kept
 *            until views_free, one per repository and digest) in hex, and
 *            part is manifest.json, config.json, index.json, layers, referrers,
 *            "L<i>:<id>" (node <id> of layer i's tree, 1 = layers/<i>
 *            itself) or "R:<id>" (node of the merged rootfs, 1 = rootfs
 *            itself). The object is named by its address rather than its
 *            digest: readdirplus makes a key per entry, and a short one is
 *            cheaper to hash, compare and keep; resolving needs no lookup.
 * Keys carry the view root's inode, so a directory reached by two paths
 * (a tag and its digest, an index and its platform's digest) gets two
 * inodes: the kernel never sees a directory with two parents. Hard links of
 * a tree share a node id, hence an inode.
 *
 * Everything below a view root is content-addressed, so the kernel may keep
 * entries and attributes for VIEW_TIMEOUT; only the names directly in a tag
 * directory follow the mount's TTL (the tag may move), and so do those in a
 * referrers/ directory (new referrers are pushed at any time).
 *
 * referrers/ (every view root has one) lists one directory per referrer of
 * the root's manifest, in the registry's order (fs/view.h: the list is
 * cached for the TTL). Listing a view root or stat'ing referrers/ fetches
 * nothing; listing referrers/ or looking a name up in it fetches the list.
 *
 * Laziness: a tag's manifest is fetched when something inside it is looked
 * up; layers/<i> and rootfs stat without a fetch; their trees load (single
 * flight, image/layer.c) at the first lookup or opendir inside them.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "image/image.h"
#include "fs/itable.h"
#include "image/layer.h"
#include "fs/ll.h"
#include "fs/ll_acr.h"
#include "fs/prefetch.h"
#include "image/tree.h"
#include "fs/view.h"
#include "fs/dcache.h"
#include "registry/referrers.h"

#define VIEW_TIMEOUT ACRFS_VIEW_TIMEOUT
#define XATTR_PREFIX "user.acrfs."

enum part {
	P_MANIFEST = 1, P_CONFIG, P_INDEX, P_LAYERS, P_LAYER, P_ROOTFS, P_REFERRERS
};

/* A K_VNODE's b, parsed. */
struct vpath {
	uint64_t root;
	struct vobj *o;
	enum part part;
	unsigned layer; /* P_LAYER */
	uint64_t id;	/* P_LAYER, P_ROOTFS */
};

/* What a view inode stands for, resolved. */
struct vnode {
	struct vobj *o;
	struct vpath p;
	struct layer *l;	   /* P_LAYER; for P_ROOTFS the node's layer */
	const struct tree *t;	   /* P_LAYER / P_ROOTFS once loaded */
	const struct tree_node *n; /* node p.id of t */
	struct digest ref;	   /* child_of: the referrer a name in referrers/ is */
};

/* What an image's view root holds, in listing order, and the part of each. */
static const struct {
	const char *name, *part;
	uint32_t type;
} image_root[] = {
	{ "config.json", "config.json", S_IFREG },
	{ "layers", "layers", S_IFDIR },
	{ "manifest.json", "manifest.json", S_IFREG },
	{ "referrers", "referrers", S_IFDIR },
	{ "rootfs", "R:1", S_IFDIR },
};
#define N_IMAGE_ROOT (sizeof(image_root) / sizeof(image_root[0]))

/* A view directory resolved for one readdir request (there is no handle). */
struct vdir {
	enum { VD_IMAGE, VD_INDEX, VD_LAYERS, VD_TREE, VD_REFS } kind;
	struct vnode v;	  /* v.o always; VD_TREE: v.t and v.n too */
	struct dlist *hold; /* VD_REFS: the list's reference (vdir_done drops it) */
	const struct referrers *refs;
	uint64_t root;	  /* the view root's inode */
	uint64_t dir_ino; /* this directory's inode */
	const char *repo;
	double entry_timeout;
	size_t n;	/* entries of the fixed kinds */
	char key[96];	/* "X/<root>|<object>|" and, VD_TREE, "L<i>:" or "R:" */
	size_t keylen;	/* of that prefix; entries' keys are composed after it */
};

/* File handle. */
struct vfile {
	pthread_mutex_t lock; /* one reader state per handle */
	const char *bytes;    /* manifest / config / index bytes (borrowed) */
	size_t len;
	struct layer_reader *rd;
};

/* b was written by ref_vnode (never comes from outside the daemon). */
static int parse_vpath(const char *b, struct vpath *p)
{
	char *end;
	const char *part;

	memset(p, 0, sizeof(*p));
	p->root = strtoull(b, &end, 10);
	if (*end != '|')
		return -ESTALE;
	p->o = (struct vobj *)(uintptr_t)strtoull(end + 1, &end, 16);
	if (*end != '|' || !p->o)
		return -ESTALE;
	part = end + 1;
	if (!strcmp(part, "manifest.json"))
		p->part = P_MANIFEST;
	else if (!strcmp(part, "config.json"))
		p->part = P_CONFIG;
	else if (!strcmp(part, "index.json"))
		p->part = P_INDEX;
	else if (!strcmp(part, "layers"))
		p->part = P_LAYERS;
	else if (!strcmp(part, "referrers"))
		p->part = P_REFERRERS;
	else if (part[0] == 'L') {
		p->part = P_LAYER;
		p->layer = (unsigned)strtoul(part + 1, &end, 10);
		if (*end != ':')
			return -ESTALE;
		p->id = strtoull(end + 1, &end, 10);
	} else if (part[0] == 'R' && part[1] == ':') {
		p->part = P_ROOTFS;
		p->id = strtoull(part + 2, &end, 10);
	} else {
		return -ESTALE;
	}
	return p->id || (p->part != P_LAYER && p->part != P_ROOTFS) ? 0 : -ESTALE;
}

/* The view object of a view root (K_TAG or K_VROOT). */
static int root_obj(struct acrfs *fs, const struct inode *n, struct vobj **o)
{
	struct digest d;

	if (n->kind == K_TAG)
		return views_tag(fs->views, n->a, n->b, o);
	if (digest_parse(&d, n->b))
		return -ESTALE;
	return views_digest(fs->views, n->a, &d, o);
}

static bool is_root_kind(int kind)
{
	return kind == K_TAG || kind == K_VROOT;
}

/* Is `n` a directory of a referrers/ directory? */
static bool is_referrer(const struct inode *n)
{
	return n->kind == K_VROOT && n->key[0] == 'F';
}

/* Load the tree of a P_LAYER / P_ROOTFS node and find the node. The tree
 * and node are valid for the request (it is inside a reclaim read side:
 * fs/ll.h acrfs_req_enter), even if the memory budget evicts them. */
static int load_tree(struct vnode *v)
{
	struct image *img = vobj_image(v->o);
	int rc;

	if (!img)
		return -ESTALE;
	if (v->p.part == P_LAYER) {
		v->l = image_layer(img, v->p.layer);
		if (!v->l)
			return -ESTALE;
		rc = layer_get_tree(v->l, &v->t);
		if (rc)
			return rc;
	} else {
		/* A rootfs without one of its layers would be wrong, not partial. */
		for (size_t i = 0; i < image_nlayers(img); i++)
			if (layer_kind(image_layer(img, i)) == -ENOTSUP)
				return -ENOTSUP;
		rc = image_rootfs(img, &v->t);
		if (rc)
			return rc;
	}
	if (!v->t)
		return -EIO;
	v->n = tree_node_by_id(v->t, v->p.id);
	if (!v->n)
		return -ESTALE;
	if (v->p.part == P_ROOTFS)
		v->l = image_layer(img, tree_node_attr(v->n)->layer);
	return 0;
}

/*
 * Resolve K_VNODE `n`. `load`: load the tree of a layer / rootfs node
 * (never needed for their roots, which stat without a fetch).
 */
static int resolve(const struct inode *n, bool load, struct vnode *v)
{
	int rc;

	memset(v, 0, sizeof(*v));
	rc = parse_vpath(n->b, &v->p);
	if (rc)
		return rc;
	v->o = v->p.o;
	if ((v->p.part == P_LAYER || v->p.part == P_ROOTFS) && (load || v->p.id != 1))
		return load_tree(v);
	if (v->p.part == P_LAYER) {
		v->l = image_layer(vobj_image(v->o), v->p.layer);
		if (!v->l)
			return -ESTALE;
	}
	return 0;
}

static void dir_attr(struct acrfs *fs, struct stat *st, unsigned nlink)
{
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = nlink;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mounted_at;
}

static void tree_stat(const struct tree_attr *a, struct stat *st)
{
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	if (S_ISCHR(a->mode) || S_ISBLK(a->mode))
		st->st_rdev = makedev(a->rdev_major, a->rdev_minor);
	st->st_mtim.tv_sec = a->mtime_sec;
	st->st_mtim.tv_nsec = a->mtime_nsec;
	st->st_atim = st->st_ctim = st->st_mtim;
}

/* Attributes of the tree node `a` that inode `ino` stands for. */
static void tree_node_stat(uint64_t ino, const struct tree_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	tree_stat(a, st);
	st->st_ino = ino;
	st->st_blksize = 4096;
}

/* Attributes of a view inode (K_VROOT, K_VNODE). 0 or -errno. */
int acrfs_view_attr(struct acrfs *fs, const struct inode *n, struct stat *st)
{
	struct vnode v;
	const void *bytes;
	size_t len;
	int rc;

	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_blksize = 4096;
	if (n->kind == K_VROOT) {
		dir_attr(fs, st, 2);
		return 0;
	}
	rc = resolve(n, false, &v);
	if (rc)
		return rc;
	switch (v.p.part) {
	case P_MANIFEST:
	case P_INDEX:
	case P_CONFIG:
		dir_attr(fs, st, 1);
		st->st_mode = S_IFREG | 0444;
		if (v.p.part == P_CONFIG) {
			st->st_size = (off_t)image_config_blob(vobj_image(v.o))->size;
		} else {
			vobj_bytes(v.o, &bytes, &len);
			st->st_size = (off_t)len;
		}
		st->st_blocks = (st->st_size + 511) / 512;
		return 0;
	case P_LAYERS:
		dir_attr(fs, st, 2 + (unsigned)image_nlayers(vobj_image(v.o)));
		return 0;
	case P_REFERRERS:
		dir_attr(fs, st, 2); /* the count would cost the list */
		return 0;
	case P_LAYER:
	case P_ROOTFS:
		if (v.p.id == 1 && !v.n) {
			/* Not loaded: a plain directory until it is. */
			struct tree *t = v.l ? layer_tree(v.l) : NULL;

			if (t) {
				tree_stat(tree_node_attr(tree_root(t)), st);
				st->st_mode = S_IFDIR | (st->st_mode & 07777);
			} else {
				dir_attr(fs, st, 1);
				st->st_mode = S_IFDIR | 0755;
			}
			return 0;
		}
		tree_node_stat(n->ino, tree_node_attr(v.n), st);
		return 0;
	}
	return -ESTALE;
}

/* Decimal digits of `v` at `p`; returns the end (no terminator). */
static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while (v /= 10);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Hex digits of `v` at `p`; returns the end (no terminator). */
static char *put_hex(char *p, uint64_t v)
{
	char tmp[16];
	size_t n = 0;

	do
		tmp[n++] = "0123456789abcdef"[v & 15];
	while (v >>= 4);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* "X/<root>|<object>|" at `key` (room for VKEY_MAX): the start of the key of
 * every K_VNODE below view root `root` of `o`. Returns its length. */
#define VKEY_MAX 96
static size_t vkey_prefix(char *key, uint64_t root, const struct vobj *o)
{
	char *p = key;

	*p++ = 'X';
	*p++ = '/';
	p = put_u64(p, root);
	*p++ = '|';
	p = put_hex(p, (uint64_t)(uintptr_t)o);
	*p++ = '|';
	return (size_t)(p - key);
}

/* Reference the K_VNODE for `part` below view root `root` of `o`. */
static int ref_vnode(struct acrfs *fs, const char *repo, uint64_t root, const struct vobj *o,
		     const char *part, struct inode **out)
{
	char key[VKEY_MAX];
	size_t kl = vkey_prefix(key, root, o), pl = strlen(part);

	if (kl + pl >= sizeof(key))
		return -ENAMETOOLONG; /* parts are ours and short: never */
	memcpy(key + kl, part, pl + 1);
	/* The entries to drop from the kernel when the trees are evicted. */
	if (!strcmp(part, "R:1") || !strcmp(part, "layers"))
		views_note_root(fs->views, (struct vobj *)o, root);
	return itable_ref(fs->inodes, key, K_VNODE, repo, key + 2, out);
}

/*
 * Trees of an image were evicted (views_set_evicted): have the kernel drop
 * `name` (rootfs or layers) of view root `root`, and with it the entries and
 * inodes below, unless in use; acrfs's inode table then shrinks as the
 * kernel forgets them. Queued (fs/ll_inval.c): this runs inside a request.
 */
void acrfs_view_evicted(void *ctx, uint64_t root, const char *name)
{
	struct acrfs *fs = ctx;

	acrfs_inval_entry(fs->se, root, name);
}

/* Reference the K_VROOT of platform / digest `d` named `name` in dir `parent`;
 * `k`: 'P', or 'F' for a directory of referrers/. */
static int ref_vroot(struct acrfs *fs, char k, const char *repo, uint64_t parent,
		     const char *name, const struct digest *d, struct inode **out)
{
	char ds[DIGEST_STR_SIZE];
	struct buf key = BUF_INIT;
	/* The digest is part of the identity: a platform name of a tag that
	 * moved to another index names another image. */
	int rc = buf_addf(&key, "%c/%" PRIu64 "/%s|%s", k, parent, name, digest_format(d, ds));

	if (!rc)
		rc = itable_ref(fs->inodes, key.data, K_VROOT, repo, ds, out);
	buf_release(&key);
	return rc;
}

/* Fill an entry for inode `n` (referenced); on failure the reference is
 * dropped and -errno returned. `ta`: the node's tree attributes when the
 * caller has them (readdir of a tree directory), else they are resolved. */
static int fill_ventry(struct acrfs *fs, struct inode *n, const struct tree_attr *ta,
		       double entry_timeout, struct fuse_entry_param *ep)
{
	int rc;

	memset(ep, 0, sizeof(*ep));
	if (ta) {
		tree_node_stat(n->ino, ta, &ep->attr);
	} else {
		rc = acrfs_view_attr(fs, n, &ep->attr);
		if (rc) {
			itable_forget(fs->inodes, n->ino, 1);
			return rc;
		}
	}
	ep->ino = n->ino;
	ep->generation = 1;
	ep->entry_timeout = entry_timeout;
	ep->attr_timeout = VIEW_TIMEOUT;
	return 0;
}

static void reply_entry(fuse_req_t req, struct acrfs *fs, struct inode *n, double timeout)
{
	struct fuse_entry_param ep;
	int rc = fill_ventry(fs, n, NULL, timeout, &ep);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (fuse_reply_entry(req, &ep))
		itable_forget(fs->inodes, n->ino, 1);
}

/* The root inode number a view inode belongs to. */
static uint64_t root_of(const struct inode *n, const struct vpath *p)
{
	return is_root_kind(n->kind) ? n->ino : p->root;
}

/* Parse a layer number: decimal, no sign, no leading zero. */
static int layer_number(const char *s, size_t nlayers, unsigned *out)
{
	unsigned long v;
	char *end;

	if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1]))
		return -ENOENT;
	v = strtoul(s, &end, 10);
	if (*end || v >= nlayers)
		return -ENOENT;
	*out = (unsigned)v;
	return 0;
}

/*
 * The child `name` of view directory `dir`: its part (for a K_VNODE child,
 * written to `part`) or the platform digest (*plat). 0, -ENOENT, -ENOTDIR,
 * or a loading error. For a tree child, *v is the parent's resolution.
 */
static int child_of(struct acrfs *fs, const struct inode *dir, const char *name,
		    struct vnode *v, struct buf *part, const struct digest **plat)
{
	int rc;

	*plat = NULL;
	memset(v, 0, sizeof(*v));
	if (is_root_kind(dir->kind)) {
		rc = root_obj(fs, dir, &v->o);
		if (rc)
			return rc;
		if (!strcmp(name, "referrers"))
			return buf_adds(part, name);
		if (vobj_is_index(v->o)) {
			long i;

			if (!strcmp(name, "index.json"))
				return buf_adds(part, name);
			i = vobj_platform_find(v->o, name);
			if (i < 0)
				return -ENOENT;
			*plat = vobj_platform_digest(v->o, (size_t)i);
			return 0;
		}
		for (size_t i = 0; i < N_IMAGE_ROOT; i++)
			if (!strcmp(name, image_root[i].name))
				return buf_adds(part, image_root[i].part);
		return -ENOENT;
	}
	rc = resolve(dir, true, v);
	if (rc)
		return rc;
	switch (v->p.part) {
	case P_LAYERS: {
		unsigned i;

		rc = layer_number(name, image_nlayers(vobj_image(v->o)), &i);
		return rc ? rc : buf_addf(part, "L%u:1", i);
	}
	case P_REFERRERS: {
		const struct referrers *l;
		struct dlist *hold;

		if (digest_parse(&v->ref, name))
			return -ENOENT;
		rc = views_referrers(fs->views, dir->a, vobj_digest(v->o), &hold, &l);
		if (rc)
			return rc;
		rc = dlist_has(hold, name) ? 0 : -ENOENT;
		dlist_put(hold);
		if (!rc)
			*plat = &v->ref;
		return rc;
	}
	case P_LAYER:
	case P_ROOTFS: {
		const struct tree_node *c;

		if (!S_ISDIR(tree_node_attr(v->n)->mode))
			return -ENOTDIR;
		c = tree_lookup(v->t, v->n, name);
		if (!c)
			return -ENOENT;
		if (v->p.part == P_LAYER)
			return buf_addf(part, "L%u:%" PRIu64, v->p.layer, tree_node_attr(c)->id);
		return buf_addf(part, "R:%" PRIu64, tree_node_attr(c)->id);
	}
	default:
		return -ENOTDIR;
	}
}

/* The names in a tag directory and in referrers/ may change; nothing else. */
static double child_timeout(struct acrfs *fs, const struct inode *dir)
{
	const char *part = dir->kind == K_VNODE ? strrchr(dir->b, '|') : NULL;

	return dir->kind == K_TAG || (part && !strcmp(part + 1, "referrers")) ? fs->ttl :
										VIEW_TIMEOUT;
}

static void log_view_error(const struct inode *dir, const char *what, int rc)
{
	if (rc == -ENOENT || rc == -ENOTDIR || rc == -ENOMEM)
		return;
	log_debug("%s in %s%s%s: %s", what, dir->a, dir->kind == K_TAG ? ":" : "",
		  dir->kind == K_TAG ? dir->b : "", strerror(-rc));
}

void acrfs_view_lookup(fuse_req_t req, struct inode *dir, const char *name)
{
	struct acrfs *fs = fuse_req_userdata(req);
	struct buf part = BUF_INIT;
	const struct digest *plat;
	struct inode *n;
	struct vnode v;
	int rc;

	rc = child_of(fs, dir, name, &v, &part, &plat);
	if (rc)
		goto fail;
	if (plat)
		rc = ref_vroot(fs, v.p.part == P_REFERRERS ? 'F' : 'P', dir->a, dir->ino, name, plat,
			       &n);
	else
		rc = ref_vnode(fs, dir->a, root_of(dir, &v.p), v.o, part.data, &n);
	buf_release(&part);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_entry(req, fs, n, child_timeout(fs, dir));
	return;
fail:
	buf_release(&part);
	log_view_error(dir, "lookup", rc);
	if (rc == -ENOENT) {
		acrfs_reply_negative(req, child_timeout(fs, dir));
		return;
	}
	fuse_reply_err(req, -rc);
}

void acrfs_view_lookup_digest(fuse_req_t req, struct inode *dir, const char *name)
{
	struct acrfs *fs = fuse_req_userdata(req);
	struct inode *n;
	struct vobj *o;
	struct digest d;
	int rc;

	if (digest_parse(&d, name)) {
		acrfs_reply_negative(req, fs->ttl);
		return;
	}
	rc = views_digest(fs->views, dir->a, &d, &o);
	if (rc == -ENOENT) {
		acrfs_reply_negative(req, fs->ttl);
		return;
	}
	if (!rc)
		rc = ref_vroot(fs, 'P', dir->a, dir->ino, name, &d, &n);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_entry(req, fs, n, VIEW_TIMEOUT);
}

/* ---- directories ---------------------------------------------------------- */

/* Resolve directory `dir` into `h`. */
static int vdir_fill(struct acrfs *fs, const struct inode *dir, struct vdir *h)
{
	int rc;

	memset(h, 0, sizeof(*h));
	h->repo = dir->a;
	h->dir_ino = dir->ino;
	h->entry_timeout = child_timeout(fs, dir);
	if (is_root_kind(dir->kind)) {
		rc = root_obj(fs, dir, &h->v.o);
		if (rc)
			return rc;
		h->root = dir->ino;
		h->kind = vobj_is_index(h->v.o) ? VD_INDEX : VD_IMAGE;
		h->n = h->kind == VD_INDEX ? 2 + vobj_nplatforms(h->v.o) : N_IMAGE_ROOT;
		return 0;
	}
	rc = resolve(dir, true, &h->v);
	if (rc)
		return rc;
	h->root = h->v.p.root;
	switch (h->v.p.part) {
	case P_LAYERS:
		h->kind = VD_LAYERS;
		h->n = image_nlayers(vobj_image(h->v.o));
		return 0;
	case P_REFERRERS:
		h->kind = VD_REFS;
		rc = views_referrers(fs->views, dir->a, vobj_digest(h->v.o), &h->hold, &h->refs);
		if (!rc)
			h->n = h->refs->n;
		return rc;
	case P_LAYER:
	case P_ROOTFS:
		if (!S_ISDIR(tree_node_attr(h->v.n)->mode))
			return -ENOTDIR;
		h->kind = VD_TREE;
		h->keylen = vkey_prefix(h->key, h->root, h->v.o);
		if (h->v.p.part == P_LAYER)
			h->keylen += (size_t)sprintf(h->key + h->keylen, "L%u:", h->v.p.layer);
		else
			h->keylen += (size_t)sprintf(h->key + h->keylen, "R:");
		return 0;
	default:
		return -ENOTDIR;
	}
}

/* Drop what vdir_fill took. */
static void vdir_done(struct vdir *h)
{
	dlist_put(h->hold);
	h->hold = NULL;
}

/* Entry i of a fixed directory: its name, its part (NULL: a platform or a
 * referrer, K_VROOT, whose digest is *plat) and its type. `nb`, `pb`: room
 * for composed ones. */
static void vdir_entry(const struct vdir *h, size_t i, char nb[DIGEST_STR_SIZE], char pb[32],
		       const char **name, const char **part, const struct digest **plat,
		       uint32_t *type)
{
	*plat = NULL;
	*type = S_IFDIR;
	switch (h->kind) {
	case VD_IMAGE:
		*name = image_root[i].name;
		*part = image_root[i].part;
		*type = image_root[i].type;
		return;
	case VD_INDEX:
		if (i == 0) {
			*name = *part = "index.json";
			*type = S_IFREG;
			return;
		}
		if (i == h->n - 1) {
			*name = *part = "referrers";
			return;
		}
		*name = vobj_platform_name(h->v.o, i - 1);
		*part = NULL;
		*plat = vobj_platform_digest(h->v.o, i - 1);
		return;
	case VD_REFS:
		*plat = &h->refs->v[i].digest;
		*name = digest_format(*plat, nb);
		*part = NULL;
		return;
	default: /* VD_LAYERS */
		snprintf(nb, 24, "%zu", i);
		snprintf(pb, 32, "L%zu:1", i);
		*name = nb;
		*part = pb;
		return;
	}
}

/*
 * Is the caller `rm -d` without -r? GNU rm -d (coreutils >= 8.19) reads a
 * directory before it calls rmdir(2) and refuses a non-empty one itself
 * ("Directory not empty"), so the file system never sees the request. A tag
 * directory therefore lists empty to exactly that caller, and rm goes on to
 * rmdir, which deletes the tag (docs/tagops.md). Decided from the caller's
 * command line; anything unreadable or unexpected means "no".
 */
static ssize_t read_proc(pid_t pid, const char *what, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static bool caller_is_rm_d(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char buf[4096];
	bool d = false, r = false;
	ssize_t n;
	size_t i;

	if (!ctx || ctx->pid <= 0)
		return false;
	n = read_proc(ctx->pid, "comm", buf, sizeof(buf));
	if (n <= 0 || strcmp(buf, "rm\n"))
		return false;
	n = read_proc(ctx->pid, "cmdline", buf, sizeof(buf));
	if (n <= 0)
		return false;
	/* argv[0], then options up to "--" (GNU rm also permutes: scan all). */
	for (i = strlen(buf) + 1; i < (size_t)n; i += strlen(buf + i) + 1) {
		const char *a = buf + i;

		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "--dir"))
			d = true;
		else if (!strcmp(a, "--recursive"))
			r = true;
		else if (a[0] == '-' && a[1] != '-' && a[1]) {
			d = d || strchr(a, 'd');
			r = r || strchr(a, 'r') || strchr(a, 'R');
		}
	}
	return d && !r;
}

static unsigned dtype_mode(uint32_t mode)
{
	return mode & S_IFMT;
}

/* Add one entry to a readdir reply. 1: added; 0: did not fit; -errno: it
 * could not be resolved (readdirplus). Its inode: the K_VNODE with key
 * `key`, or the platform (K_VROOT) with digest `plat`. */
static int add_dirent(fuse_req_t req, struct acrfs *fs, const struct vdir *h, bool plus,
		      struct dirent_buf *d, const char *name, const char *key,
		      const struct digest *plat, const struct tree_attr *ta, uint32_t mode,
		      off_t next)
{
	struct fuse_entry_param ep;
	struct inode *n = NULL;
	int rc;

	memset(&ep, 0, sizeof(ep));
	ep.attr.st_mode = mode;
	if (plus) {
		if (plat)
			rc = ref_vroot(fs, h->kind == VD_REFS ? 'F' : 'P', h->repo, h->dir_ino, name,
				       plat, &n);
		else
			rc = itable_ref(fs->inodes, key, K_VNODE, h->repo, key + 2, &n);
		if (!rc)
			rc = fill_ventry(fs, n, ta, h->entry_timeout, &ep);
		if (rc)
			return rc;
	}
	return acrfs_add_dirent(req, fs, d, name, &ep, next, plus, n) ? 1 : 0;
}

/* The listing of `dir` from stream index `off`; *eof when it ended there. */
static int vdir_list(fuse_req_t req, struct acrfs *fs, struct vdir *h, bool plus,
		     struct dirent_buf *d, off_t off, bool *eof)
{
	int rc = 1;

	*eof = false;
	if (h->kind == VD_TREE) {
		uint64_t next = (uint64_t)off - 2;
		const struct tree_node *c;
		const char *name;

		while (tree_readdir(h->v.t, h->v.n, &next, &name, &c)) {
			const struct tree_attr *a = tree_node_attr(c);

			/* The key: the directory's prefix, then the node id. */
			*put_u64(h->key + h->keylen, a->id) = '\0';
			rc = add_dirent(req, fs, h, plus, d, name, h->key, NULL, a,
					dtype_mode(a->mode), (off_t)(next + 2));
			if (rc <= 0)
				return rc;
		}
		*eof = true;
		return 1;
	}
	h->keylen = vkey_prefix(h->key, h->root, h->v.o);
	for (size_t i = (size_t)off - 2; i < h->n; i++) {
		const char *name, *part;
		const struct digest *plat;
		char nb[DIGEST_STR_SIZE], pb[32];
		uint32_t type;

		vdir_entry(h, i, nb, pb, &name, &part, &plat, &type);
		if (part)
			memcpy(h->key + h->keylen, part, strlen(part) + 1);
		rc = add_dirent(req, fs, h, plus, d, name, h->key, plat, NULL, type,
				(off_t)(i + 3));
		if (rc <= 0)
			return rc;
	}
	*eof = true;
	return 1;
}

void acrfs_view_readdir(fuse_req_t req, struct inode *dir, size_t size, off_t off, bool plus)
{
	struct acrfs *fs = fuse_req_userdata(req);
	struct dirent_buf d;
	struct vdir h;
	bool eof = false, empty = false;
	char *buf;
	int rc = 0;

	if (dir->kind == K_TAG && caller_is_rm_d(req)) {
		if (!off)
			log_debug("rm -d %s:%s: the tag directory lists empty to rm", dir->a,
				  dir->b);
		empty = true; /* no entries: rm goes on to rmdir */
	} else {
		rc = vdir_fill(fs, dir, &h);
	}
	if (rc) {
		if (rc != -ENOENT && rc != -ENOTDIR)
			log_info("ls %s %s: %s", dir->a, dir->b ? dir->b : "", strerror(-rc));
		fuse_reply_err(req, -rc);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		if (!empty)
			vdir_done(&h);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d.p = buf;
	d.rem = size;
	/* Offsets: 0 ".", 1 "..", then 2 + i (fixed) or 2 + tree cookie. */
	for (; off < 2; off++) {
		struct fuse_entry_param ep;

		memset(&ep, 0, sizeof(ep));
		ep.attr.st_mode = S_IFDIR;
		ep.attr.st_ino = off == 0 ? dir->ino : FUSE_ROOT_ID;
		if (!acrfs_add_dirent(req, fs, &d, off ? ".." : ".", &ep, off + 1, plus, NULL))
			break;
	}
	if (off >= 2 && empty)
		eof = true;
	else if (off >= 2)
		rc = vdir_list(req, fs, &h, plus, &d, off, &eof);
	if (!empty)
		vdir_done(&h);
	if (rc < 0 && d.rem == size) {
		free(buf);
		fuse_reply_err(req, -rc);
		return;
	}
	/*
	 * The end of a tag directory's listing: the kernel would keep it, but
	 * the tag may move and `rm -d` must see it empty. Drop it before the
	 * reply that ends it, so no later listing is served from it.
	 */
	if (dir->kind == K_TAG && eof && d.rem == size)
		acrfs_inval_inode(fs->se, dir->ino);
	fuse_reply_buf(req, buf, size - d.rem);
	free(buf);
}

/* ---- files ---------------------------------------------------------------- */

void acrfs_view_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct acrfs *fs = fuse_req_userdata(req);
	struct inode *n = itable_get(fs->inodes, ino);
	struct vfile *f;
	struct vnode v;
	const struct buf *cfg;
	const void *bytes;
	size_t len;
	int rc;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, fs->ro ? EROFS : EPERM);
		return;
	}
	if (n->kind != K_VNODE) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	rc = resolve(n, true, &v);
	if (rc)
		goto fail;
	f = calloc(1, sizeof(*f));
	if (!f) {
		rc = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&f->lock, NULL);
	switch (v.p.part) {
	case P_MANIFEST:
	case P_INDEX:
		vobj_bytes(v.o, &bytes, &len);
		f->bytes = bytes;
		f->len = len;
		break;
	case P_CONFIG:
		rc = image_config(vobj_image(v.o), &cfg);
		if (!rc) {
			f->bytes = cfg->data;
			f->len = cfg->len;
		}
		break;
	case P_LAYER:
	case P_ROOTFS:
		if (!S_ISREG(tree_node_attr(v.n)->mode)) {
			rc = S_ISDIR(tree_node_attr(v.n)->mode) ? -EISDIR : -EACCES;
			break;
		}
		rc = v.l ? layer_reader_new(&f->rd, v.l, tree_node_attr(v.n)) : -EIO;
		break;
	default:
		rc = -EISDIR;
	}
	if (rc) {
		pthread_mutex_destroy(&f->lock);
		free(f);
		goto fail;
	}
	fi->fh = (uint64_t)(uintptr_t)f;
	fi->keep_cache = 1; /* content-addressed: the page cache stays valid */
	if (fuse_reply_open(req, fi)) {
		layer_reader_free(f->rd);
		pthread_mutex_destroy(&f->lock);
		free(f);
	}
	return;
fail:
	if (rc != -ENOMEM && rc != -EISDIR)
		log_info("open %s in %s@%s: %s", strrchr(n->b, '|') + 1, n->a,
			 v.o ? vobj_digest_str(v.o) : "?", strerror(-rc));
	fuse_reply_err(req, -rc);
}

void acrfs_view_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct vfile *f = (struct vfile *)(uintptr_t)fi->fh;
	char *buf;
	size_t got = 0;
	ssize_t n = 0;

	(void)ino;
	if (!f->rd) {
		if ((uint64_t)off >= f->len)
			size = 0;
		else if (size > f->len - (size_t)off)
			size = f->len - (size_t)off;
		fuse_reply_buf(req, size ? f->bytes + off : NULL, size);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&f->lock);
	while (got < size) {
		n = layer_reader_pread(f->rd, buf + got, size - got, (uint64_t)off + got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	pthread_mutex_unlock(&f->lock);
	if (n < 0 && !got)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

void acrfs_view_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vfile *f = (struct vfile *)(uintptr_t)fi->fh;

	(void)ino;
	if (f) {
		layer_reader_free(f->rd);
		pthread_mutex_destroy(&f->lock);
		free(f);
	}
	fuse_reply_err(req, 0);
}

void acrfs_view_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct acrfs *fs = fuse_req_userdata(req);
	struct inode *n = itable_get(fs->inodes, ino);
	struct vnode v;
	int rc;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (n->kind != K_VNODE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	rc = resolve(n, true, &v);
	if (!rc && (!v.n || !S_ISLNK(tree_node_attr(v.n)->mode) || !tree_node_attr(v.n)->symlink))
		rc = -EINVAL;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_readlink(req, tree_node_attr(v.n)->symlink);
}

/* ---- extended attributes -------------------------------------------------- */

/* The user.acrfs.* names an inode carries (NULL-terminated). */
static const char *const root_xattrs[] = { XATTR_PREFIX "digest", XATTR_PREFIX "media_type",
					   NULL };
static const char *const layer_xattrs[] = { XATTR_PREFIX "digest", XATTR_PREFIX "media_type",
					    XATTR_PREFIX "size", NULL };

static const char *const *acrfs_xattrs(const struct inode *n, const struct vpath *p)
{
	if (is_root_kind(n->kind))
		return root_xattrs;
	if (n->kind == K_VNODE && p->part == P_LAYER && p->id == 1)
		return layer_xattrs;
	return NULL;
}

static void reply_value(fuse_req_t req, size_t size, const void *val, size_t len)
{
	if (!size)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

/*
 * A referrer directory's own xattrs, from its manifest (fetched when the
 * directory is entered anyway; immutable): user.acrfs.artifact_type (its
 * artifactType, else its config's media type) and one
 * user.acrfs.annotation.<key> per annotation whose key makes a usable name
 * (no control character, the whole name at most XATTR_NAME_MAX bytes).
 * `name` NULL: append every name, NUL-terminated, to `out`; else the value
 * of `name` to `out` (-ENODATA if it has none). 0 or -errno.
 */
#define ANNOTATION_PREFIX XATTR_PREFIX "annotation."
static bool annotation_key_ok(const char *key)
{
	size_t n = strlen(key);

	if (!n || n > 255 - strlen(ANNOTATION_PREFIX))
		return false;
	for (; *key; key++)
		if ((unsigned char)*key < 0x20 || *key == 0x7f)
			return false;
	return true;
}

static int referrer_xattrs(struct acrfs *fs, const struct inode *n, const char *name,
			   struct buf *out)
{
	struct referrer r;
	struct vobj *o;
	const void *bytes;
	size_t len, i, pl = strlen(ANNOTATION_PREFIX);
	char why[256];
	int rc = root_obj(fs, n, &o);

	if (rc)
		return rc;
	vobj_bytes(o, &bytes, &len);
	rc = referrer_from_manifest(bytes, len, &r, why, sizeof(why));
	if (rc) {
		if (rc != -ENOMEM)
			log_info("%s@%s: no artifact facts: %s", n->a, n->b, why);
		return rc == -ENOMEM ? rc : -EIO;
	}
	if (!name) {
		if (r.artifact_type)
			rc = buf_add(out, XATTR_PREFIX "artifact_type",
				     sizeof(XATTR_PREFIX "artifact_type"));
		for (i = 0; !rc && i < r.nannotations; i++)
			if (annotation_key_ok(r.annotations[i].key)) {
				rc = buf_adds(out, ANNOTATION_PREFIX);
				if (!rc)
					rc = buf_add(out, r.annotations[i].key,
						     strlen(r.annotations[i].key) + 1);
			}
	} else if (!strcmp(name, XATTR_PREFIX "artifact_type")) {
		rc = r.artifact_type ? buf_adds(out, r.artifact_type) : -ENODATA;
	} else {
		rc = -ENODATA;
		for (i = 0; strncmp(name, ANNOTATION_PREFIX, pl) == 0 && i < r.nannotations; i++)
			if (annotation_key_ok(r.annotations[i].key) &&
			    !strcmp(name + pl, r.annotations[i].key)) {
				rc = buf_adds(out, r.annotations[i].value);
				break;
			}
	}
	referrer_release(&r);
	return rc;
}

void acrfs_view_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct acrfs *fs = fuse_req_userdata(req);
	struct inode *n = itable_get(fs->inodes, ino);
	struct vnode v;
	char num[24], ds[DIGEST_STR_SIZE];
	const char *val = NULL;
	struct buf acr = BUF_INIT;
	size_t i;
	int rc;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	memset(&v, 0, sizeof(v));
	if (n->kind == K_DIR) {
		/* ACR: a repository's times and lock (fs/ll_acr.h), else none. */
		rc = acrfs_acr_getxattr(fs, n, name, &acr);
		if (!rc)
			reply_value(req, size, acr.data, acr.len);
		buf_release(&acr);
		if (!rc)
			return;
		if (rc != -ENODATA)
			goto fail;
		goto nodata;
	}
	if (is_root_kind(n->kind)) {
		/* ls asks every directory for security.* and ACLs: answer without a fetch. */
		if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)))
			goto nodata;
		if (acrfs_acr_getxattr(fs, n, name, &acr) == 0) {
			/* ACR: from the tag listing, no manifest request. */
			reply_value(req, size, acr.data, acr.len);
			buf_release(&acr);
			return;
		}
		buf_release(&acr);
		if (is_referrer(n) && strcmp(name, XATTR_PREFIX "digest") &&
		    strcmp(name, XATTR_PREFIX "media_type")) {
			rc = referrer_xattrs(fs, n, name, &acr);
			if (!rc)
				reply_value(req, size, acr.data ? acr.data : "", acr.len);
			buf_release(&acr);
			if (rc == -ENODATA)
				goto nodata;
			if (rc)
				goto fail;
			return;
		}
		if (n->kind == K_TAG) /* the manifest answers it: a walk's next ones too */
			prefetch_note_tag(fs->prefetch, n->a, n->b, PF_MANIFEST);
		rc = root_obj(fs, n, &v.o);
		if (rc)
			goto fail;
		if (!strcmp(name, XATTR_PREFIX "digest"))
			val = vobj_digest_str(v.o);
		else if (!strcmp(name, XATTR_PREFIX "media_type"))
			val = vobj_media_type(v.o);
		if (!val)
			goto nodata;
		reply_value(req, size, val, strlen(val));
		return;
	}
	rc = resolve(n, false, &v);
	if (rc)
		goto fail;
	if (v.p.part == P_LAYER && v.p.id == 1) {
		if (!strcmp(name, XATTR_PREFIX "digest"))
			val = digest_format(layer_digest(v.l), ds);
		else if (!strcmp(name, XATTR_PREFIX "media_type"))
			val = layer_media_type(v.l);
		else if (!strcmp(name, XATTR_PREFIX "size")) {
			snprintf(num, sizeof(num), "%" PRIu64, layer_size(v.l));
			val = num;
		}
		if (!val)
			goto nodata;
		reply_value(req, size, val, strlen(val));
		return;
	}
	if (v.n) {
		const struct tree_attr *a = tree_node_attr(v.n);

		for (i = 0; i < a->nxattrs; i++)
			if (!strcmp(a->xattrs[i].name, name)) {
				reply_value(req, size, a->xattrs[i].value, a->xattrs[i].value_len);
				return;
			}
	}
nodata:
	fuse_reply_err(req, ENODATA);
	return;
fail:
	fuse_reply_err(req, -rc);
}

void acrfs_view_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct acrfs *fs = fuse_req_userdata(req);
	struct inode *n = itable_get(fs->inodes, ino);
	const char *const *names;
	struct buf out = BUF_INIT;
	struct vnode v;
	size_t i;
	int rc = 0;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	memset(&v, 0, sizeof(v));
	/* Tag directories: the names without resolving the tag (ls -l asks). */
	if (n->kind == K_VNODE) {
		rc = resolve(n, false, &v);
		if (rc) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	names = n->kind == K_DIR ? NULL : acrfs_xattrs(n, &v.p);
	for (i = 0; !rc && names && names[i]; i++)
		rc = buf_add(&out, names[i], strlen(names[i]) + 1);
	if (!rc)
		rc = acrfs_acr_listxattr(fs, n, &out);
	if (!rc && is_referrer(n))
		rc = referrer_xattrs(fs, n, NULL, &out);
	if (v.n) {
		const struct tree_attr *a = tree_node_attr(v.n);

		for (i = 0; !rc && i < a->nxattrs; i++)
			rc = buf_add(&out, a->xattrs[i].name, strlen(a->xattrs[i].name) + 1);
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_value(req, size, out.data, out.len);
	buf_release(&out);
}
