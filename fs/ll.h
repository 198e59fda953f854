/*
 * ll — the FUSE edge (low-level API). Only fs/ll.c and fs/main.c include
 * libfuse.
 */
#ifndef ACRFS_LL_H
#define ACRFS_LL_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

struct fuse_lowlevel_ops;
struct fuse_session;
struct registry;

/* Everything a request handler needs; owned by main(). */
struct acrfs {
	struct registry *reg;
	struct ns *ns;
	struct itable *inodes;
	struct fuse_session *se;
	double ttl;	/* entry/attr timeout for registry directories */
	bool ro;
	uid_t uid;
	gid_t gid;
	struct timespec mounted_at;
};

/* The operations table; the session's userdata is a struct acrfs *. */
const struct fuse_lowlevel_ops *acrfs_ll_ops(void);
/* Node kinds stored in struct inode.kind. */
enum { K_DIR = 1, K_TAG = 2 };

#endif
