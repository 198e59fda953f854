/*
 * The FUSE edge's changing operations: rmdir and rename of tags (and of an
 * empty repository), unlink refused. What each does, exactly, is in
 * docs/tagops.md; the registry work is registry/tagops.c.
 *
 * After a change the dirent cache (ns) and what the tags resolve to (view)
 * are invalidated at once, inside the request, so the next readdir or look
 * into the tag asks the registry; the kernel's entries are
 * queued to fs/ll_inval.c, which sends them after the reply (never from
 * inside the request concerned: the kernel holds the directory's lock until
 * it is answered).
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/itable.h"
#include "fs/ll.h"
#include "fs/ns.h"
#include "fs/view.h"
#include "registry/names.h"
#include "registry/tagops.h"

/* The kernel may cache a tag under its plain name N and as ":N". */
static void inval_tag_names(struct acrfs *fs, uint64_t parent, const char *tag)
{
	char alias[132];

	acrfs_inval_entry(fs->se, parent, tag);
	if ((size_t)snprintf(alias, sizeof(alias), ":%s", tag) < sizeof(alias))
		acrfs_inval_entry(fs->se, parent, alias);
	acrfs_inval_inode(fs->se, parent);
}

/* Map what the registry layer said to what rmdir/rename may return. */
static int fs_errno(int rc)
{
	switch (rc) {
	case -EINVAL:
	case -ENOTSUP:
		return -EPERM;
	default:
		return rc;
	}
}

/* rmdir of a repository (or namespace): only when nothing is left in it. */
static int rmdir_repo(struct acrfs *fs, const char *path)
{
	struct ns_ent *ents = NULL;
	size_t n = 0;
	int rc;

	ns_invalidate_tags(fs->ns, path); /* decide on the registry's word, not the cache */
	rc = ns_list(fs->ns, path, &ents, &n);
	ns_ents_free(ents, n);
	if (rc)
		return rc;
	if (n) {
		log_info("rmdir %s: not empty (%zu entr%s); delete its tags first", path, n,
			 n == 1 ? "y" : "ies");
		return -ENOTEMPTY;
	}
	rc = registry_repo_delete(fs->reg, path);
	if (!rc)
		ns_invalidate_catalog(fs->ns);
	return rc;
}

void acrfs_ll_rmdir(struct fuse_req *req, uint64_t parent, const char *name)
{
	struct acrfs *fs = fuse_req_userdata(req);
	struct inode *dir = itable_get(fs->inodes, parent);
	enum ns_kind kind;
	char *target = NULL;
	bool image = false;
	int rc;

	if (fs->ro) {
		rc = -EROFS;
		goto out;
	}
	if (!dir) {
		rc = -ESTALE;
		goto out;
	}
	if (dir->kind != K_DIR) {
		rc = -EPERM; /* inside a tag: the image view is read-only */
		goto out;
	}
	rc = ns_lookup(fs->ns, dir->a, name, &kind, &target);
	if (rc)
		goto out;
	if (kind == NS_DIR) {
		rc = rmdir_repo(fs, target);
		if (!rc) {
			acrfs_inval_entry(fs->se, parent, name);
			acrfs_inval_inode(fs->se, parent);
		}
		goto out;
	}
	rc = registry_tag_untag(fs->reg, dir->a, target, NULL, &image);
	/* Success or not, the registry's answer may differ from the cache now. */
	ns_invalidate_tags(fs->ns, dir->a);
	views_invalidate_tag(fs->views, dir->a, target);
	if (!rc || rc == -ENOENT)
		inval_tag_names(fs, parent, target);
	if (!rc)
		log_info("rmdir %s/%s: %s", dir->a, target,
			 image ? "the image was deleted (no other tag used it)" :
				 "the tag was removed; its image stays for the other tags");
	rc = fs_errno(rc);
out:
	free(target);
	fuse_reply_err(req, -rc);
}

void acrfs_ll_rename(struct fuse_req *req, uint64_t parent, const char *name,
		     uint64_t newparent, const char *newname, unsigned int flags)
{
	struct acrfs *fs = fuse_req_userdata(req);
	struct inode *sdir = itable_get(fs->inodes, parent);
	struct inode *ddir = itable_get(fs->inodes, newparent);
	const char *dtag = newname[0] == ':' ? newname + 1 : newname;
	enum ns_kind kind;
	char *src = NULL, *dst = NULL;
	bool new_repo;
	int rc;

	if (fs->ro) {
		rc = -EROFS;
		goto out;
	}
	if (!sdir || !ddir) {
		rc = -ESTALE;
		goto out;
	}
	if (flags & ~(unsigned int)RENAME_NOREPLACE) {
		rc = -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT: no */
		goto out;
	}
	if (sdir->kind != K_DIR || ddir->kind != K_DIR || !*ddir->a) {
		log_info("rename %s -> %s: only tags move, from a repository to a repository",
			 name, newname);
		rc = -EPERM;
		goto out;
	}
	rc = ns_lookup(fs->ns, sdir->a, name, &kind, &src);
	if (rc)
		goto out;
	if (kind != NS_TAG) {
		log_info("rename %s: repositories and namespaces cannot be renamed", src);
		rc = -EPERM;
		goto out;
	}
	if (!tag_valid(dtag) || !repo_name_valid(ddir->a)) {
		log_info("rename %s/%s -> %s/%s: not a valid tag name", sdir->a, src, ddir->a,
			 newname);
		rc = -EPERM; /* not EINVAL: mv reads that as "a subdirectory of itself" */
		goto out;
	}
	rc = ns_lookup(fs->ns, ddir->a, newname, &kind, &dst);
	if (rc == 0 && kind == NS_DIR) {
		log_info("rename %s/%s -> %s: that name is a repository; use \":%s\" for the tag",
			 sdir->a, src, dst, dtag);
		rc = -ENOTEMPTY;
		goto out;
	}
	new_repo = !ns_catalog_has(fs->ns, ddir->a);
	rc = registry_tag_move(fs->reg, sdir->a, src, ddir->a, dtag,
			       (flags & RENAME_NOREPLACE) != 0);
	ns_invalidate_tags(fs->ns, sdir->a);
	ns_invalidate_tags(fs->ns, ddir->a);
	views_invalidate_tag(fs->views, sdir->a, src);
	views_invalidate_tag(fs->views, ddir->a, dtag);
	if (new_repo)
		ns_invalidate_catalog(fs->ns);
	if (rc != -EEXIST) {
		inval_tag_names(fs, parent, src);
		inval_tag_names(fs, newparent, dtag);
	}
	rc = fs_errno(rc);
out:
	free(src);
	free(dst);
	fuse_reply_err(req, -rc);
}

void acrfs_ll_unlink(struct fuse_req *req, uint64_t parent, const char *name)
{
	struct acrfs *fs = fuse_req_userdata(req);

	(void)parent;
	(void)name;
	/* Only directories exist above the images, and images are read-only. */
	fuse_reply_err(req, fs->ro ? EROFS : EPERM);
}
