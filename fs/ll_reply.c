/*
 * Replies shared by the request handlers of fs/ll.c and fs/ll_view.c, so
 * that neither calls into the other for them.
 */
#include "fs/ll.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <string.h>

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
