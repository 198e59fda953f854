/*
 * The FUSE edge: turns kernel requests into ns / registry calls.
 *
 * Inodes: the root is ino 1; a registry directory (namespace or repository)
 * has key "D/<path>", a tag directory "T/<repo>:<tag>" (':' never occurs in
 * a repository name).
 * Timeouts: registry directories and negative entries live for the mount's
 * TTL in the kernel, like in the dirent cache.
 * Everything inside a tag or digest directory (the image view) is handled
 * by fs/ll_view.c, and .acrfs/ by fs/ll_status.c; the handlers here hand
 * those inodes over, and note for each request which operation on which
 * inode it is (acrfs_req_enter), so a failure logged while serving it is
 * recorded in .acrfs/errors with that context.
 *
 * Listings: the mount runs in the kernel's no-opendir mode (opendir answers
 * ENOSYS; FUSE_CAP_NO_OPENDIR_SUPPORT): no OPENDIR/RELEASEDIR round trips,
 * and the kernel keeps every directory's listing (FOPEN_CACHE_DIR), serving
 * a repeated walk without a request. That is right for image views, which
 * are content-addressed. A registry directory's listing must follow the
 * TTL: fs/listing.c gives its mtime, which moves on once the listing the
 * kernel holds is TTL old, and the kernel (auto_inval_data) compares the
 * mtime at the start of each listing and reads it again when it moved;
 * offsets carry the generation of the listing they belong to, so a reader
 * goes on in the listing it started although there is no directory handle
 * to hold it. A tag directory's listing is never kept (fs/ll_view.c).
 * Changes made through the mount (fs/ll_write.c) invalidate the listings
 * concerned at once (fs/ll_inval.c). A kernel without no-opendir support
 * gets handles with the same caching flags, and the same behaviour.
 */
#include "fs/ll.h"
#include "fs/ll_acr.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/log.h"
#include "fs/itable.h"
#include "fs/listing.h"
#include "fs/ns.h"
#include "fs/prefetch.h"

static struct acrfs *ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Attributes of a registry or tag directory; *timeout: how long the kernel
 * may keep them. */
static void fill_attr(struct acrfs *fs, const struct inode *n, struct stat *st, double *timeout)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_mtim = fs->mounted_at;
	*timeout = fs->ttl;
	if (n->kind == K_DIR) /* the mtime says when the kernel's listing went stale */
		listings_attr(fs->listings, n->ino, &st->st_mtim, timeout);
	st->st_atim = st->st_ctim = st->st_mtim;
	st->st_blksize = 4096;
	st->st_mode = S_IFDIR | (fs->ro ? 0555 : 0755);
	st->st_nlink = 2;
	acrfs_acr_attr(fs, n, st); /* ACR: the listing's times and locks */
}

/* Compose the identity key of a namespace entry. */
static int ent_key(const char *repo_dir, const struct ns_ent *e, struct buf *key)
{
	if (e->kind == NS_DIR)
		return buf_addf(key, "D/%s", e->target);
	return buf_addf(key, "T/%s:%s", repo_dir, e->target);
}

/* Reference (lookup count +1) the inode for entry `e` of directory `dir`. */
static int ref_ent(struct acrfs *fs, const struct inode *dir, const struct ns_ent *e,
		   struct inode **out)
{
	struct buf key = BUF_INIT;
	int rc = ent_key(dir->a, e, &key);

	if (!rc)
		rc = itable_ref(fs->inodes, key.data, e->kind == NS_DIR ? K_DIR : K_TAG,
				e->kind == NS_DIR ? e->target : dir->a,
				e->kind == NS_DIR ? NULL : e->target, out);
	buf_release(&key);
	return rc;
}

static void fill_entry(struct acrfs *fs, const struct inode *n, struct fuse_entry_param *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->ino = n->ino;
	ep->generation = 1;
	fill_attr(fs, n, &ep->attr, &ep->attr_timeout);
	ep->entry_timeout = fs->ttl;
}

/*
 * Tell the readahead (fs/prefetch.h) what a request inside tag or view
 * directory `n` needs: of a tag directory, its manifest; below it, the
 * image's layers. Digest directories are not walked in listing order.
 */
