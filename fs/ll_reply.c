/*
 * Replies shared by the request handlers of fs/ll.c, fs/ll_view.c and
 * fs/ll_status.c, so that none calls into another for them.
 */
#include "fs/ll.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <string.h>

#include "fs/itable.h"

void acrfs_reply_negative(struct fuse_req *req, double timeout)
{
	struct fuse_entry_param ep;

	if (timeout <= 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&ep, 0, sizeof(ep));
	ep.entry_timeout = timeout;
	fuse_reply_entry(req, &ep);
}

bool acrfs_add_dirent(struct fuse_req *req, struct acrfs *fs, struct dirent_buf *d,
		      const char *name, const struct fuse_entry_param *ep, off_t next, bool plus,
		      const struct inode *n)
{
	size_t len;

	if (plus)
		len = fuse_add_direntry_plus(req, d->p, d->rem, name, ep, next);
	else
		len = fuse_add_direntry(req, d->p, d->rem, name, &ep->attr, next);
	if (len > d->rem) {
		/* Did not fit: the kernel never saw it, so undo the reference. */
		if (n)
			itable_forget(fs->inodes, n->ino, 1);
		return false;
	}
	d->p += len;
	d->rem -= len;
	return true;
}

void acrfs_reply_entry_ref(struct fuse_req *req, struct acrfs *fs, const struct inode *n,
			   const struct fuse_entry_param *ep)
{
	/* Not delivered: the kernel will never forget what it never saw. */
	if (fuse_reply_entry(req, ep))
		itable_forget(fs->inodes, n->ino, 1);
}