static void note_view(struct acrfs *fs, const struct inode *n)
{
	const struct inode *root = n;

	if (!fs->prefetch)
		return;
	if (n->kind == K_VNODE)
		root = itable_get(fs->inodes, strtoull(n->b, NULL, 10));
	if (root && root->kind == K_TAG)
		prefetch_note_tag(fs->prefetch, root->a, root->b,
				  n->kind == K_TAG ? PF_MANIFEST : PF_CONTENT);
}

static void do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct acrfs *fs = ctx_of(req);
	struct inode *dir = itable_get(fs->inodes, parent), *n;
	struct fuse_entry_param ep;
	struct ns_ent e = { 0 };
	enum ns_kind kind;
	int rc;

	if (!dir) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (dir->kind == K_SDIR || (parent == FUSE_ROOT_ID && !strcmp(name, ACRFS_STATUS_DIR))) {
		acrfs_status_lookup(req, dir, name);
		return;
	}
	if (dir->kind == K_SFILE) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (dir->kind != K_DIR) {
		note_view(fs, dir);
		acrfs_view_lookup(req, dir, name);
		return;
	}
	if (*dir->a && !strncmp(name, "sha256:", 7)) {
		acrfs_view_lookup_digest(req, dir, name);
		return;
	}
	rc = ns_lookup(fs->ns, dir->a, name, &kind, &e.target);
	if (rc)
		goto negative;
	if (kind == NS_DIR)
		prefetch_note_dir(fs->prefetch, e.target, PF_NONE);
	else
		prefetch_note_tag(fs->prefetch, dir->a, e.target, PF_NONE);
	e.kind = kind;
	e.name = (char *)name;
	rc = ref_ent(fs, dir, &e, &n);
	free(e.target);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry(fs, n, &ep);
	acrfs_reply_entry_ref(req, fs, n, &ep);
	return;
negative:
	if (rc == -ENOENT)
		acrfs_reply_negative(req, fs->ttl);
	else
		fuse_reply_err(req, -rc);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct acrfs *fs = ctx_of(req);

	acrfs_req_enter("lookup", parent, name);
	do_lookup(req, parent, name);
	acrfs_req_leave();
	itable_charge(fs->inodes); /* after the reply, no lock held: fs/itable.h */
}

/* After the kernel forgot `ino`: when its inode is gone, so is its listing. */
static void forgotten(struct acrfs *fs, uint64_t ino)
{
	if (!itable_get(fs->inodes, ino))
		listings_forget(fs->listings, ino);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct acrfs *fs = ctx_of(req);

	itable_forget(fs->inodes, ino, nlookup);
	forgotten(fs, ino);
	fuse_reply_none(req);
	itable_charge(fs->inodes);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct acrfs *fs = ctx_of(req);
	size_t i;

	for (i = 0; i < count; i++) {
		itable_forget(fs->inodes, forgets[i].ino, forgets[i].nlookup);
		forgotten(fs, forgets[i].ino);
	}
	fuse_reply_none(req);
	itable_charge(fs->inodes);
}

static void do_getattr(fuse_req_t req, fuse_ino_t ino)
{
	struct acrfs *fs = ctx_of(req);
	struct inode *n = itable_get(fs->inodes, ino);
	struct stat st;
	double timeout;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (n->kind == K_SDIR || n->kind == K_SFILE) {
		acrfs_status_attr(fs, n, &st);
		fuse_reply_attr(req, &st, n->kind == K_SDIR ? ACRFS_VIEW_TIMEOUT : 0);
		return;
	}
	if (n->kind == K_VROOT || n->kind == K_VNODE) {
		int rc = acrfs_view_attr(fs, n, &st);

		if (rc)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_attr(req, &st, ACRFS_VIEW_TIMEOUT);
		return;
	}
	fill_attr(fs, n, &st, &timeout);
	fuse_reply_attr(req, &st, timeout);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	acrfs_req_enter("getattr", ino, NULL);
	do_getattr(req, ino);
	acrfs_req_leave();
}

/*
 * No directory handles: ENOSYS turns OPENDIR and RELEASEDIR off for the
 * connection, and the kernel then treats every directory as opened with
 * keep_cache and cache_readdir. Without that mode, the same flags.
 */
static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (ctx_of(req)->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->fh = 0;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
}

/*
 * Readdir of a registry directory: offset 0 takes a new listing (from the
 * dirent cache, so with the TTL's freshness); later offsets continue in the
 * listing their generation names (listing_offset).
 */
static void ns_readdir(fuse_req_t req, struct inode *dir, size_t size, off_t off, bool plus)
{
	struct acrfs *fs = ctx_of(req);
	const struct listing *l = NULL;
	struct dirent_buf d;
	uint64_t k;
	uint32_t gen;
	char *buf;
	int rc = 0;

	listing_offset_split((uint64_t)off, &gen, &k);
	if (off)
		l = listings_get(fs->listings, dir->ino, gen);
	if (!l) {
		struct ns_ent *ents;
		struct dlist *hold;
		size_t n;

		/* At an offset: its listing was evicted (fs/listing.h), or the
		 * directory forgotten; the reader goes on in a new one. The
		 * listing holds the tag list whose metadata (ACR) the entries'
		 * attributes come from (ns_list_held). */
		rc = ns_list_held(fs->ns, dir->a, &ents, &n, &hold);
		if (!rc)
			rc = listings_publish(fs->listings, dir->ino, ents, n, hold, off != 0, &l);
		if (!rc && off)
			log_debug("readdir /%s: listing %u is not kept (evicted), going on at "
				  "entry %llu of a new one, listing %u",
				  dir->a, gen, (unsigned long long)k, l->gen);
	} else if (l->gen != gen) {
		log_debug("readdir /%s: listing %u is gone, going on in listing %u", dir->a, gen,
			  l->gen);
	}
	buf = rc ? NULL : malloc(size);
	if (!buf) {
		fuse_reply_err(req, rc ? -rc : ENOMEM);
		listing_put(fs->listings, l);
		return;
	}
	d.p = buf;
	d.rem = size;
	/* Stream index k: 0 ".", 1 "..", 2+i entry i. */
	for (; k < l->n + 2; k++) {
		struct fuse_entry_param ep;
		struct inode *n = NULL;
		const char *name;

		memset(&ep, 0, sizeof(ep));
		if (k < 2) {
			name = k == 0 ? "." : "..";
			ep.attr.st_mode = S_IFDIR;
			ep.attr.st_ino = k == 0 ? dir->ino : FUSE_ROOT_ID;
		} else {
			const struct ns_ent *e = &l->ents[k - 2];

			name = e->name;
			if (plus) {
				if (ref_ent(fs, dir, e, &n))
					break;
				fill_entry(fs, n, &ep);
			} else {
				ep.attr.st_mode = S_IFDIR;
				ep.attr.st_ino = 0;
			}
		}
		if (!acrfs_add_dirent(req, fs, &d, name, &ep,
				      (off_t)listing_offset(l->gen, k + 1), plus, n))
			break;
	}
	listing_put(fs->listings, l);
	fuse_reply_buf(req, buf, size - d.rem);
	free(buf);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct inode *dir = itable_get(ctx_of(req)->inodes, ino);

	if (dir && !off) { /* a listing starts: what a walk needs of this directory */
		if (dir->kind == K_DIR)
			prefetch_note_dir(ctx_of(req)->prefetch, dir->a, PF_TAGS);
		else if (dir->kind == K_TAG || dir->kind == K_VNODE)
			note_view(ctx_of(req), dir);
	}
	if (!dir)
		fuse_reply_err(req, ESTALE);
	else if (dir->kind == K_DIR)
		ns_readdir(req, dir, size, off, plus);
	else if (dir->kind == K_SDIR)
		acrfs_status_readdir(req, dir->ino, size, off, plus);
	else if (dir->kind == K_SFILE)
		fuse_reply_err(req, ENOTDIR);
	else
		acrfs_view_readdir(req, dir, size, off, plus);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	acrfs_req_enter("readdir", ino, NULL);
	do_readdir(req, ino, size, off, false);
	acrfs_req_leave();
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	struct acrfs *fs = ctx_of(req);

	(void)fi;
	acrfs_req_enter("readdir", ino, NULL);
	do_readdir(req, ino, size, off, true);
	acrfs_req_leave();
	itable_charge(fs->inodes);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	(void)ino;
	memset(&st, 0, sizeof(st));
	st.f_bsize = 4096;
	st.f_frsize = 4096;
	st.f_namemax = 255;
	fuse_reply_statfs(req, &st);
}

/*
 * What no part of the mount allows: creating names, changing attributes or
 * xattrs. Registry directories only take rmdir/rename of tags (ll_write.c);
 * image views are read-only.
 */
static void refuse(fuse_req_t req)
{
	fuse_reply_err(req, ctx_of(req)->ro ? EROFS : EPERM);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	refuse(req);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	refuse(req);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	refuse(req);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	refuse(req);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	refuse(req);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	refuse(req);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	refuse(req);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	refuse(req);
}

/*
 * Files: image files (fs/ll_view.c) or .acrfs/ snapshots (fs/ll_status.c),
 * told apart by the inode at open and by the handle's tag bit afterwards.
 */
static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct inode *n = itable_get(ctx_of(req)->inodes, ino);

	acrfs_req_enter("open", ino, NULL);
	if (n && (n->kind == K_SFILE || n->kind == K_SDIR))
		acrfs_status_open(req, n, fi);
	else
		acrfs_view_open(req, ino, fi);
	acrfs_req_leave();
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	acrfs_req_enter("read", ino, NULL);
	if (fi->fh & ACRFS_FH_STATUS)
		acrfs_status_read(req, size, off, fi);
	else
		acrfs_view_read(req, ino, size, off, fi);
	acrfs_req_leave();
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh & ACRFS_FH_STATUS)
		acrfs_status_release(req, fi);
	else
		acrfs_view_release(req, ino, fi);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	acrfs_req_enter("readlink", ino, NULL);
	acrfs_view_readlink(req, ino);
	acrfs_req_leave();
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct inode *n = itable_get(ctx_of(req)->inodes, ino);

	acrfs_req_enter("getxattr", ino, name);
	if (n && (n->kind == K_SFILE || n->kind == K_SDIR))
		fuse_reply_err(req, ENODATA);
	else
		acrfs_view_getxattr(req, ino, name, size);
	acrfs_req_leave();
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	acrfs_req_enter("listxattr", ino, NULL);
	acrfs_view_listxattr(req, ino, size);
	acrfs_req_leave();
}

/* .acrfs itself is neither a repository nor a tag: it cannot go or move. */
static bool is_status_name(fuse_ino_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && !strcmp(name, ACRFS_STATUS_DIR);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (is_status_name(parent, name)) {
		refuse(req);
		return;
	}
	acrfs_req_enter("rmdir", parent, name);
	acrfs_ll_rmdir(req, parent, name);
	acrfs_req_leave();
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	if (is_status_name(parent, name) || is_status_name(newparent, newname)) {
		refuse(req);
		return;
	}
	acrfs_req_enter("rename", parent, name);
	acrfs_ll_rename(req, parent, name, newparent, newname, flags);
	acrfs_req_leave();
}

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct acrfs *fs = userdata;

	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Always readdirplus: entries come with their attributes. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* libfuse's default, and what registry listings rely on: the kernel
	 * refreshes a directory's expired attributes before it serves a cached
	 * listing, so a moved mtime is seen (fs/listing.h). */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	fs->no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
}

static const struct fuse_lowlevel_ops ops = {
	.init = ll_init,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.opendir = ll_opendir,
	.readdir = ll_readdir,
	.readdirplus = ll_readdirplus,
	.statfs = ll_statfs,
	.open = ll_open,
	.read = ll_read,
	.release = ll_release,
	.readlink = ll_readlink,
	.getxattr = ll_getxattr,
	.listxattr = ll_listxattr,
	.mkdir = ll_mkdir,
	.mknod = ll_mknod,
	.symlink = ll_symlink,
	.link = ll_link,
	.create = ll_create,
	.setattr = ll_setattr,
	.setxattr = ll_setxattr,
	.removexattr = ll_removexattr,
	.rmdir = ll_rmdir,
	.rename = ll_rename,
	.unlink = acrfs_ll_unlink,
};

const struct fuse_lowlevel_ops *acrfs_ll_ops(void)
{
	return &ops;
}
